// Position encodings: the sinusoidal timestep embedding of diffusion UNets and the rotary embedding of Mistral.
import { Tensor, arange, cat, ones, empty, normal_, F } from '../torch/index.ts';
import { Module, parameter, initGenerator } from './module.ts';
import { Linear, LayerNorm, activation, type Activation } from './layers.ts';
import { splitHeads, mergeHeads, attend } from './attention.ts';

export interface TimestepEmbeddingOptions {
  flipSinToCos?: boolean; // [cos, sin] instead of [sin, cos] (SD: true)
  downscaleFreqShift?: number; // SD: 0; the original DDPM code: 1
  scale?: number;
  maxPeriod?: number;
}

// diffusers' get_timestep_embedding: t (N,) -> (N, dim), frequencies exp(-ln(maxPeriod) * i / (dim/2 - shift)).
export function timestepEmbedding(
  t: Tensor,
  dim: number,
  { flipSinToCos = false, downscaleFreqShift = 1, scale = 1, maxPeriod = 10000 }: TimestepEmbeddingOptions = {},
): Tensor {
  const half = Math.floor(dim / 2);
  const exponent = arange(0, half, 1, { dtype: 'float32', device: t.device }).mul(
    -Math.log(maxPeriod) / (half - downscaleFreqShift),
  );
  const args = t.float().unsqueeze(1).mul(exponent.exp().unsqueeze(0)).mul(scale); // (N, half)
  let emb = flipSinToCos ? cat([args.cos(), args.sin()], -1) : cat([args.sin(), args.cos()], -1);
  if (dim % 2) emb = F.pad(emb, [0, 1]);
  return emb;
}

// diffusers' TimestepEmbedding: linear_1 -> act -> linear_2 (`time_embedding.*`, SDXL's `add_embedding.*`).
export class TimestepEmbedding extends Module {
  linear_1: Linear;
  linear_2: Linear;
  readonly act: (x: Tensor) => Tensor;
  constructor(inChannels: number, timeEmbedDim: number, act: Activation = 'silu') {
    super();
    this.linear_1 = new Linear(inChannels, timeEmbedDim);
    this.linear_2 = new Linear(timeEmbedDim, timeEmbedDim);
    this.act = activation(act);
  }
  forward(x: Tensor): Tensor {
    return this.linear_2.forward(this.act(this.linear_1.forward(x)));
  }
}

// Rotary position embedding (RoFormer; Mistral's "rotate half" layout): cos and sin tables (T, d) for positions
// 0..T-1, theta^(-2i/d) per frequency, each repeated for both halves of the head dimension.
export function rotaryTables(T: number, headDim: number, theta: number, device = 'cpu'): { cos: Tensor; sin: Tensor } {
  const invFreq = arange(0, headDim, 2, { dtype: 'float32', device })
    .mul(-Math.log(theta) / headDim)
    .exp(); // (d/2,)
  const freqs = arange(0, T, 1, { dtype: 'float32', device }).unsqueeze(1).mul(invFreq.unsqueeze(0)); // (T, d/2)
  const emb = cat([freqs, freqs], -1); // (T, d)
  return { cos: emb.cos(), sin: emb.sin() };
}

// x (B, heads, T, d) rotated by position: x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1].
export function applyRotary(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const d = x.size(-1);
  const x1 = x.narrow(-1, 0, d / 2);
  const x2 = x.narrow(-1, d / 2, d / 2);
  const rotated = cat([x2.neg(), x1], -1);
  return x.mul(cos.to(x.dtype)).add(rotated.mul(sin.to(x.dtype)));
}

// DeepFloyd IF's / diffusers' AttentionPooling: a query token (the sequence mean plus a learned embedding) attends
// over itself and the sequence; its output is the pooled vector. diffusers pools over every position; with a key mask
// (B, T) mumu pools over the real tokens only (the same result when nothing is padded).
export class AttentionPooling extends Module {
  positional_embedding: Tensor; // (1, D)
  k_proj: Linear;
  q_proj: Linear;
  v_proj: Linear;
  constructor(
    readonly heads: number,
    readonly dim: number,
  ) {
    super();
    if (dim % heads) throw new Error(`AttentionPooling: ${dim} channels do not split into ${heads} heads`);
    this.positional_embedding = parameter(normal_(empty([1, dim]), 0, 1 / Math.sqrt(dim), initGenerator()));
    this.k_proj = new Linear(dim, dim);
    this.q_proj = new Linear(dim, dim);
    this.v_proj = new Linear(dim, dim);
  }
  // x (B, T, D), keyMask (B, T) or null -> (B, D)
  forward(x: Tensor, keyMask: Tensor | null = null): Tensor {
    const B = x.size(0);
    const m = keyMask?.to(x.dtype).unsqueeze(-1); // (B, T, 1)
    const mean = m ? x.mul(m).sum(1, true).div(m.sum(1, true).clamp(1)) : x.mean(1, true); // (B, 1, D)
    const cls = mean.add(this.positional_embedding.to(x.dtype));
    const seq = cat([cls, x], 1); // (B, 1 + T, D)
    const q = splitHeads(this.q_proj.forward(cls), this.heads); // (B, heads, 1, d)
    const k = splitHeads(this.k_proj.forward(seq), this.heads); // (B, heads, 1 + T, d)
    const v = splitHeads(this.v_proj.forward(seq), this.heads);
    const mask = keyMask ? cat([ones([B, 1], { dtype: keyMask.dtype, device: keyMask.device }), keyMask], 1) : null;
    return mergeHeads(attend(q, k, v, { keyMask: mask })).reshape(B, -1); // (B, D); softmax(q k^T / sqrt(d)) as IF
  }
}

// diffusers' TextTimeEmbedding (UNet `addition_embed_type: "text"`): the conditioning sequence pooled into one vector
// added to the time embedding, beside cross-attention (the pooled-text path of GLIDE, Imagen and SDXL).
export class TextTimeEmbedding extends Module {
  norm1: LayerNorm;
  pool: AttentionPooling;
  proj: Linear;
  norm2: LayerNorm;
  constructor(encoderDim: number, timeEmbedDim: number, heads: number) {
    super();
    this.norm1 = new LayerNorm(encoderDim);
    this.pool = new AttentionPooling(heads, encoderDim);
    this.proj = new Linear(encoderDim, timeEmbedDim);
    this.norm2 = new LayerNorm(timeEmbedDim);
  }
  forward(states: Tensor, keyMask: Tensor | null = null): Tensor {
    return this.norm2.forward(this.proj.forward(this.pool.forward(this.norm1.forward(states), keyMask)));
  }
}
