// Does the VLM name what it sees? The gate before the MUMU stage (issue 12): 200 fresh single-object crops of the
// suite's concepts in the training styles, cut as the VLM stage cuts them (the object's box grown by 10%), captioned
// greedily; the caption must name the concept and the style in exact words ("a dog face, noto style"). Bar: >= 90%
// each. MUMU's encoder hands the UNet what the VLM understands of a reference, so a VLM that misnames crops caps
// what the images can add.
//   node --single-threaded-gc --import tsx scripts/vlm-check.ts <model folder> [--weights ckpt/weights.safetensors]
//     [--n 200] [--json out.json]
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { MumuModel } from '../src/models/index.ts';
import { EmojiWorld, STYLES } from '../src/data/emoji-world/index.ts';
import { crop, clampBox } from '../src/image/index.ts';
import { noGrad } from '../src/torch/index.ts';
import { loadSafetensors } from '../src/torch/safetensors.ts';
import { PromptTokenizer, encodePrompt, collatePrompts } from '../src/prompt/index.ts';
import { componentsFromModel } from '../src/pipeline.ts';
import { readSuite } from '../src/eval/tasks.ts';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: { n: { type: 'string' }, json: { type: 'string' }, seed: { type: 'string' }, weights: { type: 'string' } },
});
if (!positionals[0]) {
  console.error('usage: vlm-check.ts <model folder> [--n 200] [--json out.json]');
  process.exit(2);
}
const dir = positionals[0];
// the evaluation suite's concepts (configs/eval-full.json), the 28 the training configs draw
const VOCAB = readSuite('full').vocabulary;
const model = MumuModel.load(dir).eval();
// a checkpoint's weights (e.g. runs/vlm/checkpoints/ckpt-N/weights.safetensors) over the folder's
if (o.weights) model.loadStateDict(loadSafetensors(o.weights).tensors, { strict: false });
const tokenizer = await PromptTokenizer.fromFile(`${dir}/tokenizer/tokenizer.json`);
const spec = componentsFromModel(model, { tokenizer }).prompt;
// the training split only: the held-out concepts are not the VLM's to name
const world = new EmojiWorld({
  size: 128,
  seed: Number(o.seed ?? 4242),
  objectCounts: [1],
  backgrounds: { solid: 0.7, gradient: 0.3 },
  concepts: { slugs: VOCAB },
});
const n = Number(o.n ?? 200);
let concept = 0,
  style = 0,
  both = 0;
const wrong: string[] = [];
for (let i = 0; i < n; i++) {
  const sc = world.scene(i * 7 + 3);
  const ob = sc.objects[0]!,
    b = ob.box,
    grow = 0.1 * Math.max(b.w, b.h);
  const img = crop(
    sc.image,
    clampBox({ x: b.x - grow, y: b.y - grow, w: b.w + 2 * grow, h: b.h + 2 * grow }, sc.size, sc.size),
  );
  const enc = await encodePrompt([{ image: img }], spec);
  const caption = noGrad(() =>
    tokenizer.decode(
      model.vlm.greedy(enc.inputIds, collatePrompts([enc], spec).pixelValues, { eosId: tokenizer.eosId }),
    ),
  );
  const stylePhrase = STYLES.find((s) => s.id === sc.style)!.phrase;
  const words = ` ${caption.replace(/,/g, ' ,')} `;
  const okC = words.includes(` ${ob.phrase} `),
    okS = words.includes(` ${stylePhrase} style`);
  concept += okC ? 1 : 0;
  style += okS ? 1 : 0;
  both += okC && okS ? 1 : 0;
  if (!(okC && okS) && wrong.length < 12) wrong.push(`${ob.phrase}, ${stylePhrase} => ${caption}`);
}
const r = { model: dir, n, concept: concept / n, style: style / n, both: both / n, examples_wrong: wrong };
console.log(
  `concept named ${(100 * r.concept).toFixed(1)}%  style named ${(100 * r.style).toFixed(1)}%  both ${(100 * r.both).toFixed(1)}%  (n ${n}; bar 90% each)`,
);
for (const w of wrong) console.log(`  ${w}`);
if (o.json) fs.writeFileSync(o.json, JSON.stringify(r, null, 2) + '\n');
