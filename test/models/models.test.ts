import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn, randint, tensor, cat, allclose, equal, noGrad, tidy, AdamW, Generator, F } from '../../src/torch/index.ts';
import { loraLayers, type TimestepEmbedding } from '../../src/nn/index.ts';
import { PAPER_TRAINING } from '../../src/models/index.ts';
import { tinyVae, tinyUnet, tinyVlm, tinyAdapter, tinyTextEncoder, tinyMumu } from './tiny.ts';

test('AutoencoderKL: encode -> diagonal Gaussian over latents, decode back to image size', () => {
  const vae = tinyVae();
  const x = randn([2, 3, 16, 16]);
  const post = vae.encode(x);
  assert.deepEqual(post.mean.shape, [2, 4, 8, 8]);
  assert.equal(vae.downsampleFactor, 2);
  assert.deepEqual(post.sample().shape, [2, 4, 8, 8]);
  assert.deepEqual(post.kl().shape, [2]);
  assert.deepEqual(vae.decode(post.mode()).shape, [2, 3, 16, 16]);
  const z = post.mode();
  assert.ok(allclose(vae.unscaleLatents(vae.scaleLatents(z)), z, 1e-5, 1e-6));
  assert.ok(allclose(vae.scaleLatents(z), z.mul(0.18215)));
});

test('UNet2DConditionModel: noise prediction has the latent shape, for even and odd sizes', () => {
  const unet = tinyUnet();
  for (const s of [8, 9]) {
    const out = unet.forward(randn([2, 4, s, s]), tensor([10, 500]), randn([2, 5, 24]));
    assert.deepEqual(out.shape, [2, 4, s, s]);
  }
  assert.deepEqual(unet.forward(randn([1, 4, 8, 8]), 3, randn([1, 7, 24]), { encoderAttentionMask: tensor([[1, 1, 1, 0, 0, 0, 0]]) }).shape, [1, 4, 8, 8]);
});

test('UNet2DConditionModel: SDXL text_time added conditioning', () => {
  const unet = tinyUnet(0, { addition_embed_type: 'text_time', addition_time_embed_dim: 4, projection_class_embeddings_input_dim: 12 + 6 * 4, use_linear_projection: true, transformer_layers_per_block: [1, 2], attention_head_dim: [2, 4] });
  assert.deepEqual((unet.add_embedding as TimestepEmbedding).linear_1.weight.shape, [64, 36]);
  assert.equal(unet.up_blocks[1]!.attentions[0]!.transformer_blocks.length, 1);
  assert.equal(unet.mid_block!.attentions[0]!.transformer_blocks.length, 2);
  const x = randn([2, 4, 8, 8]);
  const out = unet.forward(x, 5, randn([2, 3, 24]), { textEmbeds: randn([2, 12]), timeIds: tensor([[16, 16, 0, 0, 16, 16], [16, 16, 0, 0, 16, 16]]) });
  assert.deepEqual(out.shape, [2, 4, 8, 8]);
  assert.throws(() => unet.forward(x, 5, randn([2, 3, 24])), /text_time conditioning needs/);
});

test('VisionTransformer: (image_size / patch_size)^2 tokens per image', () => {
  const vlm = tinyVlm();
  const vit = vlm.model.vision_model;
  assert.equal(vit.tokensPerImage, 4);
  assert.deepEqual(vit.forward(randn([3, 3, 8, 8])).shape, [3, 4, 16]);
  // other sides: position embeddings interpolated (test/models/vit-resize.test.ts); partial patches refused
  assert.deepEqual(vit.forward(randn([1, 3, 12, 12])).shape, [1, 9, 16]);
  assert.throws(() => vit.forward(randn([1, 3, 10, 10])), /multiple of the ViT's patch size 4/);
});

// A prompt "w w [img] w w" per row with 4 placeholder tokens per image.
const promptIds = (B: number, per = 4) => {
  const rows = Array.from({ length: B }, (_, b) => [10 + b, 11, ...Array(per).fill(4), 12, 13]);
  return tensor(rows, { dtype: 'int64' });
};

test('VisionLanguageModel: hidden states and logits; image features replace the placeholders', () => {
  const vlm = tinyVlm().eval();
  const ids = promptIds(2);
  const pixels = randn([2, 3, 8, 8]);
  const out = vlm.forward(ids, pixels, { logits: true });
  assert.deepEqual(out.lastHiddenState.shape, [2, 8, 32]);
  assert.deepEqual(out.logits!.shape, [2, 8, 50]);
  // another image for row 1 only: row 0 unchanged; row 1 unchanged before its image (causal), changed from it on
  const pixels2 = cat([pixels.narrow(0, 0, 1), randn([1, 3, 8, 8])], 0);
  const out2 = vlm.forward(ids, pixels2);
  assert.ok(allclose(out2.lastHiddenState.select(0, 0), out.lastHiddenState.select(0, 0), 1e-5, 1e-6));
  assert.ok(allclose(out2.lastHiddenState.select(0, 1).narrow(0, 0, 2), out.lastHiddenState.select(0, 1).narrow(0, 0, 2), 1e-5, 1e-6));
  assert.ok(!allclose(out2.lastHiddenState.select(0, 1).narrow(0, 2, 6), out.lastHiddenState.select(0, 1).narrow(0, 2, 6)));
  assert.throws(() => vlm.forward(ids, randn([1, 3, 8, 8])), /8 image placeholder tokens for 1 images x 4 tokens per image/);
  const loss = vlm.captionLoss(ids, pixels, ids.maskedFill(ids.eq(4), -100));
  assert.ok(Number.isFinite(loss.item()) && loss.item() > 0);
});

test('VisionLanguageModel: causal decoder — perturbing a later token leaves earlier states unchanged', () => {
  const vlm = tinyVlm().eval();
  const a = tensor([[5, 6, 7, 8, 9, 10]], { dtype: 'int64' });
  const b = tensor([[5, 6, 7, 8, 30, 31]], { dtype: 'int64' });
  const ha = vlm.forward(a).lastHiddenState, hb = vlm.forward(b).lastHiddenState;
  assert.ok(allclose(ha.narrow(1, 0, 4), hb.narrow(1, 0, 4), 1e-5, 1e-6));
  assert.ok(!allclose(ha.narrow(1, 4, 2), hb.narrow(1, 4, 2)));
  // left padding: the real tokens' states do not depend on what the padding holds
  const mask = tensor([[0, 0, 1, 1, 1, 1]]);
  const pa = vlm.forward(a, null, { attentionMask: mask }).lastHiddenState;
  const pb = vlm.forward(tensor([[40, 41, 7, 8, 9, 10]], { dtype: 'int64' }), null, { attentionMask: mask }).lastHiddenState;
  assert.ok(allclose(pa.narrow(1, 2, 4), pb.narrow(1, 2, 4), 1e-5, 1e-6));
  assert.ok(pa.isfinite().all().item());
});

test('perceiver resampler: N image tokens -> its fixed latent count, for any N', () => {
  const vlm = tinyVlm(0, true);
  const resampler = vlm.model.connector.perceiver_resampler!;
  for (const n of [4, 9, 30]) assert.deepEqual(resampler.forward(randn([2, n, 32])).shape, [2, 3, 32]);
  assert.equal(vlm.tokensPerImage, 3);
  assert.deepEqual(vlm.encodeImages(randn([2, 3, 8, 8])).shape, [2, 3, 32]);
  assert.deepEqual(vlm.forward(promptIds(1, 3), randn([1, 3, 8, 8])).lastHiddenState.shape, [1, 7, 32]);
});

test('Adapter: non-causal, VLM width -> cross_attention_dim, padding respected', () => {
  const ad = tinyAdapter();
  const h = randn([2, 6, 32]);
  assert.deepEqual(ad.forward(h).shape, [2, 6, 24]);
  // non-causal: changing the last token changes the first output
  const h2 = cat([h.narrow(1, 0, 5), randn([2, 1, 32])], 1);
  assert.ok(!allclose(ad.forward(h).narrow(1, 0, 1), ad.forward(h2).narrow(1, 0, 1)));
  // ...unless it is padding
  const mask = tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 0]]);
  assert.ok(allclose(ad.forward(h, mask).narrow(1, 0, 5), ad.forward(h2, mask).narrow(1, 0, 5), 1e-5, 1e-6));
});

test('TextEncoder: CLIP states, pooled at the end-of-text token, causal', () => {
  const te = tinyTextEncoder();
  const ids = tensor([[2, 10, 11, 3, 0, 0], [2, 12, 3, 0, 0, 0]], { dtype: 'int64' });
  const out = te.forward(ids);
  assert.deepEqual(out.lastHiddenState.shape, [2, 6, 16]);
  assert.deepEqual(out.penultimate.shape, [2, 6, 16]);
  assert.ok(equal(out.pooled.select(0, 0), out.lastHiddenState.select(0, 0).select(0, 3)));
  assert.ok(equal(out.pooled.select(0, 1), out.lastHiddenState.select(0, 1).select(0, 2)));
  const later = te.forward(tensor([[2, 10, 11, 3, 7, 7], [2, 12, 3, 0, 0, 0]], { dtype: 'int64' }));
  assert.ok(allclose(later.lastHiddenState.narrow(1, 0, 4), out.lastHiddenState.narrow(1, 0, 4), 1e-5, 1e-6));
});

test('MumuModel: prompt -> VLM -> adapter -> UNet; gradients reach exactly the trainable parameters (paper Table 1)', () => {
  const m = tinyMumu().applyTraining(PAPER_TRAINING);
  // LoRA on the connector and the LM, not on the frozen ViT; LoRA on the UNet's attention projections
  const vlmLora = loraLayers(m.vlm).map(([k]) => k);
  assert.ok(vlmLora.includes('model.connector.modality_projection.gate_proj'));
  assert.ok(vlmLora.includes('model.text_model.layers.1.self_attn.o_proj'));
  assert.ok(!vlmLora.some((k) => k.includes('vision_model')) && !vlmLora.includes('lm_head'));
  assert.ok(loraLayers(m.unet).some(([k]) => k === 'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k'));
  const counts = m.parameterCounts();
  assert.equal(counts['vlm.vision_model']!.trainable, 0);
  assert.equal(counts.adapter!.trainable, counts.adapter!.total);
  assert.ok(counts.unet!.trainable > 0 && counts.unet!.trainable < counts.unet!.total / 2);

  const batch = { inputIds: promptIds(2), pixelValues: randn([2, 3, 8, 8]), attentionMask: null };
  const latents = noGrad(() => m.vae.scaleLatents(m.vae.encode(randn([2, 3, 16, 16])).sample()));
  const noise = randn([...latents.shape]);
  const context = m.encodePrompt(batch);
  assert.deepEqual(context.shape, [2, 8, 24]);
  const eps = m.forward(latents.add(noise), randint(0, 1000, [2]), context);
  F.mseLoss(eps, noise).backward();
  for (const [k, p] of m.namedParameters()) {
    if (k.startsWith('text_encoder.') || k.startsWith('vae.') || k === 'vlm.lm_head.weight') assert.equal(p.requiresGrad, false, k);
    assert.equal(p.grad !== null, p.requiresGrad, `${k}: requiresGrad ${p.requiresGrad}, grad ${p.grad ? 'set' : 'none'}`);
  }
});

test('MumuModel: a fully trained VLM part and a frozen UNet', () => {
  const m = tinyMumu().applyTraining({ ...PAPER_TRAINING, text_model: 'full', connector: 'frozen', unet: 'frozen' });
  assert.equal(loraLayers(m.unet).length, 0);
  assert.equal(loraLayers(m.vlm).length, 0);
  const counts = m.parameterCounts();
  assert.equal(counts['vlm.text_model']!.trainable, counts['vlm.text_model']!.total);
  assert.equal(counts['vlm.connector']!.trainable + counts.unet!.trainable, 0);
  const ctx = m.encodePrompt({ inputIds: promptIds(1), pixelValues: randn([1, 3, 8, 8]), attentionMask: null });
  m.forward(randn([1, 4, 8, 8]), 1, ctx).square().mean().backward();
  for (const [k, p] of m.namedParameters()) assert.equal(p.grad !== null, p.requiresGrad, k);
});

test('training smoke: a few AdamW steps on one batch lower the UNet loss', () => {
  const unet = tinyUnet(5);
  const g = new Generator(1);
  const x = randn([4, 4, 8, 8], { generator: g }), ctx = randn([4, 3, 24], { generator: g }), noise = randn([4, 4, 8, 8], { generator: g });
  const t = tensor([100, 300, 600, 900]);
  const opt = new AdamW(unet.parameters(), { lr: 3e-3, weightDecay: 0 });
  const loss = () => tidy(() => F.mseLoss(unet.forward(x.add(noise), t, ctx), noise));
  const first = noGrad(() => loss().item());
  for (let i = 0; i < 15; i++) {
    opt.zeroGrad();
    tidy(() => loss().backward());
    opt.stepOnce();
  }
  const last = noGrad(() => loss().item());
  assert.ok(last < first * 0.7, `loss ${first} -> ${last}`);
});

// diffusers' TextTimeEmbedding (addition_embed_type "text") against values computed once with PyTorch 1.13 by
// test/fixtures/make-pool-reference.py (pinned in test/fixtures/pool-reference.json).
test("UNet2DConditionModel: addition_embed_type 'text' pools the context into the time embedding (PyTorch values)", async () => {
  const { readFileSync } = await import('node:fs');
  const { TextTimeEmbedding } = await import('../../src/nn/index.ts');
  const { assertClose } = await import('../helpers.ts');
  type P = { shape: number[]; data: number[] };
  const ref = JSON.parse(readFileSync(new URL('../fixtures/pool-reference.json', import.meta.url), 'utf8')) as { B: number; T: number; D: number; E: number; H: number; params: Record<string, P>; x: number[]; mask: number[]; unmasked: number[]; masked: number[] };
  const emb = new TextTimeEmbedding(ref.D, ref.E, ref.H).eval();
  emb.loadStateDict(Object.fromEntries(Object.entries(ref.params).map(([k, p]) => [k, tensor(Float32Array.from(p.data), { shape: p.shape })])), { strict: true });
  const x = tensor(Float32Array.from(ref.x), { shape: [ref.B, ref.T, ref.D] });
  const mask = tensor(Float32Array.from(ref.mask), { shape: [ref.B, ref.T] });
  assertClose(emb.forward(x), ref.unmasked, 1e-5, 'unmasked');
  assertClose(emb.forward(x, mask), ref.masked, 1e-5, 'masked');
  // in the UNet: under diffusers' key names
  const unet = tinyUnet(0, { addition_embed_type: 'text', addition_embed_type_num_heads: 4 });
  assert.ok(unet.stateDict()['add_embedding.pool.positional_embedding']);
  const ctx = randn([2, 3, 24]);
  const out = unet.forward(randn([2, 4, 8, 8]), 5, ctx);
  assert.deepEqual(out.shape, [2, 4, 8, 8]);
  assert.throws(() => tinyUnet(0, { addition_embed_type: 'text', addition_embed_type_num_heads: 5 }), /does not split into addition_embed_type_num_heads 5/);
});
