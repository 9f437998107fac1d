/** Reading any HostTensor as plain numbers, so metrics never care which element type a model emits. */
import { halfToFloat } from '../onnx/tensor.js';
import type { HostTensor } from '../runtime/types.js';

/**
 * Element values as float64: widest common type, so comparing float64 references loses nothing.
 * float16 tensors travel as raw Uint16Array bits (see runtime/types.ts).
 */
export function toFloat64(t: HostTensor): Float64Array {
  const n = t.data.length;
  const out = new Float64Array(n);
  if (t.type === 'float16') {
    const bits = t.data as Uint16Array;
    for (let i = 0; i < n; i++) out[i] = halfToFloat(bits[i]!);
  } else if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) {
    for (let i = 0; i < n; i++) out[i] = Number(t.data[i]!);
  } else {
    const d = t.data as Exclude<HostTensor['data'], BigInt64Array | BigUint64Array>;
    for (let i = 0; i < n; i++) out[i] = d[i]!;
  }
  return out;
}

export function shapeText(dims: readonly (number | string)[]): string {
  return `[${dims.join(',')}]`;
}
