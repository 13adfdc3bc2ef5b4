// t.dist on libtorch's c10d (Gloo): the collectives' values on 2 real processes against hand-computed results, a
// dead / frozen / missing peer and a wrong port becoming clear errors within the timeout, argument errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as t from '../../src/torch/index.ts';
import { freePort } from '../../src/train/launch.ts';

const WORKER = fileURLToPath(new URL('./fixtures/dist-worker.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Rank {
  p: ChildProcess;
  out: string;
  err: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

function startRank(rank: number, port: number, env: Record<string, string>): Rank {
  const p = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    cwd: ROOT,
    env: {
      ...process.env,
      RANK: String(rank),
      WORLD_SIZE: '2',
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      MUMU_NUM_THREADS: '1',
      ...env,
    },
  });
  const r: Rank = { p, out: '', err: '', exit: null! };
  p.stdout!.on('data', (d) => (r.out += d));
  p.stderr!.on('data', (d) => (r.err += d));
  const t0 = performance.now();
  r.exit = new Promise((res) => p.on('close', (code, signal) => res({ code, signal, ms: performance.now() - t0 })));
  return r;
}

const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 50));
  }
};

test(
  '2 processes: all-reduce (sum, avg, max, min; mixed dtypes bucketed), broadcast, barrier',
  { timeout: 90_000 },
  async () => {
    const port = await freePort();
    const ranks = [0, 1].map((r) => startRank(r, port, { DIST_TEST_MODE: 'values' }));
    const exits = await Promise.all(ranks.map((r) => r.exit));
    exits.forEach((e, i) => assert.equal(e.code, 0, `rank ${i}: ${ranks[i]!.err}`));
    for (const [i, r] of ranks.entries()) {
      const o = JSON.parse(r.out.trim().split('\n').at(-1)!);
      assert.equal(o.rank, i);
      // rank r held arange(6) + 10r: 2 arange(6) + 10
      assert.deepEqual(o.a, [
        [10, 12, 14],
        [16, 18, 20],
      ]);
      assert.equal(o.a_dtype, 'float32');
      assert.deepEqual(o.b, [3, 6, 9, 12]); // [1..4] (r + 1), int64
      assert.equal(o.c, 2); // 0.5 + 1.5, a 0-d float64
      assert.deepEqual(o.d, [1.5, 3, 4.5]); // float16 [0.5, 1, 1.5] (r + 1)
      assert.equal(o.d_dtype, 'float16');
      // a transposed view of base = arange(6) (r + 1): the sum lands in base, 3 arange(6)
      assert.deepEqual(o.base, [
        [0, 3, 6],
        [9, 12, 15],
      ]);
      assert.deepEqual(o.view, [
        [0, 9],
        [3, 12],
        [6, 15],
      ]);
      assert.deepEqual(o.e, [2, 2, 2, 2, 2]); // mean of 1 and 3
      assert.deepEqual(o.f, [
        [0.5, 0.5],
        [0.5, 0.5],
      ]); // mean of 0 and 1
      assert.deepEqual(o.max, [4, 5, 6]);
      assert.deepEqual(o.min, [1, 2, 3]);
      assert.deepEqual(o.p, [
        [2, 4],
        [6, 8],
      ]); // rank 1's
      assert.equal(o.p_requires_grad, true);
      assert.deepEqual(o.q, [7, 8, 9]);
      assert.deepEqual(o.z, [0, 0]); // rank 0's
    }
    const o0 = JSON.parse(ranks[0]!.out.trim().split('\n').at(-1)!);
    assert.ok(
      o0.barrier_ms > 400,
      `rank 0 left the barrier after ${o0.barrier_ms} ms, before rank 1 arrived (600 ms late)`,
    );
  },
);

test(
  'SIGKILL of one rank: the other fails with a clear message, well inside the timeout',
  { timeout: 60_000 },
  async () => {
    const port = await freePort();
    const ranks = [0, 1].map((r) => startRank(r, port, { DIST_TEST_MODE: 'loop', DIST_TEST_TIMEOUT_MS: '20000' }));
    await until(() => ranks.every((r) => r.out.includes('looping')), 30_000, 'both ranks in the all-reduce loop');
    const t0 = performance.now();
    ranks[1]!.p.kill('SIGKILL');
    const e0 = await ranks[0]!.exit;
    const ms = performance.now() - t0;
    assert.equal(e0.code, 2, ranks[0]!.err);
    assert.match(
      ranks[0]!.err,
      /collective failed: rank 0 of 2: allReduce\(sum\) of Float tensors failed: .*(closed|reset).*\(another rank exited or its host went away\)/,
    );
    assert.ok(ms < 10_000, `took ${ms} ms`); // the peer's sockets close at once: no waiting out the 20 s timeout
  },
);

test('a frozen rank (SIGSTOP): the other times out with a clear message', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const ranks = [0, 1].map((r) => startRank(r, port, { DIST_TEST_MODE: 'loop', DIST_TEST_TIMEOUT_MS: '3000' }));
  try {
    await until(() => ranks.every((r) => r.out.includes('looping')), 30_000, 'both ranks in the all-reduce loop');
    const t0 = performance.now();
    ranks[1]!.p.kill('SIGSTOP');
    const e0 = await ranks[0]!.exit;
    const ms = performance.now() - t0;
    assert.equal(e0.code, 2, ranks[0]!.err);
    assert.match(
      ranks[0]!.err,
      /rank 0 of 2: allReduce\(sum\) of Float tensors failed: Timed out .*\(no answer within 3 s: a rank is missing, stuck or unreachable\)/,
    );
    assert.ok(ms > 2500 && ms < 12_000, `took ${ms} ms for a 3 s timeout`);
  } finally {
    ranks[1]!.p.kill('SIGKILL');
    await ranks[1]!.exit;
  }
});

test(
  "store waits: longer than the collectives' timeout; rank 0 exiting ends them at once, with a clear message",
  { timeout: 60_000 },
  async () => {
    const port = await freePort();
    const ranks = [0, 1].map((r) => startRank(r, port, { DIST_TEST_MODE: 'wait', DIST_TEST_TIMEOUT_MS: '3000' }));
    const exits = await Promise.all(ranks.map((r) => r.exit));
    exits.forEach((e, i) => assert.equal(e.code, 0, `rank ${i}: ${ranks[i]!.err}`));
    const o = JSON.parse(ranks[1]!.out.trim().split('\n').at(-1)!);
    assert.ok(o.waitedMs > 4000, `rank 1 waited ${o.waitedMs} ms for a key set after 5 s (the group's timeout is 3 s)`);
    assert.match(
      o.error,
      /^rank 1 of 2: waiting for rank 0 \(the export\) failed: .*\(rank 0, which hosts the store, exited or its host went away\)$/,
    );
    assert.ok(o.failedAfterMs < 10_000, `noticed after ${o.failedAfterMs} ms (the wait's bound is 20 s)`);
  },
);

test(
  'a missing peer and a wrong master port: the rendezvous times out with a clear error',
  { timeout: 60_000 },
  async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const t0 = performance.now();
    const [missing, wrongPort] = await Promise.allSettled([
      t.dist.newGroup({ rank: 0, worldSize: 2, masterPort: p1, timeoutMs: 3000 }), // rank 1 never comes
      t.dist.newGroup({ rank: 1, worldSize: 2, masterPort: p2, timeoutMs: 3000 }), // nobody listens on p2
    ]);
    const ms = performance.now() - t0;
    assert.equal(missing.status, 'rejected');
    assert.match(
      (missing as PromiseRejectedResult).reason.message,
      new RegExp(
        `^rank 0 of 2: rendezvous of 2 ranks at 127\\.0\\.0\\.1:${p1} failed: .*\\(no answer within 3 s: is every rank started, with the same master address and port\\?\\)`,
      ),
    );
    assert.equal(wrongPort.status, 'rejected');
    assert.match(
      (wrongPort as PromiseRejectedResult).reason.message,
      new RegExp(
        `^rank 1 of 2: rendezvous of 2 ranks at 127\\.0\\.0\\.1:${p2} failed: .*timed out.*connect to \\(127\\.0\\.0\\.1, ${p2}\\)`,
      ),
    );
    assert.ok(ms < 15_000, `took ${ms} ms for a 3 s timeout`);
  },
);

test('a group of one (file store): collectives are identities, argument errors are clear, destroy is final', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-dist-'));
  const pg = await t.dist.newGroup({ rank: 0, worldSize: 1, storePath: path.join(dir, 'store'), timeoutMs: 5000 });
  assert.equal(pg.backend, 'gloo');
  const x = t.tensor([1, 2, 3]);
  await pg.allReduce([x], 'sum');
  assert.deepEqual(x.toList(), [1, 2, 3]);
  await pg.allReduce([x], 'avg');
  assert.deepEqual(x.toList(), [1, 2, 3]);
  await pg.broadcast([x], 0);
  await pg.barrier();
  await assert.rejects(
    pg.allReduce([t.tensor([1], { dtype: 'int64' })], 'avg'),
    /allReduce 'avg' needs floating-point tensors, got Long/,
  );
  await assert.rejects(pg.allReduce([x], 'prod' as never), /op must be 'sum', 'avg', 'max' or 'min', got 'prod'/);
  // libtorch 1.13's Gloo has no bfloat16 (2.x does)
  if (t.torchVersion.startsWith('1.'))
    await assert.rejects(
      pg.allReduce([t.ones([2]).to('bfloat16')]),
      /Gloo \(libtorch 1\.13\.\d\) cannot move BFloat16 tensors \(float32, float64, float16, int8, uint8, int32, int64 only\)/,
    );
  await assert.rejects(pg.broadcast([x], 1), /root 1 is not a rank of a group of 1/);
  await assert.rejects(pg.allReduce([x, 3 as never]), /expected an array of Tensors/);
  await pg.allReduce([x]); // still usable after refused arguments
  await pg.storeSet('k', 'v');
  await pg.waitFor('k', 1000);
  await assert.rejects(
    pg.waitFor('never', 300, 'waiting for rank 0 (samples)'),
    /^Error: rank 0 of 1: waiting for rank 0 \(samples\) failed: .*\(not done within 0\.3 s\)$/,
  );
  await pg.destroy();
  await assert.rejects(pg.barrier(), /barrier: the process group was destroyed/);
  await assert.rejects(t.dist.newGroup({ rank: 2, worldSize: 2 }), /rank must be in 0\.\.1, got 2/);
  assert.throws(() => t.dist.launchEnv({ WORLD_SIZE: '2' }), /WORLD_SIZE=2 is set but RANK is not/);
  assert.throws(() => t.dist.launchEnv({ WORLD_SIZE: '2', RANK: 'x' }), /RANK=x is not a whole number/);
  assert.deepEqual(
    t.dist.launchEnv({ WORLD_SIZE: '4', RANK: '3', LOCAL_RANK: '1', MASTER_ADDR: 'h', MASTER_PORT: '1234' }),
    { rank: 3, worldSize: 4, localRank: 1, masterAddr: 'h', masterPort: 1234 },
  );
  assert.equal(t.dist.launchEnv({}), null);
  fs.rmSync(dir, { recursive: true, force: true });
});
