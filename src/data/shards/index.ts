export * from './tar.ts';
export * from './run.ts';
export * from './reader.ts';
