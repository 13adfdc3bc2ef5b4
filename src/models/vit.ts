// The vision transformer with SigLIP's names (Zhai et al. 2023), as Idefics2 embeds images with it
// (`model.vision_model.*`). MUMU keeps it frozen (paper Table 1). Image size and patch size fix the number of tokens
// per image, (image_size / patch_size)^2: the knob of the paper's tokens-per-image finding (section 6, Figure 5).
// Other input sides (multiples of patch_size) give other token counts: the learned g x g grid of position
// embeddings is resized to the new h x w patch grid by bicubic interpolation (align_corners false), as timm / DINO's
// interpolate_pos_encoding and Idefics2's variable resolutions do; at the native side nothing is resized.
import { Tensor, arange, F } from '../torch/index.ts';
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

// Input sides a ViT accepts: whole patches, at least one, at most 4x its native side (16x its native tokens).
export const MAX_SIDE_FACTOR = 4;
export function checkImageSide(c: Pick<VisionConfig, 'image_size' | 'patch_size'>, side: number, what = 'image side'): void {
  const max = MAX_SIDE_FACTOR * c.image_size;
  if (!Number.isInteger(side) || side < c.patch_size || side > max || side % c.patch_size) {
    const ok = [1, 2, 3, 4].map((k) => k * c.patch_size).filter((x) => x <= max);
    throw new RangeError(`${what} ${side} px: must be a multiple of the ViT's patch size ${c.patch_size} px between ${c.patch_size} and ${max} `
      + `(${MAX_SIDE_FACTOR}x its native ${c.image_size} px), e.g. ${ok.join(', ')}, ... ${max}; ${c.image_size} px = ${(c.image_size / c.patch_size) ** 2} tokens per image`);
  }
}

// The learned position grid (g*g, D) resized to h x w patches -> (h*w, D): bicubic, align_corners false, no
// antialiasing (F.interpolate's defaults); the native grid is returned as is.
export function interpolatePositions(table: Tensor, h: number, w: number): Tensor {
  const [n, D] = table.shape as [number, number];
  const g = Math.round(Math.sqrt(n));
  if (g * g !== n) throw new Error(`interpolatePositions: ${n} positions are not a square grid`);
  if (h === g && w === g) return table;
  const grid = table.reshape(1, g, g, D).permute(0, 3, 1, 2); // (1, D, g, g)
  return F.interpolate(grid, { size: [h, w], mode: 'bicubic', alignCorners: false }).permute(0, 2, 3, 1).reshape(h * w, D);
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
    const [, , H, W] = pixels.shape as [number, number, number, number];
    const native = H === this.c.image_size && W === this.c.image_size;
    if (!native) {
      checkImageSide(this.c, H, 'VisionTransformer: image height');
      checkImageSide(this.c, W, 'VisionTransformer: image width');
    }
    const patches = this.patch_embedding.forward(pixels).flatten(2).transpose(1, 2); // (N, D, h, w) -> (N, h*w, D)
    if (!native) return patches.add(interpolatePositions(this.position_embedding.weight, H / this.c.patch_size, W / this.c.patch_size));
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
  // tokens for an image of side x side px (checked: whole patches, within the limits of checkImageSide)
  tokensFor(side: number, width = side): number {
    checkImageSide(this.config, side);
    checkImageSide(this.config, width);
    return (side / this.config.patch_size) * (width / this.config.patch_size);
  }
  // pixels (N, C, H, W), normalised as the processor does -> (N, (H/p)*(W/p), hidden_size); native side: tokensPerImage
  forward(pixels: Tensor): Tensor {
    return this.post_layernorm.forward(this.encoder.forward(this.embeddings.forward(pixels)));
  }
}
