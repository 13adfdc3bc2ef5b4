// Tokens per image at other reference sides (paper Finding 1): the ViT's learned position grid interpolated
// (bicubic, align_corners false) against values computed once with PyTorch 1.13 by
// test/fixtures/make-pos-interp-reference.py (pinned in test/fixtures/pos-interp-reference.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { randn, tensor, zeros, noGrad, equal } from '../../src/torch/index.ts';
import { interpolatePositions, checkImageSide } from '../../src/models/index.ts';
import { tinyVlm } from './tiny.ts';
import { assertClose } from '../helpers.ts';

const ref = JSON.parse(readFileSync(new URL('../fixtures/pos-interp-reference.json', import.meta.url), 'utf8')) as Record<string, number[]> & { g: number; dim: number };
const table = () => tensor(Float32Array.from(ref.table), { shape: [ref.g * ref.g, ref.dim] });

test('interpolatePositions: the identity at the native grid, PyTorch bicubic values elsewhere', () => {
  const t = table();
  assert.ok(equal(interpolatePositions(t, 2, 2), t));
  for (const [h, w] of [[1, 1], [3, 3], [4, 4], [3, 5]] as const) {
    const out = interpolatePositions(t, h, w);
    assert.deepEqual(out.shape, [h * w, ref.dim]);
    assertClose(out, ref[`${h}x${w}`]!, 1e-5, `${h}x${w}`);
  }
});

test('VisionTransformer at another side: (side/patch)^2 tokens, positions = the interpolated grid', () => {
  const vlm = tinyVlm().eval(); // image_size 8, patch_size 4: a 2x2 grid, 4 tokens
  const vit = vlm.model.vision_model;
  const emb = vit.embeddings;
  noGrad(() => {
    emb.patch_embedding.weight.copy_(zeros(emb.patch_embedding.weight.shape as number[]));
    emb.patch_embedding.bias!.copy_(zeros(emb.patch_embedding.bias!.shape as number[]));
    emb.position_embedding.weight.copy_(table());
  });
  // with a zero patch projection, the embeddings are the positions alone
  assertClose(emb.forward(randn([1, 3, 12, 12])).reshape(9, 16), ref['3x3']!, 1e-5, 'side 12');
  assertClose(emb.forward(randn([1, 3, 16, 16])).reshape(16, 16), ref['4x4']!, 1e-5, 'side 16');
  assertClose(emb.forward(randn([1, 3, 8, 8])).reshape(4, 16), ref.table, 1e-6, 'native side');
  for (const [side, n] of [[4, 1], [8, 4], [12, 9], [16, 16], [32, 64]] as const) {
    assert.equal(vit.tokensFor(side), n);
    assert.deepEqual(vit.forward(randn([2, 3, side, side])).shape, [2, n, 16]);
  }
  // the VLM takes as many placeholders as the side gives
  const ids = tensor([[10, ...Array(9).fill(4), 12]], { dtype: 'int64' });
  assert.deepEqual(vlm.forward(ids, randn([1, 3, 12, 12])).lastHiddenState.shape, [1, 11, 32]);
  assert.throws(() => vlm.forward(ids, randn([1, 3, 8, 8])), /9 image placeholder tokens for 1 images x 4 tokens per image/);
});

test('bad sides: clear errors', () => {
  const c = { image_size: 32, patch_size: 4 };
  for (const s of [16, 32, 48, 64, 128]) checkImageSide(c, s);
  assert.throws(() => checkImageSide(c, 30, 'reference size'), /reference size 30 px: must be a multiple of the ViT's patch size 4 px between 4 and 128/);
  assert.throws(() => checkImageSide(c, 0), /between 4 and 128/);
  assert.throws(() => checkImageSide(c, 132), /between 4 and 128 \(4x its native 32 px\)/);
  assert.throws(() => checkImageSide(c, 2.5), /multiple/);
  assert.throws(() => tinyVlm().model.vision_model.forward(randn([1, 3, 8, 10])), /image width 10 px/);
  // the perceiver keeps its fixed latent count at any side
  const p = tinyVlm(0, true);
  assert.equal(p.tokensFor(16), 3);
});
