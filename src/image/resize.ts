// Resizing: sharp's Lanczos for photos (async, off the main thread), and a synchronous area average with
// premultiplied alpha for sprites and for looking at images at the evaluator's size.
import sharp from 'sharp';
import { toRGBA, type RawImage, type RgbImage } from './image.ts';

export async function resize(img: RawImage, width: number, height: number): Promise<RawImage> {
  if (img.width === width && img.height === height) return img;
  const data = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer();
  return { width, height, channels: img.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

// Area-average (box) resampling weights from n source pixels to m: each output pixel averages the source span it
// covers, with fractional edges. Exact for downscaling; for upscaling it degrades to nearest-neighbour.
function areaWeights(n: number, m: number): { start: number; w: Float32Array }[] {
  const scale = n / m;
  const out: { start: number; w: Float32Array }[] = [];
  for (let i = 0; i < m; i++) {
    const a = i * scale,
      b = Math.min(n, (i + 1) * scale);
    const start = Math.floor(a),
      end = Math.min(n, Math.ceil(b));
    const w = new Float32Array(Math.max(1, end - start));
    for (let k = start; k < end; k++) w[k - start] = Math.min(b, k + 1) - Math.max(a, k);
    const sum = w.reduce((s, v) => s + v, 0) || 1;
    for (let k = 0; k < w.length; k++) w[k]! /= sum;
    out.push({ start, w });
  }
  return out;
}

// Synchronous RGBA resize with premultiplied alpha (so transparent pixels don't bleed dark fringes).
export function resampleRGBA(img: RawImage, width: number, height: number): RawImage {
  if (img.channels !== 4) throw new Error('resampleRGBA: want RGBA');
  if (img.width === width && img.height === height) return img;
  const src = img.data;
  const wx = areaWeights(img.width, width),
    wy = areaWeights(img.height, height);
  const tmp = new Float32Array(width * img.height * 4); // horizontal pass, premultiplied
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < width; x++) {
      const { start, w } = wx[x]!;
      let r = 0,
        g = 0,
        b = 0,
        a = 0;
      for (let k = 0; k < w.length; k++) {
        const p = (y * img.width + start + k) * 4,
          al = (src[p + 3]! / 255) * w[k]!;
        r += src[p]! * al;
        g += src[p + 1]! * al;
        b += src[p + 2]! * al;
        a += al;
      }
      const q = (y * width + x) * 4;
      tmp[q] = r;
      tmp[q + 1] = g;
      tmp[q + 2] = b;
      tmp[q + 3] = a;
    }
  const out = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const { start, w } = wy[y]!;
    for (let x = 0; x < width; x++) {
      let r = 0,
        g = 0,
        b = 0,
        a = 0;
      for (let k = 0; k < w.length; k++) {
        const q = ((start + k) * width + x) * 4,
          f = w[k]!;
        r += tmp[q]! * f;
        g += tmp[q + 1]! * f;
        b += tmp[q + 2]! * f;
        a += tmp[q + 3]! * f;
      }
      const o = (y * width + x) * 4;
      if (a > 1e-6) {
        out[o] = Math.min(255, Math.round(r / a));
        out[o + 1] = Math.min(255, Math.round(g / a));
        out[o + 2] = Math.min(255, Math.round(b / a));
      }
      out[o + 3] = Math.min(255, Math.round(a * 255));
    }
  }
  return { width, height, channels: 4, data: out };
}

// Area resampling of any image to size x size, RGB out.
export function areaResize(im: RawImage, size: number): RgbImage {
  const r = resampleRGBA(toRGBA(im), size, size);
  const data = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = r.data[i * 4 + c]!;
  return { width: size, height: size, channels: 3, data };
}
