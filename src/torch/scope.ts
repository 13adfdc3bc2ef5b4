// Memory scopes and grad mode. Tensors are freed by the GC (their native size is reported to V8), but a training
// loop should not wait for it: `tidy(fn)` frees every tensor created inside fn except what fn returns.
import v8 from 'node:v8';
import vm from 'node:vm';
import { N } from './native.ts';

interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

const scopes: Set<Disposable>[] = [];

export function track(t: Disposable): void {
  if (scopes.length) scopes[scopes.length - 1]!.add(t);
  if (budget && N.liveBytes() > budget.limit) {
    const message = budget.message;
    budget = null;
    throw new Error(message);
  }
  if (++created % 256 === 0) relieveMemoryPressure();
}

// V8 is told each tensor's native size, but in a tight synchronous loop that allocates few JS objects its
// incremental GC never finishes, and tensors that escaped every scope pile up (measured: 900 MB in 300 steps).
// So when live native bytes pass a watermark, run a full GC; the watermark follows what survives it.
const MIN_WATERMARK = 64 * 2 ** 20;
let created = 0;
let watermark = MIN_WATERMARK;
let fullGc: (() => void) | undefined;
function relieveMemoryPressure(): void {
  if (N.liveBytes() < watermark) return;
  if (!fullGc) {
    v8.setFlagsFromString('--expose-gc');
    fullGc = vm.runInNewContext('gc') as () => void;
  }
  fullGc();
  watermark = Math.max(MIN_WATERMARK, 2 * N.liveBytes());
}

export const liveNativeBytes = (): number => N.liveBytes();

// Runs fn, failing with `message` as soon as live native memory passes `limit` bytes: a guard for work whose size
// comes from user input (a model built from a config.json that does not match its weights would otherwise grow
// until the OS kills the process).
let budget: { limit: number; message: string } | null = null;
export function withNativeBudget<T>(limit: number, message: string, fn: () => T): T {
  const outer = budget;
  budget = { limit, message };
  try {
    return fn();
  } finally {
    budget = outer;
  }
}

// Keeps a tensor alive past the scope it was created in (e.g. a value stored on a module).
export function keep<T extends Disposable>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<unknown>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if ('dispose' in value && 'isDisposed' in value) out.add(value);
  else if (Array.isArray(value)) for (const v of value) collect(v, out, depth + 1);
  else if (value.constructor === Object) for (const v of Object.values(value)) collect(v, out, depth + 1);
}

export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise)
    throw new Error('tidy() takes a synchronous function; await inside it frees too early');
  const kept = new Set<unknown>();
  collect(result, kept);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (kept.has(t))
      parent?.add(t); // returned tensors belong to the enclosing scope
    else t.dispose();
  }
  return result;
}

export function noGrad<T>(fn: () => T): T {
  const prev = N.setGradEnabled(false);
  try {
    return fn();
  } finally {
    N.setGradEnabled(prev);
  }
}

export function enableGrad<T>(fn: () => T): T {
  const prev = N.setGradEnabled(true);
  try {
    return fn();
  } finally {
    N.setGradEnabled(prev);
  }
}

export const isGradEnabled = (): boolean => N.isGradEnabled();
