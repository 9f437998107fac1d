/** How many threads an EP computes with: one rule for onnxruntime-node's intra-op pool and the wasm workers. */
import { availableParallelism } from 'node:os';
import { UserError } from '../errors.js';

/** Every core the process may use: onnxruntime-node would otherwise pick its own count (1 on a 2-core VM). */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism());
}

/** The thread count asked for, or the default; anything but a positive integer is refused. */
export function threadCount(threads: number | undefined): number {
  const n = threads ?? defaultThreads();
  if (!Number.isInteger(n) || n < 1) throw new UserError('threads', `must be a positive integer, got ${n}`);
  return n;
}
