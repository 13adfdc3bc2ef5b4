// REPA (src/train/repa.ts): the alignment loss on hand-computed cases, the frozen encoder's input, and a stage with
// loss.repa_weight: the loss is the diffusion loss (unchanged) plus the weighted alignment, the alignment's gradient
// reaches only the UNet up to its tap, the projector trains and is checkpointed but never exported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { tensor, randn, F, noGrad, loadSafetensors } from '../../src/torch/index.ts';
import { repaLoss, encoderFeatures } from '../../src/train/repa.ts';
import { StageData } from '../../src/train/data.ts';
import { buildModel, applyPlan, paramGroups, StageRunner } from '../../src/train/stages.ts';
import { train } from '../../src/train/trainer.ts';
import { listCheckpoints } from '../../src/train/checkpoint.ts';
import { MumuModel } from '../../src/models/index.ts';
import { tinyConfig, tinyRaw } from './helpers.ts';

const near = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);

test('repaLoss: 1 - mean cosine over tokens and items; a coarser UNet grid is resized to the encoder grid', () => {
  // item 0: (3, 4) vs (4, 3): cos 24/25; item 1: (1, 0) vs (-1, 0): cos -1 -> 1 - (0.96 - 1) / 2 = 1.02
  const z = tensor([3, 4, 1, 0]).reshape(2, 2, 1, 1);
  const y = tensor([4, 3, -1, 0]).reshape(2, 1, 2);
  near(repaLoss(z, y).item(), 1.02);
  // the same vector at every position of a 4x4 map against a 2x2 grid of a positive multiple of it: 0
  const flat = tensor([1, 2]).reshape(1, 2, 1, 1).expand(1, 2, 4, 4).contiguous();
  near(repaLoss(flat, tensor([2, 4]).reshape(1, 1, 2).expand(1, 4, 2).contiguous()).item(), 0);
  near(repaLoss(flat, tensor([-2, -4]).reshape(1, 1, 2).expand(1, 4, 2).contiguous()).item(), 2);
  assert.throws(() => repaLoss(flat, randn([1, 3, 2])), /not a square grid/);
  assert.throws(() => repaLoss(flat, randn([1, 4, 3])), /width 2 != encoder width 3/);
});

test("encoderFeatures: the ViT's tokens of the clean image at its native side (exact 2x pooling of a 2x image)", async () => {
  const { model } = await buildModel(tinyConfig('t2i-base'));
  const vit = model.vlm.model.vision_model; // fixture: 8 px, patch 4 -> 4 tokens
  const big = randn([2, 3, 16, 16]);
  const got = encoderFeatures(vit, big);
  assert.deepEqual(got.shape, [2, 4, vit.config.hidden_size]);
  assert.equal(got.requiresGrad, false);
  const want = noGrad(() => vit.forward(F.avgPool2d(big, 2)));
  near(got.sub(want).abs().max().item(), 0, 1e-6);
  const native = randn([1, 3, 8, 8]);
  near(
    encoderFeatures(vit, native)
      .sub(noGrad(() => vit.forward(native)))
      .abs()
      .max()
      .item(),
    0,
    1e-7,
  );
});

const REPA_GROUPS = [
  ...(tinyRaw('t2i-base').optimizer as { groups: object[] }).groups,
  { name: 'repa', match: '^repa_projector\\.', lr: 1e-3, weight_decay: 0 },
];

test('a stage with loss.repa_weight: diffusion loss unchanged plus the weighted alignment; gradients stop at the tap', async () => {
  const cfg = tinyConfig('t2i-base', { loss: { repa_weight: 0.5 }, optimizer: { groups: REPA_GROUPS } });
  assert.equal(cfg.loss.repa_layer, 'mid');
  const built = await buildModel(cfg);
  applyPlan(built.model, cfg);
  const m = built.model;
  assert.ok(m.repa_projector, 'projector added');
  assert.equal(paramGroups(m, cfg.optimizer.groups).find((g) => g.group.name === 'repa')!.params.length, 6);
  const runner = new StageRunner(cfg, built);
  const data = await StageData.open(cfg, runner.prompt);
  const b = runner.batch(await data.batchItems(0));
  const { loss, parts } = runner.loss(b);
  near(loss.item(), parts.diffusion!.item() + 0.5 * parts.repa!.item());
  assert.ok(parts.repa!.item() > 0 && parts.repa!.item() < 2);
  // the same draws with REPA off give the same diffusion loss: the tap changes nothing the UNet predicts
  const off = new StageRunner({ ...cfg, loss: { ...cfg.loss, repa_weight: null } }, built);
  near(
    noGrad(() => off.loss(b).loss.item()),
    parts.diffusion!.item(),
  );
  // the alignment alone: gradient in the projector and the UNet's path to its mid block, none after it
  parts.repa!.backward();
  const gradAbs = (name: string) => {
    const p = m.namedParameters().find(([n]) => n === name)![1];
    return p.grad ? p.grad.abs().sum().item() : 0;
  };
  assert.ok(gradAbs('repa_projector.fc1.weight') > 0);
  assert.ok(gradAbs('unet.conv_in.weight') > 0);
  assert.equal(gradAbs('unet.conv_out.weight'), 0);
  // a parameter group must take the projector; a tap the UNet lacks and a stage without diffusion are refused
  const noGroup = tinyConfig('t2i-base', { loss: { repa_weight: 0.5 } });
  const m2 = (await buildModel(noGroup)).model;
  applyPlan(m2, noGroup);
  assert.throws(() => paramGroups(m2, noGroup.optimizer.groups), /match no optimizer group, e.g. repa_projector/);
  const badTap = tinyConfig('t2i-base', { loss: { repa_weight: 0.5, repa_layer: 'down.7' } });
  assert.throws(() => applyPlan(m2, badTap), /no hidden states at 'down.7'/);
  const vae = tinyConfig('vae', { loss: { repa_weight: 0.5 } });
  assert.throws(() => applyPlan(m2, vae), /stage vae has no diffusion loss/);
});

test('training with REPA: the projector trains and is checkpointed, the exported model has no trace of it', async () => {
  const cfg = tinyConfig('t2i-base', {
    steps: 2,
    loss: { repa_weight: 0.5, repa_layer: 'down.0' },
    optimizer: { groups: REPA_GROUPS },
    checkpoint: { every: 1, keep: 2 },
  });
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-repa-'));
  const lines: string[] = [];
  await train(cfg, { out, log: (l) => lines.push(l), progress: false });
  const ck = listCheckpoints(path.join(out, 'checkpoints')).sort((a, b) => a.step - b.step);
  assert.deepEqual(
    ck.map((c) => c.step),
    [1, 2],
  );
  const w1 = loadSafetensors(path.join(ck[0]!.dir, 'weights.safetensors')).tensors;
  const w2 = loadSafetensors(path.join(ck[1]!.dir, 'weights.safetensors')).tensors;
  assert.ok(w1['repa_projector.fc3.weight'], 'in the checkpoint');
  assert.ok(w1['repa_projector.fc3.weight']!.sub(w2['repa_projector.fc3.weight']!).abs().max().item() > 0, 'it trains');
  const unet = loadSafetensors(path.join(out, 'model', 'unet', 'diffusion_pytorch_model.safetensors')).tensors;
  assert.ok(Object.keys(unet).length > 0);
  assert.equal(Object.keys(unet).filter((k) => k.includes('repa')).length, 0);
  const files = fs.readdirSync(path.join(out, 'model'));
  assert.ok(!files.some((f) => f.includes('repa')), files.join(','));
  assert.equal(MumuModel.load(path.join(out, 'model')).repa_projector, null);
  const metrics = fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { parts?: Record<string, number> });
  assert.ok(
    metrics.some((r) => r.parts && 'repa' in r.parts),
    'the alignment is logged as a loss part',
  );
});
