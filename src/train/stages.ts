// What each stage trains and how its loss is computed. Every stage works on one whole MumuModel (built fresh from
// configs/models or loaded from the previous stage's model folder) and trains only the parts its config names, so
// the stages chain: vae -> t2i-base -> vlm -> mumu-stage1 -> mumu-stage2, and style-finetune branches off t2i-base.
import fs from 'node:fs';
import path from 'node:path';
import {
  Tensor, F, Generator, randn, randnLike, cat, noGrad, tidy, tensor,
} from '../torch/index.ts';
import { seeded, type Module } from '../nn/index.ts';
import {
  MumuModel, VisionLanguageModel, Adapter, UNet2DConditionModel, AutoencoderKL, TextEncoder,
  parseVLMConfig, parseAdapterConfig, parseUNetConfig, parseAutoencoderKLConfig, parseCLIPTextConfig, readJson,
  type MumuTrainingConfig,
} from '../models/index.ts';
import {
  makeSchedule, addNoise, sampleTrainTimesteps, sampleDdim, classifierFreeGuidance, inferenceTimesteps,
  type NoiseSchedule, type CondModel, type Conditioning,
} from '../diffusion/index.ts';
import { buildWordLevelTokenizer, PromptTokenizer } from '../prompt/index.ts';
import type { TrainConfig, GroupConfig } from './config.ts';
import { emojiVocabulary, collate, type Batch, type Item, type StageData } from './data.ts';

export interface Built {
  model: MumuModel;
  tokenizerJson: object;
  tokenizer: PromptTokenizer;
}

export async function buildModel(cfg: TrainConfig): Promise<Built> {
  let model: MumuModel, tokenizerJson: object;
  if (cfg.init) {
    if (!fs.existsSync(path.join(cfg.init, 'model_index.json'))) throw new Error(`init ${cfg.init} is not a model folder (run the previous stage first)`);
    model = MumuModel.load(cfg.init);
    tokenizerJson = JSON.parse(fs.readFileSync(path.join(cfg.init, 'tokenizer', 'tokenizer.json'), 'utf8')) as object;
  } else {
    const dir = cfg.model_configs;
    const read = (f: string) => readJson(path.join(dir, f));
    model = seeded(cfg.seed, () => new MumuModel({
      vlm: new VisionLanguageModel(parseVLMConfig(read('vlm.json'))),
      adapter: new Adapter(parseAdapterConfig(read('adapter.json'))),
      unet: new UNet2DConditionModel(parseUNetConfig(read('unet.json'))),
      vae: new AutoencoderKL(parseAutoencoderKLConfig(read('vae.json'))),
      text_encoder: fs.existsSync(path.join(dir, 'text_encoder.json')) ? new TextEncoder(parseCLIPTextConfig(read('text_encoder.json'))) : null,
    }));
    tokenizerJson = buildWordLevelTokenizer(emojiVocabulary());
  }
  const tokenizer = new PromptTokenizer(tokenizerJson);
  if (tokenizer.vocabSize > model.vlm.config.text_config.vocab_size) throw new Error(`tokenizer has ${tokenizer.vocabSize} tokens, the VLM's vocab_size is ${model.vlm.config.text_config.vocab_size}`);
  return { model, tokenizerJson, tokenizer };
}

// Sets requiresGrad (and LoRA layers) per the config's plan; LoRA weights are drawn from a generator seeded by the run.
export function applyPlan(model: MumuModel, cfg: TrainConfig): void {
  const { lm_head, ...plan } = cfg.train;
  seeded(cfg.seed + 1, () => model.applyTraining(plan as MumuTrainingConfig));
  if (lm_head === 'full') model.vlm.lm_head.requiresGrad_(true);
}

// Trainable parameters split into the config's groups by regex over their full names. Every trainable parameter
// must land in a group and every group must get one, so a config mistake fails loudly instead of freezing a part.
export function paramGroups(model: Module, groups: GroupConfig[]): { group: GroupConfig; params: [string, Tensor][] }[] {
  const out = groups.map((group) => ({ group, re: new RegExp(group.match), params: [] as [string, Tensor][] }));
  const orphans: string[] = [];
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const g = out.find((o) => o.re.test(name));
    if (g) g.params.push([name, p]);
    else orphans.push(name);
  }
  if (orphans.length) throw new Error(`${orphans.length} trainable parameters match no optimizer group, e.g. ${orphans.slice(0, 3).join(', ')}`);
  const empty = out.filter((o) => o.params.length === 0).map((o) => o.group.name);
  if (empty.length) throw new Error(`optimizer group(s) ${empty.join(', ')} match no trainable parameter`);
  return out.map(({ group, params }) => ({ group, params }));
}

export interface LossOut { loss: Tensor; parts: Record<string, Tensor> }

export class StageRunner {
  readonly schedule: NoiseSchedule = makeSchedule();
  constructor(readonly cfg: TrainConfig, readonly built: Built) {}

  get model(): MumuModel { return this.built.model; }

  batch(items: Item[]): Batch {
    return collate(items, this.built.tokenizer.padId);
  }

  private context(b: Batch): Conditioning {
    const m = this.model;
    if (this.cfg.stage === 't2i-base' || this.cfg.stage === 'style-finetune') return { context: m.encodeText(b.ids!, b.mask), mask: b.mask };
    return { context: m.encodePrompt({ inputIds: b.ids!, pixels: b.pixels, attentionMask: b.mask }), mask: b.mask };
  }

  loss(b: Batch, gen: Generator): LossOut {
    const m = this.model;
    switch (this.cfg.stage) {
      case 'vae': {
        const { sample, posterior } = m.vae.forward(b.images!, { sample: true, generator: gen });
        const rec = F.mseLoss(sample, b.images!);
        const kl = posterior.kl().mean();
        return { loss: rec.add(kl.mul(this.cfg.loss.kl_weight)), parts: { rec, kl } };
      }
      case 'vlm': {
        const loss = m.vlm.captionLoss(b.ids!, b.pixels, b.labels!, b.mask);
        return { loss, parts: {} };
      }
      default: {
        // paper section 2.1: eps-prediction MSE on VAE latents
        const x0 = noGrad(() => m.vae.scaleLatents(m.vae.encode(b.images!).sample(gen)));
        const noise = randn([...x0.shape], { generator: gen });
        const t = sampleTrainTimesteps(this.schedule, x0.size(0), gen);
        const xt = addNoise(this.schedule, x0, noise, t);
        const c = this.context(b);
        const pred = m.forward(xt, t, c.context, c.mask ?? null);
        return { loss: F.mseLoss(pred, noise), parts: {} };
      }
    }
  }

  // ---- samples: fixed items (indices far past any run's data) and fixed seeds ----
  sampleItems(data: StageData): Promise<Item[]> {
    const base = 1_000_000_000 + this.cfg.samples.seed;
    return Promise.all(Array.from({ length: this.cfg.samples.count }, async (_, i) => {
      // the fixed prompts are never dropped (empty) ones
      for (let k = 0; ; k++) {
        const it = await data.item(base + i * 97 + k);
        if (!it.dropped) return it;
      }
    }));
  }

  // Rows of RGB images (each H x W x 3) showing the model now, or text lines for the VLM.
  samples(items: Item[]): { rows: RGBImage[][]; text: string[] } {
    const m = this.model;
    const b = this.batch(items);
    const S = this.cfg.data.size;
    const targets = b.images ? toRgb(b.images) : [];
    return noGrad(() => tidy(() => {
      m.eval();
      try {
        switch (this.cfg.stage) {
          case 'vae': {
            const rec = m.vae.decode(m.vae.encode(b.images!).mode());
            return { rows: [targets, toRgb(rec)], text: [] };
          }
          case 'vlm':
            return { rows: [], text: items.map((it, i) => `${it.caption}  =>  ${this.greedyCaption(b, i)}`) };
          default: {
            const c = this.context(b);
            const t = this.built.tokenizer;
            const empty = this.batch([{ caption: '', ids: t.bosId !== undefined ? [t.bosId] : [t.padId], pixels: [] }]);
            const u = this.context(empty);
            const imgs = generate(m, this.schedule, c, u, items.length, this.cfg.samples);
            const rows = [toRgb(imgs), targets];
            if (b.pixels) {
              // the first conditioning image of each prompt, scaled up to the target size
              let k = 0;
              const firsts: Tensor[] = [];
              for (const it of items) {
                const n = it.pixels?.length ?? 0;
                firsts.push(n ? F.interpolate(b.pixels.narrow(0, k, 1), { size: [S, S], mode: 'nearest' }) : randnLike(b.images!.narrow(0, 0, 1)).mul(0).sub(1));
                k += n;
              }
              rows.unshift(toRgb(cat(firsts, 0)));
            }
            return { rows, text: [] };
          }
        }
      } finally {
        m.train();
      }
    }));
  }

  // Greedy decoding of prompt i's caption from its image (no KV cache: the captions are short).
  private greedyCaption(b: Batch, i: number): string {
    const t = this.built.tokenizer;
    const labels = b.labels!.select(0, i).toList() as number[];
    const ids = (b.ids!.select(0, i).toList() as number[]).slice(0, labels.findIndex((l) => l !== -100));
    const img = b.pixels!.narrow(0, i, 1);
    const out: number[] = [];
    for (let k = 0; k < 24; k++) {
      const x = tensor(BigInt64Array.from([...ids, ...out].map(BigInt)), { shape: [1, ids.length + out.length] });
      const { logits } = this.model.vlm.forward(x, img, { logits: true });
      const next = logits!.select(1, -1 + x.size(1)).argmax(-1).item();
      if (next === t.eosId) break;
      out.push(next);
    }
    return t.decode(out);
  }
}

export interface RGBImage { width: number; height: number; channels: 3; data: Uint8Array }

// (B, 3, H, W) in [-1, 1] -> RGB images
export function toRgb(x: Tensor): RGBImage[] {
  const u8 = noGrad(() => x.clamp(-1, 1).add(1).mul(127.5).round().to('uint8').permute(0, 2, 3, 1).contiguous());
  const [B, H, W] = u8.shape as [number, number, number, number];
  const bytes = u8.toBytes();
  return Array.from({ length: B }, (_, i) => ({ width: W, height: H, channels: 3, data: bytes.slice(i * H * W * 3, (i + 1) * H * W * 3) }));
}

// DDIM with classifier-free guidance over the whole batch of prompts; image i starts from the noise of seed + i.
export function generate(m: MumuModel, s: NoiseSchedule, cond: Conditioning, uncond: Conditioning, n: number, o: { steps: number; guidance_scale: number; seed: number }): Tensor {
  const unet: CondModel = (x, t, c) => m.unet.forward(x, t, c.context, { encoderAttentionMask: c.mask ?? null });
  const eps = classifierFreeGuidance(unet, cond, uncond, o.guidance_scale);
  const side = m.unet.config.sample_size ?? m.vae.config.sample_size / m.vae.downsampleFactor;
  const noise = cat(Array.from({ length: n }, (_, i) => randn([1, m.unet.config.in_channels, side, side], { generator: new Generator(o.seed + i) })), 0);
  const timesteps = inferenceTimesteps(s.config.numTrainTimesteps, o.steps, 'leading', 1);
  const lat = sampleDdim(eps, noise, s, { timesteps, eta: 0 });
  return m.vae.decode(m.vae.unscaleLatents(lat));
}

// Grid of rows (each row left to right), 2 px gaps, black background.
export function gridRows(rows: RGBImage[][], gap = 2): RGBImage {
  const cells = rows.flat();
  const w = Math.max(...cells.map((c) => c.width)), h = Math.max(...cells.map((c) => c.height));
  const cols = Math.max(...rows.map((r) => r.length));
  const W = cols * w + (cols - 1) * gap, H = rows.length * h + (rows.length - 1) * gap;
  const data = new Uint8Array(W * H * 3);
  rows.forEach((row, r) => row.forEach((im, c) => {
    const x0 = c * (w + gap), y0 = r * (h + gap);
    for (let y = 0; y < im.height; y++) data.set(im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3), ((y0 + y) * W + x0) * 3);
  }));
  return { width: W, height: H, channels: 3, data };
}
