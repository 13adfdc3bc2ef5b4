// The independent evaluator: a small CNN that judges generated images. It shares no weights, architecture or seed
// with any generator (a plain conv net, not the ViT/UNet/VAE), and is trained only on EmojiWorld renders (renders.ts)
// of every concept in every style. Three outputs:
//   - an L2-normalised embedding (the DreamBench CLIP-I / DINO analogue: cosine between reference and output);
//   - a concept head: a cosine classifier on that embedding, trained with a soft multi-label target (1/k on each of
//     the k objects of a scene), so it both recognises single objects and ranks the objects present in a scene;
//   - a style head on the pooled features (which emoji set drew the image).
import fs from 'node:fs';
import path from 'node:path';
import {
  Tensor,
  F,
  AdamW,
  tensor,
  empty,
  normal_,
  noGrad,
  tidy,
  saveSafetensors,
  loadSafetensors,
  clipGradNorm,
} from '../torch/index.ts';
import { Module, Conv2d, GroupNorm, Linear, seeded, parameter, initGenerator } from '../nn/index.ts';
import { resampleRGBA, toRGBA, type RawImage } from '../image/index.ts';
import { Rng, deriveSeed } from '../data/rng.ts';
import { RenderSource, evaluatorConcepts, evaluatorStyles, type Pair, type Render } from './renders.ts';

export interface EvaluatorConfig {
  image_size: number; // input side; larger images are area-downscaled to it
  channels: number[]; // stem width, then one stride-2 stage per further entry
  embed_dim: number;
  logit_scale: number; // cosine-classifier temperature
  concepts: string[]; // class index -> slug
  styles: string[]; // class index -> style id
  seed: number;
}

export const DEFAULT_EVALUATOR: Omit<EvaluatorConfig, 'concepts' | 'styles'> = {
  image_size: 32,
  channels: [24, 48, 96, 192],
  embed_dim: 128,
  logit_scale: 16,
  seed: 8675309,
};

class ConvNormAct extends Module {
  conv: Conv2d;
  norm: GroupNorm;
  constructor(cin: number, cout: number, stride: number) {
    super();
    this.conv = new Conv2d(cin, cout, 3, { stride, padding: 1 });
    this.norm = new GroupNorm(Math.min(8, cout), cout);
  }
  forward(x: Tensor): Tensor {
    return this.norm.forward(this.conv.forward(x)).silu();
  }
}

export interface EvaluatorOutput {
  embedding: Tensor; // (B, D), unit length
  conceptLogits: Tensor; // (B, concepts)
  styleLogits: Tensor; // (B, styles)
}

export class EmojiEvaluator extends Module {
  stem: ConvNormAct;
  blocks: ConvNormAct[];
  embed: Linear;
  concept_head: Tensor; // (concepts, D) class directions, normalised at use
  style_head: Linear;
  readonly conceptIndex: Map<string, number>;
  readonly styleIndex: Map<string, number>;

  constructor(readonly config: EvaluatorConfig) {
    super();
    const ch = config.channels;
    this.stem = new ConvNormAct(3, ch[0]!, 1);
    this.blocks = [];
    for (let k = 1; k < ch.length; k++)
      this.blocks.push(new ConvNormAct(ch[k - 1]!, ch[k]!, 2), new ConvNormAct(ch[k]!, ch[k]!, 1));
    const C = ch.at(-1)!;
    this.embed = new Linear(C, config.embed_dim);
    this.concept_head = parameter(normal_(empty([config.concepts.length, config.embed_dim]), 0, 1, initGenerator()));
    this.style_head = new Linear(C, config.styles.length);
    this.conceptIndex = new Map(config.concepts.map((s, i) => [s, i]));
    this.styleIndex = new Map(config.styles.map((s, i) => [s, i]));
  }

  // x: (B, 3, S, S) in [-1, 1]
  forward(x: Tensor): EvaluatorOutput {
    let h = this.stem.forward(x);
    for (const b of this.blocks) h = b.forward(h);
    const pooled = h.mean([2, 3]); // (B, C)
    const embedding = normalize(this.embed.forward(pooled));
    const conceptLogits = embedding.matmul(normalize(this.concept_head).T).mul(this.config.logit_scale);
    return { embedding, conceptLogits, styleLogits: this.style_head.forward(pooled) };
  }

  // Images (any size, RGB) -> outputs, without gradients.
  run(images: RawImage[]): EvaluatorOutput {
    return noGrad(() => this.forward(toInput(images, this.config.image_size)));
  }

  save(dir: string, extra: Record<string, unknown> = {}): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({ _class_name: 'EmojiEvaluator', ...this.config, ...extra }, null, 1) + '\n',
    );
    // float16 on disk keeps the shipped checkpoint small; the weights are float32 again at load
    const sd = Object.fromEntries(Object.entries(this.stateDict()).map(([k, t]) => [k, t.to('float16')]));
    saveSafetensors(path.join(dir, 'model.safetensors'), sd, { format: 'pt' });
  }

  static load(dir: string): EmojiEvaluator {
    const file = path.join(dir, 'config.json');
    if (!fs.existsSync(file))
      throw new Error(
        `${dir} is not an evaluator folder (no config.json); train one with 'mumu eval --train-evaluator'`,
      );
    const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as EvaluatorConfig & Record<string, unknown>;
    const config: EvaluatorConfig = {
      image_size: raw.image_size,
      channels: raw.channels,
      embed_dim: raw.embed_dim,
      logit_scale: raw.logit_scale,
      concepts: raw.concepts,
      styles: raw.styles,
      seed: raw.seed,
    };
    const m = seeded(config.seed, () => new EmojiEvaluator(config));
    const { tensors } = loadSafetensors(path.join(dir, 'model.safetensors'));
    m.loadStateDict(Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, t.float()])), { where: dir });
    return m.eval();
  }
}

export const normalize = (x: Tensor): Tensor => x.div(x.norm(2, -1, true).clamp(1e-8));

// RGB images -> (B, 3, S, S) in [-1, 1]. Area resampling (the renderer's own), so a 64 px output seen at 32 px looks
// like a 32 px render.
export function toInput(images: RawImage[], size: number): Tensor {
  const arr = new Float32Array(images.length * 3 * size * size);
  images.forEach((im, b) => {
    const rgba = resampleRGBA(toRGBA(im), size, size);
    const off = b * 3 * size * size;
    for (let i = 0; i < size * size; i++)
      for (let c = 0; c < 3; c++) arr[off + c * size * size + i] = rgba.data[i * 4 + c]! / 127.5 - 1;
  });
  return tensor(arr, { shape: [images.length, 3, size, size] });
}

// ---- training ----
export interface TrainEvaluatorOptions {
  steps: number;
  batchSize?: number;
  lr?: number;
  dataSeed?: number;
  config?: Partial<Omit<EvaluatorConfig, 'concepts' | 'styles'>>;
  concepts?: string[]; // default: every EmojiWorld concept
  styles?: string[];
  // this fraction of samples shows one of these concepts first (the suites' vocabulary): every concept is still
  // trained, and no generator output is ever used, but the concepts the reports rely on get more views
  focus?: { slugs: string[]; fraction: number };
  sceneFraction?: number; // share of 1-3 object scenes (the rest are single-object crops); default 0.3
  emptyFraction?: number; // share of backgrounds alone (uniform concept target); default 0
  log?: (s: string) => void;
}

export function newEvaluator(
  o: Pick<TrainEvaluatorOptions, 'config' | 'concepts' | 'styles'> & { init?: string } = {},
): EmojiEvaluator {
  if (o.init) return EmojiEvaluator.load(o.init).train();
  const config: EvaluatorConfig = {
    ...DEFAULT_EVALUATOR,
    ...o.config,
    concepts: o.concepts ?? evaluatorConcepts().map((c) => c.slug),
    styles: o.styles ?? evaluatorStyles(),
  };
  return seeded(config.seed, () => new EmojiEvaluator(config));
}

export function renderSourceFor(m: EmojiEvaluator): RenderSource {
  const wanted = new Set(m.config.concepts);
  return new RenderSource(
    evaluatorConcepts().filter((c) => wanted.has(c.slug)),
    m.config.styles,
    m.config.image_size,
  );
}

function targets(m: EmojiEvaluator, renders: Render[]): { concept: Tensor; style: Tensor } {
  const Nc = m.config.concepts.length;
  const soft = new Float32Array(renders.length * Nc);
  renders.forEach((r, b) => {
    // no object: the uniform target, so a background alone gives no confident concept
    if (!r.concepts.length) soft.fill(1 / Nc, b * Nc, (b + 1) * Nc);
    for (const s of r.concepts) soft[b * Nc + m.conceptIndex.get(s)!] = 1 / r.concepts.length;
  });
  const style = BigInt64Array.from(renders.map((r) => BigInt(r.style === null ? -100 : m.styleIndex.get(r.style)!)));
  return { concept: tensor(soft, { shape: [renders.length, Nc] }), style: tensor(style, { shape: [renders.length] }) };
}

// Cross-entropy against the soft multi-label target (Mahajan et al. 2018's recipe for multi-label softmax) plus the
// style cross-entropy.
export function evaluatorLoss(m: EmojiEvaluator, renders: Render[]): { loss: Tensor; concept: Tensor; style: Tensor } {
  const x = toInput(
    renders.map((r) => r.image),
    m.config.image_size,
  );
  const t = targets(m, renders);
  const out = m.forward(x);
  const concept = out.conceptLogits.logSoftmax(-1).mul(t.concept).sum(-1).mean().neg();
  const style = F.crossEntropy(out.styleLogits, t.style);
  return { loss: concept.add(style.mul(0.5)), concept, style };
}

export function trainEvaluator(
  m: EmojiEvaluator,
  o: TrainEvaluatorOptions,
): { steps: number; seconds: number; finalLoss: number } {
  const B = o.batchSize ?? 48;
  const lr = o.lr ?? 2e-3;
  const seed = o.dataSeed ?? 1;
  const log = o.log ?? (() => {});
  const src = renderSourceFor(m);
  const focusSet = new Set(o.focus?.slugs ?? []);
  const focusPairs = src.seen.filter((p) => focusSet.has(p.slug));
  m.train();
  const opt = new AdamW(m.parameters(), { lr, weightDecay: 1e-4 });
  const warm = Math.min(100, Math.floor(o.steps / 10));
  const t0 = performance.now();
  let ema = NaN;
  for (let step = 0; step < o.steps; step++) {
    const g = opt.groups[0]!;
    g.lr =
      step < warm
        ? (lr * (step + 1)) / warm
        : 0.5 * lr * (1 + Math.cos((Math.PI * (step - warm)) / Math.max(1, o.steps - warm)));
    const renders = Array.from({ length: B }, (_, j) => {
      const i = step * B + j;
      const focused =
        focusPairs.length > 0 && new Rng(deriveSeed(seed, i, 'evaluator:focus')).chance(o.focus!.fraction);
      return src.sample(
        focused ? focusPairs : src.seen,
        seed,
        i,
        'evaluator:train',
        o.sceneFraction ?? 0.3,
        o.emptyFraction ?? 0,
      );
    });
    const vals = tidy(() => {
      const { loss, concept, style } = evaluatorLoss(m, renders);
      opt.zeroGrad();
      loss.backward();
      clipGradNorm(m.parameters(), 2);
      opt.stepOnce();
      return [loss.item(), concept.item(), style.item()];
    });
    ema = Number.isNaN(ema) ? vals[0]! : 0.98 * ema + 0.02 * vals[0]!;
    if ((step + 1) % 50 === 0 || step === o.steps - 1) {
      const s = (performance.now() - t0) / 1000;
      log(
        `step ${step + 1}/${o.steps} loss ${ema.toFixed(3)} (concept ${vals[1]!.toFixed(3)}, style ${vals[2]!.toFixed(3)}) lr ${g.lr.toExponential(2)} ${s.toFixed(0)} s`,
      );
    }
  }
  m.eval();
  return { steps: o.steps, seconds: (performance.now() - t0) / 1000, finalLoss: ema };
}

// ---- its own accuracy, on renders it never saw ----
export interface AccuracyRow {
  set: string;
  n: number;
  top1: number; // concept top-1 over all concepts (scenes: every object in the top-k, k = objects)
  top5: number;
  vocabTop1: number | null; // top-1 among a small vocabulary (the eval suite's concepts), when given
  style: number;
}

export interface EvaluatorReport {
  rows: AccuracyRow[];
  vocabulary: string[];
}

// Held-out sets, each drawn from a stream the training never used ('evaluator:test'):
//   crops, seen drawings       fresh layouts/backgrounds/sizes of (style, concept) pairs it trained on
//   crops, withheld drawings   the ~5% of (style, concept) pairs it never saw at all
//   crops, emojione            fresh crops in emojione, the generator's held-out style
//   scenes, seen drawings      1-3 objects; top-1 = all k objects ranked in the top k
export function evaluatorReport(
  m: EmojiEvaluator,
  o: { n?: number; vocabulary?: string[]; seed?: number } = {},
): EvaluatorReport {
  const n = o.n ?? 400;
  const seed = o.seed ?? 2;
  const src = renderSourceFor(m);
  const vocab = (o.vocabulary ?? []).filter((s) => m.conceptIndex.has(s));
  const vocabSet = new Set(vocab);
  const emoji = src.seen.filter((p) => p.style === 'emojione');
  const sets: { name: string; renders: () => Render[] }[] = [
    {
      name: 'crops, seen drawings (fresh renders)',
      renders: () => draw(n, (i) => src.crop(pick(src.seen, seed, i, 'a'), rngFor(seed, i, 'a'))),
    },
    {
      name: 'crops, withheld drawings (never seen)',
      renders: () => src.withheld.slice(0, n).map((p, i) => src.crop(p, rngFor(seed, i, 'b'))),
    },
    {
      name: 'crops, emojione (held-out style of the generator)',
      renders: () => draw(emoji.length ? n : 0, (i) => src.crop(pick(emoji, seed, i, 'c'), rngFor(seed, i, 'c'))),
    },
    {
      name: 'scenes of 1-3 objects, seen drawings',
      renders: () => draw(n, (i) => src.sample(src.seen, seed, i, 'evaluator:test', 1)),
    },
  ];
  if (vocab.length) {
    const pairs = src.seen.filter((p) => vocabSet.has(p.slug));
    sets.push({
      name: `crops of the ${vocab.length} suite concepts`,
      renders: () => draw(pairs.length ? n : 0, (i) => src.crop(pick(pairs, seed, i, 'd'), rngFor(seed, i, 'd'))),
    });
    // the view prompt following relies on: 1-3 suite concepts in one scene, ranked among the suite's concepts
    sets.push({
      name: `scenes of 1-3 suite concepts`,
      renders: () =>
        draw(pairs.length ? n : 0, (i) => {
          const rng = rngFor(seed, i, 'f');
          const first = rng.pick(pairs);
          const same = pairs.filter((p) => p.style === first.style && p.slug !== first.slug).map((p) => p.slug);
          const k = Math.min(same.length, rng.int(3));
          return src.scene(first, rng.sample(same, k), rng);
        }),
    });
    // backgrounds alone: top-1 here = no suite concept reaches probability 0.5 (softmax over the suite's concepts)
    sets.push({
      name: 'backgrounds alone (top-1 = no suite concept at p >= 0.5)',
      renders: () => draw(n, (i) => src.empty(pick(src.seen, seed, i, 'g').style, rngFor(seed, i, 'g'))),
    });
    const withheld = src.withheld.filter((p) => vocabSet.has(p.slug));
    if (withheld.length)
      sets.push({
        name: `crops of the suite concepts, withheld drawings`,
        renders: () => withheld.map((p, i) => src.crop(p, rngFor(seed, i, 'e'))),
      });
  }
  const rows = sets.map(({ name, renders }) => {
    const rs = renders();
    let top1 = 0,
      top5 = 0,
      vtop = 0,
      style = 0;
    for (let k = 0; k < rs.length; k += 64) {
      const chunk = rs.slice(k, k + 64);
      const out = m.run(chunk.map((r) => r.image));
      const logits = out.conceptLogits.toList() as number[][];
      const st = out.styleLogits.argmax(-1).toList() as number[];
      chunk.forEach((r, b) => {
        if (!r.concepts.length) {
          const vi = vocab.map((x) => m.conceptIndex.get(x)!);
          const mx = Math.max(...vi.map((i) => logits[b]![i]!));
          const z = vi.reduce((a, i) => a + Math.exp(logits[b]![i]! - mx), 0);
          const none = 1 / z < 0.5 ? 1 : 0; // the top suite concept's probability is 1 / z
          top1 += none;
          top5 += none;
          vtop += none;
          if (r.style === null || m.config.styles[st[b]!] === r.style) style++;
          return;
        }
        const order = argsort(logits[b]!);
        const kk = r.concepts.length;
        const idx = r.concepts.map((s) => m.conceptIndex.get(s)!);
        if (idx.every((i) => order.indexOf(i) < kk)) top1++;
        if (idx.every((i) => order.indexOf(i) < kk + 4)) top5++;
        if (vocab.length) {
          const vo = vocab.map((s) => m.conceptIndex.get(s)!).sort((a, c) => logits[b]![c]! - logits[b]![a]!);
          if (idx.every((i) => vo.indexOf(i) >= 0 && vo.indexOf(i) < kk)) vtop++;
        }
        if (m.config.styles[st[b]!] === r.style) style++;
      });
    }
    const N = Math.max(1, rs.length);
    const vocabRelevant = vocab.length > 0 && rs.every((r) => r.concepts.every((s) => vocabSet.has(s)));
    // (backgrounds alone: the style column counts plain fills as right, as they have no style)
    return {
      set: name,
      n: rs.length,
      top1: top1 / N,
      top5: top5 / N,
      vocabTop1: vocabRelevant ? vtop / N : null,
      style: style / N,
    };
  });
  return { rows, vocabulary: vocab };
}

const rngFor = (seed: number, i: number, s: string) => new Rng(deriveSeed(seed, i, `evaluator:test:${s}`));
const pick = (pairs: Pair[], seed: number, i: number, s: string) => rngFor(seed, i, `pick:${s}`).pick(pairs);
const draw = (n: number, f: (i: number) => Render) => Array.from({ length: n }, (_, i) => f(i));
export const argsort = (xs: number[]): number[] => xs.map((_, i) => i).sort((a, b) => xs[b]! - xs[a]!);
