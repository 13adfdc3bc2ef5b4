// How much of a picture survives the VAE? Scores 64 EmojiWorld scenes (the training concepts, 1-2 objects, solid or
// gradient backgrounds) and their VAE reconstructions with the independent evaluator: prompt following (every object
// found, as `mumu eval` counts it) and style. A generator on these latents cannot score above its VAE's row, so this
// is the ceiling the diffusion stages work under (docs/TRAINING.md, "VAE").
//   node --single-threaded-gc --import tsx scripts/vae-check.ts <model folder> [--weights ckpt/weights.safetensors]
//     [--sheet out.png] [--json out.json]
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { MumuModel } from '../src/models/index.ts';
import { EmojiWorld } from '../src/data/emoji-world/index.ts';
import { tensor, noGrad } from '../src/torch/index.ts';
import { loadSafetensors } from '../src/torch/safetensors.ts';
import { EmojiEvaluator } from '../src/eval/evaluator.ts';
import { Judge, promptFollowing, styleAdherence } from '../src/eval/metrics.ts';
import { encodePng, gridRows, type RgbImage } from '../src/image/index.ts';
import { imagesFromTensor } from '../src/image/tensor.ts';
import { readSuite } from '../src/eval/tasks.ts';

const { values: o, positionals } = parseArgs({
  allowPositionals: true,
  options: { sheet: { type: 'string' }, json: { type: 'string' }, weights: { type: 'string' } },
});
if (!positionals[0]) {
  console.error('usage: vae-check.ts <model folder> [--sheet out.png] [--json out.json]');
  process.exit(2);
}
// the evaluation suite's concepts (configs/eval-full.json), the 28 the training configs draw
const VOCAB = readSuite('full').vocabulary;
const model = MumuModel.load(positionals[0]).eval();
// a checkpoint's weights (runs/vae/checkpoints/ckpt-N/weights.safetensors) over the folder's
if (o.weights) model.loadStateDict(loadSafetensors(o.weights).tensors, { strict: false });
const vae = model.vae;
const side = vae.config.sample_size;
const world = new EmojiWorld({
  size: side,
  seed: 5,
  objectCounts: [0.5, 0.5],
  backgrounds: { solid: 0.7, gradient: 0.3 },
  concepts: { slugs: VOCAB },
});
const judge = new Judge(EmojiEvaluator.load('models/evaluator'));
const vocab = VOCAB.map((s) => judge.conceptIndex(s));
const N = 64,
  P = side * side;
const scenes = Array.from({ length: N }, (_, i) => world.scene(i * 5));
const px = new Float32Array(N * 3 * P);
scenes.forEach((sc, b) => {
  for (let i = 0; i < P; i++)
    for (let c = 0; c < 3; c++) px[(b * 3 + c) * P + i] = sc.image.data[i * 3 + c]! / 127.5 - 1;
});
const x = tensor(px, { shape: [N, 3, side, side] });
const rec = noGrad(() => vae.decode(vae.encode(x).mode()));
const mse = noGrad(() => rec.clamp(-1, 1).sub(x).square().mean().item());
const rows: Record<string, unknown> = {
  model: positionals[0],
  latent: [vae.config.latent_channels, side / vae.downsampleFactor],
  mse,
};
for (const [name, ims] of [
  ['render', imagesFromTensor(x)],
  ['reconstruction', imagesFromTensor(rec)],
] as const) {
  let f = 0,
    st = 0;
  scenes.forEach((sc, i) => {
    const v = judge.views(ims[i] as RgbImage);
    f += promptFollowing(
      sc.objects.map((ob) => judge.conceptIndex(ob.slug)),
      v.windows.map((w) => w.conceptLogits),
      vocab,
    );
    st += styleAdherence(v.whole.styleLogits, judge.styleIndex(sc.style)).hit ? 1 : 0;
  });
  rows[name] = { following: f / N, style: st / N };
  console.log(`${name.padEnd(15)} following ${(f / N).toFixed(3)}  style ${(st / N).toFixed(3)}`);
}
console.log(`reconstruction MSE ${mse.toFixed(5)} ([-1, 1] pixels)`);
if (o.sheet)
  fs.writeFileSync(
    o.sheet,
    await encodePng(gridRows([imagesFromTensor(x).slice(0, 16), imagesFromTensor(rec).slice(0, 16)])),
  );
if (o.json) fs.writeFileSync(o.json, JSON.stringify(rows, null, 2) + '\n');
