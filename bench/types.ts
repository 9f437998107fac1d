/**
 * The shape every benchmark section shares. A section measures something and its baseline in the same
 * run and reports rows; main.ts prints them as one table (or JSON with --json).
 */

export interface BenchOptions {
  /** fewer runs/iterations: a smoke test, numbers are noisier */
  quick: boolean;
  /** cache folder for generated models and scratch outputs (gitignored .bench/ in the repo) */
  cacheDir: string;
  /** intra-op threads for CPU and wasm sessions */
  threads: number;
  /** which clock latency figures use: process CPU time (default, robust on a busy machine) or wall */
  clock: 'cpu' | 'wall';
  /** also measure node WebGPU (SwiftShader on CPU-only machines: slow, not a speed figure) */
  webgpu: boolean;
  /** progress lines go to stderr so that --json output on stdout stays clean */
  log: (msg: string) => void;
}

export interface Goal {
  /** the ratio must be <= max ... */
  max?: number;
  /** ... or >= min */
  min?: number;
}

export interface Row {
  /** what was measured, e.g. "read+convert+write (ours)" */
  metric: string;
  value: number;
  unit: string;
  /** what the ratio is taken against, measured in the same run */
  baseline?: { name: string; value: number; unit: string };
  /** value / baseline.value (dimensionless) */
  ratio?: number;
  goal?: Goal;
  /** free-form detail (run counts, spreads, sizes) */
  note?: string;
}

export interface SectionResult {
  rows: Row[];
  /** anything else worth keeping in --json output (raw samples, environment) */
  details?: Record<string, unknown>;
  /** why the section (or a part of it) could not run, e.g. a missing peer */
  skipped?: string[];
  /** what could not run although it should have here (the run exits 1), each a line with the fix */
  failures?: string[];
}

export interface Section {
  /** short id used by --only/--skip and as the table's section column */
  name: string;
  description: string;
  run(opts: BenchOptions): Promise<SectionResult>;
}

/** true/false when the row has a goal, undefined otherwise */
export function meets(r: Row): boolean | undefined {
  if (!r.goal || r.ratio === undefined || !Number.isFinite(r.ratio)) return undefined;
  if (r.goal.max !== undefined && r.ratio > r.goal.max) return false;
  if (r.goal.min !== undefined && r.ratio < r.goal.min) return false;
  return true;
}

export function goalText(g: Goal | undefined): string {
  if (!g) return '';
  if (g.max !== undefined && g.min !== undefined) return `${g.min}x..${g.max}x`;
  return g.max !== undefined ? `<= ${g.max}x` : `>= ${g.min}x`;
}

/** A row comparing `value` with a baseline measured in the same run. */
export function ratioRow(metric: string, value: number, unit: string, baseline: Row['baseline'] & object, goal?: Goal, note?: string): Row {
  return { metric, value, unit, baseline, ratio: value / baseline.value, goal, note };
}
