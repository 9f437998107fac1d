/**
 * User data in CSV: one row per sample, numeric feature columns and one label column.
 *
 * - Parsing follows RFC 4180 (quoted fields, "" escapes, CRLF or LF); a UTF-8 BOM and blank lines are
 *   ignored. Delimiter: tab for .tsv, otherwise ',' (or the `delimiter` option).
 * - Header: when not told (`header` option), the first row is a header if some column that is numeric
 *   in the second row is not numeric in the first.
 * - Label column: the `labelColumn` option (a header name or a 0-based index; negative counts from the
 *   end); by default the column named `label` (any case) if the header has one, else the last column.
 * - Labels: if every label is an integer, it is the class index itself (classes '0'..'max'); otherwise the
 *   distinct label strings sorted in JavaScript's default (UTF-16 code unit) order are the classes and
 *   each row's label is its index there. For regression the label column must be numeric.
 * - Sample shape [number of feature columns]; features keep the file's column order.
 */
import { constants as bufferConstants } from 'node:buffer';
import { basename, extname } from 'node:path';
import { UserError } from '../errors.js';
import { quoted } from './text.js';
import { readWhole } from './files.js';
import { DataBudget, formatBytes } from './limits.js';
import { datasetFromArrays, type Task } from './labels.js';
import type { Dataset } from './types.js';

export interface CsvOptions {
  labelColumn?: string | number;
  header?: boolean;
  delimiter?: string;
  task?: Task;
  /** what parsing may take; the file is charged at CSV_MEMORY_PER_BYTE before it is read */
  budget?: DataBudget;
}

/**
 * Memory while parsing, per byte of CSV text: the text as a string, and every cell as its own string
 * in a row array (measured: about 19 for short numeric cells). A CSV declares no sizes, so its file
 * size, times this, stands for what it will take.
 */
export const CSV_MEMORY_PER_BYTE = 20;
const MAX_STRING_LENGTH = bufferConstants.MAX_STRING_LENGTH;

interface Row {
  line: number;
  cells: string[];
}

/** RFC 4180 records with the line each starts on. */
export function parseCsv(text: string, delimiter: string, subject: string): Row[] {
  const rows: Row[] = [];
  let cells: string[] = [];
  let cell = '';
  let inQuotes = false;
  let line = 1;
  let rowLine = 1;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const endRow = (): void => {
    cells.push(cell);
    if (!(cells.length === 1 && cells[0]!.trim() === '')) rows.push({ line: rowLine, cells });
    cells = [];
    cell = '';
  };
  for (; i < text.length; i++) {
    const c = text[i]!;
    if (inQuotes) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else inQuotes = false;
      } else {
        if (c === '\n') line++;
        cell += c;
      }
    } else if (c === '"' && cell.trim() === '') {
      inQuotes = true;
      cell = '';
    } else if (c === delimiter) {
      cells.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else cell += c;
  }
  if (inQuotes) throw new UserError(subject, `a quoted field opened on line ${rowLine} is never closed`);
  if (cell !== '' || cells.length > 0) endRow();
  return rows;
}

const isNumber = (s: string): boolean => s.trim() !== '' && Number.isFinite(Number(s.trim()));

function detectHeader(rows: Row[]): boolean {
  if (rows.length < 2) return rows.length === 1 && !rows[0]!.cells.every(isNumber) && rows[0]!.cells.some((c) => !isNumber(c));
  const [a, b] = [rows[0]!.cells, rows[1]!.cells];
  return a.some((cell, k) => !isNumber(cell) && b[k] !== undefined && isNumber(b[k]));
}

function labelIndex(opt: string | number | undefined, names: string[] | undefined, width: number, subject: string): number {
  if (opt === undefined) {
    const named = names?.findIndex((n) => n.trim().toLowerCase() === 'label') ?? -1;
    return named >= 0 ? named : width - 1;
  }
  if (typeof opt === 'number' || /^-?\d+$/.test(opt)) {
    const k = Number(opt);
    const idx = k < 0 ? width + k : k;
    if (idx < 0 || idx >= width) throw new UserError(subject, `label column ${opt} is out of range; the file has ${width} columns (0..${width - 1})`);
    return idx;
  }
  if (!names) throw new UserError(subject, `label column ${quoted(opt)} given by name, but the file has no header row; give a 0-based column index`);
  const idx = names.findIndex((n) => n.trim() === opt);
  if (idx < 0) throw new UserError(subject, `no column named ${quoted(opt)}; the header has ${names.map((n) => quoted(n.trim())).join(', ')}`);
  return idx;
}

export async function loadCsv(file: string, opts: CsvOptions = {}): Promise<Dataset> {
  const bytes = await readWhole(file, opts.budget ?? new DataBudget(), (size) => {
    if (size > MAX_STRING_LENGTH) throw new UserError(file, `is ${formatBytes(size)}, more text than one string can hold (${formatBytes(MAX_STRING_LENGTH)})`);
    return { bytes: size * CSV_MEMORY_PER_BYTE, declared: `is ${formatBytes(size)}, which takes about ${formatBytes(size * CSV_MEMORY_PER_BYTE)} to parse` };
  });
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  const delimiter = opts.delimiter ?? (extname(file).toLowerCase() === '.tsv' ? '\t' : ',');
  if (text.includes('\0')) throw new UserError(file, 'holds NUL bytes; expected a text CSV file');
  const rows = parseCsv(text, delimiter, file);
  if (rows.length === 0) throw new UserError(file, 'is empty; expected a CSV with one row per sample');
  const hasHeader = opts.header ?? detectHeader(rows);
  const names = hasHeader ? rows[0]!.cells : undefined;
  const data = hasHeader ? rows.slice(1) : rows;
  const width = rows[0]!.cells.length;
  if (width < 2) throw new UserError(file, `has ${width} column per row; expected feature columns and a label column (delimiter ${JSON.stringify(delimiter)})`);
  for (const r of data) {
    if (r.cells.length !== width) throw new UserError(file, `line ${r.line} has ${r.cells.length} fields, expected ${width} like the first row`);
  }
  if (data.length === 0) throw new UserError(file, 'has zero rows (only a header); expected at least one sample');
  const li = labelIndex(opts.labelColumn, names, width, file);
  const featureCols = [...Array(width).keys()].filter((k) => k !== li);
  const colName = (k: number): string => (names ? quoted(names[k]!.trim()) : `${k}`);

  const x = new Float32Array(data.length * featureCols.length);
  data.forEach((r, i) => {
    featureCols.forEach((k, f) => {
      const s = r.cells[k]!;
      if (!isNumber(s)) throw new UserError(file, `line ${r.line}, column ${colName(k)}: expected a number, found ${quoted(s)}`);
      x[i * featureCols.length + f] = Number(s.trim());
    });
  });

  const raw = data.map((r) => r.cells[li]!.trim());
  const empty = raw.indexOf('');
  if (empty >= 0) throw new UserError(file, `line ${data[empty]!.line}: the label (column ${colName(li)}) is empty`);
  const task = opts.task ?? 'classification';
  let y: number[];
  let classes: string[] | undefined;
  const numeric = raw.every(isNumber);
  if (numeric && (task === 'regression' || raw.every((s) => Number.isInteger(Number(s))))) {
    y = raw.map(Number);
  } else if (task === 'regression') {
    const bad = raw.findIndex((s) => !isNumber(s));
    throw new UserError(file, `line ${data[bad]!.line}: regression target ${quoted(raw[bad]!)} in column ${colName(li)} is not a number`);
  } else if (numeric) {
    const bad = raw.findIndex((s) => !Number.isInteger(Number(s)));
    throw new UserError(
      file,
      `line ${data[bad]!.line}: label ${raw[bad]} in column ${colName(li)} is not an integer; classification needs integer or string labels (use task 'regression' for real-valued targets)`,
    );
  } else {
    classes = [...new Set(raw)].sort();
    const index = new Map(classes.map((c, k) => [c, k]));
    y = raw.map((s) => index.get(s)!);
  }
  return datasetFromArrays(
    file,
    basename(file),
    {
      x,
      xShape: [data.length, featureCols.length],
      y,
      yShape: [data.length],
      ...(classes ? { classes } : {}),
      ...(names ? { featureNames: featureCols.map((k) => names[k]!.trim()) } : {}),
    },
    task,
  );
}
