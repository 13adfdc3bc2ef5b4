// AdamW against a plain-JS float64 reimplementation of Loshchilov & Hutter's update (as torch.optim.AdamW).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/torch/index.ts';
import { assertClose } from '../helpers.ts';

function referenceAdamW(
  p: number[],
  grads: number[][],
  o: { lr: number; b1: number; b2: number; eps: number; wd: number },
): number[] {
  const m = p.map(() => 0),
    v = p.map(() => 0);
  p = p.slice();
  grads.forEach((g, k) => {
    const step = k + 1;
    for (let i = 0; i < p.length; i++) {
      p[i]! *= 1 - o.lr * o.wd;
      m[i] = o.b1 * m[i]! + (1 - o.b1) * g[i]!;
      v[i] = o.b2 * v[i]! + (1 - o.b2) * g[i]! * g[i]!;
      const mHat = m[i]! / (1 - o.b1 ** step),
        vHat = v[i]! / (1 - o.b2 ** step);
      p[i]! -= (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
    }
  });
  return p;
}

test('AdamW matches the reference update over several steps and per-group rates', () => {
  const init = [0.5, -1.5, 2.0];
  const grads = [
    [0.1, -0.2, 0.3],
    [0.4, 0.1, -0.5],
    [-0.3, 0.2, 0.05],
  ];
  const a = t.tensor(init, { dtype: 'float64' }).requiresGrad_();
  const b = t.tensor(init, { dtype: 'float64' }).requiresGrad_();
  const opt = new t.AdamW([
    { params: [a], lr: 0.1, weightDecay: 0.01 },
    { params: [b], lr: 0.01, betas: [0.8, 0.9], eps: 1e-6, weightDecay: 0 },
  ]);
  for (const g of grads) {
    a.grad = t.tensor(g, { dtype: 'float64' });
    b.grad = t.tensor(g, { dtype: 'float64' });
    opt.stepOnce();
  }
  assertClose(a, referenceAdamW(init, grads, { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 0.01 }), 1e-12);
  assertClose(b, referenceAdamW(init, grads, { lr: 0.01, b1: 0.8, b2: 0.9, eps: 1e-6, wd: 0 }), 1e-12);
});

test('AdamW state saves and restores exactly', () => {
  const make = () => {
    const w = t.randn([4, 3], { generator: new t.Generator(1) }).requiresGrad_();
    return { w, opt: new t.AdamW([w], { lr: 0.05 }) };
  };
  const x = t.randn([8, 4], { generator: new t.Generator(2) });
  const stepOn = (s: ReturnType<typeof make>) => {
    s.opt.zeroGrad();
    x.matmul(s.w).square().mean().backward();
    s.opt.stepOnce();
  };
  const a = make();
  for (let i = 0; i < 3; i++) stepOn(a);
  const saved = a.opt.stateDict();
  const savedTensors = Object.fromEntries(Object.entries(saved.tensors).map(([k, v]) => [k, v.clone()]));
  const savedW = a.w.detach().clone();
  for (let i = 0; i < 2; i++) stepOn(a);

  const b = make();
  t.noGrad(() => b.w.copy_(savedW));
  b.opt.loadStateDict({ ...saved, tensors: savedTensors });
  assert.equal(b.opt.step, 3);
  for (let i = 0; i < 2; i++) stepOn(b);
  assert.ok(t.equal(a.w, b.w), 'resumed optimizer reproduces the uninterrupted run bit for bit');
  assert.throws(() => b.opt.loadStateDict({ ...saved, tensors: {} }), /missing 'group0.0.exp_avg'/);
});

test('training a small MLP with AdamW drives the loss down', () => {
  const g = new t.Generator(0);
  const x = t.randn([64, 2], { generator: g });
  const y = x.select(1, 0).mul(x.select(1, 1)).unsqueeze(1); // learn xy
  const w1 = t.randn([2, 32], { generator: g }).mul(0.5).requiresGrad_();
  const b1 = t.randn([32], { generator: g }).mul(0.5).requiresGrad_();
  const w2 = t.randn([32, 1], { generator: g }).mul(0.2).requiresGrad_();
  const opt = new t.AdamW([w1, b1, w2], { lr: 0.02, weightDecay: 0 });
  const loss = () => x.matmul(w1).add(b1).tanh().matmul(w2).sub(y).square().mean();
  const first = loss().item();
  for (let i = 0; i < 300; i++) {
    t.tidy(() => {
      opt.zeroGrad();
      loss().backward();
      opt.stepOnce();
    });
  }
  const last = loss().item();
  assert.ok(last < first * 0.1, `loss ${first} -> ${last}`);
});
