// Tiny configs for the model tests: real structure, toy widths, so a forward+backward takes milliseconds.
import { seeded } from '../../src/nn/index.ts';
import {
  AutoencoderKL, UNet2DConditionModel, VisionLanguageModel, Adapter, TextEncoder, MumuModel, parseAutoencoderKLConfig, parseUNetConfig,
  parseVLMConfig, parseAdapterConfig, parseCLIPTextConfig,
} from '../../src/models/index.ts';

export const vaeConfig = {
  block_out_channels: [8, 16], down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D'], up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D'],
  layers_per_block: 1, latent_channels: 4, norm_num_groups: 4, sample_size: 16,
};
export const unetConfig = {
  block_out_channels: [16, 32], down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'], up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D'],
  layers_per_block: 1, attention_head_dim: 2, cross_attention_dim: 24, norm_num_groups: 8, sample_size: 8,
};
export const vlmConfig = (usePerceiver = false) => ({
  image_token_id: 4, use_perceiver: usePerceiver,
  vision_config: { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 2, image_size: 8, patch_size: 4 },
  perceiver_config: { resampler_n_latents: 3, resampler_depth: 1, resampler_n_heads: 4, resampler_head_dim: 4, num_key_value_heads: 2 },
  text_config: { vocab_size: 50, hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, sliding_window: null },
});
export const adapterConfig = { in_dim: 32, hidden_size: 16, num_layers: 2, num_attention_heads: 2, out_dim: 24 };
export const textEncoderConfig = { vocab_size: 50, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 2, max_position_embeddings: 16, eos_token_id: 3 };

export const tinyVae = (seed = 0) => seeded(seed, () => new AutoencoderKL(parseAutoencoderKLConfig(vaeConfig)));
export const tinyUnet = (seed = 0, extra: object = {}) => seeded(seed, () => new UNet2DConditionModel(parseUNetConfig({ ...unetConfig, ...extra })));
export const tinyVlm = (seed = 0, usePerceiver = false) => seeded(seed, () => new VisionLanguageModel(parseVLMConfig(vlmConfig(usePerceiver))));
export const tinyAdapter = (seed = 0) => seeded(seed, () => new Adapter(parseAdapterConfig(adapterConfig)));
export const tinyTextEncoder = (seed = 0) => seeded(seed, () => new TextEncoder(parseCLIPTextConfig(textEncoderConfig)));
export const tinyMumu = (seed = 0) =>
  new MumuModel({ vlm: tinyVlm(seed), adapter: tinyAdapter(seed + 1), unet: tinyUnet(seed + 2), vae: tinyVae(seed + 3), text_encoder: tinyTextEncoder(seed + 4) });
