/**
 * A report as data, rendered twice: a document is facts, then sections of notes, tables and charts,
 * and renderText/renderHtml turn the same document into terminal text or one self-contained HTML file
 * (inline CSS and SVG; no script, stylesheet, image or font is fetched). Numbers travel with their
 * text: every cell and chart mark carries the raw value (`data-value`), so a reader (or a test) can
 * check the page against the JSON the numbers came from.
 */
import { printable } from '../printable.js';
import { formatTable, type Align } from './table.js';

/** A table cell: the text shown, and the number it shows (where it shows one). */
export interface Cell {
  text: string;
  value?: number | null;
}

export interface TableBlock {
  kind: 'table';
  /** stable name (`data-table`), for readers of the HTML */
  id: string;
  title?: string;
  headers: string[];
  rows: Cell[][];
  align?: Align[];
  /** a long table of detail (one row per case or per adapter) that the HTML shows and the terminal summary leaves out */
  detail?: boolean;
}

export interface Bar {
  series: string;
  value: number;
  text: string;
}

/** Horizontal bars in groups (one group per row label, one bar per series). */
export interface BarsBlock {
  kind: 'bars';
  id: string;
  title: string;
  series: string[];
  groups: { label: string; bars: Bar[] }[];
  /** the axis: linear from `min` (default 0) to `max` (default the largest value), or logarithmic */
  scale?: { type: 'linear'; min?: number; max?: number } | { type: 'log' };
  /** how axis ticks read */
  unit?: Unit;
}

/** Lines over a numeric x axis; each point is a mark. */
export interface LinesBlock {
  kind: 'lines';
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: { name: string; points: [number, number][] }[];
  yUnit?: Unit;
}

/** A count matrix (a confusion matrix) as a heatmap, shaded per row so that rare rows stay visible. */
export interface HeatmapBlock {
  kind: 'heatmap';
  id: string;
  title: string;
  rowLabel: string;
  colLabel: string;
  /** one label per row and column */
  labels: string[];
  counts: number[][];
}

/** How axis values read: fractions as percentages, milliseconds, or plain numbers. */
export type Unit = 'fraction' | 'ms' | 'plain';

function unitText(v: number, unit: Unit = 'plain'): string {
  const n = String(Number(v.toPrecision(3)));
  return unit === 'fraction' ? `${Number((v * 100).toPrecision(4))}%` : unit === 'ms' ? `${n} ms` : n;
}

export type Block = TableBlock | BarsBlock | LinesBlock | HeatmapBlock;

export interface Section {
  id: string;
  title: string;
  notes?: string[];
  blocks: Block[];
  /** shown in red: failures, unusable providers */
  warn?: boolean;
}

export interface ReportDocument {
  title: string;
  facts: [string, string][];
  sections: Section[];
}

export const cell = (text: string, value?: number | null): Cell => (value === undefined ? { text } : { text, value });

// ---------------------------------------------------------------------------------------------- text

/**
 * The document for a terminal: the facts named in `facts` (`name: value` lines), then each section's
 * notes and tables (charts and detail tables are HTML only); `sections` picks sections by id.
 */
export function renderText(doc: ReportDocument, sections?: string[], facts: string[] = []): string {
  const out: string[] = [];
  const factLines = doc.facts.filter(([k]) => facts.includes(k)).map(([k, v]) => `${printable(k)}: ${printable(v)}`);
  if (factLines.length) out.push(factLines.join('\n'));
  for (const s of doc.sections.filter((x) => !sections || sections.includes(x.id))) {
    const tables = s.blocks.filter((b): b is TableBlock => b.kind === 'table' && !b.detail && b.rows.length > 0);
    if (!tables.length && !s.notes?.length) continue;
    const lines = [`${s.title}:`, ...(s.notes ?? []).map((n) => printable(n))];
    for (const t of tables)
      lines.push(
        (t.title ? `${t.title}:\n` : '') +
          formatTable(
            t.headers,
            t.rows.map((r) => r.map((c) => c.text)),
            t.align,
          ),
      );
    out.push(lines.join('\n'));
  }
  return out.join('\n\n');
}

// ---------------------------------------------------------------------------------------------- HTML

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export const PALETTE = ['#3b6fb6', '#e08a2c', '#3a9a5b', '#c4453c', '#8464b0', '#8c6d4f', '#d36fb3', '#7f7f7f'];

/** A number as an attribute: finite values as JSON writes them, anything else empty. */
const attrNum = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? String(v) : '');

function tableHtml(t: TableBlock): string {
  const th = t.headers.map((h, i) => `<th${t.align?.[i] === 'left' ? ' class="l"' : ''}>${escapeHtml(h)}</th>`).join('');
  const trs = t.rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => `<td${c.value !== undefined ? ` data-value="${attrNum(c.value)}"` : ''}${t.align?.[i] === 'left' ? ' class="l"' : ''}>${escapeHtml(c.text)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  const caption = t.title ? `<caption>${escapeHtml(t.title)}</caption>` : '';
  return `<div class="scroll"><table data-table="${escapeHtml(t.id)}">${caption}<thead><tr>${th}</tr></thead><tbody>\n${trs}\n</tbody></table></div>`;
}

function legend(names: string[], colorOf: (i: number) => string): string {
  return `<div class="legend">${names.map((n, i) => `<span><i style="background:${colorOf(i)}"></i>${escapeHtml(n)}</span>`).join('')}</div>`;
}

/** "Nice" tick values covering [lo, hi]: 1, 2 or 5 times a power of ten apart. */
function ticks(lo: number, hi: number, count = 5): number[] {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const svgOpen = (id: string, w: number, h: number, marks: number) =>
  `<svg xmlns="http://www.w3.org/2000/svg" data-chart="${escapeHtml(id)}" data-marks="${marks}" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" font-size="12" font-family="system-ui,sans-serif" role="img">`;

function barsHtml(b: BarsBlock): string {
  const bars = b.groups.flatMap((g) => g.bars);
  if (!bars.length) return '';
  const labelW = 170;
  const plotW = 420;
  const textW = 110;
  const barH = 16;
  const groupGap = 10;
  const axisH = 22;
  const colorOf = (s: string) => PALETTE[Math.max(0, b.series.indexOf(s)) % PALETTE.length]!;
  const finite = bars.map((x) => x.value).filter((v) => Number.isFinite(v));
  const scale = b.scale ?? { type: 'linear' as const };
  let pos: (v: number) => number;
  let tickVals: number[];
  if (scale.type === 'log') {
    const pos_ = finite.filter((v) => v > 0);
    const lo = 10 ** Math.floor(Math.log10(Math.min(...pos_, 1)));
    const hi = 10 ** Math.ceil(Math.log10(Math.max(...pos_, lo * 10)));
    pos = (v) => (v > 0 ? Math.max(0, Math.min(1, (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)))) : 0);
    tickVals = [];
    for (let t = lo; t <= hi * 1.0001; t *= 10) tickVals.push(t);
  } else {
    const lo = scale.min ?? 0;
    const hi = scale.max ?? Math.max(...finite, lo + 1e-12);
    pos = (v) => (Number.isFinite(v) ? Math.max(0, Math.min(1, (v - lo) / (hi - lo || 1))) : 0);
    tickVals = ticks(lo, hi);
  }
  const fmtTick = (v: number) => unitText(v, b.unit);
  const parts: string[] = [];
  let y = 4;
  for (const g of b.groups) {
    const gh = g.bars.length * barH;
    parts.push(`<text x="${labelW - 8}" y="${(y + gh / 2 + 4).toFixed(1)}" text-anchor="end">${escapeHtml(g.label)}</text>`);
    for (const bar of g.bars) {
      const w = pos(bar.value) * plotW;
      parts.push(
        `<rect class="bar" x="${labelW}" y="${y + 1}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${colorOf(bar.series)}" data-group="${escapeHtml(g.label)}" data-series="${escapeHtml(bar.series)}" data-value="${attrNum(bar.value)}"><title>${escapeHtml(`${g.label}, ${bar.series}: ${bar.text}`)}</title></rect>` +
          `<text x="${(labelW + w + 4).toFixed(1)}" y="${y + barH - 4}" fill="#333">${escapeHtml(bar.text)}</text>`,
      );
      y += barH;
    }
    y += groupGap;
  }
  const plotBottom = y - groupGap + 4;
  for (const t of tickVals) {
    const x = labelW + pos(t) * plotW;
    parts.unshift(`<line x1="${x.toFixed(1)}" x2="${x.toFixed(1)}" y1="0" y2="${plotBottom}" stroke="#e4e4e4"/>`);
    parts.push(`<text x="${x.toFixed(1)}" y="${plotBottom + 14}" text-anchor="middle" fill="#666">${escapeHtml(fmtTick(t))}</text>`);
  }
  parts.push(`<line x1="${labelW}" x2="${labelW}" y1="0" y2="${plotBottom}" stroke="#999"/>`);
  const h = plotBottom + axisH;
  const note = scale.type === 'log' ? ' (logarithmic axis)' : scale.min ? ` (axis starts at ${fmtTick(scale.min)})` : '';
  return `<figure><figcaption>${escapeHtml(b.title + note)}</figcaption>${b.series.length > 1 ? legend(b.series, (i) => colorOf(b.series[i]!)) : ''}${svgOpen(b.id, labelW + plotW + textW, h, bars.length)}${parts.join('')}</svg></figure>`;
}

function linesHtml(b: LinesBlock): string {
  const all = b.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (!all.length) return '';
  const left = 62;
  const right = 20;
  const top = 10;
  const plotW = 620;
  const plotH = 230;
  const bottom = 40;
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const pad = (y1 - y0 || Math.abs(y1) || 1) * 0.08;
  y0 -= pad;
  y1 += pad;
  const X = (x: number) => left + (x1 === x0 ? plotW / 2 : ((x - x0) / (x1 - x0)) * plotW);
  const Y = (y: number) => top + plotH - ((y - y0) / (y1 - y0)) * plotH;
  const yFmt = (v: number) => unitText(v, b.yUnit);
  const parts: string[] = [];
  for (const t of ticks(y0, y1)) {
    parts.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" stroke="#e4e4e4"/><text x="${left - 6}" y="${(Y(t) + 4).toFixed(1)}" text-anchor="end" fill="#666">${escapeHtml(yFmt(t))}</text>`,
    );
  }
  // whole-number x values (steps, epochs) get whole-number ticks only
  const whole = xs.every(Number.isInteger);
  for (const t of ticks(x0, x1, Math.min(8, Math.max(1, x1 - x0))).filter((v) => !whole || Number.isInteger(v))) {
    parts.push(`<text x="${X(t).toFixed(1)}" y="${top + plotH + 16}" text-anchor="middle" fill="#666">${escapeHtml(String(t))}</text>`);
  }
  parts.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${left + plotW / 2}" y="${top + plotH + 34}" text-anchor="middle">${escapeHtml(b.xLabel)}</text>`);
  parts.push(`<text x="14" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 14 ${top + plotH / 2})">${escapeHtml(b.yLabel)}</text>`);
  let marks = 0;
  b.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length > 1)
      parts.push(
        `<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`,
      );
    // every point is a mark a reader can hover (and a test can count); small ones where there are many
    const r = pts.length > 40 ? 1.3 : 3.5;
    for (const [x, y] of pts) {
      parts.push(
        `<circle class="pt" cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="${r}" fill="${color}" data-series="${escapeHtml(s.name)}" data-x="${attrNum(x)}" data-value="${attrNum(y)}"><title>${escapeHtml(`${s.name}: ${b.xLabel} ${x}, ${yFmt(y)}`)}</title></circle>`,
      );
      marks++;
    }
  });
  return `<figure><figcaption>${escapeHtml(b.title)}</figcaption>${legend(
    b.series.map((s) => s.name),
    (i) => PALETTE[i % PALETTE.length]!,
  )}${svgOpen(b.id, left + plotW + right, top + plotH + bottom, marks)}${parts.join('')}</svg></figure>`;
}

/** Each cell shaded by its share of its row: the diagonal in blue, the rest in red, so that mistakes stand out even when small. */
function heatmapHtml(b: HeatmapBlock): string {
  const n = b.counts.length;
  if (!n) return '';
  const size = n > 20 ? 14 : 34;
  const showCounts = n <= 20;
  const margin = 60;
  const side = margin + n * size + 10;
  const parts: string[] = [];
  b.counts.forEach((row, i) => {
    const total = row.reduce((a, v) => a + v, 0) || 1;
    row.forEach((v, j) => {
      const f = v / total;
      const [r, g, bl] = i === j ? [59, 111, 182] : [196, 69, 60];
      const fill = v === 0 ? '#f7f7f7' : `rgba(${r},${g},${bl},${(0.12 + 0.88 * f).toFixed(3)})`;
      const x = margin + j * size;
      const y = margin + i * size;
      parts.push(
        `<rect class="cell" x="${x}" y="${y}" width="${size}" height="${size}" fill="${fill}" stroke="#fff" data-value="${attrNum(v)}"><title>${escapeHtml(`${b.rowLabel} ${b.labels[i] ?? i}, ${b.colLabel} ${b.labels[j] ?? j}: ${v}`)}</title></rect>`,
      );
      if (showCounts && v) parts.push(`<text x="${x + size / 2}" y="${y + size / 2 + 4}" text-anchor="middle" fill="${f > 0.5 ? '#fff' : '#222'}">${v}</text>`);
    });
  });
  if (showCounts) {
    b.labels.forEach((c, k) => {
      const label = escapeHtml(c.length > 6 ? c.slice(0, 6) : c);
      parts.push(`<text x="${margin - 4}" y="${margin + k * size + size / 2 + 4}" text-anchor="end">${label}</text>`);
      parts.push(`<text x="${margin + k * size + size / 2}" y="${margin - 6}" text-anchor="middle">${label}</text>`);
    });
  }
  const mid = margin + (n * size) / 2;
  parts.push(`<text x="${mid}" y="14" text-anchor="middle" font-weight="bold">${escapeHtml(b.colLabel)}</text>`);
  parts.push(`<text x="12" y="${mid}" text-anchor="middle" font-weight="bold" transform="rotate(-90 12 ${mid})">${escapeHtml(b.rowLabel)}</text>`);
  return `<figure class="heat"><figcaption>${escapeHtml(b.title)}</figcaption>${svgOpen(b.id, side, side, n * n)}${parts.join('')}</svg></figure>`;
}

function blockHtml(b: Block): string {
  return b.kind === 'table' ? tableHtml(b) : b.kind === 'bars' ? barsHtml(b) : b.kind === 'lines' ? linesHtml(b) : heatmapHtml(b);
}

const STYLE = `
body{font-family:system-ui,sans-serif;margin:0 auto;padding:1.5em 2em;color:#222;max-width:1100px;line-height:1.4}
h1{font-size:1.6em;margin:.2em 0 .6em}h2{font-size:1.25em;margin:1.6em 0 .4em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f0f0f0}td:first-child,th:first-child,td.l,th.l{text-align:left}td.l{white-space:normal;min-width:5em}td:first-child{white-space:nowrap}caption{text-align:left;font-weight:bold;padding:2px 0}
.scroll{overflow-x:auto}figure{margin:.8em 0}figcaption{font-weight:bold;margin-bottom:4px}svg{max-width:100%;height:auto}
.legend{font-size:12px;margin:2px 0 4px}.legend span{margin-right:1.2em}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
.warn h2{color:#c4453c}figure.heat{display:inline-block;vertical-align:top;margin-right:1em}p.note{margin:.3em 0;color:#444}dl{display:grid;grid-template-columns:max-content auto;gap:2px 1em}dt{font-weight:bold}dd{margin:0;overflow-wrap:anywhere}
`;

/** One HTML file, readable from disk with no network: styles inline, charts as inline SVG, no scripts. */
export function renderHtml(doc: ReportDocument): string {
  const facts = doc.facts.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('\n');
  const sections = doc.sections
    .map((s) => {
      const notes = (s.notes ?? []).map((n) => `<p class="note">${escapeHtml(n)}</p>`).join('\n');
      return `<section id="${escapeHtml(s.id)}"${s.warn ? ' class="warn"' : ''}><h2>${escapeHtml(s.title)}</h2>\n${notes}\n${s.blocks.map(blockHtml).join('\n')}</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(doc.title)}</title>
<style>${STYLE}</style></head><body>
<h1>${escapeHtml(doc.title)}</h1>
<dl>
${facts}
</dl>
${sections}
</body></html>
`;
}
