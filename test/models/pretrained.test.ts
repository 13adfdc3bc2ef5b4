import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randn, equal, allclose, noGrad, normal_, loadSafetensors, saveSafetensors, tensor } from '../../src/torch/index.ts';
import { loraLayers } from '../../src/nn/index.ts';
import {
  MumuModel, PAPER_TRAINING, parseUNetConfig, parseVLMConfig, parseAdapterConfig, parseTrainingConfig, saveComponent, loadComponent, readJson,
} from '../../src/models/index.ts';
import { tinyMumu, tinyUnet, tinyVae, unetConfig } from './tiny.ts';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-models-'));
const promptBatch = () => ({ inputIds: tensor([[10, 11, 4, 4, 4, 4, 12, 13]], { dtype: 'int64' }), pixelValues: randn([1, 3, 8, 8]), attentionMask: null });

test('configs: unknown keys rejected with the known ones listed; unsupported values named; metadata ignored', () => {
  assert.throws(() => parseUNetConfig({ ...unetConfig, block_out_channel: [1] }), (e: Error) => /unknown key 'block_out_channel' \(known: .*block_out_channels/.test(e.message));
  assert.throws(() => parseUNetConfig({ ...unetConfig, class_embed_type: 'timestep' }), /class_embed_type = "timestep" is not supported \(only null\)/);
  assert.throws(() => parseUNetConfig({ ...unetConfig, layers_per_block: '2' }), /layers_per_block must be number/);
  assert.throws(() => parseUNetConfig({ ...unetConfig, down_block_types: ['SimpleCrossAttnDownBlock2D', 'DownBlock2D'] }), /down block type 'SimpleCrossAttnDownBlock2D' is not supported/);
  assert.doesNotThrow(() => parseUNetConfig({ ...unetConfig, _class_name: 'UNet2DConditionModel', _diffusers_version: '0.27.0', dual_cross_attention: false }));
  assert.throws(() => parseVLMConfig({ text_config: { hiden_size: 8 } }), /text \(Mistral\) config:\n  unknown key 'hiden_size'/);
  assert.throws(() => parseVLMConfig({ text_config: { rope_scaling: { type: 'linear', factor: 2 } } }), /rope_scaling = .* is not supported/);
  // a fully serialised transformers sub-config (generation defaults and all) is accepted
  assert.doesNotThrow(() => parseVLMConfig({ vision_config: { num_beams: 1, top_k: 50, tie_word_embeddings: true, id2label: {}, model_type: 'idefics2' } }));
  assert.throws(() => parseAdapterConfig({ num_layer: 3 }), /Adapter config:\n  unknown key 'num_layer'/);
  assert.throws(() => parseTrainingConfig({ unet: 'half' }), /unet = 'half'/);
  for (const name of ['vae', 'unet', 'vlm', 'adapter', 'text_encoder', 'mumu']) assert.ok(fs.existsSync(`configs/models/${name}.json`), name);
});

test('a component folder: config.json + diffusion_pytorch_model.safetensors, strict reload', () => {
  const dir = tmp();
  const unet = tinyUnet(3);
  saveComponent(path.join(dir, 'unet'), unet);
  const conf = readJson(path.join(dir, 'unet', 'config.json')) as Record<string, unknown>;
  assert.equal(conf._class_name, 'UNet2DConditionModel');
  assert.deepEqual(conf.block_out_channels, [16, 32]);
  const st = loadSafetensors(path.join(dir, 'unet', 'diffusion_pytorch_model.safetensors'));
  assert.equal(st.metadata.format, 'pt');
  const back = loadComponent(path.join(dir, 'unet'), 'UNet2DConditionModel');
  const x = randn([1, 4, 8, 8]), ctx = randn([1, 3, 24]);
  assert.ok(equal(back.forward(x, 7, ctx), unet.forward(x, 7, ctx)));
  // half-precision files (how SDXL ships) load into float32 parameters
  const half = Object.fromEntries(Object.entries(unet.stateDict()).map(([k, t]) => [k, t.to('float16')]));
  saveSafetensors(path.join(dir, 'unet', 'diffusion_pytorch_model.safetensors'), half);
  const fromHalf = loadComponent(path.join(dir, 'unet'), 'UNet2DConditionModel');
  assert.equal(fromHalf.conv_in.weight.dtype, 'float32');
  assert.ok(allclose(fromHalf.forward(x, 7, ctx), unet.forward(x, 7, ctx), 1e-2, 1e-2));
  // a shard index works as well as one file, and a foreign file is reported key by key
  const vdir = path.join(dir, 'vae');
  saveComponent(vdir, tinyVae());
  const sd = loadSafetensors(path.join(vdir, 'diffusion_pytorch_model.safetensors')).tensors;
  const keys = Object.keys(sd);
  const first = Object.fromEntries(keys.slice(0, 40).map((k) => [k, sd[k]!])), rest = Object.fromEntries(keys.slice(40).map((k) => [k, sd[k]!]));
  fs.rmSync(path.join(vdir, 'diffusion_pytorch_model.safetensors'));
  saveSafetensors(path.join(vdir, 'a.safetensors'), first);
  saveSafetensors(path.join(vdir, 'b.safetensors'), rest);
  const weight_map = Object.fromEntries([...keys.slice(0, 40).map((k) => [k, 'a.safetensors']), ...keys.slice(40).map((k) => [k, 'b.safetensors'])]);
  fs.writeFileSync(path.join(vdir, 'diffusion_pytorch_model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map }));
  assert.doesNotThrow(() => loadComponent(vdir, 'AutoencoderKL'));
  fs.rmSync(path.join(vdir, 'b.safetensors'));
  fs.writeFileSync(path.join(vdir, 'diffusion_pytorch_model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: { [keys[0]!]: 'a.safetensors' } }));
  assert.throws(() => loadComponent(vdir, 'AutoencoderKL'), /missing keys \(\d+\)/);
});

test('loading converts legacy VAE attention names (and 1x1-conv shapes) and drops computed buffers', () => {
  const dir = tmp();
  const vae = tinyVae(4);
  saveComponent(dir, vae);
  const legacy: Record<string, ReturnType<typeof randn>> = { 'encoder.mid_block.position_ids': randn([3]) };
  for (const [k, t] of Object.entries(vae.stateDict())) {
    const old = k.replace('.to_q.', '.query.').replace('.to_k.', '.key.').replace('.to_v.', '.value.').replace('.to_out.0.', '.proj_attn.');
    legacy[old] = old !== k && k.endsWith('weight') ? t.unsqueeze(-1).unsqueeze(-1) : t; // (C, C, 1, 1) as the oldest files
  }
  assert.ok('decoder.mid_block.attentions.0.proj_attn.weight' in legacy);
  saveSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'), legacy);
  const back = loadComponent(dir, 'AutoencoderKL');
  const x = randn([1, 3, 16, 16]);
  assert.ok(equal(back.decode(back.encode(x).mode()), vae.decode(vae.encode(x).mode())));
});

test('MumuModel folder: model_index.json, per-component folders, LoRA in PEFT files, tokenizer entry carried', () => {
  const m = tinyMumu().applyTraining(PAPER_TRAINING);
  m.extraIndex.tokenizer = ['mumu', 'WordLevelTokenizer'];
  noGrad(() => { for (const part of [m.vlm, m.unet]) for (const [, l] of loraLayers(part)) normal_(l.lora_B.weight, 0, 0.1); });
  const dir = tmp();
  m.save(dir);
  const index = readJson(path.join(dir, 'model_index.json')) as Record<string, unknown>;
  assert.deepEqual(index.unet, ['diffusers', 'UNet2DConditionModel']);
  assert.deepEqual(index.vae, ['diffusers', 'AutoencoderKL']);
  assert.deepEqual(index.vlm, ['transformers', 'VisionLanguageModel']);
  assert.deepEqual(index.text_encoder, ['transformers', 'TextEncoder']);
  assert.deepEqual(index.tokenizer, ['mumu', 'WordLevelTokenizer']);
  for (const f of ['unet/config.json', 'unet/diffusion_pytorch_model.safetensors', 'unet/adapter_config.json', 'unet/adapter_model.safetensors',
    'vae/diffusion_pytorch_model.safetensors', 'vlm/model.safetensors', 'vlm/adapter_model.safetensors', 'adapter/model.safetensors', 'text_encoder/model.safetensors']) {
    assert.ok(fs.existsSync(path.join(dir, f)), f);
  }
  assert.ok(!fs.existsSync(path.join(dir, 'vae/adapter_config.json')));
  const base = Object.keys(loadSafetensors(path.join(dir, 'unet/diffusion_pytorch_model.safetensors')).tensors);
  assert.ok(base.includes('down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight') && !base.some((k) => k.includes('lora')));
  const lora = Object.keys(loadSafetensors(path.join(dir, 'vlm/adapter_model.safetensors')).tensors);
  assert.ok(lora.includes('base_model.model.model.text_model.layers.0.self_attn.q_proj.lora_A.weight'));
  assert.ok(lora.includes('base_model.model.model.connector.modality_projection.down_proj.lora_B.weight'));

  const back = MumuModel.load(dir);
  assert.deepEqual(back.extraIndex, { tokenizer: ['mumu', 'WordLevelTokenizer'] });
  assert.equal(loraLayers(back.unet).length, loraLayers(m.unet).length);
  m.eval();
  back.eval();
  const batch = promptBatch();
  const ctxA = m.encodePrompt(batch), ctxB = back.encodePrompt(batch);
  assert.ok(allclose(ctxA, ctxB, 1e-5, 1e-6));
  const z = randn([1, 4, 8, 8]);
  assert.ok(allclose(m.forward(z, 11, ctxA), back.forward(z, 11, ctxB), 1e-5, 1e-6));
  // saving again after a load keeps the LoRA files (their config travels with the layers); the training plan
  // applies again over the loaded LoRA layers
  back.save(tmp());
  back.applyTraining(PAPER_TRAINING);
  assert.equal(back.numParameters({ trainableOnly: true }), m.numParameters({ trainableOnly: true }));
});

test('a config.json that describes a far larger model than its weights fails fast with a clear error', () => {
  const dir = tmp();
  saveComponent(path.join(dir, 'unet'), tinyUnet(3));
  // {} means SD 1.5's full UNet (860M parameters) by diffusers' defaults; the file holds a tiny one
  fs.writeFileSync(path.join(dir, 'unet', 'config.json'), '{}');
  assert.throws(() => loadComponent(path.join(dir, 'unet'), 'UNet2DConditionModel'), /config\.json describes a model much larger than its weights \([\d,]+ parameters\)/);
});
