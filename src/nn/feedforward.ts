// The three feed-forward shapes of the model family.
import { Tensor } from '../torch/index.ts';
import { Module } from './module.ts';
import { Linear, Dropout, activation, type Activation } from './layers.ts';

// diffusers' GEGLU: one projection to twice the width; half of it, through GELU, gates the other half.
export class GEGLU extends Module {
  proj: Linear;
  constructor(dimIn: number, dimOut: number) {
    super();
    this.proj = new Linear(dimIn, dimOut * 2);
  }
  forward(x: Tensor): Tensor {
    const [hidden, gate] = this.proj.forward(x).chunk(2, -1) as [Tensor, Tensor];
    return hidden.mul(gate.gelu());
  }
}

// diffusers' GELU block (a projection then GELU), the other thing `ff.net.0` can be.
export class GELUProj extends Module {
  proj: Linear;
  constructor(
    dimIn: number,
    dimOut: number,
    readonly approximate: 'none' | 'tanh' = 'none',
  ) {
    super();
    this.proj = new Linear(dimIn, dimOut);
  }
  forward(x: Tensor): Tensor {
    return this.proj.forward(x).gelu(this.approximate);
  }
}

// diffusers' FeedForward: `ff.net.0` (GEGLU in SD's transformer blocks), `ff.net.1` dropout, `ff.net.2` the output
// projection.
export class FeedForward extends Module {
  net: [GEGLU | GELUProj, Dropout, Linear];
  constructor(
    dim: number,
    o: {
      mult?: number;
      innerDim?: number;
      dimOut?: number;
      activation?: 'geglu' | 'gelu' | 'gelu-approximate';
      dropout?: number;
    } = {},
  ) {
    super();
    const { mult = 4, dimOut = dim, activation = 'geglu', dropout = 0 } = o;
    const innerDim = o.innerDim ?? dim * mult;
    const act =
      activation === 'geglu'
        ? new GEGLU(dim, innerDim)
        : new GELUProj(dim, innerDim, activation === 'gelu' ? 'none' : 'tanh');
    this.net = [act, new Dropout(dropout), new Linear(innerDim, dimOut)];
  }
  forward(x: Tensor): Tensor {
    return this.net[2].forward(this.net[1].forward(this.net[0].forward(x)));
  }
}

// Mistral's MLP (and Idefics2's connector / perceiver MLP): down(act(gate(x)) * up(x)), SwiGLU with act = silu.
export class SwiGLU extends Module {
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  readonly act: (x: Tensor) => Tensor;
  constructor(dim: number, intermediate: number, dimOut = dim, act: Activation = 'silu') {
    super();
    this.gate_proj = new Linear(dim, intermediate, { bias: false });
    this.up_proj = new Linear(dim, intermediate, { bias: false });
    this.down_proj = new Linear(intermediate, dimOut, { bias: false });
    this.act = activation(act);
  }
  forward(x: Tensor): Tensor {
    return this.down_proj.forward(this.act(this.gate_proj.forward(x)).mul(this.up_proj.forward(x)));
  }
}

// SigLIP's / CLIP's MLP: fc2(act(fc1(x))), GELU-tanh in SigLIP, quick-GELU in CLIP.
export class MLP extends Module {
  fc1: Linear;
  fc2: Linear;
  readonly act: (x: Tensor) => Tensor;
  constructor(dim: number, intermediate: number, act: Activation) {
    super();
    this.fc1 = new Linear(dim, intermediate);
    this.fc2 = new Linear(intermediate, dim);
    this.act = activation(act);
  }
  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.act(this.fc1.forward(x)));
  }
}
