// n images -> one contact-sheet image, ceil(sqrt(n)) columns, separated by a thin black gap.
export interface Rgb { width: number; height: number; channels: 3; data: Uint8Array }

export function imageGrid(images: Rgb[], gap = 2): Rgb & { cols: number; rows: number } {
  if (!images.length) throw new Error('imageGrid: no images');
  const { width: w, height: h } = images[0]!;
  const cols = Math.ceil(Math.sqrt(images.length));
  const rows = Math.ceil(images.length / cols);
  const W = cols * w + (cols - 1) * gap;
  const H = rows * h + (rows - 1) * gap;
  const data = new Uint8Array(W * H * 3);
  images.forEach((im, k) => {
    if (im.width !== w || im.height !== h) throw new Error('imageGrid: images differ in size');
    const [x0, y0] = [(k % cols) * (w + gap), Math.floor(k / cols) * (h + gap)];
    for (let y = 0; y < h; y++) data.set(im.data.subarray(y * w * 3, (y + 1) * w * 3), ((y0 + y) * W + x0) * 3);
  });
  return { width: W, height: H, channels: 3, data, cols, rows };
}
