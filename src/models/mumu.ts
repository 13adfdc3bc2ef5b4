// MumuModel: the whole of Figure 2 of the paper. A multimodal prompt goes through the VLM (ViT -> connector ->
// Mistral-style LM, perceiver removed), its last hidden states through the non-causal adapter, and the result is the
// UNet's cross-attention context; the VAE maps images to and from the latents the UNet denoises. A CLIP text
// encoder may ride along: the text-only base model MUMU starts from, and a baseline.
//
// Which parts train, and how, is config (paper Table 1: ViT frozen; connector and VLM rank-8 LoRA; adapter fully
// trained; UNet rank-8 LoRA). On disk it is a diffusers-like folder: model_index.json plus one folder per
// component (pretrained.ts); `tokenizer/` (and any other entry, e.g. a scheduler) is written by other code and
// carried through the index untouched.
import fs from 'node:fs';
import path from 'node:path';
import { Tensor } from '../torch/index.ts';
import { Module, injectLora, type LoraConfig } from '../nn/index.ts';
import type { PromptBatch } from '../prompt/encode.ts';
import { readConfig } from '../config.ts';
import { parseConfig, readJson } from './config.ts';
import PLAN from '../../configs/models/mumu.json' with { type: 'json' };
import { UNet2DConditionModel } from './unet.ts';
import { AutoencoderKL } from './vae.ts';
import { VisionLanguageModel } from './vlm.ts';
import { Adapter } from './adapter.ts';
import { TextEncoder } from './text_encoder.ts';
import { saveComponent, loadComponent, COMPONENTS, classOf, MUMU_VERSION, type Component } from './pretrained.ts';

export type PartMode = 'frozen' | 'lora' | 'full';

export interface MumuTrainingConfig {
  vision_model: PartMode;
  connector: PartMode;
  text_model: PartMode;
  adapter: 'frozen' | 'full';
  unet: PartMode;
  vae: 'frozen' | 'full';
  text_encoder: 'frozen' | 'full';
  lora_r: number;
  lora_alpha: number;
  lora_dropout: number;
  vlm_lora_target_modules: string[];
  unet_lora_target_modules: string[];
}

const PART_MODES = ['frozen', 'lora', 'full'] as const;
const WHOLE_MODES = ['frozen', 'full'] as const;
const MODE_RULES = {
  vision_model: { choices: PART_MODES }, connector: { choices: PART_MODES }, text_model: { choices: PART_MODES }, unet: { choices: PART_MODES },
  adapter: { choices: WHOLE_MODES }, vae: { choices: WHOLE_MODES }, text_encoder: { choices: WHOLE_MODES },
};

// Paper Table 1, written once: configs/models/mumu.json, every key required (this object only gives their kinds).
const PLAN_KINDS: MumuTrainingConfig = {
  vision_model: 'frozen', connector: 'frozen', text_model: 'frozen', adapter: 'frozen', unet: 'frozen', vae: 'frozen', text_encoder: 'frozen',
  lora_r: 0, lora_alpha: 0, lora_dropout: 0, vlm_lora_target_modules: [], unet_lora_target_modules: [],
};
// imported, not read at run time, so that bundles (scripts/gpu) carry it
export const PAPER_TRAINING: MumuTrainingConfig = readConfig('configs/models/mumu.json', PLAN, {
  defaults: PLAN_KINDS, required: Object.keys(PLAN_KINDS) as (keyof MumuTrainingConfig)[], rules: MODE_RULES,
});

// A plan: Table 1 with the given keys over it.
export function parseTrainingConfig(raw: unknown): MumuTrainingConfig {
  return parseConfig<MumuTrainingConfig>('mumu training', raw, { defaults: PAPER_TRAINING, rules: MODE_RULES });
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export interface MumuParts {
  vlm: VisionLanguageModel;
  adapter: Adapter;
  unet: UNet2DConditionModel;
  vae: AutoencoderKL;
  text_encoder?: TextEncoder | null;
}

export class MumuModel extends Module {
  vlm: VisionLanguageModel;
  adapter: Adapter;
  unet: UNet2DConditionModel;
  vae: AutoencoderKL;
  text_encoder: TextEncoder | null;
  // entries of model_index.json this code does not own (tokenizer, scheduler), carried through save/load
  extraIndex: Record<string, unknown> = {};
  // a training-only head (the REPA projector, src/train/repa.ts): its weights train and go into checkpoints with
  // the rest, but it is no component, so a model folder never holds it
  repa_projector: Module | null = null;

  constructor(parts: MumuParts) {
    super();
    this.vlm = parts.vlm;
    this.adapter = parts.adapter;
    this.unet = parts.unet;
    this.vae = parts.vae;
    this.text_encoder = parts.text_encoder ?? null;
    const [vlmHidden, adapterIn] = [this.vlm.config.text_config.hidden_size, this.adapter.config.in_dim];
    if (vlmHidden !== adapterIn) throw new Error(`MumuModel: the adapter reads ${adapterIn}-wide states but the VLM's hidden_size is ${vlmHidden}`);
    if (this.adapter.config.out_dim !== this.unet.config.cross_attention_dim) {
      throw new Error(`MumuModel: the adapter writes ${this.adapter.config.out_dim}-wide states but the UNet's cross_attention_dim is ${this.unet.config.cross_attention_dim}`);
    }
    if (this.vae.config.latent_channels !== this.unet.config.in_channels) throw new Error(`MumuModel: VAE latent_channels ${this.vae.config.latent_channels} != UNet in_channels ${this.unet.config.in_channels}`);
  }

  // Sets what trains: LoRA layers where a part says 'lora', requiresGrad per part. Call once, before building the
  // optimiser.
  applyTraining(t: MumuTrainingConfig): this {
    const lora = (targets: string[] | string): LoraConfig => ({ r: t.lora_r, lora_alpha: t.lora_alpha, lora_dropout: t.lora_dropout, target_modules: targets });
    this.requiresGrad_(false);
    // The VLM's three parts share one PEFT adapter (one file in vlm/), its targets limited to the LoRA parts by a
    // regex over the full module name.
    const vlmParts = { vision_model: t.vision_model, connector: t.connector, text_model: t.text_model };
    const loraParts = Object.entries(vlmParts).filter(([, m]) => m === 'lora').map(([k]) => k);
    if (loraParts.length) {
      injectLora(this.vlm, lora(`model\\.(?:${loraParts.join('|')})\\..*\\.(?:${t.vlm_lora_target_modules.map(escape).join('|')})`));
    }
    for (const [k, m] of Object.entries(vlmParts)) if (m === 'full') this.vlm.model[k as keyof typeof vlmParts].requiresGrad_(true);
    if (t.unet === 'lora') {
      injectLora(this.unet, lora(t.unet_lora_target_modules));
    }
    if (t.unet === 'full') this.unet.requiresGrad_(true);
    if (t.adapter === 'full') this.adapter.requiresGrad_(true);
    if (t.vae === 'full') this.vae.requiresGrad_(true);
    if (t.text_encoder === 'full') this.text_encoder?.requiresGrad_(true);
    return this;
  }

  // The UNet's cross-attention context for a batch of multimodal prompts (src/prompt's collatePrompts; a null mask:
  // every token is real): (B, T, cross_attention_dim).
  encodePrompt({ inputIds, pixelValues, attentionMask }: Pick<PromptBatch, 'inputIds' | 'pixelValues'> & { attentionMask: Tensor | null }): Tensor {
    const { lastHiddenState } = this.vlm.forward(inputIds, pixelValues, { attentionMask });
    return this.adapter.forward(lastHiddenState, attentionMask);
  }

  // The text-only base model's context: CLIP's last hidden states.
  encodeText(ids: Tensor, attentionMask: Tensor | null = null): Tensor {
    if (!this.text_encoder) throw new Error('MumuModel: this model has no text_encoder');
    return this.text_encoder.forward(ids, attentionMask).lastHiddenState;
  }

  // Predicted noise for noisy latents (B, L, h, w) at timesteps t under a context from encodePrompt / encodeText.
  forward(latents: Tensor, t: Tensor | number, context: Tensor, contextMask: Tensor | null = null): Tensor {
    return this.unet.forward(latents, t, context, { encoderAttentionMask: contextMask });
  }

  parameterCounts(): Record<string, { total: number; trainable: number }> {
    const parts: [string, Module | null][] = [
      ['vlm.vision_model', this.vlm.model.vision_model], ['vlm.connector', this.vlm.model.connector], ['vlm.text_model', this.vlm.model.text_model],
      ['vlm.lm_head', this.vlm.lm_head], ['adapter', this.adapter], ['unet', this.unet], ['vae', this.vae], ['text_encoder', this.text_encoder],
      ['repa_projector', this.repa_projector],
    ];
    return Object.fromEntries(parts.filter(([, m]) => m).map(([k, m]) => [k, { total: m!.numParameters(), trainable: m!.numParameters({ trainableOnly: true }) }]));
  }

  // ---- the folder ----
  components(): [string, Component][] {
    const list: [string, Component | null][] = [['vlm', this.vlm], ['adapter', this.adapter], ['unet', this.unet], ['vae', this.vae], ['text_encoder', this.text_encoder]];
    return list.filter((e): e is [string, Component] => e[1] !== null);
  }

  save(dir: string): void {
    fs.mkdirSync(dir, { recursive: true });
    const index: Record<string, unknown> = { _class_name: 'MumuPipeline', _mumu_version: MUMU_VERSION, ...this.extraIndex };
    for (const [name, m] of this.components()) {
      const cls = classOf(m);
      saveComponent(path.join(dir, name), m);
      index[name] = [COMPONENTS[cls].library, cls];
    }
    fs.writeFileSync(path.join(dir, 'model_index.json'), JSON.stringify(index, null, 2) + '\n');
  }

  static load(dir: string): MumuModel {
    const index = readJson(path.join(dir, 'model_index.json')) as Record<string, unknown>;
    const entry = (name: string) => index[name] as [string | null, string | null] | undefined;
    const need = <C extends keyof typeof COMPONENTS>(name: string, cls: C) => {
      const e = entry(name);
      if (!e || e[1] !== cls) throw new Error(`${dir}/model_index.json: '${name}' must be [..., '${cls}'], got ${JSON.stringify(e)}`);
      return loadComponent(path.join(dir, name), cls);
    };
    const te = entry('text_encoder');
    const model = new MumuModel({
      vlm: need('vlm', 'VisionLanguageModel'), adapter: need('adapter', 'Adapter'), unet: need('unet', 'UNet2DConditionModel'),
      vae: need('vae', 'AutoencoderKL'), text_encoder: te && te[1] ? need('text_encoder', 'TextEncoder') : null,
    });
    const own = new Set(['vlm', 'adapter', 'unet', 'vae', 'text_encoder']);
    for (const [k, v] of Object.entries(index)) if (!k.startsWith('_') && !own.has(k)) model.extraIndex[k] = v;
    return model;
  }
}
