// What a training run records, step by step: one JSON line per optimizer step in metrics.jsonl (read back on resume),
// and the progress bar or a log line every log_every steps.
import fs from 'node:fs';
import type cliProgress from 'cli-progress';
import type { TrainConfig } from './config.ts';

export interface MetricRecord {
  step: number;
  loss: number;
  parts?: Record<string, number>;
  lr: Record<string, number>;
  grad_norm: number;
  step_s: number;
  data_wait_s: number;
  samples_per_s: number;
  dropped: number;
  elapsed_s: number;
  allreduce_s?: number; // data parallel: rank 0's wall time in the step's gradient all-reduce
}

export const readMetrics = (file: string): MetricRecord[] =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as MetricRecord];
          } catch {
            return [];
          } // a line cut by a kill
        })
    : [];

// One optimizer step's record (rank 0): kept, appended to metrics.jsonl, then the progress bar or (every log_every
// steps) a log line.
export function recordStep(
  cfg: TrainConfig,
  rec: MetricRecord,
  o: {
    metrics: MetricRecord[];
    metricsFile: string;
    time: { wait: number; total: number };
    bar: cliProgress.SingleBar | null;
    end: number;
    log: (l: string) => void;
  },
): void {
  const { metrics, time, bar, log } = o;
  const step = rec.step;
  metrics.push(rec);
  fs.appendFileSync(o.metricsFile, JSON.stringify(rec) + '\n');
  const recent = metrics.slice(-cfg.log_every);
  const avg = recent.reduce((a, m) => a + m.loss, 0) / recent.length;
  bar?.update(step, {
    loss: avg.toPrecision(4),
    ips: (1 / rec.step_s).toFixed(2),
    wait: ((100 * time.wait) / time.total).toFixed(1),
  });
  if (!bar && (step % cfg.log_every === 0 || step === o.end)) {
    const rate = recent.length / recent.reduce((a, m) => a + m.step_s, 0);
    const eta = (cfg.steps - step) / rate;
    log(
      `step ${step}/${cfg.steps} loss ${avg.toPrecision(4)} ${rate.toFixed(2)} it/s ${(rate * cfg.batch_size).toFixed(1)} samples/s data-wait ${((100 * time.wait) / time.total).toFixed(1)}% ETA ${Math.round(eta)}s`,
    );
  }
}
