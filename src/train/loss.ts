/**
 * The loss appended to a forward graph, built only from ops the gradient table knows (LogSoftmax,
 * GatherElements, ReduceMean, Neg, Sub, Mul, Flatten).
 *
 * - Classification, raw logits: mean softmax cross-entropy = -mean(GatherElements(LogSoftmax(z), y)),
 *   what torch.nn.CrossEntropyLoss computes.
 * - The model already ends in LogSoftmax: its output is used as log-probabilities (NLL).
 * - The model ends in Softmax: NLL on LogSoftmax of the Softmax's own input, which is log(softmax)
 *   without the underflow of taking Log of a probability that rounded to 0.
 * - Regression: mean squared error over every element, as torch.nn.MSELoss.
 * Labels come in as int64 [batch, 1] so GatherElements can use them directly.
 */
import { attrInt, intAttr, isDefaultDomain } from '../onnx/attrs.js';
import type { GraphProto, NodeProto } from '../onnx/types.js';
import type { Emitter } from './emit.js';

export type LossKind = 'cross-entropy' | 'nll-logsoftmax' | 'nll-softmax' | 'mse';

export interface LossInfo {
  /** name of the scalar loss */
  loss: string;
  kind: LossKind;
  /** one sentence for the log saying what was detected */
  note: string;
}

function producerOf(graph: GraphProto, name: string): NodeProto | undefined {
  return (graph.node ?? []).find((n) => (n.output ?? []).includes(name));
}

const isDefault = (n: NodeProto) => isDefaultDomain(n.domain);

/** Whether `axis` of a softmax-like node over an `rank`-D output is the last (class) axis. */
function lastAxis(n: NodeProto, rank: number | undefined, opset: number): boolean {
  const dflt = opset >= 13 ? -1 : 1;
  const a = attrInt(n, 'axis', dflt);
  if (rank === undefined) return a === -1;
  return a === -1 || a === rank - 1;
}

/**
 * Appends the loss to `graph` (nodes go to `em`, which the caller appends). `rank` is the output's rank
 * when known; outputs of rank other than 2 are flattened to [batch, classes] first.
 */
export function addLoss(
  graph: GraphProto,
  em: Emitter,
  opts: { output: string; labels: string; task: 'classification' | 'regression'; rank?: number; opset: number },
): LossInfo {
  if (opts.task === 'regression') {
    const d = em.op('Sub', [opts.output, opts.labels], [], 'diff');
    const loss = em.op('ReduceMean', [em.op('Mul', [d, d], [], 'sq')], [intAttr('keepdims', 0)], 'loss');
    return { loss, kind: 'mse', note: 'regression: mean squared error over every output element' };
  }
  const flat = (x: string) => (opts.rank === 2 ? x : em.op('Flatten', [x], [intAttr('axis', 1)], 'flat'));
  const last = producerOf(graph, opts.output);
  let logp: string;
  let kind: LossKind;
  let note: string;
  if (last && isDefault(last) && last.opType === 'LogSoftmax' && lastAxis(last, opts.rank, opts.opset)) {
    logp = flat(opts.output);
    kind = 'nll-logsoftmax';
    note = `the model ends in LogSoftmax (node ${last.name || last.output![0]}): its output is taken as log-probabilities (NLL loss)`;
  } else if (last && isDefault(last) && last.opType === 'Softmax' && lastAxis(last, opts.rank, opts.opset)) {
    // Same axis semantics as the Softmax: at opset >= 13 both act on one axis.
    const axis = attrInt(last, 'axis', opts.opset >= 13 ? -1 : 1);
    logp = flat(em.op('LogSoftmax', [last.input![0]!], [intAttr('axis', axis)], 'logp'));
    kind = 'nll-softmax';
    note = `the model ends in Softmax (node ${last.name || last.output![0]}): NLL on the log of its output, computed as LogSoftmax of its input`;
  } else {
    logp = em.op('LogSoftmax', [flat(opts.output)], [intAttr('axis', 1)], 'logp');
    kind = 'cross-entropy';
    note = 'the model outputs logits: softmax cross-entropy';
  }
  const picked = em.op('GatherElements', [logp, opts.labels], [intAttr('axis', 1)], 'picked');
  const loss = em.op('Neg', [em.op('ReduceMean', [picked], [intAttr('keepdims', 0)], 'mean_logp')], [], 'loss');
  return { loss, kind, note };
}
