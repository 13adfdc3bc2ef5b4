// Scores of outputs -> the report's numbers: means per metric, diversity across seeds, consistency across prompts.
import { diversity, cosine, COPY_PASTE_THRESHOLD } from './metrics.ts';
import type { RgbImage } from '../image/index.ts';
import type { Case } from './tasks.ts';
import { Rng } from '../data/rng.ts';

export type SystemName = 'mumu' | 'mumu-caption' | 'text-only' | 'describe' | 'lora-merge' | 'render';
// The systems that generate (the render is scored, never generated): what `mumu eval --systems` chooses from.
export const GENERATED_SYSTEMS = ['mumu', 'mumu-caption', 'text-only', 'describe', 'lora-merge'] as const;

// Which systems run on which task (the baselines where the paper compares, the render everywhere).
export const SYSTEMS_FOR: Record<Case['task'], SystemName[]> = {
  'same-image': ['mumu', 'mumu-caption', 'text-only', 'describe', 'render'],
  harmonise: ['mumu', 'mumu-caption', 'text-only', 'describe', 'render'],
  'style-transfer': ['mumu', 'mumu-caption', 'text-only', 'describe', 'render'],
  'tokens-per-image': ['mumu', 'render'],
  'lora-merge': ['mumu', 'lora-merge', 'render'],
  character: ['mumu', 'mumu-caption', 'text-only', 'describe', 'render'],
};

// A system's image for a case and seed.
export interface CaseGenerator {
  (c: Case, seed: number): Promise<RgbImage>;
}
// title / note: where a system's row says more than its name (which merge ran)
export interface SystemState {
  name: SystemName;
  gen: CaseGenerator | null;
  why: string;
  title?: string;
  note?: string;
}

export interface Output {
  case: Case;
  system: SystemName;
  seed: number | null;
  image: RgbImage;
  scores: Scores;
}
export interface Scores {
  preservation: number; // NaN when the case has no object reference
  control: number; // the same statistic for an object the prompt does not ask for (chance level)
  following: number;
  style: number; // 1 / 0
  styleProb: number;
  copy: number; // NaN when there is no reference
  leak: number; // NaN unless a style reference's objects could leak
  embedding: number[]; // whole image
  bestWindow: number[] | null; // the window closest to the first object reference
}

export const mean = (xs: number[]) => {
  const ys = xs.filter((x) => !Number.isNaN(x));
  return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : NaN;
};

export const pct = (x: number) => (Number.isNaN(x) ? '–' : `${(100 * x).toFixed(0)}%`);
export const num = (x: number) => (Number.isNaN(x) ? '–' : x.toFixed(3));
// a value with its interval: "17% (8-27)", "0.392 (0.37-0.41)"; no interval when there is none (one case)
export const pctCI = (x: number, ci: Interval) =>
  ci && ci[1] > ci[0] ? `${pct(x)} (${(100 * ci[0]).toFixed(0)}-${(100 * ci[1]).toFixed(0)})` : pct(x);
export const numCI = (x: number, ci: Interval) =>
  ci && ci[1] > ci[0] ? `${num(x)} (${ci[0].toFixed(2)}-${ci[1].toFixed(2)})` : num(x);

export type Interval = [number, number] | null;

// 95% percentile-bootstrap interval of a row's mean, resampling whole cases (prompts) with replacement: the seeds of
// one prompt are not independent draws, so an interval over outputs would be too narrow. Deterministic (fixed seed),
// so a re-run of the same evaluation prints the same intervals. null when the metric has no value or one case.
export function caseInterval(outs: Output[], metric: (s: Scores) => number, resamples = 2000, seed = 0): Interval {
  const byCase = new Map<Case, number[]>();
  for (const o of outs) {
    const v = metric(o.scores);
    if (!Number.isNaN(v)) byCase.set(o.case, [...(byCase.get(o.case) ?? []), v]);
  }
  const groups = [...byCase.values()].map((vs) => ({ sum: vs.reduce((a, b) => a + b, 0), n: vs.length }));
  if (groups.length < 2) return null;
  const rng = new Rng(seed);
  const means: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let sum = 0,
      n = 0;
    for (let i = 0; i < groups.length; i++) {
      const g = groups[rng.int(groups.length)]!;
      sum += g.sum;
      n += g.n;
    }
    means.push(sum / n); // the pooled mean over outputs, as the row's own value
  }
  means.sort((a, b) => a - b);
  const at = (q: number) => means[Math.min(resamples - 1, Math.max(0, Math.round(q * (resamples - 1))))]!;
  return [at(0.025), at(0.975)];
}

export interface Aggregate {
  n: number;
  preservation: number;
  control: number;
  following: number;
  style: number;
  copy: number;
  copied: number;
  leak: number;
  diversity: number;
  consistency: number;
  // 95% bootstrap intervals over cases (caseInterval) of the metrics the bar is stated in
  ci: { preservation: Interval; following: Interval; style: Interval };
}

export function aggregate(outs: Output[]): Aggregate {
  const s = outs.map((o) => o.scores);
  const byCase = new Map<Case, Output[]>();
  for (const o of outs) byCase.set(o.case, [...(byCase.get(o.case) ?? []), o]);
  const div = [...byCase.values()]
    .filter((g) => g.length > 1)
    .map((g) => diversity(g.map((o) => o.scores.embedding)).embedding);
  // consistency: pairs of outputs made from the same reference image (one character), across prompts and seeds
  const byRef = new Map<unknown, number[][]>();
  for (const o of outs) {
    const ref = o.case.references[0]?.image;
    if (ref && o.scores.bestWindow) byRef.set(ref, [...(byRef.get(ref) ?? []), o.scores.bestWindow]);
  }
  let cons = 0,
    k = 0;
  for (const wins of byRef.values())
    for (let i = 0; i < wins.length; i++)
      for (let j = i + 1; j < wins.length; j++) {
        cons += cosine(wins[i]!, wins[j]!);
        k++;
      }
  return {
    n: outs.length,
    preservation: mean(s.map((x) => x.preservation)),
    control: mean(s.map((x) => x.control)),
    following: mean(s.map((x) => x.following)),
    style: mean(s.map((x) => x.style)),
    copy: mean(s.map((x) => x.copy)),
    copied: mean(s.filter((x) => !Number.isNaN(x.copy)).map((x) => (x.copy >= COPY_PASTE_THRESHOLD ? 1 : 0))),
    leak: mean(s.map((x) => x.leak)),
    diversity: mean(div),
    consistency: k ? cons / k : NaN,
    ci: {
      preservation: caseInterval(outs, (x) => x.preservation),
      following: caseInterval(outs, (x) => x.following),
      style: caseInterval(outs, (x) => x.style),
    },
  };
}
