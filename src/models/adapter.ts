// MUMU's adapter: "a small non-causal 'adapter' transformer on top of Idefics2's hidden states" (paper section 1),
// 16 layers in the paper (section 3), fully trained at 1e-5 (Table 1). It maps VLM hidden states (B, T, in_dim) to
// the UNet's cross-attention context (B, T, out_dim = cross_attention_dim), every token seeing every other: the VLM
// is causal, so without it early prompt tokens would never see the images and words after them.
// Names follow diffusers' transformer blocks (attn1.to_q, ff.net.0.proj, ...); the config is mumu's own.
import { Tensor } from '../torch/index.ts';
import { Module, Linear, LayerNorm, Attention, FeedForward } from '../nn/index.ts';
import { parseConfig } from './config.ts';

export interface AdapterConfig {
  in_dim: number; // the VLM's hidden size
  hidden_size: number;
  num_layers: number;
  num_attention_heads: number;
  ff_mult: number;
  out_dim: number; // the UNet's cross_attention_dim
  norm_eps: number;
  dropout: number;
}

export function parseAdapterConfig(raw: unknown): AdapterConfig {
  const c = parseConfig<AdapterConfig>('Adapter', raw, {
    defaults: { in_dim: 4096, hidden_size: 2048, num_layers: 16, num_attention_heads: 16, ff_mult: 4, out_dim: 2048, norm_eps: 1e-5, dropout: 0 },
  });
  if (c.hidden_size % c.num_attention_heads) throw new Error('Adapter config: hidden_size must be a multiple of num_attention_heads');
  return c;
}

class AdapterBlock extends Module {
  norm1: LayerNorm;
  attn1: Attention;
  norm2: LayerNorm;
  ff: FeedForward;
  constructor(c: AdapterConfig) {
    super();
    const heads = c.num_attention_heads;
    this.norm1 = new LayerNorm(c.hidden_size, c.norm_eps);
    this.attn1 = new Attention(c.hidden_size, { heads, dimHead: c.hidden_size / heads, dropout: c.dropout });
    this.norm2 = new LayerNorm(c.hidden_size, c.norm_eps);
    this.ff = new FeedForward(c.hidden_size, { mult: c.ff_mult, activation: 'gelu', dropout: c.dropout });
  }
  forward(x: Tensor, keyMask: Tensor | null): Tensor {
    x = x.add(this.attn1.forward(this.norm1.forward(x), null, { keyMask }));
    return x.add(this.ff.forward(this.norm2.forward(x)));
  }
}

export class Adapter extends Module {
  proj_in: Linear;
  transformer_blocks: AdapterBlock[];
  norm_out: LayerNorm;
  proj_out: Linear;
  constructor(readonly config: AdapterConfig) {
    super();
    this.proj_in = new Linear(config.in_dim, config.hidden_size);
    this.transformer_blocks = Array.from({ length: config.num_layers }, () => new AdapterBlock(config));
    this.norm_out = new LayerNorm(config.hidden_size, config.norm_eps);
    this.proj_out = new Linear(config.hidden_size, config.out_dim);
  }
  // hidden (B, T, in_dim), keyMask (B, T) 1 = real token -> (B, T, out_dim)
  forward(hidden: Tensor, keyMask: Tensor | null = null): Tensor {
    let h = this.proj_in.forward(hidden);
    for (const block of this.transformer_blocks) h = block.forward(h, keyMask);
    return this.proj_out.forward(this.norm_out.forward(h));
  }
}
