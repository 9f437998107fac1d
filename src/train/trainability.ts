/**
 * Whether `finetune` can train a model as it stands, without running anything: the training-step graph is
 * built (classification loss, default parameter choice) and either succeeds, with what it would train, or
 * fails with the reason `finetune` would give (an op without a gradient rule, an unknown shape, ...).
 */
import { UserError } from '../errors.js';
import type { ModelFile } from '../onnx/read.js';
import { decodeModel } from '../onnx/schema.js';
import { elementCount } from '../onnx/tensor.js';
import type { ModelProto } from '../onnx/types.js';
import { chooseParameters } from './params.js';
import { ShapeUnknownError } from './rules/errors.js';
import { buildTrainingModel } from './step.js';

export interface Trainability {
  ok: boolean;
  /** parameter tensors and values the default choice trains */
  parameters: number;
  values: number;
  /** the training graph's opset, the model's own, and forward nodes rewritten to reach it */
  opset: number;
  modelOpset: number;
  rewritten: number;
  /** float16/bfloat16 parameters, trained in float32 */
  float32Master: boolean;
  /** the loss a classification run would use (cross-entropy, or NLL when the model ends in (Log)Softmax) */
  loss: string | null;
  /** why it cannot be trained, as finetune would say it */
  reason: string | null;
}

export function trainability(mf: ModelFile): Trainability {
  // a private copy: building the training graph reads the model, but the caller's stays untouched
  const model = decodeModel(mf.bytes);
  try {
    const params = chooseParameters(model.graph!).trainable;
    const tm = buildTrainingModel(model, { sourceDir: mf.dir, file: mf.path, params, task: 'classification', optimizer: { name: 'adam' } });
    return {
      ok: true,
      parameters: tm.params.length,
      values: tm.params.reduce((n, p) => n + elementCount(p.dims), 0),
      opset: tm.opset,
      modelOpset: tm.sourceOpset,
      rewritten: tm.rewritten,
      float32Master: tm.promoted,
      loss: tm.loss.kind,
      reason: null,
    };
  } catch (e) {
    // a report never fails: what finetune would refuse with, or what broke building the graph
    let reason = e instanceof UserError ? e.message : `building the training graph failed: ${e instanceof Error ? e.message : String(e)}`;
    const symbolic = e instanceof ShapeUnknownError ? symbolicSampleDims(model) : [];
    if (symbolic.length)
      reason += ` (finetune sets the input's symbolic dims ${symbolic.join(', ')} from the data's sample shape, which this check cannot see)`;
    return { ok: false, parameters: 0, values: 0, opset: 0, modelOpset: 0, rewritten: 0, float32Master: false, loss: null, reason };
  }
}

/** Names of the data input's symbolic dims after the batch (the input that is not an initializer). */
function symbolicSampleDims(model: ModelProto): string[] {
  const inits = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const data = (model.graph?.input ?? []).filter((i) => !inits.has(i.name));
  if (data.length !== 1) return [];
  return (data[0]!.type?.tensorType?.shape?.dim ?? [])
    .slice(1)
    .flatMap((d) => (d.dimParam ? [d.dimParam] : d.dimValue === undefined || d.dimValue === null ? ['?'] : []));
}
