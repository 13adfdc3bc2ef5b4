// scheduler/scheduler_config.json, as diffusers writes it for DDIM / PNDM / Euler schedulers. The noise schedule is
// part of the trained model (the UNet learned eps for these alpha-bars), so it lives in the model folder.
import { readFile, writeFile } from 'node:fs/promises';
import { makeSchedule, type BetaScheduleKind, type NoiseSchedule, type PredictionType, type TimestepSpacing } from './schedule.ts';

export interface SchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaScheduleKind;
  set_alpha_to_one: boolean;
  steps_offset: number;
  timestep_spacing: TimestepSpacing;
  prediction_type: PredictionType;
  // zero terminal SNR (Lin et al. 2023): alpha-bar at the last training step is 0, as at the start of sampling
  rescale_betas_zero_snr: boolean;
}

// Stable Diffusion's, which MUMU inherits from SDXL (paper section 2.1).
export const SD_SCHEDULER_CONFIG: SchedulerConfig = {
  num_train_timesteps: 1000, beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear',
  set_alpha_to_one: false, steps_offset: 1, timestep_spacing: 'leading', prediction_type: 'epsilon',
  rescale_betas_zero_snr: false,
};

// Keys that other schedulers' configs carry and that mean nothing for these samplers (or only one value works).
const IGNORED = new Set(['skip_prk_steps', 'interpolation_type', 'sample_max_value', 'clip_sample_range', 'dynamic_thresholding_ratio', 'timestep_type']);
const ONLY: Record<string, unknown> = { clip_sample: false, thresholding: false, trained_betas: null, use_karras_sigmas: false };
const CHOICES: Record<string, readonly string[]> = {
  beta_schedule: ['linear', 'scaled_linear', 'squaredcos_cap_v2'],
  timestep_spacing: ['leading', 'trailing', 'linspace'],
  prediction_type: ['epsilon', 'v_prediction'],
};

export function parseSchedulerConfig(raw: unknown, where = 'scheduler_config.json'): SchedulerConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where}: expected a JSON object`);
  const out: Record<string, unknown> = { ...SD_SCHEDULER_CONFIG };
  for (const [k, v] of Object.entries(raw)) {
    if (k.startsWith('_') || IGNORED.has(k)) continue;
    if (k in ONLY) {
      if (v !== ONLY[k] && !(v === undefined || (ONLY[k] === false && v === null))) throw new Error(`${where}: ${k} = ${JSON.stringify(v)} is not supported (only ${JSON.stringify(ONLY[k])})`);
      continue;
    }
    if (!(k in SD_SCHEDULER_CONFIG)) throw new Error(`${where}: unknown key '${k}' (known: ${Object.keys(SD_SCHEDULER_CONFIG).join(', ')})`);
    const d = (SD_SCHEDULER_CONFIG as unknown as Record<string, unknown>)[k];
    if (typeof v !== typeof d) throw new Error(`${where}: ${k} must be a ${typeof d}, got ${JSON.stringify(v)}`);
    if (CHOICES[k] && !CHOICES[k].includes(v as string)) throw new Error(`${where}: ${k} '${String(v)}' is not one of ${CHOICES[k].join(', ')}`);
    out[k] = v;
  }
  const c = out as unknown as SchedulerConfig;
  // at alpha-bar = 0 an eps prediction says nothing about the image (x_T is the noise itself): diffusers' advice too
  if (c.rescale_betas_zero_snr && c.prediction_type !== 'v_prediction') throw new Error(`${where}: rescale_betas_zero_snr needs prediction_type 'v_prediction' (an eps prediction cannot recover the image from pure noise)`);
  return c;
}

export async function readSchedulerConfig(path: string): Promise<SchedulerConfig> {
  return parseSchedulerConfig(JSON.parse(await readFile(path, 'utf8')), path);
}

export async function writeSchedulerConfig(path: string, c: SchedulerConfig = SD_SCHEDULER_CONFIG): Promise<void> {
  await writeFile(path, JSON.stringify({ _class_name: 'DDIMScheduler', ...c }, null, 2) + '\n');
}

export function scheduleFromConfig(c: SchedulerConfig): NoiseSchedule {
  return makeSchedule(
    { numTrainTimesteps: c.num_train_timesteps, betaStart: c.beta_start, betaEnd: c.beta_end, betaSchedule: c.beta_schedule, rescaleBetasZeroSnr: c.rescale_betas_zero_snr },
    c.set_alpha_to_one,
  );
}
