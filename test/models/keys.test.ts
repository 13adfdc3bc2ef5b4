// Checkpoint key names: configs shaped like public checkpoints (real structure, widths scaled down) must produce
// exactly the tensor names those checkpoints contain, so real weights load by name. The counts are the number of
// tensors in the public files (SD 1.5 unet: 686, vae: 248 with today's attention names, CLIP-L text: 196 without
// the position_ids buffer, Mistral-7B: 291).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seeded, Module } from '../../src/nn/index.ts';
import {
  UNet2DConditionModel, AutoencoderKL, VisionTransformer, MistralModel, VisionLanguageModel, TextEncoder, parseUNetConfig,
  parseAutoencoderKLConfig, parseVisionConfig, parseTextConfig, parseVLMConfig, parseCLIPTextConfig,
} from '../../src/models/index.ts';

// runwayml/stable-diffusion-v1-5 unet/config.json, verbatim
const SD15_UNET = {
  _class_name: 'UNet2DConditionModel', _diffusers_version: '0.6.0', act_fn: 'silu', attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280], center_input_sample: false, cross_attention_dim: 768,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 1, flip_sin_to_cos: true, freq_shift: 0, in_channels: 4, layers_per_block: 2, mid_block_scale_factor: 1,
  norm_eps: 1e-5, norm_num_groups: 32, out_channels: 4, sample_size: 64,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
};
// runwayml/stable-diffusion-v1-5 vae/config.json, verbatim
const SD15_VAE = {
  _class_name: 'AutoencoderKL', _diffusers_version: '0.6.0', act_fn: 'silu', block_out_channels: [128, 256, 512, 512],
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  in_channels: 3, latent_channels: 4, layers_per_block: 2, norm_num_groups: 32, out_channels: 3, sample_size: 512,
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
};
// openai/clip-vit-large-patch14 text config as in SD 1.5's text_encoder/config.json
const CLIP_L_TEXT = {
  _name_or_path: 'openai/clip-vit-large-patch14', architectures: ['CLIPTextModel'], attention_dropout: 0.0, bos_token_id: 0,
  dropout: 0.0, eos_token_id: 2, hidden_act: 'quick_gelu', hidden_size: 768, initializer_factor: 1.0, initializer_range: 0.02,
  intermediate_size: 3072, layer_norm_eps: 1e-5, max_position_embeddings: 77, model_type: 'clip_text_model',
  num_attention_heads: 12, num_hidden_layers: 12, pad_token_id: 1, projection_dim: 768, torch_dtype: 'float32',
  transformers_version: '4.22.0.dev0', vocab_size: 49408,
};

const keysOf = (m: Module, prefix = '') => m.namedParameters().map(([k]) => prefix + k);
const shapeOf = (m: Module, key: string) => [...m.stateDict()[key]!.shape];
function assertHas(keys: string[], pinned: string[]) {
  const set = new Set(keys);
  const missing = pinned.filter((k) => !set.has(k));
  assert.deepEqual(missing, [], 'pinned checkpoint keys the model does not produce');
}

test('SD 1.5 UNet: real config accepted verbatim; 686 tensors with the public names', () => {
  assert.doesNotThrow(() => parseUNetConfig(SD15_UNET));
  // widths / 40 (cross-attention 768 / 48): the same names, a few MB
  const unet = seeded(0, () => new UNet2DConditionModel(parseUNetConfig({ ...SD15_UNET, block_out_channels: [8, 16, 32, 32], norm_num_groups: 8, cross_attention_dim: 16 })));
  const keys = keysOf(unet);
  assert.equal(keys.length, 686);
  assertHas(keys, [
    'conv_in.weight', 'time_embedding.linear_1.weight', 'time_embedding.linear_2.bias',
    'down_blocks.0.resnets.0.norm1.weight', 'down_blocks.0.resnets.0.time_emb_proj.weight', 'down_blocks.0.resnets.1.conv2.bias',
    'down_blocks.0.attentions.1.norm.weight', 'down_blocks.0.attentions.1.proj_in.weight',
    'down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_q.weight', 'down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight',
    'down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_out.0.bias', 'down_blocks.0.attentions.1.transformer_blocks.0.ff.net.0.proj.weight',
    'down_blocks.0.attentions.1.transformer_blocks.0.ff.net.2.weight', 'down_blocks.0.attentions.1.transformer_blocks.0.norm3.bias',
    'down_blocks.0.downsamplers.0.conv.weight', 'down_blocks.1.resnets.0.conv_shortcut.weight', 'down_blocks.3.resnets.1.conv1.weight',
    'mid_block.attentions.0.proj_out.weight', 'mid_block.resnets.1.norm2.bias',
    'up_blocks.0.resnets.2.conv_shortcut.weight', 'up_blocks.0.upsamplers.0.conv.weight',
    'up_blocks.1.attentions.2.transformer_blocks.0.attn1.to_v.weight', 'up_blocks.3.resnets.0.conv1.weight',
    'up_blocks.3.attentions.2.proj_out.bias', 'conv_norm_out.weight', 'conv_out.bias',
  ]);
  assert.ok(!keys.includes('down_blocks.3.attentions.0.norm.weight') && !keys.includes('up_blocks.3.upsamplers.0.conv.weight'));
  // shapes: the public ones divided by 40 (to_k by 48 on its input side)
  assert.deepEqual(shapeOf(unet, 'up_blocks.3.resnets.0.conv1.weight'), [8, 24, 3, 3]); // [320, 960, 3, 3]
  assert.deepEqual(shapeOf(unet, 'up_blocks.1.resnets.2.conv_shortcut.weight'), [32, 48, 1, 1]); // [1280, 1920, 1, 1]
  assert.deepEqual(shapeOf(unet, 'up_blocks.0.resnets.0.conv1.weight'), [32, 64, 3, 3]); // [1280, 2560, 3, 3]
  assert.deepEqual(shapeOf(unet, 'down_blocks.1.attentions.0.proj_in.weight'), [16, 16, 1, 1]); // [640, 640, 1, 1]
  assert.deepEqual(shapeOf(unet, 'time_embedding.linear_1.weight'), [32, 8]); // [1280, 320]
  assert.deepEqual(shapeOf(unet, 'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight'), [8, 16]); // [320, 768]
  assert.deepEqual(shapeOf(unet, 'down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight'), [64, 8]); // [2560, 320]
});

test('SDXL-shaped UNet: linear projections, per-block transformer depth, add_embedding', () => {
  const unet = seeded(0, () => new UNet2DConditionModel(parseUNetConfig({
    ...SD15_UNET, block_out_channels: [8, 16, 32], down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'],
    up_block_types: ['CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'], norm_num_groups: 8, attention_head_dim: [1, 2, 4],
    transformer_layers_per_block: [1, 2, 3], use_linear_projection: true, cross_attention_dim: 32,
    addition_embed_type: 'text_time', addition_time_embed_dim: 4, projection_class_embeddings_input_dim: 16 + 24,
  })));
  const keys = keysOf(unet);
  assertHas(keys, [
    'add_embedding.linear_1.weight', 'add_embedding.linear_2.bias', 'down_blocks.2.attentions.1.transformer_blocks.2.attn2.to_k.weight',
    'up_blocks.0.attentions.2.transformer_blocks.2.ff.net.2.bias', 'mid_block.attentions.0.transformer_blocks.2.norm1.weight',
  ]);
  assert.deepEqual(shapeOf(unet, 'down_blocks.1.attentions.0.proj_in.weight'), [16, 16]);
  assert.ok(!keys.some((k) => k.startsWith('down_blocks.0.attentions')));
});

test('SD 1.5 VAE: real config accepted verbatim; 248 tensors with the public names; legacy attention names convert', async () => {
  assert.doesNotThrow(() => parseAutoencoderKLConfig(SD15_VAE));
  const vae = seeded(0, () => new AutoencoderKL(parseAutoencoderKLConfig({ ...SD15_VAE, block_out_channels: [8, 16, 32, 32], norm_num_groups: 8 })));
  const keys = keysOf(vae);
  assert.equal(keys.length, 248);
  assertHas(keys, [
    'encoder.conv_in.weight', 'encoder.down_blocks.0.resnets.1.norm2.weight', 'encoder.down_blocks.1.resnets.0.conv_shortcut.weight',
    'encoder.down_blocks.2.downsamplers.0.conv.weight', 'encoder.mid_block.attentions.0.group_norm.weight',
    'encoder.mid_block.attentions.0.to_q.weight', 'encoder.mid_block.attentions.0.to_out.0.bias', 'encoder.mid_block.resnets.1.conv2.weight',
    'encoder.conv_norm_out.bias', 'encoder.conv_out.weight', 'quant_conv.weight', 'post_quant_conv.bias',
    'decoder.conv_in.weight', 'decoder.mid_block.attentions.0.to_v.bias', 'decoder.up_blocks.0.resnets.2.conv1.weight',
    'decoder.up_blocks.2.resnets.0.conv_shortcut.weight', 'decoder.up_blocks.2.upsamplers.0.conv.weight', 'decoder.conv_out.bias',
  ]);
  assert.deepEqual(shapeOf(vae, 'encoder.conv_out.weight'), [8, 32, 3, 3]); // [8, 512, 3, 3]: mean and logvar
  assert.deepEqual(shapeOf(vae, 'decoder.up_blocks.2.resnets.0.conv1.weight'), [16, 32, 3, 3]); // [256, 512, 3, 3]
  const { convertLegacyVaeKeys } = await import('../../src/models/index.ts');
  const sd = vae.stateDict();
  const legacy: Record<string, typeof sd[string]> = {};
  for (const [k, t] of Object.entries(sd)) legacy[k.replace('.to_q.', '.query.').replace('.to_k.', '.key.').replace('.to_v.', '.value.').replace('.to_out.0.', '.proj_attn.')] = t;
  assert.ok('encoder.mid_block.attentions.0.proj_attn.weight' in legacy);
  assert.deepEqual(Object.keys(convertLegacyVaeKeys(legacy)).sort(), Object.keys(sd).sort());
});

test('SigLIP vision tower names (vision_model.*), tokens = (image/patch)^2', () => {
  // google/siglip-so400m-patch14-384 shape: 27 layers, patch 14, image 384 (widths scaled down)
  const vit = seeded(0, () => new VisionTransformer(parseVisionConfig({ hidden_size: 16, intermediate_size: 32, num_hidden_layers: 27, num_attention_heads: 2, image_size: 28, patch_size: 14, model_type: 'siglip_vision_model' })));
  const keys = keysOf(vit, 'vision_model.');
  assert.equal(keys.length, 27 * 16 + 5);
  assertHas(keys, [
    'vision_model.embeddings.patch_embedding.weight', 'vision_model.embeddings.patch_embedding.bias', 'vision_model.embeddings.position_embedding.weight',
    'vision_model.encoder.layers.0.layer_norm1.weight', 'vision_model.encoder.layers.0.self_attn.k_proj.weight', 'vision_model.encoder.layers.0.self_attn.q_proj.bias',
    'vision_model.encoder.layers.26.self_attn.out_proj.weight', 'vision_model.encoder.layers.26.mlp.fc1.weight', 'vision_model.encoder.layers.26.mlp.fc2.bias',
    'vision_model.encoder.layers.26.layer_norm2.bias', 'vision_model.post_layernorm.weight',
  ]);
  assert.deepEqual(shapeOf(vit, 'embeddings.position_embedding.weight'), [4, 16]);
  assert.deepEqual(shapeOf(vit, 'embeddings.patch_embedding.weight'), [16, 3, 14, 14]);
});

test('Mistral names (model.*): 291 tensors for 32 layers; grouped KV projections', () => {
  const lm = seeded(0, () => new MistralModel(parseTextConfig({ vocab_size: 64, hidden_size: 32, intermediate_size: 112, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8 })));
  const keys = [...keysOf(lm, 'model.'), 'lm_head.weight'];
  assert.equal(keys.length, 291);
  assertHas(keys, [
    'model.embed_tokens.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.k_proj.weight',
    'model.layers.0.self_attn.v_proj.weight', 'model.layers.0.self_attn.o_proj.weight', 'model.layers.31.mlp.gate_proj.weight',
    'model.layers.31.mlp.up_proj.weight', 'model.layers.31.mlp.down_proj.weight', 'model.layers.31.input_layernorm.weight',
    'model.layers.31.post_attention_layernorm.weight', 'model.norm.weight',
  ]);
  // Mistral-7B: q_proj [4096, 4096], k_proj [1024, 4096]: KV heads 8 of 32
  assert.deepEqual(shapeOf(lm, 'layers.0.self_attn.q_proj.weight'), [32, 32]);
  assert.deepEqual(shapeOf(lm, 'layers.0.self_attn.k_proj.weight'), [8, 32]);
});

test('Idefics2 names (model.vision_model / model.connector / model.text_model / lm_head)', () => {
  // HuggingFaceM4/idefics2-8b's structure (perceiver 3 layers, 64 latents, 16 heads of 96, 4 KV heads), widths scaled
  const raw = {
    architectures: ['Idefics2ForConditionalGeneration'], model_type: 'idefics2', image_token_id: 32001, use_cache: true, tie_word_embeddings: false,
    perceiver_config: { model_type: 'idefics2', resampler_depth: 3, resampler_head_dim: 96, resampler_n_heads: 16, resampler_n_latents: 64, num_key_value_heads: 4, hidden_act: 'silu' },
    vision_config: { model_type: 'idefics2', hidden_size: 16, intermediate_size: 32, num_attention_heads: 2, num_hidden_layers: 2, image_size: 28, patch_size: 14 },
    text_config: { model_type: 'mistral', hidden_size: 32, intermediate_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, vocab_size: 32003, rms_norm_eps: 1e-5, sliding_window: 4096, max_position_embeddings: 32768, torch_dtype: 'bfloat16', tie_word_embeddings: false },
  };
  const vlm = seeded(0, () => new VisionLanguageModel(parseVLMConfig(raw)));
  const keys = keysOf(vlm);
  assertHas(keys, [
    'model.vision_model.embeddings.patch_embedding.weight', 'model.vision_model.embeddings.position_embedding.weight',
    'model.vision_model.encoder.layers.1.self_attn.v_proj.bias', 'model.vision_model.encoder.layers.1.mlp.fc2.weight', 'model.vision_model.post_layernorm.bias',
    'model.connector.modality_projection.gate_proj.weight', 'model.connector.modality_projection.up_proj.weight', 'model.connector.modality_projection.down_proj.weight',
    'model.connector.perceiver_resampler.latents', 'model.connector.perceiver_resampler.layers.0.input_latents_norm.weight',
    'model.connector.perceiver_resampler.layers.0.input_context_norm.weight', 'model.connector.perceiver_resampler.layers.2.self_attn.q_proj.weight',
    'model.connector.perceiver_resampler.layers.2.self_attn.k_proj.weight', 'model.connector.perceiver_resampler.layers.2.self_attn.o_proj.weight',
    'model.connector.perceiver_resampler.layers.2.post_attention_layernorm.weight', 'model.connector.perceiver_resampler.layers.2.mlp.down_proj.weight',
    'model.connector.perceiver_resampler.norm.weight', 'model.text_model.embed_tokens.weight', 'model.text_model.layers.1.self_attn.o_proj.weight',
    'model.text_model.layers.1.mlp.up_proj.weight', 'model.text_model.norm.weight', 'lm_head.weight',
  ]);
  assert.deepEqual(shapeOf(vlm, 'model.connector.perceiver_resampler.latents'), [64, 32]); // [64, 4096]
  assert.deepEqual(shapeOf(vlm, 'model.connector.perceiver_resampler.layers.0.self_attn.q_proj.weight'), [1536, 32]); // [1536, 4096]
  assert.deepEqual(shapeOf(vlm, 'model.connector.perceiver_resampler.layers.0.self_attn.k_proj.weight'), [384, 32]); // [384, 4096]
  assert.deepEqual(shapeOf(vlm, 'model.connector.perceiver_resampler.layers.0.mlp.gate_proj.weight'), [128, 32]); // [16384, 4096]
  assert.deepEqual(shapeOf(vlm, 'model.connector.modality_projection.gate_proj.weight'), [64, 16]); // [14336, 1152]
  // MUMU removes the perceiver: the same model without those keys
  const mumu = seeded(0, () => new VisionLanguageModel(parseVLMConfig({ ...raw, use_perceiver: false })));
  assert.ok(!keysOf(mumu).some((k) => k.includes('perceiver')));
  assert.equal(mumu.tokensPerImage, 4);
  assert.equal(vlm.tokensPerImage, 64);
});

test('CLIP text encoder (SD 1.5 text_encoder): real config verbatim; 196 tensors', () => {
  assert.doesNotThrow(() => parseCLIPTextConfig(CLIP_L_TEXT));
  const te = seeded(0, () => new TextEncoder(parseCLIPTextConfig({ ...CLIP_L_TEXT, hidden_size: 16, intermediate_size: 32, num_attention_heads: 2, vocab_size: 100 })));
  const keys = keysOf(te);
  assert.equal(keys.length, 196);
  assertHas(keys, [
    'text_model.embeddings.token_embedding.weight', 'text_model.embeddings.position_embedding.weight', 'text_model.encoder.layers.0.self_attn.k_proj.weight',
    'text_model.encoder.layers.11.self_attn.out_proj.bias', 'text_model.encoder.layers.11.layer_norm1.weight', 'text_model.encoder.layers.11.mlp.fc1.weight',
    'text_model.final_layer_norm.weight',
  ]);
});
