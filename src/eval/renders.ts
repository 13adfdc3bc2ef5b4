// The evaluator's own data: EmojiWorld renders of *every* concept in *every* style (the generator's held-out ones
// included: the judge must know what it judges), as single-object crops and as 1-3 object scenes. Drawn from its
// own seed stream, with its own withheld (concept, style) pairs, so its accuracy can be measured on drawings it never
// saw. Nothing here depends on how any generator was trained.
import { alphaOver, blank, hflip, type RawImage } from '../image/index.ts';
import { deriveSeed, hashString, Rng } from '../data/rng.ts';
import { drawBackgroundSpec, renderBackground } from '../data/emoji-world/background.ts';
import { STYLES, type Concept } from '../data/emoji-world/catalog.ts';
import { sprite } from '../data/emoji-world/render.ts';
import { EmojiWorld, layoutSquares } from '../data/emoji-world/scene.ts';

// About this percent of (style, concept) drawings are never shown to the evaluator in training: its accuracy on them
// says how well it recognises a concept in a drawing it has not seen (the situation of a generated image).
export const EVALUATOR_HELDOUT_PERCENT = 5;
export const isEvaluatorHeldOutPair = (style: string, slug: string) =>
  hashString(`evaluator-heldout:${style}/${slug}`) % 100 < EVALUATOR_HELDOUT_PERCENT;

// Every concept EmojiWorld can draw in all its training styles (the generator's training and held-out concepts),
// sorted by slug so the class index of a slug never depends on catalog order.
export function evaluatorConcepts(): Concept[] {
  const w = new EmojiWorld({ size: 64, seed: 0 });
  return [...w.trainConcepts, ...w.heldOutConcepts].sort((a, b) => (a.slug < b.slug ? -1 : 1));
}
export const evaluatorStyles = (): string[] => STYLES.map((s) => s.id);

export interface Render {
  image: RawImage; // RGB, size x size
  concepts: string[]; // slugs shown (none: background only)
  style: string | null; // null: a plain background has no style
  kind: 'crop' | 'scene' | 'empty';
}

export interface Pair {
  slug: string;
  style: string;
}

export class RenderSource {
  readonly seen: Pair[];
  readonly withheld: Pair[];
  readonly seenByStyle = new Map<string, string[]>();
  constructor(
    concepts: Concept[],
    styles: string[],
    readonly size: number,
  ) {
    const all = concepts.flatMap((c) =>
      c.styles.filter((s) => styles.includes(s)).map((style) => ({ slug: c.slug, style })),
    );
    this.seen = all.filter((p) => !isEvaluatorHeldOutPair(p.style, p.slug));
    this.withheld = all.filter((p) => isEvaluatorHeldOutPair(p.style, p.slug));
    for (const p of this.seen) {
      if (!this.seenByStyle.has(p.style)) this.seenByStyle.set(p.style, []);
      this.seenByStyle.get(p.style)!.push(p.slug);
    }
  }

  private background(rng: Rng, style: string): RawImage {
    // a third of crops sit on black, as the bootstrap pads crops with black (paper section 5)
    if (rng.chance(0.3)) return blank(this.size, this.size, 3);
    return renderBackground(drawBackgroundSpec(rng), this.size, style);
  }

  // One object filling most of the image, at a random offset, on a background: what a bootstrap crop or a window
  // of a generated scene around one object looks like.
  crop(pair: Pair, rng: Rng): Render {
    const S = this.size;
    const image = this.background(rng, pair.style);
    const side = Math.max(8, Math.round(rng.uniform(0.55, 1.0) * S));
    const sp = sprite(pair.style, pair.slug, side).image;
    alphaOver(image, sp, rng.intIn(0, S - side), rng.intIn(0, S - side));
    return { image: rng.chance(0.3) ? hflip(image) : image, concepts: [pair.slug], style: pair.style, kind: 'crop' };
  }

  // 1-3 objects of one style, sized and placed as EmojiWorld places them.
  scene(first: Pair, others: string[], rng: Rng): Render {
    const S = this.size;
    const n = 1 + others.length;
    const image = renderBackground(drawBackgroundSpec(rng), S, first.style);
    const slugs = [first.slug, ...others];
    layoutSquares(rng, n, S).forEach((b, k) => alphaOver(image, sprite(first.style, slugs[k]!, b.w).image, b.x, b.y));
    return { image, concepts: slugs, style: first.style, kind: 'scene' };
  }

  // No object: a background alone (a window of a generated image often is one). Scene backgrounds are emoji of the
  // style, so they keep their style label; plain fills have none.
  empty(style: string, rng: Rng): Render {
    const spec = drawBackgroundSpec(rng);
    const image = renderBackground(spec, this.size, style);
    return { image, concepts: [], style: spec.kind === 'scene' ? style : null, kind: 'empty' };
  }

  // Sample i of a stream: crops and scenes from the pairs given (the seen ones for training), and a share of
  // backgrounds alone.
  sample(pairs: Pair[], seed: number, i: number, stream: string, sceneFraction = 0.5, emptyFraction = 0): Render {
    const rng = new Rng(deriveSeed(seed, i, stream));
    const pair = rng.pick(pairs);
    if (emptyFraction > 0 && rng.chance(emptyFraction)) return this.empty(pair.style, rng);
    if (!rng.chance(sceneFraction)) return this.crop(pair, rng);
    const u = rng.next();
    const n = u < 0.4 ? 1 : u < 0.75 ? 2 : 3;
    const pool = this.seenByStyle.get(pair.style) ?? [pair.slug];
    const others: string[] = [];
    while (others.length < n - 1 && pool.length > n) {
      const s = rng.pick(pool);
      if (s !== pair.slug && !others.includes(s)) others.push(s);
    }
    return this.scene(pair, others, rng);
  }
}
