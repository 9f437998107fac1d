/**
 * Latency bookkeeping. The first runs of a session pay for lazy allocation, kernel selection and (for
 * wasm/webgpu) compilation, so they are recorded as warm-up and left out of every statistic.
 */

export interface LatencyStats {
  /** samples per timed run (1 for models whose batch dimension is fixed at 1) */
  batchSize: number;
  warmupRuns: number;
  /** timed runs behind the percentiles */
  runs: number;
  p50Ms: number;
  p95Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
  /** every timed sample divided by the total timed wall time, partial last batch included */
  samplesPerSecond: number;
  samples: number;
  totalMs: number;
}

/** Percentile with linear interpolation between closest ranks (numpy.percentile's default). */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (q / 100) * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export class LatencyRecorder {
  private readonly full: number[] = [];
  private readonly partial: number[] = [];
  private samples = 0;
  private totalMs = 0;
  private warmed = 0;

  constructor(
    readonly batchSize: number,
    readonly warmupRuns: number,
  ) {}

  /** True while the next run should still be a warm-up run. */
  get warming(): boolean {
    return this.warmed < this.warmupRuns;
  }

  warm(): void {
    this.warmed++;
  }

  /** One timed run of `samples` samples. */
  record(ms: number, samples: number): void {
    // A short last batch is faster per run; keeping it out of the percentiles keeps them per full batch.
    (samples === this.batchSize ? this.full : this.partial).push(ms);
    this.samples += samples;
    this.totalMs += ms;
  }

  summary(): LatencyStats {
    const timed = (this.full.length ? this.full : this.partial).slice().sort((a, b) => a - b);
    const mean = timed.length ? timed.reduce((a, b) => a + b, 0) / timed.length : NaN;
    return {
      batchSize: this.batchSize,
      warmupRuns: this.warmed,
      runs: timed.length,
      p50Ms: percentile(timed, 50),
      p95Ms: percentile(timed, 95),
      meanMs: mean,
      minMs: timed.length ? timed[0]! : NaN,
      maxMs: timed.length ? timed[timed.length - 1]! : NaN,
      samplesPerSecond: this.totalMs > 0 ? (this.samples * 1000) / this.totalMs : NaN,
      samples: this.samples,
      totalMs: this.totalMs,
    };
  }
}

/** Wall time of one awaited call, in milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}
