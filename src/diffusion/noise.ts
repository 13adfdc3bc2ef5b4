// Forward noising and the training objective (paper section 2.1: x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps,
// MSE on the predicted eps). v-prediction (Salimans & Ho 2022, section 4) is the option SD 2.x uses, and the one a
// zero-terminal-SNR schedule needs (Lin et al. 2023).
import { Tensor, tensor, randint, type Generator } from '../torch/index.ts';
import type { NoiseSchedule, PredictionType } from './schedule.ts';

// Per-sample coefficients gathered at timesteps t and shaped (B, 1, 1, ...) to broadcast over x.
function coef(values: ArrayLike<number>, t: Tensor | number[], like: Tensor): Tensor {
  const idx = Array.isArray(t) ? t : (t.toList() as number[]);
  if (idx.length !== like.size(0)) throw new Error(`${idx.length} timesteps for a batch of ${like.size(0)}`);
  const picked = idx.map((i) => {
    if (!Number.isInteger(i) || i < 0 || i >= values.length)
      throw new Error(`timestep ${i} outside 0..${values.length - 1}`);
    return values[i]!;
  });
  return tensor(Float32Array.from(picked), { shape: [idx.length, ...like.shape.slice(1).map(() => 1)] }).to({
    dtype: like.dtype,
    device: like.device,
  });
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

// A prediction at noise level alpha-bar a, as the denoised image and the noise:
//   eps: x0 = (x - sqrt(1 - a) eps) / sqrt(a)           (DDIM eq. 12's "predicted x0"; undefined at a = 0)
//   v:   x0 = sqrt(a) x - sqrt(1 - a) v,  eps = sqrt(a) v + sqrt(1 - a) x   (defined at every a, a = 0 included)
export function splitPrediction(
  pred: Tensor,
  x: Tensor,
  a: number,
  prediction: PredictionType,
): { x0: Tensor; eps: Tensor } {
  if (prediction === 'v_prediction')
    return {
      x0: x.mul(Math.sqrt(a)).sub(pred.mul(Math.sqrt(1 - a))),
      eps: pred.mul(Math.sqrt(a)).add(x.mul(Math.sqrt(1 - a))),
    };
  if (a <= 0)
    throw new Error(
      'an eps prediction at alpha-bar 0 (zero terminal SNR) does not determine the image: use v_prediction',
    );
  return { x0: x.sub(pred.mul(Math.sqrt(1 - a))).div(Math.sqrt(a)), eps: pred };
}

// Uniform training timesteps in [0, numTrainTimesteps).
export function sampleTrainTimesteps(s: NoiseSchedule, batch: number, generator?: Generator, device?: string): Tensor {
  return randint(0, s.config.numTrainTimesteps, [batch], { generator, device });
}

// The regression target for a prediction type.
export function diffusionTarget(
  s: NoiseSchedule,
  x0: Tensor,
  noise: Tensor,
  t: Tensor | number[],
  prediction: PredictionType = 'epsilon',
): Tensor {
  return prediction === 'epsilon' ? noise : velocity(s, x0, noise, t);
}

// Min-SNR-gamma loss weights (Hang et al. 2023, arXiv 2303.09556, section 3.4): the x0-space weight min(SNR, gamma)
// expressed for the trained target, min(SNR, gamma) / SNR for eps and min(SNR, gamma) / (SNR + 1) for v (as
// diffusers' training scripts write it), SNR = alpha-bar / (1 - alpha-bar). At SNR = 0 (the last step of a
// zero-terminal-SNR schedule) the v weight is 0 and the eps weight is taken as 1.
export function minSnrWeights(
  s: NoiseSchedule,
  t: Tensor | number[],
  like: Tensor,
  gamma: number,
  prediction: PredictionType,
): Tensor {
  const w = Array.from(s.alphasCumprod, (a) => {
    const snr = a / (1 - a);
    if (prediction === 'v_prediction') return Math.min(snr, gamma) / (snr + 1);
    return snr > 0 ? Math.min(snr, gamma) / snr : 1;
  });
  return coef(w, t, like);
}

export interface LossOptions {
  prediction?: PredictionType;
  // Min-SNR-gamma weighting; null/undefined = the plain mean (paper section 2.1)
  snrGamma?: number | null;
}

// L = mean over the batch and all elements of w_t (pred - target)^2, w_t = 1 without weighting (paper section 2.1).
export function diffusionLoss(
  s: NoiseSchedule,
  pred: Tensor,
  batch: { x0: Tensor; noise: Tensor; t: Tensor | number[] },
  o: LossOptions = {},
): Tensor {
  const { prediction = 'epsilon', snrGamma = null } = o;
  const err = pred.sub(diffusionTarget(s, batch.x0, batch.noise, batch.t, prediction)).square();
  return (snrGamma ? err.mul(minSnrWeights(s, batch.t, pred, snrGamma, prediction)) : err).mean();
}
