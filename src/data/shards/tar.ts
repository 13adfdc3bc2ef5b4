// WebDataset-style shards: plain tar files where a sample is the run of entries sharing a key (the name up to its
// first dot): `000000042.png` (target), `000000042.json` (prompt + metadata), `000000042.img0.png` (crops, ...).
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export interface ShardSample {
  key: string;
  files: Map<string, Uint8Array>; // extension (after the key's dot) -> bytes: "png", "json", "img0.png", ...
}

// Fixed mtime so the same samples always make byte-identical shards (resume and determinism tests compare them).
const MTIME = new Date(0);

// Write a whole shard to `path` atomically: a killed writer leaves only a .tmp file, never a truncated shard.
export async function writeShard(path: string, samples: readonly ShardSample[]): Promise<void> {
  const tmp = `${path}.tmp`;
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(tmp));
  try {
    for (const s of samples) {
      if (s.key.includes('.') || s.key.includes('/')) throw new Error(`shard key '${s.key}' must not contain '.' or '/'`);
      for (const [ext, bytes] of s.files) {
        await new Promise<void>((resolve, reject) =>
          pack.entry({ name: `${s.key}.${ext}`, size: bytes.length, mtime: MTIME, mode: 0o644 }, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length), (err) => (err ? reject(err) : resolve())),
        );
      }
    }
    pack.finalize();
    await done;
  } catch (err) {
    pack.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
  await rename(tmp, path);
}

// Samples of one shard in file order; entries of a key must be contiguous, as WebDataset requires.
export async function* readShard(path: string): AsyncGenerator<ShardSample> {
  const extract = tar.extract();
  const src = createReadStream(path);
  src.on('error', (e) => extract.destroy(e));
  src.pipe(extract);
  let cur: ShardSample | undefined;
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    const name = entry.header.name;
    const dot = name.indexOf('.');
    if (entry.header.type !== 'file' || dot <= 0) continue;
    const key = name.slice(0, dot), ext = name.slice(dot + 1);
    if (cur && cur.key !== key) {
      yield cur;
      cur = undefined;
    }
    cur ??= { key, files: new Map() };
    const buf = Buffer.concat(chunks);
    cur.files.set(ext, new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
  }
  if (cur) yield cur;
}
