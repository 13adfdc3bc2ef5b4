// A randomly initialised tiny MUMU model folder (16 px images, 8x8x4 latents, one-layer VLM and adapter), written
// the way a trained model is, for the pipeline / CLI tests and as the benchmark's fallback.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seeded } from '../../src/nn/index.ts';
import {
  MumuModel,
  VisionLanguageModel,
  Adapter,
  UNet2DConditionModel,
  AutoencoderKL,
  TextEncoder,
  parseVLMConfig,
  parseAdapterConfig,
  parseUNetConfig,
  parseAutoencoderKLConfig,
  parseCLIPTextConfig,
} from '../../src/models/index.ts';
import { buildWordLevelTokenizer } from '../../src/prompt/index.ts';
import { savePretrained } from '../../src/pipeline.ts';

export const TINY_WORDS = [
  'a',
  'an',
  'the',
  'dog',
  'cat',
  'rocket',
  'face',
  'and',
  'on',
  'in',
  'style',
  ',',
  'red',
  'blue',
  'night',
  'sky',
];

// The tiny model itself; `textEncoder` adds a CLIP-style text encoder (the text-only base path, for eval tests).
export function tinyMumuModel(o: { seed?: number; width?: number; textEncoder?: boolean } = {}): MumuModel {
  const w = o.width ?? 32;
  return seeded(
    o.seed ?? 0,
    () =>
      new MumuModel({
        vlm: new VisionLanguageModel(
          parseVLMConfig({
            image_token_id: 4,
            use_perceiver: false,
            vision_config: {
              hidden_size: 16,
              intermediate_size: 32,
              num_hidden_layers: 1,
              num_attention_heads: 2,
              image_size: 16,
              patch_size: 8,
            },
            text_config: {
              vocab_size: 32,
              hidden_size: w,
              intermediate_size: 2 * w,
              num_hidden_layers: 1,
              num_attention_heads: 4,
              num_key_value_heads: 2,
              max_position_embeddings: 256,
              sliding_window: null,
            },
          }),
        ),
        adapter: new Adapter(
          parseAdapterConfig({ in_dim: w, hidden_size: w, num_layers: 1, num_attention_heads: 4, out_dim: w }),
        ),
        unet: new UNet2DConditionModel(
          parseUNetConfig({
            sample_size: 8,
            block_out_channels: [32, 64],
            down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'],
            up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D'],
            layers_per_block: 1,
            cross_attention_dim: w,
            attention_head_dim: 4,
            norm_num_groups: 8,
          }),
        ),
        vae: new AutoencoderKL(
          parseAutoencoderKLConfig({
            block_out_channels: [16, 32],
            down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D'],
            up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D'],
            latent_channels: 4,
            norm_num_groups: 8,
            sample_size: 16,
          }),
        ),
        ...(o.textEncoder
          ? {
              text_encoder: new TextEncoder(
                parseCLIPTextConfig({
                  vocab_size: 32,
                  hidden_size: w,
                  intermediate_size: 2 * w,
                  num_hidden_layers: 1,
                  num_attention_heads: 4,
                  max_position_embeddings: 77,
                  eos_token_id: 3,
                }),
              ),
            }
          : {}),
      }),
  );
}

export async function makeTinyModel(
  dir = mkdtempSync(join(tmpdir(), 'mumu-tiny-')),
  o: { seed?: number; maxImages?: number; width?: number } = {},
): Promise<string> {
  const model = tinyMumuModel(o);
  await savePretrained(model, dir, {
    tokenizer: buildWordLevelTokenizer(TINY_WORDS),
    processor: { max_images: o.maxImages ?? 3 },
  });
  return dir;
}

// A randomly initialised model with the shipped default architecture (configs/models/*.json), for timing the real
// sizes before trained weights exist.
export async function makeDefaultArchitectureModel(
  configDir: string,
  dir = mkdtempSync(join(tmpdir(), 'mumu-default-arch-')),
  seed = 0,
): Promise<string> {
  const read = (f: string) => JSON.parse(readFileSync(join(configDir, f), 'utf8')) as unknown;
  const model = seeded(
    seed,
    () =>
      new MumuModel({
        vlm: new VisionLanguageModel(parseVLMConfig(read('vlm.json'))),
        adapter: new Adapter(parseAdapterConfig(read('adapter.json'))),
        unet: new UNet2DConditionModel(parseUNetConfig(read('unet.json'))),
        vae: new AutoencoderKL(parseAutoencoderKLConfig(read('vae.json'))),
      }),
  );
  await savePretrained(model, dir, { tokenizer: buildWordLevelTokenizer(TINY_WORDS) });
  return dir;
}
