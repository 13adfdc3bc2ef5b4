// The real CLI process (node bin/mumu.js): help, usage errors and every bad-prompt case give one clear line on
// stderr, a non-zero exit, and no stack trace unless --debug.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, symlinkSync, mkdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeFixtures } from '../prompt/fixtures.ts';
import { mumu, BIN } from './helpers.ts';

const oneLine = (s: string) => s.trimEnd().split('\n').length === 1 && !/\n\s+at /.test(s);

let dir = '';
before(async () => {
  dir = await makeFixtures();
});

test('help and version', async () => {
  const [top, gen, bare, ver, helpGen, info] = await Promise.all([
    mumu(['--help']),
    mumu(['generate', '--help']),
    mumu([]),
    mumu(['--version']),
    mumu(['help', 'generate']),
    mumu(['info', '-h']),
  ]);
  assert.equal(top.code, 0);
  for (const c of ['generate', 'info', 'bootstrap', 'train', 'eval', '--debug']) assert.ok(top.stdout.includes(c), c);
  assert.equal(gen.code, 0);
  for (const o of [
    '--out',
    '--n',
    '--seed',
    '--steps',
    '--guidance',
    '--negative',
    '--model',
    '--sampler',
    '--eta',
    '--device',
    '--no-progress',
  ])
    assert.ok(gen.stdout.includes(o), o);
  assert.equal(bare.code, 2);
  assert.match(bare.stdout, /Usage: mumu <command>/);
  assert.match(ver.stdout, /^mumu \d+\.\d+\.\d+\n$/);
  assert.equal(helpGen.stdout, gen.stdout);
  assert.match(info.stdout, /Usage: mumu info/);
});

// [args, stderr pattern, exit code]
const CASES: [string[], RegExp, number][] = [
  [['frobnicate'], /^mumu: unknown command 'frobnicate' .*\(see mumu --help\)$/, 2],
  [['generate'], /^mumu generate: missing the prompt/, 2],
  [['generate', 'a', 'dog'], /expected one prompt, got 2 arguments \(put the prompt in quotes\)/, 2],
  [['generate', 'x', '--wat'], /^mumu generate: Unknown option '--wat' \(see mumu generate --help\)$/, 2],
  [['generate', 'x', '--steps', '12abc'], /--steps must be a whole number, got '12abc'/, 2],
  [['generate', 'x', '--n', '0'], /--n must be between 1 and 64, got 0/, 2],
  [['generate', 'x', '--guidance', 'lots'], /--guidance must be a number, got 'lots'/, 2],
  [['generate', 'x', '--sampler', 'plms'], /--sampler must be ddim, euler or euler_a/, 2],
  [['generate', 'x', '-o', 'out.jpg'], /--out must name a \.png file/, 2],
  [['generate', ''], /^mumu: prompt: is empty/, 1],
  [['generate', '   '], /^mumu: prompt: is empty/, 1],
  [['generate', 'a <img:red.png dog'], /^mumu: prompt column 3: unclosed image tag "<img:red.png dog"/, 1],
  [['generate', 'a <img:> dog'], /^mumu: prompt column 3: empty image tag '<img:>'/, 1],
  [
    ['generate', 'a <b> dog'],
    /^mumu: prompt column 3: '<' opens an image tag, but "<b> dog" is not '<img:PATH>' \(write \\< for a literal '<'\)$/,
    1,
  ],
  [['generate', 'a <img:missing.png> dog'], /^mumu: prompt column 3: image file 'missing.png' not found/, 1],
  [['generate', 'a dog <img:folder.png>'], /^mumu: prompt column 7: image 'folder.png' is a folder, not a file$/, 1],
  [['generate', 'a <img:notes.txt> dog'], /^mumu: prompt column 3: 'notes.txt' is not an image sharp can read/, 1],
  [['generate', 'a <img:empty.png> dog'], /^mumu: prompt column 3: 'empty.png' is an empty file, not an image$/, 1],
  [
    ['generate', 'a <img:huge.png> dog'],
    /^mumu: prompt column 3: 'huge.png' is (over|20000x20000, over) the 100 megapixel limit$/,
    1,
  ],
  [
    ['generate', 'a dog', '--negative', 'no <img:missing.png>'],
    /^mumu: negative prompt column 4: image file 'missing.png' not found/,
    1,
  ],
  // an escaped '<' parses, so the run gets as far as loading the model
  [['generate', 'a \\<3 dog', '--model', 'nowhere'], /^mumu: --model nowhere: no such folder$/, 1],
  [['generate', 'a dog', '--model', 'nowhere'], /^mumu: --model nowhere: no such folder$/, 1],
  [['generate', 'a dog', '--model', '.'], /^mumu: --model \.: not a mumu model folder \(no model_index\.json\)$/, 1],
  [['info', 'notes.txt'], /^mumu: notes\.txt: not a PNG file$/, 1],
  [['info', 'red.png'], /^mumu: red\.png has no text metadata/, 1],
];

test('every bad input: its message on one line, non-zero exit, no stack trace', async () => {
  const runs = await Promise.all(CASES.map(([args]) => mumu(args, { cwd: dir })));
  runs.forEach((r, i) => {
    const [args, re, code] = CASES[i]!;
    assert.match(r.stderr.trimEnd(), re, `mumu ${JSON.stringify(args)} said: ${r.stderr}`);
    assert.ok(oneLine(r.stderr), `mumu ${JSON.stringify(args)}: not one line: ${r.stderr}`);
    assert.equal(r.code, code, `mumu ${JSON.stringify(args)} exit code`);
    assert.equal(r.stdout, '');
  });
});

test('--debug adds the stack trace', async () => {
  const r = await mumu(['generate', 'a <img:missing.png>', '--debug'], { cwd: dir });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^mumu: prompt column 3: image file 'missing.png' not found/);
  assert.match(r.stderr, /\n\s+at /);
});

test('works through an npm-style bin symlink, from another folder', async () => {
  const bin = join(mkdtempSync(join(tmpdir(), 'mumu-bin-')), 'node_modules', '.bin');
  mkdirSync(bin, { recursive: true });
  symlinkSync(BIN, join(bin, 'mumu'));
  const r = await mumu(['--version'], { cwd: tmpdir(), bin: [join(bin, 'mumu')] });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^mumu \d/);
});

test('subcommands from other modules: dispatched when their file exists, a clear line when not', async () => {
  const src = fileURLToPath(new URL('../../src/cli/', import.meta.url));
  for (const [cmd, file] of [
    ['bootstrap', 'bootstrap.ts'],
    ['train', 'train.ts'],
    ['eval', 'eval.ts'],
  ] as const) {
    const r = await mumu([cmd, '--help']);
    if (existsSync(join(src, file))) {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`mumu ${cmd}`));
    } else {
      assert.equal(r.code, 1);
      assert.equal(r.stderr, `mumu: 'mumu ${cmd}' is not part of this build yet (src/cli/${file} is missing)\n`);
    }
  }
});
