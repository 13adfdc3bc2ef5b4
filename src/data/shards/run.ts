// The resumable shard writer. Shard k always holds samples [k*S, (k+1)*S) of the run, each a pure function of its
// index, and is written atomically (tmp + rename); the manifest lists finished shards and is itself replaced
// atomically after each one. A killed run therefore resumes by redoing only unlisted shards: nothing is duplicated
// and nothing is lost. Worker threads each take whole shards.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { openSource, type RunSpec, type Source } from '../sources.ts';
import { writeShard, type ShardSample } from './tar.ts';

export interface ShardRecord {
  index: number;
  file: string;
  samples: number;
  crops: number;
  skipped: Record<string, number>;
  dropped: Record<string, number>;
}

export interface Manifest {
  format: 'mumu-webdataset';
  version: 1;
  spec: RunSpec;
  splits?: unknown;
  numShards: number;
  shards: ShardRecord[];
  totals: { samples: number; crops: number; skipped: Record<string, number>; dropped: Record<string, number> };
  complete: boolean;
  createdAt: string;
  updatedAt: string;
}

export const MANIFEST = 'manifest.json';
export const shardName = (k: number) => `shard-${String(k).padStart(6, '0')}.tar`;

const add = (into: Record<string, number>, from: Record<string, number>) => {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
};

export async function makeShard(source: Source, spec: RunSpec, k: number, outDir: string): Promise<ShardRecord> {
  const samples: ShardSample[] = [];
  const rec: ShardRecord = { index: k, file: shardName(k), samples: 0, crops: 0, skipped: {}, dropped: {} };
  for (let i = k * spec.samplesPerShard; i < Math.min(spec.n, (k + 1) * spec.samplesPerShard); i++) {
    let made = await source.make(i);
    // Stage 2 is about its one crop (section 5); a sample without one teaches it nothing.
    if ('sample' in made && spec.stage === 2 && made.crops === 0) made = { skipped: 'no-crop' };
    if ('skipped' in made) {
      rec.skipped[made.skipped] = (rec.skipped[made.skipped] ?? 0) + 1;
      continue;
    }
    samples.push(made.sample);
    rec.crops += made.crops;
    add(rec.dropped, made.stats);
  }
  rec.samples = samples.length;
  if (samples.length) await writeShard(path.join(outDir, rec.file), samples);
  return rec;
}

async function saveManifest(outDir: string, m: Manifest): Promise<void> {
  m.updatedAt = new Date().toISOString();
  const tmp = path.join(outDir, `${MANIFEST}.tmp`);
  await writeFile(tmp, JSON.stringify(m, null, 1));
  await rename(tmp, path.join(outDir, MANIFEST));
}

export async function readManifest(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(path.join(dir, MANIFEST), 'utf8')) as Manifest;
}

export interface RunOptions {
  workers?: number;
  splits?: unknown;
  log?: (line: string) => void;
  onShard?: (rec: ShardRecord, done: number, total: number) => void;
  stopAfter?: number; // tests: stop (as if killed) after this many new shards
}

export async function runShards(spec: RunSpec, outDir: string, opts: RunOptions = {}): Promise<Manifest> {
  const log = opts.log ?? (() => {});
  await mkdir(outDir, { recursive: true });
  const numShards = Math.ceil(spec.n / spec.samplesPerShard);
  let manifest: Manifest;
  if (existsSync(path.join(outDir, MANIFEST))) {
    manifest = await readManifest(outDir);
    if (JSON.stringify(manifest.spec) !== JSON.stringify(spec))
      throw new Error(`${outDir} holds a different run (its manifest's settings differ); resume with the same settings or use a new --out`);
    // A shard listed in the manifest but missing on disk is redone; a finished shard is never rewritten.
    manifest.shards = manifest.shards.filter((s) => s.samples === 0 || existsSync(path.join(outDir, s.file)));
  } else {
    const now = new Date().toISOString();
    manifest = { format: 'mumu-webdataset', version: 1, spec, splits: opts.splits, numShards, shards: [], totals: { samples: 0, crops: 0, skipped: {}, dropped: {} }, complete: false, createdAt: now, updatedAt: now };
  }
  for (const f of await readdir(outDir)) if (f.endsWith('.tmp')) await rm(path.join(outDir, f), { force: true });

  const done = new Set(manifest.shards.map((s) => s.index));
  const todo = [...Array(numShards).keys()].filter((k) => !done.has(k));
  if (done.size) log(`resuming: ${done.size}/${numShards} shards already written`);
  let newShards = 0;
  const finish = async (rec: ShardRecord) => {
    manifest.shards.push(rec);
    manifest.shards.sort((a, b) => a.index - b.index);
    await saveManifest(outDir, manifest);
    newShards++;
    opts.onShard?.(rec, manifest.shards.length, numShards);
  };

  const workers = Math.max(1, Math.min(opts.workers ?? 1, todo.length || 1));
  if (todo.length === 0) {
    // Already complete: nothing to open (a folder source would load its detector for nothing).
  } else if (workers === 1) {
    const source = await openSource(spec, log);
    try {
      for (const k of todo) {
        if (opts.stopAfter !== undefined && newShards >= opts.stopAfter) break;
        await finish(await makeShard(source, spec, k, outDir));
      }
    } finally {
      await source.close();
    }
  } else {
    await runInWorkers(spec, outDir, todo, workers, log, finish);
  }

  if (manifest.shards.length === numShards) {
    manifest.totals = { samples: 0, crops: 0, skipped: {}, dropped: {} };
    for (const s of manifest.shards) {
      manifest.totals.samples += s.samples;
      manifest.totals.crops += s.crops;
      add(manifest.totals.skipped, s.skipped);
      add(manifest.totals.dropped, s.dropped);
    }
    manifest.complete = true;
    await saveManifest(outDir, manifest);
  }
  return manifest;
}

// mumu runs from TypeScript sources through tsx, whose loader does not reach a worker's entry file on Node 20:
// boot the worker from a snippet that registers tsx first, then imports worker.ts.
const WORKER_BOOT = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(new URL('./worker.ts', import.meta.url).href)}); })`;

// Each worker opens its own source (and detector) once, then takes shard indices from a shared queue.
async function runInWorkers(spec: RunSpec, outDir: string, todo: number[], n: number, log: (l: string) => void, finish: (r: ShardRecord) => Promise<void>): Promise<void> {
  const queue = todo.slice();
  let chain = Promise.resolve();
  const all: Worker[] = [];
  const jobs = Promise.all(
    Array.from({ length: n }, () =>
      new Promise<void>((resolve, reject) => {
        const w = new Worker(WORKER_BOOT, { eval: true, workerData: { spec, outDir } });
        all.push(w);
        const next = () => {
          const k = queue.shift();
          if (k === undefined) void w.terminate().then(() => resolve());
          else w.postMessage(k);
        };
        w.on('message', (m: { type: 'ready' } | { type: 'log'; line: string } | { type: 'done'; rec: ShardRecord }) => {
          if (m.type === 'log') log(m.line);
          else if (m.type === 'ready') next();
          else {
            chain = chain.then(() => finish(m.rec));
            void chain.then(next, reject);
          }
        });
        w.on('error', reject);
      }),
    ),
  );
  try {
    await jobs;
    await chain;
  } catch (err) {
    // One failed worker ends the run; the others must not keep the process alive.
    await Promise.all(all.map((w) => w.terminate()));
    throw err;
  }
}
