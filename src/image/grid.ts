// Contact sheets of images: the CLI's n-image grid, the trainer's sample rows and the evaluation grids.
import type { RgbImage } from './image.ts';
import { areaResize } from './resize.ts';

export interface GridOptions {
  gap?: number; // px between cells (default 2)
  background?: number; // grey level of the gaps and empty space (default 0, black)
  // Cells of cell x cell px: images are area-resized to it, except strips already `cell` high and at most that wide
  // (separators), kept as they are, each advancing by its own width. Without it, every cell is as large as the
  // largest image, images at its top left.
  cell?: number;
}

// Rows of images (each row left to right) -> one RGB image.
export function gridRows(rows: RgbImage[][], o: GridOptions = {}): RgbImage {
  const { gap = 2, background = 0, cell } = o;
  const cells = rows.map((row) =>
    cell ? row.map((im) => (im.height === cell && im.width <= cell ? im : areaResize(im, cell))) : row,
  );
  const all = cells.flat();
  if (!all.length) throw new Error('gridRows: no images');
  const colWidth = cell ? null : Math.max(...all.map((c) => c.width));
  const rowHeight = cell ?? Math.max(...all.map((c) => c.height));
  const widthOf = (row: RgbImage[]) => row.reduce((w, im) => w + (colWidth ?? im.width) + gap, -gap);
  const W = Math.max(...cells.map(widthOf)),
    H = rows.length * rowHeight + (rows.length - 1) * gap;
  const data = new Uint8Array(W * H * 3).fill(background);
  cells.forEach((row, r) => {
    let x0 = 0;
    const y0 = r * (rowHeight + gap);
    for (const im of row) {
      for (let y = 0; y < im.height; y++)
        data.set(im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3), ((y0 + y) * W + x0) * 3);
      x0 += (colWidth ?? im.width) + gap;
    }
  });
  return { width: W, height: H, channels: 3, data };
}

// n equally sized images -> ceil(sqrt(n)) columns in reading order, black gaps.
export function imageGrid(images: RgbImage[], gap = 2): RgbImage & { cols: number; rows: number } {
  if (!images.length) throw new Error('imageGrid: no images');
  const { width: w, height: h } = images[0]!;
  if (images.some((im) => im.width !== w || im.height !== h)) throw new Error('imageGrid: images differ in size');
  const cols = Math.ceil(Math.sqrt(images.length));
  const rows = Array.from({ length: Math.ceil(images.length / cols) }, (_, r) =>
    images.slice(r * cols, (r + 1) * cols),
  );
  return { ...gridRows(rows, { gap }), cols, rows: rows.length };
}
