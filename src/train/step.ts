/**
 * The training-step model: forward + loss + backward + optimizer update in one ONNX graph of standard
 * ai.onnx ops, so every execution provider runs it.
 *
 *   inputs   x (the batch), labels, every trainable parameter, every optimizer state tensor,
 *            train.step (float scalar, 1-based), train.lr (float scalar)
 *   outputs  train.loss (scalar), the model's output (logits, for metrics), each parameter's updated
 *            value, each state tensor's updated value
 *
 * With `batchNorm: 'train'`, the running statistics of the layers trained with batch statistics are inputs
 * too, and their updates outputs (src/train/batchnorm.ts): carried from step to step, not optimized.
 *
 * Parameter inputs keep the initializer names, so the feeds are the model's own names. The same
 * builder without an optimizer gives the gradient model (outputs: loss, logits, one gradient per
 * parameter), which is how gradients are inspected and tested.
 */
import { Builder } from '../onnx/builder.js';
import { DataType } from '../onnx/dtype.js';
import { encodeModel } from '../onnx/schema.js';
import { int, type ModelProto, type TypeProto, type ValueInfo } from '../onnx/types.js';
import { UserError } from '../errors.js';
import { backward, type GradOptions } from './backward.js';
import { batchNormLayers, trainBatchNorm, type BatchNormChoice, type BatchNormMode, type RunningSlot } from './batchnorm.js';
import { prepareForward, valueInfoOf, type ForwardGraph, type ForwardOptions } from './forward.js';
import { fuseAlrelu, recomputeAlrelu } from './fuse.js';
import { blockedConvs } from './nchwc.js';

export { buildEvalModel } from './forward.js';
import { addLoss, type LossInfo } from './loss.js';
import { unrollRecurrent } from './recurrent.js';
import { checkOptimizer, emitUpdates, stateSlots, type OptimizerConfig } from './optim.js';

export const STEP_INPUT = 'train.step';
export const LR_INPUT = 'train.lr';
const LABELS_INPUT = 'train.labels';
export const LOSS_OUTPUT = 'train.loss';

export interface StepOptions extends ForwardOptions {
  task: 'classification' | 'regression';
  /** undefined: the gradient model (no update) */
  optimizer?: OptimizerConfig;
  /** rank of the trained output when known (outputs of other ranks are flattened for classification) */
  outputRank?: number;
  /** BatchNormalization with batch statistics and running updates ('train'), or as exported ('frozen', default) */
  batchNorm?: BatchNormMode;
  /**
   * Where the optimizer's update runs: in the graph ('graph', default: parameters and state in, updated ones
   * out) or on the host ('host': the graph computes gradients, StepRunner updates its own arrays in place)
   */
  optimizerOn?: 'graph' | 'host';
  /** onnxruntime CPU's NCHWc block size (nchwc.ts): the step's larger computed-weight convs run on those kernels; cpu only */
  nchwcBlock?: number;
  /**
   * onnxruntime's CPU kernels run the step (cpu, wasm, browser-wasm): MaxPool's gradient scatters at MaxPool's
   * Indices where the opset has ScatterElements-add (16+), instead of the window layout every EP runs. ResNet-18's
   * stem MaxPool at batch 8, two threads: 45 ms a step against 128, and a step peak about 130 MB lower (no 9-fold
   * window copies of a 112x112x64 activation)
   */
  cpuKernels?: boolean;
}

export interface ParamSlot {
  name: string;
  /** output carrying the updated value (training step) */
  updated: string;
  /** output carrying the gradient (gradient model) */
  grad: string;
  dims: number[];
  dataType: number;
}

export interface StateSlot {
  /** input name */
  name: string;
  updated: string;
  param: string;
  slot: string;
  dims: number[];
  dataType: number;
}

/** The training-step (or gradient) model, with what the forward it was built from says about the model. */
export interface TrainingModel extends Pick<ForwardGraph, 'opset' | 'sourceOpset' | 'rewritten' | 'promoted' | 'originalBatch' | 'relaxedBatch' | 'initial'> {
  model: ModelProto;
  kind: 'step' | 'gradients';
  input: string;
  labels: string;
  output: string;
  params: ParamSlot[];
  state: StateSlot[];
  /** running statistics carried from step to step (batchNorm 'train'); their start values are in `initial` */
  running: RunningSlot[];
  /** which BatchNormalization layers train with batch statistics (batchNorm 'train'), else undefined */
  batchNorm?: BatchNormChoice;
  loss: LossInfo;
  /** parameters the loss does not depend on (left as initializers, not trained) */
  noGrad: string[];
  /** the optimizer StepRunner applies on the host (optimizerOn 'host'); absent when the graph updates */
  hostOptimizer?: Required<OptimizerConfig>;
  /** Convs moved onto onnxruntime CPU's blocked-layout kernels (nchwcBlock) */
  blockedConvs: number;
  bytes(): Uint8Array;
}

/** Targets shaped like the output, with a symbolic batch (sessions check feeds against declared shapes). */
function regressionTargetType(out: ValueInfo | undefined): TypeProto {
  const tt = out?.type?.tensorType;
  const dims = tt?.shape?.dim;
  if (!dims) throw new UserError(String(out?.name), "regression needs the output's rank to be declared");
  return { tensorType: { elemType: tt?.elemType ?? DataType.FLOAT, shape: { dim: dims.map((d, i) => (i === 0 ? { dimParam: 'batch' } : { ...d })) } } };
}

/** The labels input, and the loss of the forward's output against it. */
function appendLoss(fwd: ForwardGraph, opts: StepOptions): { loss: LossInfo; outInfo: ValueInfo | undefined } {
  const { graph, fresh } = fwd;
  const outInfo = (graph.output ?? []).find((o) => o.name === fwd.output);
  const outShape = outInfo?.type?.tensorType?.shape?.dim;
  const outRank = opts.outputRank ?? outShape?.length;
  const outDims =
    outShape && outShape.length === outRank
      ? outShape.map((d) => (d.dimValue !== undefined && d.dimValue !== null ? int(d.dimValue) : (d.dimParam ?? null)))
      : undefined;

  // Labels: int64 [batch, 1] class indices, or targets shaped like the output.
  const labelsInfo: ValueInfo =
    opts.task === 'classification'
      ? { name: LABELS_INPUT, type: { tensorType: { elemType: DataType.INT64, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 1 }] } } } }
      : { name: LABELS_INPUT, type: regressionTargetType(outInfo) };
  graph.input!.push(labelsInfo);

  const em = new Builder(fresh, { opset: fwd.opset, prefix: 'loss' });
  const loss = addLoss(graph, em, {
    output: fwd.output,
    labels: LABELS_INPUT,
    task: opts.task,
    rank: outRank,
    dims: outDims,
    opset: fwd.opset,
    dataType: outInfo?.type?.tensorType?.elemType,
  });
  graph.node!.push(...em.nodes);
  graph.initializer!.push(...em.initializers);
  return { loss, outInfo };
}

/** The gradient of `loss` for each of `wrt`; parameters the loss does not depend on go back to being initializers (nothing to feed or update). */
function appendGradients(fwd: ForwardGraph, wrt: string[], loss: string, grad: GradOptions): { params: ParamSlot[]; noGrad: string[] } {
  const { graph, fresh } = fwd;
  // backward() reads the loss nodes from the graph; the loss is renamed to its public name at the end.
  const back = backward(graph, { wrt, loss, opset: fwd.opset, fresh, ...grad });
  graph.node!.push(...back.nodes);
  graph.initializer!.push(...back.initializers);
  const noGrad = new Set(back.noGrad);
  if (noGrad.size) {
    graph.input = graph.input!.filter((i) => !noGrad.has(i.name!));
    for (const p of noGrad) graph.initializer!.push(fwd.initial.get(p)!);
  }
  const params = wrt
    .filter((p) => !noGrad.has(p))
    .map((p) => {
      const t = fwd.initial.get(p)!;
      return { name: p, updated: '', grad: back.grads.get(p)!, dims: (t.dims ?? []).map(int), dataType: t.dataType ?? DataType.FLOAT };
    });
  return { params, noGrad: back.noGrad };
}

/**
 * The optimizer step: step and learning-rate inputs, one state input per slot and parameter, and the
 * update nodes, whose new parameters and state become outputs (in the order of `params`).
 */
function appendOptimizer(fwd: ForwardGraph, cfg: ReturnType<typeof checkOptimizer>, params: ParamSlot[], outputs: ValueInfo[]): StateSlot[] {
  const { graph, fresh } = fwd;
  graph.input!.push(scalarInput(STEP_INPUT), scalarInput(LR_INPUT));
  const state = stateOf(fwd, cfg, params);
  for (const s of state) graph.input!.push(valueInfoOf({ name: s.name, dims: s.dims, dataType: s.dataType }));
  const items = params.map((p) => ({ param: p.name, grad: p.grad, state: state.filter((s) => s.param === p.name).map((s) => s.name), dataType: p.dataType }));
  const opt = new Builder(fresh, { opset: fwd.opset, prefix: `optim.${cfg.name}` });
  const updates = emitUpdates(opt, cfg, LR_INPUT, STEP_INPUT, items);
  graph.node!.push(...opt.nodes);
  graph.initializer!.push(...opt.initializers);
  let k = 0;
  updates.forEach((u, i) => {
    const p = params[i]!;
    p.updated = u.param;
    outputs.push(valueInfoOf({ name: u.param, dims: p.dims, dataType: p.dataType }));
    for (const s of u.state) {
      const slot = state[k++]!;
      slot.updated = s;
      outputs.push(valueInfoOf({ name: s, dims: slot.dims, dataType: slot.dataType }));
    }
  });
  return state;
}

/** The gradients model (no optimizer): each gradient an output. */
function appendGradientOutputs(fwd: ForwardGraph, params: ParamSlot[], outputs: ValueInfo[]): StateSlot[] {
  const { graph, fresh } = fwd;
  for (const p of params) {
    // A gradient may be an input or initializer name (e.g. an untouched zero): route it through Identity.
    const out = fresh(`grad/${p.name}`);
    graph.node!.push({ opType: 'Identity', input: [p.grad], output: [out], name: fresh(`grad/${p.name}/Identity`) });
    p.grad = out;
    outputs.push(valueInfoOf({ name: out, dims: p.dims, dataType: p.dataType }));
  }
  return [];
}

/** Each parameter's optimizer state slots, in stateSlots() order: graph inputs (appendOptimizer), or the host update's arrays. */
function stateOf(fwd: ForwardGraph, cfg: ReturnType<typeof checkOptimizer>, params: ParamSlot[]): StateSlot[] {
  return params.flatMap((p) =>
    stateSlots(cfg.name).map((slot) => ({ name: fwd.fresh(`optim.${slot}/${p.name}`), updated: '', param: p.name, slot, dims: p.dims, dataType: p.dataType })),
  );
}

const scalarInput = (name: string): ValueInfo => ({ name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [] } } } });

/** The gradient forms fastest on the EP that runs the step (all forms give the same gradients) */
function gradForms(opts: StepOptions, opset: number): GradOptions {
  return {
    // the blocked kernels run the depthwise weight gradients' correlations (nchwc.ts), given a static batch
    ...(opts.nchwcBlock ? { depthwiseWeight: 'correlation', channelBlock: opts.nchwcBlock } : {}),
    ...(opts.cpuKernels && opset >= 16 ? { maxPool: 'indices' } : {}),
  };
}

export function buildTrainingModel(source: ModelProto, opts: StepOptions): TrainingModel {
  const bn = opts.batchNorm === 'train' ? batchNormLayers(source.graph!, opts.params) : undefined;
  const stats = (bn?.train ?? []).flatMap((l) => [l.mean, l.var]);
  // the running statistics of layers trained with batch statistics become inputs, as parameters do
  const fwd = prepareForward(source, { ...opts, params: [...opts.params, ...stats] });
  const { graph, fresh } = fwd;
  const running = bn ? trainBatchNorm(graph, bn.train, fwd.opset, fresh, fwd.initial) : [];
  if (running.length !== stats.length)
    throw new Error(`BatchNormalization layers to train: ${stats.length / 2}, found ${running.length / 2} in the training graph`);
  // recurrent ops between a parameter and the loss become the standard ops they are made of
  unrollRecurrent(graph, fwd.opset, opts.params, fresh);
  const { loss, outInfo } = appendLoss(fwd, opts);
  const forward = new Set(graph.node);
  const { params, noGrad } = appendGradients(fwd, opts.params, loss.loss, gradForms(opts, fwd.opset));
  const outputs: ValueInfo[] = [
    { name: LOSS_OUTPUT, type: { tensorType: { elemType: outInfo?.type?.tensorType?.elemType ?? DataType.FLOAT, shape: { dim: [] } } } },
    ...(graph.output ?? []),
  ];
  graph.node!.push({ opType: 'Identity', input: [loss.loss], output: [LOSS_OUTPUT], name: fresh('train/loss') });
  const cfg = opts.optimizer ? checkOptimizer(opts.optimizer) : undefined;
  // (hostUpdate is float32's; other parameter types keep the update in the graph)
  const hostTypes = params.every((p) => p.dataType === DataType.FLOAT);
  const host = cfg && opts.optimizerOn === 'host' && hostTypes ? cfg : undefined;
  const state = cfg && !host ? appendOptimizer(fwd, cfg, params, outputs) : appendGradientOutputs(fwd, params, outputs);
  if (host) state.push(...stateOf(fwd, cfg!, params));
  for (const r of running) outputs.push(valueInfoOf({ name: r.updated, dims: r.dims, dataType: r.dataType }));
  graph.output = outputs;
  // after backward, whose ALReLU gradients read the pre-activation only
  fuseAlrelu(graph);
  // after the fusion, whose single LeakyRelu the copies must not be merged back into
  recomputeAlrelu(graph, forward);
  const blocked = opts.nchwcBlock ? blockedConvs(fwd.model, fwd.opset, opts.nchwcBlock) : 0;
  let cached: Uint8Array | undefined;
  return {
    model: fwd.model,
    kind: opts.optimizer ? 'step' : 'gradients',
    ...(host ? { hostOptimizer: host } : {}),
    input: fwd.input,
    labels: LABELS_INPUT,
    output: fwd.output,
    params,
    state,
    running,
    batchNorm: bn,
    loss,
    opset: fwd.opset,
    sourceOpset: fwd.sourceOpset,
    rewritten: fwd.rewritten,
    promoted: fwd.promoted,
    originalBatch: fwd.originalBatch,
    relaxedBatch: fwd.relaxedBatch,
    initial: fwd.initial,
    noGrad,
    blockedConvs: blocked,
    bytes: () => (cached ??= encodeModel(fwd.model)),
  };
}
