// What each stage trains and how its loss is computed. Every stage works on one whole MumuModel (built fresh from
// configs/models or loaded from the previous stage's model folder) and trains only the parts its config names, so
// the stages chain: vae -> t2i-base -> vlm -> mumu-stage1 -> mumu-stage2, and style-finetune branches off t2i-base.
import fs from 'node:fs';
import path from 'node:path';
import { Tensor, F, full, cat, noGrad, tidy } from '../torch/index.ts';
import { seeded, type Module } from '../nn/index.ts';
import { CLASS_OF_PART, buildComponent, loadComponent } from '../models/pretrained.ts';
import {
  MumuModel,
  VisionLanguageModel,
  Adapter,
  UNet2DConditionModel,
  AutoencoderKL,
  TextEncoder,
  readJson,
  type MumuTrainingConfig,
  type MumuParts,
} from '../models/index.ts';
import {
  addNoise,
  diffusionLoss,
  parseSchedulerConfig,
  scheduleFromConfig,
  readSchedulerConfig,
  SD_SCHEDULER_CONFIG,
  type NoiseSchedule,
  type Conditioning,
  type SchedulerConfig,
} from '../diffusion/index.ts';
import { buildWordLevelTokenizer, PromptTokenizer, type PromptSpec } from '../prompt/index.ts';
import { MumuPipeline, componentsFromModel, type MumuComponents } from '../pipeline.ts';
import type { TrainConfig, GroupConfig } from './config.ts';
import { emojiVocabulary, collate, type Batch, type Item, type StageData } from './data.ts';
import { ItemDraws } from './draws.ts';
import type { RgbImage } from '../image/index.ts';
import { imagesFromTensor } from '../image/tensor.ts';
import { RepaProjector, repaLoss, encoderFeatures } from './repa.ts';
import { maskedMse, textAnchorLoss, wordTokens } from './anchor.ts';

export interface Built {
  model: MumuModel;
  tokenizerJson: object;
  tokenizer: PromptTokenizer;
  // the model's noise schedule and prediction type: the init folder's scheduler config (SD's for a fresh model) with
  // the stage config's `scheduler` keys over it. Training and sampling both read it, and the export writes it.
  scheduler: SchedulerConfig;
}

// A component built fresh, with `overrides` over its config: the init folder's <name>/config.json (the same
// architecture, new weights) or, without an init, model_configs/<name>.json. Drawn under a generator seeded by the
// run, so a fresh part is the same in every run with this seed.
function freshComponent(cfg: TrainConfig, name: string, overrides: object = {}) {
  const file = cfg.init ? path.join(cfg.init, name, 'config.json') : path.join(cfg.model_configs, `${name}.json`);
  const raw = { ...(readJson(file) as object), ...overrides };
  return buildComponent(CLASS_OF_PART[name as keyof typeof CLASS_OF_PART], raw) as MumuModel[keyof MumuParts];
}

// A part from another folder: a model folder (its <name>/, and its tokenizer must be this run's) or a component
// folder itself (config.json + weights, e.g. a shipped model's base_unet/).
function partFrom(name: string, dir: string, tokenizerJson: object) {
  if (!fs.existsSync(path.join(dir, 'model_index.json'))) {
    if (!fs.existsSync(path.join(dir, 'config.json')))
      throw new Error(
        `from.${name}: ${dir} is neither a model folder nor a component folder (no model_index.json, no config.json)`,
      );
    return loadComponent(dir, CLASS_OF_PART[name as keyof typeof CLASS_OF_PART]);
  }
  const tok = path.join(dir, 'tokenizer', 'tokenizer.json');
  if (!fs.existsSync(tok)) throw new Error(`from.${name}: ${dir} is not a model folder with a tokenizer`);
  if (JSON.stringify(JSON.parse(fs.readFileSync(tok, 'utf8'))) !== JSON.stringify(tokenizerJson))
    throw new Error(`from.${name}: ${dir} has another tokenizer than the init's`);
  return MumuModel.load(dir)[name as keyof MumuParts];
}

function partsFrom(dirs: Record<string, string>, tokenizerJson: object): Partial<MumuParts> {
  return Object.fromEntries(Object.entries(dirs).map(([n, d]) => [n, partFrom(n, d, tokenizerJson)]));
}

function withParts(model: MumuModel, parts: Partial<MumuParts>): MumuModel {
  if (!Object.keys(parts).length) return model;
  const { vlm, adapter, unet, vae, text_encoder } = model;
  return new MumuModel({ vlm, adapter, unet, vae, text_encoder, ...parts });
}

export async function buildModel(cfg: TrainConfig): Promise<Built> {
  let model: MumuModel,
    tokenizerJson: object,
    scheduler: SchedulerConfig = SD_SCHEDULER_CONFIG;
  const { scheduler: schedulerDir, ...fromParts } = cfg.from ?? {};
  if (cfg.init) {
    if (!fs.existsSync(path.join(cfg.init, 'model_index.json')))
      throw new Error(`init ${cfg.init} is not a model folder (run the previous stage first)`);
    model = MumuModel.load(cfg.init);
    tokenizerJson = JSON.parse(fs.readFileSync(path.join(cfg.init, 'tokenizer', 'tokenizer.json'), 'utf8')) as object;
    const schedFile = path.join(cfg.init, 'scheduler', 'scheduler_config.json');
    if (fs.existsSync(schedFile)) scheduler = await readSchedulerConfig(schedFile);
    // `fresh`: parts started over (e.g. a new UNet on a trained VAE); `from`: parts trained elsewhere (a VLM)
    const fresh = Object.entries(cfg.fresh ?? {});
    const parts: Partial<MumuParts> = seeded(cfg.seed, () =>
      Object.fromEntries(fresh.map(([name, over]) => [name, freshComponent(cfg, name, over)])),
    );
    model = withParts(model, { ...parts, ...partsFrom(fromParts, tokenizerJson) });
  } else {
    const has = (name: string) => fs.existsSync(path.join(cfg.model_configs, `${name}.json`));
    model = seeded(
      cfg.seed,
      () =>
        new MumuModel({
          vlm: freshComponent(cfg, 'vlm', cfg.fresh?.vlm) as VisionLanguageModel,
          adapter: freshComponent(cfg, 'adapter', cfg.fresh?.adapter) as Adapter,
          unet: freshComponent(cfg, 'unet', cfg.fresh?.unet) as UNet2DConditionModel,
          vae: freshComponent(cfg, 'vae', cfg.fresh?.vae) as AutoencoderKL,
          text_encoder: has('text_encoder')
            ? (freshComponent(cfg, 'text_encoder', cfg.fresh?.text_encoder) as TextEncoder)
            : null,
        }),
    );
    tokenizerJson = buildWordLevelTokenizer(emojiVocabulary());
    // `from` without init: a committed stage's parts (models/stages/<stage>/<part>) on fresh others, so a fresh
    // machine continues the recipe from the repository
    model = withParts(model, partsFrom(fromParts, tokenizerJson));
  }
  if (schedulerDir) {
    const file = path.join(schedulerDir, 'scheduler_config.json');
    if (!fs.existsSync(file)) throw new Error(`from.scheduler: ${schedulerDir} has no scheduler_config.json`);
    scheduler = await readSchedulerConfig(file);
  }
  const tokenizer = new PromptTokenizer(tokenizerJson);
  if (tokenizer.vocabSize > model.vlm.config.text_config.vocab_size)
    throw new Error(
      `tokenizer has ${tokenizer.vocabSize} tokens, the VLM's vocab_size is ${model.vlm.config.text_config.vocab_size}`,
    );
  if (cfg.scheduler)
    scheduler = parseSchedulerConfig({ ...scheduler, ...cfg.scheduler }, "the stage config's scheduler");
  return { model, tokenizerJson, tokenizer, scheduler };
}

const MUMU_STAGES = new Set(['mumu-stage1', 'mumu-stage2']);
const DIFFUSION_STAGES = new Set(['t2i-base', 'style-finetune', ...MUMU_STAGES]);

// Sets requiresGrad (and LoRA layers) per the config's plan; LoRA weights are drawn from a generator seeded by the run.
// With loss.repa_weight, the REPA projector (UNet features at loss.repa_layer -> the ViT's width) is added to the
// model, trainable, drawn from a generator seeded by the run.
export function applyPlan(model: MumuModel, cfg: TrainConfig): void {
  const { lm_head, ...plan } = cfg.train;
  seeded(cfg.seed + 1, () => model.applyTraining(plan as MumuTrainingConfig));
  if (lm_head === 'full') model.vlm.lm_head.requiresGrad_(true);
  if (cfg.loss.repa_weight !== null) {
    if (!DIFFUSION_STAGES.has(cfg.stage)) throw new Error(`loss.repa_weight: stage ${cfg.stage} has no diffusion loss`);
    const inDim = model.unet.tapChannels(cfg.loss.repa_layer);
    const outDim = model.vlm.model.vision_model.config.hidden_size;
    model.repa_projector = seeded(cfg.seed + 2, () =>
      new RepaProjector(inDim, cfg.loss.repa_hidden, outDim).requiresGrad_(true),
    );
  }
  if (cfg.loss.text_anchor_weight !== null) {
    if (!MUMU_STAGES.has(cfg.stage))
      throw new Error(`loss.text_anchor_weight: stage ${cfg.stage} is not a MUMU stage (mumu-stage1, mumu-stage2)`);
    if (!model.text_encoder)
      throw new Error('loss.text_anchor_weight: the model has no text_encoder (the base the words are anchored to)');
  }
}

// Trainable parameters split into the config's groups by regex over their full names. Every trainable parameter
// must land in a group and every group must get one, so a config mistake fails loudly instead of freezing a part.
export function paramGroups(
  model: Module,
  groups: GroupConfig[],
): { group: GroupConfig; params: [string, Tensor][] }[] {
  const out = groups.map((group) => ({ group, re: new RegExp(group.match), params: [] as [string, Tensor][] }));
  const orphans: string[] = [];
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const g = out.find((o) => o.re.test(name));
    if (g) g.params.push([name, p]);
    else orphans.push(name);
  }
  if (orphans.length)
    throw new Error(
      `${orphans.length} trainable parameters match no optimizer group, e.g. ${orphans.slice(0, 3).join(', ')}`,
    );
  const empty = out.filter((o) => o.params.length === 0).map((o) => o.group.name);
  if (empty.length) throw new Error(`optimizer group(s) ${empty.join(', ')} match no trainable parameter`);
  return out.map(({ group, params }) => ({ group, params }));
}

export interface LossOut {
  loss: Tensor;
  parts: Record<string, Tensor>;
}

const TEXT_STAGES = new Set(['t2i-base', 'style-finetune']);

export class StageRunner {
  readonly schedule: NoiseSchedule;
  // what generation runs on: the live model as pipeline components (text encoder for the text-only stages)
  readonly components: MumuComponents;
  // the prompt side of those components: the trainer encodes its prompts with it
  readonly prompt: PromptSpec;

  constructor(
    readonly cfg: TrainConfig,
    readonly built: Built,
    readonly device = 'cpu',
  ) {
    this.schedule = scheduleFromConfig(built.scheduler);
    const c = componentsFromModel(built.model, {
      tokenizer: built.tokenizer,
      scheduler: built.scheduler,
      name: cfg.stage,
      encoder: TEXT_STAGES.has(cfg.stage) ? 'text' : 'vlm',
      device,
    });
    this.components = cfg.data.reference_size ? c.atReferenceSize!(cfg.data.reference_size) : c;
    // the VLM stage captions images (one per prompt) even though the text-only components take none
    this.prompt = { ...this.components.prompt, maxImages: Math.max(this.components.prompt.maxImages, 4) };
  }

  get model(): MumuModel {
    return this.built.model;
  }

  // The items as tensors on the run's device.
  batch(items: Item[]): Batch {
    const c = collate(items, this.prompt);
    const b =
      this.cfg.loss.text_anchor_weight === null
        ? c
        : {
            ...c,
            words: wordTokens(
              items.map((it) => it.prompt!),
              this.prompt.tokenizer.imageTokenId!,
            ),
          };
    if (this.device === 'cpu') return b;
    const to = (t: Tensor | null) => t && t.to(this.device);
    const words = b.words && { ids: to(b.words.ids)!, mask: to(b.words.mask)!, positions: to(b.words.positions)! };
    return {
      ...b,
      images: to(b.images),
      ids: to(b.ids),
      mask: to(b.mask),
      labels: to(b.labels),
      pixels: to(b.pixels),
      ...(words ? { words } : {}),
    };
  }

  private context(b: Batch): Conditioning {
    return this.components.encode({
      inputIds: b.ids!,
      attentionMask: b.mask!,
      pixelValues: b.pixels,
      imagesPerPrompt: [],
    });
  }

  // What the stage's loss averages over, counted from the items alone, so the trainer can learn a step's count over
  // every micro-batch and rank before the first backward pass and weight each part by its share (the mean over
  // ranks is then the single-process mean): the caption loss's target tokens for the VLM, the prompt tokens for
  // adapter-align, items otherwise. Must match what loss() divides by.
  get countsTokens(): boolean {
    return this.cfg.stage === 'vlm' || this.cfg.stage === 'adapter-align';
  }

  lossCount(items: readonly Item[]): number {
    if (this.cfg.stage === 'vlm')
      return items.reduce((n, it) => n + it.labels!.slice(1).filter((l) => l !== -100).length, 0);
    if (this.cfg.stage === 'adapter-align') return items.reduce((n, it) => n + it.prompt!.inputIds.length, 0);
    return items.length;
  }

  // The mean loss over the batch's items (tokens for vlm / adapter-align). Every random draw (VAE posterior sample,
  // noise, timestep) is the item's own (src/train/draws.ts), so it does not depend on how items are batched.
  loss(b: Batch): LossOut {
    const m = this.model;
    const draws = new ItemDraws(this.cfg.seed, b.indices, this.device);
    switch (this.cfg.stage) {
      case 'vae': {
        const posterior = m.vae.encode(b.images!);
        const sample = m.vae.decode(posterior.mean.add(posterior.std.mul(draws.randn(posterior.mean.shape.slice(1)))));
        const rec = F.mseLoss(sample, b.images!);
        const kl = posterior.kl().mean();
        return { loss: rec.add(kl.mul(this.cfg.loss.kl_weight)), parts: { rec, kl } };
      }
      case 'vlm': {
        const loss = m.vlm.captionLoss(b.ids!, b.pixels, b.labels!, b.mask);
        return { loss, parts: {} };
      }
      case 'adapter-align': {
        // The adapter's warm start (Kosmos-G's AlignerNet, arXiv 2310.02992 section 3.2, in its MSE form): on text-only
        // prompts, VLM -> adapter is regressed onto the text-only base's text encoder states for the same tokens, so
        // the MUMU stage starts from a model that already follows text as well as the base, and only has to learn what
        // the images add. Mean squared error over real tokens.
        const target = noGrad(() => m.encodeText(b.ids!, b.mask));
        const pred = m.encodePrompt({ inputIds: b.ids!, pixelValues: null, attentionMask: b.mask });
        return { loss: maskedMse(pred, target, b.mask!), parts: {} };
      }
      default: {
        // paper section 2.1: MSE on VAE latents, for the target the scheduler config names (eps, or v), optionally
        // Min-SNR weighted (loss.snr_gamma)
        const x0 = noGrad(() => {
          const posterior = m.vae.encode(b.images!);
          return m.vae.scaleLatents(posterior.mean.add(posterior.std.mul(draws.randn(posterior.mean.shape.slice(1)))));
        });
        const noise = draws.randn(x0.shape.slice(1));
        const t = draws.randint(0, this.schedule.config.numTrainTimesteps);
        const xt = addNoise(this.schedule, x0, noise, t);
        const c = this.context(b);
        const { repa_weight: repa, repa_layer } = this.cfg.loss;
        const { sample: pred, features } = m.unet.forwardWithFeatures(
          xt,
          t,
          c.context,
          { encoderAttentionMask: c.mask ?? null },
          repa === null ? null : repa_layer,
        );
        const loss = diffusionLoss(
          this.schedule,
          pred,
          { x0, noise, t },
          { prediction: this.built.scheduler.prediction_type, snrGamma: this.cfg.loss.snr_gamma },
        );
        const parts: Record<string, Tensor> = { diffusion: loss };
        let total = loss;
        if (repa !== null) {
          // REPA (src/train/repa.ts): the UNet's features on the noisy latent against the frozen ViT's on the clean image
          parts.repa = repaLoss(
            (m.repa_projector as RepaProjector).forward(features!),
            encoderFeatures(m.vlm.model.vision_model, b.images!),
          );
          total = total.add(parts.repa.mul(repa));
        }
        const anchor = this.cfg.loss.text_anchor_weight;
        if (anchor !== null) {
          // the words of the prompt where the base reads them (src/train/anchor.ts)
          const w = b.words!;
          parts.anchor = textAnchorLoss(
            c.context,
            w,
            noGrad(() => m.encodeText(w.ids, w.mask)),
          );
          total = total.add(parts.anchor.mul(anchor));
        }
        return total === loss ? { loss, parts: {} } : { loss: total, parts };
      }
    }
  }

  // ---- samples: fixed items (indices far past any run's data) and fixed seeds ----
  sampleItems(data: StageData): Promise<Item[]> {
    const base = 1_000_000_000 + this.cfg.samples.seed;
    return Promise.all(
      Array.from({ length: this.cfg.samples.count }, async (_, i) => {
        // the fixed prompts are never dropped (empty) ones
        for (let k = 0; ; k++) {
          const it = await data.item(base + i * 97 + k);
          if (!it.dropped) return it;
        }
      }),
    );
  }

  // Rows of RGB images (each H x W x 3) showing the model now, or text lines for the VLM. Diffusion stages generate
  // through MumuPipeline (the scheduler config's sampler settings), prompt i from seed samples.seed + i.
  async samples(items: Item[]): Promise<{ rows: RgbImage[][]; text: string[] }> {
    const m = this.model;
    const b = this.batch(items);
    const S = this.cfg.data.size;
    const targets = b.images ? imagesFromTensor(b.images) : [];
    m.eval();
    try {
      if (this.cfg.stage === 'vae')
        return noGrad(() =>
          tidy(() => ({ rows: [targets, imagesFromTensor(m.vae.decode(m.vae.encode(b.images!).mode()))], text: [] })),
        );
      if (this.cfg.stage === 'vlm')
        return {
          rows: [],
          text: noGrad(() => tidy(() => items.map((it, i) => `${it.caption}  =>  ${this.greedyCaption(b, i)}`))),
        };
      const pipe = new MumuPipeline(this.components);
      const o = this.cfg.samples;
      const generated: RgbImage[] = [];
      for (const [i, it] of items.entries()) {
        const r = await pipe.generate(it.segments!, {
          steps: o.steps,
          guidanceScale: o.guidance_scale,
          seed: o.seed + i,
        });
        generated.push(r.images[0]!);
      }
      const rows = [generated, targets];
      if (b.pixels) {
        // the first conditioning image of each prompt, scaled up to the target size (black where there is none)
        rows.unshift(
          noGrad(() =>
            tidy(() => {
              let k = 0;
              const firsts: Tensor[] = [];
              for (const it of items) {
                const n = it.prompt?.images.length ?? 0;
                firsts.push(
                  n
                    ? F.interpolate(b.pixels!.narrow(0, k, 1), { size: [S, S], mode: 'nearest' })
                    : full([1, 3, S, S], -1, { device: this.device }),
                );
                k += n;
              }
              return imagesFromTensor(cat(firsts, 0));
            }),
          ),
        );
      }
      return { rows, text: [] };
    } finally {
      m.train();
    }
  }

  // Greedy decoding of prompt i's caption from its image.
  private greedyCaption(b: Batch, i: number): string {
    const t = this.built.tokenizer;
    const labels = b.labels!.select(0, i).toList() as number[];
    const ids = (b.ids!.select(0, i).toList() as number[]).slice(
      0,
      labels.findIndex((l) => l !== -100),
    );
    return t.decode(this.model.vlm.greedy(ids, b.pixels!.narrow(0, i, 1), { eosId: t.eosId }));
  }
}
