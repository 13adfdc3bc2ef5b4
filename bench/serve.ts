// `mumu serve` under load, with the tiny random model (so the server's own costs are not hidden under the model's):
//  1. overhead per job: the same generation (one reference image, 20 DDIM steps, guidance 6) submitted to the
//     server and awaited on its event stream, vs called directly on MumuPipeline in this process; alternating,
//     medians. Both sides run libtorch on one thread.
//  2. 100 concurrent clients against --queue 32: how many were accepted (202), refused (429) and lost (accepted
//     but never done: must be 0), submit-to-done latency of the accepted (p50/p95), and the peak RSS of the HTTP
//     process and of its generation process.
// Prints one JSON object as its last line and appends a row to docs/BENCHMARKS.md under "## serve".
//   node --import tsx bench/serve.ts [--runs 25] [--clients 100] [--queue 32] [--steps 20] [--no-record]
import { parseArgs } from 'node:util';
import { appendRow } from './record.ts';
process.env.MUMU_NUM_THREADS = '1'; // before libtorch loads (the dynamic imports below), and for the server's env
const { existsSync, readFileSync, mkdtempSync } = await import('node:fs');
const { execSync } = await import('node:child_process');
const os = await import('node:os');
const { join } = await import('node:path');
const sharp = (await import('sharp')).default;
const { MumuPipeline } = await import('../src/pipeline.ts');
const { makeTinyModel } = await import('../test/pipeline/tiny-model.ts');
const { serve, call, events } = await import('../test/serve/helpers.ts');

const { values: v } = parseArgs({
  options: {
    runs: { type: 'string' },
    clients: { type: 'string' },
    queue: { type: 'string' },
    steps: { type: 'string' },
    'no-record': { type: 'boolean' },
  },
});
const runs = Number(v.runs ?? 25),
  clients = Number(v.clients ?? 100),
  queueSize = Number(v.queue ?? 32),
  steps = Number(v.steps ?? 20);
const log = (s: string) => process.stderr.write(`${s}\n`);

const model = await makeTinyModel();
const ref = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 80, b: 20 } } })
  .png()
  .toBuffer();
const request = (seed: number) => ({
  prompt: [{ text: 'a ' }, { image: ref.toString('base64') }, { text: ' dog on the night sky' }],
  steps,
  guidance: 6,
  seed,
});
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

const server = await serve([
  '--model',
  model,
  '--out',
  mkdtempSync(join(os.tmpdir(), 'mumu-bench-serve-')),
  '--queue',
  String(queueSize),
]);
const api = `${server.url}/api`;
const pipe = await MumuPipeline.fromPretrained(model);

// submit, then wait on the event stream for the end; returns ms from submit to done
async function viaServer(
  seed: number,
): Promise<{ status: number; ms: number; state?: string; retryAfter?: string | null }> {
  const t0 = performance.now();
  const r = await call(`${api}/generations`, { json: request(seed) });
  if (r.status !== 202)
    return { status: r.status, ms: performance.now() - t0, retryAfter: r.headers.get('retry-after') };
  const evs = await events(`${server.url}${r.body.events}`);
  return { status: 202, ms: performance.now() - t0, state: evs[evs.length - 1]?.data.state };
}
async function direct(seed: number): Promise<number> {
  const t0 = performance.now();
  await pipe.generate(['a ', { image: ref }, ' dog on the night sky'], { steps, guidanceScale: 6, seed });
  return performance.now() - t0;
}

// --- 1. overhead per job ---
for (let i = 0; i < 2; i++) {
  await viaServer(1000 + i);
  await direct(1000 + i);
}
// CPU time (user + system) of a process, in ms, from /proc: other load on a shared machine moves it far less than
// wall-clock time
const TICK_MS = 1000 / Number(execSync('getconf CLK_TCK').toString().trim() || 100);
const cpuOf = (pid: number | undefined) => {
  if (!pid || !existsSync(`/proc/${pid}/stat`)) return 0;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime (fields 14, 15)
};
const serverMs: number[] = [],
  directMs: number[] = [];
let httpCpuMs = 0,
  workerCpuMs = 0,
  directCpuMs = 0;
for (let i = 0; i < runs; i++) {
  const [h0, w0] = [cpuOf(server.proc.pid), cpuOf(server.workerPid())];
  const s = await viaServer(i);
  httpCpuMs += cpuOf(server.proc.pid) - h0;
  workerCpuMs += cpuOf(server.workerPid()) - w0;
  if (s.state !== 'done') throw new Error(`job ${i} ended ${s.state}`);
  serverMs.push(s.ms);
  const u0 = process.cpuUsage();
  directMs.push(await direct(i));
  const u = process.cpuUsage(u0);
  directCpuMs += (u.user + u.system) / 1000;
}
const perJob = {
  direct_ms: +median(directMs).toFixed(1),
  server_ms: +median(serverMs).toFixed(1),
  direct_cpu_ms: +(directCpuMs / runs).toFixed(1),
  http_cpu_ms: +(httpCpuMs / runs).toFixed(1),
  worker_cpu_ms: +(workerCpuMs / runs).toFixed(1),
};
log(
  `per job: direct ${perJob.direct_ms} ms (${perJob.direct_cpu_ms} CPU-ms); through the server ${perJob.server_ms} ms ` +
    `(HTTP process ${perJob.http_cpu_ms} CPU-ms + generation process ${perJob.worker_cpu_ms} CPU-ms)`,
);

// --- 2. concurrent clients ---
let peakRss = { http: 0, worker: 0 };
const rssOf = (pid: number | undefined) => {
  if (!pid || !existsSync(`/proc/${pid}/status`)) return 0;
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
};
const t0 = performance.now();
const results = await Promise.all(Array.from({ length: clients }, (_, i) => viaServer(10_000 + i)));
const wall = (performance.now() - t0) / 1000;
peakRss = { http: rssOf(server.proc.pid), worker: rssOf(server.workerPid()) };
const accepted = results.filter((r) => r.status === 202);
const refused = results.filter((r) => r.status === 429);
const lost = accepted.filter((r) => r.state !== 'done').length;
const other = results.length - accepted.length - refused.length;
const latency = accepted.map((r) => r.ms / 1000);
const health = (await call(`${api}/health`)).body;
await server.stop();
log(
  `${clients} clients: ${accepted.length} accepted, ${refused.length} refused (429), ${lost} lost, ${other} other; p50 ${median(latency).toFixed(2)} s, p95 ${pct(latency, 95).toFixed(2)} s`,
);
if (refused.some((r) => !/^\d+$/.test(r.retryAfter ?? ''))) throw new Error('a 429 without Retry-After');

const cpu = os.cpus();
const out = {
  bench: 'serve',
  date: new Date().toISOString(),
  machine: `${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}, load ${os.loadavg()[0]!.toFixed(1)}`,
  model: 'tiny random test model (16 px, test/pipeline/tiny-model.ts)',
  threads: 1,
  steps,
  guidance: 6,
  runs,
  ...perJob,
  overhead_ms: +(perJob.server_ms - perJob.direct_ms).toFixed(1),
  server_vs_direct: +(perJob.server_ms / perJob.direct_ms).toFixed(3),
  overhead_cpu_ms: +(perJob.http_cpu_ms + perJob.worker_cpu_ms - perJob.direct_cpu_ms).toFixed(1),
  server_vs_direct_cpu: +((perJob.http_cpu_ms + perJob.worker_cpu_ms) / perJob.direct_cpu_ms).toFixed(3),
  clients,
  queue: queueSize,
  accepted: accepted.length,
  refused_429: refused.length,
  lost,
  other_status: other,
  latency_p50_s: +median(latency).toFixed(3),
  latency_p95_s: +pct(latency, 95).toFixed(3),
  burst_wall_s: +wall.toFixed(2),
  jobs_after: health.jobs,
  peak_rss_mb: { http: +peakRss.http.toFixed(0), worker: +peakRss.worker.toFixed(0) },
};

if (!v['no-record']) {
  const intro =
    `\`npm run bench:serve\` (bench/serve.ts), tiny random model, one libtorch thread on both sides. Overhead: one job` +
    ` (a reference image + text, ${steps} DDIM steps, guidance 6) submitted over HTTP and awaited on its event stream, vs the same` +
    ' `MumuPipeline.generate` call in-process: wall-clock medians of alternating runs, and mean CPU time per job of the HTTP' +
    " process (all of it overhead: parsing, image checks, files, events) and of the generation process, vs the direct call's." +
    ' Burst: that many clients submit at once against' +
    ' `--queue`; lost = accepted but not done (must be 0); latency from submit to done of the accepted jobs; peak RSS (VmHWM) of' +
    ' the HTTP process and of its generation process.\n\n' +
    '| date | machine | steps | direct ms/job | server ms/job | overhead ms | direct CPU-ms/job | HTTP + generation process CPU-ms/job | overhead CPU-ms | clients / queue | accepted | refused 429 | lost | p50 s | p95 s | peak RSS HTTP / worker MB |\n' +
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n';
  const row = `| ${out.date.slice(0, 10)} | ${out.machine} | ${steps} | ${out.direct_ms} | ${out.server_ms} | ${out.overhead_ms} (${out.server_vs_direct}x) | ${out.direct_cpu_ms} | ${out.http_cpu_ms} + ${out.worker_cpu_ms} | ${out.overhead_cpu_ms} (${out.server_vs_direct_cpu}x) | ${clients} / ${queueSize} | ${out.accepted} | ${out.refused_429} | ${out.lost} | ${out.latency_p50_s} | ${out.latency_p95_s} | ${out.peak_rss_mb.http} / ${out.peak_rss_mb.worker} |\n`;
  appendRow('serve', intro, row);
}
console.log(JSON.stringify(out));
