// `mumu train --config configs/<stage>.json [--resume] [--out DIR]`: one training stage (src/train).
import path from 'node:path';
import { readTrainConfig } from '../train/config.ts';
import { train } from '../train/trainer.ts';
import { intFlag, parseCommand, UsageError } from './args.ts';

export const TRAIN_HELP = `Usage:
  mumu train --config configs/<stage>.json [--out DIR] [--resume] [--stop-at STEP]

Trains one stage (vae, t2i-base, vlm, mumu-stage1, mumu-stage2, style-finetune; docs/TRAINING.md) and writes to
DIR (default runs/<config name>): config.json, metrics.jsonl, loss.png, samples/step-N.png, checkpoints/ckpt-N/
(the last few), summary.json, and model/ (a model folder) when the stage completes.

Options:
  --config    the stage config (JSON)
  --out       run folder (default runs/<config file name without .json>)
  --resume    continue from the newest intact checkpoint in DIR (weights, optimiser, RNG and data position)
  --stop-at   stop after this optimizer step (the schedule still spans the config's steps); resume later
  --progress  force the progress bar on (default: when stderr is a terminal)
`;

export async function runTrain(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, {
    command: 'train',
    help: TRAIN_HELP,
    options: { config: { type: 'string' }, out: { type: 'string' }, resume: { type: 'boolean' }, 'stop-at': { type: 'string' }, progress: { type: 'boolean' } },
  });
  if (!parsed) return 0;
  const v = parsed.values;
  if (!v.config) throw new UsageError('--config FILE is required', 'train');
  const stopAt = intFlag('stop-at', v['stop-at'], 1);
  const cfg = readTrainConfig(v.config);
  const out = v.out ?? path.join('runs', path.basename(v.config).replace(/\.json$/, ''));
  const r = await train(cfg, { out, resume: v.resume ?? false, stopAt, progress: v.progress });
  process.stdout.write(`${cfg.stage}: ${r.steps} steps, wall ${r.wallSeconds.toFixed(0)} s, data wait ${(100 * r.dataWaitFraction).toFixed(1)}% of step time${r.modelDir ? `, model ${r.modelDir}` : ''}\n`);
  return 0;
}
