// Classifier-free guidance (Ho & Salimans 2022, eq. 6; MUMU samples with it, paper section 2.1), as a wrapper that
// turns a conditional model into the plain model(x, t) -> prediction the samplers see (guidance is linear, so it is
// the same on eps or v).
import { Tensor, F, cat, ones, tidy, keep } from '../torch/index.ts';
import type { DenoiseModel } from './ddim.ts';

// What the UNet cross-attends to: (B, T, D) states and an optional (B, T) mask (1 = a real token).
export interface Conditioning {
  context: Tensor;
  mask?: Tensor | null;
}

export type CondModel = (x: Tensor, t: number, cond: Conditioning) => Tensor;

function expandBatch(t: Tensor, b: number): Tensor {
  if (t.size(0) === b) return t;
  if (t.size(0) === 1) return t.expand(b, ...t.shape.slice(1));
  throw new Error(`conditioning batch ${t.size(0)} does not match ${b}`);
}

// Concatenates conditionings along the batch, padding shorter sequences with zeros and a 0 mask.
export function catConditioning(parts: Conditioning[], batch: number): Conditioning {
  const T = Math.max(...parts.map((p) => p.context.size(1)));
  const needMask = parts.some((p) => p.mask || p.context.size(1) !== T);
  const ctx: Tensor[] = [];
  const masks: Tensor[] = [];
  for (const p of parts) {
    const pad = T - p.context.size(1);
    ctx.push(expandBatch(pad ? F.pad(p.context, [0, 0, 0, pad]) : p.context, batch));
    if (needMask) {
      const m = p.mask ?? ones([p.context.size(0), p.context.size(1)], { dtype: 'float32', device: p.context.device });
      masks.push(expandBatch(pad ? F.pad(m.to('float32'), [0, pad]) : m.to('float32'), batch));
    }
  }
  return { context: cat(ctx, 0), mask: needMask ? cat(masks, 0) : null };
}

// eps = eps_uncond + scale * (eps_cond - eps_uncond). Both predictions come from one batched call on
// [uncond, cond], which is the point of the wrapper: one UNet call per step. Scale 1 needs only the conditional
// model and scale 0 only the unconditional one, so those skip the other half entirely.
export function classifierFreeGuidance(
  model: CondModel,
  cond: Conditioning,
  uncond: Conditioning,
  scale: number,
): DenoiseModel {
  if (scale === 1) return (x, t) => model(x, t, catConditioning([cond], x.size(0)));
  if (scale === 0) return (x, t) => model(x, t, catConditioning([uncond], x.size(0)));
  // Built once per batch size, not per step. The sampler calls us inside its per-step tidy(), which would free
  // anything made here, so the batched conditioning is kept outside every scope (the GC frees it with the closure).
  let both: Conditioning | undefined;
  let forBatch = -1;
  return (x, t) => {
    const b = x.size(0);
    if (b !== forBatch) {
      const c = catConditioning([uncond, cond], b);
      both = { context: keep(c.context), mask: c.mask ? keep(c.mask) : null };
      forBatch = b;
    }
    return tidy(() => {
      const [epsU, epsC] = model(cat([x, x], 0), t, both!).chunk(2, 0);
      return epsU!.add(epsC!.sub(epsU!).mul(scale));
    });
  };
}
