// Inputs that used to hang or end in a stack trace, through the real CLI process: each gets one line on stderr and
// a non-zero exit. Image paths naming a FIFO, a device or a socket; prompts of tens of thousands of words and prompts
// over the model's token limit; negative numbers for numeric flags; a checkout that was never set up.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeFixtures } from '../prompt/fixtures.ts';
import { makeTinyModel } from '../pipeline/tiny-model.ts';
import { mumu, BIN } from './helpers.ts';

const oneLine = (s: string) => s.trimEnd().split('\n').length === 1 && !/\n\s+at /.test(s);

let dir = '',
  model = '',
  server: Server;
before(async () => {
  dir = await makeFixtures();
  model = await makeTinyModel();
  execFileSync('mkfifo', [join(dir, 'pipe.png')]);
  server = createServer().listen(join(dir, 'sock.png'));
  await new Promise((r) => server.once('listening', r));
});
after(() => server.close());

const words = (n: number) => 'dog '.repeat(n).trim();

// [args, stderr pattern, exit code]
const CASES: [string[], RegExp, number][] = [
  [
    ['generate', 'a <img:pipe.png> dog'],
    /^mumu: prompt column 3: image 'pipe\.png' is a FIFO \(named pipe\), not a regular file$/,
    1,
  ],
  [
    ['generate', 'a <img:/dev/zero> dog'],
    /^mumu: prompt column 3: image '\/dev\/zero' is a character device, not a regular file$/,
    1,
  ],
  [
    ['generate', 'a <img:sock.png> dog'],
    /^mumu: prompt column 3: image 'sock\.png' is a socket, not a regular file$/,
    1,
  ],
  [
    ['generate', 'a dog', '--negative', '<img:pipe.png>'],
    /^mumu: negative prompt column 1: image 'pipe\.png' is a FIFO/,
    1,
  ],
  [['info', 'pipe.png'], /^mumu: 'pipe\.png' is a FIFO \(named pipe\), not a regular file$/, 1],
  [['info', '/dev/zero'], /^mumu: '\/dev\/zero' is a character device, not a regular file$/, 1],
  [['generate', words(25_000)], /^mumu: prompt: is 99,999 characters long; mumu takes at most 20,000$/, 1],
  [
    ['generate', 'a dog', '--negative', words(25_000)],
    /^mumu: negative prompt: is 99,999 characters long; mumu takes at most 20,000$/,
    1,
  ],
  [
    ['generate', '--steps', '-1', 'a dog'],
    /^mumu generate: --steps must be between 1 and 1000, got -1 \(see mumu generate --help\)$/,
    2,
  ],
  [['generate', 'a dog', '-n', '-2'], /^mumu generate: --n must be between 1 and 64, got -2/, 2],
  [['generate', 'a dog', '--guidance', '-0.5'], /^mumu generate: --guidance must be between 0 and 100, got -0\.5/, 2],
  [['generate', 'a dog', '--eta', '-.5'], /^mumu generate: --eta must be between 0 and 1, got -\.5/, 2],
  [['generate', 'a dog', '--seed', '-7'], /^mumu generate: --seed must be between 0 and \d+, got -7/, 2],
  [['train', '--config', 'x.json', '--stop-at', '-3'], /^mumu train: --stop-at must be between 1 and \d+, got -3/, 2],
  [['bootstrap', '--out', 'o', '--workers', '-1'], /^mumu bootstrap: --workers must be between 1 and 64, got -1/, 2],
];

test('each bad input: one line, non-zero exit, at once', { timeout: 120_000 }, async () => {
  const runs = await Promise.all(CASES.map(([args]) => mumu(args, { cwd: dir })));
  runs.forEach((r, i) => {
    const [args, re, code] = CASES[i]!;
    const shown = JSON.stringify(args).slice(0, 120);
    assert.match(r.stderr.trimEnd(), re, `mumu ${shown} said: ${r.stderr.slice(0, 300)}`);
    assert.ok(oneLine(r.stderr), `mumu ${shown}: not one line: ${r.stderr.slice(0, 300)}`);
    assert.equal(r.code, code, `mumu ${shown} exit code`);
  });
});

test("a prompt over the model's token limit names the limit", async () => {
  const r = await mumu(['generate', words(300), '--model', model, '--steps', '1'], { cwd: dir });
  assert.match(
    r.stderr.trimEnd(),
    /^mumu: prompt: is 301 tokens \(0 images x 4 \+ text\); this model takes at most 256$/,
  );
  assert.ok(oneLine(r.stderr));
  assert.equal(r.code, 1);
});

test('a checkout without its dependencies says to run the set-up', async () => {
  const bare = mkdtempSync(join(tmpdir(), 'mumu-bare-'));
  mkdirSync(join(bare, 'bin'));
  copyFileSync(BIN, join(bare, 'bin', 'mumu.js'));
  const r = await mumu(['generate', 'a dog'], { bin: [process.execPath, join(bare, 'bin', 'mumu.js')] });
  assert.equal(r.stderr, `mumu: the dependencies are not installed: run \`npm run setup\` in ${bare}/\n`);
  assert.equal(r.code, 1);
});
