// Every stage on tiny configs: the loss falls on a fixed batch, only the intended parameters change (frozen ones
// stay bit-identical), and the optimizer groups get the configured parts and rates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { Generator, tidy } from '../../src/torch/index.ts';
import { STAGES, lrFactor, parseTrainConfig } from '../../src/train/config.ts';
import { StageData } from '../../src/train/data.ts';
import { buildModel, applyPlan, paramGroups, StageRunner } from '../../src/train/stages.ts';
import { buildOptimizer } from '../../src/train/trainer.ts';
import { train } from '../../src/train/trainer.ts';
import { tinyConfig, tinyRaw } from './helpers.ts';

const INTENDED: Record<string, RegExp> = {
  vae: /^vae\./,
  't2i-base': /^(unet|text_encoder)\./,
  'style-finetune': /^unet\./,
  vlm: /^vlm\./,
  'adapter-align': /^adapter\./,
  'mumu-stage1': /^(adapter\.|unet\..*lora_[AB]|vlm\.model\.(connector|text_model)\..*lora_[AB])/,
  'mumu-stage2': /^(adapter\.|unet\..*lora_[AB]|vlm\.model\.(connector|text_model)\..*lora_[AB])/,
};

for (const stage of STAGES) {
  test(`${stage}: loss falls on a fixed batch; only the intended parameters change`, async () => {
    const cfg = tinyConfig(stage);
    const built = await buildModel(cfg);
    applyPlan(built.model, cfg);
    const runner = new StageRunner(cfg, built);
    const { groups, opt } = buildOptimizer(built.model, cfg); // the trainer's own AdamW over the config's groups
    const m = built.model;
    const data = await StageData.open(cfg, runner.prompt);
    const items = await data.batchItems(0);
    const before = new Map(m.namedParameters().map(([n, p]) => [n, Buffer.from(p.toBytes())]));
    const losses: number[] = [];
    for (let i = 0; i < 8; i++) {
      losses.push(
        tidy(() => {
          const { loss } = runner.loss(runner.batch(items)); // the items' own draws: the same noise and timesteps every step
          loss.backward();
          return loss.item();
        }),
      );
      opt.stepOnce();
      opt.zeroGrad();
    }
    assert.ok(losses.at(-1)! < losses[0]!, `${stage}: loss ${losses[0]} -> ${losses.at(-1)}`);
    const trainable = new Set(groups.flatMap((g) => g.params.map(([n]) => n)));
    for (const [n, p] of m.namedParameters()) {
      const same = before.get(n)!.equals(Buffer.from(p.toBytes()));
      if (trainable.has(n)) assert.ok(INTENDED[stage]!.test(n), `${stage}: ${n} should not be trainable`);
      else assert.ok(same, `${stage}: frozen ${n} changed`);
    }
    // every intended part moved (LoRA B starts at zero, so A moves from the second step on)
    const moved = [...trainable].filter(
      (n) =>
        !before.get(n)!.equals(
          Buffer.from(
            m
              .namedParameters()
              .find(([k]) => k === n)![1]
              .toBytes(),
          ),
        ),
    );
    assert.ok(
      moved.length >= trainable.size * 0.9,
      `${stage}: only ${moved.length} of ${trainable.size} trainable tensors changed`,
    );
  });
}

test('mumu-stage1: paper Table 1 structure in groups (ViT frozen, LoRA on connector/LM/UNet, adapter full)', async () => {
  const cfg = tinyConfig('mumu-stage1');
  const built = await buildModel(cfg);
  applyPlan(built.model, cfg);
  const groups = Object.fromEntries(
    paramGroups(built.model, cfg.optimizer.groups).map((g) => [g.group.name, g.params.map(([n]) => n)]),
  );
  assert.ok(groups.adapter!.length > 0 && groups.adapter!.every((n) => n.startsWith('adapter.')));
  assert.ok(
    groups.unet!.length > 0 &&
      groups.unet!.every((n) => /^unet\..*\.(to_q|to_k|to_v|to_out\.0)\.lora_[AB]\.weight$/.test(n)),
  );
  assert.ok(
    groups.vlm!.some((n) => n.startsWith('vlm.model.connector.')) &&
      groups.vlm!.some((n) => n.startsWith('vlm.model.text_model.')),
  );
  assert.ok(groups.vlm!.every((n) => /lora_[AB]/.test(n) && !n.includes('vision_model')));
  assert.equal(built.model.vlm.model.vision_model.numParameters({ trainableOnly: true }), 0);

  // full-training switch: same groups, whole parts
  const full = tinyConfig('mumu-stage1', {
    train: { vision_model: 'frozen', connector: 'full', text_model: 'full', adapter: 'full', unet: 'full' },
  });
  const b2 = await buildModel(full);
  applyPlan(b2.model, full);
  const g2 = Object.fromEntries(
    paramGroups(b2.model, full.optimizer.groups).map((g) => [g.group.name, g.params.length]),
  );
  assert.equal(g2.unet, b2.model.unet.parameters().length);
  assert.equal(b2.model.vlm.model.vision_model.numParameters({ trainableOnly: true }), 0);
});

test('learning rates: per group, warm-up then cosine, as recorded in metrics', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-lr-'));
  const cfg = tinyConfig('mumu-stage1', { steps: 6, checkpoint: { every: 100, keep: 1 } });
  const r = await train(cfg, { out, log: () => {}, progress: false });
  for (const m of r.metrics) {
    const f = lrFactor(cfg.schedule, m.step - 1, cfg.steps);
    for (const g of cfg.optimizer.groups)
      assert.ok(Math.abs(m.lr[g.name]! - g.lr * f) < 1e-12, `step ${m.step} ${g.name}`);
  }
  assert.ok(r.metrics[0]!.lr.adapter! > r.metrics[0]!.lr.unet! && r.metrics[0]!.lr.unet! > r.metrics[0]!.lr.vlm!);
  assert.equal(lrFactor(cfg.schedule, 0, 6), 0.5);
  assert.ok(Math.abs(lrFactor(cfg.schedule, 6, 6) - 0.1) < 1e-12);
  assert.ok(fs.existsSync(path.join(out, 'model', 'model_index.json')) && fs.existsSync(path.join(out, 'loss.png')));
  // a CFG dropout rate was applied: some prompts were emptied (rate 0.25 over 12 samples)
  assert.ok(r.metrics.reduce((a, m) => a + m.dropped, 0) > 0);
});

test('configs: unknown keys, unmatched groups and bad rates are refused', async () => {
  assert.throws(() => parseTrainConfig({ ...tinyRaw('vae'), stepz: 3 }), /unknown key 'stepz'/);
  assert.throws(() => parseTrainConfig({ ...tinyRaw('vae'), data: { sise: 3 } }), /unknown key 'sise'/);
  assert.throws(() => parseTrainConfig({ ...tinyRaw('vae'), stage: 'gan' }), /stage must be one of/);
  const cfg = tinyConfig('t2i-base', {
    optimizer: { groups: [{ name: 'unet', match: '^unet\\.', lr: 1e-3, weight_decay: 0 }] },
  });
  const built = await buildModel(cfg);
  applyPlan(built.model, cfg);
  assert.throws(() => paramGroups(built.model, cfg.optimizer.groups), /match no optimizer group/);
});

test('mumu-stage1 from bootstrap shards: epochs in a seeded order, prompts interleaved as generated on the fly', async () => {
  const { runShards } = await import('../../src/data/shards/run.ts');
  const { defaultConfig } = await import('../../src/data/bootstrap/rules.ts');
  const shards = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-shards-'));
  await runShards(
    {
      source: 'emoji-world',
      n: 5,
      seed: 2,
      size: 16,
      stage: 1,
      samplesPerShard: 3,
      config: defaultConfig(1, 8),
      renderScale: 2,
    },
    shards,
  );
  const cfg = tinyConfig('mumu-stage1', { steps: 4, data: { ...(tinyRaw('mumu-stage1').data as object), shards } });
  const built = await buildModel(cfg);
  const m = built.model;
  const data = await StageData.open(cfg, new StageRunner(cfg, built).prompt);
  const epoch0 = await Promise.all([0, 1, 2, 3, 4].map((i) => data.item(i)));
  assert.equal(new Set(epoch0.map((it) => it.caption || `dropped${Math.random()}`)).size >= 3, true);
  const again = await data.item(3);
  assert.deepEqual(again.prompt!.inputIds, epoch0[3]!.prompt!.inputIds);
  for (const it of epoch0) {
    const slots = it.prompt!.inputIds.filter((id) => id === m.vlm.config.image_token_id).length;
    assert.equal(slots, it.prompt!.images.length * m.vlm.tokensPerImage);
  }
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-shard-run-'));
  const r = await train(cfg, { out, log: () => {}, progress: false });
  assert.equal(r.steps, 4);
});

test('mumu-stage2 at data.reference_size 2x the ViT side: 4x tokens per crop, and the exported model keeps that side', async () => {
  const cfg = tinyConfig('mumu-stage2', {
    steps: 2,
    data: { ...(tinyRaw('mumu-stage2').data as object), reference_size: 16 },
  });
  const built = await buildModel(cfg);
  const m = built.model;
  const native = m.vlm.config.vision_config.image_size;
  assert.equal(native, 8);
  const data = await StageData.open(cfg, new StageRunner(cfg, built).prompt);
  const items = (await data.batchItems(0)).concat(await data.batchItems(1));
  const withCrops = items.filter((it) => it.prompt!.images.length);
  assert.ok(withCrops.length > 0, 'some prompts carry a crop');
  for (const it of withCrops) {
    assert.equal(it.prompt!.images.length, 1, 'stage 2: one crop per prompt');
    assert.equal(it.prompt!.images[0]!.size, 16);
    assert.equal(
      it.prompt!.inputIds.filter((id) => id === m.vlm.config.image_token_id).length,
      4 * m.vlm.tokensPerImage,
    );
  }
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-stage2-ref-'));
  await train(cfg, { out, log: () => {}, progress: false });
  const proc = JSON.parse(fs.readFileSync(path.join(out, 'model', 'tokenizer', 'processor_config.json'), 'utf8'));
  assert.equal(proc.reference_size, 16);
  const { loadComponents, MumuPipeline } = await import('../../src/pipeline.ts');
  const comps = await loadComponents(path.join(out, 'model'));
  assert.equal(comps.prompt.imageSize, 16);
  assert.equal(comps.prompt.tokensPerImage, 16);
  assert.equal((await loadComponents(path.join(out, 'model'), { referenceSize: 8 })).prompt.tokensPerImage, 4);
  const img = { width: 8, height: 8, channels: 3 as const, data: new Uint8Array(8 * 8 * 3).fill(200) };
  const r = await new MumuPipeline(comps).generate(['a', { image: img }, 'dog face'], { steps: 1, seed: 0 });
  assert.equal(r.images.length, 1);
  assert.throws(
    () =>
      parseTrainConfig({
        ...tinyRaw('mumu-stage2'),
        data: { ...(tinyRaw('mumu-stage2').data as object), reference_size: 2.5 },
      }),
    /data\.reference_size/,
  );
});

test("the stage's scheduler config drives the loss (v target, zero terminal SNR, Min-SNR) and is exported; EMA warms up", async () => {
  const { randn, randint, cat, noGrad } = await import('../../src/torch/index.ts');
  const { addNoise, velocity, minSnrWeights } = await import('../../src/diffusion/index.ts');
  const { itemDrawSeed } = await import('../../src/train/draws.ts');
  const { emaDecay } = await import('../../src/train/config.ts');
  const scheduler = { prediction_type: 'v_prediction', rescale_betas_zero_snr: true, timestep_spacing: 'trailing' };
  const cfg = tinyConfig('t2i-base', {
    steps: 2,
    scheduler,
    loss: { snr_gamma: 5 },
    ema: { decay: 0.99, warmup: true },
    samples: { every: 2, count: 2, steps: 2, guidance_scale: 2, seed: 3 },
  });
  const built = await buildModel(cfg);
  assert.equal(built.scheduler.prediction_type, 'v_prediction');
  const runner = new StageRunner(cfg, built);
  assert.equal(runner.schedule.alphasCumprod.at(-1), 0);
  const data = await StageData.open(cfg, runner.prompt);
  const b = runner.batch(await data.batchItems(0));
  const m = built.model;
  // the same draws by hand, each item from its own generator seeded by (run seed, item index), in the runner's
  // order: posterior sample, noise, timestep
  const want = noGrad(() => {
    const gens = b.indices.map((j) => new Generator(itemDrawSeed(cfg.seed, j)));
    const post = m.vae.encode(b.images!);
    const L = post.mean.shape.slice(1);
    const x0 = m.vae.scaleLatents(
      post.mean.add(post.std.mul(cat(gens.map((g) => randn([1, ...L], { generator: g }))))),
    );
    const noise = cat(gens.map((g) => randn([1, ...L], { generator: g })));
    const t = cat(gens.map((g) => randint(0, runner.schedule.config.numTrainTimesteps, [1], { generator: g })));
    const pred = m.forward(addNoise(runner.schedule, x0, noise, t), t, m.encodeText(b.ids!, b.mask), b.mask);
    return pred
      .sub(velocity(runner.schedule, x0, noise, t))
      .square()
      .mul(minSnrWeights(runner.schedule, t, pred, 5, 'v_prediction'))
      .mean()
      .item();
  });
  const got = noGrad(() => runner.loss(b).loss.item());
  assert.ok(Math.abs(got - want) < 1e-6 * Math.max(1, want), `${got} vs ${want}`);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-sched-'));
  await train(cfg, { out, log: () => {}, progress: false });
  const exported = JSON.parse(fs.readFileSync(path.join(out, 'model', 'scheduler', 'scheduler_config.json'), 'utf8'));
  assert.deepEqual(
    [exported.prediction_type, exported.rescale_betas_zero_snr, exported.timestep_spacing],
    ['v_prediction', true, 'trailing'],
  );
  assert.ok(fs.existsSync(path.join(out, 'samples', 'step-000002.png')), 'sample grid drawn through the pipeline');
  assert.deepEqual(
    [0, 1, 100, 1000].map((k) => emaDecay(cfg.ema!, k)),
    [0.1, 2 / 11, 101 / 110, 0.99],
  );
  assert.equal(emaDecay({ decay: 0.9, warmup: false }, 0), 0.9);
  await assert.rejects(
    buildModel(tinyConfig('t2i-base', { scheduler: { rescale_betas_zero_snr: true } })),
    /needs prediction_type 'v_prediction'/,
  );
});

test("'fresh' parts: new weights (the init's architecture, with overrides) while the other parts keep the init's", async () => {
  const { TextTimeEmbedding } = await import('../../src/nn/index.ts');
  const { equal } = await import('../../src/torch/index.ts');
  // no init: model_configs with the overrides
  const a = await buildModel(
    tinyConfig('t2i-base', { fresh: { unet: { addition_embed_type: 'text', addition_embed_type_num_heads: 2 } } }),
  );
  assert.ok(a.model.unet.add_embedding instanceof TextTimeEmbedding);
  // an init folder: the same VAE, a new UNet of the init's architecture
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-fresh-'));
  await train(tinyConfig('vae', { steps: 1 }), { out, log: () => {}, progress: false });
  const init = path.join(out, 'model');
  const kept = await buildModel(tinyConfig('t2i-base', { init }));
  const b = await buildModel(tinyConfig('t2i-base', { init, fresh: { unet: {} }, seed: 7 }));
  assert.ok(equal(b.model.vae.encoder.conv_in.weight, kept.model.vae.encoder.conv_in.weight), 'VAE from the init');
  assert.ok(!equal(b.model.unet.conv_in.weight, kept.model.unet.conv_in.weight), 'UNet drawn anew');
  assert.deepEqual(b.model.unet.config, kept.model.unet.config);
  const again = await buildModel(tinyConfig('t2i-base', { init, fresh: { unet: {} }, seed: 7 }));
  assert.ok(
    equal(again.model.unet.conv_in.weight, b.model.unet.conv_in.weight),
    'the same seed draws the same fresh part',
  );
  assert.throws(() => tinyConfig('t2i-base', { fresh: { unet2: {} } }), /fresh\.unet2: not a model part/);
  // `from`: a part trained elsewhere (here: the fresh-UNet model's UNet) joined to the init's other parts
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-from-'));
  b.model.save(other);
  fs.cpSync(path.join(init, 'tokenizer'), path.join(other, 'tokenizer'), { recursive: true });
  const c = await buildModel(tinyConfig('t2i-base', { init, from: { unet: other } }));
  assert.ok(equal(c.model.unet.conv_in.weight, b.model.unet.conv_in.weight), 'UNet from the other folder');
  assert.ok(equal(c.model.vae.encoder.conv_in.weight, kept.model.vae.encoder.conv_in.weight), 'VAE from init');
  // a committed stage: scripts/export-parts.ts writes the part in float16; without init, `from` joins it to parts
  // built fresh from model_configs, read back as float32 with the float16-rounded values
  const stage = path.join(out, 'stages');
  const v = await buildModel(
    tinyConfig('t2i-base', { init, scheduler: { prediction_type: 'v_prediction', rescale_betas_zero_snr: true } }),
  );
  v.model.save(path.join(out, 'v'));
  fs.cpSync(path.join(init, 'tokenizer'), path.join(out, 'v', 'tokenizer'), { recursive: true });
  const { writeSchedulerConfig } = await import('../../src/diffusion/index.ts');
  fs.mkdirSync(path.join(out, 'v', 'scheduler'), { recursive: true });
  await writeSchedulerConfig(path.join(out, 'v', 'scheduler', 'scheduler_config.json'), v.scheduler);
  const ex = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'scripts/export-parts.ts', path.join(out, 'v'), stage, 'vae', 'scheduler'],
    { encoding: 'utf8' },
  );
  assert.equal(ex.status, 0, ex.stderr);
  const e = await buildModel(
    tinyConfig('t2i-base', { from: { vae: path.join(stage, 'vae'), scheduler: path.join(stage, 'scheduler') } }),
  );
  assert.equal(e.scheduler.prediction_type, 'v_prediction', "the base's schedule and target, not SD's");
  assert.equal(e.scheduler.rescale_betas_zero_snr, true);
  const w = e.model.vae.encoder.conv_in.weight;
  assert.equal(w.dtype, 'float32');
  assert.ok(equal(w, kept.model.vae.encoder.conv_in.weight.to('float16').to('float32')), 'VAE from the stage folder');
  const plain = await buildModel(tinyConfig('t2i-base'));
  assert.ok(equal(e.model.unet.conv_in.weight, plain.model.unet.conv_in.weight), 'UNet as drawn without init');
  assert.ok(!equal(e.model.vae.encoder.conv_in.weight, plain.model.vae.encoder.conv_in.weight), 'the VAE is not');
  const bad = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/export-parts.ts', init, stage, 'vea'], {
    encoding: 'utf8',
  });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /vea is not a model part/);
  // or from a component folder itself (a shipped model's base_unet/)
  const d = await buildModel(tinyConfig('t2i-base', { init, from: { unet: path.join(other, 'unet') } }));
  assert.ok(equal(d.model.unet.conv_in.weight, b.model.unet.conv_in.weight), 'UNet from the component folder');
  await assert.rejects(
    buildModel(tinyConfig('t2i-base', { init, from: { unet: path.join(out, 'checkpoints') } })),
    /neither a model folder nor a component folder/,
  );
});
