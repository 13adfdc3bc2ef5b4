// Training data, generated on the fly from EmojiWorld: item i of a stage is a pure function of (data seed, i), the
// same scene and bootstrap draws `mumu bootstrap` would write to shard sample i. So the data position of a run is
// just its micro-batch counter, and a resumed run reads exactly the batches the killed one would have.
//
// Data parallel: optimizer step s reads items s*B .. s*B+B-1 (B = batch_size, the global batch) in grad_accum
// micro-batches of M = B / grad_accum, and rank r of N takes the positions j = r (mod N) of each (src/data/split.ts,
// the rule the shard reader uses too). So the ranks together read exactly the single-process stream, in any world size.
//
// Prompts and reference images go through src/prompt (encodePrompt, collatePrompts), the code generation uses, so
// what the model learns from is exactly what it is asked at generation: the same tokenising, the same image
// preparation (pad to square with black and resize in one pass), the same collation.
//
// Batches are built ahead of the trainer (data.prefetch of them); the trainer measures how long it still waits.
import type { WorldOptions } from '../data/emoji-world/scene.ts';
import {
  EmojiWorld,
  SCENE_BACKGROUNDS,
  STYLES,
  COLORS,
  allConcepts,
  DEFAULT_GROUPS,
} from '../data/emoji-world/index.ts';
import { bootstrapSample } from '../data/bootstrap/bootstrap.ts';
import { defaultConfig, type BootstrapConfig } from '../data/bootstrap/rules.ts';
import type { Scene } from '../data/emoji-world/scene.ts';
import { plainBackground, recutReferences, styleReference, type Referenced } from './references.ts';
import { GroundTruthDetector } from '../data/detect/ground-truth.ts';
import { crop, clampBox, type RawImage } from '../image/index.ts';
import { deriveSeed, Rng } from '../data/rng.ts';
import { rankPositions } from '../data/split.ts';
import { readManifest } from '../data/shards/run.ts';
import { readShard } from '../data/shards/tar.ts';
import { parseSample, decodeSample, type EncodedSample } from '../data/shards/reader.ts';
import type { Segment } from '../data/bootstrap/prompt.ts';
import path from 'node:path';
import { tensor, type Tensor } from '../torch/index.ts';
import {
  encodePrompt,
  collatePrompts,
  prepareImage,
  type PromptSpec,
  type EncodedPrompt,
  type PromptSegment,
} from '../prompt/index.ts';
import type { TrainConfig } from './config.ts';
import type { WordTokens } from './anchor.ts';

// The EmojiWorld vocabulary, in a fixed order: caption glue, style and background words, then every concept label
// of the default groups (about 1.8k words, inside the default models' 4096-token vocabulary).
export function emojiVocabulary(): string[] {
  const words = [
    'a',
    'an',
    'and',
    'on',
    'background',
    'style',
    ',',
    'to',
    'gradient',
    'striped',
    'checkered',
    'polka',
    'dot',
  ];
  words.push(...STYLES.map((s) => s.phrase), ...Object.keys(COLORS), ...Object.values(SCENE_BACKGROUNDS));
  words.push(
    ...allConcepts()
      .filter((c) => DEFAULT_GROUPS.includes(c.group))
      .map((c) => c.label),
  );
  return words;
}

// One training example as plain arrays (cheap to move between threads).
export interface Item {
  index: number; // position in the stage's data stream: the item is a function of (data seed, index)
  caption: string;
  image?: Float32Array; // (3, S, S) in [-1, 1]: the target (vae, diffusion stages)
  // the prompt as the pipeline encodes it (t2i: text; vlm: the image then the caption; mumu: interleaved)
  prompt?: EncodedPrompt;
  // the same prompt as pipeline input (text and pixel segments), for sample grids drawn through the pipeline
  segments?: PromptSegment[];
  labels?: number[]; // vlm: next-token targets, -100 where ignored
  dropped?: boolean; // the prompt was replaced by the empty prompt (CFG dropout)
}

export interface Batch {
  indices: number[]; // the items' stream positions (their random draws derive from them)
  captions: string[];
  images: Tensor | null; // (B, 3, S, S)
  ids: Tensor | null; // (B, T) int64, right-padded
  mask: Tensor | null; // (B, T) float, 1 = token
  labels: Tensor | null; // (B, T) int64
  pixels: Tensor | null; // (N, 3, s, s), prompt 0's images first
  dropped: number;
  words?: WordTokens; // the prompts' word tokens, for the MUMU stage's text anchor (src/train/anchor.ts)
}

// The target: a shard's image padded square with black and resized to the training side, as the pipeline prepares
// references (one preparation for every image mumu reads).
async function squareTarget(img: RawImage, side: number): Promise<RawImage> {
  const p = await prepareImage(img, side);
  return { width: side, height: side, channels: 3, data: p.rgb };
}

export function toCHW(img: RawImage): Float32Array {
  const { width: W, height: H, channels: C, data } = img;
  const out = new Float32Array(3 * H * W);
  for (let p = 0; p < H * W; p++) for (let c = 0; c < 3; c++) out[c * H * W + p] = data[p * C + c]! / 127.5 - 1;
  return out;
}

export class StageData {
  readonly world: EmojiWorld;
  // data.shards: the samples of a `mumu bootstrap` folder, read once into memory (64 px samples are a few KB)
  #shards: EncodedSample[] | null = null;
  #epochOrder = new Map<number, number[]>();

  static async open(cfg: TrainConfig, prompt: PromptSpec): Promise<StageData> {
    const d = new StageData(cfg, prompt);
    if (cfg.data.shards) {
      const m = await readManifest(cfg.data.shards);
      const all: EncodedSample[] = [];
      for (const sh of m.shards.filter((x) => x.samples > 0).sort((a, b) => a.index - b.index))
        for await (const smp of readShard(path.join(cfg.data.shards, sh.file))) all.push(parseSample(smp));
      if (!all.length) throw new Error(`${cfg.data.shards} holds no samples`);
      d.#shards = all;
    }
    return d;
  }

  constructor(
    readonly cfg: TrainConfig,
    readonly prompt: PromptSpec,
  ) {
    const d = cfg.data;
    const mumu = cfg.stage === 'mumu-stage1' || cfg.stage === 'mumu-stage2';
    this.world = new EmojiWorld({
      size: mumu ? d.size * d.render_scale : d.size,
      seed: d.seed,
      split: 'train',
      concepts: d.concepts ?? undefined,
      styles: d.styles ?? undefined,
      stylesPerContent: d.styles_per_content,
      ...(d.object_counts ? { objectCounts: d.object_counts } : {}),
      ...(d.backgrounds ? { backgrounds: d.backgrounds as WorldOptions['backgrounds'] } : {}),
    });
  }

  // A prompt as the pipeline encodes it; '' is the unconditional prompt of guidance ([BOS] alone).
  private async encode(segments: PromptSegment[]): Promise<{ prompt: EncodedPrompt; segments: PromptSegment[] }> {
    return { prompt: await encodePrompt(segments, this.prompt, { allowEmpty: true }), segments };
  }

  private text(caption: string): Promise<{ prompt: EncodedPrompt; segments: PromptSegment[] }> {
    return this.encode(caption ? [{ text: caption }] : []);
  }

  // The VLM's captioning example: [BOS] <image tokens> caption [EOS], the loss on the caption and EOS only.
  private async captioning(caption: string, image: RawImage): Promise<Omit<Item, 'index'>> {
    const t = this.prompt.tokenizer;
    const { prompt } = await this.encode([{ image }]);
    const words = [...t.encodeText(caption), ...(t.eosId !== undefined ? [t.eosId] : [])];
    return {
      caption,
      prompt: { ...prompt, inputIds: [...prompt.inputIds, ...words] },
      labels: [...prompt.inputIds.map(() => -100), ...words],
    };
  }

  private dropPrompt(index: number): boolean {
    return new Rng(deriveSeed(this.cfg.data.seed, index, 'prompt-dropout')).chance(this.cfg.data.prompt_dropout);
  }

  // Item i of a shard run: epoch e = floor(i / n) visits the samples in a permutation seeded by (data seed, e).
  private async shardItem(index: number): Promise<Omit<Item, 'index'>> {
    const all = this.#shards!,
      n = all.length,
      epoch = Math.floor(index / n);
    let order = this.#epochOrder.get(epoch);
    if (!order) {
      order = new Rng(deriveSeed(this.cfg.data.seed, epoch, 'shard-epoch')).shuffle([...all.keys()]);
      this.#epochOrder.clear();
      this.#epochOrder.set(epoch, order);
    }
    const s = await decodeSample(all[order[index % n]!]!);
    const target = toCHW(await squareTarget(s.target, this.cfg.data.size));
    const caption = s.meta.caption;
    const stage = this.cfg.stage;
    if (stage === 'vae') return { caption, image: target };
    if (stage === 'vlm') return this.captioning(caption, s.target);
    const dropped = this.dropPrompt(index);
    if (stage === 't2i-base' || stage === 'style-finetune')
      return { caption, image: target, ...(await this.text(dropped ? '' : caption)), dropped };
    if (stage === 'adapter-align') return { caption, ...(await this.text(dropped ? '' : caption)), dropped };
    if (dropped) return { caption: '', image: target, ...(await this.text('')), dropped: true };
    return { caption, image: target, ...(await this.interleave(s.meta.prompt, s.images)) };
  }

  // data.restyle_references, data.reference_backgrounds and data.style_references (src/train/references.ts); all 0
  // leave the paper's sample.
  private async beyondBootstrap(
    b: Referenced,
    scene: Scene,
    index: number,
    bcfg: BootstrapConfig,
  ): Promise<Referenced> {
    const d = this.cfg.data;
    let out = b;
    if (d.restyle_references > 0) {
      const rng = new Rng(deriveSeed(d.seed, index, 'restyle'));
      // a sibling: the same content in another of its styles (EmojiWorld draws contents in runs of styles_per_content)
      const n = d.styles_per_content,
        k = index % n;
      const sibling = index - k + ((k + rng.intIn(1, n - 1)) % n);
      const restyle = (s: Scene) => ({ restyle: s.style });
      out = await recutReferences(out, () => this.world.scene(sibling), restyle, d.restyle_references, rng, bcfg);
    }
    if (d.reference_backgrounds > 0) {
      const rng = new Rng(deriveSeed(d.seed, index, 'reference-background'));
      const plain = () => this.world.scene(index, plainBackground(rng, scene.background));
      const background = (s: Scene) => ({ background: s.background.colors[0]! });
      out = await recutReferences(out, plain, background, d.reference_backgrounds, rng, bcfg);
    }
    if (d.style_references > 0) {
      const rng = new Rng(deriveSeed(d.seed, index, 'style-reference'));
      const shown = new Set(scene.objects.map((o) => o.slug));
      const others = rng.sample(
        this.world.trainConcepts.filter((c) => !shown.has(c.slug)),
        rng.intIn(1, 2),
      );
      const style = STYLES.find((s) => s.id === scene.style)!;
      out = styleReference(
        out,
        style.phrase,
        style.id,
        others.map((c) => c.slug),
        d.style_references,
        rng,
        bcfg.cropSize,
      );
    }
    return out;
  }

  // A bootstrapped prompt (text and image segments) -> pipeline segments, encoded.
  private interleave(
    segments: readonly Segment[],
    images: RawImage[],
  ): Promise<{ prompt: EncodedPrompt; segments: PromptSegment[] }> {
    return this.encode(
      segments.map((seg) => (seg.type === 'text' ? { text: seg.text } : { image: images[seg.index]! })),
    );
  }

  async item(index: number): Promise<Item> {
    return { ...(await (this.#shards ? this.shardItem(index) : this.sceneItem(index))), index };
  }

  private async sceneItem(index: number): Promise<Omit<Item, 'index'>> {
    const { cfg, prompt } = this;
    const scene = this.world.scene(index);
    switch (cfg.stage) {
      case 'vae':
        return { caption: scene.caption, image: toCHW(scene.image) };
      case 't2i-base':
      case 'style-finetune': {
        const dropped = this.dropPrompt(index);
        return {
          caption: scene.caption,
          image: toCHW(scene.image),
          ...(await this.text(dropped ? '' : scene.caption)),
          dropped,
        };
      }
      case 'adapter-align': {
        // the caption alone (and the empty prompt at the dropout rate): both encoders read the same token ids
        const dropped = this.dropPrompt(index);
        return { caption: scene.caption, ...(await this.text(dropped ? '' : scene.caption)), dropped };
      }
      case 'vlm': {
        // "captioning EmojiWorld images and crops": the whole scene with its caption, or one object with its name
        const rng = new Rng(deriveSeed(cfg.data.seed, index, 'vlm'));
        let img = scene.image,
          caption = scene.caption;
        if (rng.chance(cfg.data.crop_fraction)) {
          const o = rng.pick(scene.objects);
          const b = o.box,
            grow = 0.1 * Math.max(b.w, b.h);
          img = crop(
            scene.image,
            clampBox({ x: b.x - grow, y: b.y - grow, w: b.w + 2 * grow, h: b.h + 2 * grow }, scene.size, scene.size),
          );
          const style = STYLES.find((s) => s.id === scene.style)!.phrase;
          caption = `${/^[aeiou]/.test(o.phrase) ? 'an' : 'a'} ${o.phrase}, ${style} style`;
        }
        return this.captioning(caption, img);
      }
      case 'mumu-stage1':
      case 'mumu-stage2': {
        const stage = cfg.stage === 'mumu-stage1' ? 1 : 2;
        // crops at the reference side (data.reference_size: stage 2 gives its single crop 2x the side, 4x the tokens,
        // paper section 5)
        const bcfg = { ...defaultConfig(stage, prompt.imageSize), cropSize: prompt.imageSize };
        const b = await bootstrapSample({
          image: scene.image,
          caption: scene.caption,
          detector: new GroundTruthDetector(scene.objects),
          rng: new Rng(deriveSeed(cfg.data.seed, index, 'bootstrap')),
          config: bcfg,
          targetSize: cfg.data.size,
        });
        const target = toCHW(b.target);
        if (this.dropPrompt(index)) return { caption: '', image: target, ...(await this.text('')), dropped: true };
        const r = await this.beyondBootstrap(b, scene, index, bcfg);
        return { caption: scene.caption, image: target, ...(await this.interleave(r.prompt, r.images)) };
      }
    }
  }

  // Items of micro-batch k (positions k*M .. k*M + M - 1, M = batch_size / grad_accum) that rank r of N reads.
  batchItems(k: number, rank = 0, worldSize = 1): Promise<Item[]> {
    const M = this.cfg.batch_size / this.cfg.grad_accum;
    return this.items(rankPositions(k * M, M, rank, worldSize));
  }

  items(indices: readonly number[]): Promise<Item[]> {
    return Promise.all(indices.map((j) => this.item(j)));
  }
}

export function collate(items: Item[], spec: PromptSpec): Batch {
  const B = items.length;
  let images: Tensor | null = null;
  if (items[0]!.image) {
    const n = items[0]!.image.length,
      S = Math.round(Math.sqrt(n / 3));
    const out = new Float32Array(B * n);
    items.forEach((it, i) => out.set(it.image!, i * n));
    images = tensor(out, { shape: [B, 3, S, S] });
  }
  let ids: Tensor | null = null,
    mask: Tensor | null = null,
    labels: Tensor | null = null,
    pixels: Tensor | null = null;
  if (items[0]!.prompt) {
    const p = collatePrompts(
      items.map((it) => it.prompt!),
      spec,
    );
    [ids, mask, pixels] = [p.inputIds, p.attentionMask, p.pixelValues];
    if (items[0]!.labels) {
      const T = ids.size(1);
      const lab = new BigInt64Array(B * T).fill(-100n);
      items.forEach((it, b) => it.labels!.forEach((l, i) => (lab[b * T + i] = BigInt(l))));
      labels = tensor(lab, { shape: [B, T] });
    }
  }
  return {
    indices: items.map((it) => it.index),
    captions: items.map((it) => it.caption),
    images,
    ids,
    mask,
    labels,
    pixels,
    dropped: items.filter((it) => it.dropped).length,
  };
}

// Keeps up to `depth` future micro-batches in flight. get(k) must be called with k = 0, 1, 2, ... from the start
// position; it returns the items of micro-batch k and starts the ones after it.
export class Prefetcher {
  #pending = new Map<number, Promise<Item[]>>();
  constructor(
    private readonly make: (k: number) => Promise<Item[]>,
    private readonly depth: number,
  ) {}
  async get(k: number): Promise<Item[]> {
    for (let j = k; j <= k + this.depth; j++) if (!this.#pending.has(j)) this.#pending.set(j, this.make(j));
    const p = this.#pending.get(k)!;
    this.#pending.delete(k);
    return p;
  }
}
