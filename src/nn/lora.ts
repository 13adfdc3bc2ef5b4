// LoRA (Hu et al. 2021): W x + (alpha / r) B A x with A (r, in), B (out, r) and B = 0 at the start, so training
// starts from the base model exactly. MUMU trains rank-8 LoRAs on the VLM, its connector and the UNet (paper
// section 5, Table 1), and merges the UNet LoRA into style fine-tunes of the base (Finding 4, Figure 9): hence
// merge / unmerge, PEFT-format files, and merging a saved LoRA into another base of the same architecture.
//
// A wrapped layer keeps its base tensors under their original names (`to_q.weight`) and adds `to_q.lora_A.weight`,
// `to_q.lora_B.weight`: the base checkpoint still loads by name, and the LoRA keys are PEFT's keys (PEFT files
// prefix them with `base_model.model.`).
import fs from 'node:fs';
import path from 'node:path';
import { Tensor, F, noGrad, saveSafetensors, loadSafetensors, type Generator } from '../torch/index.ts';
import { Module, seeded, initGenerator } from './module.ts';
import { Linear, Conv2d, Dropout } from './layers.ts';

// The fields of PEFT's LoraConfig that mumu reads and writes (adapter_config.json).
export interface LoraConfig {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  // PEFT semantics: a list matches a module whose name equals an entry or ends with `.entry`; a string is a regex
  // that must match the whole name.
  target_modules: string[] | string;
  exclude_modules?: string[] | string | null;
  use_rslora?: boolean; // scale alpha / sqrt(r) instead of alpha / r
}

const scalingOf = (c: LoraConfig) => (c.use_rslora ? c.lora_alpha / Math.sqrt(c.r) : c.lora_alpha / c.r);

export class LoraLinear extends Linear {
  lora_A: Linear; // (r, in), torch's default init
  lora_B: Linear; // (out, r), zeros
  lora_dropout: Dropout;
  readonly scaling: number;
  merged = false;
  constructor(base: Linear, config: LoraConfig) {
    super(base.inFeatures, base.outFeatures, { adopt: base });
    this.lora_A = new Linear(base.inFeatures, config.r, { bias: false });
    this.lora_B = new Linear(config.r, base.outFeatures, { bias: false });
    noGrad(() => this.lora_B.weight.zero_());
    this.lora_dropout = new Dropout(config.lora_dropout);
    this.scaling = scalingOf(config);
  }
  // scaling * B A, shaped like the base weight (out, in)
  delta(): Tensor {
    return this.lora_B.weight.matmul(this.lora_A.weight).mul(this.scaling);
  }
  override forward(x: Tensor): Tensor {
    const base = F.linear(x, this.weight, this.bias);
    if (this.merged) return base;
    return base.add(this.lora_B.forward(this.lora_A.forward(this.lora_dropout.forward(x))).mul(this.scaling));
  }
}

// Conv2d LoRA as PEFT builds it: A is a conv with the base's kernel, stride and padding into r channels, B a 1x1
// conv back out, so B A has the base kernel's shape.
export class LoraConv2d extends Conv2d {
  lora_A: Conv2d;
  lora_B: Conv2d;
  lora_dropout: Dropout;
  readonly scaling: number;
  merged = false;
  constructor(base: Conv2d, config: LoraConfig) {
    super(base.inChannels, base.outChannels, base.kernelSize, {
      stride: base.stride,
      padding: base.padding,
      adopt: base,
    });
    this.lora_A = new Conv2d(base.inChannels, config.r, base.kernelSize, {
      stride: base.stride,
      padding: base.padding,
      bias: false,
    });
    this.lora_B = new Conv2d(config.r, base.outChannels, 1, { bias: false });
    noGrad(() => this.lora_B.weight.zero_());
    this.lora_dropout = new Dropout(config.lora_dropout);
    this.scaling = scalingOf(config);
  }
  delta(): Tensor {
    const [out, r] = this.lora_B.weight.shape as [number, number];
    const k = this.kernelSize;
    // (out, r) @ (r, in * k * k) -> (out, in, k, k)
    return this.lora_B.weight
      .view(out, r)
      .matmul(this.lora_A.weight.reshape(r, -1))
      .view(out, this.inChannels, k, k)
      .mul(this.scaling);
  }
  override forward(x: Tensor): Tensor {
    const base = super.forward(x);
    if (this.merged) return base;
    return base.add(this.lora_B.forward(this.lora_A.forward(this.lora_dropout.forward(x))).mul(this.scaling));
  }
}

export type LoraLayer = LoraLinear | LoraConv2d;
const isLora = (m: Module): m is LoraLayer => m instanceof LoraLinear || m instanceof LoraConv2d;

function matches(name: string, pattern: string[] | string | null | undefined): boolean {
  if (pattern == null) return false;
  if (typeof pattern === 'string') return new RegExp(`^(?:${pattern})$`).test(name);
  return pattern.some((t) => name === t || name.endsWith('.' + t));
}

// The LoRA layers of a model by name.
export function loraLayers(model: Module): [string, LoraLayer][] {
  return model.namedModules().filter((e): e is [string, LoraLayer] => isLora(e[1]));
}

// The config each model's LoRA layers were injected with, so saving needs no extra argument.
const CONFIGS = new WeakMap<Module, LoraConfig>();
export const loraConfigOf = (model: Module): LoraConfig | undefined => CONFIGS.get(model);

// Wraps every Linear / Conv2d whose name matches config.target_modules (and not exclude_modules). As PEFT does, the
// whole model is then frozen except the LoRA weights; unfreeze other parts afterwards if they train fully.
// Layers that are LoRA layers already are left as they are. Returns the newly wrapped names; throws if nothing
// matched (a misspelt target would otherwise train nothing).
export function injectLora(model: Module, config: LoraConfig, { generator }: { generator?: Generator } = {}): string[] {
  const wrapped: string[] = [];
  let present = 0; // matching layers that are LoRA layers already (a model loaded with its LoRA)
  seeded(generator ?? initGenerator(), () => {
    for (const s of [...model.moduleSlots()]) {
      const m = s.value;
      if (!s.path || !(m instanceof Linear || m instanceof Conv2d) || /\.lora_[AB]$/.test(s.path)) continue;
      if (!matches(s.path, config.target_modules) || matches(s.path, config.exclude_modules)) continue;
      if (isLora(m)) {
        present++;
      } else {
        (s.owner as Record<string | number, Module>)[s.key] =
          m instanceof Linear ? new LoraLinear(m, config) : new LoraConv2d(m, config);
        wrapped.push(s.path);
      }
    }
  });
  if (!wrapped.length && !present)
    throw new Error(
      `injectLora: no Linear or Conv2d module matches target_modules ${JSON.stringify(config.target_modules)}`,
    );
  CONFIGS.set(model, config);
  model.requiresGrad_(false);
  for (const [, l] of loraLayers(model)) {
    l.lora_A.requiresGrad_(true);
    l.lora_B.requiresGrad_(true);
  }
  return wrapped;
}

// Adds scaling * B A into the base weights (inference without the extra matmuls), and takes it out again.
export function mergeLora(model: Module): void {
  noGrad(() => {
    for (const [, l] of loraLayers(model)) {
      if (l.merged) continue;
      l.weight.add_(l.delta());
      l.merged = true;
    }
  });
}
export function unmergeLora(model: Module): void {
  noGrad(() => {
    for (const [, l] of loraLayers(model)) {
      if (!l.merged) continue;
      l.weight.sub_(l.delta());
      l.merged = false;
    }
  });
}

// Replaces every LoRA layer by a plain layer over its base tensors, merging the LoRA in first unless merge=false
// (which discards it).
export function unloadLora(model: Module, { merge = true } = {}): void {
  if (merge) mergeLora(model);
  else unmergeLora(model);
  for (const s of [...model.moduleSlots()]) {
    const m = s.value;
    if (!isLora(m)) continue;
    const plain =
      m instanceof LoraLinear
        ? new Linear(m.inFeatures, m.outFeatures, { adopt: m })
        : new Conv2d(m.inChannels, m.outChannels, m.kernelSize, { stride: m.stride, padding: m.padding, adopt: m });
    (s.owner as Record<string | number, Module>)[s.key] = plain;
  }
  CONFIGS.delete(model);
}

// Only the LoRA weights, under PEFT's keys.
export function loraStateDict(model: Module): Record<string, Tensor> {
  const sd: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(model.stateDict()))
    if (/\.lora_[AB]\.weight$/.test(k)) sd[`base_model.model.${k}`] = t;
  return sd;
}

export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const ADAPTER_CONFIG = 'adapter_config.json';

// Writes what PEFT's save_pretrained writes: adapter_config.json and adapter_model.safetensors.
export function saveLora(
  model: Module,
  dir: string,
  config = loraConfigOf(model),
  { baseModel = null as string | null } = {},
): void {
  if (!config) throw new Error('saveLora: the model has no LoRA layers (or they were not made by injectLora)');
  if (loraLayers(model).some(([, l]) => l.merged))
    throw new Error('saveLora: unmerge the LoRA before saving it (its delta is inside the base weights)');
  fs.mkdirSync(dir, { recursive: true });
  const peft = {
    peft_type: 'LORA',
    task_type: null,
    base_model_name_or_path: baseModel,
    inference_mode: true,
    r: config.r,
    lora_alpha: config.lora_alpha,
    lora_dropout: config.lora_dropout,
    target_modules: config.target_modules,
    exclude_modules: config.exclude_modules ?? null,
    use_rslora: config.use_rslora ?? false,
    bias: 'none',
    fan_in_fan_out: false,
    init_lora_weights: true,
    modules_to_save: null,
  };
  fs.writeFileSync(path.join(dir, ADAPTER_CONFIG), JSON.stringify(peft, null, 2) + '\n');
  saveSafetensors(path.join(dir, ADAPTER_WEIGHTS), loraStateDict(model), { format: 'pt' });
}

export function readLoraConfig(dir: string): LoraConfig {
  const raw = JSON.parse(fs.readFileSync(path.join(dir, ADAPTER_CONFIG), 'utf8'));
  if (raw.peft_type !== 'LORA') throw new Error(`${dir}: peft_type ${JSON.stringify(raw.peft_type)} is not LORA`);
  if (raw.bias && raw.bias !== 'none')
    throw new Error(`${dir}: LoRA bias=${JSON.stringify(raw.bias)} is not supported (only "none")`);
  if (raw.fan_in_fan_out) throw new Error(`${dir}: fan_in_fan_out LoRAs (GPT-2 Conv1D) are not supported`);
  const { r, lora_alpha, lora_dropout = 0, target_modules, exclude_modules = null, use_rslora = false } = raw;
  return { r, lora_alpha, lora_dropout, target_modules, exclude_modules, use_rslora };
}

// Loads a PEFT LoRA into a model: injects the layers its config names (unless already there), then copies the
// weights, checking that the file's keys and the model's LoRA keys agree exactly.
export function loadLora(model: Module, dir: string): LoraConfig {
  const config = readLoraConfig(dir);
  if (!loraLayers(model).length) injectLora(model, config);
  const { tensors } = loadSafetensors(path.join(dir, ADAPTER_WEIGHTS));
  const sd: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(tensors)) sd[k.replace(/^base_model\.model\./, '')] = t;
  const own = Object.keys(loraStateDict(model)).map((k) => k.replace(/^base_model\.model\./, ''));
  const ownSet = new Set(own);
  const missing = own.filter((k) => !(k in sd));
  const unexpected = Object.keys(sd).filter((k) => !ownSet.has(k));
  if (missing.length || unexpected.length) {
    throw new Error(
      `loadLora(${dir}): keys do not match the model's LoRA layers\n  missing: ${missing.join(', ') || '-'}\n  unexpected: ${unexpected.join(', ') || '-'}`,
    );
  }
  // strict=false: only the LoRA keys are given; their names and shapes were checked above and by the report below
  const report = model.loadStateDict(sd, { strict: false });
  if (report.mismatched.length)
    throw new Error(
      `loadLora(${dir}): wrong shapes: ${report.mismatched.map((m) => `${m.key} [${m.got}] vs [${m.expected}]`).join(', ')}`,
    );
  return config;
}

// Paper Finding 4: a LoRA trained on one base merged into another base of the same architecture (e.g. a style
// fine-tune). The model ends with plain layers whose weights include the LoRA.
export function mergeLoraInto(model: Module, dir: string): LoraConfig {
  if (loraLayers(model).length)
    throw new Error('mergeLoraInto: the target model already has LoRA layers; unload them first');
  const config = loadLora(model, dir);
  unloadLora(model, { merge: true });
  return config;
}
