// Bootstrap throughput: samples/s end to end (generate or decode, detect, crop, augment, encode PNGs, write tar
// shards) on 2 worker threads, for EmojiWorld at 64 and 128 px and for real photos through CenterNet + BlazeFace.
// Prints a JSON object as its last line and appends the figures to docs/BENCHMARKS.md under "## bootstrap".
//   node --import tsx bench/bootstrap.ts [--n 2000] [--photos 60] [--workers 2]
import { appendRow } from './record.ts';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultConfig } from '../src/data/bootstrap/rules.ts';
import { runShards } from '../src/data/shards/run.ts';
import type { RunSpec } from '../src/data/sources.ts';

const { values } = parseArgs({
  options: { n: { type: 'string' }, photos: { type: 'string' }, workers: { type: 'string' } },
});
const n = Number(values.n ?? 2000),
  photos = Number(values.photos ?? 60),
  workers = Number(values.workers ?? 2);
const root = fileURLToPath(new URL('..', import.meta.url));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mumu-bench-'));
// Other processes on a shared machine slow every figure; the 1-minute load average at the start goes on record.
const load = os.loadavg()[0]!.toFixed(1);

// Wall-clock rate, and the rate per CPU-second of this process (all its threads): the second barely moves when
// other processes share the machine, and times the core count estimates what an idle machine would do.
async function measure(name: string, spec: RunSpec): Promise<{ wall: number; perCpuSecond: number }> {
  const out = path.join(tmp, name);
  const t0 = performance.now(),
    c0 = process.cpuUsage();
  const m = await runShards(spec, out, { workers });
  const s = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0),
    cpu = (c.user + c.system) / 1e6;
  const wall = m.totals.samples / s,
    perCpuSecond = m.totals.samples / cpu;
  console.log(
    `${name}: ${m.totals.samples} samples in ${s.toFixed(1)} s = ${wall.toFixed(1)} samples/s wall, ${perCpuSecond.toFixed(1)} per CPU-second (${workers} workers, start-up included)`,
  );
  return { wall, perCpuSecond };
}

const emoji = (size: number): RunSpec => ({
  source: 'emoji-world',
  n,
  seed: 1,
  size,
  stage: 1,
  samplesPerShard: Math.ceil(n / (4 * workers)),
  config: defaultConfig(1, size),
  split: 'train',
  renderScale: 2,
});
const results: Record<string, { wall: number; perCpuSecond: number }> = {};
results.emoji64 = await measure('emoji-world-64', emoji(64));
results.emoji128 = await measure('emoji-world-128', emoji(128));

// Real photos: the committed CC0 / public-domain fixtures, repeated, with captions naming what they show.
const fx = path.join(root, 'test', 'fixtures', 'photos');
const lines = [
  { image: 'chelsea.jpg', caption: 'a tabby cat lying on a blanket' },
  { image: 'astronaut.jpg', caption: 'a smiling woman astronaut in an orange suit' },
  { image: 'coffee.jpg', caption: 'a cup of coffee with a spoon on a table' },
];
const captions = path.join(tmp, 'captions.jsonl');
writeFileSync(captions, Array.from({ length: photos }, (_, i) => JSON.stringify(lines[i % 3])).join('\n') + '\n');
results.photos64 = await measure('photos-64', {
  source: 'folder',
  n: photos,
  seed: 1,
  size: 64,
  stage: 1,
  samplesPerShard: Math.ceil(photos / (2 * workers)),
  config: defaultConfig(1, 64),
  images: fx,
  captions,
});
rmSync(tmp, { recursive: true, force: true });

const cpu = os.cpus()[0]?.model.trim() ?? 'unknown cpu';
const machine = `${cpu}, ${os.cpus().length} cores, node ${process.versions.node}, load ${load}`;
const date = new Date().toISOString().slice(0, 10);
const r1 = (x: number) => Number(x.toFixed(1));
const report = {
  bench: 'bootstrap',
  date,
  machine,
  workers,
  n,
  photos,
  samplesPerSecond: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, r1(v.wall)])),
  samplesPerCpuSecond: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, r1(v.perCpuSecond)])),
};
const cell = (k: string) => `${report.samplesPerSecond[k]} (${report.samplesPerCpuSecond[k]}/cpu-s)`;

appendRow(
  'bootstrap',
  'Samples/s end to end (`node --import tsx bench/bootstrap.ts`): scene or photo -> detect -> crops -> PNGs -> tar shards, stage 1, worker start-up included. Each cell: wall-clock samples/s (samples per CPU-second of the process, which other load on the machine barely changes).\n\n| date | machine | workers | EmojiWorld 64 px | EmojiWorld 128 px | real photos (64 px) |\n|---|---|---|---|---|---|\n',
  `| ${date} | ${machine} | ${workers} | ${cell('emoji64')}, n=${n} | ${cell('emoji128')}, n=${n} | ${cell('photos64')}, n=${photos} |\n`,
);
console.log(JSON.stringify(report));
