// Streaming reader for the shards: shard order and a sample shuffle buffer seeded per epoch, as WebDataset does.
// Worker threads of one process split the shards (whole shards each); ranks (processes) split the stream by the
// trainer's rule (src/data/split.ts): rank r keeps the positions j with j mod worldSize = r, so the ranks' streams,
// interleaved, are exactly the single-process stream. Together they read each sample of an epoch exactly once.
import path from 'node:path';
import type { Segment } from '../bootstrap/prompt.ts';
import { decodeImage, type RawImage } from '../../image/index.ts';
import { deriveSeed, Rng } from '../rng.ts';
import { readManifest } from './run.ts';
import { readShard, type ShardSample } from './tar.ts';
import { ownsPosition } from '../split.ts';

export interface SampleMeta {
  key: string;
  caption: string;
  prompt: Segment[];
  [k: string]: unknown;
}

export interface EncodedSample {
  key: string;
  meta: SampleMeta;
  target: Uint8Array; // PNG
  images: Uint8Array[]; // PNGs, indexed like the prompt's image segments
}

export interface ReadOptions {
  shuffleBuffer?: number; // 0 = file order
  seed?: number;
  epoch?: number;
  rank?: number;
  worldSize?: number;
  workerId?: number;
  numWorkers?: number;
}

export function parseSample(s: ShardSample): EncodedSample {
  const json = s.files.get('json');
  const target = s.files.get('png');
  if (!json || !target) throw new Error(`shard sample ${s.key} lacks its .json or .png`);
  const meta = JSON.parse(new TextDecoder().decode(json)) as SampleMeta;
  const images: Uint8Array[] = [];
  for (let k = 0; s.files.has(`img${k}.png`); k++) images.push(s.files.get(`img${k}.png`)!);
  return { key: s.key, meta, target, images };
}

export async function decodeSample(s: EncodedSample): Promise<{ key: string; meta: SampleMeta; target: RawImage; images: RawImage[] }> {
  return { key: s.key, meta: s.meta, target: await decodeImage(s.target), images: await Promise.all(s.images.map((b) => decodeImage(b))) };
}

// The shard files this worker reads this epoch (every rank reads the same ones and keeps its positions).
export function assignShards(files: readonly string[], opts: ReadOptions = {}): string[] {
  const { workerId = 0, numWorkers = 1, seed = 0, epoch = 0, shuffleBuffer = 0 } = opts;
  if (workerId < 0 || workerId >= numWorkers) throw new Error(`worker ${workerId} outside ${numWorkers} workers`);
  const order = shuffleBuffer > 0 ? new Rng(deriveSeed(seed, epoch, 'shard-order')).shuffle(files) : files.slice();
  return order.filter((_, i) => i % numWorkers === workerId);
}

export async function* streamSamples(dir: string, opts: ReadOptions = {}): AsyncGenerator<EncodedSample> {
  const manifest = await readManifest(dir);
  const files = manifest.shards.filter((s) => s.samples > 0).map((s) => s.file);
  const { rank = 0, worldSize = 1 } = opts;
  if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new Error(`rank ${rank} outside world size ${worldSize}`);
  const mine = assignShards(files, opts);
  const bufSize = opts.shuffleBuffer ?? 0;
  // the same buffer draws on every rank (the stream label of rank 0 when ranks split whole shards: a single-process
  // stream keeps its order)
  const rng = new Rng(deriveSeed(opts.seed ?? 0, opts.epoch ?? 0, `buffer:0:${opts.workerId ?? 0}`));
  let position = 0;
  const kept = function* (s: EncodedSample) {
    if (ownsPosition(position++, rank, worldSize)) yield s;
  };
  const buf: EncodedSample[] = [];
  for (const f of mine)
    for await (const s of readShard(path.join(dir, f))) {
      const sample = parseSample(s);
      if (bufSize <= 0) {
        yield* kept(sample);
        continue;
      }
      if (buf.length < bufSize) {
        buf.push(sample);
        continue;
      }
      const j = rng.int(buf.length);
      const out = buf[j]!;
      buf[j] = sample;
      yield* kept(out);
    }
  for (const s of rng.shuffle(buf)) yield* kept(s);
}
