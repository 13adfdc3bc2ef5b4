// Diffusion, k-diffusion style: schedules and samplers are pure functions over model(x, t) -> eps.
export * from './schedule.ts';
export * from './noise.ts';
export * from './ddim.ts';
export * from './euler.ts';
export * from './guidance.ts';
export * from './config.ts';
export * from './samplers.ts';
