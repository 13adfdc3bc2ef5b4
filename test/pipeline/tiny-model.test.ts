// MumuPipeline on a real (tiny, randomly initialised) MUMU model folder: loading, determinism, the encoder once per
// call, image order mattering, and the model's image limit.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setNumThreads } from '../../src/torch/index.ts';
import { MumuPipeline } from '../../src/pipeline.ts';
import { makeTinyModel } from './tiny-model.ts';
import { assertPixelsWithinOneStep } from '../helpers.ts';
import { solid } from '../prompt/fixtures.ts';

setNumThreads(1); // tiny tensors: threads only add contention with the other test processes
let dir = '';
before(async () => {
  dir = await makeTinyModel();
});
const b64 = (r: { images: { data: Uint8Array }[] }) => r.images.map((i) => Buffer.from(i.data).toString('base64'));

test('loads the folder; same seed gives the same pixels across loads; image i = seed + i', async () => {
  const [p1, p2] = [await MumuPipeline.fromPretrained(dir), await MumuPipeline.fromPretrained(dir)];
  assert.deepEqual(p1.components.latentShape, [4, 8, 8]);
  assert.equal(p1.components.prompt.tokensPerImage, 4);
  const a = await p1.generate('a dog on the night sky', { steps: 3, seed: 11, numImages: 2 });
  const b = await p2.generate('a dog on the night sky', { steps: 3, seed: 11, numImages: 2 });
  assert.deepEqual([a.images[0]!.width, a.images[0]!.height], [16, 16]);
  assert.deepEqual(b64(a), b64(b));
  const single = await p1.generate('a dog on the night sky', { steps: 3, seed: 12 });
  assertPixelsWithinOneStep(single.images[0]!.data, a.images[1]!.data); // a batch of 1 vs a batch of 2
  assert.notDeepEqual(b64(a)[0], b64(a)[1]);
});

test('the encoder runs once per call, the UNet once per step', async () => {
  const pipe = await MumuPipeline.fromPretrained(dir);
  const c = pipe.components;
  const calls = { encode: 0, unet: [] as number[] };
  const [enc, unet] = [c.encode, c.unet];
  c.encode = (b) => (calls.encode++, enc(b));
  c.unet = (x, t, k) => (calls.unet.push(x.size(0)), unet(x, t, k));
  await pipe.generate('a cat', { steps: 4, numImages: 3, seed: 0 });
  assert.deepEqual(calls, { encode: 1, unet: [6, 6, 6, 6] });
});

test('images reach the output in order; the model limit is enforced', async () => {
  const pipe = await MumuPipeline.fromPretrained(dir);
  const red = await solid(8, 8, [255, 0, 0]).png().toBuffer();
  const blue = await solid(8, 8, [0, 0, 255]).png().toBuffer();
  const o = { steps: 2, seed: 4 };
  const rb = b64(await pipe.generate(['a', { image: red }, 'dog and a', { image: blue }, 'cat'], o))[0];
  const br = b64(await pipe.generate(['a', { image: blue }, 'dog and a', { image: red }, 'cat'], o))[0];
  const text = b64(await pipe.generate('a dog and a cat', o))[0];
  assert.notEqual(rb, br);
  assert.notEqual(rb, text);
  await assert.rejects(
    pipe.generate([{ image: red }, { image: red }, { image: red }, 'and', { image: blue }], o),
    /prompt segment 5: has 4 images; this model takes at most 3/,
  );
});

test('a tokenizer that disagrees with the VLM about <image> is refused at load', async () => {
  const bad = await makeTinyModel();
  const file = join(bad, 'vlm', 'config.json');
  writeFileSync(file, readFileSync(file, 'utf8').replace('"image_token_id": 4', '"image_token_id": 5'));
  await assert.rejects(
    MumuPipeline.fromPretrained(bad),
    /the tokenizer's <image> is id 4 but vlm\/config.json says image_token_id 5/,
  );
});

test("inside the real VLM, the k-th image's tokens sit at the k-th tag", async () => {
  const { encodePrompt, collatePrompts } = await import('../../src/prompt/index.ts');
  const { noGrad } = await import('../../src/torch/index.ts');
  const pipe = await MumuPipeline.fromPretrained(dir);
  const spec = pipe.components.prompt;
  const [red, blue, green] = await Promise.all(
    [
      [255, 0, 0],
      [0, 0, 255],
      [0, 255, 0],
    ].map((c) =>
      solid(8, 8, c as [number, number, number])
        .png()
        .toBuffer(),
    ),
  );
  const hidden = async (second: Buffer) => {
    const e = await encodePrompt(['a', { image: red }, 'dog and a', { image: second }, 'cat'], spec);
    const b = collatePrompts([e], spec);
    return { spans: e.imageSpans, h: noGrad(() => pipe.components.encode(b).context) };
  };
  const [a, b] = [await hidden(blue), await hidden(green)];
  assert.deepEqual(a.spans, [
    { start: 2, length: 4 },
    { start: 9, length: 4 },
  ]);
  // The encoder's last layer is the non-causal adapter, so compare the causal VLM's states instead: identical before
  // the second image's run, different from its first token on.
  const { MumuModel } = await import('../../src/models/index.ts');
  const vlm = MumuModel.load(dir).eval().vlm;
  const states = async (second: Buffer) => {
    const e = await encodePrompt(['a', { image: red }, 'dog and a', { image: second }, 'cat'], spec);
    const bt = collatePrompts([e], spec);
    return noGrad(() => vlm.forward(bt.inputIds, bt.pixelValues, { attentionMask: bt.attentionMask }).lastHiddenState);
  };
  const [sa, sb] = [await states(blue), await states(green)];
  const diff = sa.sub(sb).abs().amax(2).select(0, 0).toList() as number[]; // per position
  assert.ok(
    diff.slice(0, 9).every((d) => d === 0),
    `positions before the 2nd image changed: ${diff}`,
  );
  assert.ok(diff[9]! > 0, 'the 2nd image run did not change');
  assert.notDeepEqual(a.h.toList(), b.h.toList());
});

test('references at another side: more placeholders per image, still generates; bad sides are refused', async () => {
  const red = await solid(4, 2, [255, 0, 0]).png().toBuffer();
  const prompt = ['a', { image: red }, 'dog'];
  const native = await MumuPipeline.fromPretrained(dir); // ViT: 16 px, patch 8 -> 4 tokens
  const big = await MumuPipeline.fromPretrained(dir, { referenceSize: 32 });
  assert.deepEqual([big.components.prompt.imageSize, big.components.prompt.tokensPerImage], [32, 16]);
  const o = { steps: 2, seed: 3 };
  const a = await native.generate(prompt, o);
  const b = await big.generate(prompt, o);
  assert.deepEqual([b.images[0]!.width, b.images[0]!.height], [16, 16]);
  assert.notDeepEqual(b64(b), b64(a)); // other tokens reach the UNet
  // the native side through the same option is the same model
  assert.deepEqual(b64(await new MumuPipeline(native.components.atReferenceSize!(16)).generate(prompt, o)), b64(a));
  assert.equal(native.components.atReferenceSize!(8).prompt.tokensPerImage, 1);
  assert.equal(native.components.atReferenceSize!(24).prompt.tokensPerImage, 9);
  await assert.rejects(
    MumuPipeline.fromPretrained(dir, { referenceSize: 20 }),
    /reference size 20 px: must be a multiple of the ViT's patch size 8 px between 8 and 64/,
  );
  assert.throws(() => native.components.atReferenceSize!(72), /between 8 and 64/);
});
