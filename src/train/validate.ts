/** Validation: the forward model run over a data set with given parameter values, and its metrics. */
import type { Dataset } from '../data/types.js';
import { classificationMetrics, regressionMetrics } from '../eval/metrics.js';
import { toFloat64 } from '../runtime/tensor.js';
import type { HostTensor, Session } from '../runtime/types.js';
import { inputBatch, type BatchShape } from './batches.js';

/** Reads every output row-block of `ds` through a forward session with the given parameter feeds. */
export async function predict(
  session: Session,
  input: string,
  output: string,
  ds: Dataset,
  shape: BatchShape,
  batch: number,
  fixedBatch: boolean,
  params: Record<string, HostTensor>,
): Promise<{ scores: Float64Array; perSample: number; dims: number[] }> {
  const parts: Float64Array[] = [];
  let perSample = 0;
  let dims: number[] = [];
  for (let start = 0; start < ds.count; start += batch) {
    const rows = Int32Array.from({ length: Math.min(batch, ds.count - start) }, (_, k) => start + k);
    const x = inputBatch(ds, rows, shape, fixedBatch ? batch : undefined);
    const out = (await session.run({ [input]: x, ...params }))[output]!;
    const all = toFloat64(out);
    const rowsOut = out.dims[0] ?? 1;
    perSample = all.length / rowsOut;
    dims = out.dims.slice(1);
    parts.push(all.subarray(0, rows.length * perSample));
  }
  const scores = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    scores.set(p, o);
    o += p.length;
  }
  return { scores, perSample, dims };
}

export function metricsOf(ds: Dataset, scores: Float64Array, perSample: number): { value: number; summary: Record<string, number | null> } {
  if (ds.task === 'classification') {
    const m = classificationMetrics(scores, ds.y, perSample);
    return { value: m.top1, summary: { accuracy: m.top1, loss: m.loss, top5: m.top5, macroF1: m.macroF1 } };
  }
  const m = regressionMetrics(scores, ds.y, ds.count);
  return { value: m.mse, summary: { mse: m.mse, mae: m.mae } };
}
