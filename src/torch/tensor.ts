// The Tensor: a typed, camelCase face on a libtorch at::Tensor. Every method is one call into the binding.
import { N, type NativeTensor } from './native.ts';
import { type DType, dtypeCode, dtypeFromCode, typedArrayView, type TypedArray } from './dtype.ts';
import { track } from './scope.ts';
import { formatTensor } from './format.ts';

export type Scalar = number | boolean;
export type TensorOrScalar = Tensor | Scalar;
type Dims = number | number[];

const h = (x: TensorOrScalar): NativeTensor | Scalar => (x instanceof Tensor ? x.h : x);
const dimList = (d: Dims | undefined): number[] | null => (d === undefined ? null : typeof d === 'number' ? [d] : d);

export class Tensor {
  readonly h: NativeTensor;
  #shape: readonly number[] | undefined;

  constructor(handle: NativeTensor) {
    this.h = handle;
    track(this);
  }

  // ---- metadata ----
  get shape(): readonly number[] {
    return (this.#shape ??= Object.freeze(N.shape(this.h) as number[]));
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  size(dim: number): number {
    return this.shape[dim < 0 ? dim + this.ndim : dim]!;
  }
  get dtype(): DType {
    return dtypeFromCode(N.dtype(this.h));
  }
  get device(): string {
    return N.device(this.h);
  }
  get isContiguous(): boolean {
    return N.isContiguous(this.h);
  }
  get isDisposed(): boolean {
    return N.isDisposed(this.h);
  }
  dispose(): void {
    N.dispose(this.h);
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return N.requiresGrad(this.h);
  }
  set requiresGrad(v: boolean) {
    N.setRequiresGrad(this.h, v);
  }
  requiresGrad_(v = true): this {
    N.setRequiresGrad(this.h, v);
    return this;
  }
  get isLeaf(): boolean {
    return N.isLeaf(this.h);
  }
  get grad(): Tensor | null {
    const g = N.grad(this.h);
    return g ? new Tensor(g) : null;
  }
  set grad(g: Tensor | null) {
    N.setGrad(this.h, g ? g.h : null);
  }
  backward(grad?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    N.backward(this.h, grad ? grad.h : null, opts.retainGraph ?? false);
  }
  detach(): Tensor {
    return new Tensor(N.detach(this.h));
  }

  // ---- conversion ----
  to(target: DType | string | { dtype?: DType; device?: string }): Tensor {
    let dtype: DType | undefined, device: string | undefined;
    if (typeof target === 'object') ({ dtype, device } = target);
    else if (target === 'cpu' || target.startsWith('cuda') || target.startsWith('mps')) device = target;
    else dtype = target as DType;
    return new Tensor(N.to(this.h, dtype ? dtypeCode(dtype) : null, device ?? null));
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  long(): Tensor {
    return this.to('int64');
  }
  int(): Tensor {
    return this.to('int32');
  }
  bool(): Tensor {
    return this.to('bool');
  }
  cpu(): Tensor {
    return this.to({ device: 'cpu' });
  }
  contiguous(): Tensor {
    return new Tensor(N.contiguous(this.h));
  }
  clone(): Tensor {
    return new Tensor(N.clone(this.h));
  }
  // A copy of the elements as a typed array (float16/bfloat16 as raw Uint16 bits). Never aliases tensor memory.
  toArray(): TypedArray {
    return typedArrayView(this.dtype, N.toBuffer(this.h));
  }
  // The raw little-endian bytes (safetensors, PNG encoding).
  toBytes(): Uint8Array {
    return new Uint8Array(N.toBuffer(this.h));
  }
  // Nested JS arrays of numbers (int64 as numbers), like tensor.tolist().
  toList(): unknown {
    const t = this.dtype === 'float16' || this.dtype === 'bfloat16' ? this.float() : this;
    const flat = Array.from(t.toArray() as ArrayLike<number | bigint>, (v) =>
      typeof v === 'bigint' ? Number(v) : this.dtype === 'bool' ? v !== 0 : v,
    );
    const build = (dim: number, off: number): unknown => {
      if (dim === this.ndim) return flat[off];
      const stride = this.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }
  item(): number {
    return N.item(this.h);
  }
  toString(): string {
    return formatTensor(this);
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  // ---- elementwise ----
  add(o: TensorOrScalar): Tensor {
    return new Tensor(N.add(this.h, h(o)));
  }
  sub(o: TensorOrScalar): Tensor {
    return new Tensor(N.sub(this.h, h(o)));
  }
  mul(o: TensorOrScalar): Tensor {
    return new Tensor(N.mul(this.h, h(o)));
  }
  div(o: TensorOrScalar): Tensor {
    return new Tensor(N.div(this.h, h(o)));
  }
  pow(o: TensorOrScalar): Tensor {
    return new Tensor(N.pow(this.h, h(o)));
  }
  maximum(o: TensorOrScalar): Tensor {
    return new Tensor(N.maximum(this.h, h(o)));
  }
  minimum(o: TensorOrScalar): Tensor {
    return new Tensor(N.minimum(this.h, h(o)));
  }
  remainder(o: TensorOrScalar): Tensor {
    return new Tensor(N.remainder(this.h, h(o)));
  }
  eq(o: TensorOrScalar): Tensor {
    return new Tensor(N.eq(this.h, h(o)));
  }
  ne(o: TensorOrScalar): Tensor {
    return new Tensor(N.ne(this.h, h(o)));
  }
  lt(o: TensorOrScalar): Tensor {
    return new Tensor(N.lt(this.h, h(o)));
  }
  le(o: TensorOrScalar): Tensor {
    return new Tensor(N.le(this.h, h(o)));
  }
  gt(o: TensorOrScalar): Tensor {
    return new Tensor(N.gt(this.h, h(o)));
  }
  ge(o: TensorOrScalar): Tensor {
    return new Tensor(N.ge(this.h, h(o)));
  }
  logicalAnd(o: TensorOrScalar): Tensor {
    return new Tensor(N.logicalAnd(this.h, h(o)));
  }
  logicalOr(o: TensorOrScalar): Tensor {
    return new Tensor(N.logicalOr(this.h, h(o)));
  }
  logicalNot(): Tensor {
    return new Tensor(N.logicalNot(this.h));
  }
  exp(): Tensor {
    return new Tensor(N.exp(this.h));
  }
  log(): Tensor {
    return new Tensor(N.log(this.h));
  }
  sqrt(): Tensor {
    return new Tensor(N.sqrt(this.h));
  }
  rsqrt(): Tensor {
    return new Tensor(N.rsqrt(this.h));
  }
  abs(): Tensor {
    return new Tensor(N.abs(this.h));
  }
  neg(): Tensor {
    return new Tensor(N.neg(this.h));
  }
  tanh(): Tensor {
    return new Tensor(N.tanh(this.h));
  }
  sigmoid(): Tensor {
    return new Tensor(N.sigmoid(this.h));
  }
  silu(): Tensor {
    return new Tensor(N.silu(this.h));
  }
  relu(): Tensor {
    return new Tensor(N.relu(this.h));
  }
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return new Tensor(N.gelu(this.h, approximate));
  }
  softplus(beta = 1, threshold = 20): Tensor {
    return new Tensor(N.softplus(this.h, beta, threshold));
  }
  sin(): Tensor {
    return new Tensor(N.sin(this.h));
  }
  cos(): Tensor {
    return new Tensor(N.cos(this.h));
  }
  erf(): Tensor {
    return new Tensor(N.erf(this.h));
  }
  floor(): Tensor {
    return new Tensor(N.floor(this.h));
  }
  ceil(): Tensor {
    return new Tensor(N.ceil(this.h));
  }
  round(): Tensor {
    return new Tensor(N.round(this.h));
  }
  sign(): Tensor {
    return new Tensor(N.sign(this.h));
  }
  reciprocal(): Tensor {
    return new Tensor(N.reciprocal(this.h));
  }
  square(): Tensor {
    return new Tensor(N.square(this.h));
  }
  log1p(): Tensor {
    return new Tensor(N.log1p(this.h));
  }
  expm1(): Tensor {
    return new Tensor(N.expm1(this.h));
  }
  isnan(): Tensor {
    return new Tensor(N.isnan(this.h));
  }
  isfinite(): Tensor {
    return new Tensor(N.isfinite(this.h));
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return new Tensor(N.clamp(this.h, min ?? null, max ?? null));
  }
  maskedFill(mask: Tensor, value: TensorOrScalar): Tensor {
    return new Tensor(N.maskedFill(this.h, mask.h, h(value)));
  }
  maskedScatter(mask: Tensor, source: Tensor): Tensor {
    return new Tensor(N.maskedScatter(this.h, mask.h, source.h));
  }

  // ---- in place (optimisers, init, EMA); return this ----
  add_(o: TensorOrScalar): this {
    N.add_(this.h, h(o));
    return this;
  }
  sub_(o: TensorOrScalar): this {
    N.sub_(this.h, h(o));
    return this;
  }
  mul_(o: TensorOrScalar): this {
    N.mul_(this.h, h(o));
    return this;
  }
  div_(o: TensorOrScalar): this {
    N.div_(this.h, h(o));
    return this;
  }
  copy_(src: Tensor): this {
    N.copy_(this.h, src.h);
    return this;
  }
  fill_(v: Scalar): this {
    N.fill_(this.h, v);
    return this;
  }
  zero_(): this {
    N.zero_(this.h);
    return this;
  }
  lerp_(end: Tensor, weight: number): this {
    N.lerp_(this.h, end.h, weight);
    return this;
  }

  // ---- reductions ----
  sum(dim?: Dims, keepdim = false, dtype?: DType): Tensor {
    return new Tensor(N.sum(this.h, dimList(dim), keepdim, dtype ? dtypeCode(dtype) : null));
  }
  mean(dim?: Dims, keepdim = false): Tensor {
    return new Tensor(N.mean(this.h, dimList(dim), keepdim));
  }
  amax(dim?: Dims, keepdim = false): Tensor {
    return new Tensor(N.amax(this.h, dimList(dim), keepdim));
  }
  amin(dim?: Dims, keepdim = false): Tensor {
    return new Tensor(N.amin(this.h, dimList(dim), keepdim));
  }
  max(): Tensor;
  max(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  max(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    if (dim === undefined) return this.amax();
    const [values, indices] = N.maxDim(this.h, dim, keepdim);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  min(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    if (dim === undefined) return this.amin();
    const [values, indices] = N.minDim(this.h, dim, keepdim);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  // correction=1 is Bessel's (unbiased) estimate, as torch.var's default.
  var(dim?: Dims, { correction = 1, keepdim = false } = {}): Tensor {
    return new Tensor(N.var(this.h, dimList(dim), correction, keepdim));
  }
  std(dim?: Dims, { correction = 1, keepdim = false } = {}): Tensor {
    return new Tensor(N.std(this.h, dimList(dim), correction, keepdim));
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(N.argmax(this.h, dim ?? null, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return new Tensor(N.argmin(this.h, dim ?? null, keepdim));
  }
  logsumexp(dim: Dims, keepdim = false): Tensor {
    return new Tensor(N.logsumexp(this.h, dimList(dim), keepdim));
  }
  cumsum(dim: number): Tensor {
    return new Tensor(N.cumsum(this.h, dim));
  }
  norm(p = 2, dim?: Dims, keepdim = false): Tensor {
    return new Tensor(N.norm(this.h, p, dimList(dim), keepdim));
  }
  all(): Tensor {
    return new Tensor(N.all(this.h));
  }
  any(): Tensor {
    return new Tensor(N.any(this.h));
  }
  topk(k: number, dim = -1, largest = true): { values: Tensor; indices: Tensor } {
    const [values, indices] = N.topk(this.h, k, dim, largest);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = N.sort(this.h, dim, descending);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }

  // ---- shape ----
  reshape(...shape: number[]): Tensor {
    return new Tensor(N.reshape(this.h, shape));
  }
  view(...shape: number[]): Tensor {
    return new Tensor(N.view(this.h, shape));
  }
  permute(...dims: number[]): Tensor {
    return new Tensor(N.permute(this.h, dims));
  }
  transpose(d0: number, d1: number): Tensor {
    return new Tensor(N.transpose(this.h, d0, d1));
  }
  get T(): Tensor {
    return this.transpose(-2, -1);
  }
  flatten(start = 0, end = -1): Tensor {
    return new Tensor(N.flatten(this.h, start, end));
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(N.squeeze(this.h, dim ?? null));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(N.unsqueeze(this.h, dim));
  }
  expand(...shape: number[]): Tensor {
    return new Tensor(N.expand(this.h, shape));
  }
  repeat(...reps: number[]): Tensor {
    return new Tensor(N.repeat(this.h, reps));
  }
  split(sizeOrSizes: number | number[], dim = 0): Tensor[] {
    return (N.split(this.h, sizeOrSizes, dim) as NativeTensor[]).map((t) => new Tensor(t));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return (N.chunk(this.h, chunks, dim) as NativeTensor[]).map((t) => new Tensor(t));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(N.narrow(this.h, dim, start, length));
  }
  // Python's t[start:end:step] along dim; end may be omitted or negative.
  slice(dim: number, start = 0, end?: number, step = 1): Tensor {
    return new Tensor(N.slice(this.h, dim, start, end ?? null, step));
  }
  select(dim: number, index: number): Tensor {
    return new Tensor(N.select(this.h, dim, index));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(N.indexSelect(this.h, dim, index.h));
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(N.gather(this.h, dim, index.h));
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return new Tensor(N.scatterAdd(this.h, dim, index.h, src.h));
  }
  // Advanced indexing t[i0, i1, ...] with index tensors, and its out-of-place assignment.
  index(indices: Tensor[]): Tensor {
    return new Tensor(
      N.index(
        this.h,
        indices.map((t) => t.h),
      ),
    );
  }
  indexPut(indices: Tensor[], values: Tensor, accumulate = false): Tensor {
    return new Tensor(
      N.indexPut(
        this.h,
        indices.map((t) => t.h),
        values.h,
        accumulate,
      ),
    );
  }
  repeatInterleave(repeats: number, dim: number): Tensor {
    return new Tensor(N.repeatInterleave(this.h, repeats, dim));
  }
  flip(...dims: number[]): Tensor {
    return new Tensor(N.flip(this.h, dims));
  }
  roll(shifts: Dims, dims: Dims): Tensor {
    return new Tensor(N.roll(this.h, dimList(shifts), dimList(dims)));
  }
  tril(k = 0): Tensor {
    return new Tensor(N.tril(this.h, k));
  }
  triu(k = 0): Tensor {
    return new Tensor(N.triu(this.h, k));
  }

  // ---- products ----
  matmul(o: Tensor): Tensor {
    return new Tensor(N.matmul(this.h, o.h));
  }
  bmm(o: Tensor): Tensor {
    return new Tensor(N.bmm(this.h, o.h));
  }
  softmax(dim: number): Tensor {
    return new Tensor(N.softmax(this.h, dim));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(N.logSoftmax(this.h, dim));
  }
}
