/**
 * `alrelu-convert pipeline` as a user runs it (the built binary, real onnxruntime, real files), on the
 * shipped MNIST CNN with a tight budget; then its report.html opened from disk in headless Chromium:
 * every chart drawn with the marks the record implies, no request leaving the file, no console error,
 * and every number on the page equal to the --json record. Hostile command lines end in one line.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../src/eval/evaluate.js';
import type { RunOk } from '../../src/eval/types.js';
import type { PipelineReport } from '../../src/pipeline/pipeline.js';
import { launchChromium } from '../../src/runtime/browser.js';
import { checkEps } from '../../src/runtime/doctor.js';
import type { FinetuneLog } from '../../src/train/loop.js';
import { CLI, errorLine, runCli, type CliResult } from '../cli.js';
import { ROOT } from '../helpers.js';

const MODEL = join(ROOT, 'models/mnist-cnn.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'alrelu-pipeline-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const STEPS = 12;
const LIMIT = 160;
const EPS = ['cpu', 'wasm'] as const;

/** Exit 2 and nothing but one `error:` line. */
function onlyError(r: CliResult): string {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  return errorLine(r);
}

describe('pipeline on the shipped MNIST CNN (cpu, wasm; 2 epochs of 12 steps, 160 test samples)', () => {
  const out = join(tmp, 'run');
  let r: CliResult;
  let rec: PipelineReport;
  beforeAll(async () => {
    r = await runCli(
      [
        'pipeline',
        MODEL,
        '--data',
        'mnist',
        '--ep',
        EPS.join(','),
        '--epochs',
        '2',
        '--max-steps',
        String(STEPS),
        '--limit',
        String(LIMIT),
        '-o',
        out,
        '--json',
      ],
      { timeoutMs: 170_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    rec = JSON.parse(r.stdout) as PipelineReport;
  }, 180_000);

  it('writes the models, the log, the record and the report, and --json is the record', () => {
    expect(readdirSync(out).sort()).toEqual([
      'mnist-cnn.alrelu.finetuned.log.json',
      'mnist-cnn.alrelu.finetuned.onnx',
      'mnist-cnn.alrelu.onnx',
      'pipeline.json',
      'report.html',
    ]);
    expect(JSON.parse(readFileSync(join(out, 'pipeline.json'), 'utf8'))).toEqual(rec);
    expect(rec.conversion.replaced).toBe(3);
    expect(rec.providers.used).toEqual([...EPS]);
    expect(rec.providers.checked.map((s) => s.ep)).toEqual([...EPS]);
    expect(rec.summary.map((s) => [s.ep, s.samples])).toEqual(EPS.map((ep) => [ep, LIMIT]));
    expect(rec.stages.map((s) => s.stage)).toEqual(['prepare', 'providers', 'convert', 'check', 'finetune', 'evaluate', 'report']);
    const staged = rec.stages.reduce((a, s) => a + s.seconds, 0);
    expect(staged).toBeLessThanOrEqual(rec.seconds);
    expect(staged).toBeGreaterThan(rec.seconds - 1);
  });

  it('its numbers are those of an independent evaluation of the written models, and of the fine-tuning log', async () => {
    const models = [MODEL, rec.files.converted, rec.files.finetuned];
    const again = await evaluate({ models, data: 'mnist', split: 'test', maxSamples: LIMIT, eps: ['cpu'] });
    const top1 = (m: string) => ((again.results.find((x) => x.ok && x.model === m) as RunOk).metrics as { top1: number }).top1;
    const cpu = rec.summary.find((s) => s.ep === 'cpu')!;
    expect([cpu.original, cpu.converted, cpu.finetuned]).toEqual(models.map(top1));
    expect(rec.conversionCheck).toMatchObject({ ep: 'cpu', original: top1(MODEL), converted: top1(rec.files.converted), samples: LIMIT });
    // wasm computes the same function: the same predictions on these samples
    const wasm = rec.summary.find((s) => s.ep === 'wasm')!;
    expect(wasm.agreement!.referenceEp).toBe('cpu');
    expect(wasm.agreement!.maxAbsDiff).toBeLessThan(1e-3);

    // the per-step losses are the log's epochs taken apart: each epoch's mean is the log's training loss
    const log = JSON.parse(readFileSync(rec.files.log, 'utf8')) as FinetuneLog;
    expect(rec.training.stepLosses).toHaveLength(2 * STEPS);
    for (const [k, e] of log.epochs.entries()) {
      const mean = rec.training.stepLosses.slice(k * STEPS, (k + 1) * STEPS).reduce((a, b) => a + b, 0) / STEPS;
      expect(mean).toBeCloseTo(e.trainLoss, 6);
      expect(rec.training.validation[k + 1]!.value).toBe(e.valMetric);
    }
    expect(rec.training.validation[0]).toMatchObject({ epoch: 0, value: log.initial.accuracy });
  });

  it('prints the summary table and the report path without --json', async () => {
    const r2 = await runCli([
      'pipeline',
      MODEL,
      '--data',
      'mnist',
      '--ep',
      'cpu',
      '--epochs',
      '1',
      '--max-steps',
      '3',
      '--limit',
      '64',
      '-o',
      join(tmp, 'text'),
    ]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toBe('');
    expect(r2.stderr).toMatch(/^ep\s+samples\s+original top-1\s+converted top-1\s+fine-tuned top-1/m);
    expect(r2.stderr).toMatch(/^cpu\s+64\s+\d+\.\d\d%/m);
    expect(r2.stderr.trimEnd().split('\n').at(-1)).toBe(`report: ${join(tmp, 'text', 'report.html')}`);
  });

  describe('report.html in headless Chromium, from disk', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await launchChromium('browser-wasm');
    });
    afterAll(async () => {
      await browser?.close();
    });

    it("draws every chart, asks the network for nothing, logs no error, and shows the record's numbers", async () => {
      const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
      const requests: string[] = [];
      const problems: string[] = [];
      // anything but the file itself is refused and remembered: the report must need nothing else
      await page.route('**/*', (route) => {
        const url = route.request().url();
        if (url === pathToFileURL(rec.files.report).href) return route.continue();
        requests.push(url);
        return route.abort();
      });
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      await page.goto(pathToFileURL(rec.files.report).href);
      expect(requests).toEqual([]);
      expect(problems).toEqual([]);

      const charts = await page.$$eval('svg[data-chart]', (svgs) =>
        svgs.map((s) => {
          const box = s.getBoundingClientRect();
          return {
            id: s.getAttribute('data-chart'),
            marks: Number(s.getAttribute('data-marks')),
            bars: s.querySelectorAll('rect.bar').length,
            points: s.querySelectorAll('circle.pt').length,
            w: box.width,
            h: box.height,
            values: [...s.querySelectorAll('[data-value]')].map((e) => e.getAttribute('data-value')),
          };
        }),
      );
      const byId = Object.fromEntries(charts.map((c) => [c.id, c]));
      expect(Object.keys(byId).sort()).toEqual(['accuracy', 'latency', 'loss', 'validation']);
      for (const c of charts) {
        expect(c.w, c.id!).toBeGreaterThan(300);
        expect(c.h, c.id!).toBeGreaterThan(50);
      }
      // accuracy and latency: a bar per model (original, converted, fine-tuned) per provider
      expect(byId.accuracy!.bars).toBe(3 * EPS.length);
      expect(byId.latency!.bars).toBe(3 * EPS.length);
      // loss: every step, and its running mean; validation: before training and after each epoch
      expect(byId.loss!.points).toBe(2 * 2 * STEPS);
      expect(byId.validation!.points).toBe(3);
      for (const c of charts) expect(c.marks).toBe(c.bars + c.points);
      // bars of nonzero values have width on screen
      const widths = await page.$$eval('svg[data-chart="accuracy"] rect.bar', (rs) => rs.map((r) => r.getBoundingClientRect().width));
      expect(widths.every((w) => w > 1)).toBe(true);

      const num = (v: string | null) => (v === '' || v === null ? null : Number(v));
      expect(byId.accuracy!.values.map(num)).toEqual(rec.summary.flatMap((s) => [s.original, s.converted, s.finetuned]));
      expect(byId.loss!.values.slice(0, 2 * STEPS).map(num)).toEqual(rec.training.stepLosses);
      expect(byId.validation!.values.map(num)).toEqual(rec.training.validation.map((v) => v.value));

      const table = (id: string) =>
        page.$$eval(`table[data-table="${id}"] tbody tr`, (trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => ({ text: td.textContent ?? '', value: td.getAttribute('data-value') }))),
        );
      // summary: accuracy per provider before and after, agreement, latency
      const summary = await table('summary');
      expect(summary.map((row) => row[0]!.text)).toEqual([...EPS]);
      summary.forEach((row, i) => {
        const s = rec.summary[i]!;
        expect(row.slice(2, 5).map((c) => num(c.value))).toEqual([s.original, s.converted, s.finetuned]);
        expect(num(row[7]!.value)).toBe(s.agreement?.maxAbsDiff ?? null);
        expect(num(row[8]!.value)).toBe(s.p50Ms);
        expect(row[4]!.text).toBe(`${(s.finetuned! * 100).toFixed(2)}%`);
      });
      // agreement: every provider against cpu, per model, as the evaluation measured it
      const agreement = await table('agreement');
      const measured = rec.evaluations.full!.agreement.flatMap((a) =>
        a.outputs.map((d) => [a.ep, a.referenceEp, d.maxAbsDiff, d.maxRelDiff, d.argmaxAgreementPct]),
      );
      expect(agreement.map((row) => [row[1]!.text, row[2]!.text, num(row[5]!.value), num(row[6]!.value), num(row[7]!.value)])).toEqual(measured);
      expect(agreement).toHaveLength(3);
      // latency: each run's p50, p95 and throughput
      const latency = await table('latency');
      const runs = rec.evaluations.full!.results.filter((x): x is RunOk => x.ok);
      expect(latency.map((row) => row.slice(5).map((c) => num(c.value)))).toEqual(
        EPS.flatMap((ep) => runs.filter((x) => x.ep === ep).map((x) => [x.latency.p50Ms, x.latency.p95Ms, x.latency.samplesPerSecond])),
      );
      // no external reference of any kind in the markup
      const html = readFileSync(rec.files.report, 'utf8');
      expect(html).not.toMatch(/<script|<link|<img|@import|url\(|src=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/i);
      await page.close();
    });
  });
});

describe('pipeline: hostile command lines', () => {
  it('a missing model: one line naming it, nothing created', async () => {
    const out = join(tmp, 'missing');
    const line = onlyError(await runCli(['pipeline', join(tmp, 'nope.onnx'), '--data', 'mnist', '--ep', 'cpu', '-o', out]));
    expect(line).toContain('nope.onnx');
    expect(existsSync(out)).toBe(false);
  });

  it('an execution provider asked for that cannot run here: one line with the reason and the fix, nothing created', async () => {
    const [cuda] = await checkEps({ eps: ['cuda'] });
    if (cuda!.usable) return; // a machine with CUDA has nothing to refuse
    const out = join(tmp, 'cuda');
    const line = onlyError(await runCli(['pipeline', MODEL, '--data', 'mnist', '--ep', 'cpu,cuda', '-o', out]));
    expect(line).toMatch(/^error: cuda: is not usable here: .+; fix: /);
    expect(existsSync(out)).toBe(false);
  });

  it('an unknown provider name is a usage error', async () => {
    const line = onlyError(await runCli(['pipeline', MODEL, '--data', 'mnist', '--ep', 'cpu,tpu', '-o', join(tmp, 'tpu')]));
    expect(line).toContain('tpu');
  });

  it('an output folder that holds files: refused without --force, untouched', async () => {
    const out = join(tmp, 'taken');
    mkdirSync(out);
    writeFileSync(join(out, 'report.html'), 'mine');
    const line = onlyError(await runCli(['pipeline', MODEL, '--data', 'mnist', '--ep', 'cpu', '-o', out]));
    expect(line).toMatch(/already exists and holds files \(use --force/);
    expect(readdirSync(out)).toEqual(['report.html']);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toBe('mine');
  });

  it('a model with nothing to convert (already ALReLU): one line, nothing created', async () => {
    const converted = join(tmp, 'run', 'mnist-cnn.alrelu.onnx');
    const src = existsSync(converted) ? converted : undefined;
    if (!src) throw new Error('the end-to-end run above writes the converted model this case feeds back');
    const out = join(tmp, 'again');
    const line = onlyError(await runCli(['pipeline', src, '--data', 'mnist', '--ep', 'cpu', '-o', out]));
    expect(line).toMatch(/is already ALReLU .*nothing to convert/);
    expect(existsSync(out)).toBe(false);
  });

  it('data the model cannot take: one line, and the folder it created is gone again', async () => {
    const out = join(tmp, 'iris');
    const r = await runCli(['pipeline', MODEL, '--data', 'iris', '--ep', 'cpu', '-o', out]);
    expect(r.code, r.stderr).toBe(2);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
    expect(errors, r.stderr).toHaveLength(1);
    expect(r.stderr.trimEnd().endsWith(errors[0]!)).toBe(true);
    expect(errors[0]).toMatch(/^error: mnist-cnn\.onnx: .*(shape|samples)/);
    expect(existsSync(out)).toBe(false);
  });

  it("markup and escape sequences in a model's file name stay text in the report and on the terminal", async () => {
    const dir = join(tmp, 'names');
    mkdirSync(dir);
    const model = join(dir, '<img src=x>&\x1b[2J.onnx');
    copyFileSync(MODEL, model);
    const out = join(tmp, 'names-out');
    const r = await runCli(['pipeline', model, '--data', 'mnist', '--ep', 'cpu', '--epochs', '1', '--max-steps', '2', '--limit', '32', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('\x1b');
    expect(r.stderr).toContain('\\x1b[2J');
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<img/i);
    expect(html).toContain('&lt;img src=x&gt;&amp;');
  });

  it('a data split given: the pipeline makes its own', async () => {
    const line = onlyError(await runCli(['pipeline', MODEL, '--data', 'mnist:test', '--ep', 'cpu', '-o', join(tmp, 'split')]));
    expect(line).toContain('splits the data itself');
  });

  it('Ctrl-C while fine-tuning: exit 130, and the folder it created is gone again', async () => {
    const out = join(tmp, 'interrupted');
    const child = spawn(process.execPath, [CLI, 'pipeline', MODEL, '--data', 'mnist', '--ep', 'cpu', '--epochs', '20', '-o', out], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      // once: the converted model is written and training has begun (a second Ctrl-C quits without cleaning up)
      if (!sent && /^before fine-tuning/m.test(stderr) && existsSync(join(out, 'mnist-cnn.alrelu.onnx'))) {
        sent = true;
        setTimeout(() => child.kill('SIGINT'), 1000);
      }
    });
    const code = await new Promise<number | null>((res) => child.on('close', res));
    expect(code, stderr).toBe(130);
    expect(stderr.trimEnd().split('\n').at(-1)).toMatch(/^error: .*mnist-cnn\.onnx: interrupted; the files this run had written were removed$/);
    expect(existsSync(out)).toBe(false);
  });
});
