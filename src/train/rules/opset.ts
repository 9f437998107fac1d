/**
 * Which opset the training graph should declare. Some gradients need newer ops than old models import
 * (ScatterElements/ScatterND with reduction='add' arrived in opset 16: MaxPool, Gather). Raising the
 * declared opset is safe exactly when no forward node changes meaning between the two versions, i.e.
 * none of the graph's ops had a breaking schema change (attribute -> input, new semantics) in between.
 */
import { isDefaultDomain } from '../../onnx/attrs.js';
import type { GraphProto, NodeProto } from '../../onnx/types.js';
import { subgraphsOf } from '../../onnx/walk.js';

/** The opset the rules are written for first: everything has a rule there. */
const TARGET_OPSET = 17;

/**
 * Op -> versions at which its schema changed in a way an older node would not survive (inputs/attributes
 * moved or semantics changed). Ops not listed kept their meaning from their first version up to 17.
 */
const BREAKS: Record<string, number[]> = {
  // attributes that became inputs, or were renamed/removed
  Reshape: [5], Clip: [6, 11], Pad: [2, 11], Slice: [10], Split: [2, 13], Squeeze: [13], Unsqueeze: [13], ReduceSum: [13],
  TopK: [10], Tile: [6], Cast: [6], Concat: [4], Dropout: [7, 10, 12], Upsample: [7, 9, 10], Resize: [11, 13], Scatter: [11],
  // the legacy `broadcast`/`axis` attributes (removed at 7) and `consumed_inputs` (removed at 6)
  Add: [6, 7], Sub: [6, 7], Mul: [6, 7], Div: [6, 7], Pow: [7], Gemm: [6, 7], PRelu: [6, 7], And: [7], Or: [7],
  Equal: [7], Less: [7], Greater: [7], Sum: [6], Max: [6], Min: [6], Mean: [6], BatchNormalization: [6, 7, 9],
  InstanceNormalization: [6], Relu: [6], LeakyRelu: [6], Sigmoid: [6], Tanh: [6], Abs: [6], Neg: [6], Exp: [6], Log: [6],
  Sqrt: [6], Reciprocal: [6], Elu: [6], Selu: [6], HardSigmoid: [6], Floor: [6], Ceil: [6],
  // kept their meaning (changes were new optional attributes/inputs, or more types) up to 17
  Conv: [], ConvTranspose: [], MatMul: [], MaxPool: [], AveragePool: [], GlobalAveragePool: [], GlobalMaxPool: [], LRN: [],
  Flatten: [], Transpose: [], Gather: [], GatherElements: [], GatherND: [], ScatterND: [], ScatterElements: [], Shape: [],
  Size: [], Identity: [], Constant: [], ConstantOfShape: [], Expand: [], Where: [], Not: [], NonZero: [], Range: [],
  CastLike: [], Sign: [], Erf: [], Softplus: [], Softsign: [], ThresholdedRelu: [], Round: [], ArgMax: [], ArgMin: [],
  ReduceMean: [], ReduceMax: [], ReduceMin: [], ReduceProd: [], ReduceL1: [], ReduceL2: [], ReduceLogSumExp: [],
  ReduceSumSquare: [], ReduceLogSum: [], OneHot: [], CumSum: [], Einsum: [], Mod: [], LpNormalization: [],
  MeanVarianceNormalization: [],
  // Softmax, LogSoftmax, Hardmax before 13 flatten from `axis` on (handled in keepsMeaning); control flow is
  // left out on purpose: not bumped
};

/**
 * `opset` raised to TARGET_OPSET when every default-domain node of the graph (subgraphs included) keeps its
 * meaning; otherwise `opset` unchanged (rules that need more then say so). Never lowers an opset.
 */
export function trainingOpset(graph: GraphProto, opset: number): number {
  if (opset >= TARGET_OPSET) return opset;
  return nodesOf(graph).every((n) => keepsMeaning(n, opset)) ? TARGET_OPSET : opset;
}

function keepsMeaning(n: NodeProto, from: number): boolean {
  if (!isDefaultDomain(n.domain)) return true;
  const op = n.opType ?? '';
  // Softmax-family before 13 flattens from `axis` on; the same as 13's per-axis op only when axis is last
  if (op === 'Softmax' || op === 'LogSoftmax' || op === 'Hardmax') return from >= 13;
  const breaks = BREAKS[op];
  if (!breaks) return false; // unknown to this table: don't guess
  return breaks.every((v) => v <= from || v > TARGET_OPSET);
}

function nodesOf(g: GraphProto): NodeProto[] {
  const out: NodeProto[] = [];
  for (const n of g.node ?? []) {
    out.push(n);
    for (const s of subgraphsOf(n)) out.push(...nodesOf(s.graph));
  }
  return out;
}
