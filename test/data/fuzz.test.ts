/**
 * Data-loader fuzzing (issue 8, §9): mutated real .npz, .npy, CSV, PNG, JPEG and .pb files, and the
 * issue's attacks, through the public loadData, in a child process (test/data/fuzzLoads.ts) whose
 * peak memory is measured and whose JS heap is capped. Every case must end in a one-line UserError
 * (without control characters, from the loaders of src/data) or a valid load, deterministically; none
 * may take more memory than its data size limit allows.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers.js';
import { CASES_PER_SEED, LIMIT, prepare, type FuzzSummary } from './fuzzLoads.js';

const work = mkdtempSync(join(tmpdir(), 'alrelu-fuzz-data-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const MiB = 2 ** 20;
const ATTACKS = 11;
const SEEDS = 9;

describe('fuzz: mutated real data files', () => {
  it(`${SEEDS} seed files x ${CASES_PER_SEED} mutations and ${ATTACKS} attacks: only clean errors or valid loads, in bounded memory`, () => {
    prepare(work);
    // A 256 MiB heap: a loader that builds a huge JS structure (a CSV's cells, a label's class names)
    // dies here instead of passing; buffers outside the heap are what the peak RSS bound catches.
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--max-old-space-size=256', 'test/data/fuzzLoads.ts', work], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 110_000,
      maxBuffer: 64 * MiB,
    });
    expect(r.status, `fuzz run failed (signal ${r.signal}):\n${r.stderr.slice(-4000)}`).toBe(0);
    const s = JSON.parse(r.stdout.trim().split('\n').pop()!) as FuzzSummary;
    console.log(
      `data-loader fuzz: ${s.tried} cases tried, ${s.held} held (${s.loaded} loaded, ${s.refused} refused with a one-line error); peak RSS ${s.rssPeakMiB.toFixed(0)} MiB from ${s.rssBeforeMiB.toFixed(0)} MiB; slowest case ${s.slowestMs.toFixed(0)} ms`,
    );
    expect(s.failures, s.failures.slice(0, 5).join('\n\n')).toEqual([]);
    expect(s.tried).toBe(SEEDS * CASES_PER_SEED + ATTACKS);
    expect(s.held).toBe(s.tried);
    // Every attack is refused, by the check that names it.
    expect(s.attacks.map((a) => a.error)).toEqual([
      expect.stringMatching(/a\.npz: member x\.npy declares 381 MiB uncompressed, above the data size limit \(64 MiB\)/),
      expect.stringMatching(/a\.npz: .*member x\.npy inflates to more than the 100 bytes its directory entry declares/),
      expect.stringMatching(/a\.npz: .*member x\.npy inflates to more than the 0 bytes its directory entry declares/),
      expect.stringMatching(/0\.png: declares 30000x30000 pixels, which take about 5.9 GiB to decode, above the data size limit/),
      expect.stringMatching(/0\.png: declares 30000x30000 pixels, which take about 5.9 GiB to decode, above the data size limit/),
      expect.stringMatching(/0\.png: corrupt PNG image: its image data inflates to more than the 286 bytes its 16x16 header implies/),
      expect.stringMatching(/0\.jpg: declares 65535x65535 pixels, .* above the data size limit/),
      expect.stringMatching(/0\.jpg: declares 8000x8000 pixels, .* above the data size limit \(64 MiB\)/),
      expect.stringMatching(/x\.npy: .*needs 40000000000 data bytes, found 16 \(truncated\?\)/),
      expect.stringMatching(/x\.npy: .*declares more data than can be counted/),
      expect.stringMatching(/x\.npy: label y\[2\] = 1099511627776 is above 1048575, the largest class index supported/),
    ]);
    // Both outcomes occur for every seed: the mutations neither all break the files nor all miss.
    for (const [name, t] of Object.entries(s.perSeed)) {
      expect(t.refused, name).toBeGreaterThan(0);
      expect(t.loaded, name).toBeGreaterThan(0);
    }
    // Bounded memory: the whole run, 400 MB bombs and 5 GiB images included, stays within a few times
    // the data size limit above where it started; no load keeps more than the limit after it returns.
    expect(s.rssPeakMiB - s.rssBeforeMiB).toBeLessThan((3 * LIMIT) / MiB);
    expect(s.maxRetainedMiB).toBeLessThan(LIMIT / MiB);
  });
});
