// npm run bench:ddp — data-parallel training on 2 processes (issue 15). Measured now: the gradient all-reduce of the
// MUMU stage, mumu (t.dist: libtorch's c10d Gloo through the binding) vs Python torch.distributed with Gloo on the
// same libtorch (Debian python3-torch, bench/peers/ddp_peer.py), both packing the gradients into DDP-style 25 MiB
// flat buckets and averaging; and, as a second row, one all-reduce per tensor (no buckets) on both sides.
//
// The gradients are the trainable parameters of configs/mumu-stage1-full.json built from configs/models (the stage's
// own buildModel / applyPlan / buildOptimizer, read-only): their shapes, filled with rank + 1, so the average (1.5)
// checks the result. 2 ranks on this host, 1 thread each, rendezvous through a TCP store on a free port. Each side
// runs WARMUP + ITERS all-reduces per round; rounds alternate mumu / Python (this VM's speed drifts) and each side
// keeps its best median, of wall-clock time and of the process's CPU time (all threads: Gloo's included), which other
// load on a shared machine changes far less. Ratio = Python time / mumu time (>= 1: mumu as fast or faster).
//
// Then the trainer itself (`mumu train`, the same config from random weights, global batch 8): 1 process x 2 threads
// vs 2 processes x 1 thread (`--nproc 2`), alternating, BENCH_TRAIN_ROUNDS rounds of BENCH_TRAIN_WARMUP + BENCH_TRAIN_STEPS
// steps each: samples/s from rank 0's step times (median), the step's all-reduce time (metrics.jsonl allreduce_s) and
// its share of the step, and the CPU time per step of the whole job (every rank, all threads: read from
// /proc/<pid>/stat as the steps go by). Writes the "## ddp" section of docs/BENCHMARKS.md (notes below its marker
// line are kept) and ends with one JSON line.
//   node --import tsx bench/ddp.ts [--no-record]     BENCH_ITERS (10), BENCH_WARMUP (2), BENCH_ROUNDS (3),
//   BENCH_TRAIN_STEPS (6), BENCH_TRAIN_WARMUP (2), BENCH_TRAIN_ROUNDS (2)
import { writeSection } from './record.ts';
import { spawn, spawnSync } from 'node:child_process';
import { cpus, loadavg, tmpdir } from 'node:os';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as t from '../src/torch/index.ts';
import { freePort } from '../src/train/launch.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PY = '/usr/bin/python3'; // the pyenv python3 first on PATH has no torch
const CONFIG = 'configs/mumu-stage1-full.json';
const BUCKET = 25 * 1024 * 1024;
const ITERS = Number(process.env.BENCH_ITERS ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TRAIN_STEPS = Number(process.env.BENCH_TRAIN_STEPS ?? 6);
const TRAIN_WARMUP = Number(process.env.BENCH_TRAIN_WARMUP ?? 2);
const TRAIN_ROUNDS = Number(process.env.BENCH_TRAIN_ROUNDS ?? 2);
const BIN = join(ROOT, 'bin', 'mumu.js');
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

interface RankResult {
  ms: number[];
  cpu_ms: number[];
  ok: boolean;
}

// ---- a worker rank (this file with --worker): RANK, WORLD_SIZE, MASTER_* set by the parent ----
async function worker(shapesFile: string, bucketBytes: number) {
  const shapes = JSON.parse(readFileSync(shapesFile, 'utf8')) as number[][];
  const pg = await t.dist.initProcessGroup({ bucketBytes });
  const grads = shapes.map((s) => t.full(s, pg.rank + 1));
  const ms: number[] = [],
    cpuMs: number[] = [];
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  for (let i = 0; i < WARMUP + ITERS; i++) {
    const t0 = performance.now(),
      c0 = cpu();
    await pg.allReduce(grads, 'avg');
    if (i >= WARMUP) {
      ms.push(performance.now() - t0);
      cpuMs.push(cpu() - c0);
    }
  }
  // every element is the mean of 1 and 2 (averaging 1.5s keeps 1.5)
  const ok = grads.every((g) => t.tidy(() => g.sub(1.5).abs().max().item()) === 0);
  await pg.destroy();
  console.log(JSON.stringify({ ms, cpu_ms: cpuMs, ok } satisfies RankResult));
}

function ensurePythonTorch(): boolean {
  const ok = () =>
    spawnSync(PY, ['-c', 'import torch.distributed as d; assert d.is_gloo_available()'], { stdio: 'ignore' }).status ===
    0;
  if (ok()) return true;
  if (process.getuid?.() === 0 && existsSync('/etc/debian_version')) {
    log('installing python3-torch (the Python peer) with apt');
    spawnSync('apt-get', ['install', '-y', '-qq', 'python3-torch'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
  return ok();
}

// Two ranks of one side; resolves with rank 0's result (both ranks check their values).
async function runPair(side: 'mumu' | 'python', shapesFile: string, bucketBytes: number): Promise<RankResult> {
  const port = await freePort();
  const cmd =
    side === 'mumu'
      ? [
          process.execPath,
          '--single-threaded-gc',
          '--import',
          'tsx',
          fileURLToPath(import.meta.url),
          '--worker',
          shapesFile,
          String(bucketBytes),
        ]
      : [PY, join(ROOT, 'bench/peers/ddp_peer.py'), shapesFile, String(bucketBytes), String(WARMUP), String(ITERS)];
  const runs = [0, 1].map(
    (rank) =>
      new Promise<RankResult>((resolve, reject) => {
        const p = spawn(cmd[0]!, cmd.slice(1), {
          cwd: ROOT,
          env: {
            ...process.env,
            RANK: String(rank),
            WORLD_SIZE: '2',
            LOCAL_RANK: String(rank),
            MASTER_ADDR: '127.0.0.1',
            MASTER_PORT: String(port),
            MUMU_NUM_THREADS: '1',
            OMP_NUM_THREADS: '1',
            BENCH_WARMUP: String(WARMUP),
            BENCH_ITERS: String(ITERS),
          },
        });
        let out = '',
          err = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (err += d));
        p.on('close', (code) => {
          if (code !== 0) return reject(new Error(`${side} rank ${rank} exited with ${code}:\n${err}`));
          const r = JSON.parse(out.trim().split('\n').pop()!) as RankResult;
          if (!r.ok) return reject(new Error(`${side} rank ${rank}: wrong all-reduce result`));
          resolve(r);
        });
      }),
  );
  return (await Promise.all(runs))[0]!;
}

// ---- the trainer: samples/s of the MUMU stage, 1 process x 2 threads vs 2 processes x 1 thread ----
interface TrainSide {
  samples_per_s: number;
  step_s: number;
  cpu_s_per_step: number;
  allreduce_s: number | null;
  allreduce_share: number | null;
}

// user + system CPU seconds of a live process, all its threads (/proc/<pid>/stat fields 14 and 15, in clock ticks)
const TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / TICKS;
  } catch {
    return NaN; // gone
  }
}

// One `mumu train` job; the CPU time of its processes is sampled each time rank 0 finishes a step.
async function trainJob(cfgFile: string, nproc: number): Promise<TrainSide> {
  const out = mkdtempSync(join(tmpdir(), 'mumu-bench-ddp-train-'));
  const total = TRAIN_WARMUP + TRAIN_STEPS;
  // one step more than measured: the processes are still alive (their CPU readable) when step `total` is written
  const args = [
    '--single-threaded-gc',
    BIN,
    'train',
    '--config',
    cfgFile,
    '--out',
    join(out, 'run'),
    '--stop-at',
    String(total + 1),
    ...(nproc > 1 ? ['--nproc', String(nproc)] : []),
  ];
  const p = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, MUMU_NUM_THREADS: String(2 / nproc) } });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  p.stdout.resume();
  const exit = new Promise<number | null>((res) => p.on('close', (code) => res(code)));
  const metricsFile = join(out, 'run', 'metrics.jsonl');
  const lines = () =>
    existsSync(metricsFile)
      ? readFileSync(metricsFile, 'utf8')
          .split('\n')
          .filter((l) => l.trim()).length
      : 0;
  const pids = () =>
    nproc > 1 ? [...err.matchAll(/\[launch\] rank \d+: pid (\d+)/g)].map((m) => Number(m[1])) : [p.pid!];
  const cpuAt = new Map<number, number>(); // step -> CPU seconds of the job's workers when rank 0 wrote it
  let done = false;
  void exit.then(() => (done = true));
  for (let seen = 0; !done;) {
    const n = lines();
    if (n > seen) {
      seen = n;
      for (const mark of [TRAIN_WARMUP, total])
        if (n >= mark && !cpuAt.has(mark))
          cpuAt.set(
            mark,
            pids().reduce((a, pid) => a + cpuSeconds(pid), 0),
          );
    }
    await new Promise((res) => setTimeout(res, 10));
  }
  if ((await exit) !== 0) throw new Error(`mumu train (--nproc ${nproc}) failed:\n${err}`);
  const recs = readFileSync(metricsFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step_s: number; allreduce_s?: number })
    .slice(TRAIN_WARMUP, total);
  rmSync(out, { recursive: true, force: true });
  const stepS = median(recs.map((r) => r.step_s));
  const ar = nproc > 1 ? median(recs.map((r) => r.allreduce_s!)) : null;
  const cpu = (cpuAt.get(total)! - cpuAt.get(TRAIN_WARMUP)!) / TRAIN_STEPS;
  if (!Number.isFinite(cpu))
    throw new Error(`could not read the CPU time of the job's processes (${pids().join(', ')})`);
  return {
    samples_per_s: 8 / stepS,
    step_s: stepS,
    cpu_s_per_step: cpu,
    allreduce_s: ar,
    allreduce_share: ar === null ? null : ar / stepS,
  };
}

async function samplesPerSecond(cfgFile: string) {
  const best: Record<'one' | 'two', TrainSide[]> = { one: [], two: [] };
  for (let r = 0; r < TRAIN_ROUNDS; r++) {
    for (const [k, nproc] of [
      ['one', 1],
      ['two', 2],
    ] as const) {
      const s = await trainJob(cfgFile, nproc);
      best[k].push(s);
      log(
        `train, round ${r + 1}, ${nproc === 1 ? '1 process x 2 threads' : '2 processes x 1 thread'}: ${s.samples_per_s.toFixed(2)} samples/s, ${s.step_s.toFixed(2)} s/step, ${s.cpu_s_per_step.toFixed(2)} CPU s/step${s.allreduce_s !== null ? `, all-reduce ${(1000 * s.allreduce_s).toFixed(0)} ms (${(100 * s.allreduce_share!).toFixed(1)}%)` : ''}`,
      );
    }
  }
  // each side's best round, wall and CPU apart (other load slows rounds down, never up)
  const pick = (xs: TrainSide[]) => ({
    ...xs.reduce((a, b) => (b.step_s < a.step_s ? b : a)),
    cpu_s_per_step: Math.min(...xs.map((x) => x.cpu_s_per_step)),
  });
  const one = pick(best.one),
    two = pick(best.two);
  return {
    one_process_2_threads: one,
    two_processes_1_thread: two,
    ratio_wall: two.samples_per_s / one.samples_per_s,
    ratio_cpu: one.cpu_s_per_step / two.cpu_s_per_step,
  };
}

async function main() {
  // the stage's trainable parameters, as train() builds them (random init: only the shapes matter)
  const { readTrainConfig } = await import('../src/train/config.ts');
  const { buildModel, applyPlan } = await import('../src/train/stages.ts');
  const { buildOptimizer } = await import('../src/train/trainer.ts');
  const cfg = { ...readTrainConfig(join(ROOT, CONFIG)), init: null, model_configs: join(ROOT, 'configs', 'models') };
  const { model } = await buildModel(cfg);
  applyPlan(model, cfg);
  const { trainable } = buildOptimizer(model, cfg);
  const shapes = trainable.map(([, p]) => [...p.shape]);
  const dtypes = new Set(trainable.map(([, p]) => p.dtype));
  const numel = trainable.reduce((n, [, p]) => n + p.numel, 0);
  const bytes = numel * 4;
  if (dtypes.size !== 1 || !dtypes.has('float32')) throw new Error(`expected float32 gradients, got ${[...dtypes]}`);
  // the buckets t.dist packs: in list order, up to 25 MiB each (a bigger tensor alone)
  let buckets = 0,
    fill = Infinity;
  for (const s of shapes) {
    const b = s.reduce((a, x) => a * x, 1) * 4;
    if (fill + b > BUCKET) {
      buckets++;
      fill = 0;
    }
    fill += b;
  }
  const dir = mkdtempSync(join(tmpdir(), 'mumu-bench-ddp-'));
  const shapesFile = join(dir, 'shapes.json');
  writeFileSync(shapesFile, JSON.stringify(shapes));
  log(
    `${CONFIG}: ${shapes.length} trainable tensors, ${numel.toLocaleString('en')} parameters, ${(bytes / 2 ** 20).toFixed(1)} MiB of float32 gradients, ${buckets} buckets of <= 25 MiB`,
  );

  const pyOk = ensurePythonTorch();
  if (!pyOk) log('Python torch.distributed unavailable (apt-get install python3-torch): mumu only');
  const modes = [
    { name: 'bucketed (25 MiB flat buckets)', bucketBytes: BUCKET, collectives: buckets },
    { name: 'one all-reduce per tensor', bucketBytes: 0, collectives: shapes.length },
  ];
  const rows = [];
  for (const m of modes) {
    const best = { mumu: Infinity, python: Infinity, mumuCpu: Infinity, pythonCpu: Infinity };
    for (let r = 0; r < ROUNDS; r++) {
      const mu = await runPair('mumu', shapesFile, m.bucketBytes);
      best.mumu = Math.min(best.mumu, median(mu.ms));
      best.mumuCpu = Math.min(best.mumuCpu, median(mu.cpu_ms));
      const py = pyOk ? await runPair('python', shapesFile, m.bucketBytes) : null;
      if (py) {
        best.python = Math.min(best.python, median(py.ms));
        best.pythonCpu = Math.min(best.pythonCpu, median(py.cpu_ms));
      }
      log(
        `${m.name}, round ${r + 1}: mumu ${median(mu.ms).toFixed(1)} ms (${median(mu.cpu_ms).toFixed(1)} CPU ms), python ${py ? `${median(py.ms).toFixed(1)} ms (${median(py.cpu_ms).toFixed(1)} CPU ms)` : 'n/a'}`,
      );
    }
    const python = pyOk ? best.python : null,
      pythonCpu = pyOk ? best.pythonCpu : null;
    rows.push({
      mode: m.name,
      collectives: m.collectives,
      mumu_ms: best.mumu,
      python_ms: python,
      ratio: python ? python / best.mumu : null,
      mumu_cpu_ms: best.mumuCpu,
      python_cpu_ms: pythonCpu,
      ratio_cpu: pythonCpu ? pythonCpu / best.mumuCpu : null,
      mumu_gb_per_s: bytes / best.mumu / 1e6,
      python_gb_per_s: python ? bytes / python / 1e6 : null,
    });
  }
  // the trainer on the same stage: random weights (configs/models), no sample grids, global batch 8
  writeFileSync(
    join(dir, 'train.json'),
    JSON.stringify({
      ...JSON.parse(readFileSync(join(ROOT, CONFIG), 'utf8')),
      init: null,
      model_configs: join(ROOT, 'configs', 'models'),
      samples: { every: 0 },
      checkpoint: { every: 1000, keep: 1 },
    }),
  );
  const samples = await samplesPerSecond(join(dir, 'train.json'));
  rmSync(dir, { recursive: true, force: true });

  const cpu = cpus();
  const machine = `${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}`;
  const date = new Date().toISOString();
  const f1 = (x: number | null) => (x == null ? 'n/a' : x.toFixed(1));
  const ratio = (x: number | null) => (x == null ? 'n/a' : x.toFixed(2) + 'x');
  const section = [
    '## ddp',
    '',
    `\`npm run bench:ddp\` (bench/ddp.ts), ${date.slice(0, 10)}, ${machine}, load average ${loadavg()[0]!.toFixed(1)}, libtorch ${t.torchVersion}. The gradient all-reduce of`,
    `${CONFIG} (${shapes.length} trainable tensors, ${numel.toLocaleString('en')} parameters, ${(bytes / 2 ** 20).toFixed(1)} MiB float32) between 2 processes on`,
    "this host (1 thread each, Gloo over loopback TCP), averaged: mumu's t.dist vs Python torch.distributed (Gloo) on the same",
    `libtorch (bench/peers/ddp_peer.py, the same bucketing). Median of ${ITERS} all-reduces after ${WARMUP} warm-up, best of ${ROUNDS} alternating`,
    "rounds, as wall-clock ms and as CPU ms of rank 0's process (all threads, Gloo's included; other load on a shared machine",
    'changes it far less). Ratios = Python / mumu (>= 1: mumu as fast or faster). GB/s: gradient bytes / wall time.',
    '',
    '| mode | collectives | mumu ms | Python ms | ratio | mumu CPU ms | Python CPU ms | ratio (CPU) | mumu GB/s | Python GB/s |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.mode} | ${r.collectives} | ${f1(r.mumu_ms)} | ${f1(r.python_ms)} | ${ratio(r.ratio)} | ${f1(r.mumu_cpu_ms)} | ${f1(r.python_cpu_ms)} | ${ratio(r.ratio_cpu)} | ${r.mumu_gb_per_s.toFixed(2)} | ${r.python_gb_per_s == null ? 'n/a' : r.python_gb_per_s.toFixed(2)} |`,
    ),
    '',
    `The trainer on the same stage (\`mumu train\`, random weights, global batch 8, ${bytes.toLocaleString('en')} gradient bytes all-reduced per step in`,
    `${buckets} buckets): rank 0's median step time over ${TRAIN_STEPS} steps after ${TRAIN_WARMUP}, best of ${TRAIN_ROUNDS} alternating rounds; CPU s/step: every process`,
    'of the job, all threads, over the same steps. Ratios: 2 processes / 1 process for samples/s (>= 1: data parallel',
    'faster), 1 process / 2 processes for CPU s/step (>= 1: data parallel cheaper).',
    '',
    '| layout | samples/s | s/step | CPU s/step | all-reduce ms/step | all-reduce share |',
    '|---|---|---|---|---|---|',
    ...(
      [
        ['1 process x 2 threads', samples.one_process_2_threads],
        ['2 processes x 1 thread', samples.two_processes_1_thread],
      ] as const
    ).map(
      ([k, x]) =>
        `| ${k} | ${x.samples_per_s.toFixed(2)} | ${x.step_s.toFixed(2)} | ${x.cpu_s_per_step.toFixed(2)} | ${x.allreduce_s === null ? '-' : (1000 * x.allreduce_s).toFixed(0)} | ${x.allreduce_share === null ? '-' : (100 * x.allreduce_share).toFixed(1) + '%'} |`,
    ),
    `| ratio | ${samples.ratio_wall.toFixed(2)}x | | ${samples.ratio_cpu.toFixed(2)}x | | |`,
    '',
  ].join('\n');
  console.log(section);

  const NOTES_MARK = '<!-- ddp notes: kept by bench/ddp.ts -->';
  if (!parseArgs({ options: { 'no-record': { type: 'boolean' } } }).values['no-record']) {
    writeSection('ddp', section, { notesMark: NOTES_MARK });
  }
  console.log(
    JSON.stringify({
      bench: 'ddp',
      date,
      machine,
      libtorch: t.torchVersion,
      config: CONFIG,
      world_size: 2,
      threads_per_rank: 1,
      tensors: shapes.length,
      parameters: numel,
      gradient_bytes: bytes,
      warmup: WARMUP,
      iters: ITERS,
      rounds: ROUNDS,
      allreduce: rows,
      train: samples,
      train_steps: TRAIN_STEPS,
      train_warmup: TRAIN_WARMUP,
      train_rounds: TRAIN_ROUNDS,
    }),
  );
}

const argv = process.argv.slice(2);
if (argv[0] === '--worker') await worker(argv[1]!, Number(argv[2]));
else await main();
