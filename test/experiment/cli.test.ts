/**
 * `alrelu-convert experiment` end to end, as a user runs it: a tiny experiment, an interrupted one killed
 * after its first runs and resumed (same results as uninterrupted, no run repeated), settings that differ
 * refused, the swap-and-fine-tune design, and bad command lines.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, errorLine, runCli } from '../cli.js';
import { ROOT } from '../helpers.js';
import { buildModel, bytesOfModel, makeNode, tensorInfo } from '../convert/build.js';
import { DataType } from '../../src/onnx/dtype.js';
import { launchChromium } from '../../src/runtime/browser.js';

const dir = mkdtempSync(join(tmpdir(), 'alrelu-experiment-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// 2 data sets (tabular, image) × 2 seeds × 3 variants, one epoch, one thread (the same floats every time)
const TINY = ['experiment', '--data', 'iris,mnist', '--limit', '200', '--seeds', '2', '--epochs', '1', '--threads', '1'];
const PLAN = 12;

interface Line {
  kind: string;
  data?: string;
  variant?: string;
  seed?: number | null;
  seconds?: number;
  finishedAt?: string;
  [k: string]: unknown;
}
const lines = (folder: string): Line[] =>
  readFileSync(join(folder, 'results.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Line);
const runsOf = (folder: string) => lines(folder).filter((l) => l.kind === 'run');
/** what a run measured, without when and how long */
const measured = (l: Line) => {
  const { seconds: _s, finishedAt: _f, ...rest } = l;
  return rest;
};

describe('experiment', () => {
  const full = join(dir, 'full');

  it('runs every variant × data × seed, and writes the table, JSON, Markdown and HTML', async () => {
    const r = await runCli([...TINY, '-o', full]);
    expect(r.code, r.stderr).toBe(0);
    const runs = runsOf(full);
    expect(runs).toHaveLength(PLAN);
    expect(new Set(runs.map((x) => JSON.stringify([x.data, x.variant, x.seed]))).size).toBe(PLAN);
    expect(r.stderr).toMatch(/alrelu vs relu\s+accuracy/);
    const summary = JSON.parse(readFileSync(join(full, 'summary.json'), 'utf8'));
    expect(summary.settings.data.map((d: { spec: string; counts: { train: number } }) => [d.spec, d.counts.train])).toEqual([
      ['iris', 120],
      ['mnist', 160],
    ]);
    for (const d of summary.analysis.data) {
      expect(d.sameStart).toBe(true);
      // the summary's means are the runs' means
      for (const v of d.variants) {
        const acc = runs.filter((x) => x.data === d.data && x.variant === v.variant).map((x) => (x.test as { accuracy: number }).accuracy);
        expect(v.metrics.accuracy.mean).toBeCloseTo(acc.reduce((a, b) => a + b, 0) / acc.length, 12);
      }
      expect(d.comparisons.map((c: { a: string; b: string }) => `${c.a}/${c.b}`)).toContain('alrelu/leakyrelu');
    }
    // same seed, same starting weights, whatever the activation
    for (const seed of [0, 1]) expect(new Set(runs.filter((x) => x.seed === seed && x.data === 'iris').map((x) => x.initialWeights)).size).toBe(1);
    const html = readFileSync(join(full, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script|src=|href="http/);
    expect(html.match(/class="chart curves"/g)).toHaveLength(2);
    // every run's test accuracy is one point, carrying the JSON's value
    const points = [...html.matchAll(/data-variant="([^"]+)" data-seed="(\d+)" data-value="([^"]+)"/g)];
    expect(points).toHaveLength(4 * PLAN); // accuracy, macro-F1, AUC and test loss
    for (const x of runs)
      expect(points.some((p) => p[1] === x.variant && Number(p[2]) === x.seed && Number(p[3]) === (x.test as { accuracy: number }).accuracy)).toBe(true);
    const md = readFileSync(join(full, 'results.md'), 'utf8');
    expect(md).toMatch(/^Produced by `alrelu-convert experiment --data iris,mnist .*` on .*, \d{4}-\d\d-\d\d\./);
    expect(md).toMatch(/\| iris \| alrelu \| 2 \|/);
  }, 120_000);

  it('report.html in headless Chromium, from disk: every chart drawn, nothing fetched, the numbers of summary.json', async () => {
    const browser = await launchChromium('browser-wasm');
    try {
      const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
      const file = pathToFileURL(join(full, 'report.html')).href;
      const requests: string[] = [];
      const problems: string[] = [];
      await page.route('**/*', (route) => {
        if (route.request().url() === file) return route.continue();
        requests.push(route.request().url());
        return route.abort();
      });
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(file);
      expect(requests).toEqual([]);
      expect(problems).toEqual([]);
      const summary = JSON.parse(readFileSync(join(full, 'summary.json'), 'utf8'));
      const charts = await page.$$eval('svg[data-chart]', (svgs) =>
        svgs.map((svg) => {
          const box = svg.getBoundingClientRect();
          return {
            id: svg.getAttribute('data-chart'),
            w: box.width,
            h: box.height,
            seeds: svg.querySelectorAll('path.seed').length,
            means: svg.querySelectorAll('path.mean').length,
            points: [...svg.querySelectorAll('circle.point')].map((c) => ({
              variant: c.getAttribute('data-variant'),
              seed: Number(c.getAttribute('data-seed')),
              value: Number(c.getAttribute('data-value')),
              r: c.getBoundingClientRect().width,
            })),
          };
        }),
      );
      expect(charts.map((c) => c.id)).toEqual(['iris', 'mnist'].flatMap((d) => ['curves', 'accuracy', 'macroF1', 'auc', 'loss'].map((m) => `${d}:${m}`)));
      for (const c of charts) {
        expect(c.w, c.id!).toBeGreaterThan(300);
        expect(c.h, c.id!).toBeGreaterThan(100);
        const [data, metric] = c.id!.split(':') as [string, string];
        const runs = summary.runs.filter((r: { data: string }) => r.data === data);
        if (metric === 'curves') {
          expect(c.seeds).toBe(runs.length);
          expect(c.means).toBe(3);
          continue;
        }
        // one visible point per run, carrying the run's own test score
        expect(c.points).toHaveLength(runs.length);
        for (const p of c.points) {
          expect(p.r).toBeGreaterThan(2);
          const run = runs.find((r: { variant: string; seed: number }) => r.variant === p.variant && r.seed === p.seed);
          expect(p.value).toBe(run.test[metric]);
        }
      }
      for (const d of summary.analysis.data) {
        const rows = await page.$$eval(`table[data-table="summary:${d.data}"] tbody tr`, (trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => ({ text: td.textContent, value: td.getAttribute('data-value') }))),
        );
        expect(rows.map((r) => r[0]!.text)).toEqual(['relu', 'leakyrelu', 'alrelu']);
        rows.forEach((r, i) => {
          const v = d.variants[i];
          expect(r.slice(2).map((c) => Number(c.value))).toEqual([v.metrics.accuracy.mean, v.metrics.macroF1.mean, v.metrics.auc.mean, v.metrics.loss.mean]);
          expect(r[2]!.text).toBe(`${(100 * v.metrics.accuracy.mean).toFixed(2)}% ± ${(100 * v.metrics.accuracy.std).toFixed(2)}`);
        });
        const tests = await page.$$eval(`table[data-table="tests:${d.data}"] tbody tr`, (trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.getAttribute('data-value'))),
        );
        const num = (v: string | null) => (v === '' || v === null ? null : Number(v));
        expect(tests.map((r) => [num(r[4]!), num(r[5]!)])).toEqual(
          d.comparisons.map((c: { test: { wilcoxon: { p: number | null }; t: { p: number | null } } }) => [c.test.wilcoxon.p, c.test.t.p]),
        );
      }
    } finally {
      await browser.close();
    }
  }, 120_000);

  it('resumes after a kill: no finished run repeated, the same results as without the interruption', async () => {
    const cut = join(dir, 'cut');
    const child = spawn(process.execPath, [CLI, ...TINY, '-o', cut], { cwd: ROOT, stdio: 'ignore' });
    const file = join(cut, 'results.jsonl');
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        const n = existsSync(file) ? runsOf(cut).length : 0;
        if (n >= 2) {
          clearInterval(poll);
          child.kill('SIGKILL');
        }
      }, 10);
      child.on('exit', () => {
        clearInterval(poll);
        resolve();
      });
      child.on('error', reject);
    });
    const before = runsOf(cut);
    expect(before.length).toBeGreaterThanOrEqual(2);
    expect(before.length).toBeLessThan(PLAN);

    // settings that differ are refused, and the record is left as it was
    const other = await runCli([...TINY.map((a, i) => (TINY[i - 1] === '--epochs' ? '2' : a)), '-o', cut, '--resume']);
    expect(other.code).toBe(2);
    expect(errorLine(other)).toMatch(/results\.jsonl: was made with other settings \(epochs: 1 recorded, 2 now\)/);
    expect(runsOf(cut)).toEqual(before);
    // without --resume the record is not replaced either
    const again = await runCli([...TINY, '-o', cut]);
    expect(errorLine(again)).toMatch(/--resume to continue it, or --force/);

    const r = await runCli([...TINY, '-o', cut, '--resume']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/recorded earlier, not run again/g)).toHaveLength(before.length);
    const after = runsOf(cut);
    expect(after).toHaveLength(PLAN);
    // the runs recorded before the kill are untouched (same finishing times): none was run again
    expect(after.slice(0, before.length)).toEqual(before);
    const key = (x: Line) => JSON.stringify([x.data, x.variant, x.seed]);
    const sorted = (xs: Line[]) => [...xs].sort((a, b) => key(a).localeCompare(key(b))).map(measured);
    expect(sorted(after)).toEqual(sorted(runsOf(full)));
    // the summary is the same experiment's
    const a = JSON.parse(readFileSync(join(cut, 'summary.json'), 'utf8'));
    const b = JSON.parse(readFileSync(join(full, 'summary.json'), 'utf8'));
    expect(a.analysis).toEqual(b.analysis);
    expect(a.skipped).toBe(before.length);
  }, 120_000);

  it("Ctrl-C stops after the current run's step, keeps every finished run, and says how to continue", async () => {
    const out = join(dir, 'sigint');
    const child = spawn(process.execPath, [CLI, ...TINY, '-o', out], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const file = join(out, 'results.jsonl');
    const code = await new Promise<number | null>((resolve) => {
      const poll = setInterval(() => {
        if (existsSync(file) && runsOf(out).length >= 1) {
          clearInterval(poll);
          child.kill('SIGINT');
        }
      }, 10);
      child.on('exit', (c) => {
        clearInterval(poll);
        resolve(c);
      });
    });
    expect(code).toBe(130);
    expect(stderr).toMatch(/error: experiment: interrupted; every finished run is in .*results\.jsonl: continue with --resume/);
    const kept = runsOf(out);
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThan(PLAN);
    expect(existsSync(join(out, 'summary.json'))).toBe(false);
  }, 120_000);

  it('swap and fine-tune: the pretrained ReLU model as is, converted, converted + fine-tuned, and the ReLU control', async () => {
    const out = join(dir, 'swap');
    const r = await runCli([
      'experiment',
      '--model',
      'models/iris-mlp.onnx',
      '--data',
      'iris',
      '--seeds',
      '2',
      '--epochs',
      '1',
      '--threads',
      '1',
      '-o',
      out,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.runs.map((x: Line) => `${x.variant}:${x.seed}`)).toEqual([
      'original:null',
      'converted:null',
      'alrelu-finetuned:0',
      'relu-finetuned:0',
      'alrelu-finetuned:1',
      'relu-finetuned:1',
    ]);
    // models/README.md: iris-mlp scores 93.33% on iris:test (14 of 15)
    expect(s.runs[0].test.accuracy).toBeCloseTo(14 / 15, 12);
    expect(s.analysis.data[0].comparisons.map((c: { a: string; b: string; metric: string }) => `${c.a}/${c.b}/${c.metric}`)).toEqual([
      'alrelu-finetuned/relu-finetuned/accuracy',
      'alrelu-finetuned/relu-finetuned/macroF1',
      'alrelu-finetuned/relu-finetuned/auc',
      'alrelu-finetuned/relu-finetuned/loss',
    ]);
    expect(s.settings.model.sha256).toMatch(/^[0-9a-f]{64}$/);
  }, 120_000);

  it('bad command lines: one error line, exit 2, nothing written', async () => {
    const out = join(dir, 'bad');
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const noRelu = join(dir, 'no-relu.onnx');
    writeFileSync(
      noRelu,
      bytesOfModel(
        buildModel({
          nodes: [makeNode('Identity', ['x'], ['y'], 'id')],
          inputs: [tensorInfo('x', DataType.FLOAT, ['N', 4])],
          outputs: [tensorInfo('y', DataType.FLOAT, ['N', 4])],
        }),
      ),
    );
    const cases: [string[], RegExp][] = [
      [['--data', 'iris', '--arch', 'cnn'], /cnn: needs image samples/],
      [['--data', 'iris', '--variants', 'relu,gelu'], /--variants: unknown 'gelu'/],
      [['--data', 'iris', '--seeds', '0'], /--seeds: expected an integer >= 1/],
      [['--data', 'iris', '--hidden', '0'], /--hidden: expected an integer >= 1/],
      [['--data', 'iris:test'], /iris:test: names a split/],
      [['--data', 'iris,iris'], /--data: names a data set twice/],
      [['--data', 'nonesuch'], /nonesuch/],
      [['--data', 'iris', '--lr', '-1'], /--lr: must be above 0/],
      [['--model', 'models/iris-mlp.onnx'], /--data: needs the labelled data/],
      [['--model', 'models/iris-mlp.onnx', '--data', 'iris,penguins'], /--data: takes one data set with --model/],
      [['--model', join(dir, 'missing.onnx'), '--data', 'iris'], /missing\.onnx/],
      [['--model', noRelu, '--data', 'iris'], /no-relu\.onnx: has no Relu or LeakyRelu to convert/],
    ];
    for (const [args, msg] of cases) {
      const r = await runCli([
        'experiment',
        ...args,
        '-o',
        out,
        '--seeds',
        args.includes('--seeds') ? args[args.indexOf('--seeds') + 1]! : '1',
        '--epochs',
        '1',
      ]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(errorLine(r)).toMatch(msg);
      // not even the folder: it appears with the first finished run
      expect(existsSync(out), args.join(' ')).toBe(false);
    }
    // the output folder is a file
    const r = await runCli(['experiment', '--data', 'iris', '-o', file]);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toMatch(/a-file/);
  }, 120_000);
});
