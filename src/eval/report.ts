/**
 * Presenting an EvalReport: `evalDocument` builds the report once as a document (src/eval/document.ts:
 * facts, then sections of tables and charts whose cells carry their numbers), and the two renderers
 * turn it into aligned terminal tables (`formatSummary`) or one self-contained HTML file (`renderHtml`:
 * inline CSS and SVG, no scripts, fonts or images fetched) that can be mailed or archived as is.
 */
import type { AdapterInfo } from '../runtime/types.js';
import type { RunFailed, RunOk, EvalReport } from './types.js';
import { describeImageSize } from '../data/imageSize.js';
import { cell, renderHtml as documentHtml, renderText, type Block, type Cell, type ReportDocument, type Section } from './document.js';
import { fmt, pct, sci, shortNames } from './table.js';

type Classification = Extract<RunOk['metrics'], { task: 'classification' }>;
type Regression = Extract<RunOk['metrics'], { task: 'regression' }>;
type Reference = Extract<RunOk['metrics'], { task: 'reference' }>;

/** What the terminal summary shows of the facts; the HTML file shows them all. */
const SUMMARY_FACTS = ['data', 'image size', 'threads'];

function adapterLine(a: AdapterInfo): string {
  return `${a.name} (${a.software ? 'software: on the CPU, latency is not a GPU figure' : 'hardware'}${a.fallback ? `; auto fell back: ${a.fallback}` : ''})`;
}

/** The batch a run fed, and how, where that was not a dynamic batch. */
function feedText(run: RunOk): string {
  return run.feed.batching === 'dynamic' ? String(run.feed.batchSize) : `${run.feed.batchSize} (${run.feed.batching})`;
}

const agreeCell = (v: number | null | undefined): Cell => cell(v === null || v === undefined ? '-' : `${v.toFixed(2)}%`, v ?? null);
const pctCell = (v: number | null | undefined): Cell => cell(pct(v), v ?? null);
const fmtCell = (v: number | null | undefined, digits?: number): Cell => cell(fmt(v, digits), v ?? null);
const sciCell = (v: number | null | undefined): Cell => cell(sci(v), v ?? null);
const count = (n: number): Cell => cell(String(n), n);

/** Everything the report says, once: the terminal and HTML renderings are views of this. */
export function evalDocument(report: EvalReport): ReportDocument {
  const names = shortNames(report.models);
  const name = (m: string) => names.get(m) ?? m;
  const runs = report.results.filter((x): x is RunOk => x.ok);
  const failed = report.results.filter((x): x is RunFailed => !x.ok);
  const d = report.data;
  // one runtime per provider in a report, so one thread count and adapter each
  const threads = [...new Map(runs.map((r) => [r.ep, r.threads])).entries()];
  const adapters = [...new Map(runs.filter((r) => r.adapter).map((r) => [r.ep, r.adapter!])).entries()];
  const pre = d.preprocess;
  const preText =
    [
      pre.scale !== undefined ? `scale ${pre.scale}` : '',
      pre.mean ? `mean ${pre.mean.join(',')}` : '',
      pre.std ? `std ${pre.std.join(',')}` : '',
      pre.layout ? `layout ${pre.layout}` : '',
    ]
      .filter(Boolean)
      .join(', ') || 'none';
  const facts: [string, string][] = [
    ['data', `${d.name} (${d.split}, ${d.count} ${d.task === 'reference' ? 'reference cases' : 'samples'})`],
    ...(d.spec !== d.name ? [['source', d.spec] as [string, string]] : []),
    ['preprocessing', preText],
    ...(d.imageSize ? [['image size', describeImageSize(d.imageSize)] as [string, string]] : []),
    ['models', report.models.join(', ')],
    ['providers', report.eps.join(', ')],
    ['requested batch size', String(report.requestedBatchSize)],
    ...(threads.length ? [['threads', threads.map(([ep, n]) => `${ep} ${n}`).join(', ')] as [string, string]] : []),
    ...adapters.map(([ep, a]) => [`${ep} adapter`, adapterLine(a)] as [string, string]),
    ['created', report.createdAt],
  ];
  /** Bars grouped by model, one per provider. */
  const bars = (id: string, title: string, of: RunOk[], value: (r: RunOk) => number, text: (v: number) => string, unit?: 'fraction' | 'ms'): Block => ({
    kind: 'bars',
    id,
    title,
    unit,
    series: [...new Set(of.map((r) => r.ep))],
    groups: [...new Set(of.map((r) => r.model))].map((m) => ({
      label: name(m),
      bars: of.filter((r) => r.model === m).map((r) => ({ series: r.ep, value: value(r), text: text(value(r)) })),
    })),
    ...(unit === 'fraction' ? { scale: { type: 'linear' as const, min: 0, max: 1 } } : {}),
  });
  const sections: Section[] = [];

  const cls = runs.filter((r) => r.metrics.task === 'classification');
  if (cls.length) {
    sections.push({
      id: 'accuracy',
      title: 'Accuracy',
      blocks: [
        bars('top1', 'top-1 accuracy per model and provider', cls, (r) => (r.metrics as Classification).top1, pct, 'fraction'),
        {
          kind: 'table',
          id: 'classification',
          headers: ['model', 'ep', 'top-1', 'top-5', 'loss', 'macro-F1', 'ROC AUC', 'samples', 'output'],
          align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'left'],
          rows: cls.map((r) => {
            const m = r.metrics as Classification;
            return [
              cell(name(r.model)),
              cell(r.ep),
              pctCell(m.top1),
              pctCell(m.top5),
              fmtCell(m.loss),
              fmtCell(m.macroF1),
              fmtCell(m.rocAuc),
              count(m.count),
              cell(`${r.feed.output} (${m.scoreKind})`),
            ];
          }),
        },
      ],
    });
    sections.push({
      id: 'confusion',
      title: 'Confusion matrices',
      blocks: cls.map((r, i) => {
        const m = r.metrics as Classification;
        const labels = d.classes && d.classes.length === m.classes ? d.classes : Array.from({ length: m.classes }, (_, k) => String(k));
        return {
          kind: 'heatmap',
          id: `confusion-${i}`,
          title: `${name(r.model)} · ${r.ep}`,
          rowLabel: 'true',
          colLabel: 'predicted',
          labels,
          counts: m.confusion,
        };
      }),
    });
  }
  const reg = runs.filter((r) => r.metrics.task === 'regression');
  if (reg.length) {
    sections.push({
      id: 'regression',
      title: 'Regression error',
      blocks: [
        bars(
          'mse',
          'mean squared error (shorter is better)',
          reg,
          (r) => (r.metrics as Regression).mse,
          (v) => fmt(v, 6),
        ),
        {
          kind: 'table',
          id: 'regression',
          headers: ['model', 'ep', 'MSE', 'MAE', 'samples'],
          align: ['left', 'left', 'right', 'right', 'right'],
          rows: reg.map((r) => {
            const m = r.metrics as Regression;
            return [cell(name(r.model)), cell(r.ep), fmtCell(m.mse, 6), fmtCell(m.mae, 6), count(m.count)];
          }),
        },
      ],
    });
  }
  const ref = runs.filter((r) => r.metrics.task === 'reference');
  if (ref.length) {
    sections.push({
      id: 'reference',
      title: 'Reference outputs',
      blocks: [
        {
          kind: 'table',
          id: 'reference',
          headers: ['model', 'ep', 'cases', 'max abs', 'max rel', 'allclose tol', 'match'],
          align: ['left', 'left', 'right', 'right', 'right', 'right', 'left'],
          rows: ref.map((r) => {
            const m = r.metrics as Reference;
            return [cell(name(r.model)), cell(r.ep), count(m.cases), sciCell(m.maxAbs), sciCell(m.maxRel), sciCell(m.tolerance), cell(m.pass ? 'yes' : 'NO')];
          }),
        },
        {
          kind: 'table',
          id: 'reference-outputs',
          detail: true,
          headers: ['model', 'ep', 'case', 'output', 'shape', 'max abs', 'max rel', 'match'],
          rows: ref.flatMap((r) =>
            (r.metrics as Reference).outputs.map((o) => [
              cell(name(r.model)),
              cell(r.ep),
              cell(o.case),
              cell(o.output),
              cell(`[${o.shape.join(',')}]`),
              sciCell(o.maxAbs),
              sciCell(o.maxRel),
              cell(o.withinTolerance ? 'yes' : 'NO'),
            ]),
          ),
        },
      ],
    });
  }
  if (runs.length) {
    const ms = (v: number) => `${fmt(v, 2)} ms`;
    sections.push({
      id: 'latency',
      title: 'Latency',
      blocks: [
        bars('p50', 'p50 ms per run', runs, (r) => r.latency.p50Ms, ms, 'ms'),
        bars('p95', 'p95 ms per run', runs, (r) => r.latency.p95Ms, ms, 'ms'),
        bars(
          'throughput',
          'throughput, samples per second',
          runs,
          (r) => r.latency.samplesPerSecond,
          (v) => fmt(v, 0),
        ),
        {
          kind: 'table',
          id: 'latency',
          headers: ['model', 'ep', 'threads', 'batch', 'warm-up runs', 'timed runs', 'p50 ms', 'p95 ms', 'mean ms', 'samples/s'],
          align: ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
          rows: runs.map((r) => [
            cell(name(r.model)),
            cell(r.ep),
            count(r.threads),
            cell(feedText(r), r.feed.batchSize),
            count(r.latency.warmupRuns),
            count(r.latency.runs),
            fmtCell(r.latency.p50Ms, 2),
            fmtCell(r.latency.p95Ms, 2),
            fmtCell(r.latency.meanMs, 2),
            fmtCell(r.latency.samplesPerSecond, 0),
          ]),
        },
      ],
    });
  }
  if (adapters.length) {
    sections.push({
      id: 'adapters',
      title: 'WebGPU adapters',
      blocks: [
        {
          kind: 'table',
          id: 'adapters',
          detail: true,
          headers: ['ep', 'adapter', 'kind', 'asked for', 'note'],
          rows: adapters.map(([ep, a]) =>
            [
              ep,
              a.name,
              a.software ? 'software (CPU): latency is not a GPU figure' : 'hardware',
              a.choice,
              a.fallback ? `auto fell back: ${a.fallback}` : '',
            ].map((t) => cell(t)),
          ),
        },
      ],
    });
  }
  const agreement = report.agreement.flatMap((a) =>
    a.outputs.map((o) => [
      cell(name(a.model)),
      cell(a.ep),
      cell(a.referenceEp),
      cell(o.output),
      sciCell(o.maxAbsDiff),
      sciCell(o.maxRelDiff),
      agreeCell(o.argmaxAgreementPct),
    ]),
  );
  if (agreement.length) {
    sections.push({
      id: 'agreement',
      title: 'Agreement between providers',
      blocks: [
        {
          kind: 'table',
          id: 'agreement',
          headers: ['model', 'ep', 'reference ep', 'output', 'max abs diff', 'max rel diff', 'argmax agree'],
          align: ['left', 'left', 'left', 'left'],
          rows: agreement,
        },
      ],
    });
  }
  if (report.comparison.length) {
    sections.push({
      id: 'comparison',
      title: 'Models against the first (baseline)',
      blocks: [
        {
          kind: 'table',
          id: 'comparison',
          headers: ['ep', 'baseline', 'model', 'metric', 'baseline value', 'model value', 'drop', 'loss change', 'max abs diff', 'argmax agree'],
          align: ['left', 'left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
          rows: report.comparison.map((c) => {
            const acc = c.metric === 'top1';
            const value = (v: number) => cell(acc ? pct(v) : sci(v), v);
            return [
              cell(c.ep),
              cell(name(c.baseline)),
              cell(name(c.model)),
              cell(c.metric),
              value(c.baselineValue),
              value(c.value),
              cell(acc ? `${(c.drop * 100).toFixed(2)} pt` : sci(c.drop), c.drop),
              cell(c.lossDelta === null ? '-' : `${c.lossDelta >= 0 ? '+' : ''}${fmt(c.lossDelta)}`, c.lossDelta),
              sciCell(Math.max(0, ...c.outputs.map((o) => o.maxAbsDiff))),
              agreeCell(c.outputs.find((o) => o.argmaxAgreementPct !== null)?.argmaxAgreementPct),
            ];
          }),
        },
      ],
    });
  }
  if (failed.length) {
    sections.push({
      id: 'failed',
      title: 'Failed',
      warn: true,
      blocks: [
        {
          kind: 'table',
          id: 'failed',
          headers: ['model', 'ep', 'stage', 'error'],
          align: ['left', 'left', 'left', 'left'],
          rows: failed.map((f) => [name(f.model), f.ep, f.stage, f.error].map((t) => cell(t))),
        },
      ],
    });
  }
  return { title: `Evaluation: ${d.name}`, facts, sections };
}

/** The report for stderr: the data, threads and adapters, then each section's tables. */
export function formatSummary(report: EvalReport): string {
  const doc = evalDocument(report);
  return renderText(doc, undefined, [...SUMMARY_FACTS, ...doc.facts.map(([k]) => k).filter((k) => k.endsWith(' adapter'))]);
}

/** The whole report as one HTML document with inline SVG charts. */
export function renderHtml(report: EvalReport): string {
  return documentHtml(evalDocument(report));
}
