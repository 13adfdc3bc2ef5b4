// Creating tensors: from JS data, constant factories, ranges, and seeded random streams.
import { N, type NativeGenerator } from './native.ts';
import { type DType, dtypeCode, dtypeOfTypedArray, type TypedArray } from './dtype.ts';
import { Tensor } from './tensor.ts';

export interface TensorOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

const code = (d: DType | undefined, fallback: DType = 'float32') => dtypeCode(d ?? fallback);
const finish = (t: Tensor, o: TensorOptions) => (o.requiresGrad ? t.requiresGrad_(true) : t);

// An explicit random stream (the CPU generator; samples are moved to the target device, so a seed gives the same
// numbers everywhere). Its state can be saved and restored exactly, for resumable training.
export class Generator {
  readonly h: NativeGenerator;
  constructor(seed = 0) {
    this.h = new N.NativeGenerator(seed);
  }
  getState(): Tensor {
    return new Tensor(N.generatorGetState(this.h));
  }
  setState(state: Tensor): this {
    N.generatorSetState(this.h, state.h);
    return this;
  }
}

type Nested = number | boolean | Nested[];

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let x: Nested = data;
  while (Array.isArray(x)) {
    shape.push(x.length);
    x = x[0] as Nested;
  }
  return shape;
}

// tensor([[1, 2], [3, 4]]) or tensor(float32Array, { shape: [2, 2] }). Copies the data once.
export function tensor(data: Nested | TypedArray, opts: TensorOptions & { shape?: number[] } = {}): Tensor {
  let arr: TypedArray;
  let shape: number[];
  let dtype: DType;
  if (ArrayBuffer.isView(data)) {
    arr = data as TypedArray;
    dtype = opts.dtype === 'float16' || opts.dtype === 'bfloat16' ? opts.dtype : dtypeOfTypedArray(arr);
    shape = opts.shape ?? [arr.length];
  } else {
    shape = inferShape(data as Nested);
    const flat = Array.isArray(data)
      ? ((data as Nested[]).flat(Infinity as 1) as (number | boolean)[])
      : [data as number];
    const expected = shape.reduce((a, b) => a * b, 1);
    if (flat.length !== expected)
      throw new Error(
        `tensor(): ragged nested array (shape ${JSON.stringify(shape)} needs ${expected} values, got ${flat.length})`,
      );
    const isBool = flat.length > 0 && typeof flat[0] === 'boolean';
    dtype = opts.dtype ?? (isBool ? 'bool' : 'float32');
    const values = flat.map(Number);
    if (dtype === 'int64') arr = BigInt64Array.from(values, (v) => BigInt(Math.trunc(v)));
    else if (dtype === 'float64') arr = Float64Array.from(values);
    else if (dtype === 'int32') arr = Int32Array.from(values);
    else if (dtype === 'uint8' || dtype === 'bool') arr = Uint8Array.from(values);
    else arr = Float64Array.from(values);
    if (shape.length === 0 && !Array.isArray(data)) shape = [];
  }
  const storedAs =
    arr instanceof Float64Array
      ? 'float64'
      : dtype === 'bool'
        ? 'bool'
        : dtype === 'float16' || dtype === 'bfloat16'
          ? dtype
          : dtypeOfTypedArray(arr);
  let t = new Tensor(N.fromBuffer(arr, shape, dtypeCode(storedAs)));
  if (storedAs !== dtype) t = t.to(dtype);
  if (opts.device && opts.device !== 'cpu') t = t.to(opts.device);
  return finish(t, opts);
}

// A tensor over raw little-endian bytes (safetensors payloads, float16/bfloat16 bits).
export function fromBytes(bytes: Uint8Array, shape: number[], dtype: DType): Tensor {
  return new Tensor(N.fromBuffer(bytes, shape, dtypeCode(dtype)));
}

export const zeros = (shape: number[], o: TensorOptions = {}) =>
  finish(new Tensor(N.zeros(shape, code(o.dtype), o.device ?? null)), o);
export const ones = (shape: number[], o: TensorOptions = {}) =>
  finish(new Tensor(N.ones(shape, code(o.dtype), o.device ?? null)), o);
export const empty = (shape: number[], o: TensorOptions = {}) =>
  finish(new Tensor(N.empty(shape, code(o.dtype), o.device ?? null)), o);
export const full = (shape: number[], value: number | boolean, o: TensorOptions = {}) =>
  finish(
    new Tensor(N.full(shape, value, code(o.dtype, typeof value === 'boolean' ? 'bool' : 'float32'), o.device ?? null)),
    o,
  );
export const zerosLike = (t: Tensor, o: TensorOptions = {}) =>
  zeros([...t.shape], { dtype: t.dtype, device: t.device, ...o });
export const onesLike = (t: Tensor, o: TensorOptions = {}) =>
  ones([...t.shape], { dtype: t.dtype, device: t.device, ...o });

// arange(end) or arange(start, end, step); integer arguments give int64 as in PyTorch.
export function arange(startOrEnd: number, end?: number, step = 1, o: TensorOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  const ints = [s, e, step].every(Number.isInteger);
  return finish(new Tensor(N.arange(s, e, step, code(o.dtype, ints ? 'int64' : 'float32'), o.device ?? null)), o);
}
export const linspace = (start: number, end: number, steps: number, o: TensorOptions = {}) =>
  finish(new Tensor(N.linspace(start, end, steps, code(o.dtype), o.device ?? null)), o);
export const eye = (n: number, m = n, o: TensorOptions = {}) =>
  finish(new Tensor(N.eye(n, m, code(o.dtype), o.device ?? null)), o);

export interface RandomOptions extends TensorOptions {
  generator?: Generator;
}
const gen = (o: RandomOptions) => o.generator?.h ?? null;
export const randn = (shape: number[], o: RandomOptions = {}) =>
  finish(new Tensor(N.randn(shape, gen(o), code(o.dtype), o.device ?? null)), o);
export const rand = (shape: number[], o: RandomOptions = {}) =>
  finish(new Tensor(N.rand(shape, gen(o), code(o.dtype), o.device ?? null)), o);
export const randint = (low: number, high: number, shape: number[], o: RandomOptions = {}) =>
  new Tensor(N.randint(low, high, shape, gen(o), code(o.dtype, 'int64'), o.device ?? null));
export const randperm = (n: number, o: RandomOptions = {}) => new Tensor(N.randperm(n, gen(o), o.device ?? null));
export const multinomial = (probs: Tensor, n: number, replacement = false, o: RandomOptions = {}) =>
  new Tensor(N.multinomial(probs.h, n, replacement, gen(o)));
export const randnLike = (t: Tensor, o: RandomOptions = {}) =>
  randn([...t.shape], { dtype: t.dtype, device: t.device, ...o });

// In-place initialisers (used by module init), drawing from an explicit generator.
export function normal_(t: Tensor, mean = 0, std = 1, generator?: Generator): Tensor {
  N.normal_(t.h, mean, std, generator?.h ?? null);
  return t;
}
export function uniform_(t: Tensor, low = 0, high = 1, generator?: Generator): Tensor {
  N.uniform_(t.h, low, high, generator?.h ?? null);
  return t;
}

// The global generator, for code that passes none (PyTorch's torch.manual_seed).
export const manualSeed = (seed: number): void => N.manualSeed(seed);
