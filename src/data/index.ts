export * from './rng.ts';
export * from './emoji-world/index.ts';
export * from './detect/index.ts';
export * from './bootstrap/index.ts';
export * from './shards/index.ts';
export * from './sources.ts';
export * from './contact-sheet.ts';
