// npm run bench:train — training samples/s of the MUMU stage-1 step (configs/mumu-stage1.json: paper Table 1, ViT
// frozen, connector + LM + UNet rank-8 LoRA, adapter full), side by side with the same model and step written in
// plain Python PyTorch on the same libtorch (bench/peers/mumu_train_peer.py, Debian python3-torch).
//
// The step is the trainer's own (src/train/trainer.ts microStep + optimizerUpdate): collate, VAE encode (no grad),
// noise, VLM -> adapter -> UNet, eps MSE, backward, grad clipping, AdamW, zero grad. One batch (the config's batch
// size) is fixed, and its draws are per item (src/train/draws.ts), so every step sees the same images, noise and
// timesteps. The
// weights (models/emoji-default, fp16 loaded as fp32, plus the run's LoRA init) and the batch go to a temp
// safetensors pair the Python peer loads strictly; it draws from the same per-item seeds, checks its draws equal ours
// and reports its first-step loss,
// which must match mumu's (< 1e-4 relative).
//
// mumu and Python alternate rounds (this VM's speed drifts) and each keeps its best median step time, wall-clock and
// process CPU time apart (the latter barely moves with other load on a shared machine). Writes the "## train" section
// of docs/BENCHMARKS.md (notes below its marker line are kept) and ends with one JSON line.
//   node --import tsx bench/train.ts [--full (also configs/mumu-stage1-full.json)] [--no-record] [--no-profile]
//     [--keep (the peer's inputs)] [--model DIR]
//   BENCH_STEPS timed steps per round (4), BENCH_WARMUP (1), BENCH_ROUNDS (2)
import { writeSection } from './record.ts';
import { spawnSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as t from '../src/torch/index.ts';
import { readTrainConfig, type TrainConfig } from '../src/train/config.ts';
import { StageData } from '../src/train/data.ts';
import { buildModel, applyPlan, StageRunner } from '../src/train/stages.ts';
import { buildOptimizer, microStep, optimizerUpdate } from '../src/train/trainer.ts';
import { itemDrawSeed } from '../src/train/draws.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PY = '/usr/bin/python3'; // the pyenv python3 first on PATH has no torch
const { values: v } = parseArgs({
  options: {
    full: { type: 'boolean' },
    'no-record': { type: 'boolean' },
    'no-profile': { type: 'boolean' },
    keep: { type: 'boolean' },
    model: { type: 'string' },
  },
});
const STEPS = Number(process.env.BENCH_STEPS ?? 4);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const PROFILE = v['no-profile'] ? 0 : 1; // forward / backward / update steps timed apart, per round
const threads = t.getNumThreads();
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

const modelDir = v.model ?? join(ROOT, 'models', 'emoji-default');
const hasModel = existsSync(join(modelDir, 'model_index.json'));
const modelLabel = hasModel ? (v.model ?? 'models/emoji-default') : 'configs/models, random init';

interface Round {
  wall_ms: number;
  cpu_ms: number;
  first?: { loss: number; grad_norm: number; loss2: number };
  draws_match?: boolean;
  profile?: Record<string, number>;
  forward_flops?: number;
  matmul_gflops?: number;
}

function ensurePythonTorch(): boolean {
  const ok = () => spawnSync(PY, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
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

async function benchConfig(file: string) {
  const raw = readTrainConfig(join(ROOT, file));
  const cfg: TrainConfig = { ...raw, init: hasModel ? modelDir : null, model_configs: join(ROOT, 'configs', 'models') };
  // what train() does before its loop
  t.manualSeed(cfg.seed);
  const built = await buildModel(cfg);
  const { model } = built;
  applyPlan(model, cfg);
  const runner = new StageRunner(cfg, built);
  const { groups, trainable, opt } = buildOptimizer(model, cfg);
  const params = trainable.map(([, p]) => p);
  const data = await StageData.open(cfg, runner.prompt);
  const items = await data.batchItems(0);

  // ---- the batch and the weights, for the Python peer ----
  const dir = mkdtempSync(join(tmpdir(), 'mumu-bench-train-'));
  const b = runner.batch(items);
  const [B, , S] = b.images!.shape as number[];
  const f = model.vae.downsampleFactor,
    L = model.vae.config.latent_channels;
  // the draws runner.loss makes, item by item from each item's own generator: posterior sample, noise, timestep
  const seeds = b.indices.map((j) => itemDrawSeed(cfg.seed, j));
  const perItem = seeds.map((s) => {
    const g = new t.Generator(s);
    return [
      t.randn([1, L, S! / f, S! / f], { generator: g }),
      t.randn([1, L, S! / f, S! / f], { generator: g }),
      t.randint(0, runner.schedule.config.numTrainTimesteps, [1], { generator: g }),
    ];
  });
  const draws = {
    posterior_eps: t.cat(perItem.map((d) => d[0]!)),
    noise: t.cat(perItem.map((d) => d[1]!)),
    timesteps: t.cat(perItem.map((d) => d[2]!)),
  };
  const batchTensors: Record<string, t.Tensor> = {
    images: b.images!,
    input_ids: b.ids!,
    attention_mask: b.mask!,
    item_seeds: t.tensor(BigInt64Array.from(seeds.map(BigInt))),
    ...draws,
    ...(b.pixels ? { pixel_values: b.pixels } : {}),
  };
  t.saveSafetensors(join(dir, 'batch.safetensors'), batchTensors);
  const weights = Object.fromEntries(Object.entries(model.stateDict()).filter(([k]) => !k.startsWith('text_encoder.'))); // not in the stage's path
  t.saveSafetensors(join(dir, 'weights.safetensors'), weights);
  const spec = {
    configs: { vlm: model.vlm.config, adapter: model.adapter.config, unet: model.unet.config, vae: model.vae.config },
    train: cfg.train,
    trainable: trainable.map(([n]) => n),
    groups: groups.map((g) => ({
      name: g.group.name,
      match: g.group.match,
      lr: g.group.lr,
      weight_decay: g.group.weight_decay,
    })),
    betas: cfg.optimizer.betas,
    eps: cfg.optimizer.eps,
    clip_grad_norm: cfg.clip_grad_norm,
    schedule: {
      num_train_timesteps: runner.schedule.config.numTrainTimesteps,
      beta_start: runner.schedule.config.betaStart,
      beta_end: runner.schedule.config.betaEnd,
      beta_schedule: runner.schedule.config.betaSchedule,
      rescale_betas_zero_snr: runner.schedule.config.rescaleBetasZeroSnr ?? false,
    },
    prediction_type: built.scheduler.prediction_type,
    snr_gamma: cfg.loss.snr_gamma,
  };
  writeFileSync(join(dir, 'spec.json'), JSON.stringify(spec));
  const nImages = b.pixels ? b.pixels.size(0) : 0,
    T = b.ids!.size(1);
  const nTrain = params.reduce((n, p) => n + p.numel, 0);
  log(
    `${file}: batch ${B} (${nImages} prompt images, ${T} tokens), ${nTrain.toLocaleString('en')} trainable / ${model.numParameters().toLocaleString('en')} parameters`,
  );

  // wall-clock and process CPU time (all threads: libtorch's, V8's GC helpers) of each step
  const cpuMs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  const timed = (fn: () => void): [number, number] => {
    const w0 = performance.now(),
      c0 = cpuMs();
    fn();
    return [performance.now() - w0, cpuMs() - c0];
  };
  const step = () => {
    const r = microStep(runner, items);
    const gradNorm = optimizerUpdate(opt, params, cfg.clip_grad_norm);
    return { loss: r.loss, gradNorm };
  };
  // Forward / backward / update timed apart (CPU ms; the same calls as microStep, split), for "where the time goes".
  const profile = (n: number): Record<string, number> => {
    const parts: Record<string, number[]> = { forward: [], backward: [], update: [] };
    for (let i = 0; i < n; i++) {
      t.tidy(() => {
        let loss: t.Tensor | undefined;
        parts.forward!.push(timed(() => void (loss = runner.loss(runner.batch(items)).loss).item())[1]);
        parts.backward!.push(timed(() => loss!.backward())[1]);
      });
      parts.update!.push(timed(() => optimizerUpdate(opt, params, cfg.clip_grad_norm))[1]);
    }
    return Object.fromEntries(Object.entries(parts).map(([k, xs]) => [k, median(xs)]));
  };
  const mumuRound = (firstRound: boolean): Round => {
    let first: Round['first'];
    if (firstRound) {
      // the equivalence check; these two steps are the warm-up of the first round
      const s1 = step(),
        s2 = step();
      first = { loss: s1.loss, grad_norm: s1.gradNorm, loss2: s2.loss };
    } else for (let i = 0; i < WARMUP; i++) step();
    const wall: number[] = [],
      cpu: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      const [w, c] = timed(step);
      wall.push(w);
      cpu.push(c);
    }
    return { wall_ms: median(wall), cpu_ms: median(cpu), first, ...(PROFILE ? { profile: profile(PROFILE) } : {}) };
  };
  const pyRound = (firstRound: boolean): Round | null => {
    const args = [
      join(ROOT, 'bench/peers/mumu_train_peer.py'),
      dir,
      String(threads),
      firstRound ? 'check' : String(WARMUP),
      String(STEPS),
      String(PROFILE),
    ];
    const res = spawnSync(PY, args, { encoding: 'utf8', env: process.env, maxBuffer: 1 << 24 });
    if (res.status !== 0) {
      log(`Python peer failed (${res.status}):\n${res.stderr}`);
      return null;
    }
    if (res.stderr.trim()) process.stderr.write(res.stderr);
    return JSON.parse(res.stdout.trim().split('\n').pop()!) as Round;
  };

  const pyOk = ensurePythonTorch();
  if (!pyOk) log('Python PyTorch unavailable: apt-get install python3-torch');
  const mumuRounds: Round[] = [],
    pyRounds: Round[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const m = mumuRound(r === 0);
    mumuRounds.push(m);
    log(
      `round ${r + 1}: mumu ${m.wall_ms.toFixed(0)} ms/step wall, ${m.cpu_ms.toFixed(0)} CPU ms${m.first ? `; first-step loss ${m.first.loss}` : ''}`,
    );
    const p = pyOk ? pyRound(r === 0) : null;
    if (p) {
      pyRounds.push(p);
      log(
        `round ${r + 1}: python ${p.wall_ms.toFixed(0)} ms/step wall, ${p.cpu_ms.toFixed(0)} CPU ms${p.first ? `; first-step loss ${p.first.loss}` : ''}`,
      );
    }
  }
  if (v.keep) log(`kept the peer's inputs in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
  // best (lowest) round of each side, wall and CPU apart; the profile of the CPU-best round
  const best = (rs: Round[]) => {
    if (!rs.length) return null;
    const byCpu = rs.reduce((a, b) => (b.cpu_ms < a.cpu_ms ? b : a));
    const wall = Math.min(...rs.map((r) => r.wall_ms));
    return {
      samples_per_s: (B! * 1000) / wall,
      samples_per_cpu_s: (B! * 1000) / byCpu.cpu_ms,
      wall_ms: wall,
      cpu_ms: byCpu.cpu_ms,
      profile_cpu_ms: byCpu.profile ?? null,
    };
  };
  const mumu = best(mumuRounds)!,
    py = best(pyRounds);
  const first = mumuRounds[0]!.first!,
    pyFirst = pyRounds[0]?.first;
  const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);
  // FLOPs per sample: the peer profiler's forward count x 3 (forward + backward), an estimate; and the share of the
  // machine's measured matmul rate the step reaches at mumu's speed
  const fwd = pyRounds[0]?.forward_flops,
    mm = pyRounds[0]?.matmul_gflops;
  const flopsPerSample = fwd ? (3 * fwd) / B! : null;
  return {
    config: file,
    batch: B!,
    prompt_images: nImages,
    tokens: T,
    trainable_params: nTrain,
    prediction_type: built.scheduler.prediction_type,
    zero_terminal_snr: built.scheduler.rescale_betas_zero_snr,
    snr_gamma: cfg.loss.snr_gamma,
    pooled_conditioning: model.unet.config.addition_embed_type === 'text',
    flops_per_sample_estimate: flopsPerSample,
    matmul_gflops: mm ?? null,
    machine_share: flopsPerSample && mm ? (flopsPerSample * mumu.samples_per_s) / (mm * 1e9) : null,
    mumu,
    python: py,
    ratio_wall: py ? py.wall_ms / mumu.wall_ms : null,
    ratio_cpu: py ? py.cpu_ms / mumu.cpu_ms : null,
    equivalence: pyFirst
      ? {
          mumu_loss: first.loss,
          python_loss: pyFirst.loss,
          loss_rel_diff: rel(first.loss, pyFirst.loss),
          grad_norm_rel_diff: rel(first.grad_norm, pyFirst.grad_norm),
          step2_loss_rel_diff: rel(first.loss2, pyFirst.loss2),
          python_draws_match: pyRounds[0]!.draws_match ?? null,
        }
      : null,
  };
}

const configs = ['configs/mumu-stage1.json', ...(v.full ? ['configs/mumu-stage1-full.json'] : [])];
log(
  `train step, ${threads} threads, ${WARMUP} warm-up + ${STEPS} timed steps per round, ${ROUNDS} alternating rounds, GOMP_SPINCOUNT ${process.env.GOMP_SPINCOUNT ?? 'default'}`,
);
const results = [];
for (const c of configs) results.push(await benchConfig(c));

const cpu = cpus();
const machine = `${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}`;
const date = new Date().toISOString();
const f2 = (x: number | null | undefined) => (x == null ? 'n/a' : x.toFixed(2));
const ratio = (x: number | null) => (x == null ? 'n/a' : x.toFixed(2) + 'x');
const sci = (x: number | null | undefined) => (x == null ? 'n/a' : x.toExponential(1));
const pct = (x: number | null | undefined) => (x == null ? 'n/a' : `${(100 * x).toFixed(0)}%`);
const prof = (p: Record<string, number> | null | undefined) =>
  p ? `${p.forward!.toFixed(0)} / ${p.backward!.toFixed(0)} / ${p.update!.toFixed(0)}` : 'n/a';
const section = [
  '## train',
  '',
  `\`npm run bench:train\` (bench/train.ts), ${date.slice(0, 10)}, ${machine}, ${threads} threads, libtorch ${t.torchVersion}, model ${modelLabel}`,
  '(fp32). One training step of the MUMU stage as `mumu train` runs it (trainer.ts microStep + optimizerUpdate: collate, VAE encode',
  "without grad, noise, VLM -> adapter -> UNet, the loss the model's scheduler config names (eps or v target, optional Min-SNR weights),",
  'backward, grad-norm clipping, AdamW, zero grad) on one fixed batch, vs the same',
  'model and step in plain Python PyTorch on the same libtorch (bench/peers/mumu_train_peer.py: torch.optim.AdamW, clip_grad_norm_).',
  `Best of ${ROUNDS} alternating rounds of ${STEPS}-step medians after warm-up; libgomp spin count ${process.env.GOMP_SPINCOUNT ?? 'default'} on both sides.`,
  'Two figures per side: wall-clock samples/s, and samples per CPU-second of the whole process (all threads), which other load on a',
  'shared machine changes far less. Ratios are Python time / mumu time (target >= 0.9). Loss check: first-step loss, its grad norm and',
  'the loss after one AdamW step, mumu vs Python, on the identical batch, weights and noise (relative differences).',
  '',
  '| config | batch (prompt images, tokens) | trainable params | mumu samples/s | Python samples/s | ratio | mumu samples/CPU-s | Python samples/CPU-s | ratio (CPU) | loss / grad norm / step-2 loss rel. diff | fwd / bwd / update CPU ms, mumu | same, Python |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ...results.map(
    (r) =>
      `| ${r.config} | ${r.batch} (${r.prompt_images}, ${r.tokens}) | ${r.trainable_params.toLocaleString('en')} | ${f2(r.mumu.samples_per_s)} | ${f2(r.python?.samples_per_s)} | ${ratio(r.ratio_wall)} | ${f2(r.mumu.samples_per_cpu_s)} | ${f2(r.python?.samples_per_cpu_s)} | ${ratio(r.ratio_cpu)} | ${sci(r.equivalence?.loss_rel_diff)} / ${sci(r.equivalence?.grad_norm_rel_diff)} / ${sci(r.equivalence?.step2_loss_rel_diff)} | ${prof(r.mumu.profile_cpu_ms)} | ${prof(r.python?.profile_cpu_ms)} |`,
  ),
  '',
  "Compute: FLOPs per sample are an estimate, 3 x the forward FLOPs PyTorch's profiler counts for the peer's step (ops it has",
  "formulas for: matmuls, convolutions); the share is FLOPs per sample x mumu's samples/s over this machine's matmul rate",
  '(1024 x 1024 fp32, measured by the peer in the same run).',
  '',
  '| config | target (zero terminal SNR, Min-SNR gamma, pooled conditioning) | FLOPs per sample (est.) | matmul GFLOP/s | share of the matmul rate |',
  '|---|---|---|---|---|',
  ...results.map(
    (r) =>
      `| ${r.config} | ${r.prediction_type} (${r.zero_terminal_snr ? 'yes' : 'no'}, ${r.snr_gamma ?? 'off'}, ${r.pooled_conditioning ? 'yes' : 'no'}) | ${r.flops_per_sample_estimate == null ? 'n/a' : (r.flops_per_sample_estimate / 1e9).toFixed(2) + ' G'} | ${f2(r.matmul_gflops)} | ${pct(r.machine_share)} |`,
  ),
  '',
].join('\n');
console.log(section);

const NOTES_MARK = '<!-- train notes: kept by bench/train.ts -->';
if (!v['no-record']) {
  writeSection('train', section, { notesMark: NOTES_MARK });
}

console.log(
  JSON.stringify({
    bench: 'train',
    date,
    machine,
    threads,
    libtorch: t.torchVersion,
    model: modelLabel,
    node_flags: process.execArgv.filter((a) => !a.includes('tsx')),
    gomp_spincount: process.env.GOMP_SPINCOUNT ?? null,
    warmup: WARMUP,
    steps: STEPS,
    rounds: ROUNDS,
    results,
  }),
);
