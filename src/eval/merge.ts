// Paper Finding 4: MUMU merged into a single-style fine-tune of the base UNet, without retraining. Two ways, by how
// the MUMU stage trained its UNet:
//   LoRA  (paper Table 1)   the fine-tune's UNet with MUMU's UNet LoRA merged in: W_ft + B A
//   full  (our switch)      task arithmetic: W_ft + (W_mumu - W_base) for every UNet tensor, W_base being the
//                           text-only UNet the MUMU stage started from (`--base`); the LoRA merge is the special case
//                           where W_mumu - W_base = B A is low rank.
// MUMU's encoder (VLM + adapter) is used unchanged in both.
import fs from 'node:fs';
import path from 'node:path';
import { noGrad, tidy } from '../torch/index.ts';
import { unloadLora, mergeLoraInto, loraLayers, ADAPTER_CONFIG, type Module } from '../nn/index.ts';
import { loadComponent } from '../models/pretrained.ts';
import type { UNet2DConditionModel } from '../models/index.ts';
import type { MumuComponents } from '../pipeline.ts';

export interface DeltaMerge {
  tensors: number;
  parameters: number;
  // ||W_mumu - W_base|| / ||W_base|| over all tensors: how far MUMU moved from the base (a wrong --base shows here)
  relativeDelta: number;
}

// What differs between the UNets' tensors (keys and shapes), in words; empty when they match.
export function compareWeights(named: [string, Module][]): string[] {
  const dicts = named.map(([n, m]) => [n, m.stateDict()] as const);
  const [refName, ref] = dicts[0]!;
  const out: string[] = [];
  for (const [name, sd] of dicts.slice(1)) {
    const missing = Object.keys(ref).filter((k) => !(k in sd));
    const extra = Object.keys(sd).filter((k) => !(k in ref));
    const shapes = Object.keys(ref).filter((k) => k in sd && ref[k]!.shape.join() !== sd[k]!.shape.join());
    const list = (ks: string[]) => `${ks.slice(0, 3).join(', ')}${ks.length > 3 ? `, ... (${ks.length} in all)` : ''}`;
    if (missing.length) out.push(`${name} lacks ${missing.length} tensors of ${refName}: ${list(missing)}`);
    if (extra.length) out.push(`${name} has ${extra.length} tensors ${refName} lacks: ${list(extra)}`);
    if (shapes.length) {
      out.push(
        `${shapes.length} tensors differ in shape between ${refName} and ${name}: ` +
          shapes
            .slice(0, 3)
            .map((k) => `${k} [${ref[k]!.shape.join(', ')}] vs [${sd[k]!.shape.join(', ')}]`)
            .join(', '),
      );
    }
  }
  return out;
}

// target += tuned - base, tensor by tensor, in place (target is the fine-tune). Every module must be LoRA-free
// (merge or unload LoRAs first) and all three must have the same tensors; otherwise nothing is changed.
export function mergeDeltaInto(target: Module, tuned: Module, base: Module): DeltaMerge {
  for (const [n, m] of [
    ['fine-tune', target],
    ['MUMU', tuned],
    ['base', base],
  ] as const) {
    if (loraLayers(m).length)
      throw new Error(`weight-delta merge: the ${n} UNet has LoRA layers; merge them into its weights first`);
  }
  const problems = compareWeights([
    ['the fine-tune', target],
    ['MUMU', tuned],
    ['the base', base],
  ]);
  if (problems.length) throw new Error(`weight-delta merge: the UNets do not match (${problems.join('; ')})`);
  const relativeDelta = relativeDistance(tuned, base);
  const t = target.stateDict(),
    a = tuned.stateDict(),
    b = base.stateDict();
  let parameters = 0;
  noGrad(() => {
    for (const k of Object.keys(t)) {
      tidy(() => t[k]!.add_(a[k]!.to(t[k]!.dtype).sub(b[k]!.to(t[k]!.dtype))));
      parameters += t[k]!.numel;
    }
  });
  return { tensors: Object.keys(t).length, parameters, relativeDelta };
}

// ||a - b|| / ||b|| over the tensors both have with the same shape (compareWeights reports the others).
export function relativeDistance(a: Module, b: Module): number {
  const x = a.stateDict(),
    y = b.stateDict();
  let d2 = 0,
    n2 = 0;
  noGrad(() => {
    for (const k of Object.keys(y)) {
      if (!(k in x) || x[k]!.shape.join() !== y[k]!.shape.join()) continue;
      tidy(() => {
        d2 += x[k]!.to(y[k]!.dtype).sub(y[k]!).square().sum().item();
        n2 += y[k]!.square().sum().item();
      });
    }
  });
  return Math.sqrt(d2 / Math.max(n2, 1e-30));
}

// A UNet is read from a model folder's unet/ or from a UNet folder itself (the base_unet/ a shipped MUMU model
// carries).
const unetDir = (dir: string) => (fs.existsSync(path.join(dir, 'unet', 'config.json')) ? path.join(dir, 'unet') : dir);
export const loadUnet = (dir: string): UNet2DConditionModel => {
  const u = loadComponent(unetDir(dir), 'UNet2DConditionModel');
  if (loraLayers(u).length) unloadLora(u, { merge: true }); // a folder's UNet is its weights with its LoRA merged
  return u;
};
const hasUnet = (dir: string) => fs.existsSync(path.join(unetDir(dir), 'diffusion_pytorch_model.safetensors'));

// A fully trained MUMU model folder may carry the UNet of the text-only base its MUMU stage started from, as
// base_unet/ (scripts/ship-default-model.sh writes it): the default --base of `mumu eval` (the text-only row and
// the weight-delta merge's W_base).
export const BASE_UNET = 'base_unet';
export function defaultBase(dir: string, base?: string): string | undefined {
  return base ?? (fs.existsSync(path.join(dir, BASE_UNET, 'config.json')) ? path.join(dir, BASE_UNET) : undefined);
}

export interface Merged {
  components: MumuComponents;
  title: string;
  note: string;
}

// MUMU's encoder with its UNet merged into the fine-tune's, or why not (a 'not available: ...' line).
export function mergedComponents(
  dir: string,
  finetune: string | undefined,
  base: string | undefined,
  c: MumuComponents,
): Merged | string {
  if (!finetune || !hasUnet(finetune)) {
    return `not available: no style fine-tune model folder${finetune ? ` at ${finetune}` : ''} (train configs/style-finetune.json, or pass --finetune DIR)`;
  }
  const withUnet = (unet: UNet2DConditionModel): MumuComponents => {
    unet.eval();
    return {
      ...c,
      unet: (x, t, cond) => unet.forward(x, t, cond.context, { encoderAttentionMask: cond.mask ?? null }),
    };
  };
  if (fs.existsSync(path.join(dir, 'unet', ADAPTER_CONFIG))) {
    const unet = loadComponent(path.join(finetune, 'unet'), 'UNet2DConditionModel');
    mergeLoraInto(unet, path.join(dir, 'unet'));
    return {
      components: withUnet(unet),
      title: 'MUMU LoRA merged into the style fine-tune',
      note: `MUMU's UNet LoRA merged into \`${finetune}\`'s UNet`,
    };
  }
  if (!base) {
    return "not available: the model's UNet is fully trained (no separate LoRA); pass --base DIR (the text-only model whose UNet the MUMU stage started from, e.g. runs/t2i-base/model) for the weight-delta merge";
  }
  if (!hasUnet(base)) return `not available: no base model folder or UNet folder at ${base}`;
  const target = loadUnet(finetune);
  let r: DeltaMerge,
    ftDelta = NaN;
  try {
    const baseUnet = loadUnet(base);
    // the fine-tune's own distance from the base, before the merge changes it: a fine-tune of another base shows
    // as a large number (mismatched tensors are skipped here; mergeDeltaInto refuses them)
    ftDelta = relativeDistance(target, baseUnet);
    r = mergeDeltaInto(target, loadUnet(dir), baseUnet); // checks keys and shapes first
  } catch (e) {
    return `not available: ${(e as Error).message}`;
  }
  const note =
    `\`${finetune}\` UNet + (\`${dir}\` UNet - \`${base}\` UNet), ${r.tensors} tensors, ${r.parameters.toLocaleString('en-US')} parameters; ` +
    `||MUMU - base|| / ||base|| = ${r.relativeDelta.toFixed(3)}, ||fine-tune - base|| / ||base|| = ${ftDelta.toFixed(3)}`;
  return {
    components: withUnet(target),
    title: 'MUMU weight delta added to the style fine-tune (fine-tune + MUMU - base)',
    note,
  };
}
