// EmojiWorld scenes: 1-3 emoji objects of one style on a background, with a caption "content, style" and the
// ground-truth box of every object. Scene i is a pure function of (seed, split, i), so workers and resumed runs
// agree. Consecutive training scenes share one content drawn in several styles (paper section 4: "we paired each
// content with many different styles" to make the model separate content from style).
import { alphaOver, blank, boxArea, intersect, type Box, type RawImage } from '../../image/index.ts';
import { deriveSeed, Rng } from '../rng.ts';
import { backgroundPhrase, drawBackgroundSpec, renderBackground, BACKGROUND_WEIGHTS, type BackgroundKind, type BackgroundSpec } from './background.ts';
import { isHeldOutStyle, selectConcepts, STYLES, type Concept, type ConceptFilter, type Style } from './catalog.ts';
import { sprite } from './render.ts';

export type Split = 'train' | 'test';
// How a test scene is held out: an unseen concept in a seen style, a seen concept in the unseen style, or both.
export type HeldOutMode = 'concept' | 'style' | 'both';

export interface WorldOptions {
  size: number; // square side in px; 64 and 128 are the training sizes
  seed: number;
  split?: Split;
  concepts?: ConceptFilter;
  styles?: readonly string[]; // restrict to these style ids (held-out ones still only reach the test split)
  stylesPerContent?: number;
  // Scene difficulty, for small training budgets: relative weights of 1, 2, 3 objects (default
  // OBJECT_COUNT_WEIGHTS) and of the background kinds (default BACKGROUND_WEIGHTS). Absent kinds are never drawn.
  objectCounts?: readonly number[];
  backgrounds?: Readonly<Partial<Record<BackgroundKind, number>>>;
}

// Number of objects: 1, 2 or 3 with these probabilities.
export const OBJECT_COUNT_WEIGHTS = [0.4, 0.35, 0.25] as const;
// Object side as a fraction of the image side, by object count: fewer objects are drawn larger.
export const OBJECT_SCALE: readonly (readonly [number, number])[] = [[0.45, 0.8], [0.3, 0.55], [0.25, 0.45]];
// Bounded occlusion: two objects' squares may share at most this fraction of the smaller square.
export const MAX_OVERLAP = 0.3;
export const STYLES_PER_CONTENT = 4;

export interface SceneObject {
  slug: string;
  phrase: string; // the words in the caption that name it ("dog face")
  words: string[]; // other words it answers to (CLDR tags), for synonym matching
  box: Box; // tight box of its visible pixels
  heldOut: boolean;
}

export interface Scene {
  index: number;
  split: Split;
  heldOut?: HeldOutMode;
  size: number;
  style: string;
  background: BackgroundSpec;
  objects: SceneObject[];
  caption: string;
  image: RawImage; // RGB
}

export const article = (w: string) => (/^[aeiou]/.test(w) ? 'an' : 'a');

// The layout of every EmojiWorld-style picture (scenes, the evaluator's renders, the eval references): n squares
// inside a size x size image, sides drawn from OBJECT_SCALE for n objects (at least 8 px), each overlapping any
// other by at most MAX_OVERLAP of the smaller one; every 20 failed tries shrink the side, and after 200 the square
// is placed anyway. Drawn from the caller's stream: a scene's content stream, so all styles of a content share it.
export function layoutSquares(rng: Rng, n: number, size: number): Box[] {
  const [lo, hi] = OBJECT_SCALE[Math.min(n, OBJECT_SCALE.length) - 1]!;
  const out: Box[] = [];
  for (let k = 0; k < n; k++) {
    let side = Math.max(8, Math.round(rng.uniform(lo, hi) * size));
    let placed: Box | undefined;
    for (let attempt = 0; !placed; attempt++) {
      if (attempt > 0 && attempt % 20 === 0) side = Math.max(8, Math.round(side * 0.85));
      const b = { x: rng.intIn(0, size - side), y: rng.intIn(0, size - side), w: side, h: side };
      const ok = out.every((o) => boxArea(intersect(o, b)) <= MAX_OVERLAP * Math.min(boxArea(o), boxArea(b)));
      if (ok || attempt > 200) placed = b;
    }
    out.push(placed);
  }
  return out;
}

// "a dog face, a sun and a rocket", with where each phrase starts (crops go right before their words).
export function phraseList(phrases: string[]): { text: string; at: number[] } {
  let text = '';
  const at: number[] = [];
  phrases.forEach((p, i) => {
    text += `${i === 0 ? '' : i === phrases.length - 1 ? ' and ' : ', '}${article(p)} `;
    at.push(text.length);
    text += p;
  });
  return { text, at };
}

export const joinPhrases = (phrases: string[]): string => phraseList(phrases).text;

// Objects of one style on a plain colour, laid out as scenes are (layoutSquares), with each object's tight box: the
// evaluator's references and style images, and the trainer's style references (data.style_references).
export function drawObjects(rng: Rng, slugs: readonly string[], style: string, color: readonly number[], size: number): { image: RawImage; boxes: Box[] } {
  const image = blank(size, size, 3, color);
  const boxes = layoutSquares(rng, slugs.length, size).map((b, k) => {
    const sp = sprite(style, slugs[k]!, b.w);
    alphaOver(image, sp.image, b.x, b.y);
    return { x: b.x + sp.tight.x, y: b.y + sp.tight.y, w: sp.tight.w, h: sp.tight.h };
  });
  return { image, boxes };
}

export class EmojiWorld {
  readonly opts: Required<Omit<WorldOptions, 'concepts' | 'styles'>> & Pick<WorldOptions, 'concepts' | 'styles'>;
  private readonly countWeights: readonly number[];
  readonly trainStyles: Style[];
  readonly heldOutStyles: Style[];
  readonly trainConcepts: Concept[];
  readonly heldOutConcepts: Concept[];

  constructor(opts: WorldOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 16) throw new Error(`EmojiWorld: size must be an integer >= 16, got ${opts.size}`);
    this.opts = { split: 'train', stylesPerContent: STYLES_PER_CONTENT, objectCounts: OBJECT_COUNT_WEIGHTS, backgrounds: BACKGROUND_WEIGHTS, ...opts };
    const counts = this.opts.objectCounts, bgs = Object.entries(this.opts.backgrounds);
    const bad = (ws: number[]) => ws.some((w) => !(w >= 0) || !Number.isFinite(w)) || !ws.some((w) => w > 0);
    if (counts.length < 1 || counts.length > OBJECT_COUNT_WEIGHTS.length || bad([...counts])) {
      throw new Error(`EmojiWorld: objectCounts must be 1-${OBJECT_COUNT_WEIGHTS.length} non-negative weights (for 1, 2, 3 objects), not all zero; got ${JSON.stringify(counts)}`);
    }
    const unknown = bgs.find(([k]) => !(k in BACKGROUND_WEIGHTS));
    if (unknown) throw new Error(`EmojiWorld: unknown background kind '${unknown[0]}' (one of ${Object.keys(BACKGROUND_WEIGHTS).join(', ')})`);
    if (bad(bgs.map(([, w]) => w))) throw new Error(`EmojiWorld: background weights must be non-negative and not all zero; got ${JSON.stringify(this.opts.backgrounds)}`);
    const sum = counts.reduce((a, b) => a + b, 0);
    this.countWeights = counts.map((w) => w / sum);
    const styles = STYLES.filter((s) => !opts.styles || opts.styles.includes(s.id));
    this.trainStyles = styles.filter((s) => !isHeldOutStyle(s.id));
    this.heldOutStyles = styles.filter((s) => isHeldOutStyle(s.id));
    // A concept must exist in every training style, so one content can be drawn in all of them.
    const usable = selectConcepts(opts.concepts).filter((c) => this.trainStyles.every((s) => c.styles.includes(s.id)));
    this.trainConcepts = usable.filter((c) => !c.heldOut);
    this.heldOutConcepts = usable.filter((c) => c.heldOut);
    if (this.trainStyles.length === 0) throw new Error('EmojiWorld: no training style left after the style filter');
    if (this.trainConcepts.length < 3) throw new Error(`EmojiWorld: only ${this.trainConcepts.length} training concepts match the filter (need 3)`);
  }

  // Which held-out modes this world can draw (the style modes need a held-out style that draws the concepts).
  private testModes(): { mode: HeldOutMode; styles: Style[]; first: Concept[]; rest: Concept[] }[] {
    const inStyle = (cs: Concept[], st: Style[]) => cs.filter((c) => st.every((s) => c.styles.includes(s.id)));
    const modes = [
      { mode: 'concept' as const, styles: this.trainStyles, first: this.heldOutConcepts, rest: this.trainConcepts },
      ...this.heldOutStyles.map((s) => ({ mode: 'style' as const, styles: [s], first: inStyle(this.trainConcepts, [s]), rest: inStyle(this.trainConcepts, [s]) })),
      ...this.heldOutStyles.map((s) => ({ mode: 'both' as const, styles: [s], first: inStyle(this.heldOutConcepts, [s]), rest: inStyle([...this.trainConcepts, ...this.heldOutConcepts], [s]) })),
    ];
    return modes.filter((m) => m.first.length > 0 && m.rest.length >= 2);
  }

  // `background` replaces the drawn one (the draw still happens, so the layout and every other draw are the scene's
  // own): the same objects at the same places on another background (data.reference_backgrounds).
  scene(index: number, background?: BackgroundSpec): Scene {
    const { size, seed, split } = this.opts;
    const perContent = split === 'train' ? Math.max(1, this.opts.stylesPerContent) : 1;
    const content = Math.floor(index / perContent);
    const rng = new Rng(deriveSeed(seed, content, `emoji-world:${split}`));

    let styles: Style[], first: Concept[], rest: Concept[], heldOut: HeldOutMode | undefined;
    if (split === 'train') {
      styles = this.trainStyles;
      first = rest = this.trainConcepts;
    } else {
      const modes = this.testModes();
      if (modes.length === 0) throw new Error('EmojiWorld: the concept/style filter leaves nothing to hold out for the test split');
      ({ mode: heldOut, styles, first, rest } = rng.pick(modes));
    }
    const style = rng.shuffle(styles)[(index % perContent) % styles.length]!;

    let u = rng.next(), n = 1;
    for (let k = 0; k < this.countWeights.length; k++) if ((u -= this.countWeights[k]!) < 0) { n = k + 1; break; }
    const picked: Concept[] = [rng.pick(first)];
    while (picked.length < n) {
      const c = rng.pick(rest);
      if (!picked.some((p) => p.slug === c.slug)) picked.push(c);
    }

    const squares = layoutSquares(rng, n, size);
    const drawn = drawBackgroundSpec(rng, this.opts.backgrounds as Partial<Record<BackgroundKind, number>>);
    background ??= drawn;
    const image = renderBackground(background, size, style.id);
    const objects: SceneObject[] = picked.map((c, k) => {
      const sq = squares[k]!;
      const sp = sprite(style.id, c.slug, sq.w);
      alphaOver(image, sp.image, sq.x, sq.y);
      return {
        slug: c.slug,
        phrase: c.label,
        words: c.tags,
        box: { x: sq.x + sp.tight.x, y: sq.y + sp.tight.y, w: sp.tight.w, h: sp.tight.h },
        heldOut: c.heldOut,
      };
    });
    const caption = `${joinPhrases(picked.map((c) => c.label))} on ${article(backgroundPhrase(background))} ${backgroundPhrase(background)} background, ${style.phrase} style`;
    return { index, split, heldOut, size, style: style.id, background, objects, caption, image };
  }

}
