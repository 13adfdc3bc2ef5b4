// EmojiWorld: determinism by seed, both training sizes, content x style pairing, and a train/test split that
// never leaks held-out concepts or styles into training.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { allConcepts, EmojiWorld, HELDOUT_STYLES, isHeldOutConcept, SCENE_BACKGROUNDS, STYLES } from '../../src/data/emoji-world/index.ts';

const digest = (d: Uint8Array) => createHash('sha1').update(d).digest('hex');

test('the catalog joins the 7 sets by slug', () => {
  const cs = allConcepts();
  const dog = cs.find((c) => c.slug === 'dog-face')!;
  assert.equal(dog.label, 'dog face');
  assert.ok(dog.tags.includes('dog'));
  assert.equal(dog.styles.length, 7);
  assert.ok(cs.filter((c) => c.styles.length === 7).length > 1000);
  assert.equal(STYLES.length, 7);
  assert.ok(!cs.some((c) => c.slug in SCENE_BACKGROUNDS), 'background scenes are never objects');
});

test('scenes are deterministic by seed, at 64 and 128 px', () => {
  for (const size of [64, 128]) {
    const a = new EmojiWorld({ size, seed: 42 }), b = new EmojiWorld({ size, seed: 42 }), c = new EmojiWorld({ size, seed: 43 });
    for (const i of [0, 1, 7, 123]) {
      const sa = a.scene(i), sb = b.scene(i);
      assert.equal(sa.image.width, size);
      assert.equal(sa.image.height, size);
      assert.equal(sa.image.channels, 3);
      assert.equal(sa.caption, sb.caption);
      assert.deepEqual(sa.objects, sb.objects);
      assert.equal(digest(sa.image.data), digest(sb.image.data));
    }
    // Scenes out of order match scenes in order (workers / resume see the same data).
    assert.equal(digest(new EmojiWorld({ size, seed: 42 }).scene(123).image.data), digest(a.scene(123).image.data));
    const diff = [0, 1, 2, 3, 4, 5, 6, 7].filter((i) => a.scene(i).caption !== c.scene(i).caption).length;
    assert.ok(diff >= 6, 'another seed gives other scenes');
  }
});

test('captions read content then style, boxes lie inside the image and occlusion is bounded', () => {
  const w = new EmojiWorld({ size: 64, seed: 1 });
  for (let i = 0; i < 200; i++) {
    const s = w.scene(i);
    assert.match(s.caption, /^an? .+ on an? .+ background, .+ style$/);
    assert.ok(s.objects.length >= 1 && s.objects.length <= 3);
    for (const o of s.objects) {
      assert.ok(s.caption.includes(o.phrase));
      assert.ok(o.box.x >= 0 && o.box.y >= 0 && o.box.x + o.box.w <= 64 && o.box.y + o.box.h <= 64 && o.box.w > 0);
    }
  }
  // One content, several styles: consecutive training scenes share objects and background.
  const s0 = w.scene(0), s1 = w.scene(1);
  assert.deepEqual(s0.objects.map((o) => o.slug), s1.objects.map((o) => o.slug));
  assert.notEqual(s0.style, s1.style);
});

test('the training split never shows a held-out concept or style; the test split always holds one out', () => {
  const train = new EmojiWorld({ size: 32, seed: 5, split: 'train' });
  const test_ = new EmojiWorld({ size: 32, seed: 5, split: 'test' });
  assert.ok(train.heldOutConcepts.length > 50);
  assert.ok(train.trainConcepts.every((c) => !isHeldOutConcept(c.slug)));
  const modes = new Set<string>();
  for (let i = 0; i < 1500; i++) {
    const s = train.scene(i);
    assert.ok(!HELDOUT_STYLES.includes(s.style), `train scene ${i} in held-out style ${s.style}`);
    for (const o of s.objects) assert.ok(!o.heldOut && !isHeldOutConcept(o.slug), `train scene ${i} shows held-out ${o.slug}`);
  }
  for (let i = 0; i < 300; i++) {
    const s = test_.scene(i);
    const unseenStyle = HELDOUT_STYLES.includes(s.style), unseenConcept = s.objects.some((o) => isHeldOutConcept(o.slug));
    assert.ok(unseenStyle || unseenConcept, `test scene ${i} holds nothing out`);
    modes.add(s.heldOut!);
  }
  assert.deepEqual([...modes].sort(), ['both', 'concept', 'style']);
});

test('concept filters: by group, by subgroup, by explicit list', () => {
  const animals = new EmojiWorld({ size: 32, seed: 0, concepts: { subgroups: ['animal-mammal'] } });
  assert.ok(animals.trainConcepts.every((c) => c.subgroup === 'animal-mammal'));
  for (let i = 0; i < 20; i++) for (const o of animals.scene(i).objects) assert.ok(animals.trainConcepts.some((c) => c.slug === o.slug));
  const few = new EmojiWorld({ size: 32, seed: 0, concepts: { slugs: ['dog-face', 'rocket', 'cat-face', 'red-apple'] } });
  assert.ok(few.trainConcepts.length >= 3);
  assert.throws(() => new EmojiWorld({ size: 32, seed: 0, concepts: { slugs: ['no-such-emoji'] } }), /unknown emoji concept/);
});

test('scene difficulty knobs: object counts and background kinds, with the defaults unchanged when passed explicitly', () => {
  const two = new EmojiWorld({ size: 32, seed: 3, objectCounts: [0, 1], backgrounds: { solid: 1 } });
  for (let i = 0; i < 40; i++) {
    const s = two.scene(i);
    assert.equal(s.objects.length, 2);
    assert.equal(s.background.kind, 'solid');
    assert.match(s.caption, /^an? .+ and an? .+ on an? [a-z]+ background, .+ style$/);
  }
  const mixed = new EmojiWorld({ size: 32, seed: 3, objectCounts: [1, 1], backgrounds: { solid: 3, gradient: 1 } });
  const scenes = Array.from({ length: 200 }, (_, i) => mixed.scene(i));
  const counts = [1, 2, 3].map((n) => scenes.filter((s) => s.objects.length === n).length);
  const grads = scenes.filter((s) => s.background.kind === 'gradient').length;
  assert.equal(counts[2], 0);
  assert.ok(counts[0]! > 60 && counts[1]! > 60, `1 vs 2 objects ~ even: ${counts}`);
  assert.ok(grads > 25 && grads < 85, `gradients ~ a quarter: ${grads}`);
  assert.ok(scenes.every((s) => s.background.kind === 'solid' || s.background.kind === 'gradient'));
  const explicit = new EmojiWorld({ size: 32, seed: 3, objectCounts: [0.4, 0.35, 0.25], backgrounds: { solid: 0.3, gradient: 0.2, stripes: 0.1, checker: 0.1, dots: 0.1, scene: 0.2 } });
  const plain = new EmojiWorld({ size: 32, seed: 3 });
  for (const i of [0, 5, 77]) assert.equal(digest(explicit.scene(i).image.data), digest(plain.scene(i).image.data));
  assert.throws(() => new EmojiWorld({ size: 32, seed: 3, objectCounts: [0, 0] }), /objectCounts must be 1-3 non-negative weights/);
  assert.throws(() => new EmojiWorld({ size: 32, seed: 3, objectCounts: [1, 1, 1, 1] }), /objectCounts/);
  assert.throws(() => new EmojiWorld({ size: 32, seed: 3, backgrounds: { plaid: 1 } as never }), /unknown background kind 'plaid'/);
  assert.throws(() => new EmojiWorld({ size: 32, seed: 3, backgrounds: { solid: -1, gradient: 1 } }), /non-negative/);
});
