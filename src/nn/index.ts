// mumu's neural-network layer: Module (parameters found by walking properties), layers, attention, LoRA.
export * from './module.ts';
export * from './layers.ts';
export * from './attention.ts';
export * from './feedforward.ts';
export * from './embeddings.ts';
export * from './resnet.ts';
export * from './lora.ts';
