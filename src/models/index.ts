// The MUMU model family (paper Figure 2), each configured by a typed config read verbatim from its config.json.
export * from './config.ts';
export * from './vae.ts';
export * from './unet.ts';
export * from './vit.ts';
export * from './vlm.ts';
export * from './adapter.ts';
export * from './text_encoder.ts';
export * from './pretrained.ts';
export * from './mumu.ts';
