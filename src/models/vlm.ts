// The vision-language model MUMU uses as its prompt encoder (paper section 3): Idefics2 = SigLIP ViT -> connector
// (modality projection + perceiver resampler) -> Mistral decoder, with transformers' Idefics2 names
// (`model.vision_model.*`, `model.connector.*`, `model.text_model.*`, `lm_head`). The prompt is interleaved: text ids
// with runs of `<image>` placeholder ids whose embeddings are replaced, in order, by the image features.
//
// MUMU removes the perceiver so each image keeps all its patch tokens, because the perceiver's fixed 64 latents
// "hurt detail preservation" (sections 3 and 6, Figure 5); `use_perceiver: false` is that model, `true` is
// Idefics2 as released and the paper's 64-token ablation. MUMU reads the last hidden states; the next-token logits
// are for pre-training the VLM by captioning.
import { Tensor, F, cat, empty, normal_, tensor, tidy } from '../torch/index.ts';
import { Module, Linear, RMSNorm, Embedding, SwiGLU, splitHeads, mergeHeads, repeatKV, attend, rotaryTables, applyRotary, ACTIVATIONS, parameter, initGenerator, type Activation } from '../nn/index.ts';
import { VisionTransformer, parseVisionConfig, type VisionConfig } from './vit.ts';
import { parseConfig } from './config.ts';

export interface TextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number; // grouped-query attention: fewer KV heads than query heads
  head_dim: number | null; // default hidden_size / num_attention_heads
  hidden_act: Activation;
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  sliding_window: number | null; // Mistral's local attention window; sequences here must fit in it
  attention_dropout: number;
}

export function parseTextConfig(raw: unknown): TextConfig {
  const c = parseConfig<TextConfig>('text (Mistral)', raw, {
    defaults: {
      vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32,
      num_key_value_heads: 8, head_dim: null, hidden_act: 'silu', max_position_embeddings: 32768, rms_norm_eps: 1e-6,
      rope_theta: 10000, sliding_window: 4096, attention_dropout: 0,
    },
    unsupported: { rope_scaling: null, tie_word_embeddings: false },
  });
  if (!ACTIVATIONS.includes(c.hidden_act)) throw new Error(`text config: hidden_act '${c.hidden_act}' is not one of ${ACTIVATIONS.join(', ')}`);
  if (c.num_attention_heads % c.num_key_value_heads) throw new Error('text config: num_attention_heads must be a multiple of num_key_value_heads');
  return c;
}

export interface PerceiverConfig {
  hidden_size: number | null; // newer transformers copy the LM width here; it must agree
  rms_norm_eps: number | null; // likewise; the LM's eps is used, as Idefics2 does
  hidden_act: Activation;
  resampler_n_latents: number;
  resampler_depth: number;
  resampler_n_heads: number;
  resampler_head_dim: number;
  num_key_value_heads: number;
  attention_dropout: number;
}

export function parsePerceiverConfig(raw: unknown): PerceiverConfig {
  return parseConfig<PerceiverConfig>('perceiver', raw, {
    defaults: { hidden_size: null, rms_norm_eps: null, hidden_act: 'silu', resampler_n_latents: 64, resampler_depth: 3, resampler_n_heads: 16, resampler_head_dim: 96, num_key_value_heads: 4, attention_dropout: 0 },
  });
}

export interface VLMConfig {
  image_token_id: number;
  use_perceiver: boolean; // mumu's key: false removes the perceiver as MUMU does
  vision_config: VisionConfig;
  perceiver_config: PerceiverConfig;
  text_config: TextConfig;
}

export function parseVLMConfig(raw: unknown): VLMConfig {
  const r = (raw ?? {}) as Record<string, unknown>;
  const top = parseConfig('VisionLanguageModel (Idefics2)', raw, {
    defaults: { image_token_id: 32001, use_perceiver: true, vision_config: {}, perceiver_config: {}, text_config: {} },
    unsupported: { tie_word_embeddings: false },
  });
  const c: VLMConfig = {
    image_token_id: top.image_token_id,
    use_perceiver: top.use_perceiver,
    vision_config: parseVisionConfig(r.vision_config ?? {}),
    perceiver_config: parsePerceiverConfig(r.perceiver_config ?? {}),
    text_config: parseTextConfig(r.text_config ?? {}),
  };
  const ph = c.perceiver_config.hidden_size;
  if (ph !== null && ph !== c.text_config.hidden_size) throw new Error(`Idefics2 config: perceiver_config.hidden_size ${ph} != text_config.hidden_size ${c.text_config.hidden_size}`);
  return c;
}

// ---- Mistral ----

// Causal self-attention with rotary positions and grouped KV heads (q_proj, k_proj, v_proj, o_proj; no biases).
class MistralAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  readonly heads: number;
  readonly kvHeads: number;
  constructor(c: TextConfig) {
    super();
    const d = c.head_dim ?? c.hidden_size / c.num_attention_heads;
    this.heads = c.num_attention_heads;
    this.kvHeads = c.num_key_value_heads;
    this.q_proj = new Linear(c.hidden_size, this.heads * d, { bias: false });
    this.k_proj = new Linear(c.hidden_size, this.kvHeads * d, { bias: false });
    this.v_proj = new Linear(c.hidden_size, this.kvHeads * d, { bias: false });
    this.o_proj = new Linear(this.heads * d, c.hidden_size, { bias: false });
  }
  forward(x: Tensor, rope: { cos: Tensor; sin: Tensor }, keyMask: Tensor | null): Tensor {
    const q = applyRotary(splitHeads(this.q_proj.forward(x), this.heads), rope.cos, rope.sin); // (B, heads, T, d)
    const k = applyRotary(splitHeads(this.k_proj.forward(x), this.kvHeads), rope.cos, rope.sin); // (B, kvHeads, T, d)
    const v = splitHeads(this.v_proj.forward(x), this.kvHeads);
    const rep = this.heads / this.kvHeads;
    const out = attend(q, repeatKV(k, rep), repeatKV(v, rep), { causal: true, keyMask }); // (B, heads, T, d)
    return this.o_proj.forward(mergeHeads(out));
  }
}

class MistralDecoderLayer extends Module {
  self_attn: MistralAttention;
  mlp: SwiGLU;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;
  constructor(c: TextConfig) {
    super();
    this.self_attn = new MistralAttention(c);
    this.mlp = new SwiGLU(c.hidden_size, c.intermediate_size, c.hidden_size, c.hidden_act);
    this.input_layernorm = new RMSNorm(c.hidden_size, c.rms_norm_eps);
    this.post_attention_layernorm = new RMSNorm(c.hidden_size, c.rms_norm_eps);
  }
  forward(x: Tensor, rope: { cos: Tensor; sin: Tensor }, keyMask: Tensor | null): Tensor {
    x = x.add(this.self_attn.forward(this.input_layernorm.forward(x), rope, keyMask));
    return x.add(this.mlp.forward(this.post_attention_layernorm.forward(x)));
  }
}

// MistralModel: token embeddings -> decoder layers -> final RMSNorm.
export class MistralModel extends Module {
  embed_tokens: Embedding;
  layers: MistralDecoderLayer[];
  norm: RMSNorm;
  constructor(readonly config: TextConfig) {
    super();
    this.embed_tokens = new Embedding(config.vocab_size, config.hidden_size, { std: 0.02 });
    this.layers = Array.from({ length: config.num_hidden_layers }, () => new MistralDecoderLayer(config));
    this.norm = new RMSNorm(config.hidden_size, config.rms_norm_eps);
  }
  // embeds (B, T, D), keyMask (B, T) 1 = real token -> (B, T, D)
  forward(embeds: Tensor, keyMask: Tensor | null = null): Tensor {
    const c = this.config, T = embeds.size(1);
    if (c.sliding_window !== null && T > c.sliding_window) throw new Error(`Mistral: sequence of ${T} tokens exceeds sliding_window ${c.sliding_window} (windowed attention is not implemented)`);
    const rope = rotaryTables(T, c.head_dim ?? c.hidden_size / c.num_attention_heads, c.rope_theta, embeds.device);
    let h = embeds;
    for (const layer of this.layers) h = layer.forward(h, rope, keyMask);
    return this.norm.forward(h);
  }
}

// ---- Idefics2 connector ----

// Perceiver attention: latents query [context; latents] (Jaegle et al. 2021), grouped KV heads, not causal.
class PerceiverAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  constructor(dim: number, readonly p: PerceiverConfig) {
    super();
    this.q_proj = new Linear(dim, p.resampler_n_heads * p.resampler_head_dim, { bias: false });
    this.k_proj = new Linear(dim, p.num_key_value_heads * p.resampler_head_dim, { bias: false });
    this.v_proj = new Linear(dim, p.num_key_value_heads * p.resampler_head_dim, { bias: false });
    this.o_proj = new Linear(p.resampler_n_heads * p.resampler_head_dim, dim, { bias: false });
  }
  forward(latents: Tensor, context: Tensor): Tensor {
    const kv = cat([context, latents], 1); // (N, S + L, D)
    const rep = this.p.resampler_n_heads / this.p.num_key_value_heads;
    const q = splitHeads(this.q_proj.forward(latents), this.p.resampler_n_heads); // (N, heads, L, d)
    const k = repeatKV(splitHeads(this.k_proj.forward(kv), this.p.num_key_value_heads), rep); // (N, heads, S + L, d)
    const v = repeatKV(splitHeads(this.v_proj.forward(kv), this.p.num_key_value_heads), rep);
    return this.o_proj.forward(mergeHeads(attend(q, k, v)));
  }
}

class PerceiverLayer extends Module {
  input_latents_norm: RMSNorm;
  input_context_norm: RMSNorm;
  self_attn: PerceiverAttention;
  post_attention_layernorm: RMSNorm;
  mlp: SwiGLU;
  constructor(dim: number, p: PerceiverConfig, eps: number) {
    super();
    this.input_latents_norm = new RMSNorm(dim, eps);
    this.input_context_norm = new RMSNorm(dim, eps);
    this.self_attn = new PerceiverAttention(dim, p);
    this.post_attention_layernorm = new RMSNorm(dim, eps);
    this.mlp = new SwiGLU(dim, dim * 4, dim, p.hidden_act);
  }
  forward(latents: Tensor, context: Tensor): Tensor {
    latents = latents.add(this.self_attn.forward(this.input_latents_norm.forward(latents), this.input_context_norm.forward(context)));
    return latents.add(this.mlp.forward(this.post_attention_layernorm.forward(latents)));
  }
}

// Pools any number of image tokens into resampler_n_latents learned queries.
export class PerceiverResampler extends Module {
  latents: Tensor; // (L, D)
  layers: PerceiverLayer[];
  norm: RMSNorm;
  constructor(dim: number, p: PerceiverConfig, eps: number) {
    super();
    // Idefics2 starts its latents at ones, fine when loading trained weights; identical queries could never
    // become different when training from scratch, so draw them.
    this.latents = parameter(normal_(empty([p.resampler_n_latents, dim]), 0, 1, initGenerator()));
    this.layers = Array.from({ length: p.resampler_depth }, () => new PerceiverLayer(dim, p, eps));
    this.norm = new RMSNorm(dim, eps);
  }
  // context (N, S, D) -> (N, L, D)
  forward(context: Tensor): Tensor {
    const [N] = context.shape as [number];
    let latents = this.latents.unsqueeze(0).expand(N, -1, -1); // (N, L, D)
    for (const layer of this.layers) latents = layer.forward(latents, context);
    return this.norm.forward(latents);
  }
}

// modality_projection maps ViT width to LM width (Table 1's "ViT to VLM MLP", LoRA-trained in MUMU), then the
// optional perceiver.
class Connector extends Module {
  modality_projection: SwiGLU;
  perceiver_resampler: PerceiverResampler | null;
  constructor(c: VLMConfig) {
    super();
    const t = c.text_config;
    this.modality_projection = new SwiGLU(c.vision_config.hidden_size, t.intermediate_size, t.hidden_size, t.hidden_act);
    this.perceiver_resampler = c.use_perceiver ? new PerceiverResampler(t.hidden_size, c.perceiver_config, t.rms_norm_eps) : null;
  }
  forward(imageTokens: Tensor): Tensor {
    const h = this.modality_projection.forward(imageTokens); // (N, S, D_text)
    return this.perceiver_resampler ? this.perceiver_resampler.forward(h) : h;
  }
}

class Idefics2Model extends Module {
  vision_model: VisionTransformer;
  connector: Connector;
  text_model: MistralModel;
  constructor(c: VLMConfig) {
    super();
    this.vision_model = new VisionTransformer(c.vision_config);
    this.connector = new Connector(c);
    this.text_model = new MistralModel(c.text_config);
  }
}

export interface VLMOutput {
  lastHiddenState: Tensor; // (B, T, D): what MUMU's adapter reads
  logits: Tensor | null; // (B, T, vocab): next-token scores, when asked for
}

export class VisionLanguageModel extends Module {
  model: Idefics2Model;
  lm_head: Linear;
  constructor(readonly config: VLMConfig) {
    super();
    this.model = new Idefics2Model(config);
    this.lm_head = new Linear(config.text_config.hidden_size, config.text_config.vocab_size, { bias: false });
  }

  // How many `<image>` placeholders the prompt needs per image: all patches, or the perceiver's latent count.
  get tokensPerImage(): number {
    return this.config.use_perceiver ? this.config.perceiver_config.resampler_n_latents : this.model.vision_model.tokensPerImage;
  }
  // The same for images of side x side px (the ViT interpolates its position embeddings; the perceiver's count is
  // fixed whatever the side). Throws a RangeError for a side the ViT cannot take.
  tokensFor(side: number, width = side): number {
    const n = this.model.vision_model.tokensFor(side, width);
    return this.config.use_perceiver ? this.config.perceiver_config.resampler_n_latents : n;
  }

  // Image features in the LM's width: (N, C, S, S) -> (N, tokensFor(S), D)
  encodeImages(pixels: Tensor): Tensor {
    return this.model.connector.forward(this.model.vision_model.forward(pixels));
  }

  // inputIds (B, T) with image_token_id at image positions; pixels (N, C, S, S), the images in the order their
  // placeholders appear (row by row); attentionMask (B, T), 1 = real token.
  forward(inputIds: Tensor, pixels: Tensor | null = null, { attentionMask = null as Tensor | null, logits = false } = {}): VLMOutput {
    let embeds = this.model.text_model.embed_tokens.forward(inputIds); // (B, T, D)
    const isImage = inputIds.eq(this.config.image_token_id); // (B, T)
    const slots = isImage.sum().item();
    const N = pixels ? pixels.size(0) : 0;
    const perImage = pixels ? this.tokensFor(pixels.size(-2), pixels.size(-1)) : this.tokensPerImage;
    if (slots !== N * perImage) {
      throw new Error(`VisionLanguageModel: ${slots} image placeholder tokens for ${N} images x ${perImage} tokens per image`);
    }
    if (pixels && N) {
      const features = this.encodeImages(pixels).to(embeds.dtype); // (N, tokensPerImage, D)
      // As Idefics2's inputs_merger: the placeholders' embeddings, in order, become the image features.
      embeds = embeds.maskedScatter(isImage.unsqueeze(-1).expand(...embeds.shape), features);
    }
    const lastHiddenState = this.model.text_model.forward(embeds, attentionMask);
    return { lastHiddenState, logits: logits ? this.lm_head.forward(lastHiddenState) : null };
  }

  // Captioning loss for VLM pre-training: predict token t+1 from tokens <= t; labels -100 are ignored (image
  // placeholders, padding).
  captionLoss(inputIds: Tensor, pixels: Tensor | null, labels: Tensor, attentionMask: Tensor | null = null): Tensor {
    const { logits } = this.forward(inputIds, pixels, { attentionMask, logits: true });
    const T = inputIds.size(1);
    const pred = logits!.narrow(1, 0, T - 1); // (B, T-1, V)
    const target = labels.narrow(1, 1, T - 1); // (B, T-1)
    return F.crossEntropy(pred.reshape(-1, pred.size(-1)), target.reshape(-1), { ignoreIndex: -100 });
  }

  // Greedy decoding after a prompt (1-D token ids with its images): the next tokens up to eosId or maxNewTokens
  // (no KV cache: captions here are a few words).
  greedy(ids: number[], pixels: Tensor | null, { eosId, maxNewTokens = 24 }: { eosId?: number; maxNewTokens?: number } = {}): number[] {
    const out: number[] = [];
    for (let k = 0; k < maxNewTokens; k++) {
      const next = tidy(() => {
        const x = tensor(BigInt64Array.from([...ids, ...out].map(BigInt)), { shape: [1, ids.length + out.length] }).to(this.lm_head.weight.device);
        const { logits } = this.forward(x, pixels, { logits: true });
        return logits!.select(1, x.size(1) - 1).argmax(-1).item();
      });
      if (next === eosId) break;
      out.push(next);
    }
    return out;
  }
}
