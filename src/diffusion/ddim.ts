// DDIM (Song, Meng & Ermon 2021), the sampler MUMU uses: 50 steps with classifier-free guidance (paper section 2.1).
// Pure: it sees only model(x, t) -> the model's prediction (eps or v, `o.prediction`), a starting x_T, the schedule
// and the descending timesteps.
import { Tensor, randn, tidy, type Generator } from '../torch/index.ts';
import { alphaBarAt, type NoiseSchedule, type PredictionType } from './schedule.ts';
import { splitPrediction } from './noise.ts';

// The UNet (behind guidance) as the samplers see it: noisy x at timestep t -> its prediction.
export type DenoiseModel = (x: Tensor, t: number) => Tensor;

export interface StepInfo {
  step: number; // 0-based index of the step just finished
  steps: number;
  t: number;
}

export interface SamplerOptions {
  timesteps: number[];
  // what the model predicts (the scheduler config's prediction_type); default eps
  prediction?: PredictionType;
  // DDIM's eta (eq. 16): 0 is deterministic DDIM, 1 is DDPM-like ancestral sampling. Euler uses it the same way.
  eta?: number;
  generator?: Generator;
  onStep?: (info: StepInfo) => void;
}

// One DDIM update x_t -> x_{t_prev}. Eq. 12: x_prev = sqrt(a_prev) * x0_pred + sqrt(1 - a_prev - sigma^2) * eps
// + sigma * z, with sigma from eq. 16 and (x0_pred, eps) from the prediction (noise.ts). In this x0 form the first
// step of a zero-terminal-SNR schedule (a_t = 0) is well defined for a v-predicting model.
export function ddimStep(
  s: NoiseSchedule,
  pred: Tensor,
  x: Tensor,
  t: number,
  tPrev: number,
  eta = 0,
  noise?: Tensor,
  prediction: PredictionType = 'epsilon',
): Tensor {
  const a = alphaBarAt(s, t);
  const aPrev = alphaBarAt(s, tPrev);
  const sigma = eta * Math.sqrt(((1 - aPrev) / (1 - a)) * (1 - a / aPrev));
  const { x0, eps } = splitPrediction(pred, x, a, prediction);
  let out = x0.mul(Math.sqrt(aPrev)).add(eps.mul(Math.sqrt(Math.max(0, 1 - aPrev - sigma * sigma))));
  if (sigma > 0) {
    if (!noise) throw new Error('ddimStep with eta > 0 needs noise');
    out = out.add(noise.mul(sigma));
  }
  return out;
}

// Runs the whole chain. Each step goes to the next listed timestep (DDIM's sub-sequence tau, section 4.2), and the
// last one to t = -1, i.e. the schedule's finalAlphaCumprod. diffusers instead steps to t - numTrain // steps; the two
// agree for "leading" spacing and for "trailing" whenever steps divides numTrain.
export function sampleDdim(model: DenoiseModel, xT: Tensor, s: NoiseSchedule, o: SamplerOptions): Tensor {
  const eta = o.eta ?? 0;
  let x = xT;
  o.timesteps.forEach((t, i) => {
    const tPrev = i + 1 < o.timesteps.length ? o.timesteps[i + 1]! : -1;
    const next = tidy(() => {
      const pred = model(x, t);
      const noise =
        eta > 0 ? randn([...x.shape], { generator: o.generator, dtype: x.dtype, device: x.device }) : undefined;
      return ddimStep(s, pred, x, t, tPrev, eta, noise, o.prediction);
    });
    if (x !== xT) x.dispose();
    x = next;
    o.onStep?.({ step: i, steps: o.timesteps.length, t });
  });
  return x === xT ? x.clone() : x;
}
