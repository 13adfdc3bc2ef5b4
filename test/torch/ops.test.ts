// Op values against independently known numbers: hand-computed, or computed once with PyTorch 1.13 (float64) by
// test/fixtures/make-torch-reference.py and pinned in test/fixtures/torch-reference.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as t from '../../src/torch/index.ts';
import { F } from '../../src/torch/index.ts';
import { assertClose } from '../helpers.ts';

const ref: Record<string, number[]> = JSON.parse(
  readFileSync(new URL('../fixtures/torch-reference.json', import.meta.url), 'utf8'),
);
const f64 = { dtype: 'float64' as const };
const X = () => t.arange(12, undefined, 1, f64).div(7).sub(0.8).reshape(3, 4);

test('broadcasting arithmetic with tensors and scalars', () => {
  const a = t.tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  const b = t.tensor([10, 20, 30]);
  assert.deepEqual(a.add(b).toList(), [
    [11, 22, 33],
    [14, 25, 36],
  ]);
  assert.deepEqual(a.sub(1).toList(), [
    [0, 1, 2],
    [3, 4, 5],
  ]);
  assert.deepEqual(a.mul(t.tensor([[2], [3]])).toList(), [
    [2, 4, 6],
    [12, 15, 18],
  ]);
  assertClose(a.div(b), [0.1, 0.1, 0.1, 0.4, 0.25, 0.2]);
  assert.deepEqual(a.pow(2).toList(), [
    [1, 4, 9],
    [16, 25, 36],
  ]);
  assert.deepEqual(t.arange(4).mul(2).toList(), [0, 2, 4, 6]); // int tensor * integer stays int64
  assert.equal(t.arange(4).mul(2).dtype, 'int64');
  assert.equal(t.arange(4).mul(0.5).dtype, 'float32'); // promotes like a Python float
  assert.deepEqual(a.maximum(t.tensor([3, 3, 3])).toList(), [
    [3, 3, 3],
    [4, 5, 6],
  ]);
  assert.deepEqual(a.remainder(4).toList(), [
    [1, 2, 3],
    [0, 1, 2],
  ]);
});

test('unary math', () => {
  const x = X();
  const xs = [-0.8, -0.5, 0.3, 1.2];
  const v = t.tensor(xs, f64);
  assertClose(v.exp(), xs.map(Math.exp), 1e-12);
  assertClose(
    v.abs().log(),
    xs.map((a) => Math.log(Math.abs(a))),
    1e-12,
  );
  assertClose(
    v.abs().sqrt(),
    xs.map((a) => Math.sqrt(Math.abs(a))),
    1e-12,
  );
  assertClose(
    v.abs().rsqrt(),
    xs.map((a) => 1 / Math.sqrt(Math.abs(a))),
    1e-12,
  );
  assertClose(v.tanh(), xs.map(Math.tanh), 1e-12);
  assertClose(
    v.relu(),
    xs.map((a) => Math.max(0, a)),
    0,
  );
  assertClose(v.clamp(-0.6, 1), [-0.6, -0.5, 0.3, 1], 0);
  assertClose(v.clamp(null, 0), [-0.8, -0.5, 0, 0], 0);
  assertClose(
    v.sigmoid(),
    xs.map((a) => 1 / (1 + Math.exp(-a))),
    1e-12,
  );
  assertClose(x.gelu(), ref.gelu!, 1e-6);
  assertClose(x.gelu('tanh'), ref.gelu_tanh!, 1e-6);
  assertClose(x.silu(), ref.silu!, 1e-6);
  assertClose(x.softplus(), ref.softplus!, 1e-6);
  assertClose(x.erf(), ref.erf!, 1e-6);
});

test('where and comparisons', () => {
  const a = t.tensor([1, 5, 3]);
  assert.deepEqual(a.gt(2).toList(), [false, true, true]);
  assert.deepEqual(a.eq(t.tensor([1, 0, 3])).toList(), [true, false, true]);
  assert.deepEqual(a.le(3).logicalAnd(a.ge(2)).toList(), [false, false, true]);
  assert.deepEqual(t.where(a.gt(2), a, 0).toList(), [0, 5, 3]);
  assert.deepEqual(t.where(a.gt(2), 1, t.tensor([7, 8, 9])).toList(), [7, 1, 1]);
  assert.deepEqual(a.maskedFill(a.eq(5), -1).toList(), [1, -1, 3]);
});

test('reductions with dims and keepdim', () => {
  const a = t.tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  assert.equal(a.sum().item(), 21);
  assert.deepEqual(a.sum(0).toList(), [5, 7, 9]);
  assert.deepEqual(a.sum(1, true).shape, [2, 1]);
  assert.deepEqual(a.mean([0, 1]).toList(), 3.5);
  assert.deepEqual(a.max(1).values.toList(), [3, 6]);
  assert.deepEqual(a.min(0).indices.toList(), [0, 0, 0]);
  assert.equal(a.max().item(), 6);
  assert.deepEqual(a.argmax(1).toList(), [2, 2]);
  assert.equal(a.argmax().item(), 5);
  const x = X();
  assertClose(x.var(1), ref.var1!, 1e-6);
  assertClose(x.var(0, { correction: 0 }), ref.var0_c0!, 1e-6);
  assertClose(x.std(), ref.std!, 1e-6);
  assertClose(x.logsumexp(1), ref.lse1!, 1e-6);
  assertClose(x.softmax(1), ref.softmax1!, 1e-6);
  assertClose(x.logSoftmax(0), ref.logsoftmax0!, 1e-6);
  assertClose(t.tensor([3, 4]).norm(), [5]);
});

test('shape ops', () => {
  const a = t.arange(6).reshape(2, 3);
  assert.deepEqual(a.permute(1, 0).toList(), [
    [0, 3],
    [1, 4],
    [2, 5],
  ]);
  assert.deepEqual(a.T.shape, [3, 2]);
  assert.deepEqual(a.flatten().toList(), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(a.unsqueeze(0).shape, [1, 2, 3]);
  assert.deepEqual(a.unsqueeze(0).squeeze(0).shape, [2, 3]);
  assert.deepEqual(t.ones([1, 3, 1]).squeeze().shape, [3]);
  assert.deepEqual(t.tensor([1, 2]).unsqueeze(1).expand(2, 3).toList(), [
    [1, 1, 1],
    [2, 2, 2],
  ]);
  assert.deepEqual(t.tensor([1, 2]).repeat(2).toList(), [1, 2, 1, 2]);
  assert.deepEqual(t.tensor([1, 2]).repeatInterleave(2, 0).toList(), [1, 1, 2, 2]);
  assert.deepEqual(t.cat([a, a], 0).shape, [4, 3]);
  assert.deepEqual(t.stack([a, a], 1).shape, [2, 2, 3]);
  assert.deepEqual(
    a.split(2, 1).map((p) => p.shape),
    [
      [2, 2],
      [2, 1],
    ],
  );
  assert.deepEqual(
    a.split([1, 2], 1).map((p) => p.shape),
    [
      [2, 1],
      [2, 2],
    ],
  );
  assert.deepEqual(a.chunk(3, 1).length, 3);
  assert.deepEqual(a.narrow(1, 1, 2).toList(), [
    [1, 2],
    [4, 5],
  ]);
  assert.deepEqual(t.arange(10).slice(0, 1, -1, 3).toList(), [1, 4, 7]);
  assert.deepEqual(a.indexSelect(1, t.tensor([2, 0], { dtype: 'int64' })).toList(), [
    [2, 0],
    [5, 3],
  ]);
  assert.deepEqual(a.gather(1, t.tensor([[0], [2]], { dtype: 'int64' })).toList(), [[0], [5]]);
  assert.deepEqual(a.flip(1).toList(), [
    [2, 1, 0],
    [5, 4, 3],
  ]);
  assertClose(t.arange(6, undefined, 1, f64).roll(2, 0), ref.roll!, 0);
  assert.deepEqual(F.pad(a, [1, 0], 'constant', 9).toList(), [
    [9, 0, 1, 2],
    [9, 3, 4, 5],
  ]);
  assertClose(
    F.pad(t.arange(16, undefined, 1, f64).reshape(1, 1, 4, 4), [1, 1, 0, 0], 'reflect')
      .select(2, 0)
      .flatten(),
    ref.pad_reflect!,
    0,
  );
  assert.deepEqual(t.ones([3, 3]).tril().sum().item(), 6);
  const rows = a.index([t.tensor([1, 0], { dtype: 'int64' })]);
  assert.deepEqual(rows.toList(), [
    [3, 4, 5],
    [0, 1, 2],
  ]);
  const put = t.zeros([3]).indexPut([t.tensor([0, 2], { dtype: 'int64' })], t.tensor([5, 6]));
  assert.deepEqual(put.toList(), [5, 0, 6]);
  const scattered = t.zeros([2, 2]).maskedScatter(
    t.tensor([
      [true, false],
      [false, true],
    ]),
    t.tensor([7, 8]),
  );
  assert.deepEqual(scattered.toList(), [
    [7, 0],
    [0, 8],
  ]);
});

test('matrix products', () => {
  const a = t.tensor([
    [1, 2],
    [3, 4],
  ]);
  const b = t.tensor([
    [5, 6],
    [7, 8],
  ]);
  assert.deepEqual(a.matmul(b).toList(), [
    [19, 22],
    [43, 50],
  ]);
  assert.deepEqual(
    t
      .stack([a, b])
      .bmm(t.stack([b, a]))
      .select(0, 0)
      .toList(),
    [
      [19, 22],
      [43, 50],
    ],
  );
  assert.deepEqual(F.linear(a, b, t.tensor([1, 1])).toList(), [
    [18, 24],
    [40, 54],
  ]); // a @ b.T + 1
  assert.deepEqual(t.addmm(t.tensor([1, 1]), a, b, 1, 2).toList(), [
    [39, 45],
    [87, 101],
  ]);
  assert.deepEqual(t.einsum('ij,jk->ik', a, b).toList(), [
    [19, 22],
    [43, 50],
  ]);
});

test('convolutions, norms, resampling', () => {
  const w = t.arange(54, undefined, 1, f64).div(50).sub(0.5).reshape(2, 3, 3, 3);
  const x = t.arange(48, undefined, 1, f64).div(20).sub(1).reshape(1, 3, 4, 4);
  assertClose(F.conv2d(x, w, t.tensor([0.1, -0.2], f64), { padding: 1 }), ref.conv!, 1e-6);
  assertClose(F.conv2d(x, w, null, { stride: 2, padding: 1 }), ref.conv_s2!, 1e-6);
  const wt = t.arange(54, undefined, 1, f64).div(40).sub(0.3).reshape(3, 2, 3, 3);
  const y = F.convTranspose2d(x, wt, null, { stride: 2, padding: 1, outputPadding: 1 });
  assert.deepEqual(y.shape, [1, 2, 8, 8]);
  assertClose(y, ref.convT!, 1e-6);
  const gi = t.arange(32, undefined, 1, f64).div(9).sub(1).reshape(2, 4, 2, 2).square();
  assertClose(F.groupNorm(gi, 2, t.tensor([1, 2, 3, 4], f64), t.tensor([0, 0.1, 0.2, 0.3], f64)), ref.gn!, 1e-6);
  assertClose(F.layerNorm(X(), [4], t.tensor([1, 2, 3, 4], f64), t.tensor([0, 0.1, 0.2, 0.3], f64)), ref.ln!, 1e-6);
  const img = t.arange(16, undefined, 1, f64).reshape(1, 1, 4, 4);
  assertClose(F.interpolate(img, { size: [3, 5], mode: 'bilinear' }), ref.bilinear!, 1e-6);
  assertClose(
    F.interpolate(img, { scaleFactor: 2 }).select(2, 0).select(0, 0).select(0, 0),
    ref.nearest!.slice(0, 8),
    0,
  );
  assertClose(F.avgPool2d(img, 2), ref.avgpool!, 1e-12);
  const emb = t.tensor([
    [0, 0],
    [1, 1],
    [2, 2],
  ]);
  assert.deepEqual(F.embedding(emb, t.tensor([2, 0], { dtype: 'int64' })).toList(), [
    [2, 2],
    [0, 0],
  ]);
  assertClose(F.rmsNorm(t.tensor([3, 4], f64), null, 0), [3 / Math.sqrt(12.5), 4 / Math.sqrt(12.5)], 1e-12);
});

test('attention: plain, causal and boolean-masked', () => {
  const q = t.arange(24, undefined, 1, f64).div(10).sub(1).reshape(1, 2, 3, 4);
  const k = q.flip(2).mul(0.5);
  const v = q.add(1);
  assertClose(F.scaledDotProductAttention(q, k, v), ref.attn!, 1e-6);
  assertClose(F.scaledDotProductAttention(q, k, v, { isCausal: true }), ref.attn_causal!, 1e-6);
  assertClose(F.scaledDotProductAttention(q, k, v, { mask: t.tensor([[true, true, false]]) }), ref.attn_mask!, 1e-6);
});

test('dropout: off in eval, seeded and rescaled in training', () => {
  const x = t.ones([1000]);
  assert.ok(t.equal(F.dropout(x, 0.5, false), x));
  const a = F.dropout(x, 0.25, true, new t.Generator(5));
  const b = F.dropout(x, 0.25, true, new t.Generator(5));
  assert.ok(t.equal(a, b));
  const kept = a.gt(0).sum().item();
  assert.ok(kept > 700 && kept < 800, `kept ${kept}`);
  assertClose(a.amax(), [1 / 0.75], 1e-6);
});

test('losses', () => {
  const x = X();
  assertClose(F.crossEntropy(x, t.tensor([0, 3, 1], { dtype: 'int64' })), ref.ce!, 1e-6);
  assertClose(F.crossEntropy(x, t.tensor([0, 3, 1], { dtype: 'int64' }), { labelSmoothing: 0.1 }), ref.ce_ls!, 1e-6);
  assertClose(F.crossEntropy(x, t.tensor([0, -100, 1], { dtype: 'int64' })), ref.ce_ign!, 1e-6);
  assertClose(F.mseLoss(x, x.flip(1)), ref.mse!, 1e-6);
  assertClose(F.mseLoss(t.tensor([1, 2]), t.tensor([3, 2]), 'sum'), [4], 0);
});
