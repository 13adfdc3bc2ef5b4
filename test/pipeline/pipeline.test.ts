// MumuPipeline mechanics on toy components: one encoder call per prompt, one batched UNet call per step, seeds,
// guidance and negative prompts, image format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MumuPipeline, generationInfo } from '../../src/pipeline.ts';
import { toyComponents } from './toy.ts';
import { solid } from '../prompt/fixtures.ts';

const pixels = (r: { images: { data: Uint8Array }[] }) => r.images.map((i) => Buffer.from(i.data).toString('base64'));

test('encoder once per call, one UNet call per step on [uncond x n, cond x n]', async () => {
  const { components, calls } = toyComponents();
  const pipe = new MumuPipeline(components);
  const steps: number[] = [];
  const r = await pipe.generate('a dog', { steps: 5, numImages: 3, seed: 1, onStep: (s) => steps.push(s.t) });
  assert.deepEqual(calls.encode, [2]);
  assert.deepEqual(calls.unet, [6, 6, 6, 6, 6]);
  assert.deepEqual(steps, [801, 601, 401, 201, 1]);
  assert.equal(r.images.length, 3);
  assert.deepEqual(
    [r.images[0]!.width, r.images[0]!.height, r.images[0]!.channels, r.images[0]!.data.length],
    [16, 16, 3, 16 * 16 * 3],
  );
  assert.deepEqual(
    r.images.map((i) => i.seed),
    [1, 2, 3],
  );
  assert.equal(r.timings.unetCalls, 5);
  assert.ok(r.timings.unet <= r.timings.denoise && r.timings.denoise <= r.timings.total);
  // guidance 1: no unconditional half at all
  calls.unet.length = calls.encode.length = 0;
  await pipe.generate('a dog', { steps: 2, numImages: 2, seed: 1, guidanceScale: 1 });
  assert.deepEqual([calls.encode, calls.unet], [[1], [2, 2]]);
});

test('same seed, same pixels; image i of a batch is the single image of seed + i', async () => {
  const pipe = new MumuPipeline(toyComponents().components);
  const a = await pipe.generate('a dog and a cat', { steps: 4, numImages: 3, seed: 7 });
  const b = await pipe.generate('a dog and a cat', { steps: 4, numImages: 3, seed: 7 });
  assert.deepEqual(pixels(a), pixels(b));
  const third = await pipe.generate('a dog and a cat', { steps: 4, seed: 9 });
  assert.deepEqual(pixels(third)[0], pixels(a)[2]);
  const other = await pipe.generate('a dog and a cat', { steps: 4, seed: 8 });
  assert.notDeepEqual(pixels(other)[0], pixels(a)[0]);
  assert.notDeepEqual(pixels(a)[0], pixels(a)[1]);
  // the ancestral samplers are seeded too
  for (const sampler of ['euler', 'euler_a'] as const) {
    const x = await pipe.generate('a dog', { steps: 3, seed: 3, sampler });
    const y = await pipe.generate('a dog', { steps: 3, seed: 3, sampler });
    assert.deepEqual(pixels(x), pixels(y));
  }
});

test('the prompt, its images and the negative prompt all reach the output', async () => {
  const pipe = new MumuPipeline(toyComponents().components);
  const o = { steps: 3, seed: 5 };
  const base = pixels(await pipe.generate('a dog', o))[0];
  const red = await solid(4, 2, [255, 0, 0]).png().toBuffer();
  const blue = await solid(4, 2, [0, 128, 255]).png().toBuffer();
  const withRed = pixels(await pipe.generate(['a', { image: red }, 'dog'], o))[0];
  const withBlue = pixels(await pipe.generate(['a', { image: blue }, 'dog'], o))[0];
  assert.notEqual(withRed, base);
  assert.notEqual(withRed, withBlue);
  assert.notEqual(pixels(await pipe.generate('a cat', o))[0], base);
  const neg = await pipe.generate('a dog', { ...o, negativePrompt: 'blurry' });
  assert.notEqual(pixels(neg)[0], base);
  assert.equal(neg.negativePrompt, 'blurry');
  assert.equal(
    pixels(await pipe.generate('a dog', { ...o, negativePrompt: 'blurry', guidanceScale: 1 }))[0],
    pixels(await pipe.generate('a dog', { ...o, guidanceScale: 1 }))[0],
  );
  const info = generationInfo(neg, neg.images[0]!, 'toy');
  assert.deepEqual(info, {
    prompt: 'a dog',
    negative_prompt: 'blurry',
    seed: '5',
    steps: '3',
    guidance_scale: '6',
    sampler: 'ddim',
    model: 'toy',
    size: '16x16',
    software: 'mumu',
    parameters:
      'a dog\nNegative prompt: blurry\nSteps: 3, Sampler: DDIM, CFG scale: 6, Seed: 5, Size: 16x16, Model: toy',
  });
});

test('bad options and prompts are refused before any work', async () => {
  const { components, calls } = toyComponents();
  const pipe = new MumuPipeline(components);
  await assert.rejects(pipe.generate('a dog', { steps: 0 }), /steps must be an integer in 1\.\.1000/);
  await assert.rejects(pipe.generate('a dog', { numImages: 1.5 }), /numImages must be a positive integer/);
  await assert.rejects(pipe.generate('a dog', { seed: -1 }), /seed must be a non-negative integer/);
  await assert.rejects(pipe.generate('a dog', { guidanceScale: NaN }), /guidanceScale must be a number/);
  await assert.rejects(pipe.generate('', {}), /^PromptError: prompt: is empty/);
  await assert.rejects(
    pipe.generate('a dog', { negativePrompt: 'x <img:>' }),
    /negative prompt column 3: empty image tag/,
  );
  const img = { image: { width: 1, height: 1, data: new Uint8Array(4) } };
  await assert.rejects(pipe.generate([img, img, img]), /prompt segment 3: has 3 images; this model takes at most 2/);
  assert.deepEqual(calls.unet, []);
});
