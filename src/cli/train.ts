// `mumu train --config configs/<stage>.json [--resume] [--out DIR]`: one training stage (src/train).
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readTrainConfig } from '../train/config.ts';
import { train } from '../train/trainer.ts';
import { intFlag, UsageError } from './errors.ts';

export const TRAIN_HELP = `Usage:
  mumu train --config configs/<stage>.json [--out DIR] [--resume] [--stop-at STEP] [--device cuda]

Trains one stage (vae, t2i-base, vlm, mumu-stage1, mumu-stage2, style-finetune; docs/TRAINING.md) and writes to
DIR (default runs/<config name>): config.json, metrics.jsonl, loss.png, samples/step-N.png, checkpoints/ckpt-N/
(the last few), summary.json, and model/ (a model folder) when the stage completes.

Options:
  --config    the stage config (JSON)
  --out       run folder (default runs/<config file name without .json>)
  --resume    continue from the newest intact checkpoint in DIR (weights, optimiser, RNG and data position)
  --stop-at   stop after this optimizer step (the schedule still spans the config's steps); resume later
  --progress  force the progress bar on (default: when stderr is a terminal)
  --device    cpu (default) or cuda[:N]: train on a GPU (needs a libtorch with CUDA, e.g. PyTorch's; README)
`;

export async function runTrain(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        config: { type: 'string' }, out: { type: 'string' }, resume: { type: 'boolean' }, 'stop-at': { type: 'string' },
        progress: { type: 'boolean' }, device: { type: 'string' }, help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError((e as Error).message, 'train');
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(TRAIN_HELP);
    return 0;
  }
  if (!v.config) throw new UsageError('--config FILE is required', 'train');
  const cfg = readTrainConfig(v.config);
  const out = v.out ?? path.join('runs', path.basename(v.config).replace(/\.json$/, ''));
  if (v.device !== undefined && !/^(cpu|cuda(:\d+)?)$/.test(v.device)) throw new UsageError(`--device must be cpu, cuda or cuda:N, got '${v.device}'`, 'train');
  const r = await train(cfg, { out, resume: v.resume ?? false, stopAt: intFlag('stop-at', v['stop-at'], 1), progress: v.progress, device: v.device });
  process.stdout.write(`${cfg.stage}: ${r.steps} steps, wall ${r.wallSeconds.toFixed(0)} s, data wait ${(100 * r.dataWaitFraction).toFixed(1)}% of step time${r.modelDir ? `, model ${r.modelDir}` : ''}\n`);
  return 0;
}
