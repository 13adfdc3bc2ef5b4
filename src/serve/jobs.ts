// The job store of `mumu serve`: one folder per generation under <out>/jobs/<id>/, holding job.json (the record),
// refs/ (the uploaded references, re-encoded as PNG under server-made names) and 1.png..N.png (the results).
// Every name on disk is made here; none comes from a client. Records are kept in memory too (the gallery reads
// them), and written on every state change, so a restart finds each job as it was: those that were queued or
// running when the server stopped are marked failed, never silently lost.
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { JOB_ID } from './segments.ts';
import type { JobSettings, StoredSegment } from './protocol.ts';

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
export const FINISHED: JobState[] = ['done', 'failed', 'cancelled'];

export interface JobRecord {
  id: string;
  state: JobState;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  model: string;
  settings: JobSettings;
  prompt: StoredSegment[];
  negativePrompt: StoredSegment[];
  images: string[]; // result files in the job's folder, once done
  seconds?: number; // generation time, once done
  error?: string; // why it failed
}

export interface Progress {
  step: number;
  steps: number;
}

export interface Retention {
  keep: number; // finished jobs kept, newest first
  keepDays: number; // and none older than this
}

// Time-ordered ids (ms since 1970 in base 36, then random): sorting by id is sorting by creation.
let lastMs = 0;
function newId(): string {
  const ms = Math.max(Date.now(), lastMs + 1);
  lastMs = ms;
  return `${ms.toString(36).padStart(9, '0')}-${randomBytes(3).toString('hex')}`;
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify(value, null, 2) + '\n');
  await rename(`${file}.tmp`, file); // atomic: a crash leaves the old record or the new one, never half of one
}

export class JobStore extends EventEmitter {
  private jobs = new Map<string, JobRecord>();
  private progress = new Map<string, Progress>();
  private constructor(
    readonly dir: string,
    readonly retention: Retention,
  ) {
    super();
    this.setMaxListeners(0); // one listener per open event stream
  }

  // Loads every job under dir/jobs; jobs left queued or running by a server that stopped are marked failed.
  static async open(dir: string, retention: Retention): Promise<{ store: JobStore; recovered: number }> {
    const store = new JobStore(dir, retention);
    await mkdir(join(dir, 'jobs'), { recursive: true });
    let recovered = 0;
    for (const id of await readdir(join(dir, 'jobs'))) {
      if (!JOB_ID.test(id)) continue;
      let job: JobRecord;
      try {
        job = JSON.parse(await readFile(join(dir, 'jobs', id, 'job.json'), 'utf8')) as JobRecord;
      } catch {
        continue; // a folder whose record was never written: the server stopped inside create()
      }
      if (job.state === 'queued' || job.state === 'running') {
        job.error =
          job.state === 'running'
            ? 'the server stopped while this job was running; submit it again'
            : 'the server stopped before this job ran; submit it again';
        job.state = 'failed';
        job.finishedAt = new Date().toISOString();
        await writeJson(join(dir, 'jobs', id, 'job.json'), job);
        recovered++;
      }
      store.jobs.set(id, job);
    }
    await store.prune();
    return { store, recovered };
  }

  folder(id: string): string {
    return join(this.dir, 'jobs', id);
  }

  // A new queued job with its references (name -> PNG bytes) written first: job.json appears last.
  async create(
    o: Pick<JobRecord, 'model' | 'settings' | 'prompt' | 'negativePrompt'>,
    refs: Map<string, Buffer>,
  ): Promise<JobRecord> {
    const id = newId();
    await mkdir(join(this.folder(id), 'refs'), { recursive: true });
    for (const [name, png] of refs) await writeFile(join(this.folder(id), 'refs', name), png);
    const job: JobRecord = { id, state: 'queued', createdAt: new Date().toISOString(), images: [], ...o };
    await writeJson(join(this.folder(id), 'job.json'), job);
    this.jobs.set(id, job);
    return job;
  }

  get(id: string): JobRecord | undefined {
    return this.jobs.get(id);
  }

  progressOf(id: string): Progress | undefined {
    return this.progress.get(id);
  }

  get size(): number {
    return this.jobs.size;
  }

  // Newest first; `before` is the id the previous page ended with.
  list(limit: number, before?: string): { jobs: JobRecord[]; next: string | null } {
    const ids = [...this.jobs.keys()].sort().reverse();
    const start = before === undefined ? 0 : ids.findIndex((id) => id < before);
    const page = start < 0 ? [] : ids.slice(start, start + limit);
    const last = page[page.length - 1];
    const more = last !== undefined && ids.indexOf(last) + 1 < ids.length;
    return { jobs: page.map((id) => this.jobs.get(id)!), next: more ? last! : null };
  }

  async update(id: string, patch: Partial<JobRecord>): Promise<JobRecord> {
    const job = this.jobs.get(id);
    if (!job) throw new Error(`no job ${id}`);
    Object.assign(job, patch);
    if (FINISHED.includes(job.state)) {
      job.finishedAt ??= new Date().toISOString();
      this.progress.delete(id);
    }
    await writeJson(join(this.folder(id), 'job.json'), job);
    this.emit('update', job);
    if (FINISHED.includes(job.state)) await this.prune();
    return job;
  }

  setProgress(id: string, p: Progress): void {
    this.progress.set(id, p);
    this.emit('progress', id, p);
  }

  async remove(id: string): Promise<void> {
    this.jobs.delete(id);
    this.progress.delete(id);
    await rm(this.folder(id), { recursive: true, force: true });
  }

  // Drops finished jobs past the retention count or age (queued and running jobs are never dropped).
  async prune(): Promise<number> {
    const cutoff = Date.now() - this.retention.keepDays * 86_400_000;
    const finished = [...this.jobs.values()]
      .filter((j) => FINISHED.includes(j.state))
      .sort((a, b) => (a.id < b.id ? 1 : -1));
    const drop = finished.filter(
      (j, i) => i >= this.retention.keep || Date.parse(j.finishedAt ?? j.createdAt) < cutoff,
    );
    for (const j of drop) await this.remove(j.id);
    return drop.length;
  }

  hasFile(id: string, sub: 'images' | 'refs', name: string): string | null {
    const file = sub === 'images' ? join(this.folder(id), name) : join(this.folder(id), 'refs', name);
    return existsSync(file) ? file : null;
  }
}
