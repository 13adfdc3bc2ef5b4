// mumu's tensor engine: libtorch through a project-owned N-API binding.
export { Tensor, type Scalar, type TensorOrScalar } from './tensor.ts';
export * from './factories.ts';
export * from './ops.ts';
export { tidy, keep, noGrad, enableGrad, isGradEnabled, liveNativeBytes, withNativeBudget } from './scope.ts';
export { type DType, ITEMSIZE, isFloating } from './dtype.ts';
export * as F from './functional.ts';
export { AdamW, clipGradNorm, zeroGrad, type ParamGroup, type AdamWStateDict } from './optim.ts';
export * from './safetensors.ts';
export * as dist from './distributed.ts';
