/**
 * The one shape and type inference engine: element types, shapes (dims fixed, symbolic or unknown) and
 * the values of small constant tensors (shape arithmetic as exporters emit it around Reshape and Slice).
 *
 * `OPS` maps each op to a short rule `(node, inputs, opset) -> outputs`. Policy:
 * - Inference is advisory. An op with no rule (another domain, a newer op) gives unknown outputs; a rule
 *   gives unknown for whatever its inputs or attributes leave open, malformed nodes included (an axis out
 *   of range, a perm that is no permutation, a missing input). Refusing invalid models is the job of
 *   ./validate.ts and onnxruntime, not of inference.
 * - Nothing is caught: a rule that throws has a bug, and the exception propagates to the caller.
 * - What the model declares (initializers, inputs, value_info, outputs) wins over what is inferred.
 */
import { DataType } from './dtype.js';
import { attr, attrInt, attrInts, attrString, isDefaultDomain } from './attrs.js';
import { elementCount, tensorValues } from './tensor.js';
import { tensorDataProblem } from './tensorsize.js';
import type { Scope } from './walk.js';
import { int, type AttributeProto, type Dimension, type GraphProto, type NodeProto, type TensorProto, type TypeProto, type ValueInfo } from './types.js';

/** A dimension: a number when fixed, a string when symbolic, null when unknown. */
export type Dim = number | string | null;
export type Shape = Dim[];

/** What is known about one value; every field optional. */
export interface Facts {
  elemType?: number;
  /** undefined: not even the rank is known */
  shape?: Shape;
  /** the values of a small numeric constant, flattened */
  value?: number[];
  /**
   * The values of a 1-D int64 shape tensor that is not constant but computed from Shape: the dims of some
   * value, symbolic ones included, so that Reshape(x, Shape(v)) is known to be shaped like v.
   */
  dims?: Shape;
}

/** What is known about every value of a scope (and the scopes around it), by name. */
export interface StaticInfo {
  shapes: Map<string, Shape>;
  /** values of small constant tensors (initializers, Constant nodes, and simple shape arithmetic) */
  consts: Map<string, number[]>;
  /** element types */
  types: Map<string, number>;
  /** symbolic values of shape tensors (Facts.dims) */
  dims: Map<string, Shape>;
}

/** One input of a node as a rule sees it: `name` is '' for an absent optional input. */
export interface Input extends Facts {
  name: string;
}

/** A rule: what an op's outputs are, as far as its inputs and attributes say (one entry per output). */
export type Rule = (n: NodeProto, x: Input[], opset: number) => (Facts | undefined)[];

/** The declared element type and shape of a value_info's tensor type. */
export function valueTypeOf(t: TypeProto | undefined): { elemType: number; shape?: Shape } | undefined {
  const tt = t?.tensorType;
  if (!tt) return undefined;
  const shape = tt.shape ? (tt.shape.dim ?? []).map(dimOf) : undefined;
  return { elemType: tt.elemType ?? 0, shape };
}

const dimOf = (d: Dimension): Dim => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? int(d.dimValue) : null);

/** Element types whose values are read into `consts`; others stay unknown. */
const READ = new Set<number>([DataType.FLOAT, DataType.DOUBLE, DataType.INT64, DataType.INT32, DataType.INT8, DataType.UINT8, DataType.BOOL]);
/** Constants larger than this many elements are not read (shape tensors are short). */
const CONST_LIMIT = 4096;

/** Values of a small numeric tensor held in the model (not external data); undefined otherwise, or when its data and dims disagree. */
export function constValues(t: TensorProto | undefined, limit = 1 << 16): number[] | undefined {
  if (!t || !READ.has(t.dataType ?? 0) || tensorDataProblem(t)) return undefined;
  return tensorValues(t, limit);
}

/** The facts a tensor held in the model carries: its type, dims and (when small) values. */
export function tensorFacts(t: TensorProto): Facts {
  return { elemType: t.dataType ?? DataType.UNDEFINED, shape: (t.dims ?? []).map(int), value: constValues(t, CONST_LIMIT) };
}

// ---- small helpers the rules share ----

const isNum = (d: Dim | undefined): d is number => typeof d === 'number';
const allNum = (s: Shape): s is number[] => s.every(isNum);
/** An axis in [-rank, rank) as an index, or undefined when out of range. */
function axisOf(a: number, rank: number): number | undefined {
  const v = a < 0 ? a + rank : a;
  return Number.isInteger(v) && v >= 0 && v < rank ? v : undefined;
}
/** Several axes, or undefined when one is out of range or repeated. */
function axesOf(axes: number[], rank: number): number[] | undefined {
  const out = axes.map((a) => axisOf(a, rank));
  if (out.some((a) => a === undefined) || new Set(out).size !== out.length) return undefined;
  return out as number[];
}
const product = (d: Shape): Dim => (d.length === 1 ? d[0]! : d.reduce<Dim>((a, b) => (isNum(a) && isNum(b) ? a * b : null), 1));
/** A shape tensor's values: constant, or the symbolic dims it was computed from. */
const dimsIn = (x: Facts): Shape | undefined => x.value ?? x.dims;
/** Output facts of a shape tensor whose values are `d`: constant when every one is a number. */
const shapeTensor = (f: Facts, d: Shape | undefined): Facts => (d && allNum(d) ? { ...f, value: d } : { ...f, dims: d });
const same = (x: Facts): Facts => ({ elemType: x.elemType, shape: x.shape });
/** Input x's shape with another element type (undefined: unknown). */
const shaped = (x: Facts, elemType: number | undefined): Facts => ({ elemType, shape: x.shape });
/** An int64 input's values when constant, else the attribute (ops whose attribute became an input at `since`). */
const inputOrAttr = (n: NodeProto, x: Input, name: string, opset: number, since: number): number[] | undefined =>
  opset >= since ? x.value : attrInts(n, name);

/** Numpy broadcasting. In a valid model an unknown dim is 1 or equal to the others, so a known one wins. */
export function broadcastShapes(shapes: Shape[]): Shape {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    let clash = false; // two different symbolic dims: unknown for good
    let bad = false; // two different fixed dims, neither 1: an invalid model
    for (const s of shapes) {
      const x = s[i - rank + s.length];
      if (x === undefined || x === 1 || (x === null && d !== 1)) continue;
      if (d === 1 || d === null) d = clash && typeof x !== 'number' ? null : x;
      else if (typeof x === 'number' && typeof d === 'number' && x !== d) bad = true;
      else if (x !== d && typeof d !== 'number') {
        if (typeof x === 'number') d = x;
        else {
          d = null;
          clash = true;
        }
      }
    }
    out.push(bad ? null : d);
  }
  return out;
}

function broadcastOf(x: Input[]): Shape | undefined {
  const given = x.filter((i) => i.name);
  return given.length && given.every((i) => i.shape) ? broadcastShapes(given.map((i) => i.shape!)) : undefined;
}

// ---- rule makers for families of ops ----

/** Output 0 has input 0's type and shape (element-wise and shape-keeping ops). */
const unary: Rule = (_n, x) => [same(x[0]!)];
/** Output 0 has input 0's shape and a fixed type. */
const unaryTo =
  (elemType: number): Rule =>
  (_n, x) => [shaped(x[0]!, elemType)];

/** Numpy-broadcasting ops; int64 Add/Sub/Mul/Div on constants are folded (shape arithmetic). */
const broadcast =
  (typeFrom: number | 'bool'): Rule =>
  (n, x) => {
    const elemType = typeFrom === 'bool' ? DataType.BOOL : x[typeFrom]!.elemType;
    const out: Facts = { elemType, shape: broadcastOf(x) };
    const op = n.opType ?? '';
    const [a, b] = [x[0]!.value, x[1]!.value];
    if (elemType === DataType.INT64 && a && b && a.length && b.length && (n.input ?? []).length === 2 && FOLD[op]) {
      const len = Math.max(a.length, b.length);
      if ((a.length === 1 || a.length === len) && (b.length === 1 || b.length === len)) {
        out.value = Array.from({ length: len }, (_, i) => FOLD[op]!(a[a.length === 1 ? 0 : i]!, b[b.length === 1 ? 0 : i]!));
        if (out.value.some((v) => !Number.isFinite(v))) delete out.value;
      }
    }
    return [out];
  };
const FOLD: Record<string, (a: number, b: number) => number> = {
  Add: (a, b) => a + b,
  Sub: (a, b) => a - b,
  Mul: (a, b) => a * b,
  Div: (a, b) => Math.trunc(a / b),
};

/** Conv, ConvTranspose and the windowed pools: [N, C, spatial...]. */
const windowed: Rule = (n, x) => {
  const op = n.opType ?? '';
  const s0 = x[0]!.shape;
  const w = x[1]!.shape;
  const elemType = x[0]!.elemType;
  const unknownShape = op === 'MaxPool' ? [{ elemType }, { elemType: DataType.INT64 }] : [{ elemType }];
  if (!s0 || s0.length < 3) return unknownShape;
  const nsp = s0.length - 2;
  const k = attrInts(n, 'kernel_shape') ?? (w && w.length === nsp + 2 ? w.slice(2) : undefined);
  const st = attrInts(n, 'strides') ?? Array<number>(nsp).fill(1);
  const dl = attrInts(n, 'dilations') ?? Array<number>(nsp).fill(1);
  const pads = attrInts(n, 'pads') ?? Array<number>(2 * nsp).fill(0);
  if (!k || !allNum(k) || k.length !== nsp || st.length !== nsp || dl.length !== nsp || pads.length !== 2 * nsp) return unknownShape;
  if ([...k, ...st, ...dl].some((v) => v < 1)) return unknownShape;
  const autoPad = attrString(n, 'auto_pad', 'NOTSET');
  const samePad = autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER';
  const ceil = attrInt(n, 'ceil_mode', 0);
  let c: Dim = s0[1]!;
  if (op === 'Conv') c = w ? (w[0] ?? null) : null;
  if (op === 'ConvTranspose') c = w && isNum(w[1]) ? w[1] * attrInt(n, 'group', 1) : null;
  const outShape = attrInts(n, 'output_shape');
  const sp: Dim[] = [];
  for (let i = 0; i < nsp; i++) {
    const d = s0[i + 2];
    const ke = (k[i]! - 1) * dl[i]! + 1;
    const p = autoPad === 'VALID' ? 0 : pads[i]! + pads[i + nsp]!;
    if (op === 'ConvTranspose' && outShape && (outShape.length === nsp || outShape.length === nsp + 2)) sp.push(outShape[outShape.length - nsp + i]!);
    else if (!isNum(d)) sp.push(null);
    else if (op === 'ConvTranspose') {
      const opad = attrInts(n, 'output_padding')?.[i] ?? 0;
      sp.push(samePad ? d * st[i]! : st[i]! * (d - 1) + opad + ke - p);
    } else if (samePad) sp.push(Math.ceil(d / st[i]!));
    else {
      const num = d + p - ke;
      let o = (ceil ? Math.ceil(num / st[i]!) : Math.floor(num / st[i]!)) + 1;
      // ceil mode: the last window must start inside the input or its left padding
      if (ceil && (o - 1) * st[i]! >= d + pads[i]!) o--;
      sp.push(o);
    }
  }
  if (sp.some((d) => isNum(d) && d < 0)) return unknownShape;
  const shape = [s0[0]!, c, ...sp];
  return op === 'MaxPool'
    ? [
        { elemType, shape },
        { elemType: DataType.INT64, shape },
      ]
    : [{ elemType, shape }];
};

/** Reduce*: axes from the attribute, or from input 1 where the op takes them so (ReduceSum 13, the rest 18). */
const reduce: Rule = (n, x, opset) => {
  const op = n.opType ?? '';
  const s0 = x[0]!.shape;
  const elemType = x[0]!.elemType;
  const axesIn = (op === 'ReduceSum' && opset >= 13) || opset >= 18;
  const axes = axesIn ? x[1]!.value : attrInts(n, 'axes');
  if (!s0 || (axesIn && x[1]!.name && !axes)) return [{ elemType }];
  const keep = attrInt(n, 'keepdims', 1);
  if (!axes?.length && axesIn && attrInt(n, 'noop_with_empty_axes', 0)) return [same(x[0]!)];
  const ax = axes?.length ? axesOf(axes, s0.length) : s0.map((_, i) => i);
  if (!ax) return [{ elemType }];
  return [{ elemType, shape: keep ? s0.map((d, i) => (ax.includes(i) ? 1 : d)) : s0.filter((_, i) => !ax.includes(i)) }];
};

/** ArgMax/ArgMin: int64 indices along `axis`. */
const argReduce: Rule = (n, x) => {
  const s0 = x[0]!.shape;
  const ax = s0 ? axisOf(attrInt(n, 'axis', 0), s0.length) : undefined;
  if (!s0 || ax === undefined) return [{ elemType: DataType.INT64 }];
  const shape = attrInt(n, 'keepdims', 1) ? s0.map((d, i) => (i === ax ? 1 : d)) : s0.filter((_, i) => i !== ax);
  return [{ elemType: DataType.INT64, shape }];
};

const globalPool: Rule = (_n, x) => {
  const s0 = x[0]!.shape;
  return [{ elemType: x[0]!.elemType, shape: s0 && s0.length >= 2 ? [s0[0]!, s0[1]!, ...s0.slice(2).map(() => 1)] : undefined }];
};

/** LSTM, GRU, RNN: Y [seq, dirs, batch, hidden] and Y_h (and LSTM's Y_c) [dirs, batch, hidden]; layout 1 is batch-first. */
const recurrent: Rule = (n, x) => {
  const elemType = x[0]!.elemType;
  const s0 = x[0]!.shape;
  const h = attrInt(n, 'hidden_size', 0) || null;
  const dirs = attrString(n, 'direction', 'forward') === 'bidirectional' ? 2 : 1;
  const outs = n.opType === 'LSTM' ? 3 : 2;
  if (s0?.length !== 3) return Array.from({ length: outs }, () => ({ elemType }));
  const batchFirst = attrInt(n, 'layout', 0) === 1;
  const [seq, batch] = batchFirst ? [s0[1]!, s0[0]!] : [s0[0]!, s0[1]!];
  const y = batchFirst ? [batch, seq, dirs, h] : [seq, dirs, batch, h];
  const state = batchFirst ? [batch, dirs, h] : [dirs, batch, h];
  return [{ elemType, shape: y }, ...Array.from({ length: outs - 1 }, () => ({ elemType, shape: state }))];
};

/** If, Loop, Scan: element types from the body's declared outputs (shapes only where If's branches agree). */
const control: Rule = (n) => {
  const declared = (g: GraphProto | undefined) => (g?.output ?? []).map((o) => valueTypeOf(o.type));
  const op = n.opType ?? '';
  if (op === 'If') {
    const [a, b] = [declared(attr(n, 'then_branch')?.g), declared(attr(n, 'else_branch')?.g)];
    return (n.output ?? []).map((_, i) => {
      const t = a[i] ?? b[i];
      const agree = a[i]?.shape && b[i]?.shape && JSON.stringify(a[i].shape) === JSON.stringify(b[i].shape);
      return t && { elemType: t.elemType || undefined, shape: agree ? a[i]!.shape : undefined };
    });
  }
  // Loop body: (cond, carried...) -> (cond, carried..., scan outputs...); Scan body: (states...) -> (states..., scans...)
  const body = declared(attr(n, 'body')?.g);
  const from = op === 'Loop' ? 1 : 0;
  // Loop's carried values keep the body's declared shape; scan outputs stack along a new first axis
  const carried = op === 'Loop' ? (n.input ?? []).length - 2 : -1;
  return (n.output ?? []).map((_, i) => {
    const t = body[i + from];
    return t && { elemType: t.elemType || undefined, shape: i < carried ? t.shape : undefined };
  });
};

// ---- the table ----

const UNARY = [
  'Relu',
  'LeakyRelu',
  'Abs',
  'Sigmoid',
  'Tanh',
  'Clip',
  'Softmax',
  'LogSoftmax',
  'Hardmax',
  'Identity',
  'Neg',
  'Exp',
  'Log',
  'Sqrt',
  'Reciprocal',
  'Erf',
  'Elu',
  'Selu',
  'Softplus',
  'Softsign',
  'HardSigmoid',
  'HardSwish',
  'LRN',
  'InstanceNormalization',
  'Sign',
  'Floor',
  'Ceil',
  'Round',
  'Celu',
  'Mish',
  'Gelu',
  'PRelu',
  'Sin',
  'Cos',
  'Tan',
  'Asin',
  'Acos',
  'Atan',
  'Sinh',
  'Cosh',
  'Asinh',
  'Acosh',
  'Atanh',
  'ThresholdedRelu',
  'Not',
  'BitwiseNot',
  'Shrink',
  'ScatterElements',
  'ScatterND',
  'Scatter',
  'ReverseSequence',
  'CumSum',
  'Trilu',
  'LpNormalization',
  'MeanVarianceNormalization',
  'Swish',
  'GroupNormalization',
  'RMSNormalization',
];
const BROADCAST = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Mod', 'Max', 'Min', 'Sum', 'Mean', 'BitShift', 'BitwiseAnd', 'BitwiseOr', 'BitwiseXor'];
const COMPARE = ['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor'];
const REDUCE = [
  'ReduceSum',
  'ReduceMean',
  'ReduceMax',
  'ReduceMin',
  'ReduceProd',
  'ReduceL1',
  'ReduceL2',
  'ReduceLogSum',
  'ReduceLogSumExp',
  'ReduceSumSquare',
];

export const OPS: Readonly<Record<string, Rule>> = {
  ...Object.fromEntries(UNARY.map((op) => [op, unary])),
  ...Object.fromEntries(BROADCAST.map((op) => [op, broadcast(0)])),
  ...Object.fromEntries(COMPARE.map((op) => [op, broadcast('bool')])),
  ...Object.fromEntries(REDUCE.map((op) => [op, reduce])),
  ...Object.fromEntries(['Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'LpPool'].map((op) => [op, windowed])),
  ...Object.fromEntries(['GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool'].map((op) => [op, globalPool])),
  ...Object.fromEntries(['LSTM', 'GRU', 'RNN'].map((op) => [op, recurrent])),
  ...Object.fromEntries(['If', 'Loop', 'Scan'].map((op) => [op, control])),
  ArgMax: argReduce,
  ArgMin: argReduce,
  IsNaN: unaryTo(DataType.BOOL),
  IsInf: unaryTo(DataType.BOOL),
  Where: broadcast(1),
  Cast: (n, x) => [shaped(x[0]!, attr(n, 'to') ? attrInt(n, 'to', 0) : undefined)],
  CastLike: (_n, x) => [shaped(x[0]!, x[1]!.elemType)],
  Dropout: (_n, x, opset) => [same(x[0]!), shaped(x[0]!, opset >= 10 ? DataType.BOOL : x[0]!.elemType)],
  BatchNormalization: (_n, x) => [same(x[0]!), same(x[3]!), same(x[4]!)],
  LayerNormalization: (n, x) => {
    const s0 = x[0]!.shape;
    const ax = s0 ? axisOf(attrInt(n, 'axis', -1), s0.length) : undefined;
    const stats: Facts = { elemType: attrInt(n, 'stash_type', DataType.FLOAT), shape: s0 && ax !== undefined ? s0.map((d, i) => (i < ax ? d : 1)) : undefined };
    return [same(x[0]!), stats, stats];
  },

  Constant: (n) => {
    const a = (n.attribute ?? []).find((v) => v.name && Object.hasOwn(CONSTANT_ATTRS, v.name));
    return [a ? CONSTANT_ATTRS[a.name!]!(a) : undefined];
  },
  ConstantOfShape: (n, x) => {
    const elemType = attr(n, 'value')?.t?.dataType ?? DataType.FLOAT;
    const v = dimsIn(x[0]!);
    const len = x[0]!.shape?.[0];
    // the values when known, else at least the rank (the length of the shape input)
    if (v) return [{ elemType, shape: v }];
    return [{ elemType, shape: isNum(len) ? Array<Dim>(len).fill(null) : undefined }];
  },
  Shape: (n, x, opset) => {
    const s0 = x[0]!.shape;
    if (!s0) return [{ elemType: DataType.INT64, shape: [null] }];
    const r = s0.length;
    const bound = (v: number) => Math.max(0, Math.min(r, v < 0 ? v + r : v));
    const part = opset >= 15 ? s0.slice(bound(attrInt(n, 'start', 0)), bound(attrInt(n, 'end', r))) : s0;
    return [shapeTensor({ elemType: DataType.INT64, shape: [part.length] }, part)];
  },
  Size: () => [{ elemType: DataType.INT64, shape: [] }],
  NonZero: (_n, x) => [{ elemType: DataType.INT64, shape: x[0]!.shape ? [x[0]!.shape.length, null] : undefined }],

  Gemm: (n, x) => {
    const [a, b] = [x[0]!.shape, x[1]!.shape];
    const shape = a && b && a.length === 2 && b.length === 2 ? [attrInt(n, 'transA', 0) ? a[1]! : a[0]!, attrInt(n, 'transB', 0) ? b[0]! : b[1]!] : undefined;
    return [{ elemType: x[0]!.elemType, shape }];
  },
  MatMul: (_n, x) => [{ elemType: x[0]!.elemType, shape: matmulShape(x[0]!.shape, x[1]!.shape) }],
  MatMulInteger: (_n, x) => [{ elemType: DataType.INT32, shape: matmulShape(x[0]!.shape, x[1]!.shape) }],

  Flatten: (n, x) => {
    const s0 = x[0]!.shape;
    const r = s0?.length ?? 0;
    const a = attrInt(n, 'axis', 1);
    const ax = a < 0 ? a + r : a;
    if (!s0 || ax < 0 || ax > r) return [{ elemType: x[0]!.elemType }];
    return [{ elemType: x[0]!.elemType, shape: [product(s0.slice(0, ax)), product(s0.slice(ax))] }];
  },
  Reshape: (n, x, opset) => [
    { elemType: x[0]!.elemType, shape: reshapeShape(x[0]!.shape, opset >= 5 ? dimsIn(x[1]!) : attrInts(n, 'shape'), attrInt(n, 'allowzero', 0)) },
  ],
  Transpose: (n, x) => {
    const s0 = x[0]!.shape;
    if (!s0) return [{ elemType: x[0]!.elemType }];
    const perm = attrInts(n, 'perm') ?? s0.map((_, i) => s0.length - 1 - i);
    const ok = perm.length === s0.length && axesOf(perm, s0.length) && perm.every((p) => p >= 0);
    return [{ elemType: x[0]!.elemType, shape: ok ? perm.map((p) => s0[p]!) : undefined }];
  },
  Concat: (n, x) => {
    const given = x.filter((i) => i.name);
    const elemType = given.find((i) => i.elemType)?.elemType;
    const ss = given.map((i) => i.shape);
    const r = ss[0]?.length ?? 0;
    const ax = axisOf(attrInt(n, 'axis', 0), r);
    if (!ss.length || ss.some((s) => !s || s.length !== r) || ax === undefined) return [{ elemType }];
    const shape = [...ss[0]!];
    shape[ax] = ss.reduce<Dim>((a, s) => (isNum(a) && isNum(s![ax]) ? a + s![ax] : null), 0);
    const vals = given.map(dimsIn);
    return [shapeTensor({ elemType, shape }, vals.every((v) => v) ? (vals as Shape[]).flat() : undefined)];
  },
  Split: (n, x, opset) => {
    const outs = n.output ?? [];
    const elemType = x[0]!.elemType;
    const s0 = x[0]!.shape;
    const ax = s0 ? axisOf(attrInt(n, 'axis', 0), s0.length) : undefined;
    if (!s0 || ax === undefined) return outs.map(() => ({ elemType }));
    let split = inputOrAttr(n, x[1]!, 'split', opset, 13);
    const total = s0[ax];
    if (!split && !(opset >= 13 && x[1]!.name) && isNum(total)) {
      // equal parts; from opset 18 the last may be smaller
      const size = Math.ceil(total / outs.length);
      split = outs.map((_, i) => Math.max(0, Math.min(size, total - i * size)));
    }
    if (split && split.length !== outs.length) split = undefined;
    return outs.map((_, i) => {
      const s = [...s0];
      s[ax] = split ? split[i]! : null;
      return { elemType, shape: s };
    });
  },
  Squeeze: (n, x, opset) => {
    const { elemType, shape: s0, value, dims } = x[0]!;
    const axes = inputOrAttr(n, x[1]!, 'axes', opset, 13);
    if (!s0) return [{ elemType }];
    if (!axes || (!axes.length && opset >= 13)) {
      // no axes: every 1 goes, which a symbolic dim leaves open
      if (x[1]!.name && opset >= 13 && !axes) return [{ elemType }];
      return [{ elemType, shape: allNum(s0) ? s0.filter((d) => d !== 1) : undefined, value, dims }];
    }
    const ax = axesOf(axes, s0.length);
    if (!ax || ax.some((a) => isNum(s0[a]) && s0[a] !== 1)) return [{ elemType }];
    return [{ elemType, shape: s0.filter((_, i) => !ax.includes(i)), value, dims }];
  },
  Unsqueeze: (n, x, opset) => {
    const { elemType, shape: s0, value, dims } = x[0]!;
    const axes = inputOrAttr(n, x[1]!, 'axes', opset, 13);
    if (!s0 || !axes) return [{ elemType }];
    const r = s0.length + axes.length;
    const ax = axesOf(axes, r);
    if (!ax) return [{ elemType }];
    const shape: Dim[] = [];
    let j = 0;
    for (let i = 0; i < r; i++) shape.push(ax.includes(i) ? 1 : s0[j++]!);
    return [{ elemType, shape, value, dims }];
  },
  Gather: (n, x) => {
    const [data, idx] = [x[0]!, x[1]!];
    const s0 = data.shape;
    const ax = s0 ? axisOf(attrInt(n, 'axis', 0), s0.length) : undefined;
    if (!s0 || !idx.shape || ax === undefined) return [{ elemType: data.elemType }];
    const shape = [...s0.slice(0, ax), ...idx.shape, ...s0.slice(ax + 1)];
    const v = dimsIn(data);
    const picked = v && idx.value && s0.length === 1 ? idx.value.map((i) => v[i < 0 ? i + v.length : i]) : undefined;
    return [shapeTensor({ elemType: data.elemType, shape }, picked?.every((p) => p !== undefined) ? (picked as Shape) : undefined)];
  },
  GatherElements: (_n, x) => [{ elemType: x[0]!.elemType, shape: x[1]!.shape }],
  GatherND: (n, x) => {
    const [s0, si] = [x[0]!.shape, x[1]!.shape];
    const b = attrInt(n, 'batch_dims', 0);
    const last = si?.[si.length - 1];
    if (!s0 || !si || !isNum(last) || b + last > s0.length) return [{ elemType: x[0]!.elemType }];
    return [{ elemType: x[0]!.elemType, shape: [...si.slice(0, -1), ...s0.slice(b + last)] }];
  },
  OneHot: (n, x) => {
    // the indices' shape with a `depth`-long axis inserted at `axis`
    const s0 = x[0]!.shape;
    const elemType = x[2]!.elemType;
    const ax = s0 ? axisOf(attrInt(n, 'axis', -1), s0.length + 1) : undefined;
    if (!s0 || ax === undefined) return [{ elemType }];
    const depth = x[1]!.value?.[0];
    return [{ elemType, shape: [...s0.slice(0, ax), isNum(depth) ? depth : null, ...s0.slice(ax)] }];
  },
  Slice: (n, x, opset) => {
    const { elemType, shape: s0 } = x[0]!;
    const value = dimsIn(x[0]!);
    if (!s0) return [{ elemType }];
    const starts = inputOrAttr(n, x[1]!, 'starts', opset, 10);
    const ends = inputOrAttr(n, x[2]!, 'ends', opset, 10);
    const every = s0.map((_, i) => i).slice(0, starts?.length ?? 0);
    const axes = opset >= 10 ? (x[3]!.name ? x[3]!.value : every) : (attrInts(n, 'axes') ?? every);
    const steps = opset >= 10 && x[4]!.name ? x[4]!.value : starts?.map(() => 1);
    const ax = axes && axesOf(axes, s0.length);
    if (!starts || !ends || !ax || !steps || starts.length !== ax.length || ends.length !== ax.length || steps.length !== ax.length || steps.includes(0))
      return [{ elemType }];
    const shape = [...s0];
    const ranges: [number, number, number][] = [];
    ax.forEach((a, j) => {
      const d = s0[a];
      if (!isNum(d)) {
        shape[a] = null;
        return;
      }
      const r = sliceRange(starts[j]!, ends[j]!, steps[j]!, d);
      ranges.push(r);
      shape[a] = r[2];
    });
    const r = ranges[0];
    const v = value && s0.length === 1 && r && steps[0] === 1 ? value.slice(r[0], r[0] + r[2]) : undefined;
    return [shapeTensor({ elemType, shape }, v)];
  },
  Pad: (n, x, opset) => {
    const s0 = x[0]!.shape;
    const pads = inputOrAttr(n, x[1]!, 'pads', opset, 11);
    const elemType = x[0]!.elemType;
    if (!s0 || !pads) return [{ elemType }];
    const axes = opset >= 18 && x[3]!.name ? (x[3]!.value ? axesOf(x[3]!.value, s0.length) : undefined) : s0.map((_, i) => i);
    if (!axes || pads.length !== 2 * axes.length) return [{ elemType }];
    const shape = [...s0];
    axes.forEach((a, j) => {
      const d = s0[a];
      shape[a] = isNum(d) ? d + pads[j]! + pads[j + axes.length]! : pads[j] === 0 && pads[j + axes.length] === 0 ? d! : null;
    });
    return [{ elemType, shape: shape.some((d) => isNum(d) && d < 0) ? undefined : shape }];
  },
  Expand: (_n, x) => {
    const s0 = x[0]!.shape;
    const target = dimsIn(x[1]!);
    const len = x[1]!.shape?.[0];
    const elemType = x[0]!.elemType;
    if (s0 && target) return [{ elemType, shape: broadcastShapes([s0, target]) }];
    if (s0 && isNum(len)) return [{ elemType, shape: broadcastShapes([s0, Array<Dim>(len).fill(null)]) }];
    return [{ elemType }];
  },
  Tile: (_n, x) => {
    const s0 = x[0]!.shape;
    const reps = x[1]!.value;
    const ok = s0 && reps && reps.length === s0.length;
    return [{ elemType: x[0]!.elemType, shape: ok ? s0.map((d, i) => (isNum(d) ? d * reps[i]! : reps[i] === 1 ? d : null)) : undefined }];
  },
  Resize: (n, x, opset) => [{ elemType: x[0]!.elemType, shape: resizeShape(n, x, opset) }],
  Upsample: (n, x, opset) => [{ elemType: x[0]!.elemType, shape: resizeShape(n, x, opset) }],
  DepthToSpace: (n, x) => {
    const s = x[0]!.shape;
    const b = attrInt(n, 'blocksize', 0);
    const shape =
      s && s.length === 4 && b > 0 ? [s[0]!, isNum(s[1]) ? s[1] / (b * b) : null, isNum(s[2]) ? s[2] * b : null, isNum(s[3]) ? s[3] * b : null] : undefined;
    return [{ elemType: x[0]!.elemType, shape: shape?.every((d) => !isNum(d) || Number.isInteger(d)) ? shape : undefined }];
  },
  SpaceToDepth: (n, x) => {
    const s = x[0]!.shape;
    const b = attrInt(n, 'blocksize', 0);
    const shape =
      s && s.length === 4 && b > 0 ? [s[0]!, isNum(s[1]) ? s[1] * b * b : null, isNum(s[2]) ? s[2] / b : null, isNum(s[3]) ? s[3] / b : null] : undefined;
    return [{ elemType: x[0]!.elemType, shape: shape?.every((d) => !isNum(d) || Number.isInteger(d)) ? shape : undefined }];
  },
  TopK: (n, x, opset) => {
    const s0 = x[0]!.shape;
    const k = opset >= 10 ? x[1]!.value?.[0] : attrInt(n, 'k', -1);
    const ax = s0 ? axisOf(attrInt(n, 'axis', -1), s0.length) : undefined;
    const shape = s0 && ax !== undefined ? s0.map((d, i) => (i === ax ? (isNum(k) && k >= 0 ? k : null) : d)) : undefined;
    return [
      { elemType: x[0]!.elemType, shape },
      { elemType: DataType.INT64, shape },
    ];
  },
  Range: (_n, x) => {
    const [s, l, d] = [x[0]!.value?.[0], x[1]!.value?.[0], x[2]!.value?.[0]];
    const count = isNum(s) && isNum(l) && isNum(d) && d !== 0 ? Math.max(0, Math.ceil((l - s) / d)) : null;
    return [{ elemType: x[0]!.elemType, shape: [count] }];
  },
  Det: (_n, x) => [{ elemType: x[0]!.elemType, shape: x[0]!.shape && x[0]!.shape.length >= 2 ? x[0]!.shape.slice(0, -2) : undefined }],
  EyeLike: (n, x) => [shaped(x[0]!, attr(n, 'dtype') ? attrInt(n, 'dtype', 0) : x[0]!.elemType)],
  RandomNormalLike: (n, x) => [shaped(x[0]!, attr(n, 'dtype') ? attrInt(n, 'dtype', 0) : x[0]!.elemType)],
  RandomUniformLike: (n, x) => [shaped(x[0]!, attr(n, 'dtype') ? attrInt(n, 'dtype', 0) : x[0]!.elemType)],
  Bernoulli: (n, x) => [shaped(x[0]!, attr(n, 'dtype') ? attrInt(n, 'dtype', 0) : x[0]!.elemType)],
  RandomNormal: (n) => [{ elemType: attrInt(n, 'dtype', DataType.FLOAT), shape: attrInts(n, 'shape') }],
  RandomUniform: (n) => [{ elemType: attrInt(n, 'dtype', DataType.FLOAT), shape: attrInts(n, 'shape') }],
  Einsum: (_n, x) => [{ elemType: x[0]!.elemType }],
  Compress: (n, x) => {
    // the kept count depends on the condition's values: unknown along `axis`, or 1-D without one
    const s0 = x[0]!.shape;
    const ax = s0 ? axisOf(attrInt(n, 'axis', 0), s0.length) : undefined;
    return [{ elemType: x[0]!.elemType, shape: !attr(n, 'axis') ? [null] : s0 && ax !== undefined ? s0.map((d, i) => (i === ax ? null : d)) : undefined }];
  },
  // ops whose output 0 has input 0's element type and a shape this table does not work out
  ...Object.fromEntries(
    ['MaxUnpool', 'GridSample', 'RoiAlign', 'MaxRoiPool', 'CenterCropPad', 'Col2Im', 'AffineGrid'].map((op) => [
      op,
      (_n: NodeProto, x: Input[]) => [{ elemType: x[0]!.elemType }],
    ]),
  ),
  Unique: (_n, x) => [
    { elemType: x[0]!.elemType },
    { elemType: DataType.INT64, shape: [null] },
    { elemType: DataType.INT64, shape: [null] },
    { elemType: DataType.INT64, shape: [null] },
  ],
  NonMaxSuppression: () => [{ elemType: DataType.INT64, shape: [null, 3] }],
  QuantizeLinear: (n, x) => [shaped(x[0]!, attr(n, 'output_dtype') ? attrInt(n, 'output_dtype', 0) : x[2]!.name ? x[2]!.elemType : DataType.UINT8)],
  DequantizeLinear: (_n, x, opset) => [shaped(x[0]!, opset >= 19 ? x[1]!.elemType : DataType.FLOAT)],
};

/**
 * Ops of other domains this project writes: the ALReLU function the converter emits (domain
 * `ai.alrelu`, see src/convert/forms.ts), element-wise like Relu.
 */
const OTHER_DOMAINS: Readonly<Record<string, Readonly<Record<string, Rule>>>> = {
  'ai.alrelu': { ALReLU: unary },
};

function ruleFor(n: NodeProto): Rule | undefined {
  const op = n.opType ?? '';
  const table = isDefaultDomain(n.domain) ? OPS : OTHER_DOMAINS[n.domain ?? ''];
  return table && Object.hasOwn(table, op) ? table[op] : undefined;
}

/** A Constant node's one value attribute, by name. */
const CONSTANT_ATTRS: Readonly<Record<string, (a: AttributeProto) => Facts>> = {
  value: (a) => (a.t ? tensorFacts(a.t) : {}),
  value_float: (a) => ({ elemType: DataType.FLOAT, shape: [], value: [a.f ?? 0] }),
  value_floats: (a) => ({ elemType: DataType.FLOAT, shape: [(a.floats ?? []).length], value: a.floats ?? [] }),
  value_int: (a) => ({ elemType: DataType.INT64, shape: [], value: [int(a.i ?? 0)] }),
  value_ints: (a) => ({ elemType: DataType.INT64, shape: [(a.ints ?? []).length], value: (a.ints ?? []).map(int) }),
  value_string: () => ({ elemType: DataType.STRING, shape: [] }),
  value_strings: (a) => ({ elemType: DataType.STRING, shape: [(a.strings ?? []).length] }),
  sparse_value: (a) => ({ elemType: a.sparseTensor?.values?.dataType, shape: a.sparseTensor?.dims?.map(int) }),
};

function matmulShape(a: Shape | undefined, b: Shape | undefined): Shape | undefined {
  if (!a || !b || !a.length || !b.length) return undefined;
  const a2 = a.length === 1 ? [1, a[0]!] : a;
  const b2 = b.length === 1 ? [b[0]!, 1] : b;
  const out: Shape = [...broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]), a2[a2.length - 2]!, b2[b2.length - 1]!];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.pop();
  return out;
}

/** Reshape's output: 0 copies the input dim (unless allowzero), one -1 takes what is left. */
function reshapeShape(s0: Shape | undefined, target: Shape | undefined, allowzero: number): Shape | undefined {
  if (!target || target.filter((d) => d === -1).length > 1 || target.some((d) => isNum(d) && d < -1)) return undefined;
  if (allowzero && target.includes(0) && target.includes(-1)) return undefined;
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowzero ? (s0 ? (s0[i] ?? null) : null) : d));
  const neg = out.indexOf(-1);
  if (neg >= 0) {
    const total = s0 && allNum(s0) ? elementCount(s0) : null;
    const rest = product(out.filter((_, i) => i !== neg));
    out[neg] = total !== null && isNum(rest) && rest > 0 && total % rest === 0 ? total / rest : null;
  }
  return out;
}

/** [start, end, count] of a slice along a dim of size d, starts and ends clamped as the spec says. */
function sliceRange(start: number, end: number, step: number, d: number): [number, number, number] {
  const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = clamp(s, 0, d);
    e = clamp(e, 0, d);
    return [s, e, Math.max(0, Math.ceil((e - s) / step))];
  }
  s = clamp(s, 0, d - 1);
  e = clamp(e, -1, d - 1);
  return [s, e, Math.max(0, Math.ceil((s - e) / -step))];
}

/** Resize/Upsample: `sizes`, or floor(dim * scale); Resize-18's `axes` (some axes only) is left unknown. */
function resizeShape(n: NodeProto, x: Input[], opset: number): Shape | undefined {
  const s0 = x[0]!.shape;
  if (!s0 || attr(n, 'axes')) return undefined;
  const resize11 = n.opType === 'Resize' && opset >= 11;
  const sizes = resize11 && x[3]!.name ? x[3]!.value : undefined;
  if (sizes) return sizes.length === s0.length && attrString(n, 'keep_aspect_ratio_policy', 'stretch') === 'stretch' ? sizes : undefined;
  const scales = n.opType === 'Upsample' && opset < 9 ? attr(n, 'scales')?.floats : x[resize11 ? 2 : 1]!.value;
  if (!scales || scales.length !== s0.length || scales.some((v) => !(v > 0))) return undefined;
  return s0.map((d, i) => (isNum(d) ? Math.floor(d * scales[i]!) : scales[i] === 1 ? d : null));
}

// ---- running the table ----

const ABSENT: Input = { name: '' };

/** What one node's outputs are, from what is known of its inputs; unknown (empty facts) where no rule applies. */
export function inferNode(n: NodeProto, inputs: (Facts | undefined)[], opset: number): Facts[] {
  const outs = n.output ?? [];
  const rule = ruleFor(n);
  if (!rule) return outs.map(() => ({}));
  const names = n.input ?? [];
  // padded so that a rule reading an optional input past the end sees it absent
  const x: Input[] = Array.from({ length: Math.max(names.length, 8) }, (_, i) => (names[i] ? { ...inputs[i], name: names[i] } : ABSENT));
  const got = rule(n, x, opset);
  return outs.map((_, i) => clean(got[i]));
}

/** Drops what a rule could not establish (an element type of 0, a NaN dim) so callers see only facts. */
function clean(f: Facts | undefined): Facts {
  const out: Facts = {};
  if (!f) return out;
  if (f.elemType) out.elemType = f.elemType;
  if (f.shape?.every((d) => d === null || typeof d === 'string' || (Number.isInteger(d) && d >= 0))) out.shape = f.shape;
  if (f.value) out.value = f.value;
  if (f.dims && !f.value && f.dims.every((d) => d === null || typeof d === 'string' || Number.isInteger(d))) out.dims = f.dims;
  return out;
}

export function emptyInfo(outer?: StaticInfo): StaticInfo {
  return { shapes: new Map(outer?.shapes), consts: new Map(outer?.consts), types: new Map(outer?.types), dims: new Map(outer?.dims) };
}

/** What `info` knows about one value. */
export function factsOf(info: StaticInfo, name: string): Facts {
  return { elemType: info.types.get(name), shape: info.shapes.get(name), value: info.consts.get(name), dims: info.dims.get(name) };
}

/** Records facts for a value; what is already known (declared) stays. */
export function record(info: StaticInfo, name: string, f: Facts): void {
  if (!name) return;
  if (f.elemType && !info.types.has(name)) info.types.set(name, f.elemType);
  if (f.shape && !info.shapes.has(name)) info.shapes.set(name, f.shape);
  if (f.value && !info.consts.has(name)) info.consts.set(name, f.value);
  if (f.dims && !info.dims.has(name)) info.dims.set(name, f.dims);
}

/** Adds what follows from one more node (nodes as a builder emits them). */
export function inferInto(info: StaticInfo, n: NodeProto, opset: number): void {
  const got = inferNode(
    n,
    (n.input ?? []).map((x) => factsOf(info, x)),
    opset,
  );
  (n.output ?? []).forEach((o, i) => record(info, o, got[i]!));
}

/** Facts the scope declares: initializers, then typed inputs, value_info and outputs. */
export function declare(info: StaticInfo, initializers: TensorProto[], declared: ValueInfo[]): void {
  for (const t of initializers) if (t.name) record(info, t.name, tensorFacts(t));
  for (const v of declared) {
    const t = valueTypeOf(v.type);
    if (v.name && t) record(info, v.name, { elemType: t.elemType || undefined, shape: t.shape });
  }
}

/**
 * Everything that follows for one graph, in node order (sort it topologically first): the declared facts,
 * then each node's outputs. `outer` is the enclosing scope's info, for a subgraph's captured values.
 */
export function inferGraph(graph: GraphProto, opset: number, outer?: StaticInfo): StaticInfo {
  const info = emptyInfo(outer);
  declare(info, graph.initializer ?? [], [...(graph.input ?? []), ...(graph.valueInfo ?? []), ...(graph.output ?? [])]);
  for (const n of graph.node ?? []) inferInto(info, n, opset);
  return info;
}

/** The same for any scope: a graph, or a function body (which declares only value_info). */
export function inferScope(scope: Scope, opset: number, outer?: StaticInfo): StaticInfo {
  if (scope.kind === 'graph') return inferGraph(scope.graph, opset, outer);
  const info = emptyInfo(outer);
  declare(info, [], scope.fn.valueInfo ?? []);
  for (const n of scope.fn.node ?? []) inferInto(info, n, opset);
  return info;
}
