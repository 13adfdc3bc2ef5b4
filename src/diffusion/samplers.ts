// The samplers by name: the one table the CLI (names, help), the pipeline (the function, its default eta) and the
// PNG metadata (the label AUTOMATIC1111-style viewers know) all read. Every sampler takes the same options
// (timesteps, the model's prediction type, eta, generator), so the pipeline calls any of them the same way.
// Torch-free on purpose: the CLI checks --sampler before libtorch loads; a sampler's code is imported when used.
import type { Tensor } from '../torch/index.ts';
import type { DenoiseModel, SamplerOptions } from './ddim.ts';
import type { NoiseSchedule } from './schedule.ts';

export type SamplerFn = (model: DenoiseModel, xT: Tensor, s: NoiseSchedule, o: SamplerOptions) => Tensor;

export interface SamplerEntry {
  label: string; // the name in PNG metadata ("Sampler: DDIM")
  eta: number; // the default eta: 0 deterministic, 1 ancestral
  about: string; // for --help
  load(): Promise<SamplerFn>;
}

export const SAMPLERS = {
  ddim: { label: 'DDIM', eta: 0, about: "the paper's", load: async () => (await import('./ddim.ts')).sampleDdim },
  euler: { label: 'Euler', eta: 0, about: '', load: async () => (await import('./euler.ts')).sampleEuler },
  euler_a: { label: 'Euler a', eta: 1, about: 'ancestral', load: async () => (await import('./euler.ts')).sampleEuler },
} as const satisfies Record<string, SamplerEntry>;

export type SamplerName = keyof typeof SAMPLERS;
export const SAMPLER_NAMES = Object.keys(SAMPLERS) as SamplerName[];
export const DEFAULT_SAMPLER: SamplerName = 'ddim';
export const isSamplerName = (s: string): s is SamplerName => Object.hasOwn(SAMPLERS, s);
// "ddim, euler or euler_a", for messages
export const samplerChoices = (): string => `${SAMPLER_NAMES.slice(0, -1).join(', ')} or ${SAMPLER_NAMES.at(-1)}`;
