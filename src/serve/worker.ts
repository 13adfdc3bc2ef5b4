// The generation process of `mumu serve` (forked by runner.ts): loads the model once, then runs one job at a time
// and writes its PNGs into the job's folder. Sampling is synchronous libtorch work, so it lives here, away from
// the HTTP process's event loop.
//
// Cancelling: while a job samples, this process's event loop is blocked (the sampler loop is synchronous), so an
// IPC 'cancel' message is only read once the job has ended. The HTTP side therefore also creates the job's cancel
// file, which onStep checks (one stat, microseconds) after every sampling step; the IPC message covers the async
// parts (reading the references, encoding the prompt). Either one aborts the pipeline's AbortSignal.
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { MumuPipeline, generationInfo, GenerationAbortedError, type GenerateResult } from '../pipeline.ts';
import type { PromptSegment } from '../prompt/index.ts';
import { encodePng } from '../image/index.ts';
import { promptText, referenceUrl } from './segments.ts';
import type { FromWorker, ToWorker, RunSpec, StoredSegment, WorkerConfig, ModelInfo } from './protocol.ts';

const send = (m: FromWorker) => process.send?.(m);
// The server is gone (killed, crashed): no one to report to, and a half-done job is reported failed at its restart.
// 'disconnect' needs the event loop; during sampling, onStep sees the parent change (re-parented to init).
const serverPid = process.ppid;
process.on('disconnect', () => process.exit(0));
// Ctrl+C reaches the whole process group: the server stops this process itself, after marking its job failed
process.on('SIGINT', () => {});

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;

async function load(): Promise<{ pipe: MumuPipeline; model: ModelInfo; seconds: number }> {
  const t0 = performance.now();
  const pipe = await MumuPipeline.fromPretrained(config.modelDir, { device: config.device });
  const c = pipe.components;
  const vae = JSON.parse(readFileSync(join(config.modelDir, 'vae', 'config.json'), 'utf8')) as {
    block_out_channels: number[];
  };
  const factor = 2 ** (vae.block_out_channels.length - 1);
  const model: ModelInfo = {
    name: config.modelName,
    maxImages: c.prompt.maxImages,
    tokensPerImage: c.prompt.tokensPerImage,
    referenceSize: c.prompt.imageSize,
    output: { width: c.latentShape[2] * factor, height: c.latentShape[1] * factor },
    maxSteps: c.scheduler.num_train_timesteps,
  };
  return { pipe, model, seconds: (performance.now() - t0) / 1000 };
}

async function toPrompt(segments: StoredSegment[], dir: string): Promise<PromptSegment[]> {
  return Promise.all(
    segments.map(async (s) =>
      'text' in s ? { text: s.text } : { image: new Uint8Array(await readFile(join(dir, 'refs', s.reference))) },
    ),
  );
}

// The CLI's metadata, with the model named by its name and the references by the names they are stored (and
// downloaded) under, so the prompt reads back as `a <img:prompt-1.png> dog`: fetch the references next to the PNG
// and `mumu generate` remakes it. mumu_segments keeps the exact segments; references maps names to their URLs.
function metadata(job: RunSpec, r: GenerateResult, k: number): Record<string, string> {
  const named = { ...r, prompt: promptText(job.prompt), negativePrompt: promptText(job.negativePrompt) };
  const names = [...job.prompt, ...job.negativePrompt].flatMap((s) => ('reference' in s ? [s.reference] : []));
  return {
    ...generationInfo(named, r.images[k]!, config.modelName),
    mumu_job: job.id,
    mumu_segments: JSON.stringify({ prompt: job.prompt, negativePrompt: job.negativePrompt }),
    ...(names.length
      ? { references: JSON.stringify(Object.fromEntries(names.map((n) => [n, referenceUrl(job.id, n)]))) }
      : {}),
  };
}

let current: { id: string; abort: AbortController } | null = null;

async function run(pipe: MumuPipeline, job: RunSpec): Promise<FromWorker> {
  const abort = new AbortController();
  if (existsSync(job.cancelFile)) abort.abort(); // cancelled between being sent and starting
  current = { id: job.id, abort };
  const t0 = performance.now();
  try {
    const { steps, guidance, seed, n, sampler } = job.settings;
    const prompt = await toPrompt(job.prompt, job.dir);
    const negative = job.negativePrompt.length ? await toPrompt(job.negativePrompt, job.dir) : undefined;
    const r = await pipe.generate(prompt, {
      steps,
      guidanceScale: guidance,
      seed,
      numImages: n,
      sampler,
      negativePrompt: negative,
      signal: abort.signal,
      onStep: ({ step, steps: total }) => {
        if (process.ppid !== serverPid) process.exit(0);
        if (existsSync(job.cancelFile)) abort.abort();
        send({ type: 'progress', id: job.id, step: step + 1, steps: total });
      },
    });
    const images: string[] = [];
    for (const [k, img] of r.images.entries()) {
      const name = `${k + 1}.png`;
      // written under a temporary name first: a crash never leaves a half PNG under a name the API serves
      await writeFile(join(job.dir, `${name}.tmp`), await encodePng(img, metadata(job, r, k)));
      await rename(join(job.dir, `${name}.tmp`), join(job.dir, name));
      images.push(name);
    }
    return { type: 'done', id: job.id, images, seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    if (e instanceof GenerationAbortedError || abort.signal.aborted) return { type: 'cancelled', id: job.id };
    return { type: 'failed', id: job.id, message: (e as Error).message.split('\n')[0]! };
  } finally {
    current = null;
  }
}

let loaded: Awaited<ReturnType<typeof load>>;
try {
  loaded = await load();
} catch (e) {
  send({ type: 'fatal', message: (e as Error).message.split('\n')[0]! });
  process.exit(1);
}
// jobs arrive one at a time (the HTTP side queues), but a chain keeps the order even if one arrives early
let chain = Promise.resolve();
process.on('message', (m: ToWorker) => {
  if (m.type === 'cancel') {
    if (current?.id === m.id) current.abort.abort();
  } else if (m.type === 'run') {
    chain = chain.then(async () => void send(await run(loaded.pipe, m.job)));
  }
});
send({ type: 'ready', model: loaded.model, loadSeconds: loaded.seconds });
