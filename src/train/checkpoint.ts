// Checkpoints: a folder ckpt-<step>/ holding the trainable weights (and their EMA), the optimiser moments and
// state.json (step, data position, the sha256 and size of every file). It is written under a temporary name, every file
// fsynced, then renamed into place, so a kill at any moment leaves either the old set or the new one. Loading checks
// every file against state.json; a corrupt or truncated checkpoint is reported and the previous one is tried.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { saveSafetensors, loadSafetensors, noGrad, type AdamW, type Tensor } from '../torch/index.ts';

export const CKPT_VERSION = 1;

export interface CheckpointState {
  version: number;
  step: number; // optimizer steps done
  microStep: number; // micro-batches consumed (the data position)
  optimizer: {
    step: number;
    groups: { name: string; lr: number; betas: [number, number]; eps: number; weightDecay: number; size: number }[];
  };
  // The loss's random draws are per item (src/train/draws.ts), so a checkpoint needs no RNG state; checkpoints
  // written before that hold the torch Generator's (base64), now unused.
  rng?: { generator: string };
  files: Record<string, { sha256: string; bytes: number }>;
  extra: Record<string, unknown>;
}

export interface CheckpointData {
  weights: Record<string, Tensor>;
  ema: Record<string, Tensor> | null;
  optimizer: Record<string, Tensor>;
  state: Omit<CheckpointState, 'files' | 'version'>;
}

const NAME = /^ckpt-(\d{8})$/;
export const checkpointName = (step: number) => `ckpt-${String(step).padStart(8, '0')}`;

function fsyncPath(p: string): void {
  try {
    const fd = fs.openSync(p, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    /* some filesystems cannot fsync a directory: durability is weaker there, atomicity is not */
  }
}

const sha256File = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

export function saveCheckpoint(root: string, data: CheckpointData): string {
  fs.mkdirSync(root, { recursive: true });
  const final = path.join(root, checkpointName(data.state.step));
  const tmp = path.join(root, `.tmp-${checkpointName(data.state.step)}-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  const files: CheckpointState['files'] = {};
  const put = (name: string, tensors: Record<string, Tensor>) => {
    const f = path.join(tmp, name);
    saveSafetensors(f, tensors); // itself tmp + fsync + rename
    files[name] = { sha256: sha256File(f), bytes: fs.statSync(f).size };
  };
  put('weights.safetensors', data.weights);
  if (data.ema) put('ema.safetensors', data.ema);
  put('optimizer.safetensors', data.optimizer);
  const state: CheckpointState = { version: CKPT_VERSION, ...data.state, files };
  const sf = path.join(tmp, 'state.json');
  const fd = fs.openSync(sf, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(state, null, 1) + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fsyncPath(tmp);
  fs.rmSync(final, { recursive: true, force: true }); // a re-run of the same step replaces it
  fs.renameSync(tmp, final);
  fsyncPath(root);
  return final;
}

// Steps of the checkpoints under root, newest first (temporary folders of killed writes are ignored).
export function listCheckpoints(root: string): { step: number; dir: string }[] {
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((n) => NAME.exec(n))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m) => ({ step: Number(m[1]), dir: path.join(root, m[0]) }))
    .sort((a, b) => b.step - a.step);
}

export class CorruptCheckpointError extends Error {}

// Reads and verifies one checkpoint; throws CorruptCheckpointError naming what is wrong.
export function loadCheckpoint(dir: string): CheckpointData & { state: CheckpointState } {
  const bad = (why: string): never => {
    throw new CorruptCheckpointError(`${dir}: ${why}`);
  };
  let state: CheckpointState;
  try {
    state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as CheckpointState;
  } catch (e) {
    return bad(`state.json unreadable (${(e as Error).message.split('\n')[0]})`);
  }
  if (state.version !== CKPT_VERSION || typeof state.step !== 'number' || !state.files)
    bad('state.json is not a mumu checkpoint state');
  for (const [name, { sha256, bytes }] of Object.entries(state.files)) {
    const f = path.join(dir, name);
    if (!fs.existsSync(f)) bad(`${name} is missing`);
    const size = fs.statSync(f).size;
    if (size !== bytes) bad(`${name} is ${size} bytes, state.json says ${bytes} (truncated?)`);
    if (sha256File(f) !== sha256) bad(`${name} fails its sha256 check`);
  }
  const read = (name: string) => {
    try {
      return loadSafetensors(path.join(dir, name)).tensors;
    } catch (e) {
      return bad(`${name}: ${(e as Error).message.split('\n')[0]}`);
    }
  };
  return {
    weights: read('weights.safetensors'),
    ema: state.files['ema.safetensors'] ? read('ema.safetensors') : null,
    optimizer: read('optimizer.safetensors'),
    state,
  };
}

// The newest checkpoint that verifies; each one skipped is reported through warn.
export function loadLatestCheckpoint(
  root: string,
  warn: (line: string) => void,
): (CheckpointData & { state: CheckpointState; dir: string }) | null {
  for (const { dir } of listCheckpoints(root)) {
    try {
      return { ...loadCheckpoint(dir), dir };
    } catch (e) {
      if (!(e instanceof CorruptCheckpointError)) throw e;
      warn(`checkpoint ${e.message}; trying the previous one`);
    }
  }
  return null;
}

// Deletes all but the newest `keep` checkpoints.
export function pruneCheckpoints(root: string, keep: number): void {
  for (const { dir } of listCheckpoints(root).slice(keep)) fs.rmSync(dir, { recursive: true, force: true });
}

// ---- the trainer's state <-> a checkpoint ----

// What a step updates and a checkpoint holds (the EMA on rank 0 only). No RNG: the loss's draws are per item
// (src/train/draws.ts).
export interface TrainState {
  trainable: [string, Tensor][];
  ema: Map<string, Tensor> | null;
  opt: AdamW;
}

// Where a resumed run starts, and the optimizer's hyper-parameters rank 0 read with it (handed to the other ranks).
export interface Resumed {
  step: number;
  micro: number;
  optimizer: { step: number; groups: ReturnType<AdamW['stateDict']>['groups'] };
}

// --resume (rank 0): weights, EMA, optimizer and data position from the newest intact checkpoint. Returns where it
// resumed and the optimizer's hyper-parameters (null: none to resume from).
export function resumeTrainState(ckptDir: string, s: TrainState, log: (l: string) => void): Resumed | null {
  const ck = loadLatestCheckpoint(ckptDir, log);
  if (!ck) {
    log('no checkpoint to resume from: starting at step 0');
    return null;
  }
  const names = new Set(Object.keys(ck.weights));
  const mine = new Set(s.trainable.map(([n]) => n));
  const diff = [...names].filter((n) => !mine.has(n)).concat([...mine].filter((n) => !names.has(n)));
  if (diff.length) throw new Error(`${ck.dir} does not fit this config's trainable parameters (e.g. ${diff[0]})`);
  noGrad(() => {
    for (const [n, p] of s.trainable) p.copy_(ck.weights[n]!);
    if (s.ema && ck.ema) for (const [n, t] of s.ema) t.copy_(ck.ema[n]!);
  });
  s.opt.loadStateDict({ step: ck.state.optimizer.step, groups: ck.state.optimizer.groups, tensors: ck.optimizer });
  log(`resumed from ${ck.dir} (step ${ck.state.step})`);
  return { step: ck.state.step, micro: ck.state.microStep, optimizer: ck.state.optimizer };
}

// A checkpoint of the state after `at.step` (`at.micro` micro-batches consumed), the oldest pruned past `at.keep`.
export function saveTrainState(
  ckptDir: string,
  s: TrainState,
  at: { step: number; micro: number; keep: number; extra: Record<string, unknown> },
): void {
  const opt = s.opt.stateDict();
  saveCheckpoint(ckptDir, {
    weights: Object.fromEntries(s.trainable),
    ema: s.ema ? Object.fromEntries(s.ema) : null,
    optimizer: opt.tensors,
    state: { step: at.step, microStep: at.micro, optimizer: { step: opt.step, groups: opt.groups }, extra: at.extra },
  });
  pruneCheckpoints(ckptDir, at.keep);
}
