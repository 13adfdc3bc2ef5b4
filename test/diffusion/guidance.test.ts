// Classifier-free guidance as a model wrapper, and the training-side noising / loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, randn, Generator, equal, allclose, zeros, type Tensor } from '../../src/torch/index.ts';
import {
  classifierFreeGuidance,
  catConditioning,
  makeSchedule,
  addNoise,
  velocity,
  diffusionLoss,
  splitPrediction,
  minSnrWeights,
  SD_SCHEDULE,
  type CondModel,
  type Conditioning,
} from '../../src/diffusion/index.ts';

const g = new Generator(0);
// A conditional toy model whose output depends on the context and its mask, and which counts its calls and batch sizes.
function toyModel() {
  const calls: number[] = [];
  const model: CondModel = (x, t, c) => {
    calls.push(x.size(0));
    let ctx = c.context;
    if (c.mask) ctx = ctx.mul(c.mask.unsqueeze(-1));
    const m = ctx.sum([1, 2]).reshape(x.size(0), 1, 1, 1);
    return x.mul(0.1 * (t + 1)).add(m);
  };
  return { model, calls };
}
const x = randn([3, 4, 2, 2], { generator: g });
const cond: Conditioning = { context: randn([1, 5, 8], { generator: g }) };
const uncond: Conditioning = { context: randn([1, 5, 8], { generator: g }) };

test('guidance scale 1 equals the conditional prediction, 0 the unconditional', () => {
  const { model, calls } = toyModel();
  const b = x.size(0);
  const epsC = model(x, 10, catConditioning([cond], b));
  const epsU = model(x, 10, catConditioning([uncond], b));
  calls.length = 0;
  assert.ok(equal(classifierFreeGuidance(model, cond, uncond, 1)(x, 10), epsC));
  assert.ok(equal(classifierFreeGuidance(model, cond, uncond, 0)(x, 10), epsU));
  assert.deepEqual(calls, [3, 3]); // one plain call each: no wasted half batch
});

test('guidance batches [uncond, cond] into one call and extrapolates', () => {
  const { model, calls } = toyModel();
  const b = x.size(0);
  const epsC = model(x, 10, catConditioning([cond], b));
  const epsU = model(x, 10, catConditioning([uncond], b));
  calls.length = 0;
  for (const scale of [6, 0.999, 1.5, -1]) {
    const got = classifierFreeGuidance(model, cond, uncond, scale)(x, 10);
    assert.ok(allclose(got, epsU.add(epsC.sub(epsU).mul(scale)), 1e-5, 1e-5), `scale ${scale}`);
  }
  assert.deepEqual(calls, [6, 6, 6, 6]);
  // near 1 the batched formula approaches the conditional prediction continuously
  assert.ok(allclose(classifierFreeGuidance(model, cond, uncond, 1 + 1e-7)(x, 10), epsC, 1e-5, 1e-5));
});

test('conditionings of different lengths are padded with a zero mask', () => {
  const short: Conditioning = {
    context: tensor([
      [
        [1, 1],
        [2, 2],
      ],
    ]),
  };
  const long: Conditioning = {
    context: tensor([
      [
        [1, 1],
        [2, 2],
        [3, 3],
      ],
    ]),
  };
  const both = catConditioning([short, long], 2);
  assert.deepEqual(both.context.shape, [4, 3, 2]);
  assert.deepEqual(both.mask!.toList(), [
    [1, 1, 0],
    [1, 1, 0],
    [1, 1, 1],
    [1, 1, 1],
  ]);
  assert.equal(catConditioning([long, long], 1).mask, null);
  assert.throws(() => catConditioning([{ context: zeros([2, 1, 2]) }], 3), /batch 2 does not match 3/);
});

test('addNoise, velocity, v -> eps and the epsilon / v losses', () => {
  const s = makeSchedule(SD_SCHEDULE);
  const x0 = randn([2, 3, 2, 2], { generator: g });
  const noise = randn([2, 3, 2, 2], { generator: g });
  const t = [0, 981];
  const xt = addNoise(s, x0, noise, t);
  const per = (i: number, a: Tensor) => a.select(0, i);
  for (const [i, ti] of t.entries()) {
    const ab = s.alphasCumprod[ti]!;
    assert.ok(
      allclose(
        per(i, xt),
        per(i, x0)
          .mul(Math.sqrt(ab))
          .add(per(i, noise).mul(Math.sqrt(1 - ab))),
        1e-6,
        1e-6,
      ),
    );
  }
  assert.ok(allclose(addNoise(s, x0, noise, tensor([0, 981], { dtype: 'int64' })), xt));
  // a perfect v prediction, split into x0 and eps, returns the true image and noise
  const v = velocity(s, x0, noise, t);
  const split = splitPrediction(v.narrow(0, 1, 1), xt.narrow(0, 1, 1), s.alphasCumprod[981]!, 'v_prediction');
  assert.ok(allclose(split.eps, noise.narrow(0, 1, 1), 1e-4, 1e-5));
  assert.ok(allclose(split.x0, x0.narrow(0, 1, 1), 1e-4, 1e-5));
  assert.equal(diffusionLoss(s, noise, { x0, noise, t }).item(), 0);
  assert.equal(diffusionLoss(s, v, { x0, noise, t }, { prediction: 'v_prediction' }).item(), 0);
  const loss = diffusionLoss(s, zeros([2, 3, 2, 2]), { x0, noise, t }).item();
  assert.ok(Math.abs(loss - noise.square().mean().item()) < 1e-6);
  assert.throws(() => addNoise(s, x0, noise, [0]), /1 timesteps for a batch of 2/);
  assert.throws(() => addNoise(s, x0, noise, [0, 1000]), /timestep 1000 outside/);
});

test('Min-SNR-5 loss weights for eps and v (numpy values), and the weighted loss', () => {
  const s = makeSchedule(SD_SCHEDULE);
  const like = zeros([3, 1]);
  const eps = Array.from(minSnrWeights(s, [0, 500, 999], like, 5, 'epsilon').toArray() as Float32Array);
  const v = Array.from(minSnrWeights(s, [0, 500, 999], like, 5, 'v_prediction').toArray() as Float32Array);
  [0.004253615573237339, 1.0, 1.0].forEach((w, i) => assert.ok(Math.abs(eps[i]! - w) < 1e-6, `eps ${i}`));
  [0.004250000000000087, 0.2763326838229746, 0.0046600985130772375].forEach((w, i) =>
    assert.ok(Math.abs(v[i]! - w) < 1e-6, `v ${i}`),
  );
  const x0 = randn([2, 3, 2, 2], { generator: g }),
    noise = randn([2, 3, 2, 2], { generator: g });
  const t = [0, 500];
  const pred = zeros([2, 3, 2, 2]);
  const w = [0.004253615573237339, 1.0];
  const want =
    (w[0]! * noise.select(0, 0).square().mean().item() + w[1]! * noise.select(0, 1).square().mean().item()) / 2;
  assert.ok(Math.abs(diffusionLoss(s, pred, { x0, noise, t }, { snrGamma: 5 }).item() - want) < 1e-6);
});
