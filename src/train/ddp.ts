// Data-parallel training (issue 15): what train() does differently when it is one rank of several, on a t.dist
// process group (libtorch's c10d, src/torch/distributed.ts). As torch's DistributedDataParallel:
//
// - at the start every rank takes rank 0's model (every parameter, trainable or not) and, on resume, the optimizer
//   state rank 0 read from its checkpoint, so the ranks start identical and stay so (they apply the same update);
// - after the micro-batches, the gradients are summed over the ranks (each rank's loss is already weighted by its
//   share of the global count, so the sum is the single-process gradient) before clipping and the optimizer step;
// - rank 0 alone writes metrics, checkpoints, sample grids and the exported model; the others wait for it on the
//   rendezvous store (waitFor), bounded by MUMU_DIST_RANK0_TIMEOUT_S (default 1800 s), not by the collectives' timeout;
// - a stop (SIGINT / SIGTERM) requested on any rank travels with the gradients, so every rank stops after the same
//   step, and rank 0 writes one checkpoint.
//
// With no group (one process) every method is free: no copies, no collectives.
import { tensor, zerosLike, type Tensor } from '../torch/index.ts';
import type { ProcessGroup } from '../torch/distributed.ts';
import type { Module } from '../nn/index.ts';

// the dtypes Gloo (libtorch 1.13) moves: a model's bool tensors, if it ever has any, are not broadcast
const MOVABLE = new Set(['float32', 'float64', 'float16', 'int8', 'uint8', 'int32', 'int64']);

export const rank0TimeoutMs = (env: NodeJS.ProcessEnv = process.env): number => {
  const v = env.MUMU_DIST_RANK0_TIMEOUT_S;
  const s = v === undefined || v === '' ? 1800 : Number(v);
  if (!(s > 0)) throw new Error(`MUMU_DIST_RANK0_TIMEOUT_S=${v} is not a positive number of seconds`);
  return 1000 * s;
};

export interface ReducedStep {
  stats: number[]; // the stats summed over the ranks
  seconds: number; // wall time of the all-reduce (0 with one process)
}

export class DataParallel {
  #doneCount = 0;

  constructor(
    readonly group: ProcessGroup | null,
    readonly rank0WaitMs = rank0TimeoutMs(),
  ) {}

  get rank(): number {
    return this.group?.rank ?? 0;
  }
  get worldSize(): number {
    return this.group?.worldSize ?? 1;
  }
  get isMain(): boolean {
    return this.rank === 0;
  }

  // rank 0's values of every parameter of the model, and of `extra` tensors (the optimizer state on resume)
  async broadcastModel(model: Module, extra: Tensor[] = []): Promise<void> {
    if (!this.group) return;
    const ts = [...Object.values(model.stateDict()), ...extra].filter((t) => MOVABLE.has(t.dtype));
    await this.group.broadcast(ts, 0);
  }

  // A small JSON value from rank 0 (what it read from its checkpoint); the others pass anything.
  async broadcastJson<T>(value: T): Promise<T> {
    if (!this.group) return value;
    const bytes = this.isMain ? new TextEncoder().encode(JSON.stringify(value ?? null)) : new Uint8Array(0);
    const len = tensor([bytes.length], { dtype: 'int64' });
    await this.group.broadcast([len], 0);
    const buf = this.isMain
      ? tensor(bytes, { dtype: 'uint8' })
      : tensor(new Uint8Array(Number(len.item())), { dtype: 'uint8' });
    await this.group.broadcast([buf], 0);
    return JSON.parse(new TextDecoder().decode(buf.toBytes())) as T;
  }

  // Sum over the ranks of one number (a step's token count).
  async sum(x: number): Promise<number> {
    if (!this.group) return x;
    const t = tensor([x], { dtype: 'float64' });
    await this.group.allReduce([t], 'sum');
    return t.item();
  }

  // Sums the parameters' gradients over the ranks in place, with `stats` (the loss, its parts, counts, a stop flag)
  // riding in the same float32 bucket. A parameter no rank has a gradient for keeps none (AdamW skips it, as in a
  // single process); one that some rank lacks gets zeros there first, so every rank sends the same tensor list.
  async reduceGradients(params: Tensor[], stats: number[]): Promise<ReducedStep> {
    if (!this.group) return { stats, seconds: 0 };
    const t0 = performance.now();
    const grads = params.map((p) => p.grad);
    const has = grads.map((g) => (g ? 1 : 0));
    const filled = params.map((p, i) => {
      if (!grads[i]) p.grad = zerosLike(p);
      return p.grad!;
    });
    const extra = tensor(Float32Array.from([...has, ...stats]), { device: params[0]?.device });
    await this.group.allReduce([...filled, extra], 'sum');
    const back = Array.from(extra.to('cpu').toArray() as Float32Array);
    back.slice(0, params.length).forEach((n, i) => {
      if (n === 0) params[i]!.grad = null;
    });
    return { stats: back.slice(params.length), seconds: (performance.now() - t0) / 1000 };
  }

  // Work only rank 0 does (a checkpoint, a sample grid, the export): rank 0 runs it and says so in the store; the
  // others wait for that, up to rank0WaitMs, and fail at once if rank 0's process goes away. Every rank calls this
  // at the same points, in the same order.
  async rank0(what: string, work: () => Promise<unknown> | unknown): Promise<void> {
    const key = `rank0-done/${this.#doneCount++}`;
    if (!this.group) {
      await work();
      return;
    }
    if (this.isMain) {
      await work();
      await this.group.storeSet(key);
    } else await this.group.waitFor(key, this.rank0WaitMs, `waiting for rank 0 (${what})`);
  }
}
