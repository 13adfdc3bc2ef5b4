// One prompt, as a user types it, drawn over several seeds and scored by the independent evaluator: the bar of
// issue 12 scores the README's first prompt this way (docs/RESULTS-full.md, "The README's prompt"). The prompt goes
// through exactly what `mumu generate` runs (MumuPipeline.fromPretrained, <img:path> references, the model's
// scheduler); what it asks is read from its words: the suite's concepts it names, "on a <colour> background" and
// "<style> style". Prints following, asked style and asked background per seed and in all, and writes the images
// side by side.
//   node --single-threaded-gc --import tsx scripts/prompt-check.ts "<prompt>" [--model DIR] [--seeds 8]
//     [--steps 50] [--guidance 6] [--sheet out.png] [--json out.json]
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { MumuPipeline } from '../src/pipeline.ts';
import { parsePromptText } from '../src/prompt/index.ts';
import { EmojiEvaluator } from '../src/eval/evaluator.ts';
import { Judge, scoreAsked } from '../src/eval/metrics.ts';
import { readSuite } from '../src/eval/tasks.ts';
import { COLORS, STYLES } from '../src/data/emoji-world/index.ts';
import { encodePng, gridRows, type RgbImage } from '../src/image/index.ts';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    model: { type: 'string', default: 'models/emoji-default' },
    seeds: { type: 'string', default: '8' },
    steps: { type: 'string', default: '50' },
    guidance: { type: 'string', default: '6' },
    sheet: { type: 'string' },
    json: { type: 'string' },
  },
});
const prompt = positionals[0];
if (!prompt) {
  console.error(
    'usage: prompt-check.ts "<prompt>" [--model DIR] [--seeds N] [--steps N] [--guidance G] [--sheet F.png] [--json F.json]',
  );
  process.exit(2);
}

// what the words ask: suite concepts named (longest label first, so "dog face" is not read as "dog"), colour, style
const words = parsePromptText(prompt)
  .map((p) => ('text' in p ? p.text : ' '))
  .join(' ')
  .replace(/\s+/g, ' ')
  .toLowerCase();
const vocabulary = readSuite('full').vocabulary;
let rest = ` ${words} `;
const named: string[] = [];
for (const slug of [...vocabulary].sort((a, b) => b.length - a.length)) {
  const label = ` ${slug.replace(/-/g, ' ')} `;
  if (rest.includes(label)) {
    named.push(slug);
    rest = rest.replace(label, ' ');
  }
}
const background = /on an? (\w+) background/.exec(words)?.[1] ?? null;
const style = STYLES.find((s) => words.includes(`${s.phrase.toLowerCase()} style`))?.id ?? null;
if (background !== null && !(background in COLORS)) {
  console.error(`'${background}' is not an EmojiWorld colour (${Object.keys(COLORS).join(', ')})`);
  process.exit(2);
}
if (named.length === 0) {
  console.error(`the prompt names none of the suite's concepts (${vocabulary.join(', ')}): nothing to score`);
  process.exit(2);
}
console.log(`asks for: ${named.join(' + ')}, background ${background ?? '-'}, style ${style ?? '-'}`);

const pipe = await MumuPipeline.fromPretrained(o.model!);
const judge = new Judge(EmojiEvaluator.load('models/evaluator'));
const seeds = Array.from({ length: Number(o.seeds) }, (_, i) => i);
const images: RgbImage[] = [];
const rows: { seed: number; following: number; style: number | null; background: number | null }[] = [];
const t0 = performance.now();
for (const seed of seeds) {
  const r = await pipe.generate(prompt, { steps: Number(o.steps), guidanceScale: Number(o.guidance), seed });
  const im = r.images[0]! as RgbImage;
  images.push(im);
  rows.push({ seed, ...scoreAsked(judge, im, { named, style, background }, vocabulary) });
  const x = rows.at(-1)!;
  console.log(
    `seed ${seed}: following ${x.following.toFixed(2)}, style ${x.style ?? '-'}, background ${x.background ?? '-'}`,
  );
}
const mean = (k: 'following' | 'style' | 'background') =>
  rows[0]![k] === null ? null : rows.reduce((a, x) => a + x[k]!, 0) / rows.length;
const summary = {
  prompt,
  model: o.model,
  named,
  background,
  style,
  seeds,
  steps: Number(o.steps),
  guidance: Number(o.guidance),
  following: mean('following'),
  style_hit: mean('style'),
  background_hit: mean('background'),
  seconds: (performance.now() - t0) / 1000,
};
console.log(JSON.stringify(summary));
if (o.sheet) fs.writeFileSync(o.sheet, await encodePng(gridRows([images])));
if (o.json) fs.writeFileSync(o.json, JSON.stringify({ ...summary, per_seed: rows }, null, 2) + '\n');
