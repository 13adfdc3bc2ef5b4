import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  Tensor,
  randn,
  tensor,
  equal,
  allclose,
  saveSafetensors,
  loadSafetensors,
  cat,
} from '../../src/torch/index.ts';
import {
  Module,
  Linear,
  Conv2d,
  LayerNorm,
  Dropout,
  Attention,
  seeded,
  StateDictError,
  timestepEmbedding,
  rotaryTables,
  applyRotary,
  repeatKV,
  splitHeads,
  attend,
  FeedForward,
  SwiGLU,
  MLP,
  GroupNorm,
  RMSNorm,
  Embedding,
} from '../../src/nn/index.ts';
import { assertClose } from '../helpers.ts';

class Block extends Module {
  norm = new LayerNorm(4);
  attn1 = new Attention(4, { heads: 2, dimHead: 2 });
}
class Toy extends Module {
  conv_in = new Conv2d(1, 4, 3, { padding: 1 });
  blocks = [new Block(), new Block()];
  scale: Tensor = randn([2]).requiresGrad_(true);
  proj_out: Linear | null = null;
  readonly notAParam = [1, 2, 3];
}

test('parameter names come from property names, arrays give numeric segments', () => {
  const m = seeded(0, () => new Toy());
  const names = m.namedParameters().map(([k]) => k);
  assert.deepEqual(names.slice(0, 4), ['conv_in.weight', 'conv_in.bias', 'blocks.0.norm.weight', 'blocks.0.norm.bias']);
  assert.ok(names.includes('blocks.1.attn1.to_out.0.weight'));
  assert.ok(names.includes('blocks.1.attn1.to_q.weight') && !names.includes('blocks.1.attn1.to_q.bias'));
  assert.equal(names.at(-1), 'scale');
  assert.equal(m.numParameters(), 4 * 9 + 4 + 2 * (8 + 3 * 16 + 16 + 4) + 2);
  assert.ok(m.namedModules().some(([k, v]) => k === 'blocks.1.attn1.to_out.1' && v instanceof Dropout));
});

test('seeded init is reproducible and seed-dependent', () => {
  const a = seeded(7, () => new Linear(5, 3)),
    b = seeded(7, () => new Linear(5, 3)),
    c = seeded(8, () => new Linear(5, 3));
  assert.ok(equal(a.weight, b.weight) && equal(a.bias!, b.bias!));
  assert.ok(!equal(a.weight, c.weight));
  // PyTorch's default bound 1/sqrt(fan_in)
  assert.ok(a.weight.abs().max().item() <= 1 / Math.sqrt(5));
});

test('train/eval reach every submodule; requiresGrad_ freezes; to(dtype) keeps names and trainability', () => {
  const m = seeded(0, () => new Toy());
  m.eval();
  assert.ok(m.namedModules().every(([, x]) => !x.training));
  m.train();
  assert.ok(m.blocks[1]!.attn1.to_out[1].training);
  m.blocks[0]!.requiresGrad_(false);
  assert.equal(m.numParameters({ trainableOnly: true }), m.numParameters() - m.blocks[0]!.numParameters());
  m.to('float64');
  assert.ok(m.parameters().every((p) => p.dtype === 'float64'));
  assert.equal(m.blocks[0]!.norm.weight.requiresGrad, false);
  assert.equal(m.conv_in.weight.requiresGrad, true);
  const y = m.conv_in.forward(randn([1, 1, 5, 5], { dtype: 'float64' }));
  assert.deepEqual(y.shape, [1, 4, 5, 5]);
});

test('state dict round trip through safetensors', () => {
  const a = seeded(1, () => new Toy()),
    b = seeded(2, () => new Toy());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-nn-'));
  saveSafetensors(path.join(dir, 'm.safetensors'), a.stateDict());
  const report = b.loadStateDict(loadSafetensors(path.join(dir, 'm.safetensors')).tensors);
  assert.deepEqual(report, { missing: [], unexpected: [], mismatched: [] });
  for (const [k, t] of a.namedParameters()) assert.ok(equal(t, b.stateDict()[k]!), k);
  assert.ok(b.scale.requiresGrad, 'loading copies in place: parameters stay trainable leaves');
});

test('strict loader reports every missing, unexpected and wrong-shape key in one error', () => {
  const m = seeded(0, () => new Toy());
  const sd = m.stateDict();
  delete sd['blocks.0.norm.weight'];
  delete sd['scale'];
  sd['blocks.0.norm.gamma'] = randn([4]);
  sd['conv_in.weight'] = randn([4, 1, 1, 1]);
  assert.throws(
    () => m.loadStateDict(sd),
    (e: unknown) => {
      assert.ok(e instanceof StateDictError);
      assert.deepEqual(e.report.missing, ['blocks.0.norm.weight', 'scale']);
      assert.deepEqual(e.report.unexpected, ['blocks.0.norm.gamma']);
      assert.deepEqual(e.report.mismatched, [{ key: 'conv_in.weight', expected: [4, 1, 3, 3], got: [4, 1, 1, 1] }]);
      assert.match(
        e.message,
        /missing keys \(2\)[\s\S]*unexpected keys \(1\)[\s\S]*conv_in\.weight: model \[4,1,3,3\], checkpoint \[4,1,1,1\]/,
      );
      return true;
    },
  );
  const before = m.conv_in.weight.clone();
  const report = m.loadStateDict(sd, { strict: false });
  assert.equal(report.missing.length, 2);
  assert.ok(equal(m.conv_in.weight, before), 'a wrong-shape tensor is not loaded');
});

test('layers: shapes of norms, embedding, feed-forwards', () => {
  seeded(0, () => {
    const x = randn([2, 5, 8]);
    assert.deepEqual(new RMSNorm(8).forward(x).shape, [2, 5, 8]);
    assert.deepEqual(new GroupNorm(2, 8).forward(randn([2, 8, 3, 3])).shape, [2, 8, 3, 3]);
    assert.deepEqual(new Embedding(10, 8).forward(tensor([[1, 2, 3]], { dtype: 'int64' })).shape, [1, 3, 8]);
    const ff = new FeedForward(8);
    assert.deepEqual(ff.net[0].proj.weight.shape, [64, 8], 'GEGLU projects to twice the inner width');
    assert.deepEqual(ff.forward(x).shape, [2, 5, 8]);
    assert.deepEqual(new SwiGLU(8, 12, 6).forward(x).shape, [2, 5, 6]);
    assert.deepEqual(new MLP(8, 16, 'gelu_pytorch_tanh').forward(x).shape, [2, 5, 8]);
  });
});

test('timestep embedding follows diffusers get_timestep_embedding', () => {
  const t = tensor([0, 1, 500]);
  // dim 4, shift 1: frequencies exp(-ln(1e4) * [0, 1] / 1) = [1, 1e-4]
  const e = timestepEmbedding(t, 4);
  assertClose(e.select(0, 1), [Math.sin(1), Math.sin(1e-4), Math.cos(1), Math.cos(1e-4)], 1e-6);
  const f = timestepEmbedding(t, 4, { flipSinToCos: true, downscaleFreqShift: 0 });
  // shift 0: frequencies exp(-ln(1e4) * [0, 1] / 2) = [1, 1e-2]
  assertClose(f.select(0, 2), [Math.cos(500), Math.cos(5), Math.sin(500), Math.sin(5)], 1e-5);
  assert.deepEqual(timestepEmbedding(t, 5).shape, [3, 5]);
});

test('rotary embedding makes q.k depend only on the relative position', () => {
  const { cos, sin } = rotaryTables(8, 4, 10000);
  const q = randn([1, 1, 1, 4]).expand(1, 1, 8, 4),
    k = randn([1, 1, 1, 4]).expand(1, 1, 8, 4);
  const qr = applyRotary(q, cos, sin),
    kr = applyRotary(k, cos, sin);
  const dot = (i: number, j: number) => qr.select(2, i).mul(kr.select(2, j)).sum().item();
  assert.ok(Math.abs(dot(5, 3) - dot(2, 0)) < 1e-5);
  assert.ok(Math.abs(dot(7, 7) - dot(0, 0)) < 1e-5);
});

test('causal attention: perturbing a later token leaves earlier outputs unchanged', () => {
  const attn = seeded(0, () => new Attention(8, { heads: 2, dimHead: 4 }));
  const x = randn([1, 6, 8]);
  const x2 = cat([x.narrow(1, 0, 4), randn([1, 2, 8])], 1);
  for (const keyMask of [null, tensor([[1, 1, 1, 1, 1, 1]])]) {
    const a = attn.forward(x, null, { causal: true, keyMask }),
      b = attn.forward(x2, null, { causal: true, keyMask });
    assert.ok(allclose(a.narrow(1, 0, 4), b.narrow(1, 0, 4), 1e-5, 1e-6));
    assert.ok(!allclose(a.narrow(1, 4, 2), b.narrow(1, 4, 2)));
  }
  // without the mask the future leaks
  assert.ok(!allclose(attn.forward(x).narrow(1, 0, 4), attn.forward(x2).narrow(1, 0, 4)));
});

test('padding mask hides padded keys; fully masked rows stay finite', () => {
  const attn = seeded(0, () => new Attention(8, { heads: 2, dimHead: 4, crossAttentionDim: 6 }));
  const x = randn([2, 3, 8]),
    ctx = randn([2, 5, 6]);
  const keyMask = tensor([
    [1, 1, 1, 0, 0],
    [1, 1, 1, 1, 1],
  ]);
  const ctx2 = cat([ctx.narrow(1, 0, 3), randn([2, 2, 6])], 1);
  const a = attn.forward(x, ctx, { keyMask }),
    b = attn.forward(x, ctx2, { keyMask });
  assert.ok(allclose(a.select(0, 0), b.select(0, 0), 1e-5, 1e-6));
  assert.ok(!allclose(a.select(0, 1), b.select(0, 1)));
  // left padding under a causal mask: position 0 of the first row sees no real key
  const y = attn.forward(x, x.narrow(2, 0, 6), {
    keyMask: tensor([
      [0, 1, 1],
      [1, 1, 1],
    ]),
    causal: true,
  });
  assert.ok(y.isfinite().all().item());
});

test('grouped-query attention equals attention with repeated KV heads', () => {
  const q = randn([1, 4, 5, 3]),
    k = randn([1, 2, 5, 3]),
    v = randn([1, 2, 5, 3]);
  const kk = repeatKV(k, 2);
  assert.ok(
    equal(kk.select(1, 0), k.select(1, 0)) &&
      equal(kk.select(1, 1), k.select(1, 0)) &&
      equal(kk.select(1, 2), k.select(1, 1)),
  );
  const out = attend(q, kk, repeatKV(v, 2), { causal: true });
  assert.deepEqual(out.shape, [1, 4, 5, 3]);
  assert.deepEqual(splitHeads(randn([2, 7, 12]), 3).shape, [2, 3, 7, 4]);
});
