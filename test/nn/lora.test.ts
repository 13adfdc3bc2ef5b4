import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  Tensor,
  Generator,
  randn,
  equal,
  allclose,
  noGrad,
  normal_,
  loadSafetensors,
  F,
} from '../../src/torch/index.ts';
import {
  Module,
  Linear,
  Conv2d,
  Attention,
  seeded,
  injectLora,
  mergeLora,
  unmergeLora,
  unloadLora,
  loraLayers,
  saveLora,
  loadLora,
  mergeLoraInto,
  LoraLinear,
  LoraConv2d,
  type LoraConfig,
} from '../../src/nn/index.ts';

class Net extends Module {
  conv_in = new Conv2d(3, 8, 3, { padding: 1 });
  proj = new Conv2d(8, 8, 1);
  attn = [new Attention(8, { heads: 2, dimHead: 4 }), new Attention(8, { heads: 2, dimHead: 4 })];
  head = new Linear(8, 5);
  forward(x: Tensor) {
    const h = this.proj.forward(this.conv_in.forward(x)); // (B, 8, H, W)
    let s = h.flatten(2).transpose(1, 2); // (B, H*W, 8)
    for (const a of this.attn) s = s.add(a.forward(s));
    return this.head.forward(s);
  }
}

const cfg: LoraConfig = {
  r: 4,
  lora_alpha: 8,
  lora_dropout: 0,
  target_modules: ['to_q', 'to_v', 'to_out.0', 'conv_in', 'proj'],
};
// Seeded: libtorch seeds its global generator at random, so unseeded draws would give each run other numbers (and a
// tolerance that held for one draw could fail for the next).
const randomizeB = (m: Module) =>
  noGrad(() => {
    const g = new Generator(7);
    for (const [, l] of loraLayers(m)) normal_(l.lora_B.weight, 0, 0.5, g);
  });
// Merged W + BA and unmerged Wx + B(Ax) round differently in float32: over 2000 random draws of B and x (outputs up to
// ~26) the worst gap needed 8.3e-5, so merged and unmerged models are compared at this tolerance; the LoRA's own
// effect is far above it.
const MERGE_TOL = 1e-4;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-lora-'));

test('target selection by name: list suffixes, regex, exclusions; a missed target is an error', () => {
  const m = seeded(0, () => new Net());
  const names = injectLora(m, cfg);
  assert.deepEqual(names, [
    'conv_in',
    'proj',
    'attn.0.to_q',
    'attn.0.to_v',
    'attn.0.to_out.0',
    'attn.1.to_q',
    'attn.1.to_v',
    'attn.1.to_out.0',
  ]);
  assert.ok(
    m.conv_in instanceof LoraConv2d &&
      m.attn[0]!.to_q instanceof LoraLinear &&
      !(m.attn[0]!.to_k instanceof LoraLinear),
  );
  const r = seeded(0, () => new Net());
  assert.deepEqual(
    injectLora(r, { ...cfg, target_modules: 'attn\\.\\d+\\.to_[qk]', exclude_modules: ['attn.1.to_k'] }),
    ['attn.0.to_q', 'attn.0.to_k', 'attn.1.to_q'],
  );
  assert.throws(
    () =>
      injectLora(
        seeded(0, () => new Net()),
        { ...cfg, target_modules: ['to_qq'] },
      ),
    /no Linear or Conv2d module matches/,
  );
});

test('zero-initialised B gives the base output exactly; keys are the base keys plus PEFT lora keys', () => {
  const base = seeded(0, () => new Net()),
    m = seeded(0, () => new Net());
  const x = randn([2, 3, 4, 4]);
  const before = base.forward(x);
  injectLora(m, cfg);
  assert.ok(equal(m.forward(x), before));
  const keys = Object.keys(m.stateDict());
  assert.ok(
    keys.includes('attn.0.to_q.weight') &&
      keys.includes('attn.0.to_q.lora_A.weight') &&
      keys.includes('attn.0.to_out.0.lora_B.weight'),
  );
  assert.deepEqual(m.attn[0]!.to_q instanceof LoraLinear && m.attn[0]!.to_q.lora_A.weight.shape, [4, 8]);
});

test('gradients reach exactly the LoRA weights', () => {
  const m = seeded(0, () => new Net());
  injectLora(m, cfg);
  randomizeB(m);
  m.forward(randn([2, 3, 4, 4]))
    .square()
    .mean()
    .backward();
  for (const [k, p] of m.namedParameters()) {
    const isLoraKey = /lora_[AB]/.test(k);
    assert.equal(p.requiresGrad, isLoraKey, k);
    assert.equal(p.grad !== null, isLoraKey, `grad of ${k}`);
  }
});

test('merged == unmerged within float32 rounding; unmerge restores the base weights; unload keeps the merged function', () => {
  const m = seeded(0, () => new Net());
  const w0 = m.conv_in.weight.clone(),
    q0 = m.attn[1]!.to_q.weight.clone();
  injectLora(m, cfg);
  randomizeB(m);
  const x = randn([2, 3, 4, 4], { generator: new Generator(2) });
  const unmerged = m.forward(x);
  mergeLora(m);
  assert.ok(allclose(m.forward(x), unmerged, MERGE_TOL, MERGE_TOL));
  assert.ok(!allclose(m.conv_in.weight, w0));
  unmergeLora(m);
  assert.ok(allclose(m.conv_in.weight, w0, 1e-6, 1e-6) && allclose(m.attn[1]!.to_q.weight, q0, 1e-6, 1e-6));
  unloadLora(m, { merge: true });
  assert.equal(loraLayers(m).length, 0);
  assert.ok(!(m.conv_in instanceof LoraConv2d) && m.conv_in instanceof Conv2d);
  assert.ok(allclose(m.forward(x), unmerged, MERGE_TOL, MERGE_TOL));
  assert.ok(!Object.keys(m.stateDict()).some((k) => k.includes('lora')));
});

test('3x3 conv LoRA delta is the composition of its two convolutions', () => {
  const c = seeded(0, () => new Conv2d(3, 5, 3, { padding: 1 }));
  const l = seeded(1, () => new LoraConv2d(c, { ...cfg, r: 2 }));
  normal_(l.lora_B.weight, 0, 1);
  const x = randn([1, 3, 6, 6]);
  const viaConvs = l.lora_B.forward(l.lora_A.forward(x)).mul(l.scaling);
  const viaDelta = F.conv2d(x, l.delta(), null, { padding: 1 });
  assert.ok(allclose(viaConvs, viaDelta, 1e-4, 1e-5));
});

test('PEFT round trip: adapter_config.json + adapter_model.safetensors with base_model.model. keys', () => {
  const m = seeded(0, () => new Net());
  injectLora(m, cfg);
  randomizeB(m);
  const x = randn([1, 3, 4, 4]);
  const want = m.forward(x);
  const dir = tmp();
  saveLora(m, dir, cfg);
  const conf = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
  assert.equal(conf.peft_type, 'LORA');
  assert.equal(conf.r, 4);
  assert.equal(conf.lora_alpha, 8);
  const keys = Object.keys(loadSafetensors(path.join(dir, 'adapter_model.safetensors')).tensors).sort();
  assert.equal(keys.length, 16);
  assert.ok(
    keys.includes('base_model.model.attn.0.to_q.lora_A.weight') &&
      keys.includes('base_model.model.conv_in.lora_B.weight'),
  );
  assert.ok(!keys.some((k) => k.endsWith('to_q.weight')), 'only LoRA weights are saved');
  const fresh = seeded(0, () => new Net()); // the same base, LoRA injected from the saved config
  loadLora(fresh, dir);
  assert.ok(allclose(fresh.forward(x), want, 1e-6, 1e-6));
});

test('a saved LoRA merges into a second base of the same architecture (paper Finding 4)', () => {
  const m = seeded(0, () => new Net());
  injectLora(m, cfg);
  randomizeB(m);
  const dir = tmp();
  saveLora(m, dir, cfg);
  const styleBase = seeded(99, () => new Net()); // a "fine-tune": same shapes, other weights
  const reference = seeded(99, () => new Net());
  loadLora(reference, dir); // unmerged LoRA on the second base
  mergeLoraInto(styleBase, dir);
  assert.equal(loraLayers(styleBase).length, 0);
  const x = randn([2, 3, 4, 4], { generator: new Generator(1) });
  assert.ok(allclose(styleBase.forward(x), reference.forward(x), MERGE_TOL, MERGE_TOL));
  assert.ok(!allclose(styleBase.forward(x), seeded(99, () => new Net()).forward(x)));
});
