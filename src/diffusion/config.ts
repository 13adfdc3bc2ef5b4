// scheduler/scheduler_config.json, as diffusers writes it for DDIM / PNDM / Euler schedulers. The noise schedule is
// part of the trained model (the UNet learned eps for these alpha-bars), so it lives in the model folder.
import { readFile, writeFile } from 'node:fs/promises';
import { readConfig } from '../config.ts';
import {
  makeSchedule,
  type BetaScheduleKind,
  type NoiseSchedule,
  type PredictionType,
  type ScheduleConfig,
  type TimestepSpacing,
} from './schedule.ts';

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
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  set_alpha_to_one: false,
  steps_offset: 1,
  timestep_spacing: 'leading',
  prediction_type: 'epsilon',
  rescale_betas_zero_snr: false,
};

// Keys that other schedulers' configs carry and that mean nothing for these samplers (or only one value works).
const IGNORED = new Set([
  'skip_prk_steps',
  'interpolation_type',
  'sample_max_value',
  'clip_sample_range',
  'dynamic_thresholding_ratio',
  'timestep_type',
]);

export function parseSchedulerConfig(raw: unknown, where = 'scheduler_config.json'): SchedulerConfig {
  const c = readConfig(where, raw, {
    defaults: SD_SCHEDULER_CONFIG,
    ignored: IGNORED,
    unsupported: { clip_sample: false, thresholding: false, trained_betas: null, use_karras_sigmas: false },
    rules: {
      num_train_timesteps: { int: true, min: 1 },
      beta_start: { min: 0 },
      beta_end: { min: 0 },
      steps_offset: { int: true, min: 0 },
      beta_schedule: { choices: ['linear', 'scaled_linear', 'squaredcos_cap_v2'] },
      timestep_spacing: { choices: ['leading', 'trailing', 'linspace'] },
      prediction_type: { choices: ['epsilon', 'v_prediction'] },
    },
  });
  // at alpha-bar = 0 an eps prediction says nothing about the image (x_T is the noise itself): diffusers' advice too
  if (c.rescale_betas_zero_snr && c.prediction_type !== 'v_prediction')
    throw new Error(
      `${where}: rescale_betas_zero_snr needs prediction_type 'v_prediction' (an eps prediction cannot recover the image from pure noise)`,
    );
  return c;
}

export async function readSchedulerConfig(path: string): Promise<SchedulerConfig> {
  return parseSchedulerConfig(JSON.parse(await readFile(path, 'utf8')), path);
}

export async function writeSchedulerConfig(path: string, c: SchedulerConfig = SD_SCHEDULER_CONFIG): Promise<void> {
  await writeFile(path, JSON.stringify({ _class_name: 'DDIMScheduler', ...c }, null, 2) + '\n');
}

// The schedule's own names for a scheduler config's numbers.
export function scheduleConfigOf(c: SchedulerConfig): ScheduleConfig {
  return {
    numTrainTimesteps: c.num_train_timesteps,
    betaStart: c.beta_start,
    betaEnd: c.beta_end,
    betaSchedule: c.beta_schedule,
    rescaleBetasZeroSnr: c.rescale_betas_zero_snr,
  };
}

// Stable Diffusion's schedule (SD 1.x / SDXL, and MUMU's): SD_SCHEDULER_CONFIG in the schedule's names.
export const SD_SCHEDULE: ScheduleConfig = scheduleConfigOf(SD_SCHEDULER_CONFIG);

export function scheduleFromConfig(c: SchedulerConfig): NoiseSchedule {
  return makeSchedule(scheduleConfigOf(c), c.set_alpha_to_one);
}
