// The paper's bootstrapping rules (sections 4, 5) on constructed cases.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bootstrapSample, candidates, canny, cropVerdict, defaultConfig, depthUnavailable, insertImages, MAX_CROP_AREA_FRAC,
  MIN_CROP_AREA_FRAC, promptText, sketch, type BootstrapConfig, type ImageSegment,
} from '../../src/data/bootstrap/index.ts';
import { findPhrase, groundablePhrases, phraseMatchesClass, singular, type Detection, type Detector } from '../../src/data/detect/index.ts';
import { blank, padToSquare, type Box, type RawImage } from '../../src/image/index.ts';
import { deriveSeed, Rng } from '../../src/data/rng.ts';

// A detector that returns fixed boxes for the phrases asked, and optional faces.
function fakeDetector(objects: { phrase: string; box: Box; label?: string }[], faces: Box[] = []): Detector {
  return {
    name: 'fake',
    detect: async (_img, phrases): Promise<Detection[]> =>
      objects.filter((o) => phrases.includes(o.phrase)).map((o) => ({ phrase: o.phrase, box: o.box, score: 0.9, label: o.label })),
    faces: async () => faces.map((box) => ({ box, score: 0.9 })),
    phrasesFor: () => objects.map((o) => o.phrase),
  };
}

const noRandom = (c: BootstrapConfig): BootstrapConfig => ({ ...c, augmentProb: 0, controlProb: 0, headCropProb: 0 });
const images = (p: { type: string }[]) => p.filter((s): s is ImageSegment => s.type === 'image');

test('area threshold is 150x150 at 1024 px, scaled with the side, and 75% at the top', () => {
  assert.ok(Math.abs(MIN_CROP_AREA_FRAC - 0.0215) < 1e-4);
  const cfg = defaultConfig(1, 64);
  assert.equal(cropVerdict({ x: 0, y: 0, w: 150, h: 150 }, 1024, cfg), 'ok');
  assert.equal(cropVerdict({ x: 0, y: 0, w: 150, h: 149 }, 1024, cfg), 'too-small');
  // The same fraction at 64 px: (150/1024 * 64)^2 = 87.9 px^2.
  assert.equal(cropVerdict({ x: 0, y: 0, w: 11, h: 8 }, 64, cfg), 'ok'); // 88
  assert.equal(cropVerdict({ x: 0, y: 0, w: 29, h: 3 }, 64, cfg), 'too-small'); // 87
  const side = 100, max = MAX_CROP_AREA_FRAC * side * side; // 7500
  assert.equal(cropVerdict({ x: 0, y: 0, w: 75, h: 100 }, side, cfg), 'ok');
  assert.equal(cropVerdict({ x: 0, y: 0, w: 100, h: max / 100 + 0.01 }, side, cfg), 'too-large');
});

test('padding is black, centred and square', () => {
  const img = blank(6, 2, 3, [200, 100, 50]);
  const { image, dx, dy } = padToSquare(img);
  assert.equal(image.width, 6);
  assert.equal(image.height, 6);
  assert.deepEqual([dx, dy], [0, 2]);
  assert.deepEqual([...image.data.subarray(0, 3)], [0, 0, 0]);
  assert.deepEqual([...image.data.subarray(2 * 6 * 3, 2 * 6 * 3 + 3)], [200, 100, 50]);
  assert.deepEqual([...image.data.subarray(image.data.length - 3)], [0, 0, 0]);
});

test('bootstrap pads the target to a square and crops come back square at cropSize', async () => {
  const det = fakeDetector([{ phrase: 'dog', box: { x: 10, y: 20, w: 30, h: 30 } }]);
  const b = await bootstrapSample({ image: blank(80, 40, 3, [255, 255, 255]), caption: 'a dog', detector: det, rng: new Rng(1), config: noRandom(defaultConfig(1, 16)) });
  assert.equal(b.target.width, 80);
  assert.equal(b.target.height, 80);
  assert.deepEqual([...b.target.data.subarray(0, 3)], [0, 0, 0]);
  assert.equal(b.images.length, 1);
  assert.equal(b.images[0]!.width, 16);
  assert.equal(b.images[0]!.height, 16);
});

test('at most 3 crops, each immediately before its words, caption text unchanged', async () => {
  const caption = 'a cat, a dog, a bird, a horse and a cow on grass';
  const names = ['cat', 'dog', 'bird', 'horse', 'cow'];
  const det = fakeDetector(names.map((n, k) => ({ phrase: n, box: { x: k * 19, y: 10, w: 18, h: 30 } })));
  for (let s = 0; s < 20; s++) {
    const b = await bootstrapSample({ image: blank(100, 100), caption, detector: det, rng: new Rng(deriveSeed(7, s)), config: noRandom(defaultConfig(1, 8)) });
    const imgs = images(b.prompt);
    assert.equal(imgs.length, 3);
    assert.equal(b.dropped['over-max'], 2);
    assert.equal(promptText(b.prompt), caption);
    b.prompt.forEach((seg, i) => {
      if (seg.type !== 'image') return;
      const next = b.prompt[i + 1];
      assert.ok(next?.type === 'text' && next.text.startsWith(seg.phrase!), `image for ${seg.phrase} not right before its word`);
    });
  }
});

test('stage 2 keeps a single person crop at twice the resolution', async () => {
  const det = fakeDetector([
    { phrase: 'dog', box: { x: 0, y: 0, w: 40, h: 40 } },
    { phrase: 'woman', box: { x: 50, y: 10, w: 40, h: 80 }, label: 'person' },
  ]);
  const cfg = noRandom(defaultConfig(2, 16));
  const b = await bootstrapSample({ image: blank(100, 100), caption: 'a dog and a woman', detector: det, rng: new Rng(3), config: cfg });
  assert.equal(images(b.prompt).length, 1);
  assert.equal(images(b.prompt)[0]!.phrase, 'woman');
  assert.equal(b.images[0]!.width, 32);
});

test('plurals and synonyms match caption words', () => {
  assert.equal(singular('puppies'), 'puppy');
  assert.equal(singular('boxes'), 'box');
  assert.equal(singular('people'), 'person');
  assert.equal(singular('bus'), 'bus');
  assert.equal(singular('glass'), 'glass');
  assert.deepEqual(findPhrase('two small dogs on a bench', 'dog'), { start: 10, end: 14 });
  assert.deepEqual(findPhrase('a teddy bear and a bear', 'teddy bear'), { start: 2, end: 12 });
  assert.equal(findPhrase('a hotdog stand', 'dog'), undefined); // whole words only
  assert.ok(phraseMatchesClass('kittens', 'cat'));
  assert.ok(phraseMatchesClass('women', 'person'));
  assert.ok(phraseMatchesClass('puppy', 'dog'));
  assert.ok(!phraseMatchesClass('cat', 'dog'));
  assert.deepEqual(groundablePhrases('Two kittens and a teddy bear near a laptop'), ['kittens', 'teddy bear', 'laptop']);
});

test('one crop per object: the earlier phrase keeps a box two phrases found', () => {
  const box = { x: 0, y: 0, w: 10, h: 10 };
  const c = candidates('a tabby cat', [{ phrase: 'cat', box, score: 0.5 }, { phrase: 'tabby', box, score: 0.5 }]);
  assert.equal(c.length, 1);
  assert.equal(c[0]!.phrase, 'tabby');
});

test('insertImages splits the caption at the offsets', () => {
  const seg = (index: number): ImageSegment => ({ type: 'image', index, role: 'object' });
  const p = insertImages('a dog and a cat', [{ at: 12, segment: seg(1) }, { at: 2, segment: seg(0) }]);
  assert.deepEqual(p.map((s) => (s.type === 'text' ? s.text : `#${s.index}`)), ['a ', '#0', 'dog and a ', '#1', 'cat']);
});

// Rates within 4 standard deviations of the paper's numbers over a few thousand draws.
const within = (k: number, n: number, p: number) => Math.abs(k / n - p) <= 4 * Math.sqrt((p * (1 - p)) / n);

test('person crops become head crops 70% of the time when a face is found', async () => {
  const det = fakeDetector([{ phrase: 'man', box: { x: 4, y: 2, w: 20, h: 28 }, label: 'person' }], [{ x: 10, y: 4, w: 8, h: 8 }]);
  const cfg = { ...defaultConfig(1, 4), augmentProb: 0, controlProb: 0 };
  const img = blank(32, 32);
  const n = 2000;
  let heads = 0;
  for (let i = 0; i < n; i++) {
    const b = await bootstrapSample({ image: img, caption: 'a man', detector: det, rng: new Rng(deriveSeed(1, i)), config: cfg });
    if (images(b.prompt)[0]!.role === 'head') heads++;
  }
  assert.ok(within(heads, n, 0.7), `head rate ${heads / n}`);
  // No face, no head crop.
  const noFace = fakeDetector([{ phrase: 'man', box: { x: 4, y: 2, w: 20, h: 28 }, label: 'person' }]);
  const b = await bootstrapSample({ image: img, caption: 'a man', detector: noFace, rng: new Rng(1), config: { ...cfg, headCropProb: 1 } });
  assert.equal(images(b.prompt)[0]!.role, 'object');
});

test('20% of conditioning images are augmented and 30% of stage-1 prompts get a control image', async () => {
  const det = fakeDetector([{ phrase: 'cat', box: { x: 2, y: 2, w: 10, h: 10 } }]);
  const cfg = defaultConfig(1, 8);
  const img = blank(16, 16, 3, [90, 90, 90]);
  const n = 2000;
  let aug = 0, ctl = 0;
  const kinds = new Set<string>();
  for (let i = 0; i < n; i++) {
    const b = await bootstrapSample({ image: img, caption: 'a cat', detector: det, rng: new Rng(deriveSeed(2, i)), config: cfg });
    const segs = images(b.prompt);
    if (segs.find((s) => s.role === 'object')!.augment) aug++;
    const c = segs.find((s) => s.role === 'control');
    if (c) {
      ctl++;
      kinds.add(c.control!);
      assert.equal(b.prompt.at(-1), c); // after the caption
    }
  }
  assert.ok(within(aug, n, 0.2), `augment rate ${aug / n}`);
  assert.ok(within(ctl, n, 0.3), `control rate ${ctl / n}`);
  assert.deepEqual([...kinds].sort(), ['canny', 'sketch']);
});

test('stage 2 never adds a control image', async () => {
  const det = fakeDetector([{ phrase: 'cat', box: { x: 2, y: 2, w: 10, h: 10 } }]);
  const cfg = { ...defaultConfig(2, 8), controlProb: 1 };
  const b = await bootstrapSample({ image: blank(16, 16), caption: 'a cat', detector: det, rng: new Rng(1), config: cfg });
  assert.ok(!images(b.prompt).some((s) => s.role === 'control'));
});

test('canny finds the edges of a square; sketch keeps flat areas white; depth says why it cannot run', async () => {
  const img: RawImage = blank(32, 32, 3, [0, 0, 0]);
  for (let y = 8; y < 24; y++) for (let x = 8; x < 24; x++) img.data.fill(255, (y * 32 + x) * 3, (y * 32 + x) * 3 + 3);
  const e = await canny(img);
  const at = (im: RawImage, x: number, y: number) => im.data[(y * 32 + x) * 3]!;
  assert.equal(at(e, 2, 2), 0);
  assert.equal(at(e, 16, 16), 0);
  let edge = 0;
  for (let x = 0; x < 32; x++) edge += at(e, x, 8) | at(e, x, 7) ? 1 : 0;
  assert.ok(edge >= 14, `edge pixels on the top side: ${edge}`);
  const s = sketch(img);
  assert.equal(at(s, 16, 16), 255);
  await assert.rejects(depthUnavailable(img), /depth model/);
});
