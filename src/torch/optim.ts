// AdamW (decoupled weight decay) with per-group hyper-parameters, gradient clipping and exact state save/restore.
// The update runs in C++ (native/src/optim.cc): one call per group; bench/engine.ts measures it against the same
// update composed from tensor ops in JS.
import { N } from './native.ts';
import { Tensor } from './tensor.ts';
import { zerosLike } from './factories.ts';
import { keep } from './scope.ts';

export interface ParamGroup {
  params: Tensor[];
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  name?: string;
}

interface GroupState extends Required<Omit<ParamGroup, 'name'>> {
  name: string;
  expAvg: Tensor[];
  expAvgSq: Tensor[];
}

export interface AdamWStateDict {
  step: number;
  groups: { name: string; lr: number; betas: [number, number]; eps: number; weightDecay: number; size: number }[];
  tensors: Record<string, Tensor>; // `${group}.${index}.exp_avg` / `.exp_avg_sq`
}

export class AdamW {
  step = 0;
  readonly groups: GroupState[];

  // Defaults as torch.optim.AdamW: betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
  constructor(groups: ParamGroup[] | Tensor[], defaults: Partial<Omit<ParamGroup, 'params'>> = {}) {
    const list: ParamGroup[] =
      groups.length && groups[0] instanceof Tensor
        ? [{ params: groups as Tensor[], lr: defaults.lr ?? 1e-3 }]
        : (groups as ParamGroup[]);
    this.groups = list.map((g, i) => ({
      params: g.params,
      lr: g.lr ?? defaults.lr ?? 1e-3,
      betas: g.betas ?? defaults.betas ?? [0.9, 0.999],
      eps: g.eps ?? defaults.eps ?? 1e-8,
      weightDecay: g.weightDecay ?? defaults.weightDecay ?? 0.01,
      name: g.name ?? `group${i}`,
      expAvg: g.params.map((p) => keep(zerosLike(p).detach())),
      expAvgSq: g.params.map((p) => keep(zerosLike(p).detach())),
    }));
  }

  stepOnce(): void {
    this.step += 1;
    for (const g of this.groups) {
      N.adamwStep(
        g.params.map((p) => p.h),
        g.expAvg.map((t) => t.h),
        g.expAvgSq.map((t) => t.h),
        this.step,
        g.lr,
        g.betas[0],
        g.betas[1],
        g.eps,
        g.weightDecay,
      );
    }
  }

  zeroGrad(): void {
    for (const g of this.groups) N.zeroGrad(g.params.map((p) => p.h));
  }

  stateDict(): AdamWStateDict {
    const tensors: Record<string, Tensor> = {};
    for (const g of this.groups) {
      g.expAvg.forEach((t, i) => (tensors[`${g.name}.${i}.exp_avg`] = t));
      g.expAvgSq.forEach((t, i) => (tensors[`${g.name}.${i}.exp_avg_sq`] = t));
    }
    const groups = this.groups.map((g) => ({
      name: g.name,
      lr: g.lr,
      betas: g.betas,
      eps: g.eps,
      weightDecay: g.weightDecay,
      size: g.params.length,
    }));
    return { step: this.step, groups, tensors };
  }

  loadStateDict(sd: AdamWStateDict): void {
    if (sd.groups.length !== this.groups.length)
      throw new Error(`optimizer state has ${sd.groups.length} groups, optimizer has ${this.groups.length}`);
    sd.groups.forEach((s, gi) => {
      const g = this.groups[gi]!;
      if (s.size !== g.params.length)
        throw new Error(`optimizer group '${g.name}': state has ${s.size} params, group has ${g.params.length}`);
      Object.assign(g, { lr: s.lr, betas: s.betas, eps: s.eps, weightDecay: s.weightDecay });
      for (let i = 0; i < g.params.length; i++) {
        for (const [key, list] of [
          ['exp_avg', g.expAvg],
          ['exp_avg_sq', g.expAvgSq],
        ] as const) {
          const src = sd.tensors[`${s.name}.${i}.${key}`];
          if (!src) throw new Error(`optimizer state is missing '${s.name}.${i}.${key}'`);
          if (src.shape.join() !== list[i]!.shape.join())
            throw new Error(
              `optimizer state '${s.name}.${i}.${key}' has shape [${src.shape}], parameter has [${list[i]!.shape}]`,
            );
          list[i]!.copy_(src);
        }
      }
    });
    this.step = sd.step;
  }
}

// Scales all gradients so their joint norm is at most maxNorm; returns the norm before clipping.
export const clipGradNorm = (params: Tensor[], maxNorm: number, normType = 2): number =>
  N.clipGradNorm(
    params.map((p) => p.h),
    maxNorm,
    normType,
  );

export const zeroGrad = (params: Tensor[]): void => N.zeroGrad(params.map((p) => p.h));
