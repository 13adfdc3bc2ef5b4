// `mumu train --nproc N`: starts N local worker processes the way `torchrun --standalone` does (several hosts with
// --nnodes/--node-rank/--master-addr/--master-port), each with torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE,
// LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT) and MUMU_NUM_THREADS = cores / N. The workers meet through
// c10d's TCP store (src/torch/distributed.ts); this file only owns the processes:
//
// - every worker's output comes through, each line prefixed with its rank;
// - the first worker that fails (non-zero exit or a signal) takes the job down: the others get SIGTERM, then SIGKILL
//   after a grace period, and the launcher exits with the failed worker's status (128 + signal number for a signal)
//   and its last error line;
// - SIGINT / SIGTERM / SIGHUP to the launcher go to every worker once (the workers run in their own process group,
//   so a terminal's Ctrl-C does not reach them twice); a second Ctrl-C is forwarded too (the trainer's "stop now");
//   SIGTERM escalates to SIGKILL after the grace period;
// - no orphans: each worker holds an IPC channel to the launcher and stops itself when it closes, which the kernel
//   does even when the launcher is SIGKILLed (watchLauncher, called by the worker).
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { constants } from 'node:os';

export interface LaunchOptions {
  nproc: number;
  // [executable, ...args]: what each worker runs (a Node program: the no-orphan guard uses Node's IPC channel)
  command: string[];
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  // default: a free port on this host when nnodes is 1; required with several hosts
  masterPort?: number;
  // MUMU_NUM_THREADS for each worker; default the MUMU_NUM_THREADS already set, else max(1, cores / nproc)
  threadsPerWorker?: number;
  // how long workers get to stop after SIGTERM (one failed, or the launcher got SIGTERM) before SIGKILL
  // (default MUMU_LAUNCH_GRACE_S, or 30 s as torchrun)
  graceMs?: number;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  out?: (line: string) => void;
}

export interface WorkerExit {
  rank: number;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  lastError: string;
  killedByLauncher: boolean; // it did not stop within the grace period after SIGTERM
}

export interface LaunchResult {
  code: number; // the launcher's exit status
  message: string | null; // why the job failed (one line), null when every worker succeeded
  workers: WorkerExit[];
}

// A port the OS says is free now (torchrun --standalone does the same: bind port 0, read it, close).
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const exitStatus = (code: number | null, signal: NodeJS.Signals | null) =>
  code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
const describeExit = (w: WorkerExit, graceMs: number) =>
  w.killedByLauncher
    ? `did not stop within ${graceMs / 1000} s of SIGTERM and was killed`
    : w.signal
      ? `was killed by ${w.signal}`
      : `exited with status ${w.code}`;

export async function launch(o: LaunchOptions): Promise<LaunchResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`[launch] ${l}\n`));
  const out = o.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const nnodes = o.nnodes ?? 1,
    nodeRank = o.nodeRank ?? 0,
    nproc = o.nproc;
  if (!Number.isInteger(nproc) || nproc < 1) throw new Error(`nproc must be a whole number >= 1, got ${nproc}`);
  if (!Number.isInteger(nnodes) || nnodes < 1) throw new Error(`nnodes must be a whole number >= 1, got ${nnodes}`);
  if (!Number.isInteger(nodeRank) || nodeRank < 0 || nodeRank >= nnodes)
    throw new Error(`node rank must be in 0..${nnodes - 1}, got ${nodeRank}`);
  if (nnodes > 1 && (!o.masterAddr || !o.masterPort))
    throw new Error('several hosts (nnodes > 1) need the master address and port of node 0');
  const masterAddr = o.masterAddr ?? '127.0.0.1';
  const masterPort = o.masterPort ?? (await freePort(masterAddr));
  const worldSize = nnodes * nproc;
  const baseEnv = o.env ?? process.env;
  const threads =
    o.threadsPerWorker ??
    (baseEnv.MUMU_NUM_THREADS
      ? Number(baseEnv.MUMU_NUM_THREADS)
      : Math.max(1, Math.floor(availableParallelism() / nproc)));
  const graceMs = o.graceMs ?? 1000 * Number(baseEnv.MUMU_LAUNCH_GRACE_S ?? 30);
  if (!(graceMs >= 0))
    throw new Error(
      `the grace period must be a number of seconds >= 0 (MUMU_LAUNCH_GRACE_S=${baseEnv.MUMU_LAUNCH_GRACE_S})`,
    );
  const prefix = worldSize > 1;
  log(
    `${nproc} worker${nproc > 1 ? 's' : ''} on node ${nodeRank} of ${nnodes} (world size ${worldSize}), store ${masterAddr}:${masterPort}, ${threads} thread${threads > 1 ? 's' : ''} each`,
  );

  const live = new Map<number, ChildProcess>();
  const exits: WorkerExit[] = [];
  let failure: WorkerExit | null = null;
  let killTimer: NodeJS.Timeout | null = null;
  const lastErr = new Map<number, string>();
  const killed = new Set<number>();

  // SIGKILL whatever still runs graceMs from now (once)
  const killLater = () => {
    killTimer ??= setTimeout(() => {
      for (const [r, p] of live) {
        log(`rank ${r} (pid ${p.pid}) did not stop within ${graceMs / 1000} s: SIGKILL`);
        killed.add(r);
        p.kill('SIGKILL');
      }
    }, graceMs);
  };
  const stopOthers = (why: string) => {
    if (!live.size) return;
    log(
      `${why}: stopping ${[...live.keys()].map((r) => `rank ${r}`).join(', ')} (SIGTERM, SIGKILL after ${graceMs / 1000} s)`,
    );
    for (const p of live.values()) p.kill('SIGTERM');
    killLater();
  };

  // The launcher's own signals go to every worker, once each time they arrive. SIGTERM / SIGHUP (a scheduler, a
  // closed terminal) then escalate to SIGKILL after the grace period, as torchrun does; SIGINT does not: a trainer
  // may take longer to checkpoint and export, and a second Ctrl-C (forwarded too) stops it at once.
  const forward = (sig: NodeJS.Signals) => () => {
    const to: NodeJS.Signals = sig === 'SIGHUP' ? 'SIGTERM' : sig;
    log(
      `${sig}: passing ${to} to ${live.size} worker${live.size === 1 ? '' : 's'}${to === 'SIGTERM' ? `, SIGKILL after ${graceMs / 1000} s` : ''}`,
    );
    for (const p of live.values()) p.kill(to);
    if (to === 'SIGTERM') killLater();
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  // whatever ends this process (an exception, process.exit elsewhere): no worker outlives it
  const killAll = () => {
    for (const p of live.values()) p.kill('SIGKILL');
  };
  process.on('exit', killAll);

  const done = new Promise<void>((resolve) => {
    for (let local = 0; local < nproc; local++) {
      const rank = nodeRank * nproc + local;
      const env: NodeJS.ProcessEnv = {
        ...baseEnv,
        RANK: String(rank),
        LOCAL_RANK: String(local),
        WORLD_SIZE: String(worldSize),
        LOCAL_WORLD_SIZE: String(nproc),
        GROUP_RANK: String(nodeRank),
        ROLE_RANK: String(rank),
        ROLE_WORLD_SIZE: String(worldSize),
        MASTER_ADDR: masterAddr,
        MASTER_PORT: String(masterPort),
        MUMU_NUM_THREADS: String(threads),
        MUMU_LAUNCHER_PID: String(process.pid),
      };
      const child = spawn(o.command[0]!, o.command.slice(1), {
        env,
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        detached: true,
      });
      live.set(rank, child);
      log(`rank ${rank}: pid ${child.pid}`);
      const tag = prefix ? `[rank ${rank}] ` : '';
      createInterface({ input: child.stdout! }).on('line', (l) => out(tag + l));
      createInterface({ input: child.stderr! }).on('line', (l) => {
        process.stderr.write(tag + l + '\n');
        if (l.trim()) lastErr.set(rank, l.trim());
      });
      child.on('error', (e) => log(`rank ${rank}: ${e.message}`));
      // 'close' (not 'exit'): the output pipes are drained, so the last error line is in
      child.on('close', (code, signal) => {
        live.delete(rank);
        const w: WorkerExit = {
          rank,
          pid: child.pid ?? -1,
          code,
          signal,
          lastError: lastErr.get(rank) ?? '',
          killedByLauncher: killed.has(rank),
        };
        exits.push(w);
        if (code !== 0 && !failure) {
          failure = w;
          stopOthers(`rank ${rank} (pid ${w.pid}) ${describeExit(w, graceMs)}`);
        }
        if (!live.size) resolve();
      });
    }
  });
  try {
    await done;
  } finally {
    if (killTimer) clearTimeout(killTimer);
    for (const [s, h] of handlers) process.off(s, h);
    killAll();
    process.off('exit', killAll);
  }
  exits.sort((a, b) => a.rank - b.rank);
  const f = failure as WorkerExit | null;
  if (!f) return { code: 0, message: null, workers: exits };
  const message = `rank ${f.rank} of ${worldSize} ${describeExit(f, graceMs)}${f.lastError ? `: ${f.lastError}` : ''}`;
  return { code: exitStatus(f.code, f.signal), message, workers: exits };
}

// In a worker started by launch(): stop when the launcher goes away (its IPC channel closes, which the kernel does
// even when the launcher is SIGKILLed). SIGTERM first, so a trainer can finish its step and checkpoint; exit after
// graceMs regardless. Does nothing outside launch().
export function watchLauncher(
  graceMs = 1000 * Number(process.env.MUMU_LAUNCH_GRACE_S ?? 30),
  log: (l: string) => void = (l) => process.stderr.write(l + '\n'),
): void {
  const pid = process.env.MUMU_LAUNCHER_PID;
  if (!pid || !process.channel) return;
  process.on('disconnect', () => {
    log(`rank ${process.env.RANK}: the launcher (pid ${pid}) went away: stopping`);
    setTimeout(() => process.exit(1), graceMs).unref();
    process.kill(process.pid, 'SIGTERM');
  });
  process.channel.unref(); // the channel alone must not keep a finished worker alive
}
