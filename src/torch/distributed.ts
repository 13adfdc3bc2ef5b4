// Data parallelism on libtorch's own distributed engine (c10d, what torch.distributed runs on), through the binding
// (native/src/distributed.cc): a TCP rendezvous store hosted by rank 0, Gloo for CPU tensors, NCCL for CUDA tensors
// when the binding was built against a libtorch with NCCL. Used as `t.dist`, named after torch.distributed:
//
//   const pg = await t.dist.initProcessGroup();          // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from the env
//   await t.dist.allReduce(grads, 'avg');                 // every rank ends with the mean, in place
//   await t.dist.broadcast(params, 0);                    // every rank gets rank 0's values
//   await t.dist.barrier();
//   await pg.storeSet('done'); await pg.waitFor('done', ms);  // waits longer than a collective's timeout
//   await t.dist.destroy();
//
// Every collective returns a Promise and waits off the JS thread, so signals and I/O keep flowing while a slow rank
// catches up; calls are issued in the order they are made, and every rank must make the same calls in the same order
// with the same tensor shapes (as in torch.distributed). Each wait is bounded by the group's timeout: a dead, missing
// or unreachable peer rejects the Promise with an Error naming this rank and the operation, never a hang. After such
// a failure the group is unusable (its connections are gone): exit, and let the launcher restart from a checkpoint.
import dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { N } from './native.ts';
import { Tensor } from './tensor.ts';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

export interface InitOptions {
  rank?: number;
  worldSize?: number;
  localRank?: number;
  masterAddr?: string;
  masterPort?: number;
  // 'gloo': Gloo for every tensor. 'nccl': NCCL for CUDA tensors, Gloo for CPU tensors (and barriers).
  // Default: 'nccl' when this build has NCCL and the machine a GPU, else 'gloo'.
  backend?: Backend;
  // Bound on every wait: rendezvous, each collective (default MUMU_DIST_TIMEOUT_S seconds, or 60 s).
  timeoutMs?: number;
  // A file every rank can reach (a shared file system) as the rendezvous store instead of TCP (torch's file://);
  // a path no earlier group used (the store keeps its keys in it).
  storePath?: string;
  // Flat buckets for allReduce / broadcast: tensors of one dtype are packed up to this many bytes per collective
  // (DDP's default, 25 MiB); 0 sends each tensor on its own.
  bucketBytes?: number;
}

// What torchrun (and `mumu train --nproc`) put in each worker's environment; null when WORLD_SIZE is not set.
export interface LaunchEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
}

const DEFAULT_PORT = 29500; // torch's
const DEFAULT_BUCKET = 25 * 1024 * 1024;

function envInt(env: NodeJS.ProcessEnv, name: string, min: number, max = 2 ** 31 - 1): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\s*\d+\s*$/.test(v)) throw new Error(`${name}=${v} is not a whole number`);
  const n = Number(v);
  if (n < min || n > max) throw new Error(`${name}=${v} is out of range (${min}..${max})`);
  return n;
}

export function launchEnv(env: NodeJS.ProcessEnv = process.env): LaunchEnv | null {
  const worldSize = envInt(env, 'WORLD_SIZE', 1);
  if (worldSize === undefined) return null;
  const rank = envInt(env, 'RANK', 0, worldSize - 1);
  if (rank === undefined) throw new Error(`WORLD_SIZE=${worldSize} is set but RANK is not`);
  return {
    rank,
    worldSize,
    localRank: envInt(env, 'LOCAL_RANK', 0) ?? 0,
    masterAddr: env.MASTER_ADDR || '127.0.0.1',
    masterPort: envInt(env, 'MASTER_PORT', 1, 65535) ?? DEFAULT_PORT,
  };
}

export const hasDistributed = (): boolean => N.withC10d as boolean;
export const hasNccl = (): boolean => N.withNccl as boolean;

const handles = (ts: Tensor[], what: string) => {
  if (!Array.isArray(ts) || ts.some((x) => !(x instanceof Tensor)))
    throw new TypeError(`${what}: expected an array of Tensors`);
  return ts.map((x) => x.h);
};

export class ProcessGroup {
  #h: unknown;

  // bucketBytes: the flat-bucket size of later allReduce / broadcast calls (every rank must use the same)
  constructor(
    handle: unknown,
    readonly rank: number,
    readonly worldSize: number,
    readonly localRank: number,
    readonly backend: Backend,
    readonly timeoutMs: number,
    public bucketBytes: number,
  ) {
    this.#h = handle;
  }

  #handle(what: string): unknown {
    if (this.#h === null) throw new Error(`${what}: the process group was destroyed`);
    return this.#h;
  }

  // In place: every rank's tensors end up holding the elementwise sum / mean / max / min over the ranks.
  async allReduce(tensors: Tensor[], op: ReduceOp = 'sum'): Promise<void> {
    return N.distAllReduce(
      this.#handle('allReduce'),
      handles(tensors, 'allReduce'),
      op,
      this.bucketBytes,
    ) as Promise<void>;
  }

  // In place: every rank's tensors get root's values.
  async broadcast(tensors: Tensor[], root = 0): Promise<void> {
    return N.distBroadcast(
      this.#handle('broadcast'),
      handles(tensors, 'broadcast'),
      root,
      this.bucketBytes,
    ) as Promise<void>;
  }

  // Resolves once every rank has called it.
  async barrier(): Promise<void> {
    return N.distBarrier(this.#handle('barrier')) as Promise<void>;
  }

  // A key in the group's rendezvous store (torch.distributed's store.set), for waitFor on the other ranks.
  async storeSet(key: string, value = '1'): Promise<void> {
    return N.distStoreSet(this.#handle('storeSet'), key, value) as Promise<void>;
  }

  // Resolves once a rank has set the key: how ranks wait for work only one of them does (rank 0's checkpoints,
  // samples, export), which can outlast the collectives' timeout. Bounded by timeoutMs instead; the store lives in
  // rank 0's process, so if rank 0 exits the wait fails at once. `what` names the wait in errors.
  async waitFor(key: string, timeoutMs: number, what = `waiting for '${key}'`): Promise<void> {
    return N.distStoreWait(this.#handle('waitFor'), key, Math.round(timeoutMs), what) as Promise<void>;
  }

  // Closes the connections. Ranks that still call collectives on theirs then fail (a peer went away).
  async destroy(): Promise<void> {
    const h = this.#h;
    this.#h = null;
    if (h !== null) await N.distDestroy(h);
  }
}

// Joins the group: options first, then torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT), then a group of one. Rank 0 hosts the store; every rank waits (up to the timeout) for all the others.
export async function newGroup(o: InitOptions = {}): Promise<ProcessGroup> {
  const env = launchEnv();
  const worldSize = o.worldSize ?? env?.worldSize ?? 1;
  const rank = o.rank ?? env?.rank ?? (worldSize === 1 ? 0 : undefined);
  if (rank === undefined) throw new Error(`initProcessGroup: worldSize ${worldSize} needs a rank (option or RANK)`);
  if (!Number.isInteger(worldSize) || worldSize < 1)
    throw new Error(`initProcessGroup: worldSize must be a whole number >= 1, got ${worldSize}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize)
    throw new Error(`initProcessGroup: rank must be in 0..${worldSize - 1}, got ${rank}`);
  const timeoutMs =
    o.timeoutMs ?? (process.env.MUMU_DIST_TIMEOUT_S ? 1000 * Number(process.env.MUMU_DIST_TIMEOUT_S) : 60_000);
  if (!(timeoutMs > 0))
    throw new Error(
      `initProcessGroup: the timeout must be a positive number of ms, got ${timeoutMs} (MUMU_DIST_TIMEOUT_S=${process.env.MUMU_DIST_TIMEOUT_S})`,
    );
  const masterPort = o.masterPort ?? env?.masterPort ?? DEFAULT_PORT;
  if (!o.storePath && (!Number.isInteger(masterPort) || masterPort < 1 || masterPort > 65535))
    throw new Error(`initProcessGroup: masterPort must be in 1..65535, got ${masterPort}`);
  const backend = o.backend ?? (hasNccl() && (N.cudaDeviceCount() as number) > 0 ? 'nccl' : 'gloo');
  if (backend !== 'gloo' && backend !== 'nccl')
    throw new Error(`initProcessGroup: backend must be 'gloo' or 'nccl', got '${String(backend)}'`);
  const masterAddr = o.masterAddr ?? env?.masterAddr ?? '127.0.0.1';
  const handle = await N.distInit({
    rank,
    size: worldSize,
    timeoutMs: Math.round(timeoutMs),
    masterAddr,
    masterPort,
    storePath: o.storePath,
    nccl: backend === 'nccl',
    localAddr: o.storePath ? null : await localAddressToward(masterAddr, masterPort),
  });
  return new ProcessGroup(
    handle,
    rank,
    worldSize,
    o.localRank ?? env?.localRank ?? 0,
    backend,
    timeoutMs,
    o.bucketBytes ?? DEFAULT_BUCKET,
  );
}

// The address this host reaches `host` from: the one to offer the other ranks (Gloo's default, the address of the host
// name, is 127.0.1.1 on Debian and unreachable from other hosts). Connecting a UDP socket sends nothing.
export async function localAddressToward(host: string, port: number): Promise<string | null> {
  try {
    const { address, family } = await lookup(host);
    const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    return await new Promise<string | null>((resolve) => {
      s.once('error', () => {
        s.close();
        resolve(null);
      });
      s.connect(port, address, () => {
        const local = s.address().address;
        s.close();
        resolve(local);
      });
    });
  } catch {
    return null;
  }
}

// ---- the default group, as torch.distributed keeps one ----
let current: ProcessGroup | null = null;

function group(what: string): ProcessGroup {
  if (!current) throw new Error(`${what}: no process group (call initProcessGroup first)`);
  return current;
}

export async function initProcessGroup(o: InitOptions = {}): Promise<ProcessGroup> {
  if (current) throw new Error('initProcessGroup: the default process group is already initialised');
  current = await newGroup(o);
  return current;
}

export const isInitialized = (): boolean => current !== null;
export const getRank = (): number => current?.rank ?? 0;
export const getWorldSize = (): number => current?.worldSize ?? 1;
export const allReduce = (tensors: Tensor[], op: ReduceOp = 'sum'): Promise<void> =>
  group('allReduce').allReduce(tensors, op);
export const broadcast = (tensors: Tensor[], root = 0): Promise<void> => group('broadcast').broadcast(tensors, root);
export const barrier = (): Promise<void> => group('barrier').barrier();

export async function destroy(): Promise<void> {
  const g = current;
  current = null;
  await g?.destroy();
}
