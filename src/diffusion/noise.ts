// Forward noising and the training objective (paper section 2.1: x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps,
// MSE on the predicted eps). v-prediction (Salimans & Ho 2022, section 4) is the option SD 2.x uses.
import { Tensor, tensor, randint, F, type Generator } from '../torch/index.ts';
import type { NoiseSchedule, PredictionType } from './schedule.ts';
import type { EpsModel } from './ddim.ts';

// Per-sample coefficients gathered at timesteps t and shaped (B, 1, 1, ...) to broadcast over x.
function coef(values: ArrayLike<number>, t: Tensor | number[], like: Tensor): Tensor {
  const idx = Array.isArray(t) ? t : (t.toList() as number[]);
  if (idx.length !== like.size(0)) throw new Error(`${idx.length} timesteps for a batch of ${like.size(0)}`);
  const picked = idx.map((i) => {
    if (!Number.isInteger(i) || i < 0 || i >= values.length) throw new Error(`timestep ${i} outside 0..${values.length - 1}`);
    return values[i]!;
  });
  return tensor(Float32Array.from(picked), { shape: [idx.length, ...like.shape.slice(1).map(() => 1)] }).to({ dtype: like.dtype, device: like.device });
}

const sqrtAb = (s: NoiseSchedule) => Array.from(s.alphasCumprod, Math.sqrt);
const sqrtOneMinusAb = (s: NoiseSchedule) => Array.from(s.alphasCumprod, (a) => Math.sqrt(1 - a));

// q(x_t | x_0), DDPM eq. 4 in its reparameterised form.
export function addNoise(s: NoiseSchedule, x0: Tensor, noise: Tensor, t: Tensor | number[]): Tensor {
  return x0.mul(coef(sqrtAb(s), t, x0)).add(noise.mul(coef(sqrtOneMinusAb(s), t, x0)));
}

// v = sqrt(alpha-bar) eps - sqrt(1 - alpha-bar) x_0
export function velocity(s: NoiseSchedule, x0: Tensor, noise: Tensor, t: Tensor | number[]): Tensor {
  return noise.mul(coef(sqrtAb(s), t, x0)).sub(x0.mul(coef(sqrtOneMinusAb(s), t, x0)));
}

// Uniform training timesteps in [0, numTrainTimesteps).
export function sampleTrainTimesteps(s: NoiseSchedule, batch: number, generator?: Generator, device?: string): Tensor {
  return randint(0, s.config.numTrainTimesteps, [batch], { generator, device });
}

// The regression target for a prediction type.
export function diffusionTarget(s: NoiseSchedule, x0: Tensor, noise: Tensor, t: Tensor | number[], prediction: PredictionType = 'epsilon'): Tensor {
  return prediction === 'epsilon' ? noise : velocity(s, x0, noise, t);
}

// L = mean (pred - target)^2 over the batch and all elements (paper section 2.1).
export function diffusionLoss(
  s: NoiseSchedule, pred: Tensor, batch: { x0: Tensor; noise: Tensor; t: Tensor | number[] }, prediction: PredictionType = 'epsilon',
): Tensor {
  return F.mseLoss(pred, diffusionTarget(s, batch.x0, batch.noise, batch.t, prediction));
}

// Samplers see eps; a v-predicting model is turned into one: eps = sqrt(alpha-bar_t) v + sqrt(1 - alpha-bar_t) x_t.
export function vToEps(model: EpsModel, s: NoiseSchedule): EpsModel {
  return (x, t) => {
    const ab = s.alphasCumprod[t]!;
    return model(x, t).mul(Math.sqrt(ab)).add(x.mul(Math.sqrt(1 - ab)));
  };
}

export function epsModelFor(model: EpsModel, s: NoiseSchedule, prediction: PredictionType): EpsModel {
  return prediction === 'epsilon' ? model : vToEps(model, s);
}
