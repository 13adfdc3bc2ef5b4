// What `mumu serve`'s HTTP process and its generation process (worker.ts) say to each other over the IPC channel,
// and the job records both sides read. Types only: importing this loads nothing.
import type { SamplerName } from '../diffusion/samplers.ts';

// A prompt as stored with its job: text taken literally, images by the server-made file name of the stored
// reference (refs/<name> in the job's folder). Nothing here ever names a file the client chose.
export type StoredSegment = { text: string } | { reference: string };

export interface JobSettings {
  steps: number;
  guidance: number;
  seed: number;
  n: number;
  sampler: SamplerName;
}

// What the loaded model accepts (GET /api/model).
export interface ModelInfo {
  name: string;
  maxImages: number; // per prompt (the negative prompt has its own)
  tokensPerImage: number;
  referenceSize: number; // reference images are padded to a square and resized to this side (px)
  output: { width: number; height: number };
  maxSteps: number; // the scheduler's training timesteps
}

export interface RunSpec {
  id: string;
  dir: string; // the job's folder: refs/ in, 1.png..N.png out
  cancelFile: string; // exists once the job is cancelled (see worker.ts for why a file)
  prompt: StoredSegment[];
  negativePrompt: StoredSegment[];
  settings: JobSettings;
}

export type ToWorker = { type: 'run'; job: RunSpec } | { type: 'cancel'; id: string };

export type FromWorker =
  | { type: 'ready'; model: ModelInfo; loadSeconds: number }
  | { type: 'fatal'; message: string }
  | { type: 'progress'; id: string; step: number; steps: number }
  | { type: 'done'; id: string; images: string[]; seconds: number }
  | { type: 'failed'; id: string; message: string }
  | { type: 'cancelled'; id: string };

export interface WorkerConfig {
  modelDir: string;
  modelName: string;
  device: string;
}
