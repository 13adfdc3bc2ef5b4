// The trainer of the GPU bundle (scripts/gpu/pack.ts): `mumu train` bundled into one file by esbuild and run from a
// folder that holds only what the bundle keeps (the three packages it loads at run time, the EmojiWorld subset, the
// binding) trains exactly as the repository's trainer does: the same losses step for step, the same sample grid.
// The whole path (Node carried, the g++ build, the time box, the results sent back) is scripts/gpu/dry-run.sh.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { stageApp, EXTERNAL } from '../../scripts/gpu/pack.ts';
import { tinyRaw } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ADDON = path.join(ROOT, 'native/build/Release/mumu_torch.node');

const losses = (run: string) =>
  fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { loss: number }).loss);

test('the bundled trainer, with only its packages and the EmojiWorld subset, trains as the repository does', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-gpu-bundle-'));
  try {
    const tree = path.join(tmp, 'tree'),
      app = path.join(tmp, 'app');
    fs.mkdirSync(path.join(tree, 'configs'), { recursive: true });
    const config = path.join(tree, 'configs/tiny.json');
    fs.writeFileSync(
      config,
      JSON.stringify(
        tinyRaw('t2i-base', { steps: 3, checkpoint: { every: 3, keep: 1 }, samples: { every: 3, count: 1, steps: 2 } }),
      ),
    );
    const { packages } = await stageApp(app, [config]);
    assert.ok(
      packages.includes('sharp') && packages.includes('@resvg/resvg-js') && !packages.includes('mirada'),
      packages.join(' '),
    );
    fs.mkdirSync(path.join(app, 'native/build/Release'), { recursive: true });
    fs.copyFileSync(ADDON, path.join(app, 'native/build/Release/mumu_torch.node'));
    assert.ok(!fs.existsSync(path.join(tmp, 'node_modules')) && !fs.existsSync(path.join(app, 'package.json')));
    // the bundle imports nothing but Node's built-ins and the packages it carries
    const bundled = fs.readFileSync(path.join(app, 'dist/cli/mumu-train.mjs'), 'utf8');
    const imported = new Set([...bundled.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]!));
    assert.deepEqual(
      [...imported].filter(
        (m) => !m.startsWith('node:') && !EXTERNAL.includes(m) && !['fs', 'path', 'readline', 'events'].includes(m),
      ),
      [],
    );

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      MUMU_EMOJI_SUBSET: path.join(app, 'emoji-world.json'),
      MUMU_NUM_THREADS: '1',
    };
    delete env.NODE_PATH;
    const viaBundle = spawnSync(
      process.execPath,
      [
        '--single-threaded-gc',
        path.join(app, 'dist/cli/mumu-train.mjs'),
        '--config',
        config,
        '--out',
        path.join(tmp, 'bundled'),
      ],
      { cwd: tree, env, encoding: 'utf8' },
    );
    assert.equal(viaBundle.status, 0, viaBundle.stderr);
    const viaRepo = spawnSync(
      process.execPath,
      ['--single-threaded-gc', 'bin/mumu.js', 'train', '--config', config, '--out', path.join(tmp, 'repo')],
      { cwd: ROOT, env: { ...env, MUMU_EMOJI_SUBSET: '' }, encoding: 'utf8' },
    );
    assert.equal(viaRepo.status, 0, viaRepo.stderr);

    const a = losses(path.join(tmp, 'bundled')),
      b = losses(path.join(tmp, 'repo'));
    assert.equal(a.length, 3);
    assert.deepEqual(a, b);
    const grid = 'samples/step-000003.png';
    assert.ok(
      fs.readFileSync(path.join(tmp, 'bundled', grid)).equals(fs.readFileSync(path.join(tmp, 'repo', grid))),
      'the same sample grid',
    );
    assert.ok(fs.existsSync(path.join(tmp, 'bundled/model/model_index.json')));
    assert.ok(fs.existsSync(path.join(tmp, 'bundled/checkpoints/ckpt-00000003/state.json')));

    // errors stay one line, as with `mumu train`
    const bad = spawnSync(
      process.execPath,
      [path.join(app, 'dist/cli/mumu-train.mjs'), '--config', config, '--device', 'tpu'],
      { cwd: tree, env, encoding: 'utf8' },
    );
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, "mumu train: --device must be cpu, cuda or cuda:N, got 'tpu' (see mumu train --help)\n");
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
