// The evaluation suites: fixed prompts, references and seeds (configs/eval-<suite>.json), turned into cases. A case
// is one multimodal prompt with its reference images and what the metrics should look for; each task kind follows
// one claim of the paper:
//   same-image       crops of the target inserted before their words: the training distribution (paper section 4)
//   harmonise        references drawn in different styles, the text asks for one style (Finding 2)
//   style-transfer   the style comes only from an image of other objects in that style (Finding 3)
//   tokens-per-image the same-image prompts with references reduced to r x r px before encoding, and encoded at
//                    other input sides, i.e. other tokens per image (Finding 1)
//   lora-merge       the MUMU UNet LoRA merged into a single-style fine-tune of the base UNet (Finding 4)
//   character        one reference object across several prompts (Finding 5: detail consistency)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crop, padToSquare, areaResize, type Box, type RgbImage } from '../image/index.ts';
import { deriveSeed, Rng } from '../data/rng.ts';
import { COLORS } from '../data/emoji-world/background.ts';
import { STYLES, allConcepts, isHeldOutConcept, isHeldOutStyle } from '../data/emoji-world/catalog.ts';
import { drawObjects, phraseList, article } from '../data/emoji-world/scene.ts';
import { insertImages, toPromptSegments } from '../data/bootstrap/prompt.ts';
import type { PromptSegment } from '../prompt/parse.ts';

interface SceneItem {
  concepts: string[];
  style: string;
  background: string;
}
export type TaskSpec =
  | { kind: 'same-image'; items: SceneItem[] }
  | { kind: 'harmonise'; items: (SceneItem & { ref_styles: string[] })[] }
  | { kind: 'style-transfer'; items: (SceneItem & { style_ref: string[] })[] }
  | {
      kind: 'tokens-per-image';
      items: SceneItem[];
      models?: { label: string; dir: string }[];
      reference_resolutions?: number[]; // detail: references area-reduced to r x r px (0 = full detail), native input side
      reference_sizes?: number[]; // input side in px (a multiple of the ViT's patch): (side / patch)^2 tokens per image
      reference_size_items?: number; // only the first n items at the reference sizes (default all)
      reference_size_seeds?: number[]; // seeds for the reference-size cases (default the suite's)
    }
  | { kind: 'lora-merge'; finetune: string; finetune_style: string; items: SceneItem[] }
  | {
      kind: 'character';
      reference: { concept: string; style: string };
      contexts: { others: string[]; background: string }[];
    };

export interface Suite {
  name: string;
  steps: number;
  guidance_scale: number;
  seeds: number[];
  reference_seed: number;
  vocabulary: string[];
  tasks: TaskSpec[];
}

const CONFIGS = fileURLToPath(new URL('../../configs/', import.meta.url));
const KINDS = ['same-image', 'harmonise', 'style-transfer', 'tokens-per-image', 'lora-merge', 'character'];

// 'quick' / 'full' name configs/eval-<name>.json; anything else is a path.
export function readSuite(nameOrFile: string): Suite {
  const file = /^[a-z0-9-]+$/.test(nameOrFile) ? path.join(CONFIGS, `eval-${nameOrFile}.json`) : nameOrFile;
  if (!fs.existsSync(file)) throw new Error(`no evaluation suite '${nameOrFile}' (looked for ${file})`);
  const s = JSON.parse(fs.readFileSync(file, 'utf8')) as Suite;
  const known = new Set(allConcepts().map((c) => c.slug));
  const styles = new Set(STYLES.map((x) => x.id));
  const where = `suite ${file}`;
  for (const k of ['name', 'steps', 'guidance_scale', 'seeds', 'reference_seed', 'vocabulary', 'tasks'] as const) {
    if (s[k] === undefined) throw new Error(`${where}: missing '${k}'`);
  }
  const checkConcept = (c: string) => {
    if (!known.has(c)) throw new Error(`${where}: unknown concept '${c}'`);
  };
  const checkStyle = (x: string) => {
    if (!styles.has(x)) throw new Error(`${where}: unknown style '${x}'`);
  };
  const checkBg = (b: string) => {
    if (!(b in COLORS)) throw new Error(`${where}: background '${b}' is not one of ${Object.keys(COLORS).join(', ')}`);
  };
  s.vocabulary.forEach(checkConcept);
  for (const t of s.tasks) {
    if (!KINDS.includes(t.kind))
      throw new Error(`${where}: unknown task kind '${t.kind}' (one of ${KINDS.join(', ')})`);
    if (t.kind === 'character') {
      checkConcept(t.reference.concept);
      checkStyle(t.reference.style);
      for (const c of t.contexts) {
        c.others.forEach(checkConcept);
        checkBg(c.background);
      }
    } else {
      for (const it of t.items) {
        it.concepts.forEach(checkConcept);
        checkStyle(it.style);
        checkBg(it.background);
        if ('ref_styles' in it) it.ref_styles.forEach(checkStyle);
        if ('style_ref' in it) it.style_ref.forEach(checkConcept);
      }
      if (t.kind === 'lora-merge') checkStyle(t.finetune_style);
      if (t.kind === 'tokens-per-image') {
        const ints = (k: string, v: unknown, min: number) => {
          if (v !== undefined && (!Array.isArray(v) || v.some((x) => !Number.isInteger(x) || x < min)))
            throw new Error(`${where}: ${k} must be a list of integers >= ${min}`);
        };
        ints('reference_resolutions', t.reference_resolutions, 0);
        ints('reference_sizes', t.reference_sizes, 1);
        ints('reference_size_seeds', t.reference_size_seeds, 0);
        if (
          t.reference_size_items !== undefined &&
          !(Number.isInteger(t.reference_size_items) && t.reference_size_items >= 1)
        )
          throw new Error(`${where}: reference_size_items must be a positive integer`);
      }
    }
  }
  return s;
}

// ---- rendering the references and the ground truth ----
const labelOf = (() => {
  let m: Map<string, string> | undefined;
  return (slug: string) => (m ??= new Map(allConcepts().map((c) => [c.slug, c.label]))).get(slug)!;
})();
const stylePhrase = (id: string) => STYLES.find((s) => s.id === id)!.phrase;

export interface RenderedScene {
  image: RgbImage;
  boxes: Box[];
}

// An EmojiWorld-style scene with the given objects, style and solid background (layout from the content seed, as
// EmojiWorld does, so the same content in another style has the same layout).
export function renderScene(
  concepts: string[],
  style: string,
  background: string,
  size: number,
  seed: number,
): RenderedScene {
  const rng = new Rng(deriveSeed(seed, 0, `eval-scene:${concepts.join('+')}`));
  const { image, boxes } = drawObjects(rng, concepts, style, COLORS[background]!, size);
  return { image: image as RgbImage, boxes };
}

// A bootstrap crop (paper section 4-5): the object's box cut from the scene, padded to a square with black.
export function cropObject(scene: RenderedScene, k: number): RgbImage {
  return padToSquare(crop(scene.image, scene.boxes[k]!)).image as RgbImage;
}

// ---- cases ----
export interface Reference {
  image: RgbImage;
  concept: string | null;
  style: string;
  role: 'object' | 'style';
}

export interface Case {
  task: TaskSpec['kind'];
  id: string;
  segments: PromptSegment[]; // the multimodal prompt
  caption: string; // the same prompt with words only (what the text-only model gets)
  references: Reference[];
  named: string[]; // concepts the output should show
  style: string; // the style the output should have
  leak: string[]; // concepts of a style reference that should NOT appear
  split: 'train' | 'held-out'; // held-out: some concept or the style was never in generator training
  setting?: string; // tokens-per-image: the reference resolution or input side
  referenceSize?: number; // tokens-per-image: encode the references at this side (px) instead of the native one
  tokensPerImage?: number; // ... which gives this many tokens per image (set when a model is loaded)
  seeds?: number[]; // instead of the suite's seeds
  group?: string; // tokens-per-image: the item all its settings share (one unrelated control for all of them)
  oracle: RgbImage; // the EmojiWorld render of what is asked (an upper reference, not a generation)
  // an object the prompt does not ask for, drawn like the first reference: its preservation score against the
  // output is the chance level of the best-window statistic
  control: RgbImage | null;
}

export interface CaseOptions {
  outSize: number;
  refSize?: number;
}

function split(concepts: string[], styles: string[]): Case['split'] {
  return concepts.some(isHeldOutConcept) || styles.some(isHeldOutStyle) ? 'held-out' : 'train';
}

// The object references of a case: crop j shows concept j in style styleOf(j).
function objectReferences(crops: RgbImage[], concepts: string[], styleOf: (j: number) => string): Reference[] {
  return crops.map((image, j) => ({ image, concept: concepts[j]!, style: styleOf(j), role: 'object' }));
}

// "a <img> dog face and a <img> rocket on a blue background, noto style": each crop right before its words, as the
// bootstrap inserts them (paper section 4); a null reference leaves its words alone.
function promptWithCrops(
  concepts: string[],
  refs: (RgbImage | null)[],
  tail: string,
): { segments: PromptSegment[]; caption: string } {
  const { text, at } = phraseList(concepts.map(labelOf));
  const caption = text + tail;
  const images = refs.flatMap((r, i) =>
    r ? [{ at: at[i]!, segment: { type: 'image' as const, index: i, role: 'object' as const } }] : [],
  );
  return { segments: toPromptSegments(insertImages(caption, images), refs), caption };
}

function degrade(img: RgbImage, r: number): RgbImage {
  if (!r) return img;
  const small = areaResize(img, r);
  const data = new Uint8Array(img.width * img.height * 3);
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++) {
      const sx = Math.floor((x * r) / img.width),
        sy = Math.floor((y * r) / img.height);
      for (let c = 0; c < 3; c++) data[(y * img.width + x) * 3 + c] = small.data[(sy * r + sx) * 3 + c]!;
    }
  return { width: img.width, height: img.height, channels: 3, data };
}

export function buildCases(suite: Suite, o: CaseOptions): Case[] {
  const out = o.outSize;
  const R = o.refSize ?? Math.max(64, 2 * out); // scenes drawn at twice the output side, as training does
  const seed = suite.reference_seed;
  const cases: Case[] = [];
  const oracleOf = (concepts: string[], style: string, bg: string) =>
    areaResize(renderScene(concepts, style, bg, R, seed).image, out);
  const tailOf = (bg: string, style: string | null) =>
    ` on ${article(bg)} ${bg} background${style ? `, ${stylePhrase(style)} style` : ''}`;
  suite.tasks.forEach((t, ti) => {
    const id = (k: number, extra = '') => `${t.kind}-${ti}-${k}${extra}`;
    switch (t.kind) {
      case 'same-image':
      case 'tokens-per-image': {
        const tok = t.kind === 'tokens-per-image';
        const settings = tok ? (t.reference_resolutions ?? []) : [0];
        t.items.forEach((it, k) => {
          const scene = renderScene(it.concepts, it.style, it.background, R, seed);
          const crops = it.concepts.map((_, j) => cropObject(scene, j));
          // one case of this item: the prompt shows `refs`, the scores compare against the full-detail crops
          const objectCase = (refs: (RgbImage | null)[], caseId: string, extra: Partial<Case>): Case => ({
            task: t.kind,
            id: caseId,
            ...promptWithCrops(it.concepts, refs, tailOf(it.background, it.style)),
            references: objectReferences(crops, it.concepts, () => it.style),
            named: it.concepts,
            style: it.style,
            leak: [],
            split: split(it.concepts, [it.style]),
            oracle: areaResize(scene.image, out),
            control: null,
            ...extra,
          });
          for (const r of settings) {
            const refs = crops.map((c) => degrade(c, r));
            cases.push(
              tok
                ? objectCase(refs, id(k, `-r${r || 'full'}`), { setting: r ? `${r}x${r} px` : 'full', group: id(k) })
                : objectCase(refs, id(k), {}),
            );
          }
          // the full-detail references at other input sides (other tokens per image); the side is checked against
          // the model's ViT when the cases run
          if (!tok || k >= (t.reference_size_items ?? t.items.length)) return;
          for (const px of t.reference_sizes ?? [])
            cases.push(
              objectCase(crops, id(k, `-s${px}`), {
                setting: `${px}x${px} px input`,
                referenceSize: px,
                seeds: t.reference_size_seeds,
                group: id(k),
              }),
            );
        });
        break;
      }
      case 'harmonise':
        t.items.forEach((it, k) => {
          const crops = it.concepts.map((c, j) =>
            cropObject(renderScene([c], it.ref_styles[j % it.ref_styles.length]!, it.background, R, seed + j), 0),
          );
          const { segments, caption } = promptWithCrops(it.concepts, crops, tailOf(it.background, it.style));
          cases.push({
            task: t.kind,
            id: id(k),
            segments,
            caption,
            references: objectReferences(crops, it.concepts, (j) => it.ref_styles[j % it.ref_styles.length]!),
            named: it.concepts,
            style: it.style,
            leak: [],
            split: split(it.concepts, [it.style, ...it.ref_styles]),
            oracle: oracleOf(it.concepts, it.style, it.background),
            control: null,
          });
        });
        break;
      case 'style-transfer':
        t.items.forEach((it, k) => {
          // the style image: other objects in the wanted style, on black; the text never names the style
          const ref = areaResize(renderScene(it.style_ref, it.style, 'black', R, seed + 99).image, R);
          const { segments: head, caption } = promptWithCrops(
            it.concepts,
            it.concepts.map(() => null),
            tailOf(it.background, null),
          );
          const last = head.pop() as string;
          // the image stands where the style's name stands in training captions ("..., openmoji style")
          const segments: PromptSegment[] = [...head, `${last}, `, { image: ref }, ' style'];
          cases.push({
            task: t.kind,
            id: id(k),
            segments,
            caption: `${caption}, ${stylePhrase(it.style)} style`,
            references: [{ image: ref, concept: null, style: it.style, role: 'style' }],
            named: it.concepts,
            style: it.style,
            leak: it.style_ref,
            split: split(it.concepts, [it.style]),
            oracle: oracleOf(it.concepts, it.style, it.background),
            control: null,
          });
        });
        break;
      case 'lora-merge':
        t.items.forEach((it, k) => {
          const scene = renderScene(it.concepts, it.style, it.background, R, seed);
          const crops = it.concepts.map((_, j) => cropObject(scene, j));
          // no style words: the style should come from the fine-tuned UNet
          const { segments, caption } = promptWithCrops(it.concepts, crops, tailOf(it.background, null));
          cases.push({
            task: t.kind,
            id: id(k),
            segments,
            caption,
            references: objectReferences(crops, it.concepts, () => it.style),
            named: it.concepts,
            style: t.finetune_style,
            leak: [],
            split: split(it.concepts, [it.style]),
            oracle: oracleOf(it.concepts, t.finetune_style, it.background),
            control: null,
          });
        });
        break;
      case 'character': {
        const { concept, style } = t.reference;
        const ref = cropObject(renderScene([concept], style, 'white', R, seed), 0);
        t.contexts.forEach((c, k) => {
          const concepts = [concept, ...c.others];
          const { segments, caption } = promptWithCrops(
            concepts,
            concepts.map((_, j) => (j === 0 ? ref : null)),
            tailOf(c.background, style),
          );
          cases.push({
            task: t.kind,
            id: id(k),
            segments,
            caption,
            references: [{ image: ref, concept, style, role: 'object' }],
            named: concepts,
            style,
            leak: [],
            split: split(concepts, [style]),
            oracle: oracleOf(concepts, style, c.background),
            control: null,
          });
        });
        break;
      }
    }
  });
  for (const c of cases) {
    const first = c.references.find((r) => r.role === 'object');
    if (!first) continue;
    const drawn = new Set(
      allConcepts()
        .filter((k) => k.styles.includes(first.style))
        .map((k) => k.slug),
    );
    const pool = suite.vocabulary.filter((v) => drawn.has(v) && !c.named.includes(v) && !c.leak.includes(v));
    if (!pool.length) continue;
    const pick = pool[new Rng(deriveSeed(seed, 0, `control:${c.group ?? c.id}`)).int(pool.length)]!;
    c.control = cropObject(renderScene([pick], first.style, 'white', R, seed), 0);
  }
  return cases;
}

export const conceptLabel = labelOf;
export { stylePhrase };
