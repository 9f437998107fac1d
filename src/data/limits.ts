/**
 * The data size limit: how much memory the decoded contents of one data set may take. Loaders charge
 * what a file's headers declare (npy shape × item size, a zip member's uncompressed size, an image's
 * width × height) BEFORE allocating it, so a small hostile file cannot make the process allocate
 * gigabytes first and fail afterwards.
 */
import { constants as bufferConstants } from 'node:buffer';
import { totalmem } from 'node:os';
import { UserError } from '../errors.js';

const GiB = 2 ** 30;

/** 2 GiB, or a quarter of the machine's memory where that is less. */
export const DEFAULT_MAX_DATA_BYTES = Math.min(2 * GiB, Math.floor(totalmem() / 4));

/** The largest single buffer Node can allocate; above it no limit can help. */
export const MAX_BUFFER = bufferConstants.MAX_LENGTH;

/** `1536` -> '1.5 KiB'; binary units, one decimal below 10. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return 'an unbounded number of bytes';
  if (n < 1024) return `${n} byte${n === 1 ? '' : 's'}`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const text = v < 10 ? v.toFixed(1).replace(/\.0$/, '') : Math.round(v).toString();
  return `${text} ${units[u]}`;
}

/**
 * Bytes a data set's loading holds, against the limit. Each loader takes its bytes before allocating
 * them; what it takes for a moment only (one image's decode buffers) it gives back afterwards.
 */
export class DataBudget {
  private held = 0;

  constructor(readonly limit: number = DEFAULT_MAX_DATA_BYTES) {
    if (!(Number.isFinite(limit) && limit > 0)) throw new UserError('data size limit', `expected a positive number of bytes, found ${limit}`);
  }

  /**
   * Reserves `bytes` for `subject` (a file name). `declared` says what declared them, completing the
   * sentence "<subject>: <declared>, above the data size limit", e.g. 'declares 4 GiB of data (shape
   * 1000000x1000 <f4)'. A byte count that is not a safe integer (an overflowing product) is refused too.
   */
  take(subject: string, bytes: number, declared: string): void {
    if (!(Number.isSafeInteger(bytes) && bytes >= 0)) {
      throw new UserError(subject, `${declared}, a size too large to represent; refused`);
    }
    if (bytes > this.limit - this.held) {
      const already = this.held > 0 && bytes <= this.limit ? `; with the ${formatBytes(this.held)} already loaded for this data set that is` : ',';
      throw new UserError(
        subject,
        `${declared}${already} above the data size limit (${formatBytes(this.limit)}); raise the data size limit if you trust this file`,
      );
    }
    this.held += bytes;
  }

  /** Gives back bytes taken for a moment, once they are no longer held. */
  release(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
  }

  /** Like take, for one buffer: also refuses what no single Node buffer can hold, whatever the limit. */
  takeBuffer(subject: string, bytes: number, declared: string): void {
    if (bytes > MAX_BUFFER) throw new UserError(subject, `${declared}, more than one buffer can hold (${formatBytes(MAX_BUFFER)})`);
    this.take(subject, bytes, declared);
  }
}

/** A shape for messages: [1000000, 1000, 1] -> '1000000x1000x1', [] -> 'scalar'. */
export function shapeText(shape: readonly number[]): string {
  return shape.length ? shape.join('x') : 'scalar';
}
