// `mumu generate` end to end through the real process, on a tiny random model folder: files, grid, PNG metadata read
// back by `mumu info`, seed determinism, and the model's image limit as a one-line error.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { mumu } from './helpers.ts';
import { assertPixelsWithinOneStep } from '../helpers.ts';
import { makeFixtures } from '../prompt/fixtures.ts';
import { makeTinyModel } from '../pipeline/tiny-model.ts';
import { readText } from '../../src/image/index.ts';

let dir = '',
  model = '';
before(async () => {
  dir = await makeFixtures();
  model = await makeTinyModel();
});
const gen = (args: string[]) => mumu(['generate', ...args, '--model', model], { cwd: dir });

test('one image: the PNG, its metadata, and mumu info reading it back', async () => {
  const r = await gen([
    'a <img:red.png> dog, 1 \\< 2',
    '-o',
    'one.png',
    '--steps',
    '3',
    '--seed',
    '42',
    '--guidance',
    '4.5',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), join(dir, 'one.png'));
  assert.match(r.stderr, /seed 42, 3 steps, guidance 4\.5: 1 image in [\d.]+ s/);
  const png = readFileSync(join(dir, 'one.png'));
  const meta = await sharp(png).metadata();
  assert.deepEqual([meta.width, meta.height, meta.format], [16, 16, 'png']);
  const text = readText(png);
  assert.deepEqual(
    {
      prompt: text.prompt,
      seed: text.seed,
      steps: text.steps,
      guidance_scale: text.guidance_scale,
      sampler: text.sampler,
      model: text.model,
    },
    { prompt: 'a <img:red.png> dog, 1 \\< 2', seed: '42', steps: '3', guidance_scale: '4.5', sampler: 'ddim', model },
  );
  const info = await mumu(['info', 'one.png'], { cwd: dir });
  assert.equal(info.code, 0);
  assert.match(info.stdout, /^prompt: a <img:red\.png> dog, 1 \\< 2$/m);
  assert.match(info.stdout, /^seed: 42$/m);
  const json = await mumu(['info', 'one.png', '--json'], { cwd: dir });
  assert.deepEqual(JSON.parse(json.stdout), text);
});

test('--n 3: a grid plus the three images; seeds seed..seed+2; same seed, same pixels', async () => {
  const r = await gen([
    'a cat on the night sky',
    '-o',
    'out/grid.png',
    '--n',
    '3',
    '--steps',
    '2',
    '--seed',
    '7',
    '--negative',
    'blue',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.stdout.trim().split('\n'),
    ['grid.png', 'grid-1.png', 'grid-2.png', 'grid-3.png'].map((f) => join(dir, 'out', f)),
  );
  const grid = readFileSync(join(dir, 'out', 'grid.png'));
  assert.deepEqual([(await sharp(grid).metadata()).width, (await sharp(grid).metadata()).height], [34, 34]); // 2x2 cells of 16 + 2 px gap
  assert.deepEqual([readText(grid).grid, readText(grid).n, readText(grid).negative_prompt], ['2x2', '3', 'blue']);
  assert.deepEqual(
    [1, 2, 3].map((i) => readText(readFileSync(join(dir, 'out', `grid-${i}.png`))).seed),
    ['7', '8', '9'],
  );
  // image 2 of the batch again, alone, from its own seed
  const again = await gen([
    'a cat on the night sky',
    '-o',
    'again.png',
    '--steps',
    '2',
    '--seed',
    '8',
    '--negative',
    'blue',
  ]);
  assert.equal(again.code, 0, again.stderr);
  const pix = async (f: string) =>
    await sharp(readFileSync(join(dir, f)))
      .raw()
      .toBuffer();
  assertPixelsWithinOneStep(await pix('again.png'), await pix('out/grid-2.png')); // a batch of 1 vs a batch of 3
});

test("more images than the model's limit: one line naming the position, exit 1", async () => {
  const r = await gen([
    '<img:red.png> <img:red.png> <img:blue.jpg> and <img:green.webp>',
    '-o',
    'x.png',
    '--steps',
    '1',
  ]);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr.trim(),
    'mumu: prompt column 48: has 4 images; this model takes at most 3 (the first one too many is here)',
  );
  assert.ok(!existsSync(join(dir, 'x.png')));
});

test('--reference-size: images encoded at another side (stored in the PNG); a bad side is a usage error', async () => {
  const r = await gen([
    'a <img:red.png> dog',
    '-o',
    'ref24.png',
    '--steps',
    '1',
    '--seed',
    '1',
    '--reference-size',
    '24',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readText(readFileSync(join(dir, 'ref24.png'))).reference_size, '24');
  const bad = await gen(['a <img:red.png> dog', '-o', 'bad.png', '--steps', '1', '--reference-size', '20']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--reference-size 20: must be a multiple of the ViT's patch size 8 px between 8 and 64/);
  assert.ok(!existsSync(join(dir, 'bad.png')));
  const word = await gen(['a dog', '--reference-size', 'big']);
  assert.equal(word.code, 2);
  assert.match(word.stderr, /--reference-size must be a whole number/);
});
