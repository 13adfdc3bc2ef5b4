// The basic layers, with PyTorch's parameter names and default initialisation (so a freshly built model behaves like
// a freshly built PyTorch one), drawing from the seeded init generator (module.ts).
import { Tensor, F, empty, ones, zeros, uniform_, normal_, type Generator } from '../torch/index.ts';
import { Module, parameter, initGenerator } from './module.ts';

// U(-1/sqrt(fan_in), 1/sqrt(fan_in)): what torch.nn's kaiming_uniform_(a=sqrt(5)) reduces to, for weight and bias.
const fanInUniform = (shape: number[], fanIn: number, g: Generator) =>
  parameter(uniform_(empty(shape), -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn), g));

export class Linear extends Module {
  weight: Tensor; // (out, in)
  bias: Tensor | null;
  // `adopt` takes over existing tensors instead of drawing new ones (LoRA wrapping and unwrapping).
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true, adopt }: { bias?: boolean; adopt?: Linear } = {},
  ) {
    super();
    const g = initGenerator();
    this.weight = adopt ? adopt.weight : fanInUniform([outFeatures, inFeatures], inFeatures, g);
    this.bias = adopt ? adopt.bias : bias ? fanInUniform([outFeatures], inFeatures, g) : null;
  }
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  bias?: boolean;
  adopt?: Conv2d;
}
export class Conv2d extends Module {
  weight: Tensor; // (out, in, k, k)
  bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    { stride = 1, padding = 0, bias = true, adopt }: Conv2dOptions = {},
  ) {
    super();
    const g = initGenerator();
    const fanIn = inChannels * kernelSize * kernelSize;
    this.weight = adopt ? adopt.weight : fanInUniform([outChannels, inChannels, kernelSize, kernelSize], fanIn, g);
    this.bias = adopt ? adopt.bias : bias ? fanInUniform([outChannels], fanIn, g) : null;
    this.stride = stride;
    this.padding = padding;
  }
  forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

export class GroupNorm extends Module {
  weight: Tensor;
  bias: Tensor;
  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    readonly eps = 1e-5,
  ) {
    super();
    if (numChannels % numGroups)
      throw new Error(`GroupNorm: ${numChannels} channels do not split into ${numGroups} groups`);
    this.weight = parameter(ones([numChannels]));
    this.bias = parameter(zeros([numChannels]));
  }
  forward(x: Tensor): Tensor {
    return F.groupNorm(x, this.numGroups, this.weight, this.bias, this.eps);
  }
}

export class LayerNorm extends Module {
  weight: Tensor;
  bias: Tensor | null;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    { bias = true } = {},
  ) {
    super();
    this.weight = parameter(ones([dim]));
    this.bias = bias ? parameter(zeros([dim])) : null;
  }
  forward(x: Tensor): Tensor {
    return F.layerNorm(x, [this.dim], this.weight, this.bias, this.eps);
  }
}

export class RMSNorm extends Module {
  weight: Tensor;
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = parameter(ones([dim]));
  }
  forward(x: Tensor): Tensor {
    return F.rmsNorm(x, this.weight, this.eps);
  }
}

export class Embedding extends Module {
  weight: Tensor; // (num, dim)
  // torch.nn.Embedding draws N(0, 1); transformers re-initialises with N(0, initializer_range), passed as std.
  constructor(
    readonly numEmbeddings: number,
    readonly dim: number,
    { std = 1 } = {},
  ) {
    super();
    this.weight = parameter(normal_(empty([numEmbeddings, dim]), 0, std, initGenerator()));
  }
  forward(ids: Tensor): Tensor {
    return F.embedding(this.weight, ids);
  }
}

// Draws its masks from the generator it was built under, so a seeded model drops the same units on every run.
export class Dropout extends Module {
  readonly generator: Generator = initGenerator();
  constructor(readonly p = 0) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.p > 0 && this.training ? F.dropout(x, this.p, true, this.generator) : x;
  }
}

// The activations named by `hidden_act` / `act_fn` in transformers and diffusers configs.
export type Activation = 'silu' | 'swish' | 'gelu' | 'gelu_pytorch_tanh' | 'gelu_new' | 'quick_gelu' | 'relu';
export const ACTIVATIONS: readonly Activation[] = [
  'silu',
  'swish',
  'gelu',
  'gelu_pytorch_tanh',
  'gelu_new',
  'quick_gelu',
  'relu',
];
export function activation(name: Activation): (x: Tensor) => Tensor {
  switch (name) {
    case 'silu':
    case 'swish':
      return (x) => x.silu();
    case 'gelu':
      return (x) => x.gelu();
    case 'gelu_pytorch_tanh':
    case 'gelu_new':
      return (x) => x.gelu('tanh');
    case 'quick_gelu':
      return (x) => x.mul(x.mul(1.702).sigmoid()); // CLIP's sigmoid approximation
    case 'relu':
      return (x) => x.relu();
  }
}
