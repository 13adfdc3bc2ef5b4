// Free functions over several tensors (cat, stack, where, products) and runtime settings.
import { N } from './native.ts';
import { Tensor, type TensorOrScalar } from './tensor.ts';

const h = (x: TensorOrScalar) => (x instanceof Tensor ? x.h : x);

export const cat = (ts: Tensor[], dim = 0) =>
  new Tensor(
    N.cat(
      ts.map((t) => t.h),
      dim,
    ),
  );
export const stack = (ts: Tensor[], dim = 0) =>
  new Tensor(
    N.stack(
      ts.map((t) => t.h),
      dim,
    ),
  );
export const where = (cond: Tensor, a: TensorOrScalar, b: TensorOrScalar) => new Tensor(N.where(cond.h, h(a), h(b)));
export const matmul = (a: Tensor, b: Tensor) => a.matmul(b);
export const bmm = (a: Tensor, b: Tensor) => a.bmm(b);
// addmm: beta * bias + alpha * (a @ b)
export const addmm = (bias: Tensor, a: Tensor, b: Tensor, beta = 1, alpha = 1) =>
  new Tensor(N.addmm(bias.h, a.h, b.h, beta, alpha));
export const einsum = (equation: string, ...ts: Tensor[]) =>
  new Tensor(
    N.einsum(
      equation,
      ts.map((t) => t.h),
    ),
  );
export const maximum = (a: Tensor, b: TensorOrScalar) => a.maximum(b);
export const minimum = (a: Tensor, b: TensorOrScalar) => a.minimum(b);
export const equal = (a: Tensor, b: Tensor): boolean => N.equal(a.h, b.h);
export const allclose = (a: Tensor, b: Tensor, rtol = 1e-5, atol = 1e-8): boolean => N.allclose(a.h, b.h, rtol, atol);

export const setNumThreads = (n: number): void => N.setNumThreads(n);
export const getNumThreads = (): number => N.getNumThreads();
export const torchVersion: string = N.torchVersion;
// libtorch's build configuration (BLAS, OpenMP, CPU capability), as torch.__config__.show().
export const showConfig = (): string => N.showConfig();

export const cuda = {
  isAvailable: (): boolean => N.cudaDeviceCount() > 0,
  deviceCount: (): number => N.cudaDeviceCount(),
  synchronize: (): void => N.cudaSynchronize(),
  // whether this build of the binding was linked against libtorch_cuda at all
  compiled: N.withCuda as boolean,
};
