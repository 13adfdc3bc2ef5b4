// mumu's images: one RGB/RGBA type, pixel operations, resizing, PNG files with mumu's metadata, grids, and bounded
// reading of user-named files. Tensor conversion is ./tensor.ts (it loads libtorch; nothing here does).
export * from './image.ts';
export * from './resize.ts';
export * from './png.ts';
export * from './grid.ts';
export * from './file.ts';
