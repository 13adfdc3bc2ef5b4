// Neural-network functions (torch.nn.functional): convolutions, norms, attention, dropout, resampling, losses.
import { N } from './native.ts';
import { Tensor } from './tensor.ts';
import type { Generator } from './factories.ts';

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);
const opt = (t: Tensor | null | undefined) => (t ? t.h : null);

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: Conv2dOptions = {}): Tensor {
  return new Tensor(
    N.conv2d(x.h, weight.h, opt(bias), pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.groups ?? 1),
  );
}
export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  o: Conv2dOptions & { outputPadding?: Pair } = {},
): Tensor {
  return new Tensor(
    N.convTranspose2d(
      x.h,
      weight.h,
      opt(bias),
      pair(o.stride ?? 1),
      pair(o.padding ?? 0),
      pair(o.outputPadding ?? 0),
      o.groups ?? 1,
      pair(o.dilation ?? 1),
    ),
  );
}
export const linear = (x: Tensor, weight: Tensor, bias?: Tensor | null) =>
  new Tensor(N.linear(x.h, weight.h, opt(bias)));
export const groupNorm = (x: Tensor, groups: number, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5) =>
  new Tensor(N.groupNorm(x.h, groups, opt(weight), opt(bias), eps));
export const layerNorm = (
  x: Tensor,
  normalizedShape: number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
) => new Tensor(N.layerNorm(x.h, normalizedShape, opt(weight), opt(bias), eps));
// RMSNorm (Mistral): x / sqrt(mean(x^2) + eps) * weight; half types are normalised in float32 as Mistral does.
export function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Tensor {
  const xf = x.dtype === 'float16' || x.dtype === 'bfloat16' ? x.float() : x;
  let y = xf.mul(xf.square().mean(-1, true).add(eps).rsqrt());
  if (y.dtype !== x.dtype) y = y.to(x.dtype);
  return weight ? y.mul(weight) : y;
}
export const embedding = (weight: Tensor, indices: Tensor) => new Tensor(N.embedding(weight.h, indices.h));
export const softmax = (x: Tensor, dim: number) => x.softmax(dim);
export const logSoftmax = (x: Tensor, dim: number) => x.logSoftmax(dim);
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none') => x.gelu(approximate);
export const silu = (x: Tensor) => x.silu();
export const dropout = (x: Tensor, p: number, training: boolean, generator?: Generator) =>
  new Tensor(N.dropout(x.h, p, training, generator?.h ?? null));

export type PadMode = 'constant' | 'reflect' | 'replicate' | 'circular';
// pad(x, [left, right, top, bottom, ...]) as F.pad: pairs from the last dim backwards.
export const pad = (x: Tensor, pads: number[], mode: PadMode = 'constant', value = 0) =>
  new Tensor(N.pad(x.h, pads, mode, mode === 'constant' ? value : null));

export type InterpolateMode = 'nearest' | 'bilinear' | 'bicubic';
export function interpolate(
  x: Tensor,
  o: { size?: [number, number]; scaleFactor?: number; mode?: InterpolateMode; alignCorners?: boolean },
): Tensor {
  const [H, W] = [x.size(-2), x.size(-1)];
  const size = o.size ?? [Math.floor(H * o.scaleFactor!), Math.floor(W * o.scaleFactor!)];
  if (!o.size && !o.scaleFactor) throw new Error('interpolate: give size or scaleFactor');
  return new Tensor(N.interpolate(x.h, size, o.mode ?? 'nearest', o.alignCorners ?? false));
}
export const avgPool2d = (x: Tensor, kernel: Pair, stride: Pair = kernel, padding: Pair = 0) =>
  new Tensor(N.avgPool2d(x.h, pair(kernel), pair(stride), pair(padding)));
export const maxPool2d = (x: Tensor, kernel: Pair, stride: Pair = kernel, padding: Pair = 0) =>
  new Tensor(N.maxPool2d(x.h, pair(kernel), pair(stride), pair(padding)));
export const adaptiveAvgPool2d = (x: Tensor, size: Pair) => new Tensor(N.adaptiveAvgPool2d(x.h, pair(size)));

export interface AttentionOptions {
  // boolean (true = may attend) or additive float mask, broadcastable to (B, heads, Tq, Tk)
  mask?: Tensor | null;
  isCausal?: boolean;
  scale?: number;
  dropoutP?: number;
  generator?: Generator;
}
// Scaled dot-product attention on (B, heads, T, d); libtorch's fused kernel where the linked version has one.
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, o: AttentionOptions = {}): Tensor {
  return new Tensor(
    N.attention(
      q.h,
      k.h,
      v.h,
      opt(o.mask),
      o.isCausal ?? false,
      o.scale ?? null,
      o.dropoutP ?? 0,
      o.generator?.h ?? null,
    ),
  );
}

export type Reduction = 'mean' | 'sum' | 'none';
export const mseLoss = (input: Tensor, target: Tensor, reduction: Reduction = 'mean') =>
  new Tensor(N.mseLoss(input.h, target.h, reduction));
export const l1Loss = (input: Tensor, target: Tensor, reduction: Reduction = 'mean') =>
  new Tensor(N.l1Loss(input.h, target.h, reduction));
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  o: { reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number } = {},
): Tensor {
  return new Tensor(
    N.crossEntropy(logits.h, target.h, o.reduction ?? 'mean', o.ignoreIndex ?? -100, o.labelSmoothing ?? 0),
  );
}
export const binaryCrossEntropyWithLogits = (logits: Tensor, target: Tensor, reduction: Reduction = 'mean') =>
  new Tensor(N.bceWithLogits(logits.h, target.h, reduction));
