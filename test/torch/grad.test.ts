// Autograd through libtorch, checked against central finite differences in float64.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/torch/index.ts';
import { F } from '../../src/torch/index.ts';
import { gradCheck, assertClose } from '../helpers.ts';

const g = new t.Generator(11);
const r = (...shape: number[]) => t.randn(shape, { generator: g, dtype: 'float64' });
const pos = (...shape: number[]) =>
  r(...shape)
    .abs()
    .add(0.5);

test('gradients of elementwise math', () => {
  gradCheck((a, b) => a.add(b).mul(a).sub(b.div(2)), [r(3, 4), r(4)]);
  gradCheck((a, b) => a.div(b), [r(3), pos(3)]);
  gradCheck((a) => a.pow(3), [r(5)]);
  gradCheck((a) => a.exp().add(a.tanh()).add(a.sigmoid()), [r(6)]);
  gradCheck((a) => a.log().add(a.sqrt()).add(a.rsqrt()), [pos(6)]);
  gradCheck((a) => a.silu().add(a.gelu()).add(a.gelu('tanh')).add(a.softplus()), [r(6)]);
  gradCheck((a) => a.clamp(-0.5, 0.5).add(a.abs()), [t.tensor([-0.9, -0.3, 0.2, 0.7], { dtype: 'float64' })]);
  gradCheck((a, b) => t.where(a.gt(0), a.mul(b), b), [t.tensor([-1, 0.5, 2], { dtype: 'float64' }), r(3)]);
});

test('gradients of reductions', () => {
  gradCheck((a) => a.sum(1), [r(3, 4)]);
  gradCheck((a) => a.mean([0, 1], true), [r(3, 4)]);
  gradCheck((a) => a.var(1), [r(3, 4)]);
  gradCheck((a) => a.std(0), [r(3, 4)]);
  gradCheck((a) => a.logsumexp(1), [r(3, 4)]);
  gradCheck((a) => a.amax(1), [r(3, 4)]);
  gradCheck((a) => a.softmax(-1).add(a.logSoftmax(0)), [r(3, 4)]);
});

test('gradients of shape ops', () => {
  gradCheck((a) => a.permute(1, 0).reshape(2, 6).transpose(0, 1).flatten(), [r(3, 4)]);
  gradCheck((a, b) => t.cat([a, b], 1).mul(t.stack([a, a], 0).sum(0).repeat(1, 2).narrow(1, 0, 6)), [r(2, 3), r(2, 3)]);
  gradCheck((a) => a.unsqueeze(1).expand(3, 2, 4).slice(2, 1, 3), [r(3, 4)]);
  gradCheck((a) => a.indexSelect(0, t.tensor([2, 0, 2], { dtype: 'int64' })), [r(3, 2)]);
  gradCheck(
    (a) =>
      a.gather(
        1,
        t.tensor(
          [
            [1, 0],
            [2, 2],
          ],
          { dtype: 'int64' },
        ),
      ),
    [r(2, 3)],
  );
  gradCheck((a) => F.pad(a, [1, 2], 'constant').flip(0).roll(1, 1), [r(2, 3)]);
  gradCheck((a) => a.maskedFill(t.tensor([true, false, true]), 0), [r(3)]);
  gradCheck((a) => a.split(1, 0)[1]!.add(a.chunk(2, 1)[0]!.sum()), [r(2, 4)]);
});

test('gradients of products and nn ops', () => {
  gradCheck((a, b) => a.matmul(b), [r(2, 3), r(3, 2)]);
  gradCheck((a, b) => a.bmm(b), [r(2, 2, 3), r(2, 3, 2)]);
  gradCheck((x, w, b) => F.linear(x, w, b), [r(2, 3), r(4, 3), r(4)]);
  gradCheck((x, w, b) => F.conv2d(x, w, b, { padding: 1, stride: 2 }), [r(1, 2, 5, 5), r(3, 2, 3, 3), r(3)]);
  gradCheck((x, w) => F.conv2d(x, w, null, { groups: 2 }), [r(1, 4, 3, 3), r(2, 2, 2, 2)]);
  gradCheck(
    (x, w) => F.convTranspose2d(x, w, null, { stride: 2, padding: 1, outputPadding: 1 }),
    [r(1, 2, 3, 3), r(2, 3, 3, 3)],
  );
  gradCheck((x, w, b) => F.groupNorm(x, 2, w, b), [r(2, 4, 3, 3), r(4), r(4)]);
  gradCheck((x, w, b) => F.layerNorm(x, [5], w, b), [r(3, 5), r(5), r(5)]);
  gradCheck((x, w) => F.rmsNorm(x, w), [r(3, 5), r(5)]);
  gradCheck(
    (w) =>
      F.embedding(
        w,
        t.tensor(
          [
            [0, 2],
            [2, 1],
          ],
          { dtype: 'int64' },
        ),
      ),
    [r(3, 4)],
  );
  gradCheck(
    (x) => F.interpolate(x, { size: [5, 3], mode: 'bilinear' }).add(F.interpolate(x, { scaleFactor: 2 }).mean()),
    [r(1, 2, 3, 4)],
  );
  gradCheck((x) => F.avgPool2d(x, 2), [r(1, 1, 4, 4)]);
  gradCheck(
    (q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true }),
    [r(1, 2, 3, 4), r(1, 2, 3, 4), r(1, 2, 3, 4)],
  );
  gradCheck(
    (q, k, v) => F.scaledDotProductAttention(q, k, v, { mask: t.tensor([[true, false, true]]) }),
    [r(1, 1, 2, 4), r(1, 1, 3, 4), r(1, 1, 3, 4)],
  );
  gradCheck((a, b) => F.mseLoss(a, b), [r(3, 2), r(3, 2)]);
  gradCheck((a) => F.crossEntropy(a, t.tensor([1, 0, 3], { dtype: 'int64' }), { labelSmoothing: 0.1 }), [r(3, 4)]);
});

test('autograd bookkeeping: accumulation, zeroing, noGrad, detach, retainGraph', () => {
  const w = t.tensor([1, 2, 3]).requiresGrad_();
  assert.equal(w.isLeaf, true);
  w.mul(2).sum().backward();
  w.mul(3).sum().backward(); // gradients accumulate like PyTorch
  assert.deepEqual(w.grad!.toList(), [5, 5, 5]);
  t.zeroGrad([w]);
  assert.equal(w.grad, null);
  const y = t.noGrad(() => w.mul(2));
  assert.equal(y.requiresGrad, false);
  assert.equal(t.isGradEnabled(), true);
  assert.equal(w.detach().requiresGrad, false);
  const z = w.square().sum();
  z.backward(undefined, { retainGraph: true });
  z.backward();
  assert.deepEqual(w.grad!.toList(), [4, 8, 12]);
  w.grad = null;
  const v = w.mul(t.tensor([1, 1, 1]));
  v.backward(t.tensor([1, 0, 2]));
  assertClose(w.grad!, [1, 0, 2], 0);
});

test('clipGradNorm scales gradients to the max norm and returns the old norm', () => {
  const a = t.zeros([2]).requiresGrad_();
  const b = t.zeros([1]).requiresGrad_();
  a.mul(t.tensor([3, 0]))
    .sum()
    .add(b.mul(4).sum())
    .backward();
  const norm = t.clipGradNorm([a, b], 1);
  assertClose([norm], [5], 1e-6);
  assertClose(a.grad!, [0.6, 0], 1e-5);
  assertClose(b.grad!, [0.8], 1e-5);
  assertClose([t.clipGradNorm([a, b], 10)], [1], 1e-5); // under the bound: unchanged
  assertClose(a.grad!, [0.6, 0], 1e-5);
});
