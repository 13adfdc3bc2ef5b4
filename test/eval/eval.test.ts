// `mumu eval` end to end on tiny randomly initialised folders: a MUMU model with a text encoder and a UNet LoRA (so
// every system runs: MUMU, caption only, text-only base, describe, LoRA merged into a "fine-tune"), a tiny evaluator,
// and a suite with one case per task. Checks the report's tables, the 'not available' rows and the grids; the
// numbers of random models mean nothing.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setNumThreads } from '../../src/torch/index.ts';
import { PAPER_TRAINING } from '../../src/models/index.ts';
import { buildWordLevelTokenizer } from '../../src/prompt/index.ts';
import { savePretrained } from '../../src/pipeline.ts';
import { newEvaluator } from '../../src/eval/evaluator.ts';
import { runSuite } from '../../src/eval/report.ts';
import { readSuite, buildCases } from '../../src/eval/tasks.ts';
import { makeTinyModel, tinyMumuModel, TINY_WORDS } from '../pipeline/tiny-model.ts';
import { mumu } from '../cli/helpers.ts';

setNumThreads(1);
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));
let model = '',
  finetune = '',
  evaluator = '',
  suiteFile = '';

const VOCAB = ['dog-face', 'rocket', 'sun', 'cat-face'];
const SUITE = {
  name: 'tiny',
  steps: 2,
  guidance_scale: 2,
  seeds: [0, 1],
  reference_seed: 1,
  vocabulary: VOCAB,
  tasks: [
    {
      kind: 'same-image',
      items: [
        { concepts: ['dog-face', 'rocket'], style: 'noto', background: 'blue' },
        { concepts: ['cat-face'], style: 'emojione', background: 'red' },
      ],
    },
    {
      kind: 'harmonise',
      items: [
        { concepts: ['dog-face', 'sun'], ref_styles: ['noto', 'openmoji'], style: 'twemoji', background: 'white' },
      ],
    },
    {
      kind: 'style-transfer',
      items: [{ concepts: ['rocket'], style: 'openmoji', style_ref: ['sun'], background: 'navy' }],
    },
    {
      kind: 'tokens-per-image',
      reference_resolutions: [4, 0],
      reference_sizes: [8, 24],
      reference_size_seeds: [0],
      items: [{ concepts: ['sun'], style: 'noto', background: 'gray' }],
    },
    {
      kind: 'lora-merge',
      finetune: '',
      finetune_style: 'openmoji',
      items: [{ concepts: ['dog-face'], style: 'noto', background: 'blue' }],
    },
    {
      kind: 'character',
      reference: { concept: 'dog-face', style: 'noto' },
      contexts: [
        { others: [], background: 'red' },
        { others: ['rocket'], background: 'navy' },
      ],
    },
  ],
};

before(async () => {
  const m = tinyMumuModel({ textEncoder: true });
  const tokenizer = buildWordLevelTokenizer(TINY_WORDS);
  finetune = tmp('mumu-ft-');
  await savePretrained(m, finetune, { tokenizer }); // the "style fine-tune": the base weights, no LoRA
  m.applyTraining(PAPER_TRAINING); // UNet and VLM LoRAs, saved as PEFT files beside the base weights
  model = tmp('mumu-model-');
  await savePretrained(m, model, { tokenizer });
  evaluator = tmp('mumu-evaluator-');
  newEvaluator({ concepts: VOCAB, config: { channels: [8, 16], embed_dim: 16 } }).save(evaluator);
  suiteFile = join(tmp('mumu-suite-'), 'suite.json');
  SUITE.tasks[4] = { ...SUITE.tasks[4]!, finetune } as (typeof SUITE.tasks)[number];
  writeFileSync(suiteFile, JSON.stringify(SUITE));
});

test('cases: crops before their words, held-out split, references per task', () => {
  const cases = buildCases(readSuite(suiteFile), { outSize: 16 });
  assert.equal(cases.length, 2 + 1 + 1 + 4 + 1 + 2);
  const first = cases[0]!;
  assert.deepEqual(
    first.segments.map((s) => (typeof s === 'string' ? s : '<img>')).join(''),
    'a <img>dog face and a <img>rocket on a blue background, noto style',
  );
  assert.equal(first.caption, 'a dog face and a rocket on a blue background, noto style');
  assert.equal(first.split, 'train');
  assert.equal(cases[1]!.split, 'held-out'); // cat-face and emojione are both held out of generator training
  const st = cases.find((c) => c.task === 'style-transfer')!;
  assert.ok(!st.segments.some((s) => typeof s === 'string' && /openmoji/.test(s)), 'the style is only in the image');
  assert.equal(st.references[0]!.role, 'style');
  const tok = cases.filter((c) => c.task === 'tokens-per-image');
  assert.deepEqual(
    tok.map((c) => c.setting),
    ['4x4 px', 'full', '8x8 px input', '24x24 px input'],
  );
  assert.deepEqual(
    tok.map((c) => c.referenceSize),
    [undefined, undefined, 8, 24],
  );
  assert.deepEqual(tok[3]!.seeds, [0]);
});

test('mumu eval writes RESULTS.md with every task, baseline and grid', async () => {
  const out = join(tmp('mumu-results-'), 'RESULTS.md');
  const r = await mumu(['eval', '--model', model, '--suite', suiteFile, '--out', out, '--evaluator', evaluator]);
  assert.equal(r.code, 0, r.stderr);
  const md = readFileSync(out, 'utf8');
  // the command that wrote it, every option given, in the first line
  assert.ok(
    md.includes(`Written by \`mumu eval --model ${model} --suite ${suiteFile} --out ${out} --evaluator ${evaluator}\``),
    md.slice(0, 400),
  );
  for (const h of [
    'Same-image crops',
    'Harmonisation across sources',
    'Style transfer',
    'Tokens per image',
    'LoRA merge',
    'Character consistency',
    '## Summary',
  ]) {
    assert.ok(md.includes(h), `report has '${h}'`);
  }
  // every system ran: numbers, not 'not available', on the rows of the baselines
  assert.match(md, /\| text-only base model, caption \| train \| 2 \| [0-9.]+ \|/);
  assert.match(md, /\| describe the images \+ text-only base \| train \| 2 \|/);
  assert.match(md, /\| MUMU LoRA merged into the style fine-tune \| train \| 2 \|/);
  assert.match(md, /\| MUMU \(4 tokens\/image\) \| 4x4 px \| 2 \|/);
  assert.match(md, /models trained at other tokens per image .* not available/);
  // one model at other reference sides (tiny ViT: 16 px, patch 8): 8 px = 1 token, 24 px = 9, one seed each
  assert.match(md, /\| MUMU \(trained at 4 tokens\/image\) \| 8x8 px input, 1 tokens\/image \| 1 \| [0-9.-]+ \|/);
  assert.match(md, /\| MUMU \(trained at 4 tokens\/image\) \| 24x24 px input, 9 tokens\/image \| 1 \|/);
  assert.match(md, /one model, trained only at its native tokens per image/i);
  assert.match(md, /!\[tokens per image\]\(results\/tokens-per-image-plot\.png\)/);
  assert.ok(existsSync(join(out, '..', 'results', 'tokens-per-image-plot.png')));
  assert.match(
    md,
    /- Tokens per image \(Finding 1; one model trained at 4 tokens\/image.*: 1 tokens [0-9.-]+ \([+-][0-9.]+\), 9 tokens/,
  );
  for (const t of ['same-image', 'harmonise', 'style-transfer', 'tokens-per-image', 'lora-merge', 'character']) {
    assert.ok(existsSync(join(out, '..', 'results', `${t}.png`)), `grid ${t}.png`);
  }
});

test('mumu eval --systems: only the listed systems generate, the others are reported as left out; a wrong name is a usage error', async () => {
  const dir = tmp('mumu-results-');
  const suite = join(dir, 'suite.json');
  writeFileSync(suite, JSON.stringify({ ...SUITE, seeds: [0], tasks: [SUITE.tasks[0]] }));
  const out = join(dir, 'R.md');
  const r = await mumu([
    'eval',
    '--model',
    model,
    '--suite',
    suite,
    '--out',
    out,
    '--evaluator',
    evaluator,
    '--systems',
    'mumu,mumu-caption',
  ]);
  assert.equal(r.code, 0, r.stderr);
  const md = readFileSync(out, 'utf8');
  assert.match(md, /\| MUMU, caption only \(no images\) \| train \| 1 \| [0-9.]+ \|/);
  assert.match(md, /\| text-only base model, caption \| – \| 0 \| not run: left out by --systems/);
  assert.match(md, /\| describe the images \+ text-only base \| – \| 0 \| not run: left out by --systems/);
  const bad = await mumu(['eval', '--model', model, '--suite', suite, '--out', out, '--systems', 'mumu,base']);
  assert.equal(bad.code, 2);
  assert.match(
    bad.stderr,
    /--systems: unknown system base \(choose from mumu, mumu-caption, text-only, describe, lora-merge\)/,
  );
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
});

test("a folder without a text encoder or fine-tune: those rows say 'not available'", async () => {
  const plain = await makeTinyModel();
  const dir = tmp('mumu-results-');
  const suite = {
    ...readSuite(suiteFile),
    seeds: [0],
    tasks: [SUITE.tasks[0], { ...SUITE.tasks[4], finetune: join(dir, 'nope') }],
  } as ReturnType<typeof readSuite>;
  const { outputs } = await runSuite({ model: plain, suite, out: join(dir, 'R.md'), grids: join(dir, 'g'), evaluator });
  const md = readFileSync(join(dir, 'R.md'), 'utf8');
  // the first line names the report and grid paths, so re-running it writes this file, not docs/RESULTS.md
  assert.ok(md.includes(`--out ${join(dir, 'R.md')} --grids ${join(dir, 'g')}\``), md.slice(0, 300));
  assert.match(md, /text-only base model, caption \| – \| 0 \| not available: the model folder has no text_encoder/);
  assert.match(md, /MUMU merged into the style fine-tune \| – \| 0 \| not available: no style fine-tune model folder/);
  assert.ok(outputs.some((o) => o.system === 'mumu') && !outputs.some((o) => o.system === 'text-only'));
});

test('a fully trained MUMU UNet: the weight-delta merge with --base; without it, a clear not-available row', async () => {
  const m = tinyMumuModel({ textEncoder: true, seed: 3 }); // no LoRA: a "fully trained" MUMU
  const full = tmp('mumu-full-');
  await savePretrained(m, full, { tokenizer: buildWordLevelTokenizer(TINY_WORDS) });
  const suite = { ...readSuite(suiteFile), seeds: [0], tasks: [SUITE.tasks[4]] } as ReturnType<typeof readSuite>;
  const dir = tmp('mumu-results-');
  await runSuite({ model: full, suite, out: join(dir, 'R.md'), grids: join(dir, 'g'), evaluator, base: finetune });
  const md = readFileSync(join(dir, 'R.md'), 'utf8');
  assert.match(
    md,
    /\| MUMU weight delta added to the style fine-tune \(fine-tune \+ MUMU - base\) \| train \| 1 \| [0-9.-]+ \|/,
  );
  assert.match(
    md,
    /Merged: `[^`]+` UNet \+ \(`[^`]+` UNet - `[^`]+` UNet\), \d+ tensors, [\d,]+ parameters; \|\|MUMU - base\|\| \/ \|\|base\|\| = [0-9.]+, \|\|fine-tune - base\|\| \/ \|\|base\|\| = 0\.000/,
  );
  assert.match(md, /W_ft \+ \(W_mumu - W_base\)/);
  await runSuite({ model: full, suite, out: join(dir, 'R2.md'), grids: join(dir, 'g2'), evaluator });
  assert.match(
    readFileSync(join(dir, 'R2.md'), 'utf8'),
    /MUMU merged into the style fine-tune \| – \| 0 \| not available: the model's UNet is fully trained \(no separate LoRA\); pass --base DIR/,
  );
});

test('a reference size the model cannot take fails the run before generating, saying why', async () => {
  const suite = { ...readSuite(suiteFile), tasks: [{ ...SUITE.tasks[3], reference_sizes: [20] }] } as ReturnType<
    typeof readSuite
  >;
  const dir = tmp('mumu-results-');
  await assert.rejects(
    runSuite({ model, suite, out: join(dir, 'R.md'), grids: join(dir, 'g'), evaluator }),
    /reference_sizes: reference size 20 px: must be a multiple of the ViT's patch size 8 px/,
  );
});
