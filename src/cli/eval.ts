// `mumu eval`: scores a model folder on fixed tasks with the independent evaluator (src/eval) and writes
// docs/RESULTS.md plus PNG grids; `--train-evaluator` (re)trains that evaluator.
import path from 'node:path';
import { intFlag, parseCommand, UsageError } from './args.ts';
import type { EvaluatorReport } from '../eval/evaluator.ts';

export const EVAL_HELP = `Usage:
  mumu eval --model DIR [--suite quick|full|FILE.json] [--out FILE.md] [--grids DIR] [--evaluator DIR]
            [--base DIR] [--finetune DIR] [--steps N] [--systems LIST]
  mumu eval --no-model [--suite ...]   (scores only the EmojiWorld renders: the metrics' reference points)
  mumu eval --train-evaluator [--evaluator DIR] [--init DIR] [--train-steps N] [--batch N]
  mumu eval --report-evaluator [--evaluator DIR]

Scores a MUMU model folder on fixed tasks with fixed prompts and seeds (configs/eval-<suite>.json): same-image
crops, harmonisation across styles, style transfer from a style image, tokens per image (reference detail, and
references encoded at other sides = other token counts), MUMU merged into a style fine-tune (its LoRA, or its
weight delta from --base), character consistency; next to the text-only base model and the "describe the
images" baseline. The judge is an independent CNN (models/evaluator), never trained with any generator. Writes a Markdown report
(default docs/RESULTS.md) and PNG grids (references beside outputs; default docs/results/).

Options:
  --model            the model folder to evaluate
  --no-model         no generator: write the report with the render rows only (generator rows 'pending')
  --suite            quick (default), full, or a suite JSON file
  --out              report file (default docs/RESULTS.md)
  --grids            folder for the PNG grids (default: 'results' beside the report)
  --evaluator        evaluator folder (default models/evaluator)
  --base             the text-only base: a model folder (its text encoder and UNet) or a UNet folder (with --model's
                     text encoder). Default: --model's base_unet/ when it has one (a shipped model carries the UNet
                     its MUMU stage started from), else the text encoder and the LoRA-free UNet in --model. For a
                     fully trained MUMU UNet also the W_base of the merge task (fine-tune + MUMU - base)
  --finetune         a style fine-tune model folder for the merge task (default: the suite's, if it exists)
  --steps            sampling steps (default: the suite's)
  --systems          generate only these systems, comma-separated: mumu, mumu-caption, text-only, describe,
                     lora-merge (default: all; the others are reported as left out). An A/B of two MUMU stages
                     needs only mumu,mumu-caption: the baselines are the same for both
  --train-evaluator  train the evaluator instead (writes DIR/config.json, model.safetensors, report.json)
  --report-evaluator measure the evaluator on held-out renders again (rewrites DIR/report.json)
  --init             continue training this evaluator folder (lr 1e-3, new samples) instead of starting afresh
  --train-steps      evaluator training steps (default 5000)
  --batch            evaluator batch size (default 64)
`;

function printReport(report: EvaluatorReport): void {
  for (const row of report.rows) {
    process.stdout.write(
      `${row.set}: n=${row.n} top1 ${(100 * row.top1).toFixed(1)}% top5 ${(100 * row.top5).toFixed(1)}%${row.vocabTop1 === null ? '' : ` suite-vocab top1 ${(100 * row.vocabTop1).toFixed(1)}%`} style ${(100 * row.style).toFixed(1)}%\n`,
    );
  }
}

export async function runEval(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, {
    command: 'eval',
    help: EVAL_HELP,
    options: {
      model: { type: 'string' },
      suite: { type: 'string' },
      out: { type: 'string' },
      grids: { type: 'string' },
      evaluator: { type: 'string' },
      finetune: { type: 'string' },
      base: { type: 'string' },
      steps: { type: 'string' },
      systems: { type: 'string' },
      'no-model': { type: 'boolean' },
      'report-evaluator': { type: 'boolean' },
      'train-evaluator': { type: 'boolean' },
      init: { type: 'string' },
      'train-steps': { type: 'string' },
      batch: { type: 'string' },
    },
  });
  if (!parsed) return 0;
  const v = parsed.values;
  const evaluatorDir = v.evaluator ?? 'models/evaluator';
  if (v['train-evaluator']) {
    const { newEvaluator, trainEvaluator, evaluatorReport } = await import('../eval/evaluator.ts');
    const { readSuite } = await import('../eval/tasks.ts');
    const steps = intFlag('train-steps', v['train-steps'], 1) ?? 5000;
    const batchSize = intFlag('batch', v.batch, 1) ?? 64;
    const init = v.init;
    const m = newEvaluator({ init });
    const log = (s: string) => process.stderr.write(s + '\n');
    const vocabulary = readSuite('quick').vocabulary;
    const focus = { slugs: vocabulary, fraction: 0.5 };
    const sceneFraction = 0.3,
      emptyFraction = 0.1;
    const lr = init ? 1e-3 : 2e-3;
    const dataSeed = init ? 3 : 1; // a continued run sees new samples
    const previous = init
      ? ((
          JSON.parse((await import('node:fs')).readFileSync(path.join(init, 'config.json'), 'utf8')) as {
            _trained?: unknown;
          }
        )._trained ?? null)
      : null;
    const r = trainEvaluator(m, { steps, batchSize, focus, sceneFraction, emptyFraction, lr, dataSeed, log });
    const report = evaluatorReport(m, { vocabulary });
    m.save(evaluatorDir, {
      _trained: {
        steps,
        batch_size: batchSize,
        lr,
        focus,
        scene_fraction: sceneFraction,
        empty_fraction: emptyFraction,
        data_seed: dataSeed,
        seconds: Math.round(r.seconds),
        final_loss: r.finalLoss,
        ...(previous ? { continued_from: previous } : {}),
      },
    });
    const fs = await import('node:fs');
    fs.writeFileSync(path.join(evaluatorDir, 'report.json'), JSON.stringify(report, null, 1) + '\n');
    printReport(report);
    return 0;
  }
  if (v['report-evaluator']) {
    const { EmojiEvaluator, evaluatorReport } = await import('../eval/evaluator.ts');
    const { readSuite } = await import('../eval/tasks.ts');
    const report = evaluatorReport(EmojiEvaluator.load(evaluatorDir), { vocabulary: readSuite('quick').vocabulary });
    const fs = await import('node:fs');
    fs.writeFileSync(path.join(evaluatorDir, 'report.json'), JSON.stringify(report, null, 1) + '\n');
    printReport(report);
    return 0;
  }
  if (!v.model && !v['no-model'])
    throw new UsageError('--model DIR is required (or --no-model, or --train-evaluator)', 'eval');
  if (v.model && v['no-model']) throw new UsageError('give --model DIR or --no-model, not both', 'eval');
  const { GENERATED_SYSTEMS: known } = await import('../eval/aggregate.ts');
  const systems = v.systems?.split(',').map((s) => s.trim());
  const unknown = systems?.filter((s) => !(known as readonly string[]).includes(s));
  if (unknown?.length)
    throw new UsageError(`--systems: unknown system ${unknown.join(', ')} (choose from ${known.join(', ')})`, 'eval');
  const { runSuite } = await import('../eval/report.ts');
  const out = v.out ?? 'docs/RESULTS.md';
  // the report's first line: the command that reproduces it, every option given (a report written to another file
  // than docs/RESULTS.md must say so)
  const given = { model: v.model, suite: v.suite, out: v.out, grids: v.grids, evaluator: v.evaluator, base: v.base };
  const more = { finetune: v.finetune, steps: v.steps, systems: v.systems };
  const command = [
    'mumu eval',
    ...(v['no-model'] ? ['--no-model'] : []),
    ...Object.entries({ ...given, ...more }).flatMap(([k, x]) => (x === undefined ? [] : [`--${k} ${x}`])),
  ].join(' ');
  await runSuite({
    model: v.model,
    suite: v.suite ?? 'quick',
    out,
    grids: v.grids ?? path.join(path.dirname(out), 'results'),
    evaluator: evaluatorDir,
    finetune: v.finetune,
    base: v.base,
    steps: intFlag('steps', v.steps, 1),
    systems: systems as (typeof known)[number][] | undefined,
    command,
    log: (s) => process.stderr.write(s + '\n'),
  });
  process.stdout.write(`wrote ${out}\n`);
  return 0;
}
