// Shards: tar round trip, manifest-driven runs, the streaming reader's rank/worker split and shuffle, and
// resuming a run killed with SIGKILL without duplicating or losing shards.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runBootstrap } from '../../src/cli/bootstrap.ts';
import { readManifest, readShard, streamSamples, writeShard, type ShardSample } from '../../src/data/shards/index.ts';

const tmp = () => mkdtempSync(path.join(tmpdir(), 'mumu-shards-'));
const MUMU = fileURLToPath(new URL('../../bin/mumu.js', import.meta.url));

test('a shard round-trips its samples byte for byte', async () => {
  const dir = tmp();
  const samples: ShardSample[] = [0, 1, 2].map((k) => ({
    key: `00000000${k}`,
    files: new Map([
      ['png', new Uint8Array([k, 1, 2, 3])],
      ['json', new TextEncoder().encode(JSON.stringify({ k }))],
      ['img0.png', new Uint8Array(1000 + k).fill(k)],
    ]),
  }));
  await writeShard(path.join(dir, 'a.tar'), samples);
  assert.ok(!existsSync(path.join(dir, 'a.tar.tmp')));
  const back: ShardSample[] = [];
  for await (const s of readShard(path.join(dir, 'a.tar'))) back.push(s);
  assert.deepEqual(back.map((s) => s.key), samples.map((s) => s.key));
  for (let k = 0; k < 3; k++) assert.deepEqual(back[k]!.files, samples[k]!.files);
});

const args = (out: string, n: number) => ['--source', 'emoji-world', '--n', String(n), '--out', out, '--size', '32', '--shard-size', '10', '--seed', '9', '--sheet', '0', '--quiet'];

test('an EmojiWorld run writes a manifest, and readers split it across ranks and workers exactly once', async () => {
  const out = tmp();
  assert.equal(await runBootstrap([...args(out, 45), '--sheet', '4']), 0);
  const m = await readManifest(out);
  assert.ok(m.complete);
  assert.equal(m.numShards, 5);
  assert.equal(m.totals.samples, 45);
  assert.equal(m.spec.config.maxCrops, 3);
  assert.ok(Array.isArray((m.splits as { heldOutConcepts: string[] }).heldOutConcepts));
  assert.ok(existsSync(path.join(out, 'contact-sheet.png')));

  const all: string[] = [];
  for await (const s of streamSamples(out)) {
    all.push(s.key);
    assert.equal(s.meta.key, s.key);
    assert.equal(s.images.length, s.meta.prompt.filter((p) => p.type === 'image').length);
  }
  assert.equal(new Set(all).size, 45);
  // ranks x worker threads read every sample once; with one worker per rank, the ranks' streams interleaved (rank r
  // takes positions r mod N, the trainer's split) are the single-process stream
  const read = async (o: Parameters<typeof streamSamples>[1]) => {
    const keys: string[] = [];
    for await (const s of streamSamples(out, { shuffleBuffer: 8, seed: 1, ...o })) keys.push(s.key);
    return keys;
  };
  const parts: string[][] = [];
  for (let rank = 0; rank < 2; rank++) for (let workerId = 0; workerId < 2; workerId++) parts.push(await read({ rank, worldSize: 2, workerId, numWorkers: 2 }));
  assert.deepEqual(parts.flat().sort(), all.slice().sort());
  const single = await read({});
  const ranks = await Promise.all([0, 1, 2].map((rank) => read({ rank, worldSize: 3 })));
  assert.deepEqual(ranks.map((r) => r.length), [15, 15, 15]);
  assert.deepEqual(single.map((_, j) => ranks[j % 3]![Math.floor(j / 3)]), single);
  // Shuffled, and the same shuffle for the same seed and epoch.
  const order = async (epoch: number) => {
    const keys: string[] = [];
    for await (const s of streamSamples(out, { shuffleBuffer: 16, seed: 3, epoch })) keys.push(s.key);
    return keys;
  };
  const [a, b, c] = [await order(0), await order(0), await order(1)];
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, all);
  assert.notDeepEqual(a, c);
  assert.deepEqual(a.slice().sort(), all.slice().sort());
});

test('a run killed with SIGKILL resumes to the same shards, none duplicated or lost', async () => {
  const clean = tmp(), killed = tmp();
  const n = 120;
  assert.equal(await runBootstrap(args(clean, n)), 0);

  // Start the CLI, kill it once at least one shard is listed but before it finishes.
  const child = spawn(process.execPath, [MUMU, 'bootstrap', ...args(killed, n)], { stdio: 'ignore' });
  const exited = new Promise((r) => child.on('exit', r));
  for (let t = 0; t < 600; t++) {
    await new Promise((r) => setTimeout(r, 25));
    const f = path.join(killed, 'manifest.json');
    if (existsSync(f)) {
      try {
        if ((JSON.parse(readFileSync(f, 'utf8')) as { shards: unknown[] }).shards.length >= 1) break;
      } catch { /* being replaced */ }
    }
  }
  child.kill('SIGKILL');
  await exited;
  const before = (await readManifest(killed)).shards.length;
  assert.ok(before >= 1 && before < 12, `killed after ${before} shards`);
  writeFileSync(path.join(killed, 'shard-000011.tar.tmp'), 'half-written'); // as a kill mid-write leaves

  assert.equal(await runBootstrap(args(killed, n)), 0);
  const m = await readManifest(killed);
  assert.ok(m.complete);
  assert.equal(m.totals.samples, n);
  assert.deepEqual(m.shards.map((s) => s.index), [...Array(12).keys()]);
  assert.ok(!readdirSync(killed).some((f) => f.endsWith('.tmp')));
  for (const s of m.shards) assert.ok(readFileSync(path.join(killed, s.file)).equals(readFileSync(path.join(clean, s.file))), `${s.file} differs`);

  // Another run's settings on the same folder are refused.
  await assert.rejects(runBootstrap([...args(killed, n), '--seed', '10']), /different run/);
});

test('bad flags are usage errors', async () => {
  await assert.rejects(runBootstrap(['--source', 'emoji-world', '--out', tmp()]), /--n N is required/);
  await assert.rejects(runBootstrap(['--source', 'nope', '--out', tmp()]), /--source must be/);
  await assert.rejects(runBootstrap([...args(tmp(), 5), '--stage', '3']), /--stage/);
});
