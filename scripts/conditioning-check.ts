// Does a text-to-image base use its captions? Noises 8 fixed EmojiWorld scenes at a few timesteps and compares the
// UNet's eps error given the right caption, the empty caption and a wrong caption (another scene's). A base that
// ignores its text has the same error for right and wrong captions (docs/TRAINING.md, "What was tried").
//   node --import tsx scripts/conditioning-check.ts <model folder with a text_encoder> [weights.safetensors]
// The optional safetensors file (e.g. a checkpoint's ema.safetensors) is loaded over the folder's weights.
import { MumuModel } from '../src/models/index.ts';
import { PromptTokenizer } from '../src/prompt/index.ts';
import { EmojiWorld } from '../src/data/emoji-world/index.ts';
import { tensor, randn, Generator, noGrad, type Tensor } from '../src/torch/index.ts';
import { loadSafetensors } from '../src/torch/safetensors.ts';
import { makeSchedule, addNoise } from '../src/diffusion/index.ts';

const [dir, weights] = process.argv.slice(2);
if (!dir) {
  console.error('usage: conditioning-check.ts <model folder> [weights.safetensors]');
  process.exit(2);
}
const model = MumuModel.load(dir).eval();
if (!model.text_encoder) {
  console.error(`${dir} has no text_encoder: this check is for the text-only base`);
  process.exit(2);
}
if (weights) model.loadStateDict(loadSafetensors(weights).tensors, { strict: false });
const tok = await PromptTokenizer.fromFile(`${dir}/tokenizer/tokenizer.json`);
const side = model.vae.config.sample_size;
const world = new EmojiWorld({
  size: side, seed: 99, objectCounts: [0.5, 0.5], backgrounds: { solid: 1 },
  concepts: { slugs: ['dog-face', 'rocket', 'sun', 'red-apple', 'banana', 'frog', 'pizza', 'house'] },
});
const B = 8;
const scenes = Array.from({ length: B }, (_, i) => world.scene(i * 4));
const pixels = new Float32Array(B * 3 * side * side);
scenes.forEach((sc, b) => {
  for (let i = 0; i < side * side; i++) for (let c = 0; c < 3; c++) pixels[((b * 3 + c) * side * side) + i] = sc.image.data[i * 3 + c]! / 127.5 - 1;
});

const encode = (captions: string[]): { context: Tensor; mask: Tensor } => {
  const ids = captions.map((c) => [...(tok.bosId !== undefined ? [tok.bosId] : []), ...tok.encodeText(c)]);
  const T = Math.max(...ids.map((x) => x.length));
  const idArr = new BigInt64Array(B * T), maskArr = new Float32Array(B * T);
  ids.forEach((x, b) => x.forEach((v, i) => { idArr[b * T + i] = BigInt(v); maskArr[b * T + i] = 1; }));
  const mask = tensor(maskArr, { shape: [B, T] });
  return { context: model.encodeText(tensor(idArr, { shape: [B, T] }), mask), mask };
};

noGrad(() => {
  const schedule = makeSchedule();
  const z = model.vae.scaleLatents(model.vae.encode(tensor(pixels, { shape: [B, 3, side, side] })).mode());
  const captions = scenes.map((s) => s.caption);
  const right = encode(captions), empty = encode(captions.map(() => '')), wrong = encode(captions.map((_, i) => captions[(i + 3) % B]!));
  const g = new Generator(0);
  console.log('t     right    empty    wrong    wrong/right');
  for (const t of [50, 200, 500, 800]) {
    const noise = randn([...z.shape], { generator: g });
    const zt = addNoise(schedule, z, noise, new Array(B).fill(t));
    const tt = tensor(new BigInt64Array(B).fill(BigInt(t)), { shape: [B] });
    const err = (c: { context: Tensor; mask: Tensor }) => model.unet.forward(zt, tt, c.context, { encoderAttentionMask: c.mask }).sub(noise).pow(2).mean().item();
    const [r, e, w] = [err(right), err(empty), err(wrong)];
    console.log(`${String(t).padEnd(5)} ${r.toFixed(4)}   ${e.toFixed(4)}   ${w.toFixed(4)}   ${(w / r).toFixed(3)}`);
  }
});
