// The training loop shared by every stage: AdamW with per-group learning rates and weight decay, warm-up then cosine
// (or constant) schedule, gradient accumulation and clipping, optional EMA of the trainable weights, seeded
// everything; checkpoints every N steps (resumable exactly), metrics as JSONL, a loss plot and sample grids. One
// process, or one rank of several (data parallel, src/train/ddp.ts): batch_size is the global batch of a step.
import fs from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { AdamW, Generator, clipGradNorm, manualSeed, noGrad, tidy, keep, cuda, type Tensor } from '../torch/index.ts';
import type { ProcessGroup } from '../torch/distributed.ts';
import type { MumuModel } from '../models/index.ts';
import { savePretrained } from '../pipeline.ts';
import { encodePng, gridRows } from '../image/index.ts';
import { lrFactor, emaDecay, type TrainConfig } from './config.ts';
import { StageData, Prefetcher, type Item } from './data.ts';
import { buildModel, applyPlan, paramGroups, StageRunner, type Built } from './stages.ts';
import { listCheckpoints, resumeTrainState, saveTrainState, type TrainState, type Resumed } from './checkpoint.ts';
import { DataParallel } from './ddp.ts';
import { plotLoss } from '../plot.ts';
import { readMetrics, recordStep, type MetricRecord } from './metrics.ts';

export type { MetricRecord };

export interface TrainOptions {
  out: string;
  resume?: boolean;
  // stop after this many optimizer steps in total (the schedule still spans cfg.steps); for tests and time boxes
  stopAt?: number;
  log?: (line: string) => void;
  progress?: boolean;
  // 'cpu' (default) or 'cuda' / 'cuda:N': the model, batches and random draws live there (the Generator stays on the
  // CPU, so a run draws the same numbers on any device); with several ranks, 'cuda' is cuda:<local rank>
  device?: string;
  // this process's rank of a data-parallel job (dist.initProcessGroup); none: a single process
  group?: ProcessGroup | null;
}

export interface TrainResult {
  steps: number;
  startedAt: number;
  metrics: MetricRecord[];
  wallSeconds: number;
  dataWaitFraction: number;
  modelDir: string | null;
  resumedFrom: number | null;
}

// The pieces of one training step, exported so bench/train.ts times exactly what train() runs.
// AdamW over the config's parameter groups (regex over parameter names, per-group lr and weight decay).
export function buildOptimizer(
  model: MumuModel,
  cfg: TrainConfig,
): { groups: ReturnType<typeof paramGroups>; trainable: [string, Tensor][]; opt: AdamW } {
  const groups = paramGroups(model, cfg.optimizer.groups);
  const trainable = groups.flatMap((g) => g.params);
  const opt = new AdamW(
    groups.map((g) => ({
      name: g.group.name,
      params: g.params.map(([, p]) => p),
      lr: g.group.lr,
      weightDecay: g.group.weight_decay,
      betas: cfg.optimizer.betas,
      eps: cfg.optimizer.eps,
    })),
  );
  return { groups, trainable, opt };
}

// One micro-batch: collate, forward, loss, backward; gradients accumulate. `weight` is the micro-batch's share of the
// step's loss count over every micro-batch and rank (runner.lossCount), so the accumulated gradient, summed over the
// ranks, is the gradient of the step's mean loss. Returns the weighted loss (the sum of them is the step's loss).
export function microStep(
  runner: StageRunner,
  items: Item[],
  weight = 1,
): { loss: number; parts: Record<string, number>; dropped: number } {
  return tidy(() => {
    const b = runner.batch(items);
    const { loss, parts: p } = runner.loss(b);
    (weight === 1 ? loss : loss.mul(weight)).backward();
    return {
      loss: loss.item() * weight,
      parts: Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.item() * weight])),
      dropped: b.dropped,
    };
  });
}

// The update after the micro-batches: clip the joint gradient norm, AdamW, drop the gradients. Returns the norm.
export function optimizerUpdate(opt: AdamW, params: Tensor[], clip: number | null): number {
  const gradNorm = clipGradNorm(params, clip ?? Infinity);
  opt.stepOnce();
  opt.zeroGrad();
  return gradNorm;
}

export async function train(cfg: TrainConfig, o: TrainOptions): Promise<TrainResult> {
  const dp = new DataParallel(o.group ?? null);
  const main = dp.isMain; // rank 0 (or the only process) writes the run folder; the other ranks write nothing
  const log = main ? (o.log ?? ((l: string) => process.stderr.write(l + '\n'))) : () => {};
  const out = path.resolve(o.out);
  const ckptDir = path.join(out, 'checkpoints');
  const metricsFile = path.join(out, 'metrics.jsonl');
  const N = dp.worldSize;
  if (cfg.batch_size % (N * cfg.grad_accum) !== 0)
    throw new Error(
      `batch_size ${cfg.batch_size} (the global batch of a step) must divide by world size ${N} x grad_accum ${cfg.grad_accum}`,
    );
  if (main) {
    fs.mkdirSync(path.join(out, 'samples'), { recursive: true });
    if (!o.resume && listCheckpoints(ckptDir).length)
      throw new Error(`${out} already has checkpoints: pass --resume to continue, or choose another --out`);
    fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  }

  manualSeed(cfg.seed);
  const built = await buildModel(cfg);
  const { model } = built;
  applyPlan(model, cfg);
  // several ranks on one host: one GPU each when there are enough (NCCL needs that), else they share
  const device =
    o.device === 'cuda' && dp.group && cuda.isAvailable()
      ? `cuda:${dp.group.localRank % cuda.deviceCount()}`
      : (o.device ?? 'cpu');
  if (device !== 'cpu') {
    if (!cuda.isAvailable())
      throw new Error(
        `device '${device}': ${cuda.compiled ? 'this libtorch build has CUDA but sees no GPU' : 'this libtorch build has no CUDA support'}`,
      );
    model.to(device);
  }
  const runner = new StageRunner(cfg, built, device);
  const { groups, trainable, opt } = buildOptimizer(model, cfg);
  const ema = cfg.ema && main ? new Map(trainable.map(([n, p]) => [n, keep(p.detach().clone())])) : null;
  const state: TrainState = { trainable, ema, opt };
  const counts = model.parameterCounts();
  log(
    `${cfg.stage}: ${trainable.reduce((n, [, p]) => n + p.numel, 0).toLocaleString('en')} trainable parameters in ${groups.map((g) => `${g.group.name} (${g.params.length} tensors, lr ${g.group.lr})`).join(', ')}`,
  );
  log(
    `parts: ${Object.entries(counts)
      .map(([k, v]) => `${k} ${v.trainable}/${v.total}`)
      .join(', ')}${N > 1 ? `; ${N} ranks, ${cfg.batch_size / N} items each per step` : ''}`,
  );

  // Resuming: rank 0 reads its newest checkpoint and hands the position and optimizer hyper-parameters to the others
  // (the weights and optimizer moments follow in the broadcast below), so every rank resumes from the same one.
  let resumed: Resumed | null = o.resume && main ? resumeTrainState(ckptDir, state, log) : null;
  if (N > 1) {
    resumed = await dp.broadcastJson(resumed);
    if (resumed && !main) opt.loadStateDict({ ...resumed.optimizer, tensors: opt.stateDict().tensors });
    await dp.broadcastModel(model, resumed ? Object.values(opt.stateDict().tensors) : []);
  }
  let step = resumed?.step ?? 0,
    micro = resumed?.micro ?? 0;
  const resumedFrom = resumed ? step : null;
  // metrics after the resumed step were made by a run whose later state is lost: drop them
  const metrics = main ? readMetrics(metricsFile).filter((m) => m.step <= step) : [];
  if (main) fs.writeFileSync(metricsFile, metrics.map((m) => JSON.stringify(m) + '\n').join(''));

  const data = await StageData.open(cfg, runner.prompt);
  const prefetch = new Prefetcher((k) => data.batchItems(k, dp.rank, N), cfg.data.prefetch);
  const sampleItems: Item[] = main && cfg.samples.every > 0 ? await runner.sampleItems(data) : [];

  const end = Math.min(cfg.steps, o.stopAt ?? cfg.steps);
  const useBar = main && (o.progress ?? process.stderr.isTTY);
  const bar = useBar
    ? new cliProgress.SingleBar(
        {
          format: `${cfg.stage} |{bar}| {value}/{total} | loss {loss} | {ips} it/s | wait {wait}% | ETA {eta_formatted}`,
          etaBuffer: 50,
          hideCursor: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(cfg.steps, step, { loss: '-', ips: '-', wait: '-' });
  const t0 = performance.now();
  const elapsedBefore = metrics.at(-1)?.elapsed_s ?? 0;
  const time = { wait: 0, total: 0 };

  const writeSamples = async (s: number) => {
    if (!sampleItems.length) return;
    const { rows, text } = await withWeights(ema, trainable, () => runner.samples(sampleItems));
    if (rows.length)
      await fs.promises.writeFile(
        path.join(out, 'samples', `step-${String(s).padStart(6, '0')}.png`),
        await encodePng(gridRows(rows), {}, { palette: true }),
      );
    if (text.length)
      await fs.promises.writeFile(
        path.join(out, 'samples', `step-${String(s).padStart(6, '0')}.txt`),
        text.join('\n') + '\n',
      );
  };

  let savedAt = step; // the resumed checkpoint, or nothing at step 0
  // rank 0 writes it; the others wait (every rank calls this at the same steps)
  const checkpoint = async () => {
    await dp.rank0(`checkpoint at step ${step}`, () =>
      saveState(ckptDir, cfg, state, { step, micro, metrics, worldSize: N }, out),
    );
    savedAt = step;
  };

  if (step === 0 && cfg.samples.every > 0) await dp.rank0('samples at step 0', () => writeSamples(0));
  // SIGINT / SIGTERM: finish the step in flight, checkpoint, export the model as it is, exit cleanly (a time box).
  // With several ranks the request rides with the next step's gradients, so all of them stop after that step.
  let stopRequested = false,
    stopping = false;
  // A second Ctrl-C quits at once; a repeated SIGTERM does not (`pkill -f` reaches a launcher's workers both directly and
  // through the launcher, and quitting then would lose the checkpoint; the launcher escalates to SIGKILL after 30 s).
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested && signal === 'SIGINT') process.exit(130);
    if (stopRequested) return;
    stopRequested = true;
    log('stop requested: finishing this step, then checkpoint and export');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  while (step < end && !stopping) {
    // one turn of the event loop per step: signals are delivered and the prefetched batches' I/O callbacks run
    // (awaiting an already-settled promise alone never leaves the microtask queue)
    await new Promise((r) => setImmediate(r));
    if (N === 1 && stopRequested) break;
    const ts = performance.now();
    const factor = lrFactor(cfg.schedule, step, cfg.steps);
    opt.groups.forEach((g, i) => (g.lr = groups[i]!.group.lr * factor));
    const r = await optimizerStep(cfg, runner, state, dp, prefetch, micro, step, () => stopRequested);
    stopping = r.stopping;
    micro += cfg.grad_accum;
    step++;
    const stepS = (performance.now() - ts) / 1000;
    time.wait += r.wait;
    time.total += stepS;
    // every rank holds the summed loss, so all of them stop here together
    if (!Number.isFinite(r.lossSum))
      throw new Error(`loss is ${r.lossSum} at step ${step}: training diverged (lower the learning rates?)`);
    if (main) {
      const rec: MetricRecord = {
        step,
        loss: r.lossSum,
        ...(Object.keys(r.parts).length ? { parts: r.parts } : {}),
        lr: Object.fromEntries(opt.groups.map((g) => [g.name, g.lr])),
        grad_norm: r.gradNorm,
        step_s: stepS,
        data_wait_s: r.wait,
        samples_per_s: cfg.batch_size / stepS,
        dropped: r.dropped,
        elapsed_s: elapsedBefore + (performance.now() - t0) / 1000,
        ...(r.allreduceS !== undefined ? { allreduce_s: r.allreduceS } : {}),
      };
      recordStep(cfg, rec, { metrics, metricsFile, time, bar, end, log });
    }

    if (step % cfg.checkpoint.every === 0 || step === end || stopping) await checkpoint();
    if (cfg.samples.every > 0 && (step % cfg.samples.every === 0 || step === end))
      await dp.rank0(`samples at step ${step}`, () => writeSamples(step));
  }
  bar?.stop();
  // a stop that arrived between steps: the last finished step is not checkpointed yet
  if (savedAt !== step) await checkpoint();

  // every part of a run ends with a loadable model folder (time-boxed parts too: A/B arms are scored from it),
  // written by rank 0
  const modelDir: string | null = main ? path.join(out, 'model') : null;
  await dp.rank0('the export', () => exportModel(modelDir!, cfg, built, state, runner, data, log));
  const summary = {
    stage: cfg.stage,
    steps: step,
    of_steps: cfg.steps,
    stopped_early: step < cfg.steps,
    resumed_from: resumedFrom,
    world_size: N,
    final_loss: metrics.slice(-20).reduce((a, m) => a + m.loss, 0) / Math.max(1, metrics.slice(-20).length),
    wall_s_this_process: time.total,
    total_elapsed_s: metrics.at(-1)?.elapsed_s ?? 0,
    data_wait_fraction: time.total ? time.wait / time.total : 0,
    samples_per_s: time.total ? ((step - (resumedFrom ?? 0)) * cfg.batch_size) / time.total : 0,
  };
  if (main) fs.writeFileSync(path.join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  // only now: a repeated SIGTERM during the last checkpoint, the export or the summary would otherwise kill the run
  // before its model (seen: pkill -f signals a launcher's workers twice)
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  return {
    steps: step,
    startedAt: resumedFrom ?? 0,
    metrics,
    wallSeconds: time.total,
    dataWaitFraction: summary.data_wait_fraction,
    modelDir,
    resumedFrom,
  };
}

// The model folder: the EMA weights in place of the trained ones, the VAE's latent scale measured (vae stage), cast
// to the export dtype.
async function exportModel(
  dir: string,
  cfg: TrainConfig,
  built: Built,
  s: TrainState,
  runner: StageRunner,
  data: StageData,
  log: (l: string) => void,
): Promise<string> {
  const { model } = built;
  const ema = s.ema;
  if (ema)
    noGrad(() => {
      for (const [n, p] of s.trainable) p.copy_(ema.get(n)!);
    });
  if (cfg.stage === 'vae') await setLatentScale(runner, data, log);
  if (cfg.export.dtype !== 'float32') model.to(cfg.export.dtype);
  await savePretrained(model, dir, {
    tokenizer: built.tokenizerJson,
    scheduler: built.scheduler,
    processor: { max_images: cfg.stage === 'mumu-stage2' ? 1 : 4, reference_size: cfg.data.reference_size },
  });
  log(`model written to ${dir}`);
  return dir;
}

// One optimizer step: this rank's grad_accum micro-batches from `micro` on (the wait for the prefetcher measured),
// each weighted by its share of the step's loss count over every micro-batch and rank; with several ranks the
// gradients, the loss and its parts, the dropped count and any rank's stop request summed over the ranks; then the
// update and the EMA.
async function optimizerStep(
  cfg: TrainConfig,
  runner: StageRunner,
  s: TrainState,
  dp: DataParallel,
  prefetch: Prefetcher,
  micro: number,
  step: number,
  stopRequested: () => boolean,
) {
  const N = dp.worldSize;
  let lossSum = 0,
    wait = 0,
    dropped = 0;
  const parts: Record<string, number> = {};
  const batches: Item[][] = [];
  for (let j = 0; j < cfg.grad_accum; j++) {
    const tw = performance.now();
    batches.push(await prefetch.get(micro + j));
    wait += (performance.now() - tw) / 1000;
  }
  // the step's loss count over every micro-batch and rank: the global batch for item means, summed for token means
  const localCounts = batches.map((items) => runner.lossCount(items));
  const local = localCounts.reduce((a, b) => a + b, 0);
  const total = N === 1 ? local : runner.countsTokens ? await dp.sum(local) : cfg.batch_size;
  for (const [j, items] of batches.entries()) {
    const r = microStep(runner, items, localCounts[j]! / total);
    dropped += r.dropped;
    lossSum += r.loss;
    for (const [k, v] of Object.entries(r.parts)) parts[k] = (parts[k] ?? 0) + v;
  }
  const params = s.trainable.map(([, p]) => p);
  let allreduceS: number | undefined,
    stopping = stopRequested();
  if (N > 1) {
    const names = Object.keys(parts).sort();
    const r = await dp.reduceGradients(params, [lossSum, ...names.map((k) => parts[k]!), dropped, stopping ? 1 : 0]);
    [lossSum, dropped] = [r.stats[0]!, r.stats[names.length + 1]!];
    names.forEach((k, i) => (parts[k] = r.stats[i + 1]!));
    stopping = r.stats[names.length + 2]! > 0;
    allreduceS = r.seconds;
  }
  const gradNorm = optimizerUpdate(s.opt, params, cfg.clip_grad_norm);
  const ema = s.ema;
  if (ema) {
    const d = emaDecay(cfg.ema!, step);
    noGrad(() => {
      for (const [n, p] of s.trainable) ema.get(n)!.lerp_(p, 1 - d);
    });
  }
  return { lossSum, parts, wait, dropped, gradNorm, allreduceS, stopping };
}

// A checkpoint of the state after `at.step`, the oldest pruned past checkpoint.keep, and the loss plot redrawn.
async function saveState(
  ckptDir: string,
  cfg: TrainConfig,
  s: TrainState,
  at: { step: number; micro: number; metrics: MetricRecord[]; worldSize: number },
  out: string,
): Promise<void> {
  saveTrainState(ckptDir, s, {
    step: at.step,
    micro: at.micro,
    keep: cfg.checkpoint.keep,
    extra: { stage: cfg.stage, loss: at.metrics.at(-1)?.loss ?? null, world_size: at.worldSize },
  });
  await plotLoss(path.join(out, 'loss.png'), `${cfg.stage}: training loss`, [
    { name: 'loss', color: '#1f5fbf', points: at.metrics.map((m) => [m.step, m.loss]) },
  ]);
}

// Runs f with the EMA weights in place of the trained ones (the weights the export will hold), then puts the
// trained ones back; without EMA, f runs on the trained weights.
async function withWeights<T>(
  ema: Map<string, Tensor> | null,
  trainable: [string, Tensor][],
  f: () => Promise<T>,
): Promise<T> {
  if (!ema) return f();
  const saved = noGrad(() =>
    trainable.map(([n, p]) => {
      const copy = keep(p.detach().clone());
      p.copy_(ema.get(n)!);
      return copy;
    }),
  );
  try {
    return await f();
  } finally {
    noGrad(() =>
      trainable.forEach(([, p], i) => {
        p.copy_(saved[i]!);
        saved[i]!.dispose();
      }),
    );
  }
}

// SD scales latents to about unit variance for the diffusion model (scaling_factor 0.18215 for SD's VAE); a VAE
// trained here gets its own factor, 1 / std of the latents of 4 batches of held-aside training images.
async function setLatentScale(runner: StageRunner, data: StageData, log: (l: string) => void): Promise<void> {
  const vae = runner.model.vae;
  let sum = 0,
    sq = 0,
    n = 0;
  for (let k = 0; k < 4; k++) {
    const items = await data.batchItems(Math.floor(2_000_000_000 / data.cfg.batch_size) + k);
    noGrad(() =>
      tidy(() => {
        const z = vae.encode(runner.batch(items).images!).sample(new Generator(k));
        sum += z.sum().item();
        sq += z.square().sum().item();
        n += z.numel;
      }),
    );
  }
  const std = Math.sqrt(sq / n - (sum / n) ** 2);
  (vae.config as { scaling_factor: number }).scaling_factor = Number((1 / std).toPrecision(5));
  log(`latent std ${std.toPrecision(4)}: scaling_factor ${vae.config.scaling_factor}`);
}
