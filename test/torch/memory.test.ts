// A 2,000-step training loop must keep resident memory flat: tensors are freed by tidy() scopes, and tensors that
// escape them are freed by V8's GC, which knows their native size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as t from '../../src/torch/index.ts';
import { F } from '../../src/torch/index.ts';

function smallModel(seed: number) {
  const g = new t.Generator(seed);
  const w1 = t.randn([8, 3, 3, 3], { generator: g }).mul(0.2).requiresGrad_();
  const w2 = t
    .randn([8 * 8 * 8, 10], { generator: g })
    .mul(0.05)
    .requiresGrad_();
  const params = [w1, w2];
  const data = t.randn([16, 3, 16, 16], { generator: g });
  const labels = t.randint(0, 10, [16], { generator: g });
  const loss = () =>
    F.crossEntropy(
      F.avgPool2d(F.conv2d(data, w1, null, { padding: 1 }).relu(), 2)
        .flatten(1)
        .matmul(w2),
      labels,
    );
  return { params, loss, opt: new t.AdamW(params, { lr: 1e-3 }) };
}

const gc = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();

function rssGrowth(step: (i: number) => void, steps = 2000, warmup = 300): { growth: number; mb: number[] } {
  const samples: number[] = [];
  for (let i = 0; i < steps; i++) {
    step(i);
    if (i === warmup || i === steps - 1) {
      gc();
      samples.push(process.memoryUsage.rss());
    }
  }
  return { growth: samples[1]! / samples[0]! - 1, mb: samples.map((s) => Math.round(s / 2 ** 20)) };
}

test('2000 training steps inside tidy() keep RSS flat', () => {
  const m = smallModel(0);
  const { growth, mb } = rssGrowth(() =>
    t.tidy(() => {
      m.opt.zeroGrad();
      m.loss().backward();
      m.opt.stepOnce();
    }),
  );
  assert.ok(growth < 0.05, `RSS grew ${(growth * 100).toFixed(1)}% (${mb.join(' -> ')} MiB)`);
});

test('2000 training steps without tidy() are kept flat by the GC alone', () => {
  const m = smallModel(1);
  const { growth, mb } = rssGrowth(() => {
    m.opt.zeroGrad();
    const loss = m.loss();
    loss.backward();
    m.opt.stepOnce();
    loss.item();
  });
  assert.ok(growth < 0.05, `RSS grew ${(growth * 100).toFixed(1)}% (${mb.join(' -> ')} MiB)`);
});
