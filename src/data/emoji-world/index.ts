export * from './catalog.ts';
export * from './background.ts';
export * from './render.ts';
export * from './scene.ts';
export * from './subset.ts';
