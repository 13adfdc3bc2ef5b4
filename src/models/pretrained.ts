// One component on disk, as diffusers and transformers lay it out: `config.json` plus
// `diffusion_pytorch_model.safetensors` (diffusers) or `model.safetensors` (transformers; large checkpoints shard it
// with `model.safetensors.index.json`). A LoRA-wrapped component saves its base weights there and its LoRA in
// PEFT's files (`adapter_config.json`, `adapter_model.safetensors`) beside them; loading puts both back.
import fs from 'node:fs';
import path from 'node:path';
import { saveSafetensors, loadSafetensors, SafetensorsFile, liveNativeBytes, withNativeBudget } from '../torch/index.ts';
import { Module, seeded, loraLayers, saveLora, loadLora, ADAPTER_CONFIG, unmergeLora, type StateDict, type WeightSource } from '../nn/index.ts';
import { readJson } from './config.ts';
import { AutoencoderKL, parseAutoencoderKLConfig, legacyVaeKey } from './vae.ts';
import { UNet2DConditionModel, parseUNetConfig } from './unet.ts';
import { VisionLanguageModel, parseVLMConfig } from './vlm.ts';
import { Adapter, parseAdapterConfig } from './adapter.ts';
import { TextEncoder, parseCLIPTextConfig } from './text_encoder.ts';

export const MUMU_VERSION = '0.1.0';

// Where each component class says it comes from: the library that can load it, the weights file, and the
// config.json metadata that library expects.
export const COMPONENTS = {
  UNet2DConditionModel: { library: 'diffusers', weights: 'diffusion_pytorch_model.safetensors', meta: { _class_name: 'UNet2DConditionModel' } },
  AutoencoderKL: { library: 'diffusers', weights: 'diffusion_pytorch_model.safetensors', meta: { _class_name: 'AutoencoderKL' } },
  VisionLanguageModel: { library: 'transformers', weights: 'model.safetensors', meta: { architectures: ['Idefics2ForConditionalGeneration'], model_type: 'idefics2' } },
  TextEncoder: { library: 'transformers', weights: 'model.safetensors', meta: { architectures: ['CLIPTextModel'], model_type: 'clip_text_model' } },
  Adapter: { library: 'mumu', weights: 'model.safetensors', meta: { _class_name: 'Adapter' } },
} as const;
export type ComponentClass = keyof typeof COMPONENTS;
// The class of each part of a MUMU model folder (model_index.json's keys).
export const CLASS_OF_PART = { vlm: 'VisionLanguageModel', adapter: 'Adapter', unet: 'UNet2DConditionModel', vae: 'AutoencoderKL', text_encoder: 'TextEncoder' } as const;
export type Component = UNet2DConditionModel | AutoencoderKL | VisionLanguageModel | TextEncoder | Adapter;

export function classOf(m: Component): ComponentClass {
  if (m instanceof UNet2DConditionModel) return 'UNet2DConditionModel';
  if (m instanceof AutoencoderKL) return 'AutoencoderKL';
  if (m instanceof VisionLanguageModel) return 'VisionLanguageModel';
  if (m instanceof TextEncoder) return 'TextEncoder';
  return 'Adapter';
}

// The safetensors files of a component folder: one file, or the shards a `.index.json` names.
export function weightFiles(dir: string, weights: string): string[] {
  const single = path.join(dir, weights);
  if (fs.existsSync(single)) return [single];
  const index = single + '.index.json';
  if (!fs.existsSync(index)) throw new Error(`${dir}: neither ${weights} nor ${weights}.index.json exists`);
  const map = (readJson(index) as { weight_map: Record<string, string> }).weight_map;
  return [...new Set(Object.values(map))].map((f) => path.join(dir, f));
}

// All weights of a component folder in memory.
export function readWeights(dir: string, weights: string): StateDict {
  const sd: StateDict = {};
  for (const file of weightFiles(dir, weights)) Object.assign(sd, loadSafetensors(file).tensors);
  return sd;
}

// The weights of a component folder, opened lazily: names (after `rename`) and shapes from the headers, data read
// tensor by tensor while loading. Call close() when done.
export function openWeights(dir: string, weights: string, rename = (k: string, _ndim: number) => ({ key: k, flatten: false })): { source: WeightSource; close(): void } {
  const files = weightFiles(dir, weights).map((f) => SafetensorsFile.openSync(f));
  const source: WeightSource = new Map();
  for (const f of files) {
    for (const name of f.keys()) {
      if (COMPUTED_BUFFER.test(name)) continue;
      const { shape } = f.info(name);
      const { key, flatten } = rename(name, shape.length);
      source.set(key, { shape: flatten ? [shape[0]!, shape.slice(1).reduce((a, b) => a * b, 1)] : shape, read: () => (flatten ? f.getTensor(name).flatten(1) : f.getTensor(name)) });
    }
  }
  return { source, close: () => files.forEach((f) => f.close()) };
}

// Buffers some public files carry that mumu computes instead: CLIP's / SigLIP's position_ids and the rotary
// inv_freq of older Llama / Mistral files. They are not weights, so dropping them loses nothing.
const COMPUTED_BUFFER = /(^|\.)(position_ids|rotary_emb\.inv_freq)$/;
export function dropComputedBuffers(sd: StateDict): StateDict {
  return Object.fromEntries(Object.entries(sd).filter(([k]) => !COMPUTED_BUFFER.test(k)));
}

// Writes config.json (the model's parsed config, so defaults become explicit) and the base weights; LoRA layers,
// if any, go to PEFT's files.
export function saveComponent(dir: string, m: Component): void {
  const spec = COMPONENTS[classOf(m)];
  fs.mkdirSync(dir, { recursive: true });
  const config = { ...spec.meta, _mumu_version: MUMU_VERSION, ...m.config };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const hasLora = loraLayers(m).length > 0;
  if (hasLora) {
    unmergeLora(m);
    saveLora(m, dir);
  }
  const base = Object.fromEntries(Object.entries(m.stateDict()).filter(([k]) => !/\.lora_[AB]\.weight$/.test(k)));
  saveSafetensors(path.join(dir, spec.weights), base, { format: 'pt' });
}

// Builds a component from its folder: config.json parsed strictly, the weights loaded strictly (streamed from the
// file, one tensor at a time), and the PEFT LoRA beside them (if there is one) injected and loaded. Building draws
// throwaway initial weights first (seed 0, so even that is reproducible); a lazy "meta" init would save that time.
export function loadComponent<C extends ComponentClass>(dir: string, cls: C): InstanceType<CLASSES[C]> {
  const raw = readJson(path.join(dir, 'config.json'));
  const { source, close } = openWeights(dir, COMPONENTS[cls].weights, cls === 'AutoencoderKL' ? legacyVaeKey : undefined);
  try {
    // The weights' headers say how big the model is; a config.json that describes a far larger one (an empty {}
    // means Mistral-7B's defaults) fails here instead of being built until the OS kills the process.
    const fileParams = [...source.values()].reduce((n, { shape }) => n + shape.reduce((a, b) => a * b, 1), 0);
    const limit = liveNativeBytes() + 3 * 4 * fileParams + 256 * 2 ** 20;
    const message = `${path.join(dir, 'config.json')} describes a model much larger than its weights (${fileParams.toLocaleString('en-US')} parameters): is the config complete and for these weights?`;
    const m = withNativeBudget(limit, message, () => seeded(0, () => buildComponent(cls, raw)));
    m.loadFrom(source, { where: dir });
    if (fs.existsSync(path.join(dir, ADAPTER_CONFIG))) loadLora(m, dir);
    return m as InstanceType<CLASSES[C]>;
  } finally {
    close();
  }
}

// The class each name builds (type-level only: buildComponent() below does the constructing).
type CLASSES = { UNet2DConditionModel: typeof UNet2DConditionModel; AutoencoderKL: typeof AutoencoderKL; VisionLanguageModel: typeof VisionLanguageModel; TextEncoder: typeof TextEncoder; Adapter: typeof Adapter };

// A component of class `cls` with new weights from its raw config.json (the caller seeds the draw).
export function buildComponent(cls: ComponentClass, raw: unknown): Module {
  switch (cls) {
    case 'UNet2DConditionModel': return new UNet2DConditionModel(parseUNetConfig(raw));
    case 'AutoencoderKL': return new AutoencoderKL(parseAutoencoderKLConfig(raw));
    case 'VisionLanguageModel': return new VisionLanguageModel(parseVLMConfig(raw));
    case 'TextEncoder': return new TextEncoder(parseCLIPTextConfig(raw));
    case 'Adapter': return new Adapter(parseAdapterConfig(raw));
  }
}
