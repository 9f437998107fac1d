/**
 * Which opset the training graph should declare. Some gradients need newer ops than old models import
 * (ScatterElements/ScatterND with reduction='add' arrived in opset 16: MaxPool, Gather; Pad and Slice
 * with inputs, CumSum). The declared opset is raised to TARGET_OPSET when every forward node either
 * kept its meaning between the two versions (no breaking schema change in between) or has an upgrade
 * below: a rewrite into the target opset's form with the same outputs (attributes that became inputs,
 * old Softmax flattening spelled out, inference-mode Dropout without its ratio). Models exported at
 * opset 7-12 (the classic model-zoo CNNs among them) then train with every rule available.
 */
import { attr, attrFloat, attrInt, attrInts, intAttr, isDefaultDomain, stringAttr } from '../../onnx/attrs.js';
import { DataType } from '../../onnx/dtype.js';
import type { AttributeProto, GraphProto, NodeProto, TensorProto } from '../../onnx/types.js';
import { subgraphsOf } from '../../onnx/walk.js';
import { inferGraph, type StaticInfo } from '../../onnx/shapes.js';
import { makeTensor } from '../../onnx/tensor.js';

/** The opset the rules are written for first: everything has a rule there. */
export const TARGET_OPSET = 17;

/**
 * Op -> versions at which its schema changed in a way an older node would not survive (inputs/attributes
 * moved or semantics changed). Ops not listed kept their meaning from their first version up to 17.
 */
const BREAKS: Record<string, number[]> = {
  // attributes that became inputs, or were renamed/removed
  Reshape: [5],
  Clip: [6, 11],
  Pad: [2, 11],
  Slice: [10],
  Split: [2, 13],
  Squeeze: [13],
  Unsqueeze: [13],
  ReduceSum: [13],
  TopK: [10],
  Tile: [6],
  Cast: [6],
  Concat: [4],
  Dropout: [7, 10, 12],
  Upsample: [7, 9, 10],
  Resize: [11, 13],
  Scatter: [11],
  // the legacy `broadcast`/`axis` attributes (removed at 7) and `consumed_inputs` (removed at 6)
  Add: [6, 7],
  Sub: [6, 7],
  Mul: [6, 7],
  Div: [6, 7],
  Pow: [7],
  Gemm: [6, 7],
  PRelu: [6, 7],
  And: [7],
  Or: [7],
  Equal: [7],
  Less: [7],
  Greater: [7],
  Sum: [6],
  Max: [6],
  Min: [6],
  Mean: [6],
  BatchNormalization: [6, 7, 9],
  InstanceNormalization: [6],
  Relu: [6],
  LeakyRelu: [6],
  Sigmoid: [6],
  Tanh: [6],
  Abs: [6],
  Neg: [6],
  Exp: [6],
  Log: [6],
  Sqrt: [6],
  Reciprocal: [6],
  Elu: [6],
  Selu: [6],
  HardSigmoid: [6],
  Floor: [6],
  Ceil: [6],
  // kept their meaning (changes were new optional attributes/inputs, or more types) up to 17
  LSTM: [7],
  GRU: [7],
  RNN: [7],
  ReverseSequence: [],
  HardSwish: [],
  Celu: [],
  Conv: [],
  ConvTranspose: [],
  MatMul: [],
  MaxPool: [],
  AveragePool: [],
  GlobalAveragePool: [],
  GlobalMaxPool: [],
  LRN: [],
  Flatten: [],
  Transpose: [],
  Gather: [],
  GatherElements: [],
  GatherND: [],
  ScatterND: [],
  ScatterElements: [],
  Shape: [],
  Size: [],
  Identity: [],
  Constant: [],
  ConstantOfShape: [],
  Expand: [],
  Where: [],
  Not: [],
  NonZero: [],
  Range: [],
  CastLike: [],
  Sign: [],
  Erf: [],
  Softplus: [],
  Softsign: [],
  ThresholdedRelu: [],
  Round: [],
  ArgMax: [],
  ArgMin: [],
  ReduceMean: [],
  ReduceMax: [],
  ReduceMin: [],
  ReduceProd: [],
  ReduceL1: [],
  ReduceL2: [],
  ReduceLogSumExp: [],
  ReduceSumSquare: [],
  ReduceLogSum: [],
  OneHot: [],
  CumSum: [],
  Einsum: [],
  Mod: [],
  LpNormalization: [],
  MeanVarianceNormalization: [],
  // Softmax, LogSoftmax, Hardmax before 13 flatten from `axis` on (handled in keepsMeaning); control flow is
  // left out on purpose: not bumped
};

/**
 * The opset the training graph can declare: TARGET_OPSET when every default-domain node of `graph` keeps
 * its meaning there or has an upgrade (see raiseOpset), otherwise `opset` unchanged (rules that need more
 * then say so). Never lowers an opset. Does not change `graph`.
 */
export function trainingOpset(graph: GraphProto, opset: number): number {
  if (opset >= TARGET_OPSET) return opset;
  let k = 0;
  return planUpgrade(graph, opset, (b) => `${b}#${k++}`) ? TARGET_OPSET : opset;
}

/**
 * trainingOpset, and the upgrades applied to `graph` (nodes rewritten in place of the old ones, new
 * constants added as initializers named by `fresh`). Returns the opset to declare and how many of the
 * graph's nodes were rewritten.
 */
export function raiseOpset(graph: GraphProto, opset: number, fresh: (base: string) => string): { opset: number; rewritten: number } {
  if (opset >= TARGET_OPSET) return { opset, rewritten: 0 };
  const plan = planUpgrade(graph, opset, fresh);
  if (!plan) return { opset, rewritten: 0 };
  const before = new Set(graph.node ?? []);
  graph.node = plan.nodes;
  graph.initializer = [...(graph.initializer ?? []), ...plan.initializers];
  return { opset: TARGET_OPSET, rewritten: before.size - plan.nodes.filter((n) => before.has(n)).length };
}

function planUpgrade(graph: GraphProto, from: number, fresh: (base: string) => string): { nodes: NodeProto[]; initializers: TensorProto[] } | undefined {
  // nodes inside subgraphs must already keep their meaning (their bodies are not rewritten)
  for (const n of graph.node ?? []) for (const s of subgraphsOf(n)) if (!nodesOf(s.graph).every((m) => keepsMeaning(m, from))) return undefined;
  let info: StaticInfo | undefined;
  let used: Set<string> | undefined;
  const initializers: TensorProto[] = [];
  const b: UpgradeBuilder = {
    fresh,
    get info() {
      return (info ??= inferGraph(graph, from));
    },
    get used() {
      return (used ??= new Set([...nodesOf(graph).flatMap((n) => n.input ?? []), ...(graph.output ?? []).map((o) => o.name ?? '')]));
    },
    constant(dataType, dims, values, base) {
      const name = fresh(base);
      initializers.push(makeTensor(name, dataType, dims, values));
      return name;
    },
  };
  const nodes: NodeProto[] = [];
  for (const n of graph.node ?? []) {
    if (keepsMeaning(n, from)) {
      nodes.push(n);
      continue;
    }
    const up = UPGRADES[n.opType ?? '']?.(n, from, b);
    if (!up) return undefined;
    nodes.push(...up);
  }
  return { nodes, initializers };
}

function keepsMeaning(n: NodeProto, from: number): boolean {
  if (!isDefaultDomain(n.domain)) return true;
  const op = n.opType ?? '';
  // Softmax-family before 13 flattens from `axis` on (see the upgrade)
  if (op === 'Softmax' || op === 'LogSoftmax' || op === 'Hardmax') return from >= 13;
  const breaks = BREAKS[op];
  if (!breaks) return false; // unknown to this table: don't guess
  return breaks.every((v) => v <= from || v > TARGET_OPSET);
}

interface UpgradeBuilder {
  fresh(base: string): string;
  /** static shapes and types of the graph at its own opset, inferred on first use */
  readonly info: StaticInfo;
  /** names read by some node (subgraphs included) or listed as graph outputs */
  readonly used: Set<string>;
  constant(dataType: number, dims: number[], values: number[], base: string): string;
}

type Upgrade = (n: NodeProto, from: number, b: UpgradeBuilder) => NodeProto[] | undefined;

const FLT_MAX = 3.4028234663852886e38;
const without = (n: NodeProto, ...names: string[]): AttributeProto[] => (n.attribute ?? []).filter((a) => !names.includes(a.name ?? ''));
const ints = (b: UpgradeBuilder, n: NodeProto, values: number[], what: string) =>
  b.constant(DataType.INT64, [values.length], values, `${n.name || n.output![0]}/${what}`);
/** The node with `inputs` appended (trailing optional inputs left out when empty) and these attributes. */
function withInputs(n: NodeProto, inputs: string[], attrs: AttributeProto[]): NodeProto[] {
  const all = [...(n.input ?? []), ...inputs];
  while (all.length && !all[all.length - 1]) all.pop();
  return [{ ...n, input: all, attribute: attrs }];
}
/** An attribute that became an int64 input at `since`. */
const intsToInput =
  (name: string, since: number): Upgrade =>
  (n, from, b) => {
    if (from >= since) return [n];
    const v = attrInts(n, name);
    return withInputs(n, [v ? ints(b, n, v, name) : ''], without(n, name));
  };
/** Float attributes that became scalar inputs of the data's type (Pad's value, Clip's min and max). */
function floatInputs(n: NodeProto, b: UpgradeBuilder, names: string[], dflt: number[], keepDefault: boolean): string[] | undefined {
  const dt = b.info.types.get(n.input![0]!);
  const out: string[] = [];
  for (const [i, name] of names.entries()) {
    const a = attr(n, name);
    if (!a && !keepDefault) {
      out.push('');
      continue;
    }
    const v = attrFloat(n, name, dflt[i]!);
    if (dt !== DataType.FLOAT && dt !== DataType.DOUBLE && dt !== DataType.FLOAT16) return undefined;
    out.push(b.constant(dt, [], [v], `${n.name || n.output![0]}/${name}`));
  }
  return out;
}

/** Node rewrites from an older opset into TARGET_OPSET's form, by op (only where the schema broke). */
const UPGRADES: Record<string, Upgrade> = {
  Unsqueeze: intsToInput('axes', 13),
  Squeeze: intsToInput('axes', 13),
  ReduceSum: intsToInput('axes', 13),
  Split: (n, from, b) => (from < 2 ? undefined : intsToInput('split', 13)(n, from, b)),
  Reshape: (n, from, b) => (from >= 5 ? [n] : withInputs(n, [ints(b, n, attrInts(n, 'shape') ?? [], 'shape')], without(n, 'shape'))),
  TopK: (n, from, b) => (from >= 10 ? [n] : withInputs(n, [ints(b, n, [attrInt(n, 'k', 1)], 'k')], without(n, 'k'))),
  Slice: (n, from, b) => {
    if (from >= 10) return [n];
    const starts = attrInts(n, 'starts') ?? [];
    const axes = attrInts(n, 'axes');
    return withInputs(n, [ints(b, n, starts, 'starts'), ints(b, n, attrInts(n, 'ends') ?? [], 'ends'), axes ? ints(b, n, axes, 'axes') : ''], []);
  },
  Pad: (n, from, b) => {
    if (from < 2) return undefined;
    const mode = attr(n, 'mode');
    const value = attrFloat(n, 'value', 0);
    const cv = value === 0 ? [''] : floatInputs(n, b, ['value'], [0], true);
    if (!cv) return undefined;
    return withInputs(n, [ints(b, n, attrInts(n, 'pads') ?? [], 'pads'), ...cv], mode ? [mode] : []);
  },
  Clip: (n, from, b) => {
    if (from < 6) return undefined;
    const mm = floatInputs(n, b, ['min', 'max'], [-FLT_MAX, FLT_MAX], false);
    return mm && withInputs(n, mm, []);
  },
  // inference mode (as the training graph runs it): from 12 on Dropout without ratio or training_mode
  // is the identity, as it was in test mode before; a mask output nothing reads is dropped (it was
  // float before 10, bool after), one that is read has no equivalent
  Dropout: (n, from, b) => {
    const mask = n.output?.[1] ?? '';
    if (from < 7 || (mask && b.used.has(mask))) return undefined;
    return [{ ...n, output: [n.output![0]!], attribute: without(n, 'ratio', 'seed') }];
  },
  // BatchNormalization 7-8: `spatial` = 1 (the default) is what 9 on always does
  BatchNormalization: (n, from) => (from < 7 || attrInt(n, 'spatial', 1) !== 1 ? undefined : [{ ...n, attribute: without(n, 'spatial') }]),
  // Upsample (7-9) and Resize-10 scale with the asymmetric transform, nearest taking the floor: Resize-11's
  // explicit form of the same (empty roi, scales as the third input)
  Upsample: (n, from, b) => (from < 7 ? undefined : resizeFromScales(n, b, from < 9 ? attr(n, 'scales')?.floats : undefined, true)),
  Resize: (n, from, b) => (from >= 11 ? [n] : resizeFromScales(n, b, undefined, false)),
  Softmax: softmaxUpgrade,
  LogSoftmax: softmaxUpgrade,
  Hardmax: softmaxUpgrade,
};

/**
 * Upsample/Resize-10 as Resize-11. Their nearest rounding ("simple") truncates when upsampling and takes
 * the ceiling when downsampling, per axis; Resize-11 has one rounding for all axes, so scales must be
 * known and all on one side of 1 (Upsample's always are: it only enlarges).
 */
function resizeFromScales(n: NodeProto, b: UpgradeBuilder, scalesAttr: number[] | undefined, upOnly: boolean): NodeProto[] | undefined {
  const mode = attr(n, 'mode')?.s ? Buffer.from(attr(n, 'mode')!.s!).toString() : 'nearest';
  const known = scalesAttr ?? b.info.consts.get(n.input![1]!);
  const scales = scalesAttr ? b.constant(DataType.FLOAT, [scalesAttr.length], scalesAttr, `${n.name || n.output![0]}/scales`) : n.input![1]!;
  const attrs = [stringAttr('mode', mode), stringAttr('coordinate_transformation_mode', 'asymmetric')];
  if (mode === 'nearest') {
    const changed = (known ?? []).filter((v) => v !== 1);
    const down = changed.length > 0 && changed.every((v) => v < 1);
    if (!upOnly && (!known || (!down && changed.some((v) => v < 1)))) return undefined;
    attrs.push(stringAttr('nearest_mode', down ? 'ceil' : 'floor'));
  }
  return [{ ...n, opType: 'Resize', input: [n.input![0]!, '', scales], attribute: attrs }];
}

/**
 * Before 13 the Softmax family coerces its input to 2-D at `axis` (default 1) and normalizes each row;
 * from 13 it normalizes along `axis` (default -1). The same where every axis after `axis` has size 1;
 * otherwise Flatten(axis), the op along axis 1, and a Reshape back spell out the old meaning.
 */
function softmaxUpgrade(n: NodeProto, from: number, b: UpgradeBuilder): NodeProto[] {
  if (from >= 13) return [n];
  const x = n.input![0]!;
  const dims = b.info.shapes.get(x);
  const axis = attrInt(n, 'axis', 1);
  const attrs = without(n, 'axis');
  // the same where every axis after `axis` has size 1 (the last axis, or [N, C, 1, 1] classifier heads)
  const at = dims && axis < 0 ? axis + dims.length : axis;
  if (dims?.slice(at + 1).every((d) => d === 1)) return [{ ...n, attribute: [...attrs, intAttr('axis', at === dims.length - 1 ? -1 : at)] }];
  const base = n.name || n.output![0]!;
  const flat = b.fresh(`${base}/flat`);
  const rows = b.fresh(`${base}/rows`);
  const shape = b.fresh(`${base}/shape`);
  return [
    { name: b.fresh(`${base}/Flatten`), opType: 'Flatten', input: [x], output: [flat], attribute: [intAttr('axis', axis)] },
    { ...n, input: [flat], output: [rows], attribute: [...attrs, intAttr('axis', 1)] },
    { name: b.fresh(`${base}/Shape`), opType: 'Shape', input: [x], output: [shape] },
    { name: b.fresh(`${base}/Reshape`), opType: 'Reshape', input: [rows, shape], output: [n.output![0]!] },
  ];
}

function nodesOf(g: GraphProto): NodeProto[] {
  const out: NodeProto[] = [];
  for (const n of g.node ?? []) {
    out.push(n);
    for (const s of subgraphsOf(n)) out.push(...nodesOf(s.graph));
  }
  return out;
}
