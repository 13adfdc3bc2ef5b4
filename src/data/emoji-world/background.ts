// Scene backgrounds: plain procedural fills in TS (fast, no rasterizer) or a full-bleed scene emoji in the
// scene's own style. Each returns its caption phrase: "on a <phrase> background".
import { blank, type RawImage, type RGB } from '../../image/index.ts';
import type { Rng } from '../rng.ts';
import { SCENE_BACKGROUNDS } from './catalog.ts';
import { sprite } from './render.ts';

// Named colours, so a caption can say what it shows.
export const COLORS: Readonly<Record<string, RGB>> = {
  white: [245, 245, 245], black: [20, 20, 20], gray: [128, 128, 128], red: [215, 40, 40], orange: [240, 140, 30],
  yellow: [245, 215, 50], green: [60, 170, 70], teal: [30, 150, 150], blue: [45, 95, 210], purple: [130, 60, 180],
  pink: [240, 130, 180], brown: [120, 75, 40], beige: [225, 205, 165], navy: [20, 30, 90],
};
const COLOR_NAMES = Object.keys(COLORS);

export type BackgroundKind = 'solid' | 'gradient' | 'stripes' | 'checker' | 'dots' | 'scene';
// Relative frequencies. Scenes are a fifth so most objects stay easy to see on small images.
export const BACKGROUND_WEIGHTS: Readonly<Record<BackgroundKind, number>> = {
  solid: 0.3, gradient: 0.2, stripes: 0.1, checker: 0.1, dots: 0.1, scene: 0.2,
};

// What a background is, drawn from the content stream so every style of one content gets the same one.
export interface BackgroundSpec {
  kind: BackgroundKind;
  colors: string[];
  angle: number; // gradient / stripe direction, radians
  period: number; // stripe / checker / dot spacing as a fraction of the image side
  scene?: string; // slug of the scene emoji
}

// `weights` (relative, any scale) replaces BACKGROUND_WEIGHTS: a training config can make scenes easier.
export function drawBackgroundSpec(rng: Rng, weights: Readonly<Partial<Record<BackgroundKind, number>>> = BACKGROUND_WEIGHTS): BackgroundSpec {
  const entries = Object.entries(weights) as [BackgroundKind, number][];
  const total = entries.reduce((a, [, w]) => a + w, 0);
  let u = rng.next() * total;
  let kind: BackgroundKind = entries[0]![0];
  for (const [k, w] of entries) {
    if ((u -= w) < 0) { kind = k; break; }
  }
  const [a, b] = rng.sample(COLOR_NAMES, 2) as [string, string];
  return {
    kind,
    colors: [a, b],
    angle: rng.uniform(0, Math.PI),
    period: rng.uniform(0.1, 0.25),
    scene: kind === 'scene' ? rng.pick(Object.keys(SCENE_BACKGROUNDS)) : undefined,
  };
}

export function backgroundPhrase(spec: BackgroundSpec): string {
  const [a, b] = spec.colors as [string, string];
  switch (spec.kind) {
    case 'solid': return a;
    case 'gradient': return `${a} to ${b} gradient`;
    case 'stripes': return `${a} and ${b} striped`;
    case 'checker': return `${a} and ${b} checkered`;
    case 'dots': return `${a} polka dot`;
    case 'scene': return SCENE_BACKGROUNDS[spec.scene!]!;
  }
}

export function renderBackground(spec: BackgroundSpec, size: number, style: string): RawImage {
  const ca = COLORS[spec.colors[0]!]!, cb = COLORS[spec.colors[1]!]!;
  if (spec.kind === 'solid') return blank(size, size, 3, ca);
  if (spec.kind === 'scene') {
    const s = sprite(style, spec.scene!, size).image;
    const img = blank(size, size, 3, ca);
    // Scene emoji are drawn edge to edge in most sets; any transparent margin shows the first colour.
    for (let i = 0; i < size * size; i++) {
      const t = s.data[i * 4 + 3]! / 255;
      for (let c = 0; c < 3; c++) img.data[i * 3 + c] = img.data[i * 3 + c]! * (1 - t) + s.data[i * 4 + c]! * t;
    }
    return img;
  }
  const img = blank(size, size, 3);
  const cos = Math.cos(spec.angle), sin = Math.sin(spec.angle);
  const period = Math.max(2, spec.period * size);
  // For the dots, b is the field and a the dots, so "a red polka dot background" has red dots.
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      let t: number;
      switch (spec.kind) {
        case 'gradient': t = ((x - size / 2) * cos + (y - size / 2) * sin) / (size * 0.71) + 0.5; break;
        case 'stripes': t = Math.floor(((x * cos + y * sin) / period) * 2) % 2 === 0 ? 0 : 1; break;
        case 'checker': t = (Math.floor(x / period) + Math.floor(y / period)) % 2; break;
        default: {
          const dx = (x % period) - period / 2, dy = (y % period) - period / 2;
          t = dx * dx + dy * dy < (period * 0.3) ** 2 ? 0 : 1;
        }
      }
      t = Math.max(0, Math.min(1, Math.abs(t)));
      const p = (y * size + x) * 3;
      img.data[p] = ca[0] + (cb[0] - ca[0]) * t;
      img.data[p + 1] = ca[1] + (cb[1] - ca[1]) * t;
      img.data[p + 2] = ca[2] + (cb[2] - ca[2]) * t;
    }
  return img;
}
