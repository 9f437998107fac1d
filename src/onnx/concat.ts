/**
 * Concat that every onnxruntime EP computes right. onnxruntime-web 1.30's WebGPU EP in the browser (JSEP)
 * binds each Concat input as its own storage buffer and asks the device for WebGPU's default limit of 8
 * per shader stage: a Concat of 8 or more inputs (plus its output) fails pipeline validation, which
 * onnxruntime only logs, and the whole batch of kernels submitted with it never runs, so the outputs read
 * back as zeros or stale values with no error. (onnxruntime's C++ WebGPU EP, node's `webgpu`, batches the
 * inputs since microsoft/onnxruntime#25390; JSEP does not.) Nested Concats of at most 7 inputs each
 * give the same tensor on every EP, for one more copy of the data.
 */
import { intAttr } from './attrs.js';
import type { Builder, OpOptions } from './builder.js';

/** The most inputs one emitted Concat takes: 7 inputs + 1 output = WebGPU's default 8 storage buffers. */
export const MAX_CONCAT_INPUTS = 7;

/** `xs` in runs of at most `size`, in order. */
export function chunks<T>(xs: readonly T[], size = MAX_CONCAT_INPUTS): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/**
 * Concat(parts, axis) as a tree of Concats of at most MAX_CONCAT_INPUTS inputs each; a single part is
 * returned as it is (no node).
 */
export function concat(b: Builder, parts: readonly string[], axis: number, o: OpOptions = {}): string {
  if (parts.length === 0) throw new Error('concat: no inputs');
  if (parts.length === 1) return parts[0]!;
  if (parts.length <= MAX_CONCAT_INPUTS) return b.op('Concat', [...parts], [intAttr('axis', axis)], o);
  return concat(
    b,
    chunks(parts).map((c) => concat(b, c, axis, o)),
    axis,
    o,
  );
}
