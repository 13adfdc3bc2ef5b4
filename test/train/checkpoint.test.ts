// Checkpoints: a run killed with SIGKILL mid-training and resumed reproduces the uninterrupted run's losses exactly;
// a corrupt or truncated checkpoint is reported and the one before it is used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { train, type MetricRecord } from '../../src/train/trainer.ts';
import { saveCheckpoint, loadCheckpoint, listCheckpoints, CorruptCheckpointError } from '../../src/train/checkpoint.ts';
import { tensor } from '../../src/torch/index.ts';
import { tinyConfig, tinyRaw } from './helpers.ts';

const BIN = new URL('../../bin/mumu.js', import.meta.url).pathname;
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));
const losses = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as MetricRecord).loss);

test('SIGKILL mid-training, then --resume: the same loss sequence as an uninterrupted run', async () => {
  const root = tmp('mumu-kill-');
  // the richest state: LoRA + adapter, EMA, CFG dropout, noise/timestep RNG, grad accumulation
  const cfgFile = path.join(root, 'cfg.json');
  fs.writeFileSync(
    cfgFile,
    JSON.stringify(
      tinyRaw('mumu-stage1', { steps: 30, grad_accum: 2, ema: { decay: 0.9 }, checkpoint: { every: 5, keep: 2 } }),
    ),
  );
  const run = (out: string, ...extra: string[]) =>
    spawnSync('node', [BIN, 'train', '--config', cfgFile, '--out', out, ...extra], { encoding: 'utf8' });

  const whole = path.join(root, 'whole');
  const r1 = run(whole);
  assert.equal(r1.status, 0, r1.stderr);

  const cut = path.join(root, 'cut');
  const child = spawn('node', [BIN, 'train', '--config', cfgFile, '--out', cut], { stdio: 'ignore' });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  let killedAt = -1;
  await new Promise<void>((res) => {
    const iv = setInterval(() => {
      const ck = listCheckpoints(path.join(cut, 'checkpoints'));
      if (ck.length) {
        clearInterval(iv);
        child.kill('SIGKILL');
        killedAt = ck[0]!.step;
        res();
      }
    }, 2);
  });
  const code = await exited;
  assert.equal(code, null, 'the run was killed, not finished');
  assert.ok(killedAt > 0 && killedAt < 30);
  const r2 = run(cut, '--resume');
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stderr, /resumed from .*ckpt-/);
  assert.deepEqual(losses(cut), losses(whole));
  assert.equal(losses(whole).length, 30);
});

test('a truncated or corrupt checkpoint is reported and the previous one is used', async () => {
  const out = tmp('mumu-corrupt-');
  const cfg = tinyConfig('vae', { steps: 9, checkpoint: { every: 3, keep: 3 } });
  await train(cfg, { out, stopAt: 6, log: () => {}, progress: false });
  const first = losses(out);
  const ck = listCheckpoints(path.join(out, 'checkpoints'));
  assert.deepEqual(
    ck.map((c) => c.step),
    [6, 3],
  );
  const w = path.join(ck[0]!.dir, 'weights.safetensors');
  fs.truncateSync(w, fs.statSync(w).size - 100);
  const lines: string[] = [];
  const r = await train(cfg, { out, resume: true, log: (l) => lines.push(l), progress: false });
  assert.ok(
    lines.some((l) => /ckpt-00000006: weights\.safetensors is \d+ bytes.*truncated.*trying the previous one/.test(l)),
    lines.join('\n'),
  );
  assert.equal(r.resumedFrom, 3);
  const after = losses(out);
  assert.equal(after.length, 9);
  assert.deepEqual(after.slice(0, 6), first); // steps 4-6 redone from step 3 reproduce the lost ones
});

test('loadCheckpoint verifies every file: flipped byte, missing file, bad state.json', () => {
  const root = tmp('mumu-ck-');
  const dir = saveCheckpoint(root, {
    weights: { a: tensor([1, 2, 3]) },
    ema: null,
    optimizer: { 'g.0.exp_avg': tensor([0, 0, 0]) },
    state: { step: 1, microStep: 1, optimizer: { step: 1, groups: [] }, rng: { generator: '' }, extra: {} },
  });
  assert.deepEqual(loadCheckpoint(dir).weights.a!.toList(), [1, 2, 3]);
  const f = path.join(dir, 'optimizer.safetensors');
  const bytes = fs.readFileSync(f);
  bytes[bytes.length - 1] ^= 0xff;
  fs.writeFileSync(f, bytes);
  assert.throws(
    () => loadCheckpoint(dir),
    (e: Error) => e instanceof CorruptCheckpointError && /sha256/.test(e.message),
  );
  fs.rmSync(f);
  assert.throws(() => loadCheckpoint(dir), /optimizer\.safetensors is missing/);
  fs.writeFileSync(path.join(dir, 'state.json'), '{"vers');
  assert.throws(() => loadCheckpoint(dir), /state\.json unreadable/);
  // a killed write leaves only a .tmp- folder, which is never listed
  fs.mkdirSync(path.join(root, '.tmp-ckpt-00000002-1'));
  assert.deepEqual(
    listCheckpoints(root).map((c) => c.step),
    [1],
  );
});

test('SIGTERM (even twice): the step in flight finishes, then a checkpoint and the model are written and the run exits 0', async () => {
  const root = tmp('mumu-term-');
  const cfgFile = path.join(root, 'cfg.json');
  fs.writeFileSync(cfgFile, JSON.stringify(tinyRaw('vae', { steps: 100000, checkpoint: { every: 5, keep: 1 } })));
  const out = path.join(root, 'run');
  const child = spawn('node', [BIN, 'train', '--config', cfgFile, '--out', out], { stdio: 'ignore' });
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  await new Promise<void>((res) => {
    const iv = setInterval(() => {
      if (listCheckpoints(path.join(out, 'checkpoints')).length) {
        clearInterval(iv);
        child.kill('SIGTERM');
        // delivered twice, as `pkill -f` does to a launcher's workers (a moment apart, so the two are not merged into
        // one pending signal): still a clean stop
        setTimeout(() => child.kill('SIGTERM'), 50);
        res();
      }
    }, 5);
  });
  assert.equal(await exited, 0);
  const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as {
    steps: number;
    stopped_early: boolean;
  };
  assert.equal(summary.stopped_early, true);
  assert.equal(listCheckpoints(path.join(out, 'checkpoints'))[0]!.step, summary.steps);
  assert.ok(fs.existsSync(path.join(out, 'model', 'model_index.json')));
});
