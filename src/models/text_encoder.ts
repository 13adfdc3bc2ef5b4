// A CLIP text encoder (Radford et al. 2021) with transformers' CLIPTextModel names (`text_model.*`), as SD 1.x's
// `text_encoder/`. It is what MUMU replaces (paper section 3: SDXL's CLIP states swapped for the VLM's), kept as
// the text-only base model mumu starts from and as a baseline.
import { Tensor, arange } from '../torch/index.ts';
import { Module, LayerNorm, Embedding, ACTIVATIONS, type Activation } from '../nn/index.ts';
import { Encoder, EncoderLayer } from './vit.ts';
import { parseConfig } from './config.ts';

export interface CLIPTextConfig {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  projection_dim: number; // for CLIPTextModelWithProjection; unused by CLIPTextModel
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: Activation;
  layer_norm_eps: number;
  attention_dropout: number;
  eos_token_id: number; // the pooled output is read at the end-of-text token
}

export function parseCLIPTextConfig(raw: unknown): CLIPTextConfig {
  const c = parseConfig<CLIPTextConfig>('CLIPTextModel', raw, {
    defaults: {
      vocab_size: 49408, hidden_size: 512, intermediate_size: 2048, projection_dim: 512, num_hidden_layers: 12,
      num_attention_heads: 8, max_position_embeddings: 77, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5,
      attention_dropout: 0, eos_token_id: 2,
    },
    unsupported: { dropout: 0, tie_word_embeddings: false },
  });
  if (!ACTIVATIONS.includes(c.hidden_act)) throw new Error(`CLIPTextModel config: hidden_act '${c.hidden_act}' is not one of ${ACTIVATIONS.join(', ')}`);
  return c;
}

class TextEmbeddings extends Module {
  token_embedding: Embedding;
  position_embedding: Embedding;
  constructor(c: CLIPTextConfig) {
    super();
    this.token_embedding = new Embedding(c.vocab_size, c.hidden_size, { std: 0.02 });
    this.position_embedding = new Embedding(c.max_position_embeddings, c.hidden_size, { std: 0.01 });
  }
  forward(ids: Tensor): Tensor {
    const positions = arange(0, ids.size(1), 1, { device: ids.device });
    return this.token_embedding.forward(ids).add(this.position_embedding.forward(positions)); // (B, T, D)
  }
}

class CLIPTextTransformer extends Module {
  embeddings: TextEmbeddings;
  encoder: Encoder;
  final_layer_norm: LayerNorm;
  constructor(c: CLIPTextConfig) {
    super();
    this.embeddings = new TextEmbeddings(c);
    this.encoder = new Encoder(c.num_hidden_layers, () => new EncoderLayer(c.hidden_size, c.num_attention_heads, c.intermediate_size, c.hidden_act, c.layer_norm_eps));
    this.final_layer_norm = new LayerNorm(c.hidden_size, c.layer_norm_eps);
  }
}

export interface TextEncoderOutput {
  lastHiddenState: Tensor; // (B, T, D): SD's cross-attention context
  pooled: Tensor; // (B, D): the state at the end-of-text token
  penultimate: Tensor; // (B, T, D): the layer before last, un-normed (SDXL reads this one)
}

export class TextEncoder extends Module {
  text_model: CLIPTextTransformer;
  constructor(readonly config: CLIPTextConfig) {
    super();
    this.text_model = new CLIPTextTransformer(config);
  }
  // ids (B, T) -> states; CLIP's text transformer is causal. attentionMask (B, T), 1 = real token.
  forward(ids: Tensor, attentionMask: Tensor | null = null): TextEncoderOutput {
    const tm = this.text_model;
    if (ids.size(1) > this.config.max_position_embeddings) throw new Error(`TextEncoder: ${ids.size(1)} tokens exceed max_position_embeddings ${this.config.max_position_embeddings}`);
    let h = tm.embeddings.forward(ids);
    let penultimate = h;
    for (const layer of tm.encoder.layers) {
      penultimate = h;
      h = layer.forward(h, { causal: true, keyMask: attentionMask });
    }
    const last = tm.final_layer_norm.forward(h);
    // transformers: legacy configs (eos_token_id 2) pool at the highest id, which is CLIP's end-of-text token
    const eos = this.config.eos_token_id === 2 ? ids.argmax(-1) : ids.eq(this.config.eos_token_id).to('int64').argmax(-1);
    const B = ids.size(0);
    const pooled = last.index([arange(0, B, 1, { device: ids.device }), eos]); // (B, D)
    return { lastHiddenState: last, pooled, penultimate };
  }
}
