// Turn one captioned image into a multimodal prompt (paper section 4, training rules in section 5):
// pad to square -> detect the caption's phrases -> drop too-small / too-large crops -> keep at most 3 (stage 1)
// or one person/face crop (stage 2) -> person crops become head crops 70% of the time -> augment 20% of them ->
// insert each crop right before its words -> stage 1 adds a whole-image canny/sketch 30% of the time.
import { boxArea, clampBox, crop, gaussianNoise, grayscale, hflip, intersect, padToSquare, resize, type Box, type RawImage } from '../../image/index.ts';
import type { Rng } from '../rng.ts';
import type { Detection, Detector } from '../detect/types.ts';
import { findPhrase, isPersonPhrase } from '../detect/words.ts';
import { controlImage, type DepthEstimator } from './controls.ts';
import { insertImages, type ImageSegment, type Segment } from './prompt.ts';
import type { BootstrapConfig } from './rules.ts';

export type CropVerdict = 'ok' | 'too-small' | 'too-large';

// Area filter, relative to the square image's side so 64 px and 1024 px images keep the same crops.
export function cropVerdict(box: Box, side: number, cfg: Pick<BootstrapConfig, 'minCropAreaFrac' | 'maxCropAreaFrac'>): CropVerdict {
  const a = boxArea(box), full = side * side;
  if (a < cfg.minCropAreaFrac * full) return 'too-small';
  if (a > cfg.maxCropAreaFrac * full) return 'too-large';
  return 'ok';
}

export function headBox(face: Box, side: number, cfg: Pick<BootstrapConfig, 'headBoxScale' | 'headShiftUp'>): Box {
  const w = face.w * cfg.headBoxScale, h = face.h * cfg.headBoxScale;
  const cx = face.x + face.w / 2, cy = face.y + face.h / 2 - cfg.headShiftUp * face.h;
  return clampBox({ x: cx - w / 2, y: cy - h / 2, w, h }, side, side);
}

const iou = (a: Box, b: Box) => {
  const i = boxArea(intersect(a, b));
  return i / Math.max(1e-9, boxArea(a) + boxArea(b) - i);
};

export interface Candidate extends Detection { start: number; end: number }

// One crop per caption phrase occurrence (the best-scoring box), and one caption phrase per object: when two
// phrases found the same box ("tabby" and "cat" in "a tabby cat"), the earlier phrase keeps it, so the crop lands
// before the whole noun phrase.
export function candidates(caption: string, dets: readonly Detection[], alternatives: (phrase: string) => readonly string[] = () => []): Candidate[] {
  const located: Candidate[] = [];
  for (const d of dets) {
    const span = findPhrase(caption, d.phrase, alternatives(d.phrase));
    if (span) located.push({ ...d, ...span });
  }
  located.sort((a, b) => b.score - a.score || a.start - b.start);
  const bySpan: Candidate[] = [];
  for (const c of located) if (!bySpan.some((k) => c.start < k.end && k.start < c.end)) bySpan.push(c);
  bySpan.sort((a, b) => a.start - b.start);
  const out: Candidate[] = [];
  for (const c of bySpan) if (!out.some((k) => iou(k.box, c.box) > 0.8)) out.push(c);
  return out;
}

export interface AugmentResult { image: RawImage; ops: string[] }

// Random crop, flip, grayscale and noise; which ops run is drawn per image (section 5 names the four).
export async function augment(img: RawImage, rng: Rng, cfg: BootstrapConfig, size: number): Promise<AugmentResult> {
  let ops = ['crop', 'flip', 'gray', 'noise'].filter(() => rng.chance(cfg.augmentOpProb));
  if (ops.length === 0) ops = [rng.pick(['crop', 'flip', 'gray', 'noise'])];
  let out = img;
  if (ops.includes('crop')) {
    const w = Math.max(1, Math.round(img.width * rng.uniform(cfg.augmentMinCropSide, 1)));
    const h = Math.max(1, Math.round(img.height * rng.uniform(cfg.augmentMinCropSide, 1)));
    out = crop(out, { x: rng.intIn(0, img.width - w), y: rng.intIn(0, img.height - h), w, h });
  }
  out = await squareResize(out, size, cfg);
  if (ops.includes('flip')) out = hflip(out);
  if (ops.includes('gray')) out = grayscale(out);
  if (ops.includes('noise')) out = gaussianNoise(out, rng, cfg.augmentNoiseSigma);
  return { image: out, ops };
}

// Crops are padded to square with black like every image (section 5) and "resized up or down to meet their
// target resolution".
export async function squareResize(img: RawImage, size: number, cfg: Pick<BootstrapConfig, 'padColor'>): Promise<RawImage> {
  return resize(padToSquare(img, cfg.padColor).image, size, size);
}

export interface BootstrapInput {
  image: RawImage; // RGB, any shape; padded here
  caption: string;
  detector: Detector;
  phrases?: readonly string[]; // what to ask the detector for; default: the detector's own choice from the caption
  alternatives?: (phrase: string) => readonly string[]; // other words a detected phrase may appear as in the caption
  rng: Rng;
  config: BootstrapConfig;
  targetSize?: number; // resize the padded target to this side (default: keep)
  depth?: DepthEstimator;
}

export type DropCounts = { 'too-small': number; 'too-large': number; 'over-max': number; 'not-person': number };

export interface BootstrapSample {
  target: RawImage; // square, RGB
  prompt: Segment[];
  images: RawImage[]; // conditioning images, indexed by the image segments
  caption: string;
  dropped: DropCounts;
}

export async function bootstrapSample(input: BootstrapInput): Promise<BootstrapSample> {
  const { caption, detector, config: cfg } = input;
  const padded = padToSquare(input.image, cfg.padColor).image;
  const side = padded.width;
  // Separate streams per decision: adding a draw to one rule never shifts another rule's randomness.
  const rSelect = input.rng.fork('select'), rHead = input.rng.fork('head'), rAug = input.rng.fork('augment'), rCtl = input.rng.fork('control');

  const phrases = input.phrases ?? detector.phrasesFor?.(caption) ?? [];
  const dets = phrases.length ? await detector.detect(padded, phrases) : [];
  const dropped: DropCounts = { 'too-small': 0, 'too-large': 0, 'over-max': 0, 'not-person': 0 };
  const sized = dets.filter((d) => {
    const v = cropVerdict(d.box, side, cfg);
    if (v !== 'ok') dropped[v]++;
    return v === 'ok';
  });
  let chosen = candidates(caption, sized, input.alternatives);

  if (cfg.stage === 2) {
    // "a single high resolution face or person crop" (section 5): people first; others only when allowed.
    const people = chosen.filter((c) => isPersonPhrase(c.phrase) || c.label === 'person');
    if (cfg.stage2PersonOnly) {
      dropped['not-person'] += chosen.length - people.length;
      chosen = people;
    } else if (people.length) chosen = people;
  }
  if (chosen.length > cfg.maxCrops) {
    dropped['over-max'] += chosen.length - cfg.maxCrops;
    chosen = rSelect.sample(chosen, cfg.maxCrops).sort((a, b) => a.start - b.start);
  }

  const faces = chosen.some((c) => isPersonPhrase(c.phrase) || c.label === 'person') && detector.faces ? await detector.faces(padded) : [];
  const images: RawImage[] = [];
  const insertions: { at: number; segment: ImageSegment }[] = [];
  for (const c of chosen) {
    let box = clampBox(c.box, side, side);
    let role: ImageSegment['role'] = 'object';
    if (isPersonPhrase(c.phrase) || c.label === 'person') {
      const face = faces.find((f) => {
        const cx = f.box.x + f.box.w / 2, cy = f.box.y + f.box.h / 2;
        return cx >= box.x && cx <= box.x + box.w && cy >= box.y && cy <= box.y + box.h;
      });
      if (face && rHead.chance(cfg.headCropProb)) {
        box = headBox(face.box, side, cfg);
        role = 'head';
      }
    }
    const raw = crop(padded, box);
    const segment: ImageSegment = { type: 'image', index: images.length, role, phrase: c.phrase, box, score: c.score };
    if (rAug.chance(cfg.augmentProb)) {
      const a = await augment(raw, rAug, cfg, cfg.cropSize);
      images.push(a.image);
      segment.augment = a.ops;
    } else images.push(await squareResize(raw, cfg.cropSize, cfg));
    insertions.push({ at: c.start, segment });
  }

  const target = input.targetSize && input.targetSize !== side ? await resize(padded, input.targetSize, input.targetSize) : padded;
  if (cfg.stage === 1 && cfg.controlKinds.length && rCtl.chance(cfg.controlProb)) {
    const kind = rCtl.pick(cfg.controlKinds);
    const ctl = await controlImage(kind, await resize(padded, cfg.cropSize, cfg.cropSize), input.depth);
    insertions.push({ at: cfg.controlPosition === 'start' ? 0 : caption.length, segment: { type: 'image', index: images.length, role: 'control', control: kind } });
    images.push(ctl);
  }
  return { target, prompt: insertImages(caption, insertions), images, caption, dropped };
}
