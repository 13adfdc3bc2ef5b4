// Paper Finding 4 for a fully trained MUMU UNet: the weight-delta merge (task arithmetic) W_ft + (W_mumu - W_base),
// on tiny UNets: exact on weights that sum exactly, equal to the LoRA merge for a LoRA model, and refused with the
// differences spelled out when the UNets do not match.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, randn, equal, allclose, Generator } from '../../src/torch/index.ts';
import { injectLora, loraLayers, saveLora, mergeLoraInto, unloadLora, type Module } from '../../src/nn/index.ts';
import { mergeDeltaInto, relativeDistance } from '../../src/eval/merge.ts';
import { tinyUnet } from '../models/tiny.ts';

// weights on a 2^-10 grid in [-4, 4]: every sum and difference below is exact in float32
const quantize = <M extends Module>(m: M): M => {
  noGrad(() => {
    for (const p of m.parameters()) p.copy_(p.clamp(-4, 4).mul(1024).round().div(1024));
  });
  return m;
};
const copyOf = (seed: number) => quantize(tinyUnet(seed));
const sameWeights = (a: Module, b: Module, tol?: number) => {
  const x = a.stateDict(),
    y = b.stateDict();
  assert.deepEqual(Object.keys(x), Object.keys(y));
  for (const k of Object.keys(x))
    assert.ok(tol === undefined ? equal(x[k]!, y[k]!) : allclose(x[k]!, y[k]!, 0, tol), k);
};

test('delta merge of (base, base + d, fine-tune) is fine-tune + d, exactly', () => {
  const base = copyOf(0),
    tuned = copyOf(0),
    finetune = copyOf(1),
    expected = copyOf(1);
  const g = new Generator(5);
  noGrad(() => {
    for (const [k, p] of tuned.namedParameters()) {
      const d = randn(p.shape as number[], { generator: g })
        .mul(64)
        .round()
        .div(1024); // multiples of 2^-10, |d| < ~0.3
      p.add_(d);
      expected.stateDict()[k]!.add_(d);
    }
  });
  const r = mergeDeltaInto(finetune, tuned, base);
  sameWeights(finetune, expected);
  assert.equal(r.tensors, Object.keys(base.stateDict()).length);
  assert.equal(r.parameters, base.numParameters());
  assert.ok(Math.abs(r.relativeDelta - relativeDistance(tuned, base)) < 1e-9 && r.relativeDelta > 0);
  // base = tuned: nothing changes
  const ft2 = copyOf(1);
  mergeDeltaInto(ft2, copyOf(0), copyOf(0));
  sameWeights(ft2, copyOf(1));
});

test('for a LoRA model, the delta merge equals the LoRA merge', () => {
  const mumu = tinyUnet(0);
  injectLora(mumu, { r: 2, lora_alpha: 4, lora_dropout: 0, target_modules: ['to_q', 'to_k', 'to_v', 'to_out.0'] });
  const g = new Generator(3);
  noGrad(() => {
    for (const [, l] of loraLayers(mumu))
      l.lora_B.weight.copy_(randn(l.lora_B.weight.shape as number[], { generator: g }).mul(0.1));
  });
  const dir = mkdtempSync(join(tmpdir(), 'mumu-lora-'));
  saveLora(mumu, dir);
  const viaLora = tinyUnet(1);
  mergeLoraInto(viaLora, dir);
  unloadLora(mumu, { merge: true }); // MUMU's effective UNet: base + B A
  const viaDelta = tinyUnet(1);
  mergeDeltaInto(viaDelta, mumu, tinyUnet(0));
  sameWeights(viaDelta, viaLora, 1e-6);
  const q = Object.keys(viaDelta.stateDict()).find((k) => k.endsWith('to_q.weight'))!;
  assert.ok(
    !allclose(viaDelta.stateDict()[q]!, tinyUnet(1).stateDict()[q]!),
    'the merge changed the attention weights',
  );
});

test('UNets that do not match: refused, saying which tensors differ, nothing changed', () => {
  const other = tinyUnet(0, { block_out_channels: [16, 48] });
  const ft = tinyUnet(1);
  assert.throws(
    () => mergeDeltaInto(ft, other, tinyUnet(0)),
    /the UNets do not match \(\d+ tensors differ in shape between the fine-tune and MUMU: .*\[32.*\] vs \[48/,
  );
  sameWeights(ft, tinyUnet(1));
  const fewer = tinyUnet(0, {
    down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'],
    up_block_types: ['UpBlock2D', 'UpBlock2D'],
  });
  assert.throws(
    () => mergeDeltaInto(tinyUnet(1), fewer, tinyUnet(0)),
    /MUMU lacks \d+ tensors of the fine-tune: up_blocks\.1\.attentions/,
  );
  const withLora = tinyUnet(0);
  injectLora(withLora, { r: 2, lora_alpha: 2, lora_dropout: 0, target_modules: ['to_q'] });
  assert.throws(
    () => mergeDeltaInto(tinyUnet(1), withLora, tinyUnet(0)),
    /the MUMU UNet has LoRA layers; merge them into its weights first/,
  );
});

test("a model folder's base_unet/ is the default base: loaded as a UNet folder, and named by defaultBase", async () => {
  const { saveComponent } = await import('../../src/models/pretrained.ts');
  const { loadUnet, defaultBase, BASE_UNET } = await import('../../src/eval/merge.ts');
  const { mkdirSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'mumu-base-unet-'));
  assert.equal(defaultBase(dir), undefined);
  assert.equal(defaultBase(dir, '/some/base'), '/some/base');
  const base = copyOf(2);
  saveComponent(join(dir, BASE_UNET), base);
  assert.equal(defaultBase(dir), join(dir, BASE_UNET));
  sameWeights(loadUnet(join(dir, BASE_UNET)), base);
  // a model folder's unet/ is found the same way
  mkdirSync(join(dir, 'model'));
  saveComponent(join(dir, 'model', 'unet'), copyOf(3));
  sameWeights(loadUnet(join(dir, 'model')), copyOf(3));
});
