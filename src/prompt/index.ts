// Multimodal prompts: parsing, image preparation, tokenization, and the VLM's interleaved input.
export * from './parse.ts';
export * from './image.ts';
export * from './tokenizer.ts';
export * from './encode.ts';
