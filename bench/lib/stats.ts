// Latency summaries shared by every generator, so all rows of the table are computed alike.

export interface Summary {
  /** Calls that succeeded inside the measured window. */
  ok: number;
  /** Calls that failed inside the window, by gRPC code, HTTP status or error name. */
  errors: Record<string, number>;
  /** Length of the measured window, seconds. */
  seconds: number;
  /** Successful calls per second. */
  rps: number;
  /** Latency percentiles of the successful calls, milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** CPU µs per call of the processes measured (service, postgres, …), when measured. */
  cpuUsPerCall?: Record<string, number>;
}

/** The q-quantile (0..1) of sorted values, nearest-rank. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

export function summarize(latenciesMs: number[], seconds: number, errors: Record<string, number> = {}): Summary {
  const sorted = Float64Array.from(latenciesMs).sort();
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    ok: sorted.length,
    errors,
    seconds,
    rps: seconds > 0 ? sorted.length / seconds : NaN,
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted.length > 0 ? (sorted[sorted.length - 1]) : NaN,
    mean: sorted.length > 0 ? sum / sorted.length : NaN,
  };
}

export function errorCount(summary: Pick<Summary, "errors">): number {
  return Object.values(summary.errors).reduce((a, b) => a + b, 0);
}
