// mumu's one image type and its pixel operations: plain row-major buffers, no tensor engine (the data pipeline's
// worker threads use them without loading libtorch). Decoding, PNG files and resizing are png.ts and resize.ts.

// Row-major, 8 bits per channel. Targets, crops and generated images are RGB; rasterized emoji are RGBA.
export interface RawImage {
  width: number;
  height: number;
  channels: 3 | 4;
  data: Uint8Array;
}
// An image known to be RGB (what the models take and make).
export type RgbImage = RawImage & { channels: 3 };

// Axis-aligned box in pixels: top-left corner and size.
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export type RGB = readonly [number, number, number];

export function blank(
  width: number,
  height: number,
  channels: 3 | 4 = 3,
  fill: readonly number[] = [0, 0, 0, 255],
): RawImage {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < channels; c++) data[i * channels + c] = fill[c] ?? 255;
  return { width, height, channels, data };
}

export const boxArea = (b: Box) => Math.max(0, b.w) * Math.max(0, b.h);

export function intersect(a: Box, b: Box): Box {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  return {
    x,
    y,
    w: Math.max(0, Math.min(a.x + a.w, b.x + b.w) - x),
    h: Math.max(0, Math.min(a.y + a.h, b.y + b.h) - y),
  };
}

// Round outward to whole pixels and clip to the image.
export function clampBox(b: Box, width: number, height: number): Box {
  const x0 = Math.max(0, Math.floor(b.x));
  const y0 = Math.max(0, Math.floor(b.y));
  const x1 = Math.min(width, Math.ceil(b.x + b.w));
  const y1 = Math.min(height, Math.ceil(b.y + b.h));
  return { x: x0, y: y0, w: Math.max(0, x1 - x0), h: Math.max(0, y1 - y0) };
}

// RGBA -> RGB, alpha over black (RGB passes through unchanged).
export function toRGB(img: RawImage): RgbImage {
  if (img.channels === 3) return img as RgbImage;
  // Alpha over black, matching the paper's black padding (section 5).
  const n = img.width * img.height;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const a = img.data[i * 4 + 3]! / 255;
    out[i * 3] = Math.round(img.data[i * 4]! * a);
    out[i * 3 + 1] = Math.round(img.data[i * 4 + 1]! * a);
    out[i * 3 + 2] = Math.round(img.data[i * 4 + 2]! * a);
  }
  return { width: img.width, height: img.height, channels: 3, data: out };
}

// RGB -> RGBA with opaque alpha (RGBA passes through unchanged).
export function toRGBA(img: Pick<RawImage, 'width' | 'height' | 'channels' | 'data'>): RawImage {
  if (img.channels === 4) return img as RawImage;
  const n = img.width * img.height;
  const out = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    out[i * 4] = img.data[i * 3]!;
    out[i * 4 + 1] = img.data[i * 3 + 1]!;
    out[i * 4 + 2] = img.data[i * 3 + 2]!;
    out[i * 4 + 3] = 255;
  }
  return { width: img.width, height: img.height, channels: 4, data: out };
}

export function crop(img: RawImage, box: Box): RawImage {
  const b = clampBox(box, img.width, img.height);
  if (b.w === 0 || b.h === 0) throw new Error(`crop: empty box ${JSON.stringify(box)} in ${img.width}x${img.height}`);
  const c = img.channels;
  const out = new Uint8Array(b.w * b.h * c);
  for (let y = 0; y < b.h; y++) {
    const src = ((b.y + y) * img.width + b.x) * c;
    out.set(img.data.subarray(src, src + b.w * c), y * b.w * c);
  }
  return { width: b.w, height: b.h, channels: c, data: out };
}

// Pad to a square with `color` (black by default: paper section 5, "All images were padded to square
// resolutions with black pixels"), centred; returns where the original landed so boxes can be shifted.
export function padToSquare(img: RawImage, color: RGB = [0, 0, 0]): { image: RawImage; dx: number; dy: number } {
  const side = Math.max(img.width, img.height);
  if (img.width === side && img.height === side) return { image: img, dx: 0, dy: 0 };
  const out = blank(side, side, img.channels, [...color, 255]);
  const dx = Math.floor((side - img.width) / 2);
  const dy = Math.floor((side - img.height) / 2);
  const c = img.channels;
  for (let y = 0; y < img.height; y++) {
    out.data.set(img.data.subarray(y * img.width * c, (y + 1) * img.width * c), ((y + dy) * side + dx) * c);
  }
  return { image: out, dx, dy };
}

// Alpha-composite an RGBA sprite onto an RGB canvas with its top-left at (x, y); parts outside are clipped.
export function alphaOver(dst: RawImage, src: RawImage, x: number, y: number): void {
  if (dst.channels !== 3 || src.channels !== 4) throw new Error('alphaOver: want an RGB canvas and an RGBA sprite');
  const x0 = Math.max(0, x),
    y0 = Math.max(0, y);
  const x1 = Math.min(dst.width, x + src.width),
    y1 = Math.min(dst.height, y + src.height);
  for (let yy = y0; yy < y1; yy++) {
    let s = ((yy - y) * src.width + (x0 - x)) * 4;
    let d = (yy * dst.width + x0) * 3;
    for (let xx = x0; xx < x1; xx++, s += 4, d += 3) {
      const a = src.data[s + 3]!;
      if (a === 0) continue;
      if (a === 255) {
        dst.data[d] = src.data[s]!;
        dst.data[d + 1] = src.data[s + 1]!;
        dst.data[d + 2] = src.data[s + 2]!;
      } else {
        const t = a / 255;
        dst.data[d] = dst.data[d]! + (src.data[s]! - dst.data[d]!) * t;
        dst.data[d + 1] = dst.data[d + 1]! + (src.data[s + 1]! - dst.data[d + 1]!) * t;
        dst.data[d + 2] = dst.data[d + 2]! + (src.data[s + 2]! - dst.data[d + 2]!) * t;
      }
    }
  }
}

export function hflip(img: RawImage): RawImage {
  const c = img.channels;
  const out = new Uint8Array(img.data.length);
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++) {
      const s = (y * img.width + x) * c,
        d = (y * img.width + (img.width - 1 - x)) * c;
      for (let k = 0; k < c; k++) out[d + k] = img.data[s + k]!;
    }
  return { ...img, data: out };
}

// ITU-R BT.601 luma, kept as three equal channels so the image stays RGB.
export function grayscale(img: RawImage): RawImage {
  const c = img.channels;
  const out = new Uint8Array(img.data);
  for (let i = 0; i < img.width * img.height; i++) {
    const p = i * c;
    const v = Math.round(0.299 * img.data[p]! + 0.587 * img.data[p + 1]! + 0.114 * img.data[p + 2]!);
    out[p] = out[p + 1] = out[p + 2] = v;
  }
  return { ...img, data: out };
}

// Per-pixel Gaussian noise on the colour channels; rng is any seeded source of N(0, 1) draws.
export function gaussianNoise(img: RawImage, rng: { normal(): number }, sigma: number): RawImage {
  const c = img.channels;
  const out = new Uint8Array(img.data);
  for (let i = 0; i < img.width * img.height; i++)
    for (let k = 0; k < Math.min(c, 3); k++) {
      const p = i * c + k;
      out[p] = Math.max(0, Math.min(255, Math.round(img.data[p]! + sigma * rng.normal())));
    }
  return { ...img, data: out };
}
