export * from './rules.ts';
export * from './prompt.ts';
export * from './controls.ts';
export * from './bootstrap.ts';
