// The metrics of docs/RESULTS.md. Pure functions over pixels and evaluator outputs (numbers), so each is unit-tested
// on constructed cases; `Judge` runs the evaluator on an image and its windows once and feeds them.
//
// Windows: a generated scene holds its objects anywhere, at any size. Every metric that asks "is this object in
// the output" looks at the whole image and at square windows of 3/4 and 1/2 of its side (stride 1/4 of the side):
// 1 + 4 + 9 = 14 views of a square image, each area-resampled to the evaluator's input size.
import { crop, areaResize, type RgbImage } from '../image/index.ts';
import type { EmojiEvaluator } from './evaluator.ts';
import { COLORS } from '../data/emoji-world/background.ts';

export const WINDOW_FRACTIONS: readonly number[] = [1, 0.75, 0.5];

export function windows(img: RgbImage, fractions: readonly number[] = WINDOW_FRACTIONS): RgbImage[] {
  const S = Math.min(img.width, img.height);
  const stride = Math.max(1, Math.round(S / 4));
  const out: RgbImage[] = [];
  for (const f of fractions) {
    const side = Math.max(1, Math.round(S * f));
    for (let y = 0; y + side <= img.height; y += stride)
      for (let x = 0; x + side <= img.width; x += stride) out.push(crop(img, { x, y, w: side, h: side }) as RgbImage);
  }
  return out;
}

// ---- vectors ----
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0,
    na = 0,
    nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na && nb ? d / Math.sqrt(na * nb) : 0;
}

export function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

// Pearson correlation of two equally sized pixel arrays (all channels). Two constant images correlate 1 if equal,
// else 0; a constant image against a textured one is 0.
export function pixelCorrelation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0,
    mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]!;
    mb += b[i]!;
  }
  ma /= n;
  mb /= n;
  let sab = 0,
    saa = 0,
    sbb = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i]! - ma,
      y = b[i]! - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  if (saa < 1e-9 || sbb < 1e-9) return saa < 1e-9 && sbb < 1e-9 && Math.abs(ma - mb) < 1e-9 ? 1 : 0;
  return sab / Math.sqrt(saa * sbb);
}

// ---- the metrics ----

// Concept preservation (DreamBench's CLIP-I / DINO, with our evaluator's embedding): the best cosine between the
// reference's embedding and any window of the output.
export function conceptPreservation(reference: ArrayLike<number>, outputWindows: ArrayLike<number>[]): number {
  return Math.max(...outputWindows.map((w) => cosine(reference, w)));
}

// Prompt following (CLIP-T analogue): of the K concepts the text names, the fraction the evaluator finds. Each
// window's concept logits are softmaxed over the suite's vocabulary; a concept's score is its best window
// probability; a named concept counts as found when it ranks in the top K of the vocabulary by that score.
export function promptFollowing(named: number[], windowLogits: number[][], vocabulary: number[]): number {
  if (!named.length) return NaN;
  const best = new Map<number, number>(vocabulary.map((c) => [c, 0]));
  for (const logits of windowLogits) {
    const p = softmax(vocabulary.map((c) => logits[c]!));
    vocabulary.forEach((c, i) => best.set(c, Math.max(best.get(c)!, p[i]!)));
  }
  const ranked = [...best.entries()].sort((a, b) => b[1] - a[1]).map(([c]) => c);
  const K = named.length;
  return (
    named.filter((c) => {
      const r = ranked.indexOf(c);
      return r >= 0 && r < K;
    }).length / K
  );
}

// Objects present with confidence: the fraction of `concepts` whose best-window probability (softmax over the
// vocabulary) reaches minProb. Used for leakage, where no top-K budget exists.
export function conceptsPresent(
  concepts: number[],
  windowLogits: number[][],
  vocabulary: number[],
  minProb = 0.5,
): number {
  if (!concepts.length) return NaN;
  const best = new Map<number, number>();
  for (const logits of windowLogits) {
    const p = softmax(vocabulary.map((c) => logits[c]!));
    vocabulary.forEach((c, i) => best.set(c, Math.max(best.get(c) ?? 0, p[i]!)));
  }
  return concepts.filter((c) => (best.get(c) ?? 0) >= minProb).length / concepts.length;
}

// Style adherence: the style head on the whole output. Returns whether its top style is the asked one and the
// probability it gives that style.
export function styleAdherence(styleLogits: number[], target: number): { hit: boolean; prob: number } {
  const p = softmax(styleLogits);
  const top = p.indexOf(Math.max(...p));
  return { hit: top === target, prob: p[target]! };
}

// Copy-paste score: how exactly the reference's pixels reappear anywhere in the output, at any scale. The reference
// is area-resampled to every side t from 1/4 of the output's side to all of it (step S/32) and slid over every
// position of the output; the score is the best Pearson correlation of pixels (template matching). 1 = the reference
// pasted in; a redrawn object (other pose, other style, other details) scores far lower even when the evaluator calls
// it the same concept. High concept preservation with copy >= COPY_PASTE_THRESHOLD is reported as copying, not success.
export const COPY_PASTE_THRESHOLD = 0.9;
export function copyPaste(reference: RgbImage, output: RgbImage): number {
  const S = Math.min(output.width, output.height);
  const W = output.width;
  const out = Float32Array.from(output.data);
  const step = Math.max(1, Math.round(S / 32));
  let best = -1;
  for (let t = Math.max(4, Math.round(S / 4)); t <= S; t += step) {
    const ref = Float32Array.from(areaResize(reference, t).data);
    const n = ref.length;
    let mr = 0;
    for (let i = 0; i < n; i++) mr += ref[i]!;
    mr /= n;
    let vr = 0;
    for (let i = 0; i < n; i++) vr += (ref[i]! - mr) ** 2;
    for (let y = 0; y + t <= output.height; y++)
      for (let x = 0; x + t <= W; x++) {
        let so = 0,
          soo = 0,
          sro = 0;
        for (let yy = 0; yy < t; yy++) {
          const o0 = ((y + yy) * W + x) * 3,
            r0 = yy * t * 3;
          for (let k = 0; k < t * 3; k++) {
            const v = out[o0 + k]!;
            so += v;
            soo += v * v;
            sro += (ref[r0 + k]! - mr) * v;
          }
        }
        const vo = soo - (so * so) / n;
        const c = vr < 1e-9 || vo < 1e-9 ? 0 : sro / Math.sqrt(vr * vo);
        if (c > best) best = c;
      }
  }
  return best;
}

// Diversity across seeds: mean pairwise (1 - cosine) of the outputs' whole-image embeddings (0 = all the same
// picture to the evaluator), and mean pairwise (1 - pixel correlation).
export function diversity(
  embeddings: ArrayLike<number>[],
  images: RgbImage[] = [],
  size = 32,
): { embedding: number; pixel: number } {
  const pairs = (n: number, f: (i: number, j: number) => number) => {
    let s = 0,
      k = 0;
    for (let i = 0; i < n; i++)
      for (let j = i + 1; j < n; j++) {
        s += f(i, j);
        k++;
      }
    return k ? s / k : NaN;
  };
  const px = images.map((im) => areaResize(im, size).data);
  return {
    embedding: pairs(embeddings.length, (i, j) => 1 - cosine(embeddings[i]!, embeddings[j]!)),
    pixel: pairs(px.length, (i, j) => 1 - pixelCorrelation(px[i]!, px[j]!)),
  };
}

// The background an output shows: the EmojiWorld colour nearest to the mean of its 3 px border (objects rarely touch
// the border; a gradient background averages to its middle). Asked and drawn backgrounds compare by name.
export function backgroundColor(im: RgbImage): string {
  const m = [0, 0, 0];
  let n = 0;
  for (let y = 0; y < im.height; y++)
    for (let x = 0; x < im.width; x++) {
      if (y > 2 && y < im.height - 3 && x > 2 && x < im.width - 3) continue;
      for (let c = 0; c < 3; c++) m[c]! += im.data[(y * im.width + x) * 3 + c]!;
      n++;
    }
  const dist = (rgb: readonly number[]) => rgb.reduce((a, v, c) => a + (v - m[c]! / n) ** 2, 0);
  const names = Object.keys(COLORS);
  return names.reduce((a, b) => (dist(COLORS[b]!) < dist(COLORS[a]!) ? b : a));
}

// ---- the evaluator on an image ----
export interface Views {
  whole: { embedding: number[]; conceptLogits: number[]; styleLogits: number[] };
  windows: { embedding: number[]; conceptLogits: number[] }[]; // includes the whole image first
}

export class Judge {
  readonly #cache = new Map<RgbImage, Views>();
  constructor(readonly evaluator: EmojiEvaluator) {}

  conceptIndex(slug: string): number {
    const i = this.evaluator.conceptIndex.get(slug);
    if (i === undefined) throw new Error(`the evaluator does not know concept '${slug}'`);
    return i;
  }
  styleIndex(id: string): number {
    const i = this.evaluator.styleIndex.get(id);
    if (i === undefined) throw new Error(`the evaluator does not know style '${id}'`);
    return i;
  }

  // Whole image only (references: a crop is one object already).
  embed(img: RgbImage): { embedding: number[]; conceptLogits: number[]; styleLogits: number[] } {
    return this.views(img, false).whole;
  }

  views(img: RgbImage, withWindows = true): Views {
    const hit = this.#cache.get(img);
    if (hit && (hit.windows.length > 1 || !withWindows)) return hit;
    const ims = withWindows ? windows(img) : [img];
    const out = this.evaluator.run(ims);
    const emb = out.embedding.toList() as number[][];
    const cl = out.conceptLogits.toList() as number[][];
    const sl = out.styleLogits.toList() as number[][];
    const v: Views = {
      whole: { embedding: emb[0]!, conceptLogits: cl[0]!, styleLogits: sl[0]! },
      windows: emb.map((e, i) => ({ embedding: e, conceptLogits: cl[i]! })),
    };
    this.#cache.set(img, v);
    return v;
  }

  // The evaluator's best guess of what a reference shows, among a vocabulary (the describe baseline's words).
  describe(img: RgbImage, vocabulary: string[]): { concept: string; style: string } {
    const w = this.embed(img);
    const concept = vocabulary.reduce((a, b) =>
      w.conceptLogits[this.conceptIndex(b)]! > w.conceptLogits[this.conceptIndex(a)]! ? b : a,
    );
    const st = this.evaluator.config.styles;
    const style = st[w.styleLogits.indexOf(Math.max(...w.styleLogits))]!;
    return { concept, style };
  }
}

// One output scored against what its prompt asked (the conditioning check and the prompt check): following (top-K
// among `vocabulary`, as `mumu eval`), the asked style (whole image) and the asked background colour.
export function scoreAsked(
  judge: Judge,
  im: RgbImage,
  asked: { named: string[]; style: string | null; background: string | null },
  vocabulary: string[],
): { following: number; style: number | null; background: number | null } {
  const v = judge.views(im);
  return {
    following: promptFollowing(
      asked.named.map((c) => judge.conceptIndex(c)),
      v.windows.map((w) => w.conceptLogits),
      vocabulary.map((c) => judge.conceptIndex(c)),
    ),
    style: asked.style === null ? null : styleAdherence(v.whole.styleLogits, judge.styleIndex(asked.style)).hit ? 1 : 0,
    background: asked.background === null ? null : backgroundColor(im) === asked.background ? 1 : 0,
  };
}
