// Tiny stage configs for the training tests: the fixture models (test/train/fixtures/models), 16 px scenes of a
// handful of concepts, batch 2.
import { parseTrainConfig, type TrainConfig, type StageName } from '../../src/train/config.ts';

export const FIXTURE_MODELS = new URL('./fixtures/models', import.meta.url).pathname;
export const TINY_SLUGS = ['dog-face', 'cat-face', 'rocket', 'red-apple', 'banana', 'sun'];

const GROUPS: Record<StageName, { name: string; match: string; lr: number; weight_decay: number }[]> = {
  vae: [{ name: 'vae', match: '^vae\\.', lr: 1e-3, weight_decay: 0 }],
  't2i-base': [
    { name: 'unet', match: '^unet\\.', lr: 1e-3, weight_decay: 0.01 },
    { name: 'text_encoder', match: '^text_encoder\\.', lr: 5e-4, weight_decay: 0.01 },
  ],
  'style-finetune': [{ name: 'unet', match: '^unet\\.', lr: 1e-3, weight_decay: 0.01 }],
  vlm: [{ name: 'vlm', match: '^vlm\\.', lr: 1e-3, weight_decay: 0.01 }],
  'adapter-align': [{ name: 'adapter', match: '^adapter\\.', lr: 1e-3, weight_decay: 0.01 }],
  'mumu-stage1': [
    { name: 'adapter', match: '^adapter\\.', lr: 1e-3, weight_decay: 0.01 },
    { name: 'unet', match: '^unet\\.', lr: 5e-4, weight_decay: 0 },
    { name: 'vlm', match: '^vlm\\.', lr: 3e-4, weight_decay: 0 },
  ],
  'mumu-stage2': [
    { name: 'adapter', match: '^adapter\\.', lr: 1e-3, weight_decay: 0.01 },
    { name: 'unet', match: '^unet\\.', lr: 5e-4, weight_decay: 0 },
    { name: 'vlm', match: '^vlm\\.', lr: 3e-4, weight_decay: 0 },
  ],
};

const PLANS: Record<StageName, object> = {
  vae: { vae: 'full' },
  't2i-base': { unet: 'full', text_encoder: 'full' },
  'style-finetune': { unet: 'full' },
  vlm: { vision_model: 'full', connector: 'full', text_model: 'full', lm_head: 'full' },
  'adapter-align': { adapter: 'full' },
  'mumu-stage1': { vision_model: 'frozen', connector: 'lora', text_model: 'lora', adapter: 'full', unet: 'lora' },
  'mumu-stage2': { vision_model: 'frozen', connector: 'lora', text_model: 'lora', adapter: 'full', unet: 'lora' },
};

export function tinyRaw(stage: StageName, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    stage,
    model_configs: FIXTURE_MODELS,
    seed: 0,
    steps: 20,
    batch_size: 2,
    data: {
      seed: 3,
      size: 16,
      concepts: { slugs: TINY_SLUGS },
      prompt_dropout: 0.25,
      prefetch: 1,
      ...(stage === 'style-finetune' ? { styles: ['openmoji'] } : {}),
    },
    optimizer: { groups: GROUPS[stage] },
    schedule: { kind: 'cosine', warmup_steps: 2, min_lr_ratio: 0.1 },
    train: PLANS[stage],
    checkpoint: { every: 5, keep: 2 },
    samples: { every: 0, count: 2, steps: 2 },
    log_every: 5,
    ...over,
  };
}

export const tinyConfig = (stage: StageName, over: Record<string, unknown> = {}): TrainConfig =>
  parseTrainConfig(tinyRaw(stage, over));
