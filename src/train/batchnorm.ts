/**
 * `--bn train`: BatchNormalization as PyTorch's model.train() runs it, in standard ops.
 *
 * Each trained layer's node keeps its inference form (one fast kernel on every EP) but reads the batch's
 * statistics instead of the running ones:
 *
 *   X3   = Reshape(X, [0, 0, -1])                  (N, C, L): any rank >= 2, no rank needed at build time
 *   mean = ReduceMean(X3, [0, 2])                  per channel, over the batch and the spatial axes
 *   var  = ReduceMean((X3 - mean)^2, [0, 2])       biased, as the normalization uses it
 *   Y    = BatchNormalization(X, scale, B, mean, var)
 *
 * The gradient flows through mean and var (the BatchNormalization rule differentiates them, then the
 * ReduceMean/Sub/Mul rules carry it to X), which adds up to the full batch-norm backward
 * dX = scale/σ · (dY − mean(dY) − x̂·mean(dY·x̂)).
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
 * statistics for the gradient to reuse. The inference kernel fed the batch's statistics runs everywhere.
 *
 * Which layers train: those with a trained scale or bias and running statistics held in initializers of
 * their own. A layer whose scale and bias are both frozen (--freeze, --train-only) stays frozen in both
 * senses: inference mode with its running statistics, as users of PyTorch freeze a backbone's BN.
 */
import { attrFloat, attrInt, intAttr, intsAttr } from '../onnx/attrs.js';
import { DataType } from '../onnx/dtype.js';
import type { GraphProto, NodeProto } from '../onnx/types.js';
import { Emitter } from './emit.js';

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
  // a statistic read by two nodes (or by anything else) cannot take two layers' updates
  const reads = new Map<string, number>();
  for (const n of graph.node ?? []) for (const x of n.input ?? []) if (x) reads.set(x, (reads.get(x) ?? 0) + 1);
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
    } else if (mean === variance || reads.get(mean) !== 1 || reads.get(variance) !== 1) {
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
 * Returns one slot per running statistic, in layer order (mean, then var).
 */
export function trainBatchNorm(graph: GraphProto, layers: readonly BatchNormLayer[], opset: number, fresh: (base: string) => string, dtypeOf: (name: string) => number): RunningSlot[] {
  const byMean = new Map(layers.map((l) => [l.mean, l]));
  const slots: RunningSlot[] = [];
  const nodes: NodeProto[] = [];
  const dimsOf = new Map((graph.input ?? []).map((v) => [v.name, (v.type?.tensorType?.shape?.dim ?? []).map((d) => Number(d.dimValue ?? 0))]));
  for (const n of graph.node ?? []) {
    const layer = n.opType === 'BatchNormalization' ? byMean.get(n.input?.[3] ?? '') : undefined;
    if (!layer || n.input?.[4] !== layer.var) { nodes.push(n); continue; }
    const X = n.input[0]!;
    const dt = dtypeOf(layer.mean);
    const em = new Emitter(fresh, `bn_train/${n.name || X}`);
    const reduceMean = (t: string) => (opset >= 18
      ? em.op('ReduceMean', [t, em.ints([0, 2])], [intAttr('keepdims', 1)])
      : em.op('ReduceMean', [t], [intsAttr('axes', [0, 2]), intAttr('keepdims', 1)]));
    const x3 = em.op('Reshape', [X, em.ints([0, 0, -1])]);
    const meanK = reduceMean(x3);
    const centered = em.op('Sub', [x3, meanK]);
    const varK = reduceMean(em.op('Mul', [centered, centered]));
    const flat = em.ints([-1]);
    const mean = em.op('Reshape', [meanK, flat], [], 'batch_mean');
    const variance = em.op('Reshape', [varK, flat], [], 'batch_var');
    // n / (n - 1) with n = elements per channel, known only at run time when the batch is symbolic
    const n1 = em.op('Cast', [em.op('Div', [em.op('Size', [X]), em.op('Size', [mean])])], [intAttr('to', dt)]);
    const unbiased = em.op('Div', [n1, em.op('Sub', [n1, em.scalar(1, dt)])]);
    const momentum = attrFloat(n, 'momentum', 0.9);
    const blend = (running: string, batch: string) =>
      em.op('Add', [em.op('Mul', [running, em.scalar(momentum, dt)]), em.op('Mul', [batch, em.scalar(1 - momentum, dt)])], [], `${running}/updated`);
    const newMean = blend(layer.mean, mean);
    const newVar = blend(layer.var, em.op('Mul', [variance, unbiased]));
    nodes.push(...em.nodes);
    graph.initializer!.push(...em.initializers);
    nodes.push({ ...n, input: [X, n.input[1]!, n.input[2]!, mean, variance] });
    for (const [name, updated] of [[layer.mean, newMean], [layer.var, newVar]] as const) {
      slots.push({ name, updated, dims: dimsOf.get(name) ?? [], dataType: dt });
    }
  }
  graph.node = nodes;
  return slots;
}

/** Element type of a float initializer-like value info (float when undeclared). */
export function declaredType(graph: GraphProto): (name: string) => number {
  const types = new Map((graph.input ?? []).map((v) => [v.name, v.type?.tensorType?.elemType ?? DataType.FLOAT]));
  return (name) => types.get(name) ?? DataType.FLOAT;
}
