import { describe, expect, it } from 'vitest';
import { compareModels, diffOutputs, epAgreement } from '../../src/eval/compare.js';
import { LatencyRecorder, percentile } from '../../src/eval/latency.js';
import { evalDocument, formatSummary, renderHtml } from '../../src/eval/report.js';
import { formatTable, shortNames, table } from '../../src/eval/table.js';
import type { TableBlock } from '../../src/eval/document.js';
import type { EvalReport } from '../../src/eval/types.js';
import { classificationMetrics } from '../../src/eval/metrics.js';

describe('latency', () => {
  it('interpolates percentiles like numpy', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95)).toBeCloseTo(9.55, 12);
    expect(percentile([7], 95)).toBe(7);
  });
  it('excludes warm-up and keeps the partial last batch out of percentiles only', () => {
    const rec = new LatencyRecorder(4, 2);
    expect(rec.warming).toBe(true);
    rec.warm();
    rec.warm();
    expect(rec.warming).toBe(false);
    rec.record(10, 4);
    rec.record(20, 4);
    rec.record(1, 2);
    const s = rec.summary();
    expect(s).toMatchObject({ batchSize: 4, warmupRuns: 2, runs: 2, p50Ms: 15, minMs: 10, maxMs: 20, samples: 10, totalMs: 31 });
    expect(s.samplesPerSecond).toBeCloseTo(10_000 / 31, 9);
  });
});

describe('compare', () => {
  const a = { y: { rowSize: 3, data: Float64Array.from([1, 2, 3, 3, 2, 1]) } };
  const b = { y: { rowSize: 3, data: Float64Array.from([1, 2, 3.5, 3, 4, 1]) } };
  it('reports max abs/rel diff and argmax agreement', () => {
    const [d] = diffOutputs(a, b);
    expect(d).toEqual({ output: 'y', maxAbsDiff: 2, maxRelDiff: 1, argmaxAgreementPct: 50, samples: 2 });
    const [e] = epAgreement('m.onnx', [
      { ep: 'cpu', outputs: a },
      { ep: 'wasm', outputs: b },
    ]);
    expect(e).toMatchObject({ model: 'm.onnx', referenceEp: 'cpu', ep: 'wasm' });
  });
  it('puts each model beside the baseline on the same provider', () => {
    const score = (v: number) => ({ metric: 'top1' as const, value: v, higherIsBetter: true, loss: 1 - v });
    const c = compareModels(
      [
        { model: 'orig', ep: 'cpu', score: score(0.98), outputs: a },
        { model: 'conv', ep: 'cpu', score: score(0.95), outputs: b },
        { model: 'orig', ep: 'wasm', score: score(0.98), outputs: a },
      ],
      ['orig', 'conv'],
    );
    expect(c).toHaveLength(1);
    expect(c[0]!.drop).toBeCloseTo(0.03, 12);
    expect(c[0]!.lossDelta).toBeCloseTo(0.03, 12);
  });
});

describe('tables and report', () => {
  it('aligns columns, numbers to the right', () => {
    const t = formatTable(
      ['name', 'value'],
      [
        ['a', '1.5'],
        ['long name', '10.25'],
      ],
    );
    expect(t.split('\n')).toEqual(['name       value', '---------  -----', 'a            1.5', 'long name  10.25']);
  });
  it('lists headerless rows for the CLI with the same aligner: printable, no trailing blanks', () => {
    const t = table(
      [
        ['a', 'x\x1b[2J', ''],
        ['long key', 'y'],
      ],
      '> ',
    );
    expect(t).toBe('> a         x\\x1b[2J\n> long key  y');
    expect(table([])).toBe('');
  });
  it('disambiguates colliding model file names', () => {
    const m = shortNames(['a/x/model.onnx', 'b/x/model.onnx', 'c/other.onnx']);
    expect([...m.values()]).toEqual(['a/x/model.onnx', 'b/x/model.onnx', 'c/other.onnx']);
    expect([...shortNames(['/p/q/orig.onnx', '/p/q/conv.onnx']).values()]).toEqual(['orig.onnx', 'conv.onnx']);
  });
  it('renders a self-contained HTML report and a terminal summary', () => {
    const m = classificationMetrics([2, 1, 0, 0, 3, 1, 1, 0, 2], [0, 1, 1], 3);
    const latency = { batchSize: 3, warmupRuns: 2, runs: 1, p50Ms: 1, p95Ms: 1, meanMs: 1, minMs: 1, maxMs: 1, samplesPerSecond: 3000, samples: 3, totalMs: 1 };
    const feed = { input: 'x', declaredShape: ['N', 3], feedShape: [3, 3], output: 'y', batching: 'dynamic' as const, batchSize: 3 };
    const report: EvalReport = {
      createdAt: '2026-01-01T00:00:00Z',
      data: { spec: 'toy', name: 'toy <b>', task: 'classification', split: 'all', count: 3, classes: ['a', 'b', 'c'], preprocess: {} },
      requestedBatchSize: 3,
      models: ['m.onnx'],
      eps: ['cpu', 'wasm'],
      results: [
        { model: 'm.onnx', ep: 'cpu', ok: true, threads: 2, feed, metrics: { task: 'classification', ...m }, latency },
        { model: 'm.onnx', ep: 'wasm', ok: false, stage: 'open', error: 'not usable' },
      ],
      agreement: [],
      comparison: [],
    };
    const html = renderHtml(report);
    expect(html).toContain('<svg');
    expect(html).toContain('toy &lt;b&gt;');
    expect(html).not.toMatch(/<script|<link|src="http|href="http/);
    const text = formatSummary(report);
    expect(text).toContain('66.67%');
    expect(text).toMatch(/^threads: cpu 2$/m);
    // the latency table's ep and threads, the thread count carrying its number
    expect(html).toMatch(/<td class="l">cpu<\/td><td data-value="2">2<\/td>/);
    expect(text).toMatch(/Failed:\n.*\n.*\nm\.onnx\s+wasm\s+open\s+not usable/);
  });
  it('writes the report once: the text and HTML are renderings of one document, the HTML cells carrying the JSON numbers', () => {
    const m = classificationMetrics([0.2, 0.7, 0.1, 0.6, 0.3, 0.1], [1, 2], 3);
    const latency = {
      batchSize: 2,
      warmupRuns: 1,
      runs: 3,
      p50Ms: 1.25,
      p95Ms: 2.5,
      meanMs: 1.5,
      minMs: 1,
      maxMs: 3,
      samplesPerSecond: 1600,
      samples: 6,
      totalMs: 4,
    };
    const feed = { input: 'x', declaredShape: [2, 3], feedShape: [2, 3], output: 'y', batching: 'single' as const, batchSize: 2 };
    const run = (model: string, ep: 'cpu' | 'wasm') => ({
      model,
      ep,
      ok: true as const,
      threads: 1,
      feed,
      metrics: { task: 'classification' as const, ...m },
      latency,
    });
    const report: EvalReport = {
      createdAt: 'now',
      data: { spec: 'toy', name: 'toy', task: 'classification', split: 'all', count: 2, preprocess: {} },
      requestedBatchSize: 2,
      models: ['a/m.onnx', 'b/m.onnx'],
      eps: ['cpu', 'wasm'],
      results: [run('a/m.onnx', 'cpu'), run('a/m.onnx', 'wasm'), run('b/m.onnx', 'cpu')],
      agreement: [
        {
          model: 'a/m.onnx',
          ep: 'wasm',
          referenceEp: 'cpu',
          outputs: [{ output: 'y', maxAbsDiff: 3e-7, maxRelDiff: 1e-6, argmaxAgreementPct: 100, samples: 2 }],
        },
      ],
      comparison: [],
    };
    const doc = evalDocument(report);
    const text = formatSummary(report);
    const html = renderHtml(report);
    const tables = doc.sections.flatMap((s) => s.blocks).filter((b): b is TableBlock => b.kind === 'table');
    expect(tables.map((t) => t.id)).toEqual(['classification', 'latency', 'agreement']);
    for (const t of tables) {
      // the same headers and cells in both renderings (the text pads them into columns)
      expect(text).toMatch(new RegExp(t.headers.map((h) => h.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('\\s+')));
      expect(html).toContain(`data-table="${t.id}"`);
      for (const row of t.rows) expect(text).toMatch(new RegExp(row.map((c) => c.text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('\\s+')));
    }
    // numbers travel with their text: the top-1 cell and bar carry the metric, the agreement cell its percentage
    expect(html).toContain(`<td data-value="${m.top1}">${(m.top1 * 100).toFixed(2)}%</td>`);
    expect(html.match(new RegExp(`class="bar"[^>]*data-value="${m.top1}"`, 'g'))).toHaveLength(3);
    expect(html).toContain('<td data-value="100">100.00%</td>');
    expect(html).toContain('data-value="3e-7"');
    // the confusion matrices: one per run, every count a mark with its number
    expect(html.match(/data-chart="confusion-\d"/g)).toHaveLength(3);
    expect(html).toMatch(/<rect class="cell"[^>]*data-value="1"><title>true 1, predicted 1: 1<\/title>/);
  });
});
