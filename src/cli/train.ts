// `mumu train --config configs/<stage>.json [--resume] [--out DIR] [--nproc N ...]`: one training stage (src/train),
// in one process, or in N worker processes (src/train/launch.ts) that meet through libtorch's c10d.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTrainConfig } from '../train/config.ts';
import { train } from '../train/trainer.ts';
import { launch, watchLauncher } from '../train/launch.ts';
import { dist } from '../torch/index.ts';
import { intFlag, parseCommand, UsageError } from './args.ts';

const BIN = fileURLToPath(new URL('../../bin/mumu.js', import.meta.url));

export const TRAIN_HELP = `Usage:
  mumu train --config configs/<stage>.json [--out DIR] [--resume] [--stop-at STEP] [--device cuda]
  mumu train --config C --print-config                                the config as the run would use it, then exit
  mumu train --config C --nproc N                                     N worker processes on this host
  mumu train --config C --nproc N --nnodes M --node-rank K --master-addr HOST --master-port PORT   (on each host)

Trains one stage (vae, t2i-base, vlm, mumu-stage1, mumu-stage2, style-finetune; docs/TRAINING.md) and writes to
DIR (default runs/<config name>): config.json, metrics.jsonl, loss.png, samples/step-N.png, checkpoints/ckpt-N/
(the last few), summary.json, and model/ (a model folder) when the stage completes.

Options:
  --config       the stage config (JSON); "extends": "other.json" in it starts from that file (docs/TRAINING.md)
  --print-config print the config as read (extends merged, defaults filled in, paths made absolute) and exit
  --out          run folder (default runs/<config file name without .json>)
  --resume       continue from the newest intact checkpoint in DIR (weights, optimiser, RNG and data position)
  --stop-at      stop after this optimizer step, writing the model too (the schedule still spans the config's steps); resume later
  --progress     force the progress bar on (default: when stderr is a terminal)
  --device       cpu (default) or cuda[:N]: train on a GPU (needs a libtorch with CUDA, e.g. PyTorch's; README)

Several processes (data parallel, docs/TRAINING.md "Distributed"; like torchrun):
  --nproc        worker processes on this host (default 1), each with MUMU_NUM_THREADS = cores / N
  --nnodes       hosts taking part (default 1); run the same command on each, with its own --node-rank
  --node-rank    this host's index, 0..nnodes-1 (node 0 hosts the rendezvous store)
  --master-addr  node 0's address (default 127.0.0.1; required with --nnodes > 1)
  --master-port  node 0's store port (default: a free port; required with --nnodes > 1)
  batch_size is the global batch of a step: each of the N ranks takes batch_size / N of it (it must divide by
  N x grad_accum), and the losses and weights are those of one process. Rank 0 writes DIR; --resume works with
  any N. A worker that fails stops the job with its exit status; Ctrl-C / SIGTERM reach every worker, and all stop
  after the same step with one checkpoint. MUMU_DIST_TIMEOUT_S (default 60) bounds every wait for the other ranks
  in a step, MUMU_DIST_RANK0_TIMEOUT_S (default 1800) their wait for rank 0's checkpoints, samples and export.
  When torchrun's environment is set (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), this process is that rank and
  starts no workers.
`;

export async function runTrain(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, {
    command: 'train',
    help: TRAIN_HELP,
    options: {
      config: { type: 'string' },
      'print-config': { type: 'boolean' },
      out: { type: 'string' },
      resume: { type: 'boolean' },
      'stop-at': { type: 'string' },
      progress: { type: 'boolean' },
      device: { type: 'string' },
      nproc: { type: 'string' },
      nnodes: { type: 'string' },
      'node-rank': { type: 'string' },
      'master-addr': { type: 'string' },
      'master-port': { type: 'string' },
    },
  });
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.config) throw new UsageError('--config FILE is required', 'train');
  const nproc = intFlag('nproc', v.nproc, 1, 1024) ?? 1;
  const nnodes = intFlag('nnodes', v.nnodes, 1, 65536) ?? 1;
  const nodeRank = intFlag('node-rank', v['node-rank'], 0, nnodes - 1) ?? 0;
  const masterPort = intFlag('master-port', v['master-port'], 1, 65535);
  if (nnodes > 1 && (!v['master-addr'] || masterPort === undefined))
    throw new UsageError(
      "--nnodes > 1 needs --master-addr and --master-port (node 0's address and a free port there)",
      'train',
    );
  const stopAt = intFlag('stop-at', v['stop-at'], 1);
  if (v.device !== undefined && !/^(cpu|cuda(:\d+)?)$/.test(v.device))
    throw new UsageError(`--device must be cpu, cuda or cuda:N, got '${v.device}'`, 'train');
  const cfg = readTrainConfig(v.config);
  if (v['print-config']) {
    process.stdout.write(JSON.stringify(cfg, null, 2) + '\n');
    return 0;
  }
  const out = v.out ?? path.join('runs', path.basename(v.config).replace(/\.json$/, ''));
  const opts = { out, resume: v.resume ?? false, stopAt, progress: v.progress, device: v.device };

  const env = dist.launchEnv();
  const world = env?.worldSize ?? nproc * nnodes;
  if (cfg.batch_size % (world * cfg.grad_accum) !== 0)
    throw new UsageError(
      `batch_size ${cfg.batch_size} (the global batch of a step) must divide by the ${world} ranks x grad_accum ${cfg.grad_accum}`,
      'train',
    );
  // V8's parallel GC threads take cores from libtorch: measured 4.1 vs 5.0 samples/s on the MUMU stage (TRAINING.md).
  // The flag cannot be set once node runs (v8.setFlagsFromString aborts in the next GC), so say how to pass it.
  if (!process.execArgv.includes('--single-threaded-gc'))
    process.stderr.write(
      'mumu train: node runs without --single-threaded-gc, which trains ~20% faster: use `npm run train -- ...` or `node --single-threaded-gc bin/mumu.js train ...`\n',
    );
  if (!env && (nproc > 1 || nnodes > 1)) {
    const workerArgs = [
      'train',
      '--config',
      v.config,
      '--out',
      out,
      ...(v.resume ? ['--resume'] : []),
      ...(stopAt !== undefined ? ['--stop-at', String(stopAt)] : []),
      ...(v.progress ? ['--progress'] : []),
      ...(v.device ? ['--device', v.device] : []),
    ];
    const r = await launch({
      nproc,
      nnodes,
      nodeRank,
      masterAddr: v['master-addr'],
      masterPort,
      command: [process.execPath, '--single-threaded-gc', BIN, ...workerArgs],
    });
    if (r.message) process.stderr.write(`mumu train: ${r.message}\n`);
    return r.code;
  }

  if (env) {
    // a worker: of `mumu train --nproc`, or of torchrun / a cluster launcher that set the same variables
    if (!process.env.MUMU_LAUNCHER_PID && (v.nproc || v.nnodes))
      process.stderr.write(
        `torchrun environment found (RANK=${env.rank}, WORLD_SIZE=${env.worldSize}): running as that rank, --nproc/--nnodes ignored\n`,
      );
    watchLauncher();
    const pg = await dist.initProcessGroup();
    process.stderr.write(
      `rank ${pg.rank} of ${pg.worldSize} (local rank ${pg.localRank}, ${pg.backend}) joined the group\n`,
    );
    // data parallel (src/train/ddp.ts): each rank a share of every step's batch, gradients summed over the ranks;
    // rank 0 writes the run folder, the other ranks nothing
    const r = await train(cfg, { ...opts, group: pg });
    await dist.barrier();
    await dist.destroy();
    process.stdout.write(
      `${cfg.stage}: ${r.steps} steps, wall ${r.wallSeconds.toFixed(0)} s${r.modelDir ? `, model ${r.modelDir}` : ''}\n`,
    );
    return 0;
  }

  const r = await train(cfg, opts);
  process.stdout.write(
    `${cfg.stage}: ${r.steps} steps, wall ${r.wallSeconds.toFixed(0)} s, data wait ${(100 * r.dataWaitFraction).toFixed(1)}% of step time${r.modelDir ? `, model ${r.modelDir}` : ''}\n`,
  );
  return 0;
}
