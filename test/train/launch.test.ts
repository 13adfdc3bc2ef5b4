// The launcher (src/train/launch.ts) and `mumu train --nproc/--nnodes`: real processes throughout. Exit statuses
// and messages, signals forwarded once, escalation, no orphans, the torchrun environment, a wrong port / missing
// peer, and two network namespaces as two hosts (skipped where they cannot be made).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.ts';
import { freePort } from '../../src/train/launch.ts';
import { tinyRaw } from './helpers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LAUNCHER = fileURLToPath(new URL('./fixtures/launch-main.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/mumu.js', import.meta.url));

interface Run {
  pid: number;
  out: string;
  err: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(
  args: string[],
  env: Record<string, string | undefined> = {},
  o: { detached?: boolean; wrap?: string[] } = {},
): Run {
  const e: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete e[k];
  const [cmd, ...rest] = [...(o.wrap ?? []), process.execPath, ...args];
  const p = spawn(cmd!, rest, { cwd: ROOT, env: e, detached: o.detached });
  const r: Run = {
    pid: p.pid!,
    out: '',
    err: '',
    exit: new Promise((res) => p.on('close', (code, signal) => res({ code, signal }))),
  };
  p.stdout.on('data', (d) => (r.out += d));
  p.stderr.on('data', (d) => (r.err += d));
  return r;
}
const launcher = (mode: string, extra: Record<string, string | undefined> = {}, o: { detached?: boolean } = {}) =>
  start(['--import', 'tsx', LAUNCHER], { LAUNCH_TEST_MODE: mode, LAUNCH_TEST_GRACE_MS: '1000', ...extra }, o);
const workerPids = (r: Run) => [...r.err.matchAll(/\[launch\] rank \d+: pid (\d+)/g)].map((m) => Number(m[1]));

// gone: no such process, or a zombie (this container's init may be slow to reap orphans)
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};
const until = async (cond: () => boolean, ms: number, what: string) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 50));
  }
};
const count = (s: string, re: RegExp) => s.match(new RegExp(re, 'g'))?.length ?? 0;

test(
  'launch: 2 workers get the torchrun environment and a share of the cores; success is 0',
  { timeout: 60_000 },
  async () => {
    const r = launcher('ok', { MUMU_NUM_THREADS: undefined });
    const { code } = await r.exit;
    assert.equal(code, 0, r.err);
    const threads = Math.max(1, Math.floor(os.availableParallelism() / 2));
    assert.match(r.out, new RegExp(`\\[rank 0\\] rank 0 of 2 local 0 threads ${threads} sum 3 launcher \\d+`));
    assert.match(r.out, new RegExp(`\\[rank 1\\] rank 1 of 2 local 1 threads ${threads} sum 3 launcher \\d+`));
    assert.doesNotMatch(r.err, /launch failed/);
  },
);

test(
  'launch: a worker that exits non-zero takes the job down with its status and last error line',
  { timeout: 60_000 },
  async () => {
    const r = launcher('fail');
    const { code } = await r.exit;
    assert.equal(code, 3);
    assert.match(r.err, /launch failed: rank 1 of 2 exited with status 3: boom on rank 1\n/);
    assert.match(r.out, /\[rank 0\] rank 0 got SIGTERM/); // the survivor was stopped, not left running
    for (const pid of workerPids(r)) assert.ok(!alive(pid), `worker ${pid} still runs`);
  },
);

test('launch: a worker killed by a signal gives 128 + its number', { timeout: 60_000 }, async () => {
  const r = launcher('kill');
  const { code } = await r.exit;
  assert.equal(code, 137);
  assert.match(r.err, /launch failed: rank 1 of 2 was killed by SIGKILL/);
  for (const pid of workerPids(r)) assert.ok(!alive(pid), `worker ${pid} still runs`);
});

test(
  "launch: Ctrl-C to the launcher's process group reaches each worker once; SIGTERM escalates to SIGKILL",
  { timeout: 60_000 },
  async () => {
    // "stubborn" workers ignore both signals: only the launcher's SIGKILL after the 1 s grace period ends them
    const r = launcher('stubborn', {}, { detached: true });
    await until(() => count(r.out, /sum 3/) === 2, 30_000, 'both workers up');
    process.kill(-r.pid, 'SIGINT'); // what a terminal does: the whole foreground group
    await until(() => count(r.out, /got SIGINT/) === 2, 10_000, 'SIGINT at both workers');
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(count(r.out, /rank 0 got SIGINT/), 1);
    assert.equal(count(r.out, /rank 1 got SIGINT/), 1);
    process.kill(r.pid, 'SIGTERM');
    const { code } = await r.exit;
    assert.equal(code, 137);
    assert.match(r.out, /rank 0 got SIGTERM/);
    assert.match(r.err, /launch failed: rank \d of 2 did not stop within 1 s of SIGTERM and was killed/);
    for (const pid of workerPids(r)) assert.ok(!alive(pid), `worker ${pid} still runs`);
  },
);

test(
  'launch: SIGTERM is forwarded and a clean stop is 0; a SIGKILLed launcher leaves no orphans',
  { timeout: 60_000 },
  async () => {
    const a = launcher('sleep');
    await until(() => count(a.out, /sum 3/) === 2, 30_000, 'both workers up');
    process.kill(a.pid, 'SIGTERM');
    assert.equal((await a.exit).code, 0, a.err);
    assert.match(a.out, /rank 0 got SIGTERM/);
    assert.match(a.out, /rank 1 got SIGTERM/);

    const b = launcher('sleep');
    await until(() => count(b.out, /sum 3/) === 2, 30_000, 'both workers up');
    const pids = workerPids(b);
    assert.equal(pids.length, 2);
    process.kill(b.pid, 'SIGKILL');
    await b.exit;
    await until(() => pids.every((p) => !alive(p)), 10_000, `workers ${pids} to stop after their launcher died`);
  },
);

// ---- through the CLI ----

function tinyConfig(dir: string): string {
  const file = path.join(dir, 'vae.json');
  fs.writeFileSync(file, JSON.stringify(tinyRaw('vae', { steps: 2, checkpoint: { every: 1, keep: 1 } })));
  return file;
}

test('mumu train --nproc 2: both ranks run, rank 0 alone writes the run folder', { timeout: 120_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-launch-'));
  const out = path.join(dir, 'run');
  const r = start(['--single-threaded-gc', BIN, 'train', '--config', tinyConfig(dir), '--out', out, '--nproc', '2']);
  const { code } = await r.exit;
  assert.equal(code, 0, r.err);
  assert.match(r.err, /\[rank 0\] rank 0 of 2 \(local rank 0, gloo\) joined the group/);
  assert.match(r.err, /\[rank 1\] rank 1 of 2 \(local rank 1, gloo\) joined the group/);
  assert.match(r.out, /\[rank 0\] vae: 2 steps/);
  assert.match(r.out, /\[rank 1\] vae: 2 steps/);
  assert.ok(fs.existsSync(path.join(out, 'model', 'vae', 'config.json')));
  assert.deepEqual(fs.readdirSync(out).sort(), [
    'checkpoints',
    'config.json',
    'loss.png',
    'metrics.jsonl',
    'model',
    'samples',
    'summary.json',
  ]); // rank 1 writes nothing
  fs.rmSync(dir, { recursive: true, force: true });
});

test(
  'mumu train: the torchrun environment is honoured (no workers started); launch flags are checked',
  { timeout: 60_000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-launch-'));
    const cfg = tinyConfig(dir);
    const r = start(
      ['--single-threaded-gc', BIN, 'train', '--config', cfg, '--out', path.join(dir, 'run'), '--nproc', '2'],
      {
        RANK: '0',
        WORLD_SIZE: '1',
        LOCAL_RANK: '0',
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(await freePort()),
        MUMU_NUM_THREADS: '1',
      },
    );
    assert.equal((await r.exit).code, 0, r.err);
    assert.match(
      r.err,
      /torchrun environment found \(RANK=0, WORLD_SIZE=1\): running as that rank, --nproc\/--nnodes ignored/,
    );
    assert.match(r.err, /^rank 0 of 1 \(local rank 0, gloo\) joined the group/m);
    assert.doesNotMatch(r.err, /\[launch\]/);
    assert.match(r.out, /^vae: 2 steps/m);

    const usage = async (args: string[], re: RegExp) => {
      const w = process.stderr.write.bind(process.stderr);
      let err = '';
      process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
      try {
        assert.equal(await main(['train', '--config', cfg, ...args]), 2);
      } finally {
        process.stderr.write = w;
      }
      assert.match(err, re);
    };
    await usage(['--nnodes', '2'], /--nnodes > 1 needs --master-addr and --master-port/);
    await usage(
      ['--nnodes', '2', '--node-rank', '2', '--master-addr', 'h', '--master-port', '1'],
      /--node-rank must be between 0 and 1, got 2/,
    );
    await usage(['--nproc', '0'], /--nproc must be between 1 and 1024, got 0/);
    await usage(['--master-port', 'x'], /--master-port must be a whole number/);
    fs.rmSync(dir, { recursive: true, force: true });
  },
);

test(
  'mumu train --nnodes 2: a wrong --master-port and a missing peer time out with a clear error',
  { timeout: 60_000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-launch-'));
    const cfg = tinyConfig(dir);
    const [p0, p1] = [await freePort(), await freePort()];
    const node = (rank: number, port: number) =>
      start(
        [
          '--single-threaded-gc',
          BIN,
          'train',
          '--config',
          cfg,
          '--out',
          path.join(dir, `run${rank}`),
          '--nnodes',
          '2',
          '--node-rank',
          String(rank),
          '--master-addr',
          '127.0.0.1',
          '--master-port',
          String(port),
        ],
        { MUMU_DIST_TIMEOUT_S: '3', MUMU_NUM_THREADS: '1' },
      );
    // node 0 waits for a peer that never comes; node 1 looks for node 0 on a port where nobody listens
    const [alone, lost] = [node(0, p0), node(1, p1)];
    const t0 = performance.now();
    const [e0, e1] = await Promise.all([alone.exit, lost.exit]);
    assert.ok(performance.now() - t0 < 30_000);
    assert.equal(e0.code, 1, alone.err);
    assert.match(
      alone.err,
      new RegExp(
        `mumu train: rank 0 of 2 exited with status 1: mumu: rank 0 of 2: rendezvous of 2 ranks at 127\\.0\\.0\\.1:${p0} failed: .*\\(no answer within 3 s: is every rank started, with the same master address and port\\?\\)`,
      ),
    );
    assert.equal(e1.code, 1, lost.err);
    assert.match(
      lost.err,
      new RegExp(
        `mumu train: rank 1 of 2 exited with status 1: mumu: rank 1 of 2: rendezvous of 2 ranks at 127\\.0\\.0\\.1:${p1} failed: The client socket has timed out after 3s while trying to connect to \\(127\\.0\\.0\\.1, ${p1}\\)`,
      ),
    );
    fs.rmSync(dir, { recursive: true, force: true });
  },
);

// Two hosts on one machine: a network namespace each, joined by a veth pair. Needs root (CAP_NET_ADMIN) and `ip`.
test('mumu train --nnodes 2 across two network namespaces (veth)', { timeout: 120_000 }, async (t) => {
  const tag = `mumu${process.pid % 100000}`;
  const [a, b] = [`${tag}a`, `${tag}b`];
  const ip = (...args: string[]) => spawnSync('ip', args, { encoding: 'utf8' });
  const subnet = `10.231.${process.pid % 250}`;
  const make = [
    ['netns', 'add', a],
    ['netns', 'add', b],
    ['link', 'add', `${a}v`, 'type', 'veth', 'peer', 'name', `${b}v`],
    ['link', 'set', `${a}v`, 'netns', a],
    ['link', 'set', `${b}v`, 'netns', b],
    ['-n', a, 'addr', 'add', `${subnet}.1/24`, 'dev', `${a}v`],
    ['-n', b, 'addr', 'add', `${subnet}.2/24`, 'dev', `${b}v`],
    ['-n', a, 'link', 'set', `${a}v`, 'up'],
    ['-n', b, 'link', 'set', `${b}v`, 'up'],
    ['-n', a, 'link', 'set', 'lo', 'up'],
    ['-n', b, 'link', 'set', 'lo', 'up'],
  ];
  const cleanup = () => {
    ip('netns', 'del', a);
    ip('netns', 'del', b);
  };
  for (const args of make) {
    const r = ip(...args);
    if (r.error || r.status !== 0) {
      cleanup();
      t.skip(`cannot create network namespaces here (ip ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()})`);
      return;
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mumu-launch-'));
  try {
    const cfg = tinyConfig(dir);
    // no GLOO_SOCKET_IFNAME: each rank offers the address it reaches node 0 from
    const host = (ns: string, rank: number) =>
      start(
        [
          '--single-threaded-gc',
          BIN,
          'train',
          '--config',
          cfg,
          '--out',
          path.join(dir, `host${rank}`),
          '--nnodes',
          '2',
          '--node-rank',
          String(rank),
          '--master-addr',
          `${subnet}.1`,
          '--master-port',
          '29500',
        ],
        { MUMU_DIST_TIMEOUT_S: '20', MUMU_NUM_THREADS: '1' },
        { wrap: ['ip', 'netns', 'exec', ns] },
      );
    const [h0, h1] = [host(a, 0), host(b, 1)];
    const [e0, e1] = await Promise.all([h0.exit, h1.exit]);
    assert.equal(e0.code, 0, h0.err);
    assert.equal(e1.code, 0, h1.err);
    assert.match(h0.err, /rank 0 of 2 \(local rank 0, gloo\) joined the group/);
    assert.match(h1.err, /rank 1 of 2 \(local rank 0, gloo\) joined the group/);
    assert.ok(fs.existsSync(path.join(dir, 'host0', 'model', 'vae', 'config.json')));
  } finally {
    cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
