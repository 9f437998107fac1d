/** Plain-text tables for the terminal: columns padded to their widest cell, numbers right-aligned. */
import { basename } from 'node:path';
import { printable } from '../printable.js';

export type Align = 'left' | 'right';

/** Cells that read as numbers (or a placeholder for one), which line up on the right by default. */
const NUMERIC = /^(?:[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?%?|-|inf|-inf|)$/i;

/** Rows as lines of columns two spaces apart, each padded to its widest cell (printable first, so names can neither act nor misalign). */
function alignedLines(raw: string[][], align: (c: number, rows: string[][]) => Align, indent = ''): string[] {
  const rows = raw.map((r) => r.map(printable));
  const cols = Math.max(0, ...rows.map((r) => r.length));
  const widths = Array.from({ length: cols }, (_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map(
    (r) =>
      indent +
      r
        .map((cell, c) => (align(c, rows) === 'right' ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
  );
}

/**
 * Aligned columns separated by two spaces, with a dashed rule under the header. Cells hold names from
 * models and data: they are made printable before they are measured.
 */
export function formatTable(headers: string[], raw: string[][], align?: Align[]): string {
  const body = raw.map((r) => headers.map((_, c) => printable(r[c] ?? '')));
  const al = headers.map((_, c) => align?.[c] ?? (body.length && body.every((r) => NUMERIC.test(r[c]!)) ? 'right' : 'left'));
  const widths = headers.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]!.length)));
  return alignedLines([headers, widths.map((w) => '-'.repeat(w)), ...body], (c) => al[c] ?? 'left').join('\n');
}

/** Headerless left-aligned columns (a key and its values per row), indented: the CLI's listings. */
export function table(cells: string[][], indent = '  '): string {
  return alignedLines(cells, () => 'left', indent).join('\n');
}

/** Fixed decimals, or '-' for a missing value, so columns keep their width. */
export function fmt(v: number | null | undefined, digits = 4): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return v.toFixed(digits);
}

export function pct(v: number | null | undefined, digits = 2): string {
  return v === null || v === undefined || Number.isNaN(v) ? '-' : `${(v * 100).toFixed(digits)}%`;
}

/** Errors span many magnitudes (1e-9 .. 1e2); scientific notation keeps them comparable at a glance. */
export function sci(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  if (v === 0) return '0';
  if (!Number.isFinite(v)) return 'inf';
  return v.toExponential(2);
}

/**
 * Short display names for model paths: the file name, or more of the path where file names collide
 * (an original and its converted copy are often both `model.onnx` in different folders).
 */
export function shortNames(paths: string[]): Map<string, string> {
  const parts = paths.map((p) => p.split(/[\\/]+/).filter(Boolean));
  for (let depth = 1; ; depth++) {
    const names = parts.map((ps) => ps.slice(-depth).join('/'));
    const unique = new Set(names).size === new Set(paths).size;
    if (unique || parts.every((ps) => ps.length <= depth)) {
      return new Map(paths.map((p, i) => [p, names[i] || basename(p)]));
    }
  }
}
