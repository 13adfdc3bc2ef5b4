// Rasterize one emoji of one style at one pixel size with resvg, cached: scenes reuse the same few thousand
// (style, slug, size) sprites, and a cache hit costs nothing next to resvg's ~ms per icon.
import { Resvg } from '@resvg/resvg-js';
import type { Box, RawImage } from '../image.ts';
import { iconSvg } from './catalog.ts';

export interface Sprite {
  image: RawImage; // RGBA, straight (not premultiplied) alpha
  tight: Box; // bounding box of the visible pixels, relative to the sprite: the object's ground-truth box
}

// Pixels with alpha below this are treated as empty when computing the tight box (anti-aliasing fringe).
const TIGHT_ALPHA = 16;

export function rasterize(style: string, slug: string, px: number): RawImage {
  const r = new Resvg(iconSvg(style, slug), { fitTo: { mode: 'width', value: px }, font: { loadSystemFonts: false } });
  const out = r.render();
  const pixels = new Uint8Array(out.pixels);
  // resvg hands back premultiplied RGBA; un-premultiply so alpha compositing is the usual straight-alpha "over".
  for (let i = 0; i < pixels.length; i += 4) {
    const a = pixels[i + 3]!;
    if (a !== 0 && a !== 255) {
      pixels[i] = Math.min(255, Math.round((pixels[i]! * 255) / a));
      pixels[i + 1] = Math.min(255, Math.round((pixels[i + 1]! * 255) / a));
      pixels[i + 2] = Math.min(255, Math.round((pixels[i + 2]! * 255) / a));
    }
  }
  return { width: out.width, height: out.height, channels: 4, data: pixels };
}

export function tightBox(img: RawImage): Box {
  let x0 = img.width, y0 = img.height, x1 = -1, y1 = -1;
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++)
      if (img.data[(y * img.width + x) * 4 + 3]! >= TIGHT_ALPHA) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
  if (x1 < 0) return { x: 0, y: 0, w: 0, h: 0 };
  return { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1 };
}

// Insertion-ordered Map as an LRU: delete + set moves a key to the back.
const MAX_CACHED = 4096;
const cache = new Map<string, Sprite>();

export function sprite(style: string, slug: string, px: number): Sprite {
  const key = `${style}/${slug}/${px}`;
  let s = cache.get(key);
  if (s) {
    cache.delete(key);
    cache.set(key, s);
    return s;
  }
  const image = rasterize(style, slug, px);
  s = { image, tight: tightBox(image) };
  cache.set(key, s);
  if (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value!);
  return s;
}
