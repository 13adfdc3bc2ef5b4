export * from './types.ts';
export * from './words.ts';
export * from './ground-truth.ts';
export * from './human.ts';
export * from './open-vocab.ts';
