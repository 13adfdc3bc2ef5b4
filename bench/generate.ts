// Seconds per image for `mumu generate` (50 DDIM steps, guidance 6: the paper's settings) and the pipeline's
// overhead over the sum of its UNet calls (target < 10%): everything that is not the UNet (prompt encoding, the
// guidance arithmetic, sampler steps, VAE decode) divided by UNet time. Prints one JSON object as its last line and
// appends a row to docs/BENCHMARKS.md under "## generate".
//   node --import tsx bench/generate.ts [--model DIR] [--steps 50] [--guidance 6] [--n 1] [--runs 3] [--device cpu]
import { appendRow } from './record.ts';
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { getNumThreads, torchVersion } from '../src/torch/index.ts';
import { MumuPipeline, type GenerateResult } from '../src/pipeline.ts';
import { makeTinyModel, makeDefaultArchitectureModel } from '../test/pipeline/tiny-model.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: v } = parseArgs({
  options: {
    model: { type: 'string' },
    steps: { type: 'string' },
    guidance: { type: 'string' },
    n: { type: 'string' },
    runs: { type: 'string' },
    device: { type: 'string' },
    prompt: { type: 'string' },
    'no-record': { type: 'boolean' },
  },
});
const steps = Number(v.steps ?? 50);
const guidance = Number(v.guidance ?? 6);
const n = Number(v.n ?? 1);
const runs = Number(v.runs ?? 3);
const device = v.device ?? 'cpu';

let model = v.model ?? join(ROOT, 'models', 'emoji-default');
let modelLabel = v.model ?? 'models/emoji-default';
if (!existsSync(join(model, 'model_index.json'))) {
  if (v.model) throw new Error(`${v.model} is not a mumu model folder (no model_index.json)`);
  // no trained weights yet: time the default architecture with random weights (same FLOPs), or the tiny test model
  const configs = join(ROOT, 'configs', 'models');
  if (existsSync(join(configs, 'unet.json'))) {
    model = await makeDefaultArchitectureModel(configs);
    modelLabel = 'default architecture (configs/models), random weights: models/emoji-default is not shipped yet';
  } else {
    model = await makeTinyModel();
    modelLabel = 'tiny random test model: models/emoji-default is not shipped yet';
  }
  process.stderr.write(`note: ${modelLabel}\n`);
}

const pipe = await MumuPipeline.fromPretrained(model, { device });
const prompt = v.prompt ?? 'a dog face and a rocket on a night sky';
await pipe.generate(prompt, { steps: 2, guidanceScale: guidance, numImages: n, seed: 0 }); // warm-up: allocator, caches

const results: GenerateResult['timings'][] = [];
for (let i = 0; i < runs; i++) {
  const r = await pipe.generate(prompt, { steps, guidanceScale: guidance, numImages: n, seed: i });
  results.push(r.timings);
  process.stderr.write(
    `run ${i + 1}/${runs}: ${(r.timings.total / 1000).toFixed(2)} s, UNet ${(r.timings.unet / 1000).toFixed(2)} s\n`,
  );
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const total = median(results.map((t) => t.total));
const unet = median(results.map((t) => t.unet));
const overheads = results.map((t) => (t.total - t.unet) / t.unet);
const cpu = os.cpus();
const out = {
  bench: 'generate',
  date: new Date().toISOString(),
  machine: `${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${device}`,
  threads: getNumThreads(),
  omp_wait_policy: process.env.OMP_WAIT_POLICY,
  libtorch: torchVersion,
  model: modelLabel,
  steps,
  guidance,
  images_per_call: n,
  runs,
  seconds_per_image: +(total / 1000 / n).toFixed(3),
  unet_ms_per_call: +(unet / results[0]!.unetCalls).toFixed(2),
  encode_ms: +median(results.map((t) => t.encode)).toFixed(1),
  decode_ms: +median(results.map((t) => t.decode)).toFixed(1),
  overhead_vs_unet: +median(overheads).toFixed(4),
  overhead_target: 0.1,
};

if (!v['no-record']) {
  const row = `| ${out.date.slice(0, 10)} | ${out.machine} (${out.threads} threads) | ${out.model} | ${steps} | ${guidance} | ${n} | ${out.seconds_per_image} | ${out.unet_ms_per_call} | ${(out.overhead_vs_unet * 100).toFixed(1)}% |\n`;
  appendRow(
    'generate',
    `\`npm run bench:generate\` (bench/generate.ts): seconds per image with the paper's sampling settings, and the pipeline's\noverhead over the sum of its UNet calls (target < 10%). Median of the runs; one row per run of the benchmark.\n\n` +
      '| date | machine | model | steps | guidance | images/call | s/image | UNet ms/call | overhead |\n|---|---|---|---|---|---|---|---|---|\n',
    row,
  );
}
console.log(JSON.stringify(out));
