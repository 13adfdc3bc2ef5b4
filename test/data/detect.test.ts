// The real detector (CenterNet + BlazeFace from @vladmandic/human on tfjs-wasm, weights inside the npm package)
// on real photos, and the folder source end to end with bad input. Skipped cleanly if the detector cannot load.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runBootstrap } from '../../src/cli/bootstrap.ts';
import { GroundTruthDetector, HumanDetector, loadOpenVocabDetector } from '../../src/data/detect/index.ts';
import { decodeImage, padToSquare, blank } from '../../src/image/index.ts';
import { readManifest, streamSamples } from '../../src/data/shards/index.ts';

const PHOTOS = fileURLToPath(new URL('../fixtures/photos/', import.meta.url));
let detector: HumanDetector | undefined;
let why = '';
before(async () => {
  try {
    detector = await HumanDetector.load();
  } catch (e) {
    why = `detector cannot run here: ${(e as Error).message}`;
  }
});

test('CenterNet finds the cat in chelsea (padded to square, as the pipeline does)', async (t) => {
  if (!detector) return t.skip(why);
  const img = padToSquare(await decodeImage(path.join(PHOTOS, 'chelsea.jpg'))).image; // 451x451, cat in rows 75..375
  const dets = await detector.detect(img, ['kitten', 'dog']);
  const cat = dets.find((d) => d.phrase === 'kitten');
  assert.ok(cat, `no cat: ${JSON.stringify(dets)}`);
  assert.equal(cat.label, 'cat');
  assert.ok(cat.score > 0.3);
  const cy = cat.box.y + cat.box.h / 2;
  assert.ok(cat.box.w > 200 && cy > 150 && cy < 300, JSON.stringify(cat.box));
  assert.ok(!dets.some((d) => d.phrase === 'dog'));
});

test('BlazeFace finds the astronaut\'s face inside her person box', async (t) => {
  if (!detector) return t.skip(why);
  const img = await decodeImage(path.join(PHOTOS, 'astronaut.jpg'));
  const [person] = await detector.detect(img, ['woman']);
  const faces = await detector.faces(img);
  assert.equal(person?.label, 'person');
  assert.equal(faces.length, 1);
  const f = faces[0]!.box;
  assert.ok(f.x > person!.box.x && f.x + f.w < person!.box.x + person!.box.w && f.y < 128, JSON.stringify(f));
});

test('folder source: bad lines and unreadable images are skipped and counted, good photos become prompts', async (t) => {
  if (!detector) return t.skip(why);
  const dir = mkdtempSync(path.join(tmpdir(), 'mumu-folder-'));
  writeFileSync(path.join(dir, 'broken.jpg'), 'not a jpeg at all');
  const captions = path.join(dir, 'captions.jsonl');
  writeFileSync(captions, [
    JSON.stringify({ image: path.join(PHOTOS, 'chelsea.jpg'), caption: 'a tabby cat lying on a blanket' }),
    '{ this is not json',
    JSON.stringify({ image: 'broken.jpg', caption: 'a dog' }),
    JSON.stringify({ image: 'missing.jpg', caption: 'a dog' }),
    JSON.stringify({ image: path.join(PHOTOS, 'astronaut.jpg'), caption: 'a smiling woman astronaut holding a helmet' }),
    JSON.stringify({ image: path.join(PHOTOS, 'coffee.jpg') }),
  ].join('\n') + '\n');
  const out = path.join(dir, 'out');
  assert.equal(await runBootstrap(['--source', 'folder', '--images', dir, '--captions', captions, '--out', out, '--size', '64', '--quiet', '--sheet', '2']), 0);
  const m = await readManifest(out);
  assert.equal(m.totals.samples, 2);
  assert.deepEqual(m.totals.skipped, { 'bad-caption-line': 2, 'bad-image': 2 });
  const got = new Map<string, string[]>();
  for await (const s of streamSamples(out)) got.set(s.meta.caption, s.meta.prompt.map((p) => (p.type === 'text' ? p.text : `<${p.role}>`)));
  assert.deepEqual(got.get('a tabby cat lying on a blanket')?.slice(0, 2), ['a ', '<object>']); // before "tabby cat"
  assert.ok(got.get('a smiling woman astronaut holding a helmet')?.some((p) => p === '<head>' || p === '<object>'));

  // Nothing usable at all is an error, with a one-line reason.
  const bad = path.join(dir, 'bad.jsonl');
  writeFileSync(bad, '{"image": "missing.jpg", "caption": "a cat"}\nnot json\n');
  await assert.rejects(runBootstrap(['--source', 'folder', '--images', dir, '--captions', bad, '--out', path.join(dir, 'out2'), '--quiet']), /no samples produced from 2 inputs \(skipped: 1 bad-caption-line, 1 bad-image\)/);
});

test('ground truth answers to the phrase and its other words; no open-vocabulary detector ships', async () => {
  const gt = new GroundTruthDetector([{ phrase: 'dog face', words: ['dog', 'puppy'], box: { x: 1, y: 2, w: 3, h: 4 } }]);
  const img = blank(8, 8);
  assert.equal((await gt.detect(img, ['dog face'])).length, 1);
  assert.equal((await gt.detect(img, ['puppies'])).length, 1);
  assert.equal((await gt.detect(img, ['cat'])).length, 0);
  await assert.rejects(loadOpenVocabDetector('/models/grounding-dino'), /no open-vocabulary detector ships/);
});
