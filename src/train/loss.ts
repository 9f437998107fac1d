/**
 * The loss appended to a forward graph, built only from ops the gradient table knows (LogSoftmax,
 * GatherElements or Where + ReduceSum, ReduceMean, Neg, Sub, Mul, Flatten).
 *
 * - Classification, raw logits: mean softmax cross-entropy = -mean(GatherElements(LogSoftmax(z), y)),
 *   what torch.nn.CrossEntropyLoss computes. GatherElements' gradient scatters with reduction='add'
 *   (opset 16); below that, each row's log-probability is picked with a one-hot mask instead (Where,
 *   then a row sum: exact, the other entries add zeros).
 * - The model already ends in LogSoftmax: its output is used as log-probabilities (NLL).
 * - The model ends in Softmax: NLL on LogSoftmax of the Softmax's own input, which is log(softmax)
 *   without the underflow of taking Log of a probability that rounded to 0.
 * - Regression: mean squared error over every element, as torch.nn.MSELoss.
 * Labels come in as int64 [batch, 1] so GatherElements can use them directly.
 */
import { attrInt, intAttr, isDefaultDomain } from '../onnx/attrs.js';
import { DataType } from '../onnx/dtype.js';
import type { GraphProto, NodeProto } from '../onnx/types.js';
import type { Builder } from '../onnx/builder.js';
import { Graph } from '../onnx/graph.js';

export type LossKind = 'cross-entropy' | 'nll-logsoftmax' | 'nll-softmax' | 'mse';

export interface LossInfo {
  /** name of the scalar loss */
  loss: string;
  kind: LossKind;
  /** one sentence for the log saying what was detected */
  note: string;
}

const isDefault = (n: NodeProto) => isDefaultDomain(n.domain);

/**
 * Whether a softmax-like node normalizes over the classes the loss sees (the output flattened to
 * [batch, classes]): its last axis, an axis after which every dim is 1 ([N, C, 1, 1] heads), or before
 * opset 13 axis 1, which then covers every trailing axis at once.
 */
function lastAxis(n: NodeProto, rank: number | undefined, dims: (number | string | null)[] | undefined, opset: number): boolean {
  const dflt = opset >= 13 ? -1 : 1;
  const a = attrInt(n, 'axis', dflt);
  if (opset < 13 && a === 1) return true;
  if (a === -1 || a === (rank ?? 0) - 1) return true;
  return dims !== undefined && a >= 0 && dims.slice(a + 1).every((d) => d === 1);
}

/**
 * Appends the loss to `graph` (nodes go to `em`, which the caller appends). `rank` and `dims` describe the
 * output when known; outputs of rank other than 2 are flattened to [batch, classes] first.
 */
export function addLoss(
  graph: GraphProto,
  em: Builder,
  opts: {
    output: string;
    labels: string;
    task: 'classification' | 'regression';
    rank?: number;
    dims?: (number | string | null)[];
    opset: number;
    dataType?: number;
  },
): LossInfo {
  if (opts.task === 'regression') {
    const d = em.op('Sub', [opts.output, opts.labels], [], { base: 'diff' });
    const loss = em.op('ReduceMean', [em.op('Mul', [d, d], [], { base: 'sq' })], [intAttr('keepdims', 0)], { base: 'loss' });
    return { loss, kind: 'mse', note: 'regression: mean squared error over every output element' };
  }
  const flat = (x: string) => (opts.rank === 2 ? x : em.op('Flatten', [x], [intAttr('axis', 1)], { base: 'flat' }));
  const last = Graph.of(graph).producer(opts.output);
  let logp: string;
  let kind: LossKind;
  let note: string;
  if (last && isDefault(last) && last.opType === 'LogSoftmax' && lastAxis(last, opts.rank, opts.dims, opts.opset)) {
    logp = flat(opts.output);
    kind = 'nll-logsoftmax';
    note = `the model ends in LogSoftmax (node ${last.name || last.output![0]}): its output is taken as log-probabilities (NLL loss)`;
  } else if (last && isDefault(last) && last.opType === 'Softmax' && lastAxis(last, opts.rank, opts.dims, opts.opset)) {
    // Same axis semantics as the Softmax: at opset >= 13 both act on one axis.
    const axis = attrInt(last, 'axis', opts.opset >= 13 ? -1 : 1);
    logp = flat(em.op('LogSoftmax', [last.input![0]!], [intAttr('axis', axis)], { base: 'logp' }));
    kind = 'nll-softmax';
    note = `the model ends in Softmax (node ${last.name || last.output![0]}): NLL on the log of its output, computed as LogSoftmax of its input`;
  } else {
    logp = em.op('LogSoftmax', [flat(opts.output)], [intAttr('axis', 1)], { base: 'logp' });
    kind = 'cross-entropy';
    note = 'the model outputs logits: softmax cross-entropy';
  }
  const picked =
    opts.opset >= 16
      ? em.op('GatherElements', [logp, opts.labels], [intAttr('axis', 1)], { base: 'picked' })
      : pickByMask(em, logp, opts.labels, opts.dataType ?? DataType.FLOAT);
  const loss = em.op('Neg', [em.op('ReduceMean', [picked], [intAttr('keepdims', 0)], { base: 'mean_logp' })], [], { base: 'loss' });
  return { loss, kind, note };
}

/** logp[b, labels[b]] as [batch, 1] from ops of opset 9 on: OneHot(labels, classes) as a mask, Where, row sum. */
function pickByMask(em: Builder, logp: string, labels: string, dataType: number): string {
  const flatLabels = em.op('Reshape', [labels, em.ints([-1])], [], { base: 'labels_flat' });
  const classes = em.op('Gather', [em.op('Shape', [logp]), em.int0(1)], [intAttr('axis', 0)], { base: 'classes' });
  const values = em.constant(DataType.FLOAT, [2], [0, 1]);
  const hot = em.op('OneHot', [flatLabels, classes, values], [intAttr('axis', -1)], { base: 'onehot' });
  const mask = em.op('Cast', [hot], [intAttr('to', DataType.BOOL)], { base: 'label_mask' });
  const rows = em.op('Where', [mask, logp, em.scalar(0, dataType)], [], { base: 'label_logp' });
  return em.reduceSum(rows, [1], true, { base: 'picked' });
}
