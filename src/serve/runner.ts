// The HTTP side of generation: a bounded queue in front of one generation process (worker.ts). One job runs at a
// time, since the model and the CPU are shared; a full queue refuses new jobs (the server answers 429), and a
// generation process that dies is restarted and its job reported failed.
import { fork, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JobStore, JobRecord } from './jobs.ts';
import type { FromWorker, ModelInfo, RunSpec, ToWorker, WorkerConfig } from './protocol.ts';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
// --single-threaded-gc: see the README (V8's concurrent marking threads otherwise take the cores from libtorch);
// tsx by absolute URL, since the server may run from any folder
const EXEC_ARGV = ['--single-threaded-gc', '--import', import.meta.resolve('tsx')];

type Outcome = Extract<FromWorker, { type: 'done' | 'failed' | 'cancelled' }>;

export class QueueFullError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super('the queue is full; try again later');
  }
}

// One generation process: started, asked to run jobs one by one, restarted when it dies.
class GenerationProcess {
  private child: ChildProcess | null = null;
  private pending: { id: string; resolve: (o: Outcome) => void } | null = null;
  model: ModelInfo | null = null;
  restarts = 0;

  constructor(
    private config: WorkerConfig,
    private onProgress: (id: string, step: number, steps: number) => void,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  // Resolves once the model is loaded; rejects with the worker's one-line reason when it cannot load.
  start(): Promise<{ model: ModelInfo; loadSeconds: number }> {
    return new Promise((resolve, reject) => {
      const child = fork(WORKER, [JSON.stringify(this.config)], {
        execArgv: EXEC_ARGV,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      this.child = child;
      let ready = false;
      child.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          ready = true;
          this.model = m.model;
          resolve({ model: m.model, loadSeconds: m.loadSeconds });
        } else if (m.type === 'fatal') reject(new Error(m.message));
        else if (m.type === 'progress') this.onProgress(m.id, m.step, m.steps);
        else if (this.pending?.id === m.id) {
          const p = this.pending;
          this.pending = null;
          p.resolve(m);
        }
      });
      child.on('exit', (code, signal) => {
        if (this.child === child) this.child = null;
        if (!ready)
          reject(new Error(`the generation process exited before loading the model (${signal ?? `code ${code}`})`));
        if (this.pending) {
          const p = this.pending;
          this.pending = null;
          p.resolve({
            type: 'failed',
            id: p.id,
            message: `the generation process stopped (${signal ?? `exit code ${code}`}) during this job`,
          });
        }
      });
    });
  }

  async run(job: RunSpec): Promise<Outcome> {
    if (!this.child) {
      this.restarts++;
      await this.start();
    }
    return new Promise((resolve) => {
      this.pending = { id: job.id, resolve };
      this.send({ type: 'run', job });
    });
  }

  send(m: ToWorker): void {
    this.child?.send(m);
  }

  stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}

export class GenerationQueue {
  private waiting: string[] = [];
  private running: string | null = null;
  private worker: GenerationProcess;
  private durations: number[] = []; // seconds of the last jobs, for Retry-After
  private idle: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(
    private store: JobStore,
    readonly capacity: number,
    config: WorkerConfig,
  ) {
    this.worker = new GenerationProcess(config, (id, step, steps) => this.store.setProgress(id, { step, steps }));
  }

  start(): Promise<{ model: ModelInfo; loadSeconds: number }> {
    return this.worker.start();
  }

  get model(): ModelInfo {
    return this.worker.model!;
  }

  get status() {
    return {
      running: this.running,
      waiting: this.waiting.length,
      capacity: this.capacity,
      workerPid: this.worker.pid,
      workerRestarts: this.worker.restarts,
    };
  }

  // Throws QueueFullError when `capacity` jobs already wait (the running one is not counted; with --queue 0 a job
  // is taken only when none runs).
  checkRoom(): void {
    const idle = this.running === null && this.waiting.length === 0;
    if (!idle && this.waiting.length >= this.capacity) {
      const mean = this.durations.length ? this.durations.reduce((a, b) => a + b, 0) / this.durations.length : 1;
      throw new QueueFullError(Math.max(1, Math.ceil(mean * (this.waiting.length + 1))));
    }
  }

  enqueue(job: JobRecord): void {
    this.checkRoom();
    this.waiting.push(job.id);
    this.pump();
  }

  // queued: cancelled at once; running: the worker stops after its current step (the job ends 'cancelled').
  async cancel(id: string): Promise<'cancelled' | 'cancelling' | 'finished'> {
    const i = this.waiting.indexOf(id);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      await this.store.update(id, { state: 'cancelled' });
      return 'cancelled';
    }
    if (this.running === id) {
      await writeFile(this.cancelFile(id), '');
      this.worker.send({ type: 'cancel', id });
      return 'cancelling';
    }
    return 'finished';
  }

  private cancelFile(id: string): string {
    return join(this.store.folder(id), 'cancel');
  }

  private pump(): void {
    if (this.stopping || this.running || !this.waiting.length) return;
    const id = this.waiting.shift()!;
    this.running = id;
    this.idle = this.runOne(id).finally(() => {
      if (this.running === id) this.running = null; // (runOne frees it early; another job may run by now)
      this.pump();
    });
  }

  private async runOne(id: string): Promise<void> {
    const job = this.store.get(id);
    if (!job) return; // deleted while queued
    try {
      this.store.setProgress(id, { step: 0, steps: job.settings.steps });
      await this.store.update(id, { state: 'running', startedAt: new Date().toISOString() });
      const t0 = performance.now();
      const out = await this.worker.run({
        id,
        dir: this.store.folder(id),
        cancelFile: this.cancelFile(id),
        prompt: job.prompt,
        negativePrompt: job.negativePrompt,
        settings: job.settings,
      });
      this.durations = [...this.durations.slice(-9), (performance.now() - t0) / 1000];
      this.running = null; // free for the next job before anyone hears this one ended
      this.pump();
      if (out.type === 'done')
        await this.store.update(id, { state: 'done', images: out.images, seconds: +out.seconds.toFixed(3) });
      else if (out.type === 'cancelled') await this.store.update(id, { state: 'cancelled' });
      else
        await this.store.update(id, {
          state: 'failed',
          error: this.stopping ? 'the server stopped while this job was running; submit it again' : out.message,
        });
    } catch (e) {
      // the process could not be restarted, or the disk refused the record: the job still ends, as failed
      if (this.store.get(id))
        await this.store.update(id, { state: 'failed', error: (e as Error).message }).catch(() => {});
    }
  }

  // Stops the generation process; the running and the waiting jobs end failed, with the reason.
  async stop(): Promise<void> {
    this.stopping = true;
    for (const id of this.waiting.splice(0))
      await this.store.update(id, {
        state: 'failed',
        error: 'the server stopped before this job ran; submit it again',
      });
    await this.worker.stop();
    await this.idle.catch(() => {});
  }
}
