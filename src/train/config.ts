// A training stage as one JSON file (configs/<stage>.json), read strictly: unknown keys are errors, so a typo
// never silently trains with a default. Every number that shapes a run lives here and is copied into the run folder.
import path from 'node:path';
import { readConfig, readJson, type ConfigSpec } from '../config.ts';
import { parseTrainingConfig, type MumuTrainingConfig } from '../models/index.ts';
import type { ConceptFilter } from '../data/emoji-world/index.ts';

export const STAGES = [
  'vae',
  't2i-base',
  'vlm',
  'adapter-align',
  'mumu-stage1',
  'mumu-stage2',
  'style-finetune',
] as const;
export type StageName = (typeof STAGES)[number];

export interface GroupConfig {
  name: string;
  match: string; // regex over the full parameter name (e.g. "^adapter\\."); a parameter joins the first group it matches
  lr: number;
  weight_decay: number;
}

export interface TrainConfig {
  stage: StageName;
  description: string;
  // a model folder to start from (the previous stage's <out>/model), or null to build fresh weights from model_configs
  init: string | null;
  model_configs: string; // folder of vae.json, unet.json, vlm.json, adapter.json, text_encoder.json
  // parts built fresh (new weights) instead of taken from init, from the init's <part>/config.json (or, without init,
  // model_configs/<part>.json) with these keys over it: e.g. { "unet": { "addition_embed_type": "text" },
  // "text_encoder": {} } starts a new base on a trained VAE
  fresh: Partial<Record<'vlm' | 'adapter' | 'unet' | 'vae' | 'text_encoder', Record<string, unknown>>> | null;
  // parts taken from other model folders instead of init (e.g. { "vlm": "runs/vlm/model" }: a VLM trained on its own,
  // joined to a base; their tokenizer must be init's) or from component folders (a committed stage's
  // models/stages/<stage>/<part>); "scheduler" names a folder with the scheduler_config.json to train with (the base's)
  from: Partial<Record<'vlm' | 'adapter' | 'unet' | 'vae' | 'text_encoder' | 'scheduler', string>> | null;
  seed: number;
  steps: number;
  batch_size: number;
  grad_accum: number;
  data: {
    seed: number;
    size: number; // target image side in px
    concepts: ConceptFilter | null;
    styles: string[] | null;
    styles_per_content: number;
    // scene difficulty (EmojiWorld WorldOptions): weights of 1/2/3 objects and of background kinds; null = defaults
    object_counts: number[] | null;
    backgrounds: Record<string, number> | null;
    // classifier-free guidance: the prompt is replaced by the empty prompt this fraction of the time
    prompt_dropout: number;
    // mumu stages: side (px) of the reference crops the ViT sees; null = the ViT's own side. Stage 2 uses 2x, i.e. 4x
    // the tokens per image (paper section 5), through the ViT's interpolated position embeddings.
    reference_size: number | null;
    render_scale: number; // mumu stages: scenes drawn this much larger so crops keep detail (as mumu bootstrap)
    crop_fraction: number; // vlm stage: fraction of samples that caption one object crop instead of the scene
    // mumu stages, beyond the paper (src/train/references.ts): the chance that an object crop comes from the same content
    // drawn in another style, and that the caption's style name is replaced by an image of other objects in that style
    restyle_references: number;
    style_references: number;
    // ... and that an object crop is cut from the same scene on a plain colour (the caption still asks its background)
    reference_backgrounds: number;
    prefetch: number; // batches generated ahead of the trainer
    // a `mumu bootstrap` output folder to read instead of generating scenes on the fly (same prompts, made once)
    shards: string | null;
  };
  optimizer: { betas: [number, number]; eps: number; groups: GroupConfig[] };
  schedule: { kind: 'cosine' | 'constant'; warmup_steps: number; min_lr_ratio: number };
  clip_grad_norm: number | null;
  // EMA of the trainable weights (what gets exported). warmup: the decay at optimizer step k is
  // min(decay, (1 + k) / (10 + k)), as diffusers' EMAModel, so early averages do not hold the random init.
  ema: { decay: number; warmup: boolean } | null;
  // scheduler_config.json keys set on the model this stage trains (e.g. prediction_type, rescale_betas_zero_snr,
  // timestep_spacing): the noise schedule and target of training and of the exported model's sampling alike. Only a
  // stage that starts a diffusion model should change them; null keeps the init model's.
  scheduler: Record<string, unknown> | null;
  // which parts train and how (paper Table 1 for the MUMU stages); parts not named are frozen
  train: Partial<MumuTrainingConfig> & { lm_head?: 'frozen' | 'full' };
  // kl_weight: the VAE's KL term; snr_gamma: Min-SNR-gamma weighting of the diffusion loss (Hang et al. 2023), null
  // off; repa_weight: REPA's representation-alignment term (src/train/repa.ts), null off; repa_layer: where in the
  // UNet it reads ('mid' or 'down.<i>'); repa_hidden: its projector's width; text_anchor_weight: the MUMU stage's text
  // anchor (src/train/anchor.ts: the adapter's output at the prompt's words against the base's text encoder), null off
  loss: {
    kl_weight: number;
    snr_gamma: number | null;
    repa_weight: number | null;
    repa_layer: string;
    repa_hidden: number;
    text_anchor_weight: number | null;
  };
  checkpoint: { every: number; keep: number };
  samples: { every: number; count: number; steps: number; guidance_scale: number; seed: number };
  log_every: number;
  export: { dtype: 'float32' | 'float16' };
}

const FROZEN_ALL: MumuTrainingConfig = parseTrainingConfig({
  vision_model: 'frozen',
  connector: 'frozen',
  text_model: 'frozen',
  adapter: 'frozen',
  unet: 'frozen',
  vae: 'frozen',
  text_encoder: 'frozen',
});

export const DEFAULTS: Omit<TrainConfig, 'stage' | 'optimizer'> & {
  optimizer: Omit<TrainConfig['optimizer'], 'groups'>;
} = {
  description: '',
  init: null,
  model_configs: 'configs/models',
  fresh: null,
  from: null,
  seed: 0,
  steps: 100,
  batch_size: 8,
  grad_accum: 1,
  data: {
    seed: 1,
    size: 64,
    concepts: null,
    styles: null,
    styles_per_content: 4,
    object_counts: null,
    backgrounds: null,
    prompt_dropout: 0.1,
    reference_size: null,
    render_scale: 2,
    crop_fraction: 0.5,
    restyle_references: 0,
    style_references: 0,
    reference_backgrounds: 0,
    prefetch: 2,
    shards: null,
  },
  optimizer: { betas: [0.9, 0.999], eps: 1e-8 },
  schedule: { kind: 'cosine', warmup_steps: 0, min_lr_ratio: 0.1 },
  clip_grad_norm: 1.0,
  ema: null,
  train: {},
  scheduler: null,
  loss: {
    kl_weight: 1e-6,
    snr_gamma: null,
    repa_weight: null,
    repa_layer: 'mid',
    repa_hidden: 256,
    text_anchor_weight: null,
  },
  checkpoint: { every: 100, keep: 3 },
  samples: { every: 0, count: 4, steps: 20, guidance_scale: 4, seed: 1234 },
  log_every: 10,
  export: { dtype: 'float32' },
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const count = { int: true, min: 1 };
const SPEC: ConfigSpec<TrainConfig> = {
  defaults: { ...DEFAULTS, stage: 'vae', optimizer: { ...DEFAULTS.optimizer, groups: [] } },
  rules: { steps: count, batch_size: count, grad_accum: count, seed: { int: true, min: 0 }, log_every: count },
  sections: {
    data: {
      defaults: DEFAULTS.data,
      rules: {
        prompt_dropout: { min: 0, max: 1 },
        restyle_references: { min: 0, max: 1 },
        style_references: { min: 0, max: 1 },
        reference_backgrounds: { min: 0, max: 1 },
        reference_size: count,
        size: count,
        prefetch: { int: true, min: 0 },
      },
    },
    optimizer: { defaults: { ...DEFAULTS.optimizer, groups: [] } },
    schedule: {
      defaults: DEFAULTS.schedule,
      rules: {
        kind: { choices: ['cosine', 'constant'] },
        warmup_steps: { int: true, min: 0 },
        min_lr_ratio: { min: 0 },
      },
    },
    ema: { defaults: { decay: 0, warmup: false }, required: ['decay'], rules: { decay: { min: 0 } } },
    loss: {
      defaults: DEFAULTS.loss,
      rules: { snr_gamma: { min: 0 }, repa_weight: { min: 0 }, repa_hidden: count, text_anchor_weight: { min: 0 } },
    },
    checkpoint: { defaults: DEFAULTS.checkpoint, rules: { every: count, keep: count } },
    samples: { defaults: DEFAULTS.samples },
    export: { defaults: DEFAULTS.export, rules: { dtype: { choices: ['float32', 'float16'] } } },
  },
};
const GROUP: ConfigSpec<GroupConfig> = {
  defaults: { name: '', match: '', lr: 0, weight_decay: 0 },
  required: ['name', 'match', 'lr'],
  rules: { lr: { min: 0 }, weight_decay: { min: 0 } },
};

export function parseTrainConfig(raw: unknown, where = 'train config'): TrainConfig {
  if (!isObj(raw)) throw new Error(`${where}: expected a JSON object`);
  if (!STAGES.includes(raw.stage as StageName))
    throw new Error(`${where}: stage must be one of ${STAGES.join(', ')}, got ${JSON.stringify(raw.stage)}`);
  if (!isObj(raw.optimizer) || !Array.isArray(raw.optimizer.groups) || raw.optimizer.groups.length === 0) {
    throw new Error(`${where}: optimizer.groups must list at least one {name, match, lr, weight_decay}`);
  }
  const c = readConfig(where, raw, SPEC);
  if (c.ema && c.ema.decay >= 1) throw new Error(`${where}: ema.decay must be below 1`);
  for (const key of ['style_references', 'reference_backgrounds'] as const)
    if (c.data[key] > 0 && c.data.shards)
      throw new Error(`${where}: data.${key} needs scenes drawn on the fly, not data.shards`);
  if (c.data.restyle_references > 0 && (c.data.styles_per_content < 2 || c.data.shards))
    throw new Error(
      `${where}: data.restyle_references needs scenes drawn on the fly with data.styles_per_content >= 2 (a crop's other style comes from a sibling scene)`,
    );
  if (c.fresh !== null) {
    if (!isObj(c.fresh)) throw new Error(`${where}: fresh must be null or {part: {config keys}}`);
    for (const [k, v] of Object.entries(c.fresh)) {
      if (!['vlm', 'adapter', 'unet', 'vae', 'text_encoder'].includes(k))
        throw new Error(`${where}: fresh.${k}: not a model part (vlm, adapter, unet, vae, text_encoder)`);
      if (!isObj(v))
        throw new Error(`${where}: fresh.${k} must be an object of config keys ({} for the file as it is)`);
    }
  }
  if (c.from !== null) {
    if (!isObj(c.from)) throw new Error(`${where}: from must be null or {part: model folder}`);
    for (const [k, v] of Object.entries(c.from)) {
      if (!['vlm', 'adapter', 'unet', 'vae', 'text_encoder', 'scheduler'].includes(k))
        throw new Error(`${where}: from.${k}: not a model part (vlm, adapter, unet, vae, text_encoder, scheduler)`);
      if (typeof v !== 'string') throw new Error(`${where}: from.${k} must be a model folder path`);
      if (c.fresh && k in c.fresh) throw new Error(`${where}: ${k} is both fresh and from ${v}`);
    }
  }
  if (c.scheduler !== null && !isObj(c.scheduler))
    throw new Error(`${where}: scheduler must be null or an object of scheduler_config.json keys`);
  const names = new Set<string>();
  c.optimizer.groups = c.optimizer.groups.map((g, i) => {
    const gw = `${where}: optimizer.groups[${i}]`;
    const group = readConfig(gw, g, GROUP);
    if (names.has(group.name)) throw new Error(`${gw}: name must be a unique string`);
    names.add(group.name);
    new RegExp(group.match);
    return group;
  });
  const { lm_head, ...plan } = c.train;
  if (lm_head !== undefined && lm_head !== 'frozen' && lm_head !== 'full')
    throw new Error(`${where}: train.lm_head must be frozen or full`);
  c.train = { ...parseTrainingConfig({ ...FROZEN_ALL, ...plan }), ...(lm_head ? { lm_head } : {}) };
  return c;
}

// A config may start from another: `"extends": "t2i-base.json"` (relative to the extending file) takes that file,
// then this one's keys over it, objects merged key by key and everything else (arrays included) replaced. A run's
// next part or an A/B arm is then only what differs; the run folder's config.json keeps the merged whole.
export function readTrainConfig(file: string): TrainConfig {
  const raw = readExtended(file, []);
  const c = parseTrainConfig(raw, file);
  // paths in a config are relative to the working directory (configs are run from the repo root)
  const from = c.from && Object.fromEntries(Object.entries(c.from).map(([k, v]) => [k, path.resolve(v)]));
  return {
    ...c,
    from,
    model_configs: path.resolve(c.model_configs),
    init: c.init && path.resolve(c.init),
    data: { ...c.data, shards: c.data.shards && path.resolve(c.data.shards) },
  };
}

function readExtended(file: string, chain: string[]): unknown {
  const full = path.resolve(file);
  if (chain.includes(full)) throw new Error(`${file}: extends makes a loop (${[...chain, full].join(' -> ')})`);
  const raw = readJson(file);
  if (!isObj(raw) || !('extends' in raw)) return raw;
  const { extends: parent, ...own } = raw;
  if (typeof parent !== 'string') throw new Error(`${file}: extends must be the path of another config`);
  const base = readExtended(path.resolve(path.dirname(full), parent), [...chain, full]);
  if (!isObj(base)) throw new Error(`${file}: extends ${parent}, which is not a JSON object`);
  // the parent's notes (_comment) describe the parent, not this run
  return mergeConfig(Object.fromEntries(Object.entries(base).filter(([k]) => !k.startsWith('_'))), own);
}

function mergeConfig(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const under = out[k];
    out[k] = isObj(v) && isObj(under) ? mergeConfig(under, v) : v;
  }
  return out;
}

// The EMA decay at optimizer step `step` (0-based: the first update is step 0).
export function emaDecay(e: NonNullable<TrainConfig['ema']>, step: number): number {
  return e.warmup ? Math.min(e.decay, (1 + step) / (10 + step)) : e.decay;
}

// Linear warm-up, then cosine decay to min_lr_ratio (or constant), as a factor on each group's base lr.
export function lrFactor(s: TrainConfig['schedule'], step: number, total: number): number {
  if (s.warmup_steps > 0 && step < s.warmup_steps) return (step + 1) / s.warmup_steps;
  if (s.kind === 'constant') return 1;
  const span = Math.max(1, total - s.warmup_steps);
  const p = Math.min(1, (step - s.warmup_steps) / span);
  return s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + Math.cos(Math.PI * p));
}
