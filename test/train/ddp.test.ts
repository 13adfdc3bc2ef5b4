// Data-parallel training (issue 15, src/train/ddp.ts): the split does not change the numbers. In one process, every
// stage's loss and gradient over a batch equal the count-weighted sum over the ranks' halves (per-item draws, global
// normalisation); over real processes, `mumu train --nproc 2` gives the single-process losses and weights (LoRA and
// full), resumes after a SIGKILL of the whole job, stops every rank at the same step on SIGTERM (one checkpoint) and
// resumes from that with another world size; a rank that dies makes the other exit with a clear error at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tidy, loadSafetensors, type Tensor } from '../../src/torch/index.ts';
import { parseTrainConfig, type StageName } from '../../src/train/config.ts';
import { StageData } from '../../src/train/data.ts';
import { buildModel, applyPlan, StageRunner } from '../../src/train/stages.ts';
import { train, buildOptimizer, type MetricRecord } from '../../src/train/trainer.ts';
import { listCheckpoints } from '../../src/train/checkpoint.ts';
import { rankPositions } from '../../src/data/split.ts';
import { freePort } from '../../src/train/launch.ts';
import { tinyRaw } from './helpers.ts';
import { main } from '../../src/cli/main.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/mumu.js', import.meta.url));
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));
const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

test('the split rule: rank r takes positions r mod N; the ranks together are the single-process positions', () => {
  assert.deepEqual(rankPositions(8, 8, 0, 2), [8, 10, 12, 14]);
  assert.deepEqual(rankPositions(8, 8, 1, 2), [9, 11, 13, 15]);
  assert.deepEqual(rankPositions(7, 5, 1, 3), [7, 10]);
  const all = [0, 1, 2, 3].flatMap((r) => rankPositions(12, 8, r, 4)).sort((a, b) => a - b);
  assert.deepEqual(
    all,
    Array.from({ length: 8 }, (_, i) => 12 + i),
  );
  assert.throws(() => rankPositions(0, 4, 2, 2), /rank 2 outside world size 2/);
});

// One process: the loss (and gradient) over 8 items equals the sum over 2 ranks' halves weighted by their share of
// the count (items; target tokens for the caption loss; prompt tokens for adapter-align).
for (const stage of ['vae', 't2i-base', 'vlm', 'adapter-align', 'mumu-stage1'] as StageName[]) {
  test(`${stage}: the loss and gradients of a batch are the count-weighted sums over its ranks' shares`, async () => {
    const cfg = parseTrainConfig(tinyRaw(stage, { batch_size: 8 }));
    const built = await buildModel(cfg);
    applyPlan(built.model, cfg);
    const runner = new StageRunner(cfg, built);
    const { trainable } = buildOptimizer(built.model, cfg);
    const data = await StageData.open(cfg, runner.prompt);
    const whole = await data.batchItems(3);
    assert.deepEqual(
      whole.map((it) => it.index),
      [24, 25, 26, 27, 28, 29, 30, 31],
    );
    const shares = [await data.batchItems(3, 0, 2), await data.batchItems(3, 1, 2)];
    assert.deepEqual(
      shares.map((s) => s.map((it) => it.index)),
      [
        [24, 26, 28, 30],
        [25, 27, 29, 31],
      ],
    );
    const total = runner.lossCount(whole);
    assert.equal(
      shares.reduce((n, s) => n + runner.lossCount(s), 0),
      total,
    );
    const grads = () => trainable.map(([, p]) => p.grad?.detach().clone() ?? null);
    const zero = () => trainable.forEach(([, p]) => (p.grad = null));
    const full = tidy(() => {
      const l = runner.loss(runner.batch(whole)).loss;
      l.backward();
      return l.item();
    });
    const gFull = grads();
    zero();
    let split = 0;
    for (const s of shares) {
      const w = runner.lossCount(s) / total;
      split += tidy(() => {
        const l = runner.loss(runner.batch(s)).loss;
        l.mul(w).backward();
        return l.item() * w;
      });
    }
    const gSplit = grads();
    zero();
    assert.ok(rel(split, full) < 1e-5, `${stage}: whole-batch loss ${full}, sum over shares ${split}`);
    // relative to the largest gradient: some are exactly zero in exact arithmetic (attention key biases) and hold
    // rounding noise only
    const scale = Math.max(...gFull.map((g) => (g ? tidy(() => g.abs().max().item()) : 0)));
    let worst = 0,
      compared = 0;
    gFull.forEach((g, i) => {
      if (!g) return assert.equal(gSplit[i], null);
      worst = Math.max(worst, tidy(() => g.sub(gSplit[i]!).abs().max().item()) / scale);
      compared++;
    });
    assert.ok(compared > 0);
    assert.ok(worst < 1e-5, `${stage}: gradients differ by ${worst} of the largest`);
  });
}

test('batch_size is the global batch: it must divide by ranks x grad_accum (a usage error before any worker starts)', async () => {
  const dir = tmp('mumu-ddp-usage-');
  const cfg = configFile(dir, tinyRaw('mumu-stage1', { batch_size: 8, grad_accum: 2 }));
  const w = process.stderr.write.bind(process.stderr);
  let err = '';
  process.stderr.write = ((x: string) => ((err += x), true)) as typeof process.stderr.write;
  try {
    assert.equal(await main(['train', '--config', cfg, '--out', path.join(dir, 'run'), '--nproc', '3']), 2);
  } finally {
    process.stderr.write = w;
  }
  assert.match(err, /batch_size 8 \(the global batch of a step\) must divide by the 3 ranks x grad_accum 2/);
  assert.ok(!fs.existsSync(path.join(dir, 'run')));
  await assert.rejects(
    train(parseTrainConfig(tinyRaw('mumu-stage1', { batch_size: 6, grad_accum: 4 })), { out: path.join(dir, 'run') }),
    /batch_size 6 \(the global batch of a step\) must divide by world size 1 x grad_accum 4/,
  );
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---- real processes ----
interface Job {
  pid: number;
  out: string;
  err: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}
function start(args: string[], env: Record<string, string> = {}): Job {
  const p = spawn(process.execPath, ['--single-threaded-gc', BIN, 'train', ...args], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', MUMU_NUM_THREADS: '1', ...env },
  });
  const j: Job = {
    pid: p.pid!,
    out: '',
    err: '',
    exit: new Promise((res) => p.on('close', (code, signal) => res({ code, signal }))),
  };
  p.stdout.on('data', (d) => (j.out += d));
  p.stderr.on('data', (d) => (j.err += d));
  return j;
}
const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 5));
  }
};
const metricsOf = (dir: string): MetricRecord[] => {
  const f = path.join(dir, 'metrics.jsonl');
  return fs.existsSync(f)
    ? fs
        .readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as MetricRecord)
    : [];
};
const assertLosses = (got: MetricRecord[], want: MetricRecord[], what: string) => {
  assert.equal(got.length, want.length, `${what}: ${got.length} steps, want ${want.length}`);
  got.forEach((m, i) =>
    assert.ok(
      rel(m.loss, want[i]!.loss) < 1e-5,
      `${what}: step ${m.step} loss ${m.loss}, single process ${want[i]!.loss}`,
    ),
  );
};
// max |a - b| / max |a| over every trainable weight of two checkpoints of the same step
const weightDiff = (a: string, b: string, step: number) => {
  const load = (d: string) =>
    loadSafetensors(path.join(d, 'checkpoints', `ckpt-${String(step).padStart(8, '0')}`, 'weights.safetensors'))
      .tensors;
  const [wa, wb] = [load(a), load(b)];
  assert.deepEqual(Object.keys(wa).sort(), Object.keys(wb).sort());
  const diff = Math.max(
    ...Object.entries(wa).map(([k, t]) => tidy(() => (t as Tensor).sub(wb[k]!).abs().max().item())),
  );
  return diff / Math.max(...Object.values(wa).map((t) => tidy(() => (t as Tensor).abs().max().item())));
};

// Tiny mumu-stage1 runs, global batch 8; the schedule spans 50 steps and runs stop early (--stop-at), so a stop or a
// kill always lands mid-run. LoRA with grad accumulation (2 ranks x 2 micro-batches x 2 items) and EMA; full.
// AdamW's eps is 1e-6 here, not 1e-8: with 1e-8, Adam scales the rounding noise of near-zero gradient elements up to
// a sizeable update, and after 5 full-training steps the weights differ by ~2e-5 (relative max) between any two
// runs that round differently: 2 ranks against 1 process, and just as much 1 process on 1 thread against 2 threads.
const OPT = { ...(tinyRaw('mumu-stage1').optimizer as object), eps: 1e-6 };
const LORA = tinyRaw('mumu-stage1', {
  steps: 50,
  batch_size: 8,
  grad_accum: 2,
  optimizer: OPT,
  ema: { decay: 0.9 },
  checkpoint: { every: 2, keep: 3 },
});
const FULL = tinyRaw('mumu-stage1', {
  steps: 50,
  batch_size: 8,
  optimizer: OPT,
  checkpoint: { every: 100, keep: 3 },
  train: { vision_model: 'frozen', connector: 'full', text_model: 'full', adapter: 'full', unet: 'full' },
});
const configFile = (dir: string, raw: object) => {
  const f = path.join(dir, 'cfg.json');
  fs.writeFileSync(f, JSON.stringify(raw));
  return f;
};
const reference = async (raw: object, stopAt: number) => {
  const out = tmp('mumu-ddp-ref-');
  await train(parseTrainConfig(raw), { out, stopAt, log: () => {}, progress: false });
  return out;
};

for (const [name, raw] of [
  ['LoRA', LORA],
  ['full', FULL],
] as const) {
  test(
    `mumu-stage1 (${name}), 5 steps: 2 processes with global batch 8 give the single-process losses and weights`,
    { timeout: 240_000 },
    async () => {
      const dir = tmp('mumu-ddp-');
      const ref = await reference(raw, 5);
      const job = start([
        '--config',
        configFile(dir, raw),
        '--out',
        path.join(dir, 'run'),
        '--nproc',
        '2',
        '--stop-at',
        '5',
      ]);
      assert.equal((await job.exit).code, 0, job.err);
      assert.match(job.err, /\[rank 0\] .*2 ranks, 4 items each per step/);
      assertLosses(metricsOf(path.join(dir, 'run')), metricsOf(ref), name);
      assert.ok(metricsOf(path.join(dir, 'run')).every((m) => typeof m.allreduce_s === 'number'));
      const d = weightDiff(path.join(dir, 'run'), ref, 5);
      assert.ok(d < 1e-5, `${name}: weights differ by ${d} (relative max)`);
      assert.ok(!fs.existsSync(path.join(dir, 'run', 'ranks')), 'rank 1 writes nothing');
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(ref, { recursive: true, force: true });
    },
  );
}

test(
  'a 2-process job killed with SIGKILL resumes (--resume --nproc 2) to the uninterrupted losses',
  { timeout: 240_000 },
  async () => {
    const dir = tmp('mumu-ddp-kill-');
    const cfg = configFile(dir, LORA);
    const out = path.join(dir, 'run');
    const job = start(['--config', cfg, '--out', out, '--nproc', '2']);
    await until(() => listCheckpoints(path.join(out, 'checkpoints')).length > 0, 120_000, 'the first checkpoint');
    const workers = [...job.err.matchAll(/\[launch\] rank \d+: pid (\d+)/g)].map((m) => Number(m[1]));
    assert.equal(workers.length, 2, job.err);
    for (const pid of [job.pid, ...workers]) process.kill(pid, 'SIGKILL');
    await job.exit;
    const killedAt = listCheckpoints(path.join(out, 'checkpoints'))[0]!.step;
    assert.ok(killedAt < 8, `killed at step ${killedAt}`);
    const again = start(['--config', cfg, '--out', out, '--nproc', '2', '--resume', '--stop-at', '8']);
    assert.equal((await again.exit).code, 0, again.err);
    assert.match(again.err, /\[rank 0\] resumed from .*ckpt-/);
    const ref = await reference(LORA, 8);
    assertLosses(metricsOf(out), metricsOf(ref), 'killed and resumed');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(ref, { recursive: true, force: true });
  },
);

test(
  'SIGTERM: both ranks stop after the same step with one checkpoint; resuming in 1 process gives the same losses',
  { timeout: 240_000 },
  async () => {
    const dir = tmp('mumu-ddp-term-');
    const out = path.join(dir, 'run');
    const job = start(['--config', configFile(dir, FULL), '--out', out, '--nproc', '2']);
    await until(() => metricsOf(out).length > 0, 120_000, 'the first step');
    process.kill(job.pid, 'SIGTERM');
    assert.equal((await job.exit).code, 0, job.err);
    const stoppedAt = metricsOf(out).length;
    assert.ok(stoppedAt < 50);
    assert.deepEqual(
      listCheckpoints(path.join(out, 'checkpoints')).map((c) => c.step),
      [stoppedAt],
    );
    assert.match(job.out, new RegExp(`\\[rank 0\\] mumu-stage1: ${stoppedAt} steps`));
    assert.match(job.out, new RegExp(`\\[rank 1\\] mumu-stage1: ${stoppedAt} steps`));
    assert.ok(fs.existsSync(path.join(out, 'model', 'model_index.json')), 'the model is exported as it is');
    // another world size: the same items and draws, the same global mean
    const r = await train(parseTrainConfig(FULL), {
      out,
      resume: true,
      stopAt: stoppedAt + 2,
      log: () => {},
      progress: false,
    });
    assert.equal(r.resumedFrom, stoppedAt);
    const ref = await reference(FULL, stoppedAt + 2);
    assertLosses(metricsOf(out), metricsOf(ref), 'stopped in 2 processes, resumed in 1');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(ref, { recursive: true, force: true });
  },
);

test(
  'SIGKILL of one rank: the other exits non-zero at once with a clear message (not at the timeout)',
  { timeout: 120_000 },
  async () => {
    const dir = tmp('mumu-ddp-dead-');
    const cfg = configFile(dir, LORA);
    const port = String(await freePort());
    const rank = (r: number) =>
      start(['--config', cfg, '--out', path.join(dir, 'run')], {
        RANK: String(r),
        WORLD_SIZE: '2',
        LOCAL_RANK: String(r),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: port,
        MUMU_DIST_TIMEOUT_S: '60',
      });
    const [r0, r1] = [rank(0), rank(1)];
    await until(() => metricsOf(path.join(dir, 'run')).length > 0, 120_000, 'the first step');
    process.kill(r1.pid, 'SIGKILL');
    const t0 = performance.now();
    const e0 = await r0.exit;
    const seconds = (performance.now() - t0) / 1000;
    assert.equal((await r1.exit).signal, 'SIGKILL');
    assert.equal(e0.code, 1, r0.err);
    assert.ok(seconds < 30, `rank 0 took ${seconds} s to notice`);
    assert.match(
      r0.err,
      /mumu: rank 0 of 2: (allReduce|broadcast|waiting).* failed: .*\(another rank exited or its host went away\)/,
    );
    fs.rmSync(dir, { recursive: true, force: true });
  },
);
