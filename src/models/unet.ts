// UNet2DConditionModel: the noise predictor of latent diffusion (SD 1.x / SDXL family), with diffusers' names and
// config keys, so `unet/` folders load by name. MUMU keeps SDXL's UNet and replaces what its cross-attention reads:
// the adapter's output over VLM hidden states instead of CLIP's (paper section 3, Figure 2); the UNet gets a rank-8
// LoRA (section 5, Table 1).
//
// Shape of the network: conv_in -> down blocks (resnets [+ transformers], stride-2 downsample) -> mid block ->
// up blocks (resnets over [h, skip] [+ transformers], upsample) -> norm, SiLU, conv_out. Every down-path activation
// is a skip for the mirrored up path.
import { Tensor, tensor, cat } from '../torch/index.ts';
import {
  Module, Conv2d, Linear, GroupNorm, LayerNorm, Attention, FeedForward, ResnetBlock2D, Downsample2D, Upsample2D,
  TimestepEmbedding, TextTimeEmbedding, timestepEmbedding, type MaskOptions,
} from '../nn/index.ts';
import { parseConfig, perBlock } from './config.ts';

export type DownBlockType = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UpBlockType = 'CrossAttnUpBlock2D' | 'UpBlock2D';

export interface UNet2DConditionConfig {
  sample_size: number | null;
  in_channels: number;
  out_channels: number;
  center_input_sample: boolean;
  flip_sin_to_cos: boolean;
  freq_shift: number;
  down_block_types: DownBlockType[];
  mid_block_type: 'UNetMidBlock2DCrossAttn' | null;
  up_block_types: UpBlockType[];
  block_out_channels: number[];
  layers_per_block: number;
  downsample_padding: number;
  mid_block_scale_factor: number;
  dropout: number;
  norm_num_groups: number;
  norm_eps: number;
  cross_attention_dim: number;
  transformer_layers_per_block: number | number[];
  // diffusers' historical quirk: without num_attention_heads, attention_head_dim is the number of *heads*
  // (SD 1.5: 8 heads; SDXL: [5, 10, 20] heads of width 64).
  attention_head_dim: number | number[];
  num_attention_heads: number | number[] | null;
  use_linear_projection: boolean; // proj_in / proj_out: Linear (SDXL) or 1x1 Conv2d (SD 1.x)
  upcast_attention: boolean; // an fp16 precaution; attention here runs in the input dtype
  // Added to the time embedding: 'text' (diffusers' TextTimeEmbedding) pools the cross-attention context itself into
  // one vector, the global conditioning path beside cross-attention (GLIDE, Imagen; DiT Fig. 5 finds global
  // conditioning learns faster); 'text_time' is SDXL's micro-conditioning: pooled text embeds + sinusoidal embeds of
  // (orig size, crop, target size), given by the caller.
  addition_embed_type: 'text' | 'text_time' | null;
  addition_time_embed_dim: number | null;
  projection_class_embeddings_input_dim: number | null;
  addition_embed_type_num_heads: number;
}

export function parseUNetConfig(raw: unknown): UNet2DConditionConfig {
  const c = parseConfig<UNet2DConditionConfig>('UNet2DConditionModel', raw, {
    defaults: {
      sample_size: null, in_channels: 4, out_channels: 4, center_input_sample: false, flip_sin_to_cos: true, freq_shift: 0,
      down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
      mid_block_type: 'UNetMidBlock2DCrossAttn',
      up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
      block_out_channels: [320, 640, 1280, 1280], layers_per_block: 2, downsample_padding: 1, mid_block_scale_factor: 1,
      dropout: 0, norm_num_groups: 32, norm_eps: 1e-5, cross_attention_dim: 1280, transformer_layers_per_block: 1,
      attention_head_dim: 8, num_attention_heads: null, use_linear_projection: false, upcast_attention: false,
      addition_embed_type: null, addition_time_embed_dim: null, projection_class_embeddings_input_dim: null,
      addition_embed_type_num_heads: 64,
    },
    flexible: ['transformer_layers_per_block', 'attention_head_dim', 'num_attention_heads', 'sample_size'],
    unsupported: {
      act_fn: 'silu', only_cross_attention: false, dual_cross_attention: false, class_embed_type: null, num_class_embeds: null,
      encoder_hid_dim: null, encoder_hid_dim_type: null, resnet_time_scale_shift: 'default', resnet_skip_time_act: false,
      resnet_out_scale_factor: 1, time_embedding_type: 'positional', time_embedding_dim: null, time_embedding_act_fn: null,
      timestep_post_act: null, time_cond_proj_dim: null, conv_in_kernel: 3, conv_out_kernel: 3, attention_type: 'default',
      class_embeddings_concat: false, mid_block_only_cross_attention: null, cross_attention_norm: null,
      reverse_transformer_layers_per_block: null,
    },
  });
  const n = c.block_out_channels.length;
  const bad = (msg: string) => new Error(`UNet2DConditionModel config: ${msg}`);
  if (c.down_block_types.length !== n || c.up_block_types.length !== n) throw bad(`down/up_block_types need ${n} entries (one per block_out_channels)`);
  for (const t of c.down_block_types) if (t !== 'CrossAttnDownBlock2D' && t !== 'DownBlock2D') throw bad(`down block type '${t}' is not supported (CrossAttnDownBlock2D, DownBlock2D)`);
  for (const t of c.up_block_types) if (t !== 'CrossAttnUpBlock2D' && t !== 'UpBlock2D') throw bad(`up block type '${t}' is not supported (CrossAttnUpBlock2D, UpBlock2D)`);
  if (c.mid_block_type !== null && c.mid_block_type !== 'UNetMidBlock2DCrossAttn') throw bad(`mid_block_type '${c.mid_block_type}' is not supported`);
  if (c.downsample_padding !== 1) throw bad('downsample_padding must be 1');
  if (c.addition_embed_type !== null && c.addition_embed_type !== 'text_time' && c.addition_embed_type !== 'text') throw bad(`addition_embed_type '${c.addition_embed_type}' is not supported (text, text_time)`);
  if (c.addition_embed_type === 'text' && c.cross_attention_dim % c.addition_embed_type_num_heads) throw bad(`addition_embed_type 'text': cross_attention_dim ${c.cross_attention_dim} does not split into addition_embed_type_num_heads ${c.addition_embed_type_num_heads} heads`);
  if (c.addition_embed_type === 'text_time' && (!c.addition_time_embed_dim || !c.projection_class_embeddings_input_dim)) throw bad('text_time needs addition_time_embed_dim and projection_class_embeddings_input_dim');
  return c;
}

interface Context { emb: Tensor; context: Tensor; mask: MaskOptions }

// diffusers' BasicTransformerBlock: self-attention, cross-attention to the conditioning, GEGLU feed-forward; each
// pre-normed with a residual.
class BasicTransformerBlock extends Module {
  norm1: LayerNorm;
  attn1: Attention;
  norm2: LayerNorm;
  attn2: Attention;
  norm3: LayerNorm;
  ff: FeedForward;
  constructor(dim: number, heads: number, crossDim: number, dropout: number) {
    super();
    const dimHead = dim / heads;
    this.norm1 = new LayerNorm(dim);
    this.attn1 = new Attention(dim, { heads, dimHead, dropout });
    this.norm2 = new LayerNorm(dim);
    this.attn2 = new Attention(dim, { heads, dimHead, crossAttentionDim: crossDim, dropout });
    this.norm3 = new LayerNorm(dim);
    this.ff = new FeedForward(dim, { dropout });
  }
  forward(x: Tensor, context: Tensor, mask: MaskOptions): Tensor {
    x = x.add(this.attn1.forward(this.norm1.forward(x)));
    x = x.add(this.attn2.forward(this.norm2.forward(x), context, mask));
    return x.add(this.ff.forward(this.norm3.forward(x)));
  }
}

// diffusers' Transformer2DModel: the feature map as a sequence of pixels through `depth` transformer blocks.
class Transformer2DModel extends Module {
  norm: GroupNorm;
  proj_in: Conv2d | Linear;
  transformer_blocks: BasicTransformerBlock[];
  proj_out: Conv2d | Linear;
  constructor(channels: number, heads: number, depth: number, c: UNet2DConditionConfig) {
    super();
    this.norm = new GroupNorm(c.norm_num_groups, channels, 1e-6);
    this.proj_in = c.use_linear_projection ? new Linear(channels, channels) : new Conv2d(channels, channels, 1);
    this.transformer_blocks = Array.from({ length: depth }, () => new BasicTransformerBlock(channels, heads, c.cross_attention_dim, c.dropout));
    this.proj_out = c.use_linear_projection ? new Linear(channels, channels) : new Conv2d(channels, channels, 1);
  }
  forward(x: Tensor, context: Tensor, mask: MaskOptions): Tensor {
    const [B, C, H, W] = x.shape as [number, number, number, number];
    let h = this.norm.forward(x);
    const toSeq = (t: Tensor) => t.permute(0, 2, 3, 1).reshape(B, H * W, C); // (B, H*W, C)
    const toMap = (t: Tensor) => t.reshape(B, H, W, C).permute(0, 3, 1, 2); // (B, C, H, W)
    h = this.proj_in instanceof Linear ? this.proj_in.forward(toSeq(h)) : toSeq(this.proj_in.forward(h));
    for (const block of this.transformer_blocks) h = block.forward(h, context, mask);
    h = this.proj_out instanceof Linear ? toMap(this.proj_out.forward(h)) : this.proj_out.forward(toMap(h));
    return h.add(x);
  }
}

// CrossAttnDownBlock2D (with attentions) or DownBlock2D (without). Returns its output and the skips it leaves.
class DownBlock extends Module {
  resnets: ResnetBlock2D[];
  attentions: Transformer2DModel[];
  downsamplers: Downsample2D[];
  constructor(type: DownBlockType, inC: number, outC: number, heads: number, depth: number, temb: number, addDownsample: boolean, c: UNet2DConditionConfig) {
    super();
    const opts = { tembChannels: temb, groups: c.norm_num_groups, eps: c.norm_eps, dropout: c.dropout };
    this.resnets = Array.from({ length: c.layers_per_block }, (_, i) => new ResnetBlock2D(i === 0 ? inC : outC, outC, opts));
    this.attentions = type === 'CrossAttnDownBlock2D' ? this.resnets.map(() => new Transformer2DModel(outC, heads, depth, c)) : [];
    this.downsamplers = addDownsample ? [new Downsample2D(outC, 1)] : [];
  }
  forward(h: Tensor, { emb, context, mask }: Context): { h: Tensor; skips: Tensor[] } {
    const skips: Tensor[] = [];
    this.resnets.forEach((resnet, i) => {
      h = resnet.forward(h, emb);
      if (this.attentions[i]) h = this.attentions[i].forward(h, context, mask);
      skips.push(h);
    });
    for (const d of this.downsamplers) skips.push((h = d.forward(h)));
    return { h, skips };
  }
}

// CrossAttnUpBlock2D or UpBlock2D: each resnet reads [h, skip] concatenated on channels.
class UpBlock extends Module {
  resnets: ResnetBlock2D[];
  attentions: Transformer2DModel[];
  upsamplers: Upsample2D[];
  constructor(type: UpBlockType, inC: number, prevC: number, outC: number, heads: number, depth: number, temb: number, addUpsample: boolean, c: UNet2DConditionConfig) {
    super();
    const opts = { tembChannels: temb, groups: c.norm_num_groups, eps: c.norm_eps, dropout: c.dropout };
    const n = c.layers_per_block + 1;
    // the last resnet takes the skip that came out of the previous (shallower) down block, with its width
    this.resnets = Array.from({ length: n }, (_, i) => new ResnetBlock2D((i === 0 ? prevC : outC) + (i === n - 1 ? inC : outC), outC, opts));
    this.attentions = type === 'CrossAttnUpBlock2D' ? this.resnets.map(() => new Transformer2DModel(outC, heads, depth, c)) : [];
    this.upsamplers = addUpsample ? [new Upsample2D(outC)] : [];
  }
  forward(h: Tensor, skips: Tensor[], { emb, context, mask }: Context, upsampleSize?: [number, number]): Tensor {
    this.resnets.forEach((resnet, i) => {
      h = resnet.forward(cat([h, skips.pop()!], 1), emb); // (B, C + C_skip, H, W) -> (B, outC, H, W)
      if (this.attentions[i]) h = this.attentions[i].forward(h, context, mask);
    });
    for (const u of this.upsamplers) h = u.forward(h, upsampleSize);
    return h;
  }
}

// UNetMidBlock2DCrossAttn: resnet, then (transformer, resnet) pairs.
class MidBlock extends Module {
  attentions: Transformer2DModel[];
  resnets: ResnetBlock2D[];
  constructor(channels: number, heads: number, depth: number, temb: number, c: UNet2DConditionConfig) {
    super();
    const opts = { tembChannels: temb, groups: c.norm_num_groups, eps: c.norm_eps, dropout: c.dropout, outputScaleFactor: c.mid_block_scale_factor };
    this.attentions = [new Transformer2DModel(channels, heads, depth, c)];
    this.resnets = [new ResnetBlock2D(channels, channels, opts), new ResnetBlock2D(channels, channels, opts)];
  }
  forward(h: Tensor, { emb, context, mask }: Context): Tensor {
    h = this.resnets[0]!.forward(h, emb);
    this.attentions.forEach((a, i) => (h = this.resnets[i + 1]!.forward(a.forward(h, context, mask), emb)));
    return h;
  }
}

export interface UNetConditioning {
  encoderAttentionMask?: Tensor | null; // (B, S), 1 = real token
  textEmbeds?: Tensor; // SDXL text_time: pooled text embedding (B, P)
  timeIds?: Tensor; // SDXL text_time: (B, 6) original size, crop top-left, target size
}

export class UNet2DConditionModel extends Module {
  conv_in: Conv2d;
  time_embedding: TimestepEmbedding;
  add_embedding: TimestepEmbedding | TextTimeEmbedding | null;
  down_blocks: DownBlock[];
  mid_block: MidBlock | null;
  up_blocks: UpBlock[];
  conv_norm_out: GroupNorm;
  conv_out: Conv2d;

  constructor(readonly config: UNet2DConditionConfig) {
    super();
    const c = config, ch = c.block_out_channels, n = ch.length;
    const temb = ch[0]! * 4;
    const heads = perBlock(c.num_attention_heads ?? c.attention_head_dim, n, 'num_attention_heads');
    const depth = perBlock(c.transformer_layers_per_block, n, 'transformer_layers_per_block');

    this.conv_in = new Conv2d(c.in_channels, ch[0]!, 3, { padding: 1 });
    this.time_embedding = new TimestepEmbedding(ch[0]!, temb);
    this.add_embedding = c.addition_embed_type === 'text_time' ? new TimestepEmbedding(c.projection_class_embeddings_input_dim!, temb)
      : c.addition_embed_type === 'text' ? new TextTimeEmbedding(c.cross_attention_dim, temb, c.addition_embed_type_num_heads) : null;
    this.down_blocks = c.down_block_types.map((t, i) => new DownBlock(t, i === 0 ? ch[0]! : ch[i - 1]!, ch[i]!, heads[i]!, depth[i]!, temb, i < n - 1, c));
    this.mid_block = c.mid_block_type ? new MidBlock(ch[n - 1]!, heads[n - 1]!, depth[n - 1]!, temb, c) : null;
    // up block i mirrors down block n-1-i: its output width is that block's, its last skip comes from the block before
    const rc = [...ch].reverse(), rHeads = [...heads].reverse(), rDepth = [...depth].reverse();
    this.up_blocks = c.up_block_types.map(
      (t, i) => new UpBlock(t, rc[Math.min(i + 1, n - 1)]!, rc[Math.max(i - 1, 0)]!, rc[i]!, rHeads[i]!, rDepth[i]!, temb, i < n - 1, c),
    );
    this.conv_norm_out = new GroupNorm(c.norm_num_groups, ch[0]!, c.norm_eps);
    this.conv_out = new Conv2d(ch[0]!, c.out_channels, 3, { padding: 1 });
  }

  // The time embedding (B, 4 * C0): sinusoids of t through time_embedding, plus the added conditions (the pooled
  // context, or SDXL's).
  embed(timestep: Tensor | number, B: number, cond: UNetConditioning, device: string, context?: Tensor): Tensor {
    let t = typeof timestep === 'number' ? tensor([timestep], { device }) : timestep;
    if (t.ndim === 0) t = t.reshape(1);
    if (t.size(0) === 1 && B > 1) t = t.expand(B);
    const c = this.config;
    let emb = this.time_embedding.forward(timestepEmbedding(t, c.block_out_channels[0]!, { flipSinToCos: c.flip_sin_to_cos, downscaleFreqShift: c.freq_shift }));
    if (this.add_embedding instanceof TextTimeEmbedding) {
      if (!context) throw new Error("UNet2DConditionModel: addition_embed_type 'text' needs the context");
      emb = emb.add(this.add_embedding.forward(context, cond.encoderAttentionMask ?? null).to(emb.dtype));
    } else if (this.add_embedding) {
      if (!cond.textEmbeds || !cond.timeIds) throw new Error('UNet2DConditionModel: text_time conditioning needs textEmbeds and timeIds');
      const timeEmb = timestepEmbedding(cond.timeIds.flatten(), c.addition_time_embed_dim!, { flipSinToCos: c.flip_sin_to_cos, downscaleFreqShift: c.freq_shift });
      const add = cat([cond.textEmbeds, timeEmb.reshape(B, -1).to(cond.textEmbeds.dtype)], -1); // (B, P + 6 * addDim)
      emb = emb.add(this.add_embedding.forward(add));
    }
    return emb;
  }

  // sample (B, in, h, w) noisy latents, timestep (B,) or scalar, encoderHiddenStates (B, S, cross_attention_dim)
  // -> predicted noise (B, out, h, w)
  forward(sample: Tensor, timestep: Tensor | number, encoderHiddenStates: Tensor, cond: UNetConditioning = {}): Tensor {
    return this.forwardWithFeatures(sample, timestep, encoderHiddenStates, cond, null).sample;
  }

  // forward, also handing back the hidden states at one point of the network (`tap`: 'mid', the mid block's output,
  // or 'down.<i>', down block i's output): what a representation-alignment loss reads (src/train/repa.ts).
  forwardWithFeatures(sample: Tensor, timestep: Tensor | number, encoderHiddenStates: Tensor, cond: UNetConditioning, tap: string | null): { sample: Tensor; features: Tensor | null } {
    const B = sample.size(0);
    const ctx: Context = { emb: this.embed(timestep, B, cond, sample.device, encoderHiddenStates), context: encoderHiddenStates, mask: { keyMask: cond.encoderAttentionMask ?? null } };
    if (tap !== null) this.tapChannels(tap);
    let features: Tensor | null = null;
    if (this.config.center_input_sample) sample = sample.mul(2).sub(1);
    let h = this.conv_in.forward(sample);
    const skips: Tensor[] = [h];
    for (const [i, block] of this.down_blocks.entries()) {
      const out = block.forward(h, ctx);
      h = out.h;
      skips.push(...out.skips);
      if (tap === `down.${i}`) features = h;
    }
    if (this.mid_block) h = this.mid_block.forward(h, ctx);
    if (tap === 'mid') features = h;
    for (const block of this.up_blocks) {
      const mine = skips.splice(skips.length - block.resnets.length);
      // upsample to the size of the next skip, so odd latent sizes come back exactly
      const next = skips[skips.length - 1];
      h = block.forward(h, mine, ctx, next ? [next.size(2), next.size(3)] : undefined);
    }
    return { sample: this.conv_out.forward(this.conv_norm_out.forward(h).silu()), features };
  }

  // The channel count of the hidden states at a tap ('mid' or 'down.<i>'); throws for a point this UNet lacks.
  tapChannels(tap: string): number {
    const ch = this.config.block_out_channels;
    if (tap === 'mid' && this.mid_block) return ch[ch.length - 1]!;
    const m = /^down\.(\d+)$/.exec(tap);
    if (m && Number(m[1]) < ch.length) return ch[Number(m[1])]!;
    throw new Error(`UNet2DConditionModel: no hidden states at '${tap}' (taps: ${this.mid_block ? "'mid', " : ''}'down.0' .. 'down.${ch.length - 1}')`);
  }
}
