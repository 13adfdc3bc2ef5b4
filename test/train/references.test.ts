// The MUMU stages' reference switches beyond the paper (src/train/references.ts): restyled crops come from the
// sibling scene (same content, other style) at the same object, the caption unchanged; re-backed crops from the same
// scene on a plain colour; a style reference stands where the style's name stood; off (0) they leave the sample as it
// was, and on they leave every other draw of the item (the target, the other segments) as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COLORS, EmojiWorld, STYLES } from '../../src/data/emoji-world/index.ts';
import { bootstrapSample, squareResize } from '../../src/data/bootstrap/bootstrap.ts';
import { defaultConfig } from '../../src/data/bootstrap/rules.ts';
import { promptText, promptToString } from '../../src/data/bootstrap/prompt.ts';
import { GroundTruthDetector } from '../../src/data/detect/ground-truth.ts';
import { Rng } from '../../src/data/rng.ts';
import { clampBox, crop } from '../../src/image/index.ts';
import { plainBackground, recutReferences, styleReference } from '../../src/train/references.ts';
import { parseTrainConfig } from '../../src/train/config.ts';
import { StageData } from '../../src/train/data.ts';
import { buildModel, StageRunner } from '../../src/train/stages.ts';
import type { PromptSegment } from '../../src/prompt/index.ts';
import { tinyRaw } from './helpers.ts';

const world = new EmojiWorld({ size: 64, seed: 5, split: 'train', stylesPerContent: 4 });
const cfg = { ...defaultConfig(1, 32), controlProb: 0, augmentProb: 0 };
async function sampleOf(index: number) {
  const scene = world.scene(index);
  const b = await bootstrapSample({
    image: scene.image,
    caption: scene.caption,
    detector: new GroundTruthDetector(scene.objects),
    rng: new Rng(index),
    config: cfg,
  });
  return { scene, b };
}

const restyle = (s: { style: string }) => ({ restyle: s.style });

test('recutReferences (restyle): every crop cut from the sibling scene at the same object; the words unchanged; p = 0 changes nothing', async () => {
  let checked = 0;
  for (let i = 0; i < 8 && checked < 3; i++) {
    const { scene, b } = await sampleOf(4 * i);
    const sibling = world.scene(4 * i + 1);
    assert.equal(
      sibling.caption.split(', ').slice(0, -1).join(', '),
      scene.caption.split(', ').slice(0, -1).join(', '),
      'siblings share the content',
    );
    assert.notEqual(sibling.style, scene.style);
    const objects = b.prompt.filter((s) => s.type === 'image' && s.role === 'object');
    if (!objects.length) continue;
    const r = await recutReferences(b, () => sibling, restyle, 1, new Rng(1), cfg);
    assert.equal(r.recut, objects.length);
    assert.equal(promptText(r.prompt), promptText(b.prompt));
    for (const seg of r.prompt) {
      if (seg.type !== 'image') continue;
      assert.equal(seg.restyle, sibling.style);
      const twin = sibling.objects.find((o) => o.phrase === seg.phrase)!;
      const want = await squareResize(crop(sibling.image, clampBox(twin.box, 64, 64)), 32, cfg);
      assert.deepEqual(r.images[seg.index]!.data, want.data);
      assert.notDeepEqual(r.images[seg.index]!.data, b.images[seg.index]!.data, 'the other style draws other pixels');
    }
    const off = await recutReferences(b, () => sibling, restyle, 0, new Rng(1), cfg);
    assert.equal(off.recut, 0);
    assert.deepEqual(off.prompt, b.prompt);
    assert.deepEqual(off.images, b.images);
    checked++;
  }
  assert.equal(checked, 3, 'three scenes with crops were checked');
});

test('recutReferences (plain background): the same scene, objects and boxes on a plain colour; crops cut from it', async () => {
  let checked = 0;
  for (let i = 0; i < 8 && checked < 3; i++) {
    const { scene, b } = await sampleOf(i);
    const objects = b.prompt.filter((s) => s.type === 'image' && s.role === 'object');
    if (!objects.length) continue;
    const bg = plainBackground(new Rng(i), scene.background);
    assert.equal(bg.kind, 'solid');
    assert.ok(!(scene.background.kind === 'solid' && scene.background.colors[0] === bg.colors[0]), 'another colour');
    const plain = world.scene(i, bg);
    assert.deepEqual(plain.objects, scene.objects, 'the same objects at the same places');
    assert.equal(plain.style, scene.style);
    assert.ok(
      plain.caption.includes(`on a ${bg.colors[0]} background`) || plain.caption.includes(`on an ${bg.colors[0]}`),
    );
    const corner = plain.image.data.slice(0, 3);
    assert.ok(Math.abs(corner[0]! - COLORS[bg.colors[0]!]![0]) <= 1, 'a plain fill (objects rarely cover the corner)');
    const r = await recutReferences(
      b,
      () => plain,
      (s) => ({ background: s.background.colors[0]! }),
      1,
      new Rng(1),
      cfg,
    );
    assert.equal(r.recut, objects.length);
    assert.equal(promptText(r.prompt), promptText(b.prompt), 'the caption still asks the target background');
    for (const seg of r.prompt) {
      if (seg.type !== 'image') continue;
      assert.equal(seg.background, bg.colors[0]);
      const want = await squareResize(crop(plain.image, clampBox(seg.box!, 64, 64)), 32, cfg);
      assert.deepEqual(r.images[seg.index]!.data, want.data);
    }
    // an already recut crop is left alone: restyle first, then the background switch changes nothing
    const again = await recutReferences(r, () => plain, restyle, 1, new Rng(1), cfg);
    assert.equal(again.recut, 0);
    checked++;
  }
  assert.equal(checked, 3, 'three scenes with crops were checked');
  // black half the time, never the scene's own solid colour
  const own = { kind: 'solid' as const, colors: ['black', 'black'], angle: 0, period: 0.1 };
  const rng = new Rng(3);
  const drawn = Array.from({ length: 200 }, () => plainBackground(rng, own).colors[0]);
  assert.ok(!drawn.includes('black'));
  const rng2 = new Rng(4);
  const blacks = Array.from(
    { length: 400 },
    () => plainBackground(rng2, { ...own, colors: ['red', 'red'] }).colors[0],
  ).filter((c) => c === 'black').length;
  assert.ok(blacks > 160 && blacks < 240, `${blacks}/400 black`);
});

test("styleReference: an image of other objects stands where the style's name stood; other captions unchanged", async () => {
  const { scene, b } = await sampleOf(0);
  const style = STYLES.find((s) => s.id === scene.style)!;
  const r = styleReference(b, style.phrase, style.id, ['banana'], 1, new Rng(2), 32);
  const n = b.images.length;
  assert.equal(r.images.length, n + 1);
  assert.ok(promptToString(r.prompt).endsWith(`background, <img${n}:style> style`), promptToString(r.prompt));
  assert.equal(promptText(r.prompt), scene.caption.replace(`${style.phrase} style`, ' style'));
  const img = r.images[n]!;
  assert.equal(img.width, 32);
  assert.ok(
    img.data.some((v) => v > 0),
    'the style image shows something',
  );
  // the image is drawn only when the words are there, and p = 0 never draws it
  assert.deepEqual(styleReference(b, 'no such', style.id, ['banana'], 1, new Rng(2), 32), b);
  assert.deepEqual(styleReference(b, style.phrase, style.id, ['banana'], 0, new Rng(2), 32), b);
});

test('StageData: the switches change only the references; the target and the rest of the item are the same draws', async () => {
  const raw = (data: object) => {
    const r = tinyRaw('mumu-stage1', { steps: 4 });
    return parseTrainConfig({ ...r, data: { ...(r.data as object), prompt_dropout: 0, ...data } });
  };
  const base = raw({});
  const runner = new StageRunner(base, await buildModel(base));
  const plain = await StageData.open(base, runner.prompt);
  const both = await StageData.open(raw({ restyle_references: 1, style_references: 1 }), runner.prompt);
  let restyled = 0;
  for (let i = 0; i < 6; i++) {
    const [a, s] = [await plain.item(i), await both.item(i)];
    assert.deepEqual(s.image, a.image, `item ${i}: the same target`);
    assert.equal(s.caption, a.caption);
    const isText = (x: PromptSegment) => typeof x === 'string' || 'text' in x;
    const words = (segs: typeof a.segments) =>
      segs!.map((x) => (typeof x === 'string' ? x : 'text' in x ? x.text : '<img>')).join('');
    const style = STYLES.find((st) => a.caption.endsWith(`${st.phrase} style`))!;
    assert.equal(words(s.segments), words(a.segments).replace(`${style.phrase} style`, '<img> style'));
    // the object crops stand before the caption's last words (a control image, if any, after them)
    const crops = (segs: typeof a.segments) => {
      const last = segs!.map(isText).lastIndexOf(true);
      return segs!.slice(0, last).filter((x) => !isText(x));
    };
    const [ca, cs] = [crops(a.segments), crops(s.segments)];
    assert.equal(cs.length, ca.length + 1, 'the crops and the style image');
    if (ca.length) restyled++;
    ca.forEach((img, k) => assert.notDeepEqual(cs[k], img, `item ${i}: crop ${k} restyled`));
  }
  assert.ok(restyled >= 3, `${restyled} items had crops`);
  // the background switch alone: the same target and words, other crops
  const backed = await StageData.open(raw({ reference_backgrounds: 1 }), runner.prompt);
  let recut = 0;
  for (let i = 0; i < 6; i++) {
    const [a, s] = [await plain.item(i), await backed.item(i)];
    assert.deepEqual(s.image, a.image, `item ${i}: the same target`);
    const shown = (segs: typeof a.segments) =>
      segs!.map((x) => (typeof x === 'string' ? x : 'text' in x ? x.text : '<img>'));
    assert.deepEqual(shown(s.segments), shown(a.segments));
    const imgs = (segs: typeof a.segments) => segs!.filter((x) => typeof x !== 'string' && !('text' in x));
    const [ia, is] = [imgs(a.segments), imgs(s.segments)];
    recut += is.filter((img, k) => JSON.stringify(img) !== JSON.stringify(ia[k])).length;
  }
  assert.ok(recut >= 3, `${recut} crops re-backed`);
  assert.throws(() => raw({ restyle_references: 0.5, styles_per_content: 1 }), /styles_per_content >= 2/);
  assert.throws(
    () => raw({ style_references: 0.5, shards: 'data/x' }),
    /style_references needs scenes drawn on the fly/,
  );
  assert.throws(() => raw({ reference_backgrounds: 0.5, shards: 'data/x' }), /reference_backgrounds needs scenes/);
});
