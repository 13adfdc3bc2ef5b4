// The metrics of docs/RESULTS.md on constructed cases: identical, flipped, shifted, pasted, unrelated images; and
// the evaluator's save/load, on a tiny randomly initialised one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setNumThreads } from '../../src/torch/index.ts';
import {
  cosine,
  pixelCorrelation,
  conceptPreservation,
  promptFollowing,
  conceptsPresent,
  styleAdherence,
  copyPaste,
  diversity,
  windows,
  Judge,
  COPY_PASTE_THRESHOLD,
  backgroundColor,
} from '../../src/eval/metrics.ts';
import { newEvaluator, EmojiEvaluator } from '../../src/eval/evaluator.ts';
import { renderScene, cropObject } from '../../src/eval/tasks.ts';
import { hflip, areaResize, type RawImage, type RgbImage } from '../../src/image/index.ts';

setNumThreads(1);

// A deterministic, asymmetric picture: a gradient with a bright square off-centre.
function picture(size: number, seed = 1): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const p = (y * size + x) * 3;
      const inSquare = x > size * 0.1 && x < size * 0.45 && y > size * 0.2 && y < size * 0.6;
      data[p] = inSquare ? 250 : (x * 255) / size;
      data[p + 1] = inSquare ? 240 : (seed * 37 + y * 97) % 255;
      data[p + 2] = (x * y * seed) % 256;
    }
  return { width: size, height: size, channels: 3, data };
}
const solid = (size: number, v: number): RgbImage => ({
  width: size,
  height: size,
  channels: 3,
  data: new Uint8Array(size * size * 3).fill(v),
});
const flip = (im: RgbImage) => hflip(im as RawImage) as RgbImage;

test('cosine and pixel correlation: identical 1, negated -1, constant images', () => {
  assert.equal(cosine([1, 2, 3], [2, 4, 6]).toFixed(6), '1.000000');
  assert.equal(cosine([1, 0], [0, 1]), 0);
  assert.equal(cosine([1, 2], [-1, -2]).toFixed(6), '-1.000000');
  const a = picture(16).data;
  assert.equal(pixelCorrelation(a, a).toFixed(6), '1.000000');
  assert.equal(
    pixelCorrelation(
      a,
      a.map((v) => 255 - v),
    ).toFixed(6),
    '-1.000000',
  );
  assert.equal(pixelCorrelation(solid(8, 3).data, solid(8, 3).data), 1);
  assert.equal(pixelCorrelation(solid(8, 3).data, solid(8, 9).data), 0);
  assert.equal(pixelCorrelation(solid(16, 3).data, a), 0);
});

test('windows: 1 + 4 + 9 views of a square image, the first the whole image', () => {
  const w = windows(picture(64));
  assert.equal(w.length, 14);
  assert.deepEqual(
    w.map((x) => x.width),
    [64, 48, 48, 48, 48, 32, 32, 32, 32, 32, 32, 32, 32, 32],
  );
  assert.deepEqual(w[0]!.data, picture(64).data);
});

test('copy-paste: identical 1; the reference pasted into a bigger image ~1; flipped, unrelated and solid far lower', () => {
  const ref = picture(32);
  assert.ok(copyPaste(ref, ref) > 0.999);
  // paste the reference anywhere, at half the output's side
  const big = solid(64, 90);
  for (let y = 0; y < 32; y++) big.data.set(ref.data.subarray(y * 96, (y + 1) * 96), ((y + 13) * 64 + 21) * 3);
  assert.ok(copyPaste(ref, big) > 0.99, `pasted ${copyPaste(ref, big)}`);
  // and at another scale: the 32 px reference drawn at 40 px
  const scaled = areaResize(ref, 40);
  const big2 = solid(64, 90);
  for (let y = 0; y < 40; y++) big2.data.set(scaled.data.subarray(y * 120, (y + 1) * 120), ((y + 5) * 64 + 17) * 3);
  assert.ok(copyPaste(ref, big2) > 0.99, `scaled ${copyPaste(ref, big2)}`);
  assert.ok(copyPaste(ref, flip(ref)) < COPY_PASTE_THRESHOLD, `flipped ${copyPaste(ref, flip(ref))}`);
  assert.ok(copyPaste(ref, picture(32, 7)) < copyPaste(ref, ref));
  assert.equal(copyPaste(ref, solid(32, 100)), 0);
});

test('concept preservation: the best window wins; identical embedding 1, orthogonal 0', () => {
  const ref = [1, 0, 0];
  assert.equal(
    conceptPreservation(ref, [
      [0, 1, 0],
      [1, 0, 0],
    ]),
    1,
  );
  assert.equal(
    conceptPreservation(ref, [
      [0, 1, 0],
      [0, 0, 1],
    ]),
    0,
  );
  assert.ok(Math.abs(conceptPreservation(ref, [[1, 1, 0]]) - Math.SQRT1_2) < 1e-12);
});

test('objects present: confident detections only', () => {
  const vocab = [0, 1, 2];
  assert.equal(conceptsPresent([2], [[0, 0, 9]], vocab), 1);
  assert.equal(conceptsPresent([1, 2], [[0, 0, 9]], vocab), 0.5);
  assert.equal(conceptsPresent([1], [[1, 1, 1]], vocab), 0); // 1/3 each: not confident
});

test('prompt following: named concepts found in the top K of the vocabulary, best window per concept', () => {
  const vocab = [0, 1, 2, 3];
  // window 0 shows concept 2, window 1 concept 0: both named concepts are found
  const wins = [
    [0, 0, 5, 0],
    [5, 0, 0, 0],
  ];
  assert.equal(promptFollowing([0, 2], wins, vocab), 1);
  assert.equal(promptFollowing([1], wins, vocab), 0);
  // K = 2 but concept 3 is nowhere: one of two found
  assert.equal(promptFollowing([2, 3], wins, vocab), 0.5);
  // a concept outside the vocabulary can never be found
  assert.equal(promptFollowing([7], [[0, 0, 0, 0, 0, 0, 0, 9]], vocab), 0);
  assert.ok(Number.isNaN(promptFollowing([], wins, vocab)));
});

test('style adherence: the top style and its probability', () => {
  assert.deepEqual(styleAdherence([0, 3, 0], 1).hit, true);
  assert.deepEqual(styleAdherence([0, 3, 0], 2).hit, false);
  assert.ok(Math.abs(styleAdherence([0, 0], 0).prob - 0.5) < 1e-12);
});

test('background colour: the nearest EmojiWorld colour to the border, whatever the middle holds', () => {
  const im = (border: number[], middle: number[]): RgbImage => {
    const data = new Uint8Array(32 * 32 * 3);
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) data.set(x > 2 && x < 29 && y > 2 && y < 29 ? middle : border, (y * 32 + x) * 3);
    return { width: 32, height: 32, channels: 3, data } as RgbImage;
  };
  assert.equal(backgroundColor(im([45, 95, 210], [245, 215, 50])), 'blue');
  assert.equal(backgroundColor(im([30, 40, 100], [255, 255, 255])), 'navy'); // near navy, not the exact value
  assert.equal(backgroundColor(im([245, 215, 50], [45, 95, 210])), 'yellow');
});

test('diversity: identical outputs 0, orthogonal embeddings 1', () => {
  const d0 = diversity(
    [
      [1, 0],
      [1, 0],
      [1, 0],
    ],
    [picture(16), picture(16)],
  );
  assert.equal(d0.embedding, 0);
  assert.ok(Math.abs(d0.pixel) < 1e-9);
  assert.equal(
    diversity([
      [1, 0],
      [0, 1],
    ]).embedding,
    1,
  );
  assert.ok(diversity([], [picture(16), picture(16, 5)]).pixel > 0.1);
});

test('the evaluator: same image -> cosine 1, save/load round trip gives the same outputs, the judge finds a crop', async () => {
  const m = newEvaluator({ concepts: ['dog-face', 'rocket', 'sun'], config: { channels: [8, 16], embed_dim: 16 } });
  const scene = renderScene(['dog-face', 'rocket'], 'noto', 'blue', 64, 3);
  const ref = cropObject(scene, 0);
  const judge = new Judge(m);
  const e1 = judge.embed(ref).embedding,
    e2 = judge.embed({ ...ref, data: ref.data.slice() }).embedding;
  assert.ok(cosine(e1, e2) > 0.9999);
  const dir = mkdtempSync(join(tmpdir(), 'mumu-evaluator-'));
  m.save(dir);
  const back = EmojiEvaluator.load(dir);
  const e3 = new Judge(back).embed(ref).embedding;
  assert.ok(cosine(e1, e3) > 0.999, 'float16 on disk keeps the embedding');
  // preservation of a reference against the scene it was cut from is at least its cosine with the whole scene
  const v = judge.views(scene.image);
  assert.equal(v.windows.length, 14);
  assert.ok(
    conceptPreservation(
      e1,
      v.windows.map((w) => w.embedding),
    ) >= cosine(e1, v.whole.embedding),
  );
  assert.deepEqual(Object.keys(judge.describe(ref, ['dog-face', 'sun'])).sort(), ['concept', 'style']);
});
