// The Markdown of docs/RESULTS.md from a finished run (src/eval/report.ts runs and scores; this only writes): the
// settings, the evaluator's own accuracy, the metrics and systems explained, a table and grid per task, a summary.
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_SAMPLER, SAMPLERS } from '../diffusion/samplers.ts';
import type { EmojiEvaluator, EvaluatorReport } from './evaluator.ts';
import { COPY_PASTE_THRESHOLD } from './metrics.ts';
import type { Case, Suite } from './tasks.ts';
import {
  aggregate,
  num,
  numCI,
  pct,
  pctCI,
  SYSTEMS_FOR,
  type Output,
  type SystemName,
  type SystemState,
} from './aggregate.ts';
import { TOKENS_NOTE, tokensTable, tokensSummary } from './tokens.ts';

export const NOTES_MARKER = '<!-- hand-written notes: kept when mumu eval rewrites this file -->';

export const SYSTEM_TITLES: Record<SystemName, string> = {
  mumu: 'MUMU (multimodal prompt)',
  'mumu-caption': 'MUMU, caption only (no images)',
  'text-only': 'text-only base model, caption',
  describe: 'describe the images + text-only base',
  'lora-merge': 'MUMU merged into the style fine-tune',
  render: 'EmojiWorld render of the caption (reference point, not a generator)',
};

export const gridFile = (task: string) => `${task}.png`;

export interface MarkdownInput {
  suite: Suite;
  model: string | null;
  steps: number;
  cases: Case[];
  outputs: Output[];
  systems: SystemState[];
  evaluator: EmojiEvaluator;
  evalReport: EvaluatorReport | null;
  trained: Record<string, unknown> | null;
  seconds: number;
  tokensPerImage: number | null;
  variantNotes: string[];
  out: string;
  grids: string;
  tokensPlot: string | null;
  command?: string; // the command line that wrote the report (the CLI's); default: rebuilt from the fields above
}

const TASK_TITLES: Record<Case['task'], string> = {
  'same-image': 'Same-image crops (the training distribution)',
  harmonise: 'Harmonisation across sources (Finding 2)',
  'style-transfer': 'Style transfer from a style image only (Finding 3)',
  'tokens-per-image': 'Tokens per image (Finding 1)',
  'lora-merge': 'LoRA merge / weight-delta merge into a single-style fine-tune (Finding 4)',
  character: 'Character consistency (Finding 5)',
};

const TASK_NOTES: Record<Case['task'], string> = {
  'same-image':
    'Each reference is a crop of the target scene (its box, padded square with black), inserted right before its words, as the bootstrap makes training prompts (paper section 4). Style is named in the text.',
  harmonise:
    "Each reference is drawn in a different style from the one the text asks for; success is the asked style (style column) while keeping each reference's concept (preservation) without pasting it (copy).",
  'style-transfer':
    "The prompt names the object in words and gives the style only as an image of *other* objects in that style where training captions name it (`..., <img> style`); the text never names the style. Leak = share of the style image's objects found in the output with probability >= 0.5 in some window (lower is better). The text-only rows get the style named in words; describe gets the evaluator's reading of the style image.",
  'tokens-per-image': TOKENS_NOTE,
  'lora-merge':
    "No style words in the prompt: the style should come from the UNet. MUMU with its own UNet against MUMU merged into the single-style fine-tune of the base (paper Figure 9): its UNet LoRA merged in, or, for a fully trained MUMU UNet, its weight delta from the base added (see Systems). Style column: the fine-tune's style.",
  character:
    "One reference object, several prompts (other objects, backgrounds). Consistency = mean pairwise cosine between the outputs' windows closest to the reference, across prompts and seeds.",
};

function markdown(m: MarkdownInput): string {
  const L: string[] = [];
  const rel = (p: string) => path.relative(path.dirname(m.out), p).split(path.sep).join('/');
  L.push('# mumu results', '');
  L.push(
    `Written by \`${m.command ?? `mumu eval ${m.model ? `--model ${m.model}` : '--no-model'} --suite ${m.suite.name} --out ${m.out} --grids ${m.grids}`}\` on ${new Date().toISOString().slice(0, 10)}. Every number below comes from that run; ` +
      're-running the command reproduces it (fixed prompts, references and seeds).',
    '',
  );
  L.push('| setting | value |', '|---|---|');
  L.push(
    `| model | ${m.model ? `\`${m.model}\`` : 'none (renders only; generator numbers pending)'} |`,
    `| suite | \`${m.suite.name}\` (${m.cases.length} cases) |`,
    `| sampler | ${SAMPLERS[DEFAULT_SAMPLER].label}, ${m.steps} steps, guidance ${m.suite.guidance_scale} |`,
  );
  L.push(
    `| seeds | ${m.suite.seeds.join(', ')} (image seed = seed; references drawn with seed ${m.suite.reference_seed}) |`,
  );
  L.push(
    `| evaluator | \`${m.evaluator.config.image_size} px CNN, ${m.evaluator.numParameters()} parameters, ${m.evaluator.config.concepts.length} concepts, ${m.evaluator.config.styles.length} styles\` |`,
  );
  L.push(`| wall time | ${m.seconds.toFixed(0)} s |`, '');

  L.push('## The evaluator and its own accuracy', '');
  L.push(
    'A small CNN (`src/eval/evaluator.ts`: conv 3x3 + GroupNorm + SiLU stages, 24-48-96-192 channels, 32 px input), with its own seed, ' +
      'trained only on EmojiWorld renders of every concept in every style (single-object crops and 1-3 object scenes; `src/eval/renders.ts`), ' +
      'never on any generator output. It has an L2-normalised 128-d embedding, a concept head (cosine classifier on the embedding, ' +
      'trained with a soft multi-label target over the objects shown) and a style head. ' +
      'About 5% of (style, concept) drawings are withheld from its training, to measure it on drawings it never saw.' +
      (m.trained ? ` ${trainedLine(m.trained)}` : ''),
    '',
  );
  if (m.evalReport) {
    L.push(
      "| held-out set (renders it never trained on) | n | concept top-1 (all concepts) | top-5 | top-1 among the suite's concepts | style |",
      '|---|---|---|---|---|---|',
    );
    for (const r of m.evalReport.rows)
      L.push(
        `| ${r.set} | ${r.n} | ${pct(r.top1)} | ${pct(r.top5)} | ${r.vocabTop1 === null ? '–' : pct(r.vocabTop1)} | ${pct(r.style)} |`,
      );
    L.push(
      '',
      'Scenes: top-1 = every object of the scene ranked within the top k (k = number of objects); top-5 = within the top k + 4.',
      '',
    );
  } else L.push('(no report.json beside the evaluator: its accuracy was not measured for this run)', '');

  L.push('## Metrics', '');
  L.push(
    "Every output is looked at whole and through 13 square windows (3/4 and 1/2 of the side, stride 1/4), each resampled to the evaluator's 32 px.",
    '',
  );
  L.push(
    "- **Preservation** (DreamBench CLIP-I / DINO analogue): for each object reference, the best cosine between its embedding and any window of the output; averaged over references. 1 = the evaluator sees the same thing. **(unrelated)**: the same statistic for a crop of a suite concept the prompt does not ask for, drawn in the first reference's style: the chance level of a best-of-14-windows cosine. Only the gap between the two means anything.",
  );
  L.push(
    `- **Following** (CLIP-T analogue): of the K concepts the prompt names, the fraction found: each window's concept logits are softmaxed over the suite's ${m.suite.vocabulary.length} concepts, a concept scores its best window probability, and a named concept is found if it ranks in the top K.`,
  );
  L.push('- **Style**: the style head on the whole output picks the asked style (accuracy over outputs).');
  L.push(
    `- **Copy**: template matching: the reference resampled to every size from 1/4 of the output's side to all of it and slid over the output; the best Pearson correlation of pixels. **copied** = share of outputs with copy >= ${COPY_PASTE_THRESHOLD}. High preservation with high copy is pasting, not success (the paper warns its similarity scores rewarded copy-paste). In same-image crops the target itself contains the crops, so a faithful reconstruction copies by construction (see the render row); copying matters where the output should redraw: harmonisation, style transfer, character.`,
  );
  L.push(
    '- **Diversity**: mean pairwise 1 - cosine of whole-image embeddings across the seeds of one prompt (0 = the same picture every seed).',
    '- **Intervals**: preservation, following and style show their 95% interval in brackets, a percentile bootstrap that resamples whole cases (prompts) with replacement, 2000 times with a fixed seed: the seeds of one prompt are not independent draws, so the interval says how much the row could move with other prompts of the same kind.',
  );
  L.push(
    '- Rows split into **train** cases (concepts and styles the generator trained on) and **held-out** cases (a concept the generator never saw, or the emojione style). The EmojiWorld render row scores the ground-truth picture of the caption: what a perfect, non-copying generator would reach on these metrics.',
    '',
  );

  L.push('## Systems', '');
  L.push('- **MUMU**: the model folder with the multimodal prompt (references inserted before their words).');
  L.push(
    '- **MUMU, caption only**: the same model given only the words of the prompt (the style named in words where the prompt had a style image): what the images add.',
  );
  L.push(
    "- **text-only base model**: the CLIP text encoder and the UNet without MUMU's LoRA (the model MUMU started from; paper section 5), given the caption.",
  );
  L.push(
    "- **describe the images**: the paper's ChatGPT + DALL-E 3 comparison (its Figure 4) in miniature: each reference image is replaced by the evaluator's reading of it (its top concept among the suite's, or its style for a style image) and the text-only base model draws that caption. Our prompts already name each object in words, so this equals the text-only row wherever the evaluator reads every reference right; it differs when it misreads, and in style transfer, where the style exists only as an image.",
  );
  L.push(
    "- **MUMU merged into the style fine-tune** (Finding 4): MUMU's encoder (VLM + adapter) unchanged, with the UNet of a fine-tune of the text-only base on a single style plus what MUMU's training changed in the base UNet. " +
      "When MUMU trained its UNet as a LoRA (paper Table 1), that LoRA merged into the fine-tune's UNet (W_ft + B A, paper Figure 9). " +
      'When MUMU trained its UNet fully, task arithmetic: W_ft + (W_mumu - W_base) for every UNet tensor, W_base being the text-only UNet the MUMU stage started from (`--base`); ' +
      'the LoRA merge is the special case where W_mumu - W_base = B A is low rank. The three UNets must have the same tensors (keys and shapes), or the row says what differs.',
  );
  L.push(
    '- **EmojiWorld render**: the ground-truth picture of the caption, scored like an output: the ceiling a faithful, non-copying generator would reach.',
    '',
  );

  const titleOf = (sys: SystemName) => m.systems.find((x) => x.name === sys)?.title ?? SYSTEM_TITLES[sys];
  const tasks = [...new Set(m.cases.map((c) => c.task))];
  for (const task of tasks) {
    L.push(`## ${TASK_TITLES[task]}`, '', TASK_NOTES[task], '');
    const outs = m.outputs.filter((o) => o.case.task === task);
    const systems = SYSTEMS_FOR[task];
    const extra = task === 'style-transfer' ? ['leak'] : task === 'character' ? ['consistency'] : [];
    if (task === 'tokens-per-image') {
      const mumu = m.systems.find((x) => x.name === 'mumu')!;
      const t = m.suite.tasks.find((x) => x.kind === 'tokens-per-image') as { models?: unknown[] } | undefined;
      L.push(
        ...tokensTable(outs, {
          nativeTokens: m.tokensPerImage,
          mumuWhy: mumu.gen ? null : mumu.why,
          hasModels: !!t?.models?.length,
          variantNotes: m.variantNotes,
        }),
      );
      if (m.tokensPlot) L.push('', `![tokens per image](${rel(m.tokensPlot)})`);
    } else {
      L.push(
        `| system | split | n | preservation | (unrelated) | following | style | copy | copied | diversity |${extra.map((e) => ` ${e} |`).join('')}`,
      );
      L.push(`|---|---|---|---|---|---|---|---|---|---|${extra.map(() => '---|').join('')}`);
      for (const sys of systems) {
        const state = m.systems.find((s) => s.name === sys)!;
        if (sys !== 'render' && !state.gen) {
          L.push(`| ${titleOf(sys)} | – | 0 | ${state.why} | | | | | | |${extra.map(() => ' |').join('')}`);
          continue;
        }
        for (const sp of ['train', 'held-out', 'all'] as const) {
          const sel = outs.filter((o) => o.system === sys && (sp === 'all' || o.case.split === sp));
          if (!sel.length || (sp === 'all' && new Set(sel.map((o) => o.case.split)).size < 2)) continue;
          const a = aggregate(sel);
          const ex = extra.map((e) => ` ${num(e === 'leak' ? a.leak : a.consistency)} |`).join('');
          L.push(
            `| ${titleOf(sys)} | ${sp} | ${a.n} | ${numCI(a.preservation, a.ci.preservation)} | ${num(a.control)} | ${pctCI(a.following, a.ci.following)} | ${pctCI(a.style, a.ci.style)} | ${num(a.copy)} | ${pct(a.copied)} | ${num(a.diversity)} |${ex}`,
          );
        }
      }
    }
    if (task === 'lora-merge') {
      const merged = m.systems.find((x) => x.name === 'lora-merge');
      if (merged?.note) L.push('', `Merged: ${merged.note}.`);
    }
    const shown = [...new Set(outs.map((o) => o.system))];
    L.push('', `![${task}](${rel(path.join(m.grids, gridFile(task)))})`, '');
    L.push(
      `Grid: one row per case; first the reference image(s) (gray = none), then, after a thin gray bar each, ${shown.map(titleOf).join('; ')}` +
        ` (generated systems: seeds ${m.suite.seeds.join(', ')} left to right).`,
      '',
    );
    L.push('<details><summary>prompts</summary>', '');
    for (const c of m.cases.filter((x) => x.task === task)) {
      const text = c.segments.map((s) => (typeof s === 'string' ? s : 'text' in s ? s.text : '<img>')).join('');
      L.push(`- \`${c.id}\` (${c.split}${c.setting ? `, ${c.setting}` : ''}): \`${text}\``);
    }
    L.push('', '</details>', '');
  }
  L.push(summary(m));
  return L.join('\n') + '\n';
}

function trainedLine(t: Record<string, unknown>): string {
  const focus = t.focus as { slugs: string[]; fraction: number } | undefined;
  const prev = t.continued_from as Record<string, unknown> | undefined;
  return (
    (prev ? `${trainedLine(prev)} Then continued: ` : '') +
    `${prev ? '' : 'Trained '}${t.steps} steps of batch ${t.batch_size} at lr ${t.lr ?? 2e-3} (AdamW, cosine) in ${t.seconds} s on one CPU thread; ` +
    `${focus ? `${Math.round(100 * focus.fraction)}% of samples show one of the ${focus.slugs.length} suite concepts first, the rest any seen drawing; ` : ''}` +
    `${Math.round(100 * Number(t.scene_fraction ?? 0.5))}% of samples are scenes` +
    `${t.empty_fraction ? `, ${Math.round(100 * Number(t.empty_fraction))}% backgrounds alone (uniform concept target)` : ''}.`
  );
}

// Where MUMU beats the baselines and where not, read off the tables above.
function summary(m: MarkdownInput): string {
  const L = ['## Summary', ''];
  const lines: string[] = [];
  for (const task of ['same-image', 'harmonise', 'style-transfer', 'character'] as const) {
    const outs = m.outputs.filter((o) => o.case.task === task);
    if (!outs.length) continue;
    const mu = aggregate(outs.filter((o) => o.system === 'mumu'));
    const others = (['mumu-caption', 'text-only', 'describe'] as const).filter((s) => outs.some((o) => o.system === s));
    for (const metric of ['preservation', 'following', 'style'] as const) {
      const best = others
        .map((s) => {
          const a = aggregate(outs.filter((o) => o.system === s));
          return { s, v: a[metric], ci: a.ci[metric] };
        })
        .filter((x) => !Number.isNaN(x.v))
        .sort((a, b) => b.v - a.v)[0];
      if (!best || Number.isNaN(mu[metric])) continue;
      const fmt = metric === 'preservation' ? numCI : pctCI;
      lines.push(
        `- ${TASK_TITLES[task]}, ${metric}: MUMU ${fmt(mu[metric], mu.ci[metric])} vs best baseline (${SYSTEM_TITLES[best.s]}) ${fmt(best.v, best.ci)}: ${mu[metric] > best.v ? '**MUMU ahead**' : mu[metric] === best.v ? 'tie' : '**baseline ahead**'}.`,
      );
    }
    if (mu.copied > 0)
      lines.push(
        `- ${TASK_TITLES[task]}: ${pct(mu.copied)} of MUMU outputs are copies of a reference (copy >= ${COPY_PASTE_THRESHOLD}).`,
      );
  }
  const tok = tokensSummary(
    m.outputs.filter((o) => o.case.task === 'tokens-per-image'),
    m.tokensPerImage,
  );
  if (tok) lines.push(tok);
  L.push(...(lines.length ? lines : ['- no generated outputs to compare.']), '');
  return L.join('\n');
}

// Writes the report; a hand-written closing section (from NOTES_MARKER on) survives regeneration.
export function writeReport(file: string, m: MarkdownInput): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const notes = old.includes(NOTES_MARKER) ? old.slice(old.indexOf(NOTES_MARKER)) : '';
  fs.writeFileSync(file, notes ? `${markdown(m)}\n${notes}` : markdown(m));
}
