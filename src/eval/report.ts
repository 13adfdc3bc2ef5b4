// `mumu eval`: runs a suite's cases through every system that exists (MUMU, MUMU on the caption alone, the text-only
// base model, the "describe the images" baseline, MUMU's LoRA merged into a style fine-tune), scores every output
// with the independent evaluator, draws the PNG grids, and hands the results to markdown.ts for docs/RESULTS.md.
import fs from 'node:fs';
import path from 'node:path';
import { MumuPipeline, loadComponents, componentsFromModel, type MumuComponents } from '../pipeline.ts';
import { MumuModel } from '../models/index.ts';
import { unloadLora, ADAPTER_CONFIG } from '../nn/index.ts';
import { encodePng, gridRows, type RgbImage } from '../image/index.ts';
import { EmojiEvaluator, type EvaluatorReport } from './evaluator.ts';
import {
  Judge,
  conceptPreservation,
  promptFollowing,
  conceptsPresent,
  styleAdherence,
  copyPaste,
  cosine,
} from './metrics.ts';
import { readSuite, buildCases, conceptLabel, stylePhrase, type Case, type Suite } from './tasks.ts';
import type { PromptSegment } from '../prompt/index.ts';
import {
  mean,
  GENERATED_SYSTEMS,
  SYSTEMS_FOR,
  type CaseGenerator,
  type Output,
  type Scores,
  type SystemName,
  type SystemState,
} from './aggregate.ts';
import { writeReport, gridFile } from './markdown.ts';
import { mergedComponents, defaultBase, loadUnet } from './merge.ts';
import { writeTokensPlot, TOKENS_PLOT } from './tokens.ts';

export { aggregate, type Aggregate, type Output, type Scores, type SystemName } from './aggregate.ts';

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
  // generate only these systems (the render is always scored); the others are reported as left out. An A/B of
  // adapters needs only 'mumu' and 'mumu-caption': the baselines are the same for every arm.
  systems?: SystemName[];
  command?: string; // the command line, for the report's first line (default: rebuilt from model, suite, out, grids)
  log?: (s: string) => void;
}

async function generator(
  c: MumuComponents,
  o: { steps: number; guidance: number },
  prompt: (cs: Case) => string | PromptSegment[],
): Promise<CaseGenerator> {
  const pipes = new Map<number, MumuPipeline>();
  // a case with a reference size: the same components, only the prompt side (image side, placeholders) changed
  const pipeFor = (side = 0) => {
    if (!pipes.has(side)) {
      if (side && !c.atReferenceSize)
        throw new Error(`${c.name}: these components cannot encode references at another side`);
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
// With `base` a text-only model folder (such as runs/t2i-base/model), that folder's text encoder and UNet instead;
// with `base` a UNet folder (the base_unet/ a shipped model carries), that UNet and the folder's own text encoder.
function baseComponents(dir: string, c: MumuComponents, base?: string): MumuComponents | string {
  const unetOnly = base !== undefined && !fs.existsSync(path.join(base, 'model_index.json'));
  if (unetOnly && !fs.existsSync(path.join(base, 'config.json')))
    return `not available: no model folder or UNet folder at ${base}`;
  const m = MumuModel.load(unetOnly ? dir : (base ?? dir)).eval();
  if (unetOnly) m.unet = loadUnet(base).eval();
  if (!m.text_encoder)
    return `not available: ${base ? base : 'the model folder'} has no text_encoder (no text-only base model to compare with)`;
  if (!base && !fs.existsSync(path.join(dir, 'unet', ADAPTER_CONFIG)))
    return 'not available: the UNet has no separate MUMU LoRA, so the base UNet cannot be recovered (pass --base DIR)';
  unloadLora(m.unet, { merge: false });
  return componentsFromModel(m, {
    tokenizer: c.prompt.tokenizer,
    scheduler: c.scheduler,
    device: c.device,
    name: `${base ?? dir} (text-only)`,
    encoder: 'text',
  });
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
  const outSize = comps
    ? (await new MumuPipeline(comps).generate('a', { steps: 1, seed: 0, guidanceScale: 1 })).images[0]!.width
    : (o.outSize ?? 64);
  const cases = buildCases(suite, { outSize });
  // tokens per image at other reference sides: checked against this model's ViT before anything runs
  for (const c of cases.filter((x) => x.referenceSize !== undefined && comps)) {
    if (!comps!.atReferenceSize)
      throw new Error(`suite ${suite.name}: reference_sizes: ${comps!.name} cannot encode references at another side`);
    try {
      c.tokensPerImage = comps!.atReferenceSize(c.referenceSize!).prompt.tokensPerImage;
    } catch (e) {
      throw new Error(`suite ${suite.name}: tokens-per-image reference_sizes: ${(e as Error).message}`);
    }
    c.setting = `${c.setting}, ${c.tokensPerImage} tokens/image`;
  }
  log(
    `${cases.length} cases, ${suite.seeds.length} seeds, ${steps} steps, guidance ${suite.guidance_scale}, output ${outSize} px`,
  );

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
    if (styleRef)
      cap = cap.replace(
        /, [a-z0-9 ]+ style$/,
        `, ${stylePhrase(judge.describe(styleRef.image, vocabulary).style)} style`,
      );
    return cap;
  };

  const systems: SystemState[] = [{ name: 'render', gen: null, why: '' }];
  if (comps) {
    const want = (n: SystemName) => !o.systems || o.systems.includes(n);
    const leftOut = 'not run: left out by --systems';
    const baseDir = defaultBase(o.model!, o.base);
    const base = want('text-only') || want('describe') ? baseComponents(o.model!, comps, baseDir) : leftOut;
    const merged = want('lora-merge')
      ? mergedComponents(
          o.model!,
          o.finetune ??
            (suite.tasks.find((t) => t.kind === 'lora-merge') as { finetune?: string } | undefined)?.finetune,
          baseDir,
          comps,
        )
      : leftOut;
    // a system: generated from these components, or not run (the components' reason, or left out by --systems)
    const system = async (
      name: SystemName,
      from: MumuComponents | string,
      prompt: (cs: Case) => string | PromptSegment[],
    ): Promise<SystemState> =>
      typeof from === 'string' || !want(name)
        ? { name, gen: null, why: typeof from === 'string' ? from : leftOut }
        : { name, gen: await generator(from, gopts, prompt), why: '' };
    systems.push(
      await system('mumu', comps, (c) => c.segments),
      await system('mumu-caption', comps, (c) => c.caption),
      await system('text-only', base, (c) => c.caption),
      await system('describe', base, describe),
      typeof merged === 'string'
        ? { name: 'lora-merge', gen: null, why: merged }
        : {
            name: 'lora-merge',
            gen: await generator(merged.components, gopts, (c) => c.segments),
            why: '',
            title: merged.title,
            note: merged.note,
          },
    );
  } else {
    const why = 'pending: no model was evaluated in this run';
    for (const name of GENERATED_SYSTEMS) systems.push({ name, gen: null, why });
  }

  const outputs: Output[] = [];
  for (const c of cases) {
    for (const s of systems.filter((x) => SYSTEMS_FOR[c.task].includes(x.name))) {
      if (s.name === 'render') {
        if (c.task === 'tokens-per-image' && c.setting !== 'full') continue;
        outputs.push({
          case: c,
          system: 'render',
          seed: null,
          image: c.oracle,
          scores: score(judge, c, c.oracle, vocab),
        });
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
        const vcase: Case = {
          ...c,
          id: `${c.id}-${v.label}`,
          setting: `full, ${v.label} (${vc.prompt.tokensPerImage} tokens/image)`,
        };
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
  const tokensPlot = (await writeTokensPlot(
    path.join(o.grids, TOKENS_PLOT),
    outputs.filter((x) => x.case.task === 'tokens-per-image'),
    tokensPerImage,
  ))
    ? path.join(o.grids, TOKENS_PLOT)
    : null;
  const evalReportFile = typeof o.evaluator === 'string' ? path.join(o.evaluator, 'report.json') : '';
  const evalReport =
    evalReportFile && fs.existsSync(evalReportFile)
      ? (JSON.parse(fs.readFileSync(evalReportFile, 'utf8')) as EvaluatorReport)
      : null;
  const trained =
    typeof o.evaluator === 'string'
      ? ((
          JSON.parse(fs.readFileSync(path.join(o.evaluator, 'config.json'), 'utf8')) as {
            _trained?: Record<string, unknown>;
          }
        )._trained ?? null)
      : null;
  writeReport(o.out, {
    suite,
    model: o.model ?? null,
    steps,
    cases,
    outputs,
    systems,
    evaluator,
    evalReport,
    trained,
    seconds,
    out: o.out,
    grids: o.grids,
    tokensPerImage,
    variantNotes,
    tokensPlot,
    command: o.command,
  });
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
  const leak = c.leak.length
    ? conceptsPresent(
        c.leak.map((n) => judge.conceptIndex(n)),
        logits,
        vocab,
      )
    : NaN;
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
const gray = (w: number, h = w): RgbImage => ({
  width: w,
  height: h,
  channels: 3,
  data: new Uint8Array(w * h * 3).fill(200),
});

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
      const outs = systems.flatMap((s) => [
        gray(6, cell),
        ...outputs.filter((o) => o.case === c && o.system === s).map((o) => o.image),
      ]);
      return [...refs, ...outs];
    });
    // white between cells; the thin gray bars before each system's outputs keep their width
    const png = await encodePng(gridRows(rows, { cell, background: 255 }), {}, { palette: true });
    fs.writeFileSync(path.join(dir, gridFile(task)), png);
  }
}
