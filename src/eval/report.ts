// `mumu eval`: runs a suite's cases through every system that exists (MUMU, MUMU on the caption alone, the text-only
// base model, the "describe the images" baseline, MUMU's LoRA merged into a style fine-tune), scores every output
// with the independent evaluator, and writes docs/RESULTS.md with PNG grids.
import fs from 'node:fs';
import path from 'node:path';
import { MumuPipeline, loadComponents, componentsFromModel, type MumuComponents } from '../pipeline.ts';
import { MumuModel } from '../models/index.ts';
import { unloadLora, ADAPTER_CONFIG } from '../nn/index.ts';
import { encodePng, gridRows, type RgbImage } from '../image/index.ts';
import { EmojiEvaluator, type EvaluatorReport } from './evaluator.ts';
import {
  Judge, conceptPreservation, promptFollowing, conceptsPresent, styleAdherence, copyPaste, cosine,
  COPY_PASTE_THRESHOLD,
} from './metrics.ts';
import { readSuite, buildCases, conceptLabel, stylePhrase, type Case, type Suite } from './tasks.ts';
import type { PromptSegment } from '../prompt/index.ts';
import { aggregate, mean, num, pct, type Output, type Scores, type SystemName } from './aggregate.ts';
import { mergedComponents } from './merge.ts';
import { TOKENS_NOTE, tokensTable, tokensSummary, writeTokensPlot, TOKENS_PLOT } from './tokens.ts';

export { aggregate, type Aggregate, type Output, type Scores, type SystemName } from './aggregate.ts';

export const NOTES_MARKER = '<!-- hand-written notes: kept when mumu eval rewrites this file -->';

export const SYSTEM_TITLES: Record<SystemName, string> = {
  mumu: 'MUMU (multimodal prompt)',
  'mumu-caption': 'MUMU, caption only (no images)',
  'text-only': 'text-only base model, caption',
  describe: 'describe the images + text-only base',
  'lora-merge': 'MUMU merged into the style fine-tune',
  render: 'EmojiWorld render of the caption (reference point, not a generator)',
};

// Which systems run on which task (the baselines where the paper compares, the render everywhere).
const SYSTEMS_FOR: Record<Case['task'], SystemName[]> = {
  'same-image': ['mumu', 'mumu-caption', 'text-only', 'describe', 'render'],
  harmonise: ['mumu', 'mumu-caption', 'text-only', 'describe', 'render'],
  'style-transfer': ['mumu', 'mumu-caption', 'text-only', 'describe', 'render'],
  'tokens-per-image': ['mumu', 'render'],
  'lora-merge': ['mumu', 'lora-merge', 'render'],
  character: ['mumu', 'mumu-caption', 'text-only', 'describe', 'render'],
};

interface Generator { (c: Case, seed: number): Promise<RgbImage> }
// title / note: where a system's row says more than its name (which merge ran)
interface SystemState { name: SystemName; gen: Generator | null; why: string; title?: string; note?: string }

export interface RunOptions {
  model?: string; // none: score the EmojiWorld renders only
  outSize?: number; // output side when there is no model (default 64)
  suite: string | Suite;
  out: string; // report path
  grids: string; // grid folder
  evaluator: string | EmojiEvaluator;
  finetune?: string;
  base?: string; // text-only base model folder (default: the text encoder and LoRA-free UNet inside the model)
  steps?: number;
  log?: (s: string) => void;
}

async function generator(c: MumuComponents, o: { steps: number; guidance: number }, prompt: (cs: Case) => string | PromptSegment[]): Promise<Generator> {
  const pipes = new Map<number, MumuPipeline>();
  // a case with a reference size: the same components, only the prompt side (image side, placeholders) changed
  const pipeFor = (side = 0) => {
    if (!pipes.has(side)) {
      if (side && !c.atReferenceSize) throw new Error(`${c.name}: these components cannot encode references at another side`);
      pipes.set(side, new MumuPipeline(side ? { ...c, prompt: c.atReferenceSize!(side).prompt } : c));
    }
    return pipes.get(side)!;
  };
  return async (cs, seed) => {
    const p = prompt(cs);
    const pipe = pipeFor(cs.referenceSize);
    const r = await pipe.generate(p, { steps: o.steps, guidanceScale: o.guidance, seed });
    return r.images[0]!;
  };
}

// The text-only base model inside a MUMU folder: the CLIP text encoder and the UNet without MUMU's LoRA (the UNet
// the MUMU stages started from; paper section 5).
// With `base` (a text-only model folder such as runs/t2i-base/model), that folder's text encoder and UNet instead.
function baseComponents(dir: string, c: MumuComponents, base?: string): MumuComponents | string {
  if (base && !fs.existsSync(path.join(base, 'model_index.json'))) return `not available: no model folder at ${base}`;
  const m = MumuModel.load(base ?? dir).eval();
  if (!m.text_encoder) return `not available: ${base ? base : 'the model folder'} has no text_encoder (no text-only base model to compare with)`;
  if (!base && !fs.existsSync(path.join(dir, 'unet', ADAPTER_CONFIG))) return 'not available: the UNet has no separate MUMU LoRA, so the base UNet cannot be recovered (pass --base DIR)';
  unloadLora(m.unet, { merge: false });
  return componentsFromModel(m, { tokenizer: c.prompt.tokenizer, scheduler: c.scheduler, device: c.device, name: `${base ?? dir} (text-only)`, encoder: 'text' });
}

export async function runSuite(o: RunOptions): Promise<{ outputs: Output[]; systems: SystemState[] }> {
  const log = o.log ?? (() => {});
  const t0 = performance.now();
  const suite = typeof o.suite === 'string' ? readSuite(o.suite) : o.suite;
  const evaluator = typeof o.evaluator === 'string' ? EmojiEvaluator.load(o.evaluator) : o.evaluator;
  const judge = new Judge(evaluator);
  const steps = o.steps ?? suite.steps;
  const gopts = { steps, guidance: suite.guidance_scale };

  // Without a model (--no-model) only the EmojiWorld renders are scored: the metrics' reference points.
  const comps = o.model ? await loadComponents(o.model) : null;
  // the output side: one cheap 1-step image
  const outSize = comps ? (await new MumuPipeline(comps).generate('a', { steps: 1, seed: 0, guidanceScale: 1 })).images[0]!.width : (o.outSize ?? 64);
  const cases = buildCases(suite, { outSize });
  // tokens per image at other reference sides: checked against this model's ViT before anything runs
  for (const c of cases.filter((x) => x.referenceSize !== undefined && comps)) {
    if (!comps!.atReferenceSize) throw new Error(`suite ${suite.name}: reference_sizes: ${comps!.name} cannot encode references at another side`);
    try {
      c.tokensPerImage = comps!.atReferenceSize(c.referenceSize!).prompt.tokensPerImage;
    } catch (e) {
      throw new Error(`suite ${suite.name}: tokens-per-image reference_sizes: ${(e as Error).message}`);
    }
    c.setting = `${c.setting}, ${c.tokensPerImage} tokens/image`;
  }
  log(`${cases.length} cases, ${suite.seeds.length} seeds, ${steps} steps, guidance ${suite.guidance_scale}, output ${outSize} px`);

  const vocab = suite.vocabulary.map((s) => judge.conceptIndex(s));
  const vocabulary = suite.vocabulary;
  const describe = (c: Case): string => {
    // each referenced object named by what the evaluator sees in its image; a style image by its predicted style
    const objs = c.references.filter((r) => r.role === 'object');
    const words = c.named.map((n) => {
      const r = objs.find((x) => x.concept === n);
      return r ? conceptLabel(judge.describe(r.image, vocabulary).concept) : conceptLabel(n);
    });
    let cap = c.caption;
    c.named.forEach((n, i) => (cap = cap.replace(conceptLabel(n), `\u0000${i}\u0000`)));
    c.named.forEach((_, i) => (cap = cap.replace(`\u0000${i}\u0000`, words[i]!)));
    const styleRef = c.references.find((r) => r.role === 'style');
    if (styleRef) cap = cap.replace(/, [a-z0-9 ]+ style$/, `, ${stylePhrase(judge.describe(styleRef.image, vocabulary).style)} style`);
    return cap;
  };

  const systems: SystemState[] = [{ name: 'render', gen: null, why: '' }];
  if (comps) {
    const base = baseComponents(o.model!, comps, o.base);
    const merged = mergedComponents(o.model!, o.finetune ?? (suite.tasks.find((t) => t.kind === 'lora-merge') as { finetune?: string } | undefined)?.finetune, o.base, comps);
    systems.push(
      { name: 'mumu', gen: await generator(comps, gopts, (c) => c.segments), why: '' },
      { name: 'mumu-caption', gen: await generator(comps, gopts, (c) => c.caption), why: '' },
      typeof base === 'string' ? { name: 'text-only', gen: null, why: base } : { name: 'text-only', gen: await generator(base, gopts, (c) => c.caption), why: '' },
      typeof base === 'string' ? { name: 'describe', gen: null, why: base } : { name: 'describe', gen: await generator(base, gopts, describe), why: '' },
      typeof merged === 'string'
        ? { name: 'lora-merge', gen: null, why: merged }
        : { name: 'lora-merge', gen: await generator(merged.components, gopts, (c) => c.segments), why: '', title: merged.title, note: merged.note },
    );
  } else {
    const why = 'pending: no model was evaluated in this run';
    for (const name of ['mumu', 'mumu-caption', 'text-only', 'describe', 'lora-merge'] as const) systems.push({ name, gen: null, why });
  }

  const outputs: Output[] = [];
  for (const c of cases) {
    for (const s of systems.filter((x) => SYSTEMS_FOR[c.task].includes(x.name))) {
      if (s.name === 'render') {
        if (c.task === 'tokens-per-image' && c.setting !== 'full') continue;
        outputs.push({ case: c, system: 'render', seed: null, image: c.oracle, scores: score(judge, c, c.oracle, vocab) });
        continue;
      }
      if (!s.gen) continue;
      for (const seed of c.seeds ?? suite.seeds) {
        const image = await s.gen(c, seed);
        outputs.push({ case: c, system: s.name, seed, image, scores: score(judge, c, image, vocab) });
      }
    }
    log(`${c.id} done (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  // Finding 1 across models: variants trained at other tokens per image (the suite's "models"), on the
  // full-detail references
  const tokTask = suite.tasks.find((t) => t.kind === 'tokens-per-image');
  const variantNotes: string[] = [];
  if (tokTask?.kind === 'tokens-per-image' && comps) {
    for (const v of tokTask.models ?? []) {
      if (!fs.existsSync(path.join(v.dir, 'model_index.json'))) {
        variantNotes.push(`${v.label}: not available (no model folder at \`${v.dir}\`)`);
        continue;
      }
      const vc = await loadComponents(v.dir);
      const g = await generator(vc, gopts, (c) => c.segments);
      for (const c of cases.filter((x) => x.task === 'tokens-per-image' && x.setting === 'full')) {
        const vcase: Case = { ...c, id: `${c.id}-${v.label}`, setting: `full, ${v.label} (${vc.prompt.tokensPerImage} tokens/image)` };
        cases.push(vcase);
        for (const seed of suite.seeds) {
          const image = await g(vcase, seed);
          outputs.push({ case: vcase, system: 'mumu', seed, image, scores: score(judge, vcase, image, vocab) });
        }
      }
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  await writeGrids(o.grids, cases, outputs);
  const tokensPerImage = comps?.prompt.tokensPerImage ?? null;
  const tokensPlot = (await writeTokensPlot(path.join(o.grids, TOKENS_PLOT), outputs.filter((x) => x.case.task === 'tokens-per-image'), tokensPerImage)) ? path.join(o.grids, TOKENS_PLOT) : null;
  const evalReportFile = typeof o.evaluator === 'string' ? path.join(o.evaluator, 'report.json') : '';
  const evalReport = evalReportFile && fs.existsSync(evalReportFile) ? (JSON.parse(fs.readFileSync(evalReportFile, 'utf8')) as EvaluatorReport) : null;
  const trained = typeof o.evaluator === 'string' ? ((JSON.parse(fs.readFileSync(path.join(o.evaluator, 'config.json'), 'utf8')) as { _trained?: Record<string, unknown> })._trained ?? null) : null;
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  // a hand-written closing section (from NOTES_MARKER on) survives regeneration
  const old = fs.existsSync(o.out) ? fs.readFileSync(o.out, 'utf8') : '';
  const notes = old.includes(NOTES_MARKER) ? old.slice(old.indexOf(NOTES_MARKER)) : '';
  fs.writeFileSync(o.out, (notes ? (s: string) => `${s}\n${notes}` : (s: string) => s)(markdown({ suite, model: o.model ?? null, steps, cases, outputs, systems, evaluator, evalReport, trained, seconds, out: o.out, grids: o.grids, tokensPerImage, variantNotes, tokensPlot })));
  return { outputs, systems };
}

export function score(judge: Judge, c: Case, image: RgbImage, vocab: number[]): Scores {
  const v = judge.views(image);
  const wins = v.windows.map((w) => w.embedding);
  const objs = c.references.filter((r) => r.role === 'object');
  const pres = objs.map((r) => conceptPreservation(judge.embed(r.image).embedding, wins));
  let bestWindow: number[] | null = null;
  if (objs.length) {
    const ref = judge.embed(objs[0]!.image).embedding;
    bestWindow = wins.reduce((a, b) => (cosine(ref, b) > cosine(ref, a) ? b : a));
  }
  const logits = v.windows.map((w) => w.conceptLogits);
  const named = c.named.map((n) => judge.conceptIndex(n));
  const st = styleAdherence(v.whole.styleLogits, judge.styleIndex(c.style));
  const leak = c.leak.length ? conceptsPresent(c.leak.map((n) => judge.conceptIndex(n)), logits, vocab) : NaN;
  return {
    preservation: pres.length ? mean(pres) : NaN,
    control: c.control ? conceptPreservation(judge.embed(c.control).embedding, wins) : NaN,
    following: promptFollowing(named, logits, vocab),
    style: st.hit ? 1 : 0,
    styleProb: st.prob,
    copy: c.references.length ? Math.max(...c.references.map((r) => copyPaste(r.image, image))) : NaN,
    leak,
    embedding: v.whole.embedding,
    bestWindow,
  };
}

// ---- grids: one PNG per task; a row per case: references, then each system's outputs (seeds left to right) ----
const gray = (w: number, h = w): RgbImage => ({ width: w, height: h, channels: 3, data: new Uint8Array(w * h * 3).fill(200) });

export const gridFile = (task: string) => `${task}.png`;

async function writeGrids(dir: string, cases: Case[], outputs: Output[]): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const tasks = [...new Set(cases.map((c) => c.task))];
  for (const task of tasks) {
    const cs = cases.filter((c) => c.task === task);
    const cell = Math.max(64, cs[0]!.oracle.width);
    const maxRefs = Math.max(...cs.map((c) => c.references.length));
    const systems = [...new Set(outputs.filter((o) => o.case.task === task).map((o) => o.system))];
    const rows = cs.map((c) => {
      const refs = c.references.map((r) => r.image);
      while (refs.length < maxRefs) refs.push(gray(cell));
      const outs = systems.flatMap((s) => [gray(6, cell), ...outputs.filter((o) => o.case === c && o.system === s).map((o) => o.image)]);
      return [...refs, ...outs];
    });
    // white between cells; the thin gray bars before each system's outputs keep their width
    const png = await encodePng(gridRows(rows, { cell, background: 255 }));
    fs.writeFileSync(path.join(dir, gridFile(task)), png);
  }
}

// ---- the report ----
interface MarkdownInput {
  suite: Suite; model: string | null; steps: number; cases: Case[]; outputs: Output[]; systems: SystemState[];
  evaluator: EmojiEvaluator; evalReport: EvaluatorReport | null; trained: Record<string, unknown> | null; seconds: number; tokensPerImage: number | null; variantNotes: string[]; out: string; grids: string;
  tokensPlot: string | null;
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
  'same-image': 'Each reference is a crop of the target scene (its box, padded square with black), inserted right before its words, as the bootstrap makes training prompts (paper section 4). Style is named in the text.',
  harmonise: 'Each reference is drawn in a different style from the one the text asks for; success is the asked style (style column) while keeping each reference\'s concept (preservation) without pasting it (copy).',
  'style-transfer': 'The prompt names the object in words and gives the style only as an image of *other* objects in that style where training captions name it (`..., <img> style`); the text never names the style. Leak = share of the style image\'s objects found in the output with probability >= 0.5 in some window (lower is better). The text-only rows get the style named in words; describe gets the evaluator\'s reading of the style image.',
  'tokens-per-image': TOKENS_NOTE,
  'lora-merge': 'No style words in the prompt: the style should come from the UNet. MUMU with its own UNet against MUMU merged into the single-style fine-tune of the base (paper Figure 9): its UNet LoRA merged in, or, for a fully trained MUMU UNet, its weight delta from the base added (see Systems). Style column: the fine-tune\'s style.',
  character: 'One reference object, several prompts (other objects, backgrounds). Consistency = mean pairwise cosine between the outputs\' windows closest to the reference, across prompts and seeds.',
};

function markdown(m: MarkdownInput): string {
  const L: string[] = [];
  const rel = (p: string) => path.relative(path.dirname(m.out), p).split(path.sep).join('/');
  L.push('# mumu results', '');
  L.push(`Written by \`mumu eval ${m.model ? `--model ${m.model}` : '--no-model'} --suite ${m.suite.name}\` on ${new Date().toISOString().slice(0, 10)}. Every number below comes from that run; `
    + 're-running the command reproduces it (fixed prompts, references and seeds).', '');
  L.push('| setting | value |', '|---|---|');
  L.push(`| model | ${m.model ? `\`${m.model}\`` : 'none (renders only; generator numbers pending)'} |`, `| suite | \`${m.suite.name}\` (${m.cases.length} cases) |`, `| sampler | DDIM, ${m.steps} steps, guidance ${m.suite.guidance_scale} |`);
  L.push(`| seeds | ${m.suite.seeds.join(', ')} (image seed = seed; references drawn with seed ${m.suite.reference_seed}) |`);
  L.push(`| evaluator | \`${m.evaluator.config.image_size} px CNN, ${m.evaluator.numParameters()} parameters, ${m.evaluator.config.concepts.length} concepts, ${m.evaluator.config.styles.length} styles\` |`);
  L.push(`| wall time | ${m.seconds.toFixed(0)} s |`, '');

  L.push('## The evaluator and its own accuracy', '');
  L.push('A small CNN (`src/eval/evaluator.ts`: conv 3x3 + GroupNorm + SiLU stages, 24-48-96-192 channels, 32 px input), with its own seed, '
    + 'trained only on EmojiWorld renders of every concept in every style (single-object crops and 1-3 object scenes; `src/eval/renders.ts`), '
    + 'never on any generator output. It has an L2-normalised 128-d embedding, a concept head (cosine classifier on the embedding, '
    + 'trained with a soft multi-label target over the objects shown) and a style head. '
    + 'About 5% of (style, concept) drawings are withheld from its training, to measure it on drawings it never saw.'
    + (m.trained ? ` ${trainedLine(m.trained)}` : ''), '');
  if (m.evalReport) {
    L.push('| held-out set (renders it never trained on) | n | concept top-1 (all concepts) | top-5 | top-1 among the suite\'s concepts | style |', '|---|---|---|---|---|---|');
    for (const r of m.evalReport.rows) L.push(`| ${r.set} | ${r.n} | ${pct(r.top1)} | ${pct(r.top5)} | ${r.vocabTop1 === null ? '–' : pct(r.vocabTop1)} | ${pct(r.style)} |`);
    L.push('', 'Scenes: top-1 = every object of the scene ranked within the top k (k = number of objects); top-5 = within the top k + 4.', '');
  } else L.push('(no report.json beside the evaluator: its accuracy was not measured for this run)', '');

  L.push('## Metrics', '');
  L.push('Every output is looked at whole and through 13 square windows (3/4 and 1/2 of the side, stride 1/4), each resampled to the evaluator\'s 32 px.', '');
  L.push('- **Preservation** (DreamBench CLIP-I / DINO analogue): for each object reference, the best cosine between its embedding and any window of the output; averaged over references. 1 = the evaluator sees the same thing. **(unrelated)**: the same statistic for a crop of a suite concept the prompt does not ask for, drawn in the first reference\'s style: the chance level of a best-of-14-windows cosine. Only the gap between the two means anything.');
  L.push(`- **Following** (CLIP-T analogue): of the K concepts the prompt names, the fraction found: each window's concept logits are softmaxed over the suite's ${m.suite.vocabulary.length} concepts, a concept scores its best window probability, and a named concept is found if it ranks in the top K.`);
  L.push('- **Style**: the style head on the whole output picks the asked style (accuracy over outputs).');
  L.push(`- **Copy**: template matching: the reference resampled to every size from 1/4 of the output's side to all of it and slid over the output; the best Pearson correlation of pixels. **copied** = share of outputs with copy >= ${COPY_PASTE_THRESHOLD}. High preservation with high copy is pasting, not success (the paper warns its similarity scores rewarded copy-paste). In same-image crops the target itself contains the crops, so a faithful reconstruction copies by construction (see the render row); copying matters where the output should redraw: harmonisation, style transfer, character.`);
  L.push('- **Diversity**: mean pairwise 1 - cosine of whole-image embeddings across the seeds of one prompt (0 = the same picture every seed).');
  L.push('- Rows split into **train** cases (concepts and styles the generator trained on) and **held-out** cases (a concept the generator never saw, or the emojione style). The EmojiWorld render row scores the ground-truth picture of the caption: what a perfect, non-copying generator would reach on these metrics.', '');

  L.push('## Systems', '');
  L.push('- **MUMU**: the model folder with the multimodal prompt (references inserted before their words).');
  L.push('- **MUMU, caption only**: the same model given only the words of the prompt (the style named in words where the prompt had a style image): what the images add.');
  L.push('- **text-only base model**: the CLIP text encoder and the UNet without MUMU\'s LoRA (the model MUMU started from; paper section 5), given the caption.');
  L.push('- **describe the images**: the paper\'s ChatGPT + DALL-E 3 comparison (its Figure 4) in miniature: each reference image is replaced by the evaluator\'s reading of it (its top concept among the suite\'s, or its style for a style image) and the text-only base model draws that caption. Our prompts already name each object in words, so this equals the text-only row wherever the evaluator reads every reference right; it differs when it misreads, and in style transfer, where the style exists only as an image.');
  L.push('- **MUMU merged into the style fine-tune** (Finding 4): MUMU\'s encoder (VLM + adapter) unchanged, with the UNet of a fine-tune of the text-only base on a single style plus what MUMU\'s training changed in the base UNet. '
    + 'When MUMU trained its UNet as a LoRA (paper Table 1), that LoRA merged into the fine-tune\'s UNet (W_ft + B A, paper Figure 9). '
    + 'When MUMU trained its UNet fully, task arithmetic: W_ft + (W_mumu - W_base) for every UNet tensor, W_base being the text-only UNet the MUMU stage started from (`--base`); '
    + 'the LoRA merge is the special case where W_mumu - W_base = B A is low rank. The three UNets must have the same tensors (keys and shapes), or the row says what differs.');
  L.push('- **EmojiWorld render**: the ground-truth picture of the caption, scored like an output: the ceiling a faithful, non-copying generator would reach.', '');

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
      L.push(...tokensTable(outs, { nativeTokens: m.tokensPerImage, mumuWhy: mumu.gen ? null : mumu.why, hasModels: !!t?.models?.length, variantNotes: m.variantNotes }));
      if (m.tokensPlot) L.push('', `![tokens per image](${rel(m.tokensPlot)})`);
    } else {
      L.push(`| system | split | n | preservation | (unrelated) | following | style | copy | copied | diversity |${extra.map((e) => ` ${e} |`).join('')}`);
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
          L.push(`| ${titleOf(sys)} | ${sp} | ${a.n} | ${num(a.preservation)} | ${num(a.control)} | ${pct(a.following)} | ${pct(a.style)} | ${num(a.copy)} | ${pct(a.copied)} | ${num(a.diversity)} |${ex}`);
        }
      }
    }
    if (task === 'lora-merge') {
      const merged = m.systems.find((x) => x.name === 'lora-merge');
      if (merged?.note) L.push('', `Merged: ${merged.note}.`);
    }
    const shown = [...new Set(outs.map((o) => o.system))];
    L.push('', `![${task}](${rel(path.join(m.grids, gridFile(task)))})`, '');
    L.push(`Grid: one row per case; first the reference image(s) (gray = none), then, after a thin gray bar each, ${shown.map(titleOf).join('; ')}`
      + ` (generated systems: seeds ${m.suite.seeds.join(', ')} left to right).`, '');
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
  return (prev ? `${trainedLine(prev)} Then continued: ` : '')
    + `${prev ? '' : 'Trained '}${t.steps} steps of batch ${t.batch_size} at lr ${t.lr ?? 2e-3} (AdamW, cosine) in ${t.seconds} s on one CPU thread; `
    + `${focus ? `${Math.round(100 * focus.fraction)}% of samples show one of the ${focus.slugs.length} suite concepts first, the rest any seen drawing; ` : ''}`
    + `${Math.round(100 * Number(t.scene_fraction ?? 0.5))}% of samples are scenes`
    + `${t.empty_fraction ? `, ${Math.round(100 * Number(t.empty_fraction))}% backgrounds alone (uniform concept target)` : ''}.`;
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
      const best = others.map((s) => ({ s, v: aggregate(outs.filter((o) => o.system === s))[metric] })).filter((x) => !Number.isNaN(x.v)).sort((a, b) => b.v - a.v)[0];
      if (!best || Number.isNaN(mu[metric])) continue;
      const fmt = metric === 'preservation' ? num : pct;
      lines.push(`- ${TASK_TITLES[task]}, ${metric}: MUMU ${fmt(mu[metric])} vs best baseline (${SYSTEM_TITLES[best.s]}) ${fmt(best.v)}: ${mu[metric] > best.v ? '**MUMU ahead**' : mu[metric] === best.v ? 'tie' : '**baseline ahead**'}.`);
    }
    if (mu.copied > 0) lines.push(`- ${TASK_TITLES[task]}: ${pct(mu.copied)} of MUMU outputs are copies of a reference (copy >= ${COPY_PASTE_THRESHOLD}).`);
  }
  const tok = tokensSummary(m.outputs.filter((o) => o.case.task === 'tokens-per-image'), m.tokensPerImage);
  if (tok) lines.push(tok);
  L.push(...(lines.length ? lines : ['- no generated outputs to compare.']), '');
  return L.join('\n');
}
