// Noise schedules and inference timesteps, as plain float64 arrays (they are 1000 numbers; tensors would only add
// dtype and device questions). Names and formulas follow diffusers' DDIMScheduler so that a real SD/SDXL
// scheduler_config.json means the same thing here.

export type BetaScheduleKind = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';
export type PredictionType = 'epsilon' | 'v_prediction';

export interface ScheduleConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaScheduleKind;
  // Lin et al. 2023 (arXiv 2305.08891) Algorithm 1: rescale so that alpha-bar at the last step is exactly 0 (pure
  // noise, zero terminal SNR), the start that sampling really has. Needs a v- (not eps-) predicting model.
  rescaleBetasZeroSnr?: boolean;
}

// Stable Diffusion's (SD_SCHEDULE) is derived from its scheduler_config.json in config.ts.

function linspace(a: number, b: number, n: number): number[] {
  if (n === 1) return [a];
  return Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));
}

export function betaSchedule(c: ScheduleConfig): Float64Array {
  const n = c.numTrainTimesteps;
  switch (c.betaSchedule) {
    case 'linear':
      return Float64Array.from(linspace(c.betaStart, c.betaEnd, n));
    case 'scaled_linear':
      // linear in sqrt(beta), then squared: the LDM / SD schedule
      return Float64Array.from(linspace(Math.sqrt(c.betaStart), Math.sqrt(c.betaEnd), n), (s) => s * s);
    case 'squaredcos_cap_v2': {
      // Nichol & Dhariwal's cosine schedule (improved DDPM, eq. 17), betas capped at 0.999 as diffusers does
      const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
      return Float64Array.from({ length: n }, (_, i) => Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999));
    }
    default:
      throw new Error(`unknown beta_schedule '${String(c.betaSchedule)}' (linear, scaled_linear or squaredcos_cap_v2)`);
  }
}

// Lin et al. 2023, Algorithm 1 (diffusers' rescale_zero_terminal_snr): shift and scale sqrt(alpha-bar) so that its
// last value is 0 and its first unchanged, then recover the betas.
export function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const sqrtAb = Float64Array.from(alphasCumprod(betas), Math.sqrt);
  const [first, last] = [sqrtAb[0]!, sqrtAb[sqrtAb.length - 1]!];
  const ab = sqrtAb.map((v) => ((v - last) * first) / (first - last)).map((v) => v * v);
  return ab.map((a, i) => 1 - (i === 0 ? a : a / ab[i - 1]!));
}

// alpha-bar_t = prod_{s<=t} (1 - beta_s): the signal fraction left at step t (DDPM eq. 4).
export function alphasCumprod(betas: Float64Array): Float64Array {
  const out = new Float64Array(betas.length);
  let p = 1;
  for (let i = 0; i < betas.length; i++) out[i] = p *= 1 - betas[i]!;
  return out;
}

// One schedule object for samplers and the training loss. finalAlphaCumprod is the alpha-bar the last DDIM step
// lands on: 1 (set_alpha_to_one) or alpha-bar_0 (SD's setting).
export interface NoiseSchedule {
  config: ScheduleConfig;
  betas: Float64Array;
  alphasCumprod: Float64Array;
  finalAlphaCumprod: number;
}

export function makeSchedule(config: ScheduleConfig, setAlphaToOne = false): NoiseSchedule {
  const betas = config.rescaleBetasZeroSnr ? rescaleZeroTerminalSnr(betaSchedule(config)) : betaSchedule(config);
  const ac = alphasCumprod(betas);
  return { config, betas, alphasCumprod: ac, finalAlphaCumprod: setAlphaToOne ? 1 : ac[0]! };
}

// numpy's np.round rounds halves to even; linspace spacing hits exact halves (e.g. 999/2), so this matters.
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// The inference timesteps, descending, exactly as diffusers' DDIMScheduler.set_timesteps builds them
// (see "Common Diffusion Noise Schedules and Sample Steps are Flawed", Lin et al. 2023, table 2). Only "leading"
// applies steps_offset, as in diffusers.
export function inferenceTimesteps(
  numTrain: number,
  steps: number,
  spacing: TimestepSpacing = 'leading',
  stepsOffset = 0,
): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`steps must be a positive integer, got ${steps}`);
  if (steps > numTrain) throw new Error(`steps (${steps}) cannot exceed the ${numTrain} training timesteps`);
  let ts: number[];
  if (spacing === 'linspace') {
    ts = linspace(0, numTrain - 1, steps)
      .map(roundHalfEven)
      .reverse();
  } else if (spacing === 'leading') {
    const ratio = Math.floor(numTrain / steps);
    ts = Array.from({ length: steps }, (_, i) => i * ratio + stepsOffset).reverse();
  } else if (spacing === 'trailing') {
    // np.round(np.arange(numTrain, 0, -numTrain / steps)) - 1, taking exactly `steps` values: numpy's float arange
    // yields steps + 1 values for 62 step counts in 1..1000 (61, 103, ...), which would end on timestep -1.
    const ratio = numTrain / steps;
    ts = Array.from({ length: steps }, (_, i) => roundHalfEven(numTrain - i * ratio) - 1);
  } else {
    throw new Error(`unknown timestep_spacing '${String(spacing)}' (leading, trailing or linspace)`);
  }
  return ts;
}

// alpha-bar at a timestep, with t < 0 meaning "past the end" (the last DDIM step's target).
export function alphaBarAt(s: NoiseSchedule, t: number): number {
  return t < 0 ? s.finalAlphaCumprod : s.alphasCumprod[t]!;
}
