/** Aligned plain-text tables for the terminal. */
import { printable } from '../printable.js';

/** Cells are made printable before they are measured, so names from a model can neither act nor misalign. */
export function table(cells: string[][], indent = '  '): string {
  if (cells.length === 0) return '';
  const rows = cells.map((r) => r.map(printable));
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => indent + r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')).join('\n');
}
