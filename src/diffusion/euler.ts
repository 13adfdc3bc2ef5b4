// Euler (eta = 0) and Euler ancestral (eta = 1) in Karras et al.'s sigma parameterisation (EDM, eq. 5 / algorithm 1),
// as k-diffusion's sample_euler and sample_euler_ancestral. The model still sees the VP x_t and t:
// x_t = x_sigma / sqrt(1 + sigma^2), sigma_t = sqrt((1 - alpha-bar_t) / alpha-bar_t).
import { Tensor, randn, tidy } from '../torch/index.ts';
import type { NoiseSchedule } from './schedule.ts';
import type { DenoiseModel, SamplerOptions } from './ddim.ts';
import { splitPrediction } from './noise.ts';

// A zero-terminal-SNR schedule has sigma = infinity at its last step; like diffusers' Euler schedulers, take
// alpha-bar there as 2^-24 (sigma ~ 4096) instead.
const MIN_ALPHA_BAR = 2 ** -24;
const alphaBar = (s: NoiseSchedule, t: number) => Math.max(s.alphasCumprod[t]!, MIN_ALPHA_BAR);
export const sigmaAt = (s: NoiseSchedule, t: number) => Math.sqrt((1 - alphaBar(s, t)) / alphaBar(s, t));

// xT ~ N(0, I) is the VP-space start, as for DDIM, so both samplers take the same noise.
export function sampleEuler(model: DenoiseModel, xT: Tensor, s: NoiseSchedule, o: SamplerOptions): Tensor {
  const eta = o.eta ?? 0;
  const ts = o.timesteps;
  const sigmas = [...ts.map((t) => sigmaAt(s, t)), 0];
  let x = xT.mul(Math.sqrt(1 + sigmas[0]! ** 2));
  ts.forEach((t, i) => {
    const [sigma, sigmaNext] = [sigmas[i]!, sigmas[i + 1]!];
    const next = tidy(() => {
      const xVp = x.div(Math.sqrt(1 + sigma * sigma));
      const { eps } = splitPrediction(model(xVp, t), xVp, alphaBar(s, t), o.prediction ?? 'epsilon');
      // the ancestral split of the step into a deterministic part (to sigmaDown) and fresh noise (sigmaUp)
      const sigmaUp = Math.min(
        sigmaNext,
        eta * Math.sqrt((sigmaNext ** 2 * (sigma ** 2 - sigmaNext ** 2)) / sigma ** 2),
      );
      const sigmaDown = Math.sqrt(sigmaNext ** 2 - sigmaUp ** 2);
      let y = x.add(eps.mul(sigmaDown - sigma)); // dx/dsigma = eps (Karras eq. 5 with D = x - sigma * eps)
      if (sigmaUp > 0)
        y = y.add(randn([...x.shape], { generator: o.generator, dtype: x.dtype, device: x.device }).mul(sigmaUp));
      return y;
    });
    x.dispose();
    x = next;
    o.onStep?.({ step: i, steps: ts.length, t });
  });
  return x;
}
