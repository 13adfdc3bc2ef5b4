// Does a text-to-image base use its captions, and does it draw what they ask? The proxy measure of the recipe A/Bs
// (docs/TRAINING.md, "Recipe A/Bs"), in two parts:
// 1. the caption gap: 8 fixed EmojiWorld scenes encoded by the VAE, noised at a few timesteps, and the UNet's error
//    (in its own target, eps or v, per the model's scheduler config) given the right caption, the empty caption and
//    a wrong caption (another scene's). A base that ignores its text has the same error for right and wrong captions.
// 2. with --generate: one single-object prompt per concept of the suite vocabulary (a fixed background colour and
//    style each) and one two-object prompt per pair, drawn through MumuPipeline at two seeds, scored by the
//    independent evaluator: following (top-K among the 28 concepts, as `mumu eval`), asked style, and background
//    (the asked colour is the nearest EmojiWorld colour to the image's border pixels). Writes a contact sheet.
// --encoder vlm reads the same text-only prompts through MUMU's encoder (VLM -> adapter) instead of the text encoder:
// how well a MUMU model (or the adapter's warm start) follows text alone.
//   node --single-threaded-gc --import tsx scripts/conditioning-check.ts <model folder> [--encoder text|vlm]
//     [--weights F.safetensors] [--generate] [--steps 20] [--guidance 4] [--sheet out.png] [--json out.json]
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { MumuModel } from '../src/models/index.ts';
import { PromptTokenizer } from '../src/prompt/index.ts';
import { EmojiWorld, COLORS, STYLES } from '../src/data/emoji-world/index.ts';
import { tensor, randn, Generator, noGrad, type Tensor } from '../src/torch/index.ts';
import { loadSafetensors } from '../src/torch/safetensors.ts';
import {
  addNoise,
  diffusionTarget,
  readSchedulerConfig,
  scheduleFromConfig,
  SD_SCHEDULER_CONFIG,
} from '../src/diffusion/index.ts';
import { MumuPipeline, componentsFromModel } from '../src/pipeline.ts';
import { EmojiEvaluator } from '../src/eval/evaluator.ts';
import { Judge, scoreAsked } from '../src/eval/metrics.ts';
import { encodePng, gridRows, type RgbImage } from '../src/image/index.ts';
import { readSuite } from '../src/eval/tasks.ts';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    encoder: { type: 'string' },
    weights: { type: 'string' },
    generate: { type: 'boolean' },
    steps: { type: 'string' },
    guidance: { type: 'string' },
    sheet: { type: 'string' },
    json: { type: 'string' },
  },
});
const dir = positionals[0];
if (!dir) {
  console.error(
    'usage: conditioning-check.ts <model folder> [--weights F.safetensors] [--generate] [--steps N] [--guidance G] [--sheet F.png] [--json F.json]',
  );
  process.exit(2);
}
const model = MumuModel.load(dir).eval();
const encoder = (o.encoder ?? 'text') as 'text' | 'vlm';
if (encoder !== 'text' && encoder !== 'vlm') {
  console.error(`--encoder must be text or vlm, got ${encoder}`);
  process.exit(2);
}
if (encoder === 'text' && !model.text_encoder) {
  console.error(`${dir} has no text_encoder: pass --encoder vlm to read prompts through the VLM and adapter`);
  process.exit(2);
}
if (o.weights) model.loadStateDict(loadSafetensors(o.weights).tensors, { strict: false });
const tok = await PromptTokenizer.fromFile(`${dir}/tokenizer/tokenizer.json`);
const schedFile = `${dir}/scheduler/scheduler_config.json`;
const scheduler = fs.existsSync(schedFile) ? await readSchedulerConfig(schedFile) : SD_SCHEDULER_CONFIG;
const schedule = scheduleFromConfig(scheduler);
const side = model.vae.config.sample_size;
// the evaluation suite's concepts (configs/eval-full.json), the 28 the training configs draw
const VOCAB = readSuite('full').vocabulary;
const report: Record<string, unknown> = { model: dir, weights: o.weights ?? null, encoder, scheduler };

// ---- 1. the caption gap ----
const world = new EmojiWorld({
  size: side,
  seed: 99,
  objectCounts: [0.5, 0.5],
  backgrounds: { solid: 1 },
  concepts: { slugs: ['dog-face', 'rocket', 'sun', 'red-apple', 'banana', 'frog', 'pizza', 'house'] },
});
const B = 8;
const scenes = Array.from({ length: B }, (_, i) => world.scene(i * 4));
const pixels = new Float32Array(B * 3 * side * side);
scenes.forEach((sc, b) => {
  for (let i = 0; i < side * side; i++)
    for (let c = 0; c < 3; c++) pixels[(b * 3 + c) * side * side + i] = sc.image.data[i * 3 + c]! / 127.5 - 1;
});
const encode = (captions: string[]): { context: Tensor; mask: Tensor } => {
  const ids = captions.map((c) => [...(tok.bosId !== undefined ? [tok.bosId] : []), ...tok.encodeText(c)]);
  const T = Math.max(...ids.map((x) => x.length));
  const idArr = new BigInt64Array(B * T),
    maskArr = new Float32Array(B * T);
  ids.forEach((x, b) =>
    x.forEach((v, i) => {
      idArr[b * T + i] = BigInt(v);
      maskArr[b * T + i] = 1;
    }),
  );
  const mask = tensor(maskArr, { shape: [B, T] });
  const ids_ = tensor(idArr, { shape: [B, T] });
  return {
    context:
      encoder === 'text'
        ? model.encodeText(ids_, mask)
        : model.encodePrompt({ inputIds: ids_, pixelValues: null, attentionMask: mask }),
    mask,
  };
};
const gap: { t: number; right: number; empty: number; wrong: number; ratio: number }[] = [];
noGrad(() => {
  const z = model.vae.scaleLatents(model.vae.encode(tensor(pixels, { shape: [B, 3, side, side] })).mode());
  const captions = scenes.map((s) => s.caption);
  const right = encode(captions),
    empty = encode(captions.map(() => '')),
    wrong = encode(captions.map((_, i) => captions[(i + 3) % B]!));
  const g = new Generator(0);
  console.log(`caption gap (${scheduler.prediction_type} error)\nt     right    empty    wrong    wrong/right`);
  for (const t of [50, 200, 500, 800, 950]) {
    const noise = randn([...z.shape], { generator: g });
    const ts = new Array(B).fill(t);
    const zt = addNoise(schedule, z, noise, ts);
    const target = diffusionTarget(schedule, z, noise, ts, scheduler.prediction_type);
    const tt = tensor(new BigInt64Array(B).fill(BigInt(t)), { shape: [B] });
    const err = (c: { context: Tensor; mask: Tensor }) =>
      model.unet.forward(zt, tt, c.context, { encoderAttentionMask: c.mask }).sub(target).pow(2).mean().item();
    const [r, e, w] = [err(right), err(empty), err(wrong)];
    gap.push({ t, right: r, empty: e, wrong: w, ratio: w / r });
    console.log(`${String(t).padEnd(5)} ${r.toFixed(4)}   ${e.toFixed(4)}   ${w.toFixed(4)}   ${(w / r).toFixed(3)}`);
  }
});
report.caption_gap = gap;
report.mean_gap_ratio = gap.reduce((a, x) => a + x.ratio, 0) / gap.length;

// ---- 2. what it draws ----
if (o.generate) {
  const steps = Number(o.steps ?? 20),
    guidance = Number(o.guidance ?? 4),
    seeds = [0, 1];
  const trainStyles = STYLES.filter((s) => s.id !== 'emojione');
  const colorNames = Object.keys(COLORS);
  const label = (slug: string) => slug.replace(/-/g, ' ');
  const article = (w: string) => (/^[aeiou]/.test(w) ? 'an' : 'a');
  interface Case {
    named: string[];
    style: string;
    bg: string;
    caption: string;
  }
  const cases: Case[] = [];
  VOCAB.forEach((c, i) => {
    const style = trainStyles[i % trainStyles.length]!,
      bg = colorNames[(i * 5) % colorNames.length]!;
    cases.push({
      named: [c],
      style: style.id,
      bg,
      caption: `${article(label(c))} ${label(c)} on ${article(bg)} ${bg} background, ${style.phrase} style`,
    });
  });
  for (let i = 0; i < VOCAB.length; i += 2) {
    const [a, b] = [VOCAB[i]!, VOCAB[(i + 9) % VOCAB.length]!];
    const style = trainStyles[(i / 2) % trainStyles.length]!,
      bg = colorNames[(i * 3 + 1) % colorNames.length]!;
    cases.push({
      named: [a, b],
      style: style.id,
      bg,
      caption: `${article(label(a))} ${label(a)} and ${article(label(b))} ${label(b)} on ${article(bg)} ${bg} background, ${style.phrase} style`,
    });
  }
  const pipe = new MumuPipeline(componentsFromModel(model, { tokenizer: tok, scheduler, name: dir, encoder }));
  const judge = new Judge(EmojiEvaluator.load('models/evaluator'));
  const rows: RgbImage[][] = [];
  const score = { one: { follow: 0, style: 0, bg: 0, n: 0 }, two: { follow: 0, style: 0, bg: 0, n: 0 } };
  const t0 = performance.now();
  for (const cs of cases) {
    const row: RgbImage[] = [];
    for (const seed of seeds) {
      const r = await pipe.generate([{ text: cs.caption }], { steps, guidanceScale: guidance, seed });
      const im = r.images[0]! as RgbImage;
      row.push(im);
      const asked = scoreAsked(judge, im, { named: cs.named, style: cs.style, background: cs.bg }, VOCAB);
      const s = cs.named.length === 1 ? score.one : score.two;
      s.follow += asked.following;
      s.style += asked.style!;
      s.bg += asked.background!;
      s.n++;
    }
    rows.push(row);
  }
  const pct = (x: { follow: number; style: number; bg: number; n: number }) => ({
    n: x.n,
    following: x.follow / x.n,
    style: x.style / x.n,
    background: x.bg / x.n,
  });
  report.generate = {
    steps,
    guidance,
    seeds,
    one_object: pct(score.one),
    two_objects: pct(score.two),
    seconds: (performance.now() - t0) / 1000,
  };
  console.log(`generated ${cases.length * seeds.length} images in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  console.log('one object :', JSON.stringify(pct(score.one)));
  console.log('two objects:', JSON.stringify(pct(score.two)));
  if (o.sheet) {
    // 8 cases per sheet row, both seeds side by side
    const flat: RgbImage[][] = [];
    for (let i = 0; i < rows.length; i += 8) flat.push(rows.slice(i, i + 8).flat());
    fs.writeFileSync(o.sheet, await encodePng(gridRows(flat)));
  }
}
if (o.json) fs.writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
