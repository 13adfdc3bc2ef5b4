// The vision transformer with SigLIP's names (Zhai et al. 2023), as Idefics2 embeds images with it
// (`model.vision_model.*`). MUMU keeps it frozen (paper Table 1). Image size and patch size fix the number of tokens
// per image, (image_size / patch_size)^2: the knob of the paper's tokens-per-image finding (section 6, Figure 5).
import { Tensor, arange } from '../torch/index.ts';
import { Module, Linear, Conv2d, LayerNorm, Embedding, MLP, splitHeads, mergeHeads, attend, ACTIVATIONS, type Activation, type MaskOptions } from '../nn/index.ts';
import { parseConfig } from './config.ts';

export interface VisionConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
  hidden_act: Activation;
  layer_norm_eps: number;
  attention_dropout: number;
}

export function parseVisionConfig(raw: unknown): VisionConfig {
  const c = parseConfig<VisionConfig>('vision', raw, {
    defaults: {
      hidden_size: 768, intermediate_size: 3072, num_hidden_layers: 12, num_attention_heads: 12, num_channels: 3,
      image_size: 224, patch_size: 16, hidden_act: 'gelu_pytorch_tanh', layer_norm_eps: 1e-6, attention_dropout: 0,
    },
    // SigLIP's attention-pooling head is for contrastive training; Idefics2 (and MUMU) read the patch tokens
    unsupported: { vision_use_head: false },
  });
  if (!ACTIVATIONS.includes(c.hidden_act)) throw new Error(`vision config: hidden_act '${c.hidden_act}' is not one of ${ACTIVATIONS.join(', ')}`);
  if (c.image_size % c.patch_size) throw new Error(`vision config: image_size ${c.image_size} is not a multiple of patch_size ${c.patch_size}`);
  return c;
}

// Multi-head attention with transformers' CLIP / SigLIP names (q_proj, k_proj, v_proj, out_proj; all biased).
export class EncoderAttention extends Module {
  k_proj: Linear;
  v_proj: Linear;
  q_proj: Linear;
  out_proj: Linear;
  constructor(dim: number, readonly heads: number) {
    super();
    this.k_proj = new Linear(dim, dim);
    this.v_proj = new Linear(dim, dim);
    this.q_proj = new Linear(dim, dim);
    this.out_proj = new Linear(dim, dim);
  }
  forward(x: Tensor, mask: MaskOptions = {}): Tensor {
    const q = splitHeads(this.q_proj.forward(x), this.heads); // (B, heads, T, d)
    const k = splitHeads(this.k_proj.forward(x), this.heads);
    const v = splitHeads(this.v_proj.forward(x), this.heads);
    return this.out_proj.forward(mergeHeads(attend(q, k, v, mask))); // (B, T, D)
  }
}

// A pre-norm transformer layer with CLIP / SigLIP names.
export class EncoderLayer extends Module {
  layer_norm1: LayerNorm;
  self_attn: EncoderAttention;
  layer_norm2: LayerNorm;
  mlp: MLP;
  constructor(dim: number, heads: number, intermediate: number, act: Activation, eps: number) {
    super();
    this.layer_norm1 = new LayerNorm(dim, eps);
    this.self_attn = new EncoderAttention(dim, heads);
    this.layer_norm2 = new LayerNorm(dim, eps);
    this.mlp = new MLP(dim, intermediate, act);
  }
  forward(x: Tensor, mask: MaskOptions = {}): Tensor {
    x = x.add(this.self_attn.forward(this.layer_norm1.forward(x), mask));
    return x.add(this.mlp.forward(this.layer_norm2.forward(x)));
  }
}

export class Encoder extends Module {
  layers: EncoderLayer[];
  constructor(n: number, make: () => EncoderLayer) {
    super();
    this.layers = Array.from({ length: n }, make);
  }
  forward(x: Tensor, mask: MaskOptions = {}): Tensor {
    for (const layer of this.layers) x = layer.forward(x, mask);
    return x;
  }
}

// Non-overlapping patches, linearly embedded by a stride-p convolution, plus a learned position per patch.
class VisionEmbeddings extends Module {
  patch_embedding: Conv2d;
  position_embedding: Embedding;
  constructor(readonly c: VisionConfig) {
    super();
    this.patch_embedding = new Conv2d(c.num_channels, c.hidden_size, c.patch_size, { stride: c.patch_size });
    this.position_embedding = new Embedding((c.image_size / c.patch_size) ** 2, c.hidden_size);
  }
  forward(pixels: Tensor): Tensor {
    const [, , H, W] = pixels.shape as number[];
    if (H !== this.c.image_size || W !== this.c.image_size) throw new Error(`VisionTransformer: images must be ${this.c.image_size}x${this.c.image_size}, got ${H}x${W}`);
    const patches = this.patch_embedding.forward(pixels).flatten(2).transpose(1, 2); // (N, D, h, w) -> (N, h*w, D)
    const positions = arange(0, patches.size(1), 1, { device: pixels.device });
    return patches.add(this.position_embedding.forward(positions));
  }
}

// SigLIP's vision transformer (SiglipVisionTransformer / Idefics2VisionTransformer): pixels -> one token per patch.
export class VisionTransformer extends Module {
  embeddings: VisionEmbeddings;
  encoder: Encoder;
  post_layernorm: LayerNorm;
  constructor(readonly config: VisionConfig) {
    super();
    const c = config;
    this.embeddings = new VisionEmbeddings(c);
    this.encoder = new Encoder(c.num_hidden_layers, () => new EncoderLayer(c.hidden_size, c.num_attention_heads, c.intermediate_size, c.hidden_act, c.layer_norm_eps));
    this.post_layernorm = new LayerNorm(c.hidden_size, c.layer_norm_eps);
  }
  get tokensPerImage(): number {
    return (this.config.image_size / this.config.patch_size) ** 2;
  }
  // pixels (N, C, S, S), normalised as the processor does -> (N, tokensPerImage, hidden_size)
  forward(pixels: Tensor): Tensor {
    return this.post_layernorm.forward(this.encoder.forward(this.embeddings.forward(pixels)));
  }
}
