/**
 * The experiment's results file, `results.jsonl`: line 1 the settings, then one line per finished run.
 * Every change rewrites the whole file through writeFileAtomic (temporary + rename), so an interruption at
 * any moment leaves either the old file or the new one, never a half line; the file stays small (a few kB a
 * run). A resumed experiment reads it, refuses it when its settings differ, and skips every recorded run.
 */
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../atomic.js';
import { UserError } from '../errors.js';

export interface CurvePoint {
  epoch: number;
  trainLoss: number | null;
  /** validation accuracy after the epoch (epoch 0: before training) */
  valAccuracy: number | null;
}

export interface TestScores {
  accuracy: number;
  macroF1: number;
  /** ROC AUC (binary, or one-vs-rest macro); null when undefined on the test set */
  auc: number | null;
  loss: number;
}

export interface RunRecord {
  /** the data set's label (a built-in name or the path given) */
  data: string;
  /** relu | leakyrelu | alrelu (from scratch); original | converted | alrelu-finetuned | relu-finetuned (swap) */
  variant: string;
  /** null for the unseeded swap variants (the model as it is, and converted without training) */
  seed: number | null;
  test: TestScores;
  curve: CurvePoint[];
  /** the epoch whose weights were kept (best validation accuracy); null without training */
  bestEpoch: number | null;
  /** sha256 of the starting weights (initializer names and bytes): equal across variants of one seed */
  initialWeights: string;
  seconds: number;
  finishedAt: string;
}

export const runKey = (r: Pick<RunRecord, 'data' | 'variant' | 'seed'>): string => JSON.stringify([r.data, r.variant, r.seed]);

/** Keys, in order, that differ between two settings objects (nested paths joined by dots). */
export function settingsDiff(a: unknown, b: unknown, path = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) => settingsDiff(a[k], b[k], path ? `${path}.${k}` : k));
  }
  return [`${path || 'settings'}: ${JSON.stringify(a)} recorded, ${JSON.stringify(b)} now`];
}

export class ResultsFile {
  private constructor(
    readonly path: string,
    readonly settings: unknown,
    readonly runs: RunRecord[],
    private exists: boolean,
  ) {}

  /**
   * A new file (nothing written until the first run; `force`: an existing one is replaced then), or with
   * `resume` the recorded one, checked against `settings` (a missing one: a new file).
   */
  static async open(path: string, settings: unknown, resume: boolean, force: boolean): Promise<ResultsFile> {
    if (!resume) return new ResultsFile(path, settings, [], force);
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new ResultsFile(path, settings, [], force);
      throw new UserError(path, `cannot be read (${(e as Error).message})`);
    }
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const parsed = lines.map((l, i) => {
      try {
        return JSON.parse(l) as unknown;
      } catch {
        throw new UserError(path, `line ${i + 1} is not JSON; this is not an experiment's results file (start over with --force)`);
      }
    });
    const head = parsed[0] as { kind?: string; settings?: unknown } | undefined;
    if (head?.kind !== 'settings') throw new UserError(path, 'does not start with the settings line of an experiment; start over with --force');
    const diffs = settingsDiff(head.settings, settings);
    if (diffs.length)
      throw new UserError(path, `was made with other settings (${diffs.join('; ')}); resume with the recorded settings, or start over with --force`);
    const runs: RunRecord[] = [];
    const seen = new Set<string>();
    parsed.slice(1).forEach((p, i) => {
      const r = p as Partial<RunRecord> & { kind?: string };
      if (r.kind !== 'run' || typeof r.data !== 'string' || typeof r.variant !== 'string' || !r.test || !Array.isArray(r.curve)) {
        throw new UserError(path, `line ${i + 2} is not a run record`);
      }
      const { kind: _kind, ...run } = r;
      const key = runKey(run as RunRecord);
      if (seen.has(key)) throw new UserError(path, `line ${i + 2} repeats the run ${key}`);
      seen.add(key);
      runs.push(run as RunRecord);
    });
    return new ResultsFile(path, settings, runs, true);
  }

  has(key: string): boolean {
    return this.runs.some((r) => runKey(r) === key);
  }

  /** Records a finished run: the whole file rewritten atomically with the new line at the end. */
  async add(run: RunRecord): Promise<void> {
    if (this.has(runKey(run))) throw new Error(`run ${runKey(run)} recorded twice`);
    // the folder appears with the first finished run: a run that fails before leaves nothing behind
    await fs.mkdir(dirname(this.path), { recursive: true });
    const lines = [JSON.stringify({ kind: 'settings', settings: this.settings }), ...[...this.runs, run].map((r) => JSON.stringify({ kind: 'run', ...r }))];
    await writeFileAtomic(this.path, lines.join('\n') + '\n', { replace: this.exists });
    this.exists = true;
    this.runs.push(run);
  }
}
