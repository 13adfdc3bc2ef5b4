// The convolutional blocks shared by the VAE and the UNet, with diffusers' names (resnets.N.norm1 / conv1 /
// time_emb_proj / norm2 / conv2 / conv_shortcut, downsamplers.0.conv, upsamplers.0.conv).
import { Tensor, F } from '../torch/index.ts';
import { Module } from './module.ts';
import { Conv2d, GroupNorm, Linear, Dropout } from './layers.ts';

export interface ResnetOptions {
  tembChannels?: number | null; // the UNet's time embedding width; null in the VAE
  groups?: number;
  eps?: number;
  dropout?: number;
  outputScaleFactor?: number;
}

export class ResnetBlock2D extends Module {
  norm1: GroupNorm;
  conv1: Conv2d;
  time_emb_proj: Linear | null;
  norm2: GroupNorm;
  dropout: Dropout;
  conv2: Conv2d;
  conv_shortcut: Conv2d | null; // 1x1, only where the channel count changes
  readonly outputScaleFactor: number;
  constructor(
    inChannels: number,
    outChannels: number,
    { tembChannels = null, groups = 32, eps = 1e-6, dropout = 0, outputScaleFactor = 1 }: ResnetOptions = {},
  ) {
    super();
    this.norm1 = new GroupNorm(groups, inChannels, eps);
    this.conv1 = new Conv2d(inChannels, outChannels, 3, { padding: 1 });
    this.time_emb_proj = tembChannels ? new Linear(tembChannels, outChannels) : null;
    this.norm2 = new GroupNorm(groups, outChannels, eps);
    this.dropout = new Dropout(dropout);
    this.conv2 = new Conv2d(outChannels, outChannels, 3, { padding: 1 });
    this.conv_shortcut = inChannels !== outChannels ? new Conv2d(inChannels, outChannels, 1) : null;
    this.outputScaleFactor = outputScaleFactor;
  }

  // x (B, C, H, W); temb (B, tembChannels) is added per channel after the first conv.
  forward(x: Tensor, temb: Tensor | null = null): Tensor {
    let h = this.conv1.forward(this.norm1.forward(x).silu());
    if (this.time_emb_proj && temb) h = h.add(this.time_emb_proj.forward(temb.silu()).unsqueeze(-1).unsqueeze(-1)); // (B, C, 1, 1)
    h = this.conv2.forward(this.dropout.forward(this.norm2.forward(h).silu()));
    const skip = this.conv_shortcut ? this.conv_shortcut.forward(x) : x;
    return this.outputScaleFactor === 1 ? skip.add(h) : skip.add(h).div(this.outputScaleFactor);
  }
}

// Halves H and W with a stride-2 3x3 conv. The VAE pads asymmetrically (right and bottom only) and convolves with
// padding 0, as the original latent-diffusion code did; the UNet pads 1 on every side.
export class Downsample2D extends Module {
  conv: Conv2d;
  constructor(
    channels: number,
    readonly padding: 0 | 1 = 1,
  ) {
    super();
    this.conv = new Conv2d(channels, channels, 3, { stride: 2, padding });
  }
  forward(x: Tensor): Tensor {
    return this.conv.forward(this.padding === 0 ? F.pad(x, [0, 1, 0, 1]) : x);
  }
}

// Doubles H and W: nearest-neighbour upsampling, then a 3x3 conv.
export class Upsample2D extends Module {
  conv: Conv2d;
  constructor(channels: number) {
    super();
    this.conv = new Conv2d(channels, channels, 3, { padding: 1 });
  }
  forward(x: Tensor, size?: [number, number]): Tensor {
    const up = size
      ? F.interpolate(x, { size, mode: 'nearest' })
      : F.interpolate(x, { scaleFactor: 2, mode: 'nearest' });
    return this.conv.forward(up);
  }
}
