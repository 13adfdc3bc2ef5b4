// generate()'s AbortSignal: checked before any work, after encoding and after every sampling step, for both samplers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MumuPipeline, GenerationAbortedError } from '../../src/pipeline.ts';
import { toyComponents } from './toy.ts';

test('an abort during sampling stops after that step; an aborted signal stops before encoding', async () => {
  for (const sampler of ['ddim', 'euler'] as const) {
    const { components, calls } = toyComponents();
    const pipe = new MumuPipeline(components);
    const ac = new AbortController();
    const seen: number[] = [];
    const run = pipe.generate('a dog', {
      steps: 6,
      seed: 1,
      sampler,
      signal: ac.signal,
      onStep: ({ step }) => {
        seen.push(step);
        if (step === 2) ac.abort();
      },
    });
    await assert.rejects(
      run,
      (e: unknown) =>
        e instanceof GenerationAbortedError &&
        (e as Error).name === 'AbortError' &&
        /aborted/.test((e as Error).message),
    );
    assert.deepEqual(seen, [0, 1, 2], sampler);
    assert.equal(calls.unet.length, 3, sampler);
  }
  const { components, calls } = toyComponents();
  const pipe = new MumuPipeline(components);
  await assert.rejects(pipe.generate('a dog', { steps: 3, signal: AbortSignal.abort() }), GenerationAbortedError);
  assert.deepEqual([calls.encode, calls.unet], [[], []]);
  // the same pipeline still works afterwards, and an unused signal changes nothing
  const r = await pipe.generate('a dog', { steps: 3, seed: 2, signal: new AbortController().signal });
  const plain = await pipe.generate('a dog', { steps: 3, seed: 2 });
  assert.deepEqual(r.images[0]!.data, plain.images[0]!.data);
});
