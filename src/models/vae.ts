// AutoencoderKL (Rombach et al. 2022, latent diffusion): images <-> latents, with diffusers' names and config keys,
// so SD 1.x / SDXL `vae/` folders load by name. MUMU keeps SDXL's VAE frozen and diffuses in its latent space
// (paper section 3).
import { Tensor, randn, type Generator } from '../torch/index.ts';
import { Module, Conv2d, GroupNorm, Attention, ResnetBlock2D, Downsample2D, Upsample2D, type StateDict } from '../nn/index.ts';
import { parseConfig } from './config.ts';

export interface AutoencoderKLConfig {
  in_channels: number;
  out_channels: number;
  down_block_types: string[]; // all 'DownEncoderBlock2D'
  up_block_types: string[]; // all 'UpDecoderBlock2D'
  block_out_channels: number[];
  layers_per_block: number;
  latent_channels: number;
  norm_num_groups: number;
  sample_size: number;
  scaling_factor: number; // latents are scaled to unit variance for the diffusion model: SD 1.x 0.18215, SDXL 0.13025
  shift_factor: number | null;
  force_upcast: boolean; // an fp16 hint for pipelines; no effect here
  use_quant_conv: boolean;
  use_post_quant_conv: boolean;
  mid_block_add_attention: boolean;
}

export function parseAutoencoderKLConfig(raw: unknown): AutoencoderKLConfig {
  const c = parseConfig<AutoencoderKLConfig>('AutoencoderKL', raw, {
    defaults: {
      in_channels: 3, out_channels: 3, down_block_types: ['DownEncoderBlock2D'], up_block_types: ['UpDecoderBlock2D'],
      block_out_channels: [64], layers_per_block: 1, latent_channels: 4, norm_num_groups: 32, sample_size: 32,
      scaling_factor: 0.18215, shift_factor: null, force_upcast: true, use_quant_conv: true, use_post_quant_conv: true,
      mid_block_add_attention: true,
    },
    unsupported: { act_fn: 'silu', latents_mean: null, latents_std: null },
  });
  const n = c.block_out_channels.length;
  if (c.down_block_types.length !== n || c.down_block_types.some((t) => t !== 'DownEncoderBlock2D')) throw new Error(`AutoencoderKL config: down_block_types must be ${n} x 'DownEncoderBlock2D'`);
  if (c.up_block_types.length !== n || c.up_block_types.some((t) => t !== 'UpDecoderBlock2D')) throw new Error(`AutoencoderKL config: up_block_types must be ${n} x 'UpDecoderBlock2D'`);
  return c;
}

// diffusers' Attention as the VAE uses it: one head over all channels of every pixel, biased projections, a group
// norm in front and a residual around it.
class SpatialAttention extends Attention {
  group_norm: GroupNorm;
  constructor(channels: number, groups: number) {
    super(channels, { heads: 1, dimHead: channels, bias: true });
    this.group_norm = new GroupNorm(groups, channels, 1e-6);
  }
  forwardSpatial(x: Tensor): Tensor {
    const [B, C, H, W] = x.shape as [number, number, number, number];
    const seq = this.group_norm.forward(x).view(B, C, H * W).transpose(1, 2); // (B, H*W, C)
    const out = this.forward(seq).transpose(1, 2).reshape(B, C, H, W); // (B, C, H, W)
    return out.add(x);
  }
}

// resnet -> attention -> resnet at the lowest resolution.
class MidBlock extends Module {
  attentions: SpatialAttention[];
  resnets: ResnetBlock2D[];
  constructor(channels: number, groups: number, addAttention: boolean) {
    super();
    this.attentions = addAttention ? [new SpatialAttention(channels, groups)] : [];
    this.resnets = [new ResnetBlock2D(channels, channels, { groups }), new ResnetBlock2D(channels, channels, { groups })];
  }
  forward(x: Tensor): Tensor {
    let h = this.resnets[0]!.forward(x);
    if (this.attentions[0]) h = this.attentions[0].forwardSpatial(h);
    return this.resnets[1]!.forward(h);
  }
}

class EncoderBlock extends Module {
  resnets: ResnetBlock2D[];
  downsamplers: Downsample2D[];
  constructor(inC: number, outC: number, layers: number, groups: number, downsample: boolean) {
    super();
    this.resnets = Array.from({ length: layers }, (_, i) => new ResnetBlock2D(i === 0 ? inC : outC, outC, { groups }));
    this.downsamplers = downsample ? [new Downsample2D(outC, 0)] : [];
  }
  forward(x: Tensor): Tensor {
    for (const r of this.resnets) x = r.forward(x);
    for (const d of this.downsamplers) x = d.forward(x);
    return x;
  }
}

class DecoderBlock extends Module {
  resnets: ResnetBlock2D[];
  upsamplers: Upsample2D[];
  constructor(inC: number, outC: number, layers: number, groups: number, upsample: boolean) {
    super();
    this.resnets = Array.from({ length: layers }, (_, i) => new ResnetBlock2D(i === 0 ? inC : outC, outC, { groups }));
    this.upsamplers = upsample ? [new Upsample2D(outC)] : [];
  }
  forward(x: Tensor): Tensor {
    for (const r of this.resnets) x = r.forward(x);
    for (const u of this.upsamplers) x = u.forward(x);
    return x;
  }
}

class Encoder extends Module {
  conv_in: Conv2d;
  down_blocks: EncoderBlock[];
  mid_block: MidBlock;
  conv_norm_out: GroupNorm;
  conv_out: Conv2d;
  constructor(c: AutoencoderKLConfig) {
    super();
    const ch = c.block_out_channels, g = c.norm_num_groups;
    this.conv_in = new Conv2d(c.in_channels, ch[0]!, 3, { padding: 1 });
    this.down_blocks = ch.map((out, i) => new EncoderBlock(i === 0 ? ch[0]! : ch[i - 1]!, out, c.layers_per_block, g, i < ch.length - 1));
    this.mid_block = new MidBlock(ch.at(-1)!, g, c.mid_block_add_attention);
    this.conv_norm_out = new GroupNorm(g, ch.at(-1)!, 1e-6);
    this.conv_out = new Conv2d(ch.at(-1)!, 2 * c.latent_channels, 3, { padding: 1 }); // mean and log-variance
  }
  forward(x: Tensor): Tensor {
    let h = this.conv_in.forward(x);
    for (const b of this.down_blocks) h = b.forward(h);
    h = this.mid_block.forward(h);
    return this.conv_out.forward(this.conv_norm_out.forward(h).silu());
  }
}

class Decoder extends Module {
  conv_in: Conv2d;
  mid_block: MidBlock;
  up_blocks: DecoderBlock[];
  conv_norm_out: GroupNorm;
  conv_out: Conv2d;
  constructor(c: AutoencoderKLConfig) {
    super();
    const rev = [...c.block_out_channels].reverse(), g = c.norm_num_groups;
    this.conv_in = new Conv2d(c.latent_channels, rev[0]!, 3, { padding: 1 });
    this.mid_block = new MidBlock(rev[0]!, g, c.mid_block_add_attention);
    this.up_blocks = rev.map((out, i) => new DecoderBlock(i === 0 ? rev[0]! : rev[i - 1]!, out, c.layers_per_block + 1, g, i < rev.length - 1));
    this.conv_norm_out = new GroupNorm(g, rev.at(-1)!, 1e-6);
    this.conv_out = new Conv2d(rev.at(-1)!, c.out_channels, 3, { padding: 1 });
  }
  forward(z: Tensor): Tensor {
    let h = this.mid_block.forward(this.conv_in.forward(z));
    for (const b of this.up_blocks) h = b.forward(h);
    return this.conv_out.forward(this.conv_norm_out.forward(h).silu());
  }
}

// The encoder's output distribution over latents: N(mean, exp(logvar)) per element.
export class DiagonalGaussian {
  readonly mean: Tensor;
  readonly logvar: Tensor;
  readonly std: Tensor;
  constructor(moments: Tensor) {
    const [mean, logvar] = moments.chunk(2, 1) as [Tensor, Tensor]; // (B, L, h, w) each
    this.mean = mean;
    this.logvar = logvar.clamp(-30, 20); // as diffusers, so exp() stays finite
    this.std = this.logvar.mul(0.5).exp();
  }
  sample(generator?: Generator): Tensor {
    return this.mean.add(this.std.mul(randn([...this.mean.shape], { generator, dtype: this.mean.dtype, device: this.mean.device })));
  }
  mode(): Tensor {
    return this.mean;
  }
  // KL(N(mean, var) || N(0, 1)) summed over latent elements, per sample: the VAE training regulariser.
  kl(): Tensor {
    return this.mean.square().add(this.logvar.exp()).sub(1).sub(this.logvar).mul(0.5).sum([1, 2, 3]);
  }
}

export class AutoencoderKL extends Module {
  encoder: Encoder;
  decoder: Decoder;
  quant_conv: Conv2d | null;
  post_quant_conv: Conv2d | null;
  constructor(readonly config: AutoencoderKLConfig) {
    super();
    const L = config.latent_channels;
    this.encoder = new Encoder(config);
    this.decoder = new Decoder(config);
    this.quant_conv = config.use_quant_conv ? new Conv2d(2 * L, 2 * L, 1) : null;
    this.post_quant_conv = config.use_post_quant_conv ? new Conv2d(L, L, 1) : null;
  }

  // Spatial downsampling factor: 2 per block after the first.
  get downsampleFactor(): number {
    return 2 ** (this.config.block_out_channels.length - 1);
  }

  // x (B, C, H, W) in [-1, 1] -> a distribution over latents (B, L, H/f, W/f)
  encode(x: Tensor): DiagonalGaussian {
    const moments = this.encoder.forward(x);
    return new DiagonalGaussian(this.quant_conv ? this.quant_conv.forward(moments) : moments);
  }

  // latents (B, L, h, w), unscaled -> images (B, C, h*f, w*f)
  decode(z: Tensor): Tensor {
    return this.decoder.forward(this.post_quant_conv ? this.post_quant_conv.forward(z) : z);
  }

  // The diffusion model sees (z - shift) * scaling_factor; these convert both ways.
  scaleLatents(z: Tensor): Tensor {
    return z.sub(this.config.shift_factor ?? 0).mul(this.config.scaling_factor);
  }
  unscaleLatents(z: Tensor): Tensor {
    return z.div(this.config.scaling_factor).add(this.config.shift_factor ?? 0);
  }

  // Reconstruction (sampled latents while training, the mean otherwise), for VAE training and tests.
  forward(x: Tensor, { sample = this.training, generator }: { sample?: boolean; generator?: Generator } = {}): { sample: Tensor; posterior: DiagonalGaussian } {
    const posterior = this.encode(x);
    return { sample: this.decode(sample ? posterior.sample(generator) : posterior.mode()), posterior };
  }
}

// Early diffusers VAE files (e.g. SD 1.5's vae/diffusion_pytorch_model.safetensors) name the mid-block attention
// query / key / value / proj_attn; diffusers renames them on load, and so does this. Returns the new name, and
// whether the tensor is an old 1x1 conv (C, C, 1, 1) to flatten to a Linear weight (C, C).
export function legacyVaeKey(key: string, ndim: number): { key: string; flatten: boolean } {
  const rename: Record<string, string> = { query: 'to_q', key: 'to_k', value: 'to_v', proj_attn: 'to_out.0' };
  const m = /^(.*\.attentions\.\d+\.)(query|key|value|proj_attn)\.(weight|bias)$/.exec(key);
  return m ? { key: `${m[1]}${rename[m[2]!]}.${m[3]}`, flatten: ndim === 4 } : { key, flatten: false };
}

export function convertLegacyVaeKeys(sd: StateDict): StateDict {
  const out: StateDict = {};
  for (const [k, t] of Object.entries(sd)) {
    const { key, flatten } = legacyVaeKey(k, t.ndim);
    out[key] = flatten ? t.flatten(1) : t;
  }
  return out;
}
