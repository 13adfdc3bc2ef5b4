// `mumu train` flags, through main() (no child process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../src/cli/main.ts';
import { tinyRaw } from './helpers.ts';

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const [ow, ew] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  let out = '',
    err = '';
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
  try {
    return { code: await fn(), out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

test('mumu train: help, missing/bad config, existing checkpoints without --resume', async () => {
  const h = await capture(() => main(['train', '--help']));
  assert.equal(h.code, 0);
  assert.match(h.out, /--resume/);
  const m = await capture(() => main(['train']));
  assert.equal(m.code, 2);
  assert.match(m.err, /--config FILE is required/);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-cli-'));
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, JSON.stringify({ ...tinyRaw('vae'), lr: 1 }));
  const b = await capture(() => main(['train', '--config', bad]));
  assert.equal(b.code, 1);
  assert.match(b.err, /unknown key 'lr'/);
  const good = path.join(dir, 'vae.json');
  fs.writeFileSync(good, JSON.stringify(tinyRaw('vae', { steps: 2, checkpoint: { every: 1, keep: 1 } })));
  const out = path.join(dir, 'run');
  const r = await capture(() => main(['train', '--config', good, '--out', out]));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /vae: 2 steps/);
  assert.ok(fs.existsSync(path.join(out, 'model', 'vae', 'config.json')));
  const again = await capture(() => main(['train', '--config', good, '--out', out]));
  assert.equal(again.code, 1);
  assert.match(again.err, /already has checkpoints: pass --resume/);
});
