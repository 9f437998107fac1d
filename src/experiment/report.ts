/**
 * Presenting an experiment: terminal tables, a Markdown section (what the README's results are pasted
 * from, never typed), and one self-contained HTML file (inline CSS and SVG, no scripts or fetches) with
 * learning curves, every seed's test scores, and the paired tests.
 */
import { fmt, formatTable, pct } from '../eval/table.js';
import { METRICS, type Analysis, type Comparison, type DataAnalysis, type Metric } from './analysis.js';
import { describeArch } from './build.js';
import type { RunRecord } from './results.js';
import type { ExperimentResult } from './run.js';
import type { Summary } from './stats.js';

/** Where and how the numbers were made: printed with every rendering. */
export interface Provenance {
  command: string;
  machine: string;
  date: string;
}

const METRIC_NAMES: Record<Metric, string> = { accuracy: 'accuracy', macroF1: 'macro-F1', auc: 'ROC AUC', loss: 'loss' };

function meanStd(s: Summary, metric: Metric): string {
  if (!s.n) return '-';
  // one value (the unseeded swap variants): no spread to show
  if (s.n === 1) return metric === 'accuracy' ? pct(s.mean) : fmt(s.mean);
  return metric === 'accuracy' ? `${pct(s.mean)} ± ${(100 * s.std).toFixed(2)}` : `${fmt(s.mean)} ± ${fmt(s.std)}`;
}

function diff(v: number, metric: Metric): string {
  if (Number.isNaN(v)) return '-';
  return metric === 'accuracy' ? `${v >= 0 ? '+' : ''}${(100 * v).toFixed(2)} pt` : `${v >= 0 ? '+' : ''}${v.toFixed(4)}`;
}

const pValue = (p: number | null): string => (p === null ? '-' : p < 1e-4 ? p.toExponential(1) : p.toFixed(4));

function wilcoxonText(c: Comparison): string {
  const w = c.test.wilcoxon;
  return w.p === null ? `- (${w.note})` : `${pValue(w.p)}${w.method === 'exact' ? '' : ' ~'}`;
}

function tText(c: Comparison): string {
  return c.test.t.p === null ? `- (${c.test.t.note})` : pValue(c.test.t.p);
}

const SUMMARY_HEAD = ['data', 'variant', 'seeds', 'accuracy (%)', 'macro-F1', 'ROC AUC', 'test loss'];
const TEST_HEAD = ['data', 'comparison (a vs b)', 'metric', 'mean a - b', 'seeds a>b/a<b/=', 'Wilcoxon p', 'paired t p'];

function summaryRows(a: Analysis): string[][] {
  return a.data.flatMap((d) =>
    d.variants.map((v) => [
      d.data,
      v.variant,
      String(v.seeds),
      meanStd(v.metrics.accuracy, 'accuracy'),
      meanStd(v.metrics.macroF1, 'macroF1'),
      meanStd(v.metrics.auc, 'auc'),
      meanStd(v.metrics.loss, 'loss'),
    ]),
  );
}

function testRows(a: Analysis): string[][] {
  return a.data.flatMap((d) =>
    d.comparisons.map((c) => [
      d.data,
      `${c.a} vs ${c.b}`,
      METRIC_NAMES[c.metric],
      diff(c.test.meanDiff, c.metric),
      `${c.test.wins}/${c.test.losses}/${c.test.ties}`,
      wilcoxonText(c),
      tText(c),
    ]),
  );
}

function settingsLine(r: ExperimentResult): string {
  const s = r.settings;
  const what =
    s.mode === 'scratch' ? `from scratch: ${describeArch(s.arch)}, ${s.variants.join(' / ')}` : `swap and fine-tune: ${s.model.file}, ALReLU a = ${s.alpha}`;
  return `${what}; seeds ${s.seeds.join(', ')}; ${s.epochs} epoch(s), batch ${s.batchSize}, Adam lr ${s.lr}${s.limit !== null ? `, at most ${s.limit} samples per data set` : ''}`;
}

function dataLines(r: ExperimentResult): string[] {
  return r.settings.data.map(
    (d) =>
      `${d.spec}: ${d.counts.train}/${d.counts.val}/${d.counts.test} train/val/test samples, ${d.classes} classes${d.standardized ? ', features standardised on the training split' : ''}`,
  );
}

const NOTES = [
  'Each run keeps the epoch with the best validation accuracy and is scored on the test split; every seed uses the same split.',
  'Test loss is the cross-entropy on the test split (lower is better); it separates models whose accuracy ties on a small test set.',
  'Tests are paired by seed and two-sided; "~" marks a Wilcoxon p from the normal approximation (ties or zero differences), otherwise it is exact.',
];

/** The text shown on the terminal. */
export function formatText(r: ExperimentResult, a: Analysis): string {
  return [
    settingsLine(r),
    ...dataLines(r),
    '',
    formatTable(SUMMARY_HEAD, summaryRows(a)),
    '',
    testRows(a).length ? formatTable(TEST_HEAD, testRows(a)) : 'one variant: nothing to compare',
    '',
    ...NOTES,
    ...sameStartWarnings(a),
  ].join('\n');
}

function sameStartWarnings(a: Analysis): string[] {
  return a.mode === 'scratch'
    ? a.data.filter((d) => !d.sameStart).map((d) => `WARNING: ${d.data}: the variants of a seed did not all start from the same weights`)
    : [];
}

/** A Markdown section: provenance, settings, the two tables. */
export function formatMarkdown(r: ExperimentResult, a: Analysis, p: Provenance): string {
  const md = (head: string[], rows: string[][]) =>
    [
      `| ${head.join(' | ')} |`,
      `|${head.map(() => '---').join('|')}|`,
      ...rows.map((row) => `| ${row.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`),
    ].join('\n');
  return [
    `Produced by \`${p.command}\` on ${p.machine}, ${p.date}.`,
    '',
    `${settingsLine(r)}.`,
    '',
    ...dataLines(r).map((l) => `- ${l}`),
    '',
    md(SUMMARY_HEAD, summaryRows(a)),
    '',
    md(TEST_HEAD, testRows(a)),
    '',
    ...NOTES,
    ...sameStartWarnings(a),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------- HTML

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const PALETTE = ['#3b6fb6', '#e08a2c', '#3a9a5b', '#c4453c', '#8464b0', '#8c6d4f'];

/** A table whose cells may carry their raw number in data-value, so what is shown can be checked against the JSON. */
function table(id: string, head: string[], rows: string[][], values: (number | null)[][] = []): string {
  const cell = (c: string, v: number | null | undefined) => `<td${v === undefined ? '' : ` data-value="${v ?? ''}"`}>${esc(c)}</td>`;
  return `<table data-table="${esc(id)}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r, i) => `<tr>${r.map((c, j) => cell(c, values[i]?.[j])).join('')}</tr>`).join('')}</tbody></table>`;
}

interface Frame {
  w: number;
  h: number;
  x: (v: number) => number;
  y: (v: number) => number;
}

/** Axes with a few labelled ticks; y in [lo, hi]. */
function frame(xMax: number, lo: number, hi: number, xLabel: string, yLabel: string, xTicks: number[]): { f: Frame; axes: string } {
  const w = 460;
  const h = 240;
  const l = 56;
  const b = 36;
  const t = 10;
  const r = 10;
  const f: Frame = {
    w,
    h,
    x: (v) => l + (xMax > 0 ? v / xMax : 0.5) * (w - l - r),
    y: (v) => t + (1 - (hi > lo ? (v - lo) / (hi - lo) : 0.5)) * (h - t - b),
  };
  const parts = [
    `<line x1="${l}" y1="${h - b}" x2="${w - r}" y2="${h - b}" stroke="#888"/>`,
    `<line x1="${l}" y1="${t}" x2="${l}" y2="${h - b}" stroke="#888"/>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    parts.push(
      `<text x="${l - 4}" y="${f.y(v) + 4}" text-anchor="end">${esc(v.toFixed(hi - lo < 0.05 ? 3 : 2))}</text><line x1="${l}" y1="${f.y(v)}" x2="${w - r}" y2="${f.y(v)}" stroke="#eee"/>`,
    );
  }
  for (const v of xTicks) parts.push(`<text x="${f.x(v)}" y="${h - b + 14}" text-anchor="middle">${esc(String(v))}</text>`);
  parts.push(`<text x="${(l + w - r) / 2}" y="${h - 4}" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text x="12" y="${(t + h - b) / 2}" text-anchor="middle" transform="rotate(-90 12 ${(t + h - b) / 2})">${esc(yLabel)}</text>`);
  return { f, axes: parts.join('') };
}

const svg = (f: Frame, body: string, cls: string, chart: string) =>
  `<svg class="${cls}" data-chart="${esc(chart)}" xmlns="http://www.w3.org/2000/svg" width="${f.w}" height="${f.h}" font-size="11" font-family="sans-serif" role="img">${body}</svg>`;

/** A padded value range; scores clamp to [0, 1], a loss only to [0, ∞). */
function range(values: number[], unit = true): [number, number] {
  const ok = values.filter(Number.isFinite);
  if (!ok.length) return [0, 1];
  let lo = Math.min(...ok);
  let hi = Math.max(...ok);
  const pad = Math.max((hi - lo) * 0.08, 0.005);
  lo = Math.max(0, lo - pad);
  hi = unit ? Math.min(1, hi + pad) : hi + pad;
  return hi > lo ? [lo, hi] : [0, 1];
}

function legend(variants: string[]): string {
  return `<p class="legend">${variants.map((v, i) => `<span style="color:${PALETTE[i % PALETTE.length]}">&#9632;</span> ${esc(v)}`).join(' &nbsp; ')}</p>`;
}

/** Validation accuracy by epoch: one thin line per seed, the mean over seeds thick. */
function learningCurves(d: DataAnalysis, runs: RunRecord[], variants: string[]): string {
  const trained = runs.filter((r) => r.curve.length > 1);
  if (!trained.length) return '';
  const epochs = Math.max(...trained.map((r) => r.curve.length - 1));
  const [lo, hi] = range(trained.flatMap((r) => r.curve.map((c) => c.valAccuracy ?? NaN)));
  const { f, axes } = frame(
    epochs,
    lo,
    hi,
    'epoch',
    'validation accuracy',
    Array.from({ length: epochs + 1 }, (_, i) => i),
  );
  const parts = [axes];
  variants.forEach((v, vi) => {
    const color = PALETTE[vi % PALETTE.length]!;
    const mine = trained.filter((r) => r.variant === v);
    const path = (pts: [number, number][]) => pts.map(([x, y], i) => `${i ? 'L' : 'M'}${f.x(x).toFixed(1)},${f.y(y).toFixed(1)}`).join('');
    for (const r of mine) {
      const pts = r.curve.filter((c) => c.valAccuracy !== null).map((c) => [c.epoch, c.valAccuracy!] as [number, number]);
      parts.push(
        `<path class="seed" d="${path(pts)}" fill="none" stroke="${color}" stroke-opacity="0.35" stroke-width="1"><title>${esc(`${v} seed ${r.seed}`)}</title></path>`,
      );
    }
    const mean: [number, number][] = [];
    for (let e = 0; e <= epochs; e++) {
      const vals = mine.map((r) => r.curve[e]?.valAccuracy).filter((x): x is number => typeof x === 'number');
      if (vals.length) mean.push([e, vals.reduce((a, b) => a + b, 0) / vals.length]);
    }
    if (mean.length)
      parts.push(`<path class="mean" d="${path(mean)}" fill="none" stroke="${color}" stroke-width="2.5"><title>${esc(`${v}: mean over seeds`)}</title></path>`);
  });
  return `<figure><figcaption>${esc(`${d.data}: learning curves (thin: each seed; thick: mean)`)}</figcaption>${svg(f, parts.join(''), 'chart curves', `${d.data}:curves`)}</figure>`;
}

/** Every seed's test score per variant, a seed's points joined across variants (the pairing the tests use). */
function seedPoints(d: DataAnalysis, runs: RunRecord[], variants: string[], metric: Metric, seeds: number[]): string {
  const val = (r: RunRecord) => r.test[metric];
  const vals = runs.map(val).filter((x): x is number => x !== null);
  if (!vals.length) return '';
  const [lo, hi] = range(vals, metric !== 'loss');
  // one slot per variant, its points in the middle: nothing sits on an axis or the edge
  const { f, axes } = frame(variants.length, lo, hi, 'variant', `test ${METRIC_NAMES[metric]}`, []);
  const slot = (i: number) => f.x(i + 0.5);
  const parts = [axes];
  variants.forEach((v, i) => parts.push(`<text x="${slot(i)}" y="${f.h - 22}" text-anchor="middle">${esc(v)}</text>`));
  const jitter = (k: number) => (seeds.length > 1 ? (k / (seeds.length - 1) - 0.5) * 14 : 0);
  seeds.forEach((seed, k) => {
    const pts = variants.map((v, i) => {
      const r = runs.find((x) => x.variant === v && (x.seed === seed || x.seed === null));
      return r && val(r) !== null ? ([slot(i) + jitter(k), f.y(val(r)!), val(r)!, v] as const) : null;
    });
    const line = pts.filter((p) => p !== null);
    if (line.length > 1)
      parts.push(
        `<path d="${line.map((p, i) => `${i ? 'L' : 'M'}${p[0].toFixed(1)},${p[1].toFixed(1)}`).join('')}" fill="none" stroke="#999" stroke-opacity="0.6"/>`,
      );
    pts.forEach((p) => {
      if (!p) return;
      const color = PALETTE[variants.indexOf(p[3]) % PALETTE.length]!;
      parts.push(
        `<circle class="point" cx="${p[0].toFixed(1)}" cy="${p[1].toFixed(1)}" r="4" fill="${color}" data-variant="${esc(p[3])}" data-seed="${seed}" data-value="${p[2]}"><title>${esc(`${p[3]} seed ${seed}: ${metric === 'accuracy' ? pct(p[2]) : fmt(p[2])}`)}</title></circle>`,
      );
    });
  });
  return `<figure><figcaption>${esc(`${d.data}: test ${METRIC_NAMES[metric]} per seed (lines join one seed's variants)`)}</figcaption>${svg(f, parts.join(''), 'chart points', `${d.data}:${metric}`)}</figure>`;
}

/** The whole experiment as one HTML document. */
export function renderExperimentHtml(r: ExperimentResult, a: Analysis, p: Provenance): string {
  const variants = a.data[0]?.variants.map((v) => v.variant) ?? [];
  const sections = a.data.map((d) => {
    const runs = r.runs.filter((x) => x.data === d.data);
    return [
      `<h2>${esc(d.data)}</h2>`,
      legend(variants),
      table(
        `summary:${d.data}`,
        SUMMARY_HEAD.slice(1),
        summaryRows({ ...a, data: [d] }).map((row) => row.slice(1)),
        d.variants.map((v) => [null, v.seeds, ...METRICS.map((m) => (v.metrics[m].n ? v.metrics[m].mean : null))]),
      ),
      `<div class="grid">${learningCurves(d, runs, variants)}${METRICS.map((m) => seedPoints(d, runs, variants, m, r.settings.seeds)).join('')}</div>`,
      '<h3>Paired tests across seeds</h3>',
      table(
        `tests:${d.data}`,
        TEST_HEAD.slice(1),
        testRows({ ...a, data: [d] }).map((row) => row.slice(1)),
        d.comparisons.map((c) => [null, null, Number.isNaN(c.test.meanDiff) ? null : c.test.meanDiff, null, c.test.wilcoxon.p, c.test.t.p]),
      ),
    ].join('\n');
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>alrelu experiment</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:13px}th,td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}figure{margin:.5em}figcaption{font-size:13px;font-weight:600}
.grid{display:flex;flex-wrap:wrap}.legend{font-size:13px}.meta{color:#555;font-size:13px}
</style></head><body>
<h1>Does ALReLU help?</h1>
<p class="meta">${esc(`Produced by ${p.command} on ${p.machine}, ${p.date}.`)}</p>
<p>${esc(settingsLine(r))}</p>
<ul>${dataLines(r)
    .map((l) => `<li>${esc(l)}</li>`)
    .join('')}</ul>
${sections.join('\n')}
<p class="meta">${NOTES.map(esc).join('<br>')}</p>
${sameStartWarnings(a)
  .map((w) => `<p><strong>${esc(w)}</strong></p>`)
  .join('')}
</body></html>
`;
}
