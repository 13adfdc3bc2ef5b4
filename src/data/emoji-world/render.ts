// Rasterize one emoji of one style with resvg, cached: scenes reuse the same few thousand (style, slug, size)
// sprites, and a cache hit costs nothing next to resvg's ~ms per icon.
//
// resvg 2.6.2 panics (aborting the process) on a few icons at some sizes only, e.g. fluent-emoji's
// `person-curly-hair` at 32 px. So icons are rasterized only at the canonical sizes below, every one of which was
// checked by rasterizing every icon of every set (minus catalog.ts's RESVG_PANICS), and area-downscaled in TS to
// the size a scene asks for.
import { Resvg } from '@resvg/resvg-js';
import { resampleRGBA, type Box, type RawImage } from '../../image/index.ts';
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

export const CANONICAL_SIZES: readonly number[] = [64, 128, 256];

// Insertion-ordered Maps as LRUs bounded in bytes: delete + set moves a key to the back.
function lru<V>(maxBytes: number, bytes: (v: V) => number) {
  const m = new Map<string, V>();
  let total = 0;
  return (key: string, make: () => V): V => {
    let v = m.get(key);
    if (v !== undefined) m.delete(key);
    else {
      v = make();
      total += bytes(v);
    }
    m.set(key, v);
    while (total > maxBytes && m.size > 1) {
      const [k, old] = m.entries().next().value!;
      m.delete(k);
      total -= bytes(old);
    }
    return v;
  };
}
// Per process (each worker thread has its own): enough for every concept of a few styles at 128 px.
export const CANONICAL_CACHE_BYTES = 256 << 20;
export const SPRITE_CACHE_BYTES = 64 << 20;
const canonical = lru<RawImage>(CANONICAL_CACHE_BYTES, (im) => im.data.length);
const sprites = lru<Sprite>(SPRITE_CACHE_BYTES, (s) => s.image.data.length);

export function sprite(style: string, slug: string, px: number): Sprite {
  return sprites(`${style}/${slug}/${px}`, () => {
    const base = CANONICAL_SIZES.find((c) => c >= px) ?? CANONICAL_SIZES.at(-1)!;
    const big = canonical(`${style}/${slug}/${base}`, () => rasterize(style, slug, base));
    const image = resampleRGBA(big, px, Math.max(1, Math.round((big.height * px) / big.width)));
    return { image, tight: tightBox(image) };
  });
}
