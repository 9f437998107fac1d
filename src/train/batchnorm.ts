/**
 * `--bn train`: BatchNormalization as PyTorch's model.train() runs it, in standard ops.
 *
 * Each trained layer's node becomes the batch-norm formula over the batch's own statistics:
 *
 *   X3   = Reshape(X, [0, 0, -1])                  (N, C, L): any rank >= 2, no rank needed at build time
 *   mean = ReduceMean(X3, [0, 2])                  per channel, over the batch and the spatial axes
 *   c    = X3 - mean
 *   var  = ReduceMean(c * c, [0, 2])               biased, as the normalization uses it
 *   Y    = Reshape(c * (scale / sqrt(var + eps)) + B, Shape(X))
 *
 * Its gradient is then the other rules' (ReduceMean, Sub, Mul, Sqrt, ...), which add up to the full
 * batch-norm backward dX = scale/σ · (dY − mean(dY) − x̂·mean(dY·x̂)) and PyTorch's dScale and dB; the
 * BatchNormalization rule stays the frozen one (its statistics are never differentiated).
 *
 * The running statistics become step inputs, and their updates step outputs that the loop feeds back
 * (carried, never touched by the optimizer):
 *
 *   running_mean' = momentum·running_mean + (1 − momentum)·mean
 *   running_var'  = momentum·running_var  + (1 − momentum)·var·n/(n − 1)   (PyTorch: the unbiased variance)
 *
 * with ONNX's momentum convention (the node's `momentum`, default 0.9 = PyTorch's 0.1; torch.onnx.export
 * writes 1 − the module's momentum, so any exported PyTorch model keeps its own) and n = N·spatial.
 *
 * ONNX's own training_mode=1 (opset 14+) is not used. Measured on onnxruntime 1.30: cpu and wasm run it,
 * the WebGPU EP refuses it ("BatchNormalization trainingMode is not supported yet"); its running variance is
 * the biased one (not PyTorch's rule, so the update would be computed here anyway); and it outputs no batch
 * statistics for a gradient to reuse. These standard ops run on every EP; they cost more than its fused kernel
 * (one layer's forward at [16, 64, 32, 32], cpu, 1 thread: 8.0 ms against 3.0 ms, best of 30 on a loaded
 * 2-core machine; the whole step of a 6-layer CNN at 64×64, batch 16: within 5-15% of `frozen`).
 *
 * Which layers train: those with a trained scale or bias and running statistics held in initializers of
 * their own. A layer whose scale and bias are both frozen (--freeze, --train-only) stays frozen in both
 * senses: inference mode with its running statistics, as users of PyTorch freeze a backbone's BN.
 */
import { attrFloat, attrInt, intAttr } from '../onnx/attrs.js';
import { Builder } from '../onnx/builder.js';
import { DataType } from '../onnx/dtype.js';
import { Graph } from '../onnx/graph.js';
import type { GraphProto, NodeProto, TensorProto } from '../onnx/types.js';

export const BATCH_NORM_MODES = ['frozen', 'train'] as const;
export type BatchNormMode = (typeof BATCH_NORM_MODES)[number];

/** One BatchNormalization layer trained in train mode: its node and its running statistics' initializers. */
export interface BatchNormLayer {
  node: string;
  mean: string;
  var: string;
}

export interface BatchNormChoice {
  train: BatchNormLayer[];
  /** layers kept in inference mode, and why */
  frozen: { node: string; reason: string }[];
}

/** A running statistic carried from step to step: input name (the initializer's), the output with its update. */
export interface RunningSlot {
  name: string;
  updated: string;
  dims: number[];
  dataType: number;
}

const label = (n: NodeProto, i: number) => n.name || `BatchNormalization #${i + 1}`;

/** Which layers `--bn train` trains, given the trained parameters (see the module comment). */
export function batchNormLayers(graph: GraphProto, trainable: readonly string[]): BatchNormChoice {
  const trained = new Set(trainable);
  const inits = new Set((graph.initializer ?? []).map((t) => t.name));
  // torch.onnx.export (1.13) merges equal tensors into one initializer read through Identity nodes
  const aliases = new Set((graph.node ?? []).filter((n) => n.opType === 'Identity' && inits.has(n.input?.[0])).map((n) => n.output?.[0]));
  // a statistic read by two nodes (or by anything else: a subgraph, an output) cannot take two layers' updates
  const g = Graph.of(graph);
  const out: BatchNormChoice = { train: [], frozen: [] };
  (graph.node ?? []).forEach((n, i) => {
    if (n.opType !== 'BatchNormalization' || (n.domain && n.domain !== 'ai.onnx')) return;
    const [, scale, bias, mean, variance] = n.input ?? [];
    const name = label(n, i);
    if (!trained.has(scale ?? '') && !trained.has(bias ?? '')) {
      out.frozen.push({ node: name, reason: 'its scale and bias are not trained' });
    } else if (aliases.has(mean) || aliases.has(variance)) {
      out.frozen.push({ node: name, reason: 'its running statistics are Identity copies of a tensor other nodes share (an exporter merged equal tensors)' });
    } else if (!mean || !variance || !inits.has(mean) || !inits.has(variance)) {
      out.frozen.push({ node: name, reason: 'its running statistics are not initializers' });
    } else if (mean === variance || g.uses(mean) !== 1 || g.uses(variance) !== 1) {
      out.frozen.push({ node: name, reason: 'its running statistics are shared with other nodes' });
    } else if (attrInt(n, 'training_mode', 0) === 1 || (n.output ?? []).filter((o) => o).length > 1) {
      out.frozen.push({ node: name, reason: 'it is exported in training mode' });
    } else {
      out.train.push({ node: name, mean, var: variance });
    }
  });
  return out;
}

/**
 * Rewrites the chosen layers of `graph` (the training forward, whose running statistics are already graph
 * inputs) to normalize with batch statistics, and adds the nodes computing the updated running statistics.
 * `initial` holds the running statistics' values (for their type and dims). Returns one slot per running
 * statistic, in layer order (mean, then var).
 */
export function trainBatchNorm(
  graph: GraphProto,
  layers: readonly BatchNormLayer[],
  opset: number,
  fresh: (base: string) => string,
  initial: ReadonlyMap<string, TensorProto>,
): RunningSlot[] {
  const byMean = new Map(layers.map((l) => [l.mean, l]));
  const slots: RunningSlot[] = [];
  const nodes: NodeProto[] = [];
  for (const n of graph.node ?? []) {
    const layer = n.opType === 'BatchNormalization' ? byMean.get(n.input?.[3] ?? '') : undefined;
    if (!layer || n.input?.[4] !== layer.var) {
      nodes.push(n);
      continue;
    }
    const [X, scale, bias] = n.input as [string, string, string];
    const stat = initial.get(layer.mean)!;
    const dt = stat.dataType ?? DataType.FLOAT;
    const em = new Builder(fresh, { opset, prefix: `bn_train/${n.name || X}` });
    const reduceMean = (t: string, base: string) => em.reduceMean(t, [0, 2], true, { base });
    const channels = em.ints([1, -1, 1]);
    const x3 = em.op('Reshape', [X, em.ints([0, 0, -1])]);
    const meanK = reduceMean(x3, 'batch_mean');
    const centered = em.op('Sub', [x3, meanK]);
    const varK = reduceMean(em.op('Mul', [centered, centered]), 'batch_var');
    const rstd = em.op('Reciprocal', [em.op('Sqrt', [em.op('Add', [varK, em.scalar(attrFloat(n, 'epsilon', 1e-5), dt)])])]);
    const k = em.op('Mul', [rstd, em.op('Reshape', [scale, channels])]);
    const y3 = em.op('Add', [em.op('Mul', [centered, k]), em.op('Reshape', [bias, channels])]);
    em.node('Reshape', [y3, em.op('Shape', [X])], [n.output![0]!], [], { name: fresh(`bn_train/${n.name || X}/Reshape`) });
    // n / (n - 1) with n = elements per channel, known only at run time when the batch is symbolic
    const flat = em.ints([-1]);
    const mean = em.op('Reshape', [meanK, flat]);
    const variance = em.op('Reshape', [varK, flat]);
    const count = em.op('Cast', [em.op('Div', [em.op('Size', [X]), em.op('Size', [mean])])], [intAttr('to', dt)]);
    const unbiased = em.op('Div', [count, em.op('Sub', [count, em.scalar(1, dt)])]);
    const momentum = attrFloat(n, 'momentum', 0.9);
    const blend = (running: string, batch: string) =>
      em.op('Add', [em.op('Mul', [running, em.scalar(momentum, dt)]), em.op('Mul', [batch, em.scalar(1 - momentum, dt)])], [], { base: `${running}/updated` });
    const newMean = blend(layer.mean, mean);
    const newVar = blend(layer.var, em.op('Mul', [variance, unbiased]));
    nodes.push(...em.nodes);
    graph.initializer!.push(...em.initializers);
    for (const [name, updated] of [
      [layer.mean, newMean],
      [layer.var, newVar],
    ] as const) {
      const t = initial.get(name)!;
      slots.push({ name, updated, dims: (t.dims ?? []).map(Number), dataType: t.dataType ?? DataType.FLOAT });
    }
  }
  graph.node = nodes;
  return slots;
}
