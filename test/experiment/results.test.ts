/** The results file: what a resume accepts and refuses, and that a recorded file is never half written. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { ResultsFile, settingsDiff, type RunRecord } from '../../src/experiment/results.js';

const dir = mkdtempSync(join(tmpdir(), 'alrelu-results-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SETTINGS = { mode: 'scratch', epochs: 3, arch: { hidden: [64] }, seeds: [0, 1] };
const run = (variant: string, seed: number): RunRecord => ({
  data: 'iris',
  variant,
  seed,
  test: { accuracy: 0.9, macroF1: 0.8, auc: null, loss: 0.3 },
  curve: [{ epoch: 0, trainLoss: null, valAccuracy: 0.3 }],
  bestEpoch: 1,
  initialWeights: 'ab',
  seconds: 0.1,
  finishedAt: '2026-01-01T00:00:00.000Z',
});

describe('ResultsFile', () => {
  it('records runs, and a resume reads them back with the same settings', async () => {
    const p = join(dir, 'ok.jsonl');
    const f = await ResultsFile.open(p, SETTINGS, false, false);
    await f.add(run('relu', 0));
    await f.add(run('alrelu', 0));
    await expect(f.add(run('relu', 0))).rejects.toThrow(/recorded twice/);
    const text = readFileSync(p, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.trim().split('\n')).toHaveLength(3);
    const again = await ResultsFile.open(p, SETTINGS, true, false);
    expect(again.runs).toEqual([run('relu', 0), run('alrelu', 0)]);
    expect(again.has(JSON.stringify(['iris', 'alrelu', 0]))).toBe(true);
    expect(again.has(JSON.stringify(['iris', 'alrelu', 1]))).toBe(false);
    // a resume of nothing yet recorded starts fresh
    expect((await ResultsFile.open(join(dir, 'none.jsonl'), SETTINGS, true, false)).runs).toEqual([]);
  });

  it('refuses other settings, naming each difference', async () => {
    const p = join(dir, 'other.jsonl');
    await (await ResultsFile.open(p, SETTINGS, false, false)).add(run('relu', 0));
    const other = { ...SETTINGS, epochs: 4, arch: { hidden: [32] } };
    await expect(ResultsFile.open(p, other, true, false)).rejects.toThrow(/epochs: 3 recorded, 4 now; arch\.hidden: \[64\] recorded, \[32\] now/);
    expect(settingsDiff({ a: [1, 2] }, { a: [1, 2] })).toEqual([]);
    expect(settingsDiff({ a: 1 }, { b: 1 })).toEqual(['a: 1 recorded, undefined now', 'b: undefined recorded, 1 now']);
  });

  it("refuses files that are not an experiment's record", async () => {
    const cases: [string, RegExp][] = [
      ['not json\n', /line 1 is not JSON/],
      ['{"kind":"run"}\n', /does not start with the settings line/],
      ['', /does not start with the settings line/],
      [`${JSON.stringify({ kind: 'settings', settings: SETTINGS })}\n{"kind":"run","data":"iris"}\n`, /line 2 is not a run record/],
      [
        `${JSON.stringify({ kind: 'settings', settings: SETTINGS })}\n${JSON.stringify({ kind: 'run', ...run('relu', 0) })}\n${JSON.stringify({ kind: 'run', ...run('relu', 0) })}\n`,
        /line 3 repeats the run/,
      ],
      [
        `${JSON.stringify({ kind: 'settings', settings: SETTINGS })}\n{"kind":"run","data":"iris","variant":"relu","seed":0,"test":{},"curve":[]`,
        /line 2 is not JSON/,
      ],
    ];
    for (const [text, msg] of cases) {
      const p = join(dir, 'bad.jsonl');
      writeFileSync(p, text);
      const open = ResultsFile.open(p, SETTINGS, true, false);
      await expect(open).rejects.toThrow(UserError);
      await expect(ResultsFile.open(p, SETTINGS, true, false)).rejects.toThrow(msg);
    }
  });
});
