/**
 * Presenting an EvalReport: aligned terminal tables, and one self-contained HTML file (inline CSS and
 * SVG, no scripts, fonts or images fetched) that can be mailed or archived as is.
 */
import type { AdapterInfo } from '../runtime/types.js';
import type { RunFailed, RunOk, EvalReport } from './types.js';
import { describeImageSize } from '../data/imageSize.js';
import { printable } from '../printable.js';
import { fmt, formatTable, pct, sci, shortNames } from './table.js';

function okRuns(r: EvalReport): RunOk[] {
  return r.results.filter((x): x is RunOk => x.ok);
}

function failedRuns(r: EvalReport): RunFailed[] {
  return r.results.filter((x): x is RunFailed => !x.ok);
}

/** The WebGPU adapter of each provider that has one (one runtime per provider in a report). */
function adaptersOf(runs: RunOk[]): [string, AdapterInfo][] {
  return [...new Map(runs.filter((r) => r.adapter).map((r) => [r.ep, r.adapter!])).entries()];
}

function adapterLine(a: AdapterInfo): string {
  return `${a.name} (${a.software ? 'software: on the CPU, latency is not a GPU figure' : 'hardware'}${a.fallback ? `; auto fell back: ${a.fallback}` : ''})`;
}

function feedText(run: RunOk): string {
  return run.feed.batching === 'dynamic' ? String(run.feed.batchSize) : `${run.feed.batchSize} (${run.feed.batching})`;
}

/** The results table(s), agreement, comparison and failures as text for stderr. */
export function formatSummary(report: EvalReport): string {
  const names = shortNames(report.models);
  const name = (m: string) => names.get(m) ?? m;
  const runs = okRuns(report);
  const blocks: string[] = [];
  const d = report.data;
  // the set's name is a folder or file name: its own line breaks must not reach the terminal
  blocks.push(`data: ${printable(d.name)} (${d.split}, ${d.count} ${d.task === 'reference' ? 'reference cases' : 'samples'})`);
  if (d.imageSize) blocks.push(printable(describeImageSize(d.imageSize)));
  const threads = [...new Map(runs.map((r) => [r.ep, r.threads])).entries()];
  if (threads.length) blocks.push(`threads: ${threads.map(([ep, n]) => `${ep} ${n}`).join(', ')}`);
  for (const [ep, a] of adaptersOf(runs)) blocks.push(`${ep} adapter: ${printable(adapterLine(a))}`);

  const cls = runs.filter((r) => r.metrics.task === 'classification');
  if (cls.length) {
    blocks.push(
      formatTable(
        ['model', 'ep', 'top-1', 'top-5', 'loss', 'macro-F1', 'ROC AUC', 'batch', 'p50 ms', 'p95 ms', 'samples/s'],
        cls.map((r) => {
          const m = r.metrics as Extract<RunOk['metrics'], { task: 'classification' }>;
          return [name(r.model), r.ep, pct(m.top1), pct(m.top5), fmt(m.loss), fmt(m.macroF1), fmt(m.rocAuc), feedText(r), fmt(r.latency.p50Ms, 2), fmt(r.latency.p95Ms, 2), fmt(r.latency.samplesPerSecond, 0)];
        }),
        ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
      ),
    );
  }
  const reg = runs.filter((r) => r.metrics.task === 'regression');
  if (reg.length) {
    blocks.push(
      formatTable(
        ['model', 'ep', 'MSE', 'MAE', 'batch', 'p50 ms', 'p95 ms', 'samples/s'],
        reg.map((r) => {
          const m = r.metrics as Extract<RunOk['metrics'], { task: 'regression' }>;
          return [name(r.model), r.ep, fmt(m.mse, 6), fmt(m.mae, 6), feedText(r), fmt(r.latency.p50Ms, 2), fmt(r.latency.p95Ms, 2), fmt(r.latency.samplesPerSecond, 0)];
        }),
        ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
      ),
    );
  }
  const ref = runs.filter((r) => r.metrics.task === 'reference');
  if (ref.length) {
    blocks.push(
      formatTable(
        ['model', 'ep', 'cases', 'max abs', 'max rel', 'allclose tol', 'match', 'p50 ms'],
        ref.map((r) => {
          const m = r.metrics as Extract<RunOk['metrics'], { task: 'reference' }>;
          return [name(r.model), r.ep, String(m.cases), sci(m.maxAbs), sci(m.maxRel), sci(m.tolerance), m.pass ? 'yes' : 'NO', fmt(r.latency.p50Ms, 2)];
        }),
        ['left', 'left', 'right', 'right', 'right', 'right', 'left', 'right'],
      ),
    );
  }
  const agreeRows = report.agreement.flatMap((a) =>
    a.outputs.map((o) => [name(a.model), `${a.ep} vs ${a.referenceEp}`, o.output, sci(o.maxAbsDiff), sci(o.maxRelDiff), o.argmaxAgreementPct === null ? '-' : `${o.argmaxAgreementPct.toFixed(2)}%`]),
  );
  if (agreeRows.length) {
    blocks.push('agreement between providers:\n' + formatTable(['model', 'ep', 'output', 'max abs diff', 'max rel diff', 'argmax agree'], agreeRows));
  }
  if (report.comparison.length) {
    blocks.push(
      'models against the first (baseline):\n' +
        formatTable(
          ['ep', 'model', 'metric', 'baseline', 'model value', 'drop', 'loss change', 'max abs diff', 'argmax agree'],
          report.comparison.map((c) => {
            const acc = c.metric === 'top1';
            const agree = c.outputs.find((o) => o.argmaxAgreementPct !== null)?.argmaxAgreementPct;
            return [
              c.ep,
              name(c.model),
              c.metric,
              acc ? pct(c.baselineValue) : sci(c.baselineValue),
              acc ? pct(c.value) : sci(c.value),
              acc ? `${(c.drop * 100).toFixed(2)} pt` : sci(c.drop),
              c.lossDelta === null ? '-' : `${c.lossDelta >= 0 ? '+' : ''}${fmt(c.lossDelta)}`,
              sci(Math.max(0, ...c.outputs.map((o) => o.maxAbsDiff))),
              agree === undefined || agree === null ? '-' : `${agree.toFixed(2)}%`,
            ];
          }),
          ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right'],
        ),
    );
  }
  const failed = failedRuns(report);
  if (failed.length) {
    blocks.push('failed:\n' + formatTable(['model', 'ep', 'stage', 'error'], failed.map((f) => [name(f.model), f.ep, f.stage, f.error]), ['left', 'left', 'left', 'left']));
  }
  return blocks.join('\n\n');
}

// ---------------------------------------------------------------------------------------------- HTML

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const PALETTE = ['#3b6fb6', '#e08a2c', '#3a9a5b', '#c4453c', '#8464b0', '#8c6d4f', '#d36fb3', '#7f7f7f'];

interface Bar {
  label: string;
  value: number;
  text: string;
  color: string;
}

/** Horizontal bars, one per row, scaled to the largest value; labels left, values right. */
function barChart(title: string, bars: Bar[], max?: number): string {
  if (!bars.length) return '';
  const rowH = 22;
  const labelW = 260;
  const barW = 360;
  const h = bars.length * rowH + 10;
  const top = max ?? Math.max(...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)), 1e-12);
  const rows = bars
    .map((b, i) => {
      const y = 5 + i * rowH;
      const w = Number.isFinite(b.value) && top > 0 ? Math.max(0, Math.min(1, b.value / top)) * barW : 0;
      return (
        `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${escapeHtml(b.label)}</text>` +
        `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${b.color}"><title>${escapeHtml(`${b.label}: ${b.text}`)}</title></rect>` +
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}">${escapeHtml(b.text)}</text>`
      );
    })
    .join('');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${labelW + barW + 110}" height="${h}" font-size="12" font-family="sans-serif" role="img">${rows}</svg></figure>`;
}

/** Confusion matrix as a heatmap, shaded per true class (row-normalised) so rare classes stay visible. */
function heatmap(title: string, cm: number[][], classes: string[]): string {
  const n = cm.length;
  const cell = n > 20 ? 14 : 34;
  const showCounts = n <= 20;
  const margin = 60;
  const size = margin + n * cell + 10;
  const parts: string[] = [];
  cm.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((v, j) => {
      const f = v / total;
      // Diagonal in blue, errors in red, so mistakes stand out even when small.
      const [r, g, b] = i === j ? [59, 111, 182] : [196, 69, 60];
      const fill = v === 0 ? '#f7f7f7' : `rgba(${r},${g},${b},${(0.12 + 0.88 * f).toFixed(3)})`;
      const x = margin + j * cell;
      const y = margin + i * cell;
      parts.push(`<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="#fff"><title>${escapeHtml(`true ${classes[i] ?? i}, predicted ${classes[j] ?? j}: ${v}`)}</title></rect>`);
      if (showCounts && v) parts.push(`<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" fill="${f > 0.5 ? '#fff' : '#222'}">${v}</text>`);
    });
  });
  if (showCounts) {
    classes.forEach((c, k) => {
      const label = escapeHtml(c.length > 6 ? c.slice(0, 6) : c);
      parts.push(`<text x="${margin - 4}" y="${margin + k * cell + cell / 2 + 4}" text-anchor="end">${label}</text>`);
      parts.push(`<text x="${margin + k * cell + cell / 2}" y="${margin - 6}" text-anchor="middle">${label}</text>`);
    });
  }
  parts.push(`<text x="${margin + (n * cell) / 2}" y="14" text-anchor="middle" font-weight="bold">predicted</text>`);
  parts.push(`<text x="12" y="${margin + (n * cell) / 2}" text-anchor="middle" font-weight="bold" transform="rotate(-90 12 ${margin + (n * cell) / 2})">true</text>`);
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" font-size="11" font-family="sans-serif" role="img">${parts.join('')}</svg></figure>`;
}

function htmlTable(headers: string[], rows: string[][]): string {
  const th = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${trs}\n</tbody></table>`;
}

/** The whole report as one HTML document with inline SVG charts. */
export function renderHtml(report: EvalReport): string {
  const names = shortNames(report.models);
  const name = (m: string) => names.get(m) ?? m;
  const runs = okRuns(report);
  const color = (ep: string) => PALETTE[Math.max(0, report.eps.indexOf(ep as EvalReport['eps'][number])) % PALETTE.length]!;
  const label = (r: RunOk) => `${name(r.model)} · ${r.ep}`;
  const sections: string[] = [];
  const d = report.data;

  const cls = runs.filter((r) => r.metrics.task === 'classification');
  if (cls.length) {
    sections.push('<h2>Accuracy</h2>');
    sections.push(
      barChart(
        'top-1 accuracy per model and provider',
        cls.map((r) => ({ label: label(r), value: (r.metrics as { top1: number }).top1, text: pct((r.metrics as { top1: number }).top1), color: color(r.ep) })),
        1,
      ),
    );
    sections.push(
      htmlTable(
        ['model', 'ep', 'samples', 'top-1', 'top-5', 'loss', 'macro-F1', 'ROC AUC', 'output'],
        cls.map((r) => {
          const m = r.metrics as Extract<RunOk['metrics'], { task: 'classification' }>;
          return [name(r.model), r.ep, String(m.count), pct(m.top1), pct(m.top5), fmt(m.loss), fmt(m.macroF1), fmt(m.rocAuc), `${r.feed.output} (${m.scoreKind})`];
        }),
      ),
    );
    sections.push('<h2>Confusion matrices</h2><div class="grid">');
    for (const r of cls) {
      const m = r.metrics as Extract<RunOk['metrics'], { task: 'classification' }>;
      const classes = d.classes && d.classes.length === m.classes ? d.classes : Array.from({ length: m.classes }, (_, i) => String(i));
      sections.push(heatmap(label(r), m.confusion, classes));
    }
    sections.push('</div>');
  }
  const reg = runs.filter((r) => r.metrics.task === 'regression');
  if (reg.length) {
    sections.push('<h2>Regression error</h2>');
    sections.push(barChart('mean squared error (shorter is better)', reg.map((r) => ({ label: label(r), value: (r.metrics as { mse: number }).mse, text: fmt((r.metrics as { mse: number }).mse, 6), color: color(r.ep) }))));
    sections.push(htmlTable(['model', 'ep', 'samples', 'MSE', 'MAE'], reg.map((r) => {
      const m = r.metrics as Extract<RunOk['metrics'], { task: 'regression' }>;
      return [name(r.model), r.ep, String(m.count), fmt(m.mse, 6), fmt(m.mae, 6)];
    })));
  }
  const ref = runs.filter((r) => r.metrics.task === 'reference');
  if (ref.length) {
    sections.push('<h2>Reference outputs</h2>');
    sections.push(
      htmlTable(
        ['model', 'ep', 'case', 'output', 'shape', 'max abs', 'max rel', 'match'],
        ref.flatMap((r) => {
          const m = r.metrics as Extract<RunOk['metrics'], { task: 'reference' }>;
          return m.outputs.map((o) => [name(r.model), r.ep, o.case, o.output, `[${o.shape.join(',')}]`, sci(o.maxAbs), sci(o.maxRel), o.withinTolerance ? 'yes' : 'NO']);
        }),
      ),
    );
  }
  if (runs.length) {
    sections.push('<h2>Latency</h2>');
    sections.push(barChart('p50 ms per run (batch size in brackets)', runs.map((r) => ({ label: `${label(r)} [${r.latency.batchSize}]`, value: r.latency.p50Ms, text: `${fmt(r.latency.p50Ms, 2)} ms`, color: color(r.ep) }))));
    sections.push(barChart('p95 ms per run', runs.map((r) => ({ label: `${label(r)} [${r.latency.batchSize}]`, value: r.latency.p95Ms, text: `${fmt(r.latency.p95Ms, 2)} ms`, color: color(r.ep) }))));
    sections.push(barChart('throughput, samples per second', runs.map((r) => ({ label: label(r), value: r.latency.samplesPerSecond, text: fmt(r.latency.samplesPerSecond, 0), color: color(r.ep) }))));
    sections.push(
      htmlTable(
        ['model', 'ep', 'threads', 'batch', 'batching', 'warm-up runs', 'timed runs', 'p50 ms', 'p95 ms', 'mean ms', 'samples/s'],
        runs.map((r) => [name(r.model), r.ep, String(r.threads), String(r.latency.batchSize), r.feed.batching, String(r.latency.warmupRuns), String(r.latency.runs), fmt(r.latency.p50Ms, 3), fmt(r.latency.p95Ms, 3), fmt(r.latency.meanMs, 3), fmt(r.latency.samplesPerSecond, 1)]),
      ),
    );
    const adapters = adaptersOf(runs);
    if (adapters.length) {
      sections.push('<h2>WebGPU adapters</h2>');
      sections.push(htmlTable(['ep', 'adapter', 'kind', 'asked for', 'note'], adapters.map(([ep, a]) => [ep, a.name, a.software ? 'software (CPU): latency is not a GPU figure' : 'hardware', a.choice, a.fallback ? `auto fell back: ${a.fallback}` : ''])));
    }
  }
  const agreeRows = report.agreement.flatMap((a) =>
    a.outputs.map((o) => [name(a.model), a.ep, a.referenceEp, o.output, sci(o.maxAbsDiff), sci(o.maxRelDiff), o.argmaxAgreementPct === null ? '-' : `${o.argmaxAgreementPct.toFixed(2)}%`]),
  );
  if (agreeRows.length) {
    sections.push('<h2>Agreement between providers</h2>');
    sections.push(htmlTable(['model', 'ep', 'reference ep', 'output', 'max abs diff', 'max rel diff', 'argmax agreement'], agreeRows));
  }
  if (report.comparison.length) {
    sections.push('<h2>Models against the baseline</h2>');
    sections.push(
      htmlTable(
        ['ep', 'baseline', 'model', 'metric', 'baseline value', 'model value', 'drop', 'loss delta', 'max abs diff', 'argmax agreement'],
        report.comparison.map((c) => {
          const acc = c.metric === 'top1';
          const o = c.outputs.find((x) => x.argmaxAgreementPct !== null) ?? c.outputs[0];
          return [
            c.ep, name(c.baseline), name(c.model), c.metric,
            acc ? pct(c.baselineValue) : sci(c.baselineValue), acc ? pct(c.value) : sci(c.value),
            acc ? `${(c.drop * 100).toFixed(2)} pt` : sci(c.drop), fmt(c.lossDelta),
            o ? sci(o.maxAbsDiff) : '-', o?.argmaxAgreementPct == null ? '-' : `${o.argmaxAgreementPct.toFixed(2)}%`,
          ];
        }),
      ),
    );
  }
  const failed = failedRuns(report);
  if (failed.length) {
    sections.push('<h2 class="bad">Failed</h2>');
    sections.push(htmlTable(['model', 'ep', 'stage', 'error'], failed.map((f) => [name(f.model), f.ep, f.stage, f.error])));
  }
  const pre = d.preprocess;
  const preText = [pre.scale !== undefined ? `scale ${pre.scale}` : '', pre.mean ? `mean ${pre.mean.join(',')}` : '', pre.std ? `std ${pre.std.join(',')}` : '', pre.layout ? `layout ${pre.layout}` : ''].filter(Boolean).join(', ') || 'none';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(`alrelu eval: ${d.name}`)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figcaption{font-weight:bold;margin-bottom:4px}.grid{display:flex;flex-wrap:wrap;gap:1em}
.bad{color:#c4453c}dl{display:grid;grid-template-columns:max-content auto;gap:2px 1em}dt{font-weight:bold}
</style></head><body>
<h1>Evaluation: ${escapeHtml(d.name)}</h1>
<dl>
<dt>data</dt><dd>${escapeHtml(d.spec)} (${escapeHtml(d.split)}, ${d.count} ${d.task === 'reference' ? 'reference cases' : 'samples'})</dd>
<dt>preprocessing</dt><dd>${escapeHtml(preText)}</dd>
${d.imageSize ? `<dt>image size</dt><dd>${escapeHtml(describeImageSize(d.imageSize))}</dd>` : ''}
<dt>models</dt><dd>${report.models.map((m) => escapeHtml(m)).join('<br>')}</dd>
<dt>providers</dt><dd>${escapeHtml(report.eps.join(', '))}</dd>
<dt>requested batch size</dt><dd>${report.requestedBatchSize}</dd>
<dt>created</dt><dd>${escapeHtml(report.createdAt)}</dd>
</dl>
${sections.join('\n')}
</body></html>
`;
}
