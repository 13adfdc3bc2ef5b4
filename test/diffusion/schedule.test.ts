// Scheduler numbers pinned against numpy (test/diffusion/reference.py, float64, diffusers' formulas written out).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  makeSchedule,
  betaSchedule,
  inferenceTimesteps,
  roundHalfEven,
  SD_SCHEDULE,
} from '../../src/diffusion/index.ts';

const close = (a: number, b: number, tol: number, what = '') =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('SD scaled_linear schedule: betas and alphas_cumprod', () => {
  const s = makeSchedule(SD_SCHEDULE);
  close(s.betas[0]!, 0.00085, 1e-15, 'beta_0');
  close(s.betas[999]!, 0.012, 1e-15, 'beta_999');
  const ref: [number, number][] = [
    [0, 0.99915],
    [1, 0.9982960278384514],
    [500, 0.2763326838229746],
    [981, 0.005775500139495751],
    [999, 0.004660098513077238],
  ];
  for (const [t, v] of ref) close(s.alphasCumprod[t]!, v, 1e-12, `alpha-bar_${t}`);
  assert.equal(s.finalAlphaCumprod, s.alphasCumprod[0]); // set_alpha_to_one = false, as SD ships
  assert.equal(makeSchedule(SD_SCHEDULE, true).finalAlphaCumprod, 1);
});

test('linear and squaredcos_cap_v2 schedules', () => {
  const lin = makeSchedule({ numTrainTimesteps: 1000, betaStart: 0.0001, betaEnd: 0.02, betaSchedule: 'linear' });
  close(lin.alphasCumprod[999]!, 4.035829765375676e-5, 1e-15, 'linear alpha-bar_999');
  const cos = betaSchedule({ numTrainTimesteps: 1000, betaStart: 0, betaEnd: 0, betaSchedule: 'squaredcos_cap_v2' });
  close(cos[0]!, 4.128422482196914e-5, 1e-15, 'cos beta_0');
  close(cos[500]!, 0.003155691441585007, 1e-14, 'cos beta_500');
  assert.equal(cos[999], 0.999);
  assert.throws(
    () => betaSchedule({ ...SD_SCHEDULE, betaSchedule: 'nope' as 'linear' }),
    /unknown beta_schedule 'nope'/,
  );
});

test("SD's 50-step DDIM timesteps (leading, steps_offset = 1) and their alphas", () => {
  const ts = inferenceTimesteps(1000, 50, 'leading', 1);
  assert.deepEqual(
    ts,
    Array.from({ length: 50 }, (_, i) => 981 - 20 * i),
  );
  assert.equal(ts[0], 981);
  assert.equal(ts.at(-1), 1);
  const s = makeSchedule(SD_SCHEDULE);
  const ref = [0.005775500139495751, 0.007281727140942984, 0.009117309801963751];
  ref.forEach((v, i) => close(s.alphasCumprod[ts[i]!]!, v, 1e-12, `alpha-bar at ${ts[i]}`));
  close(s.alphasCumprod[ts.at(-1)!]!, 0.9982960278384514, 1e-12, 'alpha-bar at 1');
});

test('linspace and trailing spacing as diffusers (numpy round-half-even)', () => {
  assert.deepEqual(inferenceTimesteps(1000, 7, 'linspace'), [999, 832, 666, 500, 333, 166, 0]);
  assert.deepEqual(inferenceTimesteps(1000, 3, 'linspace'), [999, 500, 0]); // 499.5 rounds to even
  assert.deepEqual(inferenceTimesteps(1000, 7, 'trailing'), [999, 856, 713, 570, 428, 285, 142]);
  assert.deepEqual(inferenceTimesteps(1000, 7, 'trailing', 1), [999, 856, 713, 570, 428, 285, 142]); // offset: leading only
  assert.equal(inferenceTimesteps(1000, 61, 'trailing').length, 61); // numpy's arange would give 62
  assert.equal(roundHalfEven(2.5), 2);
  assert.equal(roundHalfEven(3.5), 4);
  assert.equal(roundHalfEven(-0.4), -0);
  assert.throws(() => inferenceTimesteps(1000, 0), /positive integer/);
  assert.throws(() => inferenceTimesteps(1000, 1001), /cannot exceed/);
});

test("scheduler_config.json: SD 1.5's and SDXL's parse; unknown or unsupported keys are refused", async () => {
  const { parseSchedulerConfig, SD_SCHEDULER_CONFIG } = await import('../../src/diffusion/index.ts');
  const sd15 = {
    _class_name: 'PNDMScheduler',
    _diffusers_version: '0.6.0',
    beta_end: 0.012,
    beta_schedule: 'scaled_linear',
    beta_start: 0.00085,
    num_train_timesteps: 1000,
    set_alpha_to_one: false,
    skip_prk_steps: true,
    steps_offset: 1,
    trained_betas: null,
    clip_sample: false,
  };
  assert.deepEqual(parseSchedulerConfig(sd15), SD_SCHEDULER_CONFIG);
  const sdxl = {
    ...sd15,
    _class_name: 'EulerDiscreteScheduler',
    interpolation_type: 'linear',
    prediction_type: 'epsilon',
    sample_max_value: 1.0,
    timestep_spacing: 'leading',
    use_karras_sigmas: false,
  };
  assert.deepEqual(parseSchedulerConfig(sdxl), SD_SCHEDULER_CONFIG);
  assert.equal(
    parseSchedulerConfig({ prediction_type: 'v_prediction', timestep_spacing: 'trailing' }).timestep_spacing,
    'trailing',
  );
  assert.throws(() => parseSchedulerConfig({ beta_strat: 0.1 }), /unknown key 'beta_strat'/);
  assert.throws(() => parseSchedulerConfig({ clip_sample: true }), /clip_sample = true is not supported/);
  assert.throws(
    () => parseSchedulerConfig({ timestep_spacing: 'even' }),
    /'even' is not one of leading, trailing, linspace/,
  );
  assert.throws(() => parseSchedulerConfig({ steps_offset: '1' }), /steps_offset must be a number/);
});

test('zero terminal SNR (rescale_betas_zero_snr): alpha-bar ends at exactly 0, starts unchanged; needs v-prediction', async () => {
  const s = makeSchedule({ ...SD_SCHEDULE, rescaleBetasZeroSnr: true });
  const ref: [number, number][] = [
    [0, 0.99915],
    [1, 0.9982334461401825],
    [500, 0.24101878275731575],
    [998, 1.967888056621292e-7],
  ];
  for (const [t, v] of ref) close(s.alphasCumprod[t]!, v, 1e-12 * Math.max(1, v) + 1e-18, `alpha-bar_${t}`);
  assert.equal(s.alphasCumprod[999], 0);
  const { parseSchedulerConfig, scheduleFromConfig } = await import('../../src/diffusion/index.ts');
  const c = parseSchedulerConfig({
    rescale_betas_zero_snr: true,
    prediction_type: 'v_prediction',
    timestep_spacing: 'trailing',
  });
  assert.equal(scheduleFromConfig(c).alphasCumprod[999], 0);
  assert.throws(
    () => parseSchedulerConfig({ rescale_betas_zero_snr: true }),
    /rescale_betas_zero_snr needs prediction_type 'v_prediction'/,
  );
});
