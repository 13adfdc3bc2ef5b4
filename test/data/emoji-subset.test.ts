// The carried EmojiWorld subset (src/data/emoji-world/subset.ts): a process that reads icons and the catalog from
// it draws the same scenes, bit for bit, as one that reads the iconify and emojibase packages; an icon it does not
// carry is a one-line error; without it nothing changes.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { allConcepts, buildEmojiSubset, EMOJI_SUBSET_ENV, iconSvg, readEmojiSubset, SCENE_BACKGROUNDS, STYLES, useEmojiSubset, type WorldOptions } from '../../src/data/emoji-world/index.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SLUGS = ['dog-face', 'rocket', 'cat-face', 'red-apple', 'person-curly-hair'];
// every background kind, scenes included, at a training size and a bootstrap render size
const WORLDS: WorldOptions[] = [
  { size: 64, seed: 7, concepts: { slugs: SLUGS } },
  { size: 128, seed: 8, concepts: { slugs: SLUGS }, backgrounds: { scene: 1 } },
  { size: 64, seed: 9, split: 'test', concepts: { slugs: SLUGS } },
];
const SCENES = 12;

// Digests of the scenes of WORLDS, computed in a fresh process (render.ts caches rasters per process, so both
// sources must start cold): with `subset` set, through MUMU_EMOJI_SUBSET.
function sceneDigests(subset?: string): string[] {
  const code = `
    const { createHash } = await import('node:crypto');
    const { EmojiWorld } = await import(${JSON.stringify(path.join(ROOT, 'src/data/emoji-world/index.ts'))});
    const out = [];
    for (const o of ${JSON.stringify(WORLDS)}) {
      const w = new EmojiWorld(o);
      for (let i = 0; i < ${SCENES}; i++) { const s = w.scene(i); out.push(s.caption + ' ' + createHash('sha1').update(s.image.data).digest('hex')); }
    }
    console.log(JSON.stringify(out));`;
  const env = { ...process.env };
  delete env[EMOJI_SUBSET_ENV];
  if (subset) env[EMOJI_SUBSET_ENV] = subset;
  const stdout = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, env, encoding: 'utf8' });
  return JSON.parse(stdout) as string[];
}

test('a subset carries the catalog and the icons of its concepts and the scene backgrounds, in every style', () => {
  const sub = buildEmojiSubset([{ slugs: SLUGS }, { slugs: ['dog-face'] }]);
  assert.deepEqual(sub.concepts, allConcepts());
  const expected = SLUGS.flatMap((slug) => allConcepts().find((c) => c.slug === slug)!.styles.map((st) => `${st}/${slug}`))
    .concat(Object.keys(SCENE_BACKGROUNDS).flatMap((slug) => STYLES.map((st) => `${st.id}/${slug}`)));
  assert.deepEqual(Object.keys(sub.icons).sort(), expected.sort());
  for (const key of ['noto/dog-face', 'fluent-emoji/person-curly-hair', 'openmoji/sunset']) {
    const [style, slug] = key.split('/') as [string, string];
    assert.equal(sub.icons[key], iconSvg(style, slug));
  }
  assert.equal(sub.packages['@iconify-json/noto'], JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/@iconify-json/noto/package.json'), 'utf8')).version);
  assert.throws(() => buildEmojiSubset([{ slugs: ['no-such-emoji'] }]), /unknown emoji concept 'no-such-emoji'/);
});

test('scenes drawn from a carried subset are bit-identical with scenes drawn from the packages', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-subset-'));
  try {
    const file = path.join(dir, 'emoji-world.json');
    fs.writeFileSync(file, JSON.stringify(buildEmojiSubset(WORLDS.map((w) => w.concepts))));
    const fromPackages = sceneDigests();
    const fromSubset = sceneDigests(file);
    assert.equal(fromPackages.length, WORLDS.length * SCENES);
    assert.deepEqual(fromSubset, fromPackages);
    // scene backgrounds and every size were exercised
    assert.ok(fromPackages.slice(SCENES, 2 * SCENES).every((l) => Object.values(SCENE_BACKGROUNDS).some((p) => l.includes(`${p} background`))));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an icon the subset does not carry, or a file that is no subset, is a one-line error', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-subset-'));
  try {
    const file = path.join(dir, 'emoji-world.json');
    fs.writeFileSync(file, JSON.stringify(buildEmojiSubset([{ slugs: ['dog-face', 'rocket', 'cat-face'] }])));
    useEmojiSubset(file);
    try {
      assert.equal(allConcepts().length, readEmojiSubset(file).concepts.length);
      assert.ok(iconSvg('noto', 'rocket').startsWith('<svg'));
      assert.throws(() => iconSvg('noto', 'banana'), (e: Error) => e.message === `emoji 'banana' in style noto is not in ${file}: pack it again with the configs that draw it (scripts/gpu/pack.ts)`);
    } finally {
      useEmojiSubset(null);
    }
    assert.ok(iconSvg('noto', 'banana').startsWith('<svg'), 'back on the packages');
    fs.writeFileSync(path.join(dir, 'other.json'), '{"icons": {}}');
    assert.throws(() => readEmojiSubset(path.join(dir, 'other.json')), /other\.json is not an EmojiWorld subset/);
    assert.throws(() => readEmojiSubset(path.join(dir, 'missing.json')), /cannot read the EmojiWorld subset .*missing\.json: ENOENT/);
    // through the environment: the first look-up reports the bad file in one line
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e',
      `const m = await import(${JSON.stringify(path.join(ROOT, 'src/data/emoji-world/index.ts'))}); try { m.allConcepts(); } catch (e) { console.log(e.message); }`],
    { cwd: ROOT, env: { ...process.env, [EMOJI_SUBSET_ENV]: path.join(dir, 'other.json') }, encoding: 'utf8' });
    assert.equal(r.stdout.trim(), `${path.join(dir, 'other.json')} is not an EmojiWorld subset (expected format 'mumu-emoji-subset/1', written by scripts/gpu/pack.ts)`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
