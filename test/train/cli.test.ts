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
  // strings only: node --test's own reports reach the parent as bytes on this process's stdout
  process.stdout.write = ((s: string | Uint8Array, ...r: never[]) =>
    typeof s === 'string' ? ((out += s), true) : ow(s, ...r)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array, ...r: never[]) =>
    typeof s === 'string' ? ((err += s), true) : ew(s, ...r)) as typeof process.stderr.write;
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

test('mumu train --print-config: "extends" merges objects key by key, replaces arrays, and refuses loops', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-extends-'));
  fs.mkdirSync(path.join(dir, 'ab'));
  const tiny = tinyRaw('t2i-base') as { data: { size: number }; optimizer: { groups: { name: string }[] } };
  const base = { ...tiny, _comment: 'the base', fresh: { unet: { layers_per_block: 1 } } };
  fs.writeFileSync(path.join(dir, 'base.json'), JSON.stringify(base));
  // relative to the extending file, not the working directory; a chain of two
  fs.writeFileSync(path.join(dir, 'ab', 'mid.json'), JSON.stringify({ extends: '../base.json', steps: 7, seed: 5 }));
  const arm = { extends: 'mid.json', seed: 9, fresh: { unet: { block_out_channels: [8, 16] } }, data: { seed: 3 } };
  fs.writeFileSync(path.join(dir, 'ab', 'arm.json'), JSON.stringify(arm));
  const p = await capture(() => main(['train', '--config', path.join(dir, 'ab', 'arm.json'), '--print-config']));
  assert.equal(p.code, 0, p.err);
  const c = JSON.parse(p.out);
  assert.equal(c.steps, 7); // from mid
  assert.equal(c.seed, 9); // the arm over mid
  assert.deepEqual(c.fresh, { unet: { layers_per_block: 1, block_out_channels: [8, 16] } }); // merged key by key
  assert.equal(c.data.seed, 3);
  assert.equal(c.data.size, tiny.data.size); // the rest of data kept
  const names = (groups: { name: string }[]) => groups.map((g) => g.name);
  assert.deepEqual(names(c.optimizer.groups), names(tiny.optimizer.groups));
  assert.equal(c._comment, undefined); // the base's note is not the arm's
  assert.ok(!fs.existsSync(path.join('runs', 'arm')), 'printing starts no run');
  // arrays are replaced, not merged
  fs.writeFileSync(path.join(dir, 'arr.json'), JSON.stringify({ extends: 'base.json', data: { object_counts: [1] } }));
  const a = await capture(() => main(['train', '--config', path.join(dir, 'arr.json'), '--print-config']));
  assert.deepEqual(JSON.parse(a.out).data.object_counts, [1]);
  // a loop, and a missing parent, are named
  fs.writeFileSync(path.join(dir, 'x.json'), JSON.stringify({ extends: 'y.json' }));
  fs.writeFileSync(path.join(dir, 'y.json'), JSON.stringify({ extends: 'x.json' }));
  const loop = await capture(() => main(['train', '--config', path.join(dir, 'x.json'), '--print-config']));
  assert.equal(loop.code, 1);
  assert.match(loop.err, /extends makes a loop/);
  fs.writeFileSync(path.join(dir, 'z.json'), JSON.stringify({ extends: 'nope.json' }));
  const missing = await capture(() => main(['train', '--config', path.join(dir, 'z.json'), '--print-config']));
  assert.equal(missing.code, 1);
  assert.match(missing.err, /cannot read .*nope\.json/);
});
