// Position encodings: the sinusoidal timestep embedding of diffusion UNets and the rotary embedding of Mistral.
import { Tensor, arange, cat, F } from '../torch/index.ts';
import { Module } from './module.ts';
import { Linear, activation, type Activation } from './layers.ts';

export interface TimestepEmbeddingOptions {
  flipSinToCos?: boolean; // [cos, sin] instead of [sin, cos] (SD: true)
  downscaleFreqShift?: number; // SD: 0; the original DDPM code: 1
  scale?: number;
  maxPeriod?: number;
}

// diffusers' get_timestep_embedding: t (N,) -> (N, dim), frequencies exp(-ln(maxPeriod) * i / (dim/2 - shift)).
export function timestepEmbedding(t: Tensor, dim: number, { flipSinToCos = false, downscaleFreqShift = 1, scale = 1, maxPeriod = 10000 }: TimestepEmbeddingOptions = {}): Tensor {
  const half = Math.floor(dim / 2);
  const exponent = arange(0, half, 1, { dtype: 'float32', device: t.device }).mul(-Math.log(maxPeriod) / (half - downscaleFreqShift));
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
  const invFreq = arange(0, headDim, 2, { dtype: 'float32', device }).mul(-Math.log(theta) / headDim).exp(); // (d/2,)
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
