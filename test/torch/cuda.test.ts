// CUDA: the same ops on the GPU as on the CPU. Skipped where the linked libtorch has no CUDA or no GPU is present.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as t from '../../src/torch/index.ts';
import { F } from '../../src/torch/index.ts';
import { assertClose } from '../helpers.ts';

const skip = t.cuda.isAvailable() ? false : `no CUDA device (binding linked against CUDA: ${t.cuda.compiled})`;

test('ops, autograd and AdamW on cuda match the CPU', { skip }, () => {
  const g = new t.Generator(0);
  const x = t.randn([2, 3, 8, 8], { generator: g });
  const w = t.randn([4, 3, 3, 3], { generator: g });
  const run = (device: string) => {
    const xd = x.to(device).requiresGrad_();
    const wd = w.to(device).requiresGrad_();
    let y = F.conv2d(xd, wd, null, { padding: 1 });
    y = F.groupNorm(y, 2).silu();
    const q = y.flatten(2).transpose(1, 2).reshape(2, 1, 64, 4);
    const out = F.scaledDotProductAttention(q, q, q, { isCausal: true }).square().mean();
    out.backward();
    const opt = new t.AdamW([wd], { lr: 0.1 });
    opt.stepOnce();
    return { out: out.cpu(), gx: xd.grad!.cpu(), w: wd.detach().cpu() };
  };
  const cpu = run('cpu'),
    gpu = run('cuda');
  assert.equal(t.randn([2], { device: 'cuda' }).device, 'cuda:0');
  assertClose(gpu.out, cpu.out, 1e-4);
  assertClose(gpu.gx, cpu.gx, 1e-3);
  assertClose(gpu.w, cpu.w, 1e-4);
  // a seed gives the same noise on every device
  assert.ok(
    t.equal(
      t.randn([5], { generator: new t.Generator(3), device: 'cuda' }).cpu(),
      t.randn([5], { generator: new t.Generator(3) }),
    ),
  );
});
