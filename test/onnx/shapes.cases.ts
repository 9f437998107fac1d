/**
 * One table of shape/type inference cases, op by op. Each case names the node's inputs (runtime inputs with
 * dims, constants with values, absent optional inputs) and the outputs expected. Cases whose inputs are all
 * fixed are also built into a one-node model and run on onnxruntime, whose output dims and element types
 * are the independent reference for the expected values (see shapes.test.ts).
 */
import { floatAttr, intAttr, intsAttr, stringAttr, tensorAttr, graphAttr } from '../../src/onnx/attrs.js';
import { DataType } from '../../src/onnx/dtype.js';
import type { Dim, Shape } from '../../src/onnx/shapes.js';
import { AttrType, type AttributeProto, type GraphProto, type ValueInfo } from '../../src/onnx/types.js';

const { FLOAT, INT64, BOOL, INT32, DOUBLE, UINT8 } = DataType;

export type In = { kind: 'input'; elemType: number; dims: Dim[] } | { kind: 'const'; elemType: number; dims: number[]; values: number[] } | { kind: 'absent' };

export interface Out {
  elemType?: number;
  shape?: Shape;
  /** compared only where given */
  value?: number[];
}

export interface Case {
  op: string;
  in: In[];
  out: Out[];
  attrs?: AttributeProto[];
  opset?: number;
  domain?: string;
  /** what the case is about, when the op alone does not say */
  what?: string;
  /** false where onnxruntime cannot run the case (inputs symbolic or unknown are never run) */
  ort?: boolean;
}

/** A float runtime input. */
export const f = (...dims: Dim[]): In => ({ kind: 'input', elemType: FLOAT, dims });
/** A runtime input of another type. */
export const typed = (elemType: number, ...dims: Dim[]): In => ({ kind: 'input', elemType, dims });
/** A 1-D int64 constant. */
export const i64 = (...values: number[]): In => ({ kind: 'const', elemType: INT64, dims: [values.length], values });
/** A 0-D int64 constant. */
export const i64s = (value: number): In => ({ kind: 'const', elemType: INT64, dims: [], values: [value] });
/** A 1-D float constant. */
export const f32 = (...values: number[]): In => ({ kind: 'const', elemType: FLOAT, dims: [values.length], values });
/** A constant of any dims (values made up when not given). */
export const konst = (elemType: number, dims: number[], values?: number[]): In => ({
  kind: 'const',
  elemType,
  dims,
  values: values ?? Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => i % 3),
});
export const none: In = { kind: 'absent' };

const o = (elemType: number | undefined, shape?: Shape, value?: number[]): Out => {
  const out: Out = {};
  if (elemType !== undefined) out.elemType = elemType;
  if (shape) out.shape = shape;
  if (value) out.value = value;
  return out;
};
const fl = (...shape: Dim[]) => o(FLOAT, shape);
const i = intAttr;
const is = intsAttr;
const s = stringAttr;

/** A typed value of a subgraph's signature. */
const vi = (name: string, elemType: number, dims: number[]): ValueInfo => ({
  name,
  type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
});
/** An If branch whose one output is a float constant of two elements. */
const branch = (v: number): GraphProto => ({
  name: 'branch',
  node: [],
  input: [],
  output: [vi(`c${v}`, FLOAT, [2])],
  initializer: [{ name: `c${v}`, dataType: FLOAT, dims: [2], floatData: [v, v] }],
});

export const CASES: Case[] = [
  // element-wise, shape kept
  ...[
    'Relu',
    'Abs',
    'Sigmoid',
    'Tanh',
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
    'Sign',
    'Floor',
    'Ceil',
    'Round',
    'Celu',
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
    'Shrink',
    'Identity',
    'Softmax',
    'LogSoftmax',
    'Hardmax',
    'Clip',
    'LpNormalization',
    'MeanVarianceNormalization',
  ].map((op): Case => ({ op, in: [f(2, 3, 4)], out: [fl(2, 3, 4)] })),
  { op: 'HardSwish', opset: 14, in: [f(2, 3, 4)], out: [fl(2, 3, 4)] },
  { op: 'LeakyRelu', in: [f('N', 3)], out: [fl('N', 3)], what: 'symbolic dims pass through' },
  { op: 'Mish', opset: 18, in: [f(2, 3)], out: [fl(2, 3)] },
  { op: 'Gelu', opset: 20, in: [f(2, 3)], out: [fl(2, 3)] },
  { op: 'Swish', opset: 24, in: [f(2, 3)], out: [fl(2, 3)], ort: false },
  { op: 'PRelu', in: [f(2, 3, 4), f(3, 1)], out: [fl(2, 3, 4)], what: 'slope broadcasts to X' },
  { op: 'Not', in: [typed(BOOL, 2, 3)], out: [o(BOOL, [2, 3])] },
  { op: 'BitwiseNot', opset: 18, in: [typed(INT32, 2, 3)], out: [o(INT32, [2, 3])] },
  { op: 'IsNaN', in: [f(2, 3)], out: [o(BOOL, [2, 3])] },
  { op: 'IsInf', in: [f(2, 3)], out: [o(BOOL, [2, 3])] },
  { op: 'LRN', in: [f(1, 4, 3, 3)], attrs: [i('size', 3)], out: [fl(1, 4, 3, 3)] },
  { op: 'InstanceNormalization', in: [f(1, 4, 3, 3), f32(1, 1, 1, 1), f32(0, 0, 0, 0)], out: [fl(1, 4, 3, 3)] },
  { op: 'GroupNormalization', opset: 21, in: [f(1, 4, 3, 3), f32(1, 1, 1, 1), f32(0, 0, 0, 0)], attrs: [i('num_groups', 2)], out: [fl(1, 4, 3, 3)] },
  { op: 'RMSNormalization', opset: 23, in: [f(2, 3, 4), f32(1, 1, 1, 1)], out: [fl(2, 3, 4)], ort: false },
  { op: 'CumSum', in: [f(2, 3), i64s(1)], out: [fl(2, 3)] },
  { op: 'Trilu', opset: 14, in: [f(3, 3)], out: [fl(3, 3)] },
  { op: 'ReverseSequence', in: [f(4, 2, 3), konst(INT64, [2], [1, 4])], out: [fl(4, 2, 3)] },
  { op: 'ScatterElements', in: [f(3, 3), konst(INT64, [1, 2], [0, 1]), f(1, 2)], out: [fl(3, 3)] },
  { op: 'ScatterND', in: [f(4, 3), konst(INT64, [1, 1], [2]), f(1, 3)], out: [fl(4, 3)] },
  { op: 'Scatter', opset: 10, in: [f(3, 3), konst(INT64, [1, 2], [0, 1]), f(1, 2)], out: [fl(3, 3)] },
  { op: 'Cast', in: [f(2, 3)], attrs: [i('to', INT64)], out: [o(INT64, [2, 3])] },
  { op: 'Cast', in: [f(2, 3)], out: [o(undefined, [2, 3])], what: 'no `to`: type unknown (old train engine said float)', ort: false },
  { op: 'CastLike', opset: 15, in: [f(2, 3), typed(DOUBLE, 1)], out: [o(DOUBLE, [2, 3])] },
  { op: 'Dropout', in: [f(2, 3)], out: [fl(2, 3), o(BOOL, [2, 3])], what: 'mask is bool from opset 10 (old train engine: float)' },
  { op: 'BatchNormalization', in: [f(2, 3, 4, 4), f32(1, 1, 1), f32(0, 0, 0), f32(0, 0, 0), f32(1, 1, 1)], out: [fl(2, 3, 4, 4)] },
  {
    op: 'LayerNormalization',
    opset: 17,
    in: [f(2, 3, 4), konst(FLOAT, [4]), konst(FLOAT, [4])],
    attrs: [i('axis', -1)],
    out: [fl(2, 3, 4), fl(2, 3, 1), fl(2, 3, 1)],
  },
  { op: 'LayerNormalization', opset: 17, in: [f(2, 3, 4), konst(FLOAT, [3, 4])], attrs: [i('axis', 1)], out: [fl(2, 3, 4), fl(2, 1, 1), fl(2, 1, 1)] },

  // broadcasting
  { op: 'Add', in: [f(2, 3, 4), f(4)], out: [fl(2, 3, 4)] },
  { op: 'Add', in: [f(2, 1, 4), f(3, 1)], out: [fl(2, 3, 4)], what: 'both sides stretch' },
  { op: 'Mul', in: [f('N', 3), f(1, 3)], out: [fl('N', 3)] },
  { op: 'Sub', in: [f('N', 1), f(1, 'M')], out: [fl('N', 'M')] },
  { op: 'Div', in: [f('N', 3), f('M', 3)], out: [fl(null, 3)], what: 'two different symbols: unknown' },
  { op: 'Add', in: [f(null, 3), f(5, 3)], out: [fl(5, 3)], what: 'a known dim beats an unknown one' },
  { op: 'Pow', in: [f(2, 3), typed(INT64)], out: [fl(2, 3)], what: 'type of the base' },
  { op: 'Mod', in: [typed(INT64, 2, 3), typed(INT64, 3)], out: [o(INT64, [2, 3])] },
  { op: 'Max', in: [f(2, 1), f(1, 3), f(3)], out: [fl(2, 3)], what: 'variadic' },
  { op: 'Min', in: [f(2, 3), f(2, 3)], out: [fl(2, 3)] },
  { op: 'Sum', in: [f(4), f(2, 1), f(1)], out: [fl(2, 4)] },
  { op: 'Mean', in: [f(2, 3), f(3)], out: [fl(2, 3)] },
  { op: 'BitShift', in: [typed(UINT8, 2, 3), typed(UINT8, 3)], attrs: [s('direction', 'LEFT')], out: [o(UINT8, [2, 3])] },
  { op: 'BitwiseAnd', opset: 18, in: [typed(INT32, 2, 3), typed(INT32, 3)], out: [o(INT32, [2, 3])] },
  { op: 'BitwiseOr', opset: 18, in: [typed(INT32, 2, 3), typed(INT32, 1)], out: [o(INT32, [2, 3])] },
  { op: 'BitwiseXor', opset: 18, in: [typed(INT32, 3), typed(INT32, 2, 1)], out: [o(INT32, [2, 3])] },
  ...['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual'].map((op): Case => ({ op, in: [f(2, 3), f(3)], out: [o(BOOL, [2, 3])] })),
  ...['And', 'Or', 'Xor'].map((op): Case => ({ op, in: [typed(BOOL, 2, 1), typed(BOOL, 3)], out: [o(BOOL, [2, 3])] })),
  { op: 'Where', in: [typed(BOOL, 2, 1), f(3), f(1, 1)], out: [fl(2, 3)], what: 'type of X, not of the condition (old onnx/infer.ts: bool)' },
  { op: 'Where', in: [typed(BOOL, 3), typed(INT64, 2, 1), typed(INT64, 1)], out: [o(INT64, [2, 3])] },
  { op: 'Add', in: [i64(2, 3), i64s(1)], out: [o(INT64, [2], [3, 4])], what: 'int64 shape arithmetic is folded' },
  { op: 'Mul', in: [i64(2, 3), i64(4, 5)], out: [o(INT64, [2], [8, 15])] },
  { op: 'Div', in: [i64(7, -7), i64s(2)], out: [o(INT64, [2], [3, -3])], what: 'integer division truncates' },
  { op: 'Sub', in: [i64(2, 3), i64(1, 1, 1)], out: [o(INT64, [null])], what: 'lengths that do not broadcast: invalid, unknown and not folded', ort: false },

  // matrix products
  { op: 'Gemm', in: [f(2, 3), f(3, 4)], out: [fl(2, 4)] },
  { op: 'Gemm', in: [f(3, 2), f(4, 3), f(4)], attrs: [i('transA', 1), i('transB', 1)], out: [fl(2, 4)] },
  { op: 'Gemm', in: [f('N', 3), f(5, 3), f(5)], attrs: [i('transB', 1)], out: [fl('N', 5)] },
  { op: 'MatMul', in: [f(2, 3), f(3, 4)], out: [fl(2, 4)] },
  { op: 'MatMul', in: [f(3), f(3, 4)], out: [fl(4)], what: '1-D left operand' },
  { op: 'MatMul', in: [f(5, 2, 3), f(3)], out: [fl(5, 2)], what: '1-D right operand' },
  { op: 'MatMul', in: [f(3), f(3)], out: [fl()], what: 'two vectors: a scalar' },
  { op: 'MatMul', in: [f(7, 1, 2, 3), f(5, 3, 4)], out: [fl(7, 5, 2, 4)], what: 'batch dims broadcast' },
  { op: 'MatMulInteger', in: [typed(UINT8, 2, 3), typed(UINT8, 3, 4)], out: [o(INT32, [2, 4])] },

  // windows
  { op: 'Conv', in: [f(1, 3, 10, 10), konst(FLOAT, [8, 3, 3, 3])], out: [fl(1, 8, 8, 8)] },
  { op: 'Conv', in: [f(1, 3, 10, 10), konst(FLOAT, [8, 3, 3, 3])], attrs: [is('pads', [1, 1, 1, 1]), is('strides', [2, 2])], out: [fl(1, 8, 5, 5)] },
  { op: 'Conv', in: [f(1, 3, 10, 11), konst(FLOAT, [8, 3, 3, 3])], attrs: [is('dilations', [2, 3])], out: [fl(1, 8, 6, 5)] },
  { op: 'Conv', in: [f(1, 3, 10, 11), konst(FLOAT, [8, 3, 3, 3])], attrs: [s('auto_pad', 'SAME_UPPER'), is('strides', [3, 2])], out: [fl(1, 8, 4, 6)] },
  { op: 'Conv', in: [f(1, 3, 10, 11), konst(FLOAT, [8, 3, 3, 3])], attrs: [s('auto_pad', 'VALID'), is('strides', [2, 2])], out: [fl(1, 8, 4, 5)] },
  {
    op: 'Conv',
    in: [f(1, 4, 9), konst(FLOAT, [6, 2, 3])],
    attrs: [i('group', 2), is('pads', [0, 2])],
    out: [fl(1, 6, 9)],
    what: '1-D, groups, asymmetric pads',
  },
  { op: 'Conv', in: [f('N', 3, 'H', 8), konst(FLOAT, [8, 3, 3, 3])], out: [fl('N', 8, null, 6)] },
  { op: 'ConvTranspose', in: [f(1, 4, 5, 5), konst(FLOAT, [4, 2, 3, 3])], attrs: [is('strides', [2, 2])], out: [fl(1, 2, 11, 11)] },
  {
    op: 'ConvTranspose',
    in: [f(1, 4, 5, 5), konst(FLOAT, [4, 2, 3, 3])],
    attrs: [is('strides', [2, 2]), is('pads', [1, 1, 1, 1]), is('output_padding', [1, 1])],
    out: [fl(1, 2, 10, 10)],
  },
  {
    op: 'ConvTranspose',
    in: [f(1, 4, 5, 5), konst(FLOAT, [4, 3, 3, 3])],
    attrs: [i('group', 2), is('strides', [2, 2]), s('auto_pad', 'SAME_UPPER')],
    out: [fl(1, 6, 10, 10)],
  },
  {
    op: 'ConvTranspose',
    in: [f(1, 4, 5, 5), konst(FLOAT, [4, 2, 3, 3])],
    attrs: [is('strides', [2, 2]), is('output_shape', [10, 10])],
    out: [fl(1, 2, 10, 10)],
  },
  {
    op: 'MaxPool',
    in: [f(1, 3, 10, 10)],
    attrs: [is('kernel_shape', [2, 2]), is('strides', [2, 2])],
    out: [fl(1, 3, 5, 5), o(INT64, [1, 3, 5, 5])],
    what: 'Indices are int64 (old train engine: float)',
  },
  { op: 'MaxPool', in: [f(1, 3, 10, 10)], attrs: [is('kernel_shape', [3, 3]), is('strides', [2, 2]), i('ceil_mode', 1)], out: [fl(1, 3, 5, 5)] },
  {
    op: 'MaxPool',
    in: [f(1, 1, 5, 5)],
    attrs: [is('kernel_shape', [2, 2]), is('strides', [2, 2]), is('pads', [1, 1, 1, 1]), i('ceil_mode', 1)],
    out: [fl(1, 1, 3, 3)],
    what: 'ceil mode drops a window that would start in the right padding',
  },
  {
    op: 'MaxPool',
    in: [f(1, 1, 6, 6)],
    attrs: [is('kernel_shape', [2, 2]), is('strides', [2, 2]), is('pads', [1, 1, 1, 1]), i('ceil_mode', 1)],
    out: [fl(1, 1, 4, 4)],
  },
  { op: 'MaxPool', in: [f(1, 2, 9, 9)], attrs: [is('kernel_shape', [3, 3]), is('dilations', [2, 2])], out: [fl(1, 2, 5, 5)] },
  { op: 'MaxPool', in: [f(1, 2, 7, 8)], attrs: [is('kernel_shape', [3, 3]), is('strides', [2, 2]), s('auto_pad', 'SAME_LOWER')], out: [fl(1, 2, 4, 4)] },
  { op: 'AveragePool', in: [f(1, 3, 7, 7)], attrs: [is('kernel_shape', [3, 3]), is('strides', [2, 2]), is('pads', [1, 1, 1, 1])], out: [fl(1, 3, 4, 4)] },
  { op: 'AveragePool', in: [f(1, 3, 8, 8)], attrs: [is('kernel_shape', [3, 3]), is('strides', [2, 2]), i('ceil_mode', 1)], out: [fl(1, 3, 4, 4)] },
  { op: 'AveragePool', in: [f(1, 3, 8)], attrs: [is('kernel_shape', [2]), s('auto_pad', 'VALID'), is('strides', [3])], out: [fl(1, 3, 3)] },
  { op: 'LpPool', in: [f(1, 3, 6, 6)], attrs: [is('kernel_shape', [2, 2]), is('strides', [2, 2])], out: [fl(1, 3, 3, 3)] },
  { op: 'GlobalAveragePool', in: [f(2, 3, 7, 5)], out: [fl(2, 3, 1, 1)] },
  { op: 'GlobalMaxPool', in: [f('N', 3, 7)], out: [fl('N', 3, 1)] },
  { op: 'GlobalLpPool', in: [f(2, 3, 4, 4)], out: [fl(2, 3, 1, 1)] },

  // reshaping
  { op: 'Flatten', in: [f(2, 3, 4, 5)], out: [fl(2, 60)] },
  { op: 'Flatten', in: [f(2, 3, 4, 5)], attrs: [i('axis', 0)], out: [fl(1, 120)] },
  { op: 'Flatten', in: [f(2, 3, 4, 5)], attrs: [i('axis', -1)], out: [fl(24, 5)] },
  { op: 'Flatten', in: [f(2, 3, 4, 5)], attrs: [i('axis', 4)], out: [fl(120, 1)] },
  { op: 'Flatten', in: [f('N', 3, 4)], out: [fl('N', 12)] },
  { op: 'Reshape', in: [f(2, 3, 4), i64(0, -1)], out: [fl(2, 12)], what: '0 copies, -1 takes the rest' },
  { op: 'Reshape', in: [f(2, 3, 4), i64(-1, 2, 2)], out: [fl(6, 2, 2)] },
  { op: 'Reshape', in: [f(2, 0, 4), i64(0, 4)], attrs: [i('allowzero', 1)], opset: 14, out: [fl(0, 4)], what: 'allowzero: 0 is a zero dim' },
  { op: 'Reshape', in: [f(2, 3, 4), i64(0, 0, 4)], opset: 14, attrs: [i('allowzero', 0)], out: [fl(2, 3, 4)] },
  { op: 'Reshape', in: [f('N', 3, 4), i64(0, -1)], out: [fl('N', null)], what: '-1 beside a symbolic dim: unknown' },
  { op: 'Reshape', in: [f('N', 3, 4), i64(-1, 12)], out: [fl(null, 12)] },
  { op: 'Reshape', in: [f(2, 3), typed(INT64, 2)], out: [o(FLOAT)], what: 'target not constant: unknown', ort: false },
  { op: 'Reshape', in: [f(2, 3, 4)], attrs: [is('shape', [4, -1])], opset: 4, out: [fl(4, 6)], what: 'opset < 5: the attribute', ort: false },
  { op: 'Transpose', in: [f(2, 3, 4)], out: [fl(4, 3, 2)], what: 'default perm reverses' },
  { op: 'Transpose', in: [f(2, 3, 4)], attrs: [is('perm', [1, 0, 2])], out: [fl(3, 2, 4)] },
  { op: 'Concat', in: [f(2, 3), f(2, 5)], attrs: [i('axis', 1)], out: [fl(2, 8)] },
  { op: 'Concat', in: [f(2, 3), f(4, 3), f(1, 3)], attrs: [i('axis', -2)], out: [fl(7, 3)] },
  { op: 'Concat', in: [f('N', 3), f(2, 3)], attrs: [i('axis', 0)], out: [fl(null, 3)] },
  { op: 'Concat', in: [i64(2), i64(3, 4)], attrs: [i('axis', 0)], out: [o(INT64, [3], [2, 3, 4])], what: 'constants folded' },
  { op: 'Split', in: [f(6, 4), i64(2, 4)], attrs: [i('axis', 0)], out: [fl(2, 4), fl(4, 4)] },
  { op: 'Split', in: [f(6, 4)], attrs: [i('axis', 1)], out: [fl(6, 2), fl(6, 2)], what: 'equal parts' },
  { op: 'Split', in: [f(6, 4)], attrs: [is('split', [1, 5])], opset: 11, out: [fl(1, 4), fl(5, 4)], what: 'opset < 13: the attribute' },
  { op: 'Split', in: [f(7, 4)], attrs: [i('num_outputs', 3)], opset: 18, out: [fl(3, 4), fl(3, 4), fl(1, 4)], what: 'opset 18: the last part smaller' },
  {
    op: 'Split',
    in: [f(6, 4), typed(INT64, 2)],
    out: [fl(null, 4), fl(null, 4)],
    what: 'split not constant: unknown parts (old train engine: equal parts)',
    ort: false,
  },
  { op: 'Squeeze', in: [f(1, 3, 1, 4), i64(0, -2)], out: [fl(3, 4)] },
  { op: 'Squeeze', in: [f(1, 3, 1, 4)], out: [fl(3, 4)], what: 'no axes: every 1' },
  { op: 'Squeeze', in: [f(1, 3, 1, 4)], attrs: [is('axes', [2])], opset: 11, out: [fl(1, 3, 4)], what: 'opset < 13: the attribute' },
  { op: 'Squeeze', in: [f('N', 3, 1)], out: [o(FLOAT)], what: 'no axes and a symbolic dim: unknown', ort: false },
  { op: 'Squeeze', in: [f(1, 3, 1), typed(INT64, 1)], out: [o(FLOAT)], what: 'axes not constant: unknown (old train engine squeezed every 1)', ort: false },
  { op: 'Unsqueeze', in: [f(3, 4), i64(0, -1)], out: [fl(1, 3, 4, 1)] },
  { op: 'Unsqueeze', in: [f(3, 4), i64(1)], out: [fl(3, 1, 4)] },
  { op: 'Unsqueeze', in: [f(3, 4)], attrs: [is('axes', [0, 3])], opset: 11, out: [fl(1, 3, 4, 1)] },
  { op: 'Unsqueeze', in: [i64s(5), i64(0)], out: [o(INT64, [1], [5])], what: 'a constant keeps its values' },
  { op: 'Expand', in: [f(3, 1), i64(2, 1, 4)], out: [fl(2, 3, 4)] },
  { op: 'Expand', in: [f(2, 3), i64(3)], out: [fl(2, 3)], what: 'target shorter than the input' },
  { op: 'Expand', in: [f(2, 1), typed(INT64, 3)], out: [fl(null, 2, null)], what: 'target not constant: its length gives the rank' },
  { op: 'Tile', in: [f(2, 3), i64(2, 3)], out: [fl(4, 9)] },
  { op: 'Tile', in: [f('N', 3), i64(1, 2)], out: [fl('N', 6)] },
  { op: 'Pad', in: [f(2, 3), i64(1, 0, 2, 1)], out: [fl(5, 4)] },
  { op: 'Pad', in: [f(4, 5), i64(-1, 0, 0, -2)], out: [fl(3, 3)], what: 'negative pads crop' },
  { op: 'Pad', in: [f(2, 3)], attrs: [is('pads', [0, 1, 0, 1])], opset: 10, out: [fl(2, 5)], what: 'opset < 11: the attribute' },
  { op: 'Pad', in: [f(2, 3, 4), i64(1, 1), none, i64(-1)], opset: 18, out: [fl(2, 3, 6)], what: 'opset 18 axes' },
  { op: 'DepthToSpace', in: [f(1, 8, 2, 3)], attrs: [i('blocksize', 2)], out: [fl(1, 2, 4, 6)] },
  { op: 'SpaceToDepth', in: [f(1, 2, 4, 6)], attrs: [i('blocksize', 2)], out: [fl(1, 8, 2, 3)] },

  // slicing and gathering
  { op: 'Slice', in: [f(10, 5), i64(2), i64(7)], out: [fl(5, 5)] },
  { op: 'Slice', in: [f(10, 5), i64(-3), i64(1000), i64(0)], out: [fl(3, 5)], what: 'negative start, end clamped' },
  { op: 'Slice', in: [f(10, 5), i64(0, 1), i64(10, 5), i64(0, 1), i64(3, 2)], out: [fl(4, 2)], what: 'steps' },
  { op: 'Slice', in: [f(10, 5), i64(-1), i64(-1000), i64(0), i64(-2)], out: [fl(5, 5)], what: 'negative step from the end' },
  { op: 'Slice', in: [f(5), i64(-100), i64(-200), i64(0), i64(-1)], out: [fl(1)], what: 'negative step, start clamped to 0 (old train engine: -1, giving 0)' },
  { op: 'Slice', in: [f(5), i64(8), i64(2), i64(0), i64(-1)], out: [fl(2)], what: 'negative step, start past the end clamped to d-1' },
  { op: 'Slice', in: [f(5, 6), i64(4), i64(2), i64(-1)], out: [fl(5, 0)], what: 'empty' },
  { op: 'Slice', in: [f('N', 6), i64(1), i64(3), i64(1)], out: [fl('N', 2)] },
  { op: 'Slice', in: [f(6, 'M'), i64(1), i64(3), i64(1)], out: [fl(6, null)], ort: false },
  { op: 'Slice', in: [f(10, 5)], attrs: [is('starts', [1]), is('ends', [3])], opset: 9, out: [fl(2, 5)], what: 'opset < 10: the attributes' },
  { op: 'Slice', in: [i64(4, 5, 6, 7), i64(1), i64(-1)], out: [o(INT64, [2], [5, 6])], what: 'a constant vector sliced' },
  { op: 'Gather', in: [f(5, 4, 3), konst(INT64, [2, 2], [0, 1, 2, 3])], attrs: [i('axis', 1)], out: [fl(5, 2, 2, 3)] },
  { op: 'Gather', in: [f(5, 4), i64s(-1)], out: [fl(4)], what: 'scalar index drops the axis' },
  { op: 'Gather', in: [i64(7, 8, 9), i64(-1, 0)], out: [o(INT64, [2], [9, 7])], what: 'a constant vector gathered' },
  { op: 'Gather', in: [i64(7, 8, 9), i64s(1)], out: [o(INT64, [], [8])] },
  { op: 'GatherElements', in: [f(3, 4), konst(INT64, [3, 2], [0, 1, 2, 3, 0, 1])], attrs: [i('axis', 1)], out: [fl(3, 2)] },
  { op: 'GatherND', in: [f(2, 3, 4), konst(INT64, [5, 2], [0, 1, 1, 2, 0, 0, 1, 1, 0, 2])], out: [fl(5, 4)] },
  { op: 'GatherND', in: [f(2, 3, 4), konst(INT64, [2, 1], [1, 2])], attrs: [i('batch_dims', 1)], out: [fl(2, 4)] },
  { op: 'OneHot', in: [konst(INT64, [2, 3]), i64s(5), f32(0, 1)], out: [fl(2, 3, 5)] },
  {
    op: 'OneHot',
    in: [konst(INT64, [2, 3]), konst(FLOAT, [], [5]), konst(INT32, [2], [0, 1])],
    attrs: [i('axis', 0)],
    out: [o(INT32, [5, 2, 3])],
    what: 'axis 0, values typed',
  },
  { op: 'TopK', in: [f(3, 10), i64(4)], out: [fl(3, 4), o(INT64, [3, 4])], what: 'indices int64 (old train engine: float)' },
  { op: 'TopK', in: [f(10, 3)], attrs: [i('k', 2), i('axis', 0)], opset: 9, out: [fl(2, 3), o(INT64, [2, 3])] },
  { op: 'NonZero', in: [f(2, 3)], out: [o(INT64, [2, null])] },
  { op: 'Compress', in: [f(3, 2), konst(BOOL, [3], [0, 1, 1])], attrs: [i('axis', 0)], out: [fl(null, 2)], ort: false },
  { op: 'Compress', in: [f(3, 2), konst(BOOL, [3], [0, 1, 1])], out: [fl(null)], ort: false },
  { op: 'Unique', opset: 11, in: [f(6)], out: [o(FLOAT), o(INT64, [null]), o(INT64, [null]), o(INT64, [null])], what: 'Y has an unknown shape' },
  { op: 'NonMaxSuppression', in: [f(1, 6, 4), f(1, 1, 6)], out: [o(INT64, [null, 3])] },

  // reductions
  { op: 'ReduceMean', in: [f(2, 3, 4)], attrs: [is('axes', [1])], out: [fl(2, 1, 4)] },
  { op: 'ReduceMean', in: [f(2, 3, 4)], attrs: [is('axes', [-1, 0]), i('keepdims', 0)], out: [fl(3)] },
  { op: 'ReduceMax', in: [f(2, 3, 4)], out: [fl(1, 1, 1)], what: 'no axes: all' },
  { op: 'ReduceSum', in: [f(2, 3, 4), i64(1)], attrs: [i('keepdims', 0)], out: [fl(2, 4)], what: 'opset 13: ReduceSum axes input' },
  { op: 'ReduceSum', in: [f(2, 3, 4)], attrs: [i('noop_with_empty_axes', 1)], out: [fl(2, 3, 4)] },
  { op: 'ReduceSum', in: [f(2, 3, 4), typed(INT64, 1)], out: [o(FLOAT)], what: 'axes not constant: unknown' },
  { op: 'ReduceSum', in: [f(2, 3, 4)], attrs: [is('axes', [2])], opset: 11, out: [fl(2, 3, 1)] },
  { op: 'ReduceMin', in: [f(2, 3, 4), i64(0, 2)], opset: 18, out: [fl(1, 3, 1)], what: 'opset 18: every Reduce takes an axes input' },
  ...['ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare'].map(
    (op): Case => ({ op, in: [f(2, 3, 4)], attrs: [is('axes', [1]), i('keepdims', 0)], out: [fl(2, 4)] }),
  ),
  { op: 'ArgMax', in: [f(2, 3, 4)], attrs: [i('axis', 1)], out: [o(INT64, [2, 1, 4])] },
  { op: 'ArgMin', in: [f(2, 3, 4)], attrs: [i('axis', -1), i('keepdims', 0)], out: [o(INT64, [2, 3])], what: 'int64 (old train engine: the input type)' },

  // shape and constants
  { op: 'Shape', in: [f(2, 3, 4)], out: [o(INT64, [3], [2, 3, 4])] },
  { op: 'Shape', in: [f(2, 3, 4)], attrs: [i('start', 1)], opset: 15, out: [o(INT64, [2], [3, 4])] },
  { op: 'Shape', in: [f(2, 3, 4)], attrs: [i('start', -2), i('end', -1)], opset: 15, out: [o(INT64, [1], [3])] },
  { op: 'Shape', in: [f(2, 3, 4)], attrs: [i('start', -10), i('end', 10)], opset: 15, out: [o(INT64, [3], [2, 3, 4])], what: 'start and end clamped' },
  { op: 'Shape', in: [f('N', 3)], out: [o(INT64, [2])], what: 'symbolic: length only' },
  { op: 'Size', in: [f(2, 3)], out: [o(INT64, [])] },
  { op: 'Constant', in: [], attrs: [tensorAttr('value', { dataType: INT64, dims: [2], int64Data: [3, 4] })], out: [o(INT64, [2], [3, 4])] },
  { op: 'Constant', in: [], attrs: [floatAttr('value_float', 2.5)], out: [o(FLOAT, [], [2.5])], opset: 13 },
  { op: 'Constant', in: [], attrs: [is('value_ints', [1, 2, 3])], out: [o(INT64, [3], [1, 2, 3])], opset: 13, what: 'value_ints (old engines: untyped)' },
  { op: 'ConstantOfShape', in: [i64(2, 3)], out: [fl(2, 3)], what: 'float when no value (old onnx/infer.ts: int64)' },
  { op: 'ConstantOfShape', in: [i64(4)], attrs: [tensorAttr('value', { dataType: INT64, dims: [1], int64Data: [1] })], out: [o(INT64, [4])] },
  { op: 'ConstantOfShape', in: [typed(INT64, 3)], out: [fl(null, null, null)] },
  { op: 'Range', in: [i64s(1), i64s(10), i64s(3)], out: [o(INT64, [3])] },
  { op: 'Range', in: [konst(FLOAT, [], [0]), konst(FLOAT, [], [1]), konst(FLOAT, [], [0.25])], out: [fl(4)] },
  { op: 'Range', in: [typed(INT64), i64s(10), i64s(1)], out: [o(INT64, [null])] },
  { op: 'EyeLike', in: [f(3, 4)], attrs: [i('dtype', INT64)], out: [o(INT64, [3, 4])] },
  { op: 'RandomNormalLike', in: [f(2, 3)], out: [fl(2, 3)] },
  { op: 'RandomUniformLike', in: [f(2, 3)], attrs: [i('dtype', DOUBLE)], out: [o(DOUBLE, [2, 3])] },
  { op: 'Bernoulli', opset: 15, in: [f(2, 3)], out: [fl(2, 3)] },
  { op: 'RandomNormal', in: [], attrs: [is('shape', [2, 5])], out: [fl(2, 5)] },
  { op: 'RandomUniform', in: [], attrs: [is('shape', [4]), i('dtype', DOUBLE)], out: [o(DOUBLE, [4])] },
  { op: 'Einsum', opset: 12, in: [f(2, 3), f(3, 4)], attrs: [s('equation', 'ij,jk->ik')], out: [o(FLOAT)], what: 'shape not worked out' },
  { op: 'Det', in: [f(5, 3, 3)], out: [fl(5)] },
  { op: 'QuantizeLinear', in: [f(2, 3), f32(0.5)], out: [o(UINT8, [2, 3])], ort: false },
  { op: 'QuantizeLinear', in: [f(2, 3), konst(FLOAT, [], [0.5]), konst(DataType.INT8, [], [0])], out: [o(DataType.INT8, [2, 3])], ort: false },
  { op: 'DequantizeLinear', in: [typed(UINT8, 2, 3), konst(FLOAT, [], [0.5])], out: [fl(2, 3)] },

  // resizing
  { op: 'Resize', in: [f(1, 3, 4, 5), none, f32(1, 1, 2, 1.5)], out: [fl(1, 3, 8, 7)], what: 'floor(dim * scale)' },
  { op: 'Resize', in: [f(1, 3, 4, 5), none, none, i64(1, 3, 9, 2)], out: [fl(1, 3, 9, 2)], what: 'sizes' },
  { op: 'Resize', in: [f(1, 3, 4, 5), f32(1, 1, 0.5, 0.5)], opset: 10, out: [fl(1, 3, 2, 2)], what: 'Resize-10: scales at input 1' },
  { op: 'Resize', in: [f(1, 3, 4, 5), none, none, i64(8, 8)], attrs: [is('axes', [2, 3])], opset: 18, out: [o(FLOAT)], what: 'axes: left unknown', ort: false },
  { op: 'Upsample', in: [f(1, 3, 4, 5), f32(1, 1, 2, 2)], opset: 9, out: [fl(1, 3, 8, 10)] },
  { op: 'Upsample', in: [f(1, 3, 4, 5)], attrs: [{ name: 'scales', type: AttrType.FLOATS, floats: [1, 1, 2, 3] }], opset: 7, out: [fl(1, 3, 8, 15)] },

  // recurrent
  {
    op: 'LSTM',
    in: [f(5, 2, 3), konst(FLOAT, [1, 16, 3]), konst(FLOAT, [1, 16, 4])],
    attrs: [i('hidden_size', 4)],
    out: [fl(5, 1, 2, 4), fl(1, 2, 4), fl(1, 2, 4)],
  },
  {
    op: 'GRU',
    in: [f(5, 2, 3), konst(FLOAT, [2, 12, 3]), konst(FLOAT, [2, 12, 4])],
    attrs: [i('hidden_size', 4), s('direction', 'bidirectional')],
    out: [fl(5, 2, 2, 4), fl(2, 2, 4)],
  },
  {
    op: 'RNN',
    in: [f(2, 5, 3), konst(FLOAT, [1, 4, 3]), konst(FLOAT, [1, 4, 4])],
    attrs: [i('hidden_size', 4), i('layout', 1)],
    opset: 14,
    out: [fl(2, 5, 1, 4), fl(2, 1, 4)],
    what: 'batch first (onnxruntime has no kernel for it)',
    ort: false,
  },

  // control flow: types from the bodies (old engines: the condition's bool)
  { op: 'If', in: [typed(BOOL)], attrs: [graphAttr('then_branch', branch(1)), graphAttr('else_branch', branch(2))], out: [fl(2)] },
  {
    op: 'Loop',
    in: [i64s(3), konst(BOOL, [], [1]), f(2)],
    what: 'carried values typed from the body',
    attrs: [
      graphAttr('body', {
        name: 'b',
        node: [],
        input: [vi('i', INT64, []), vi('c', BOOL, []), vi('v', FLOAT, [2])],
        output: [vi('c', BOOL, []), vi('v', FLOAT, [2])],
      }),
    ],
    out: [fl(2)],
  },
  {
    op: 'Scan',
    opset: 16,
    in: [f(2), f(3, 2)],
    what: 'state and scan outputs typed from the body',
    attrs: [
      i('num_scan_inputs', 1),
      graphAttr('body', { name: 'b', node: [], input: [vi('s', FLOAT, [2]), vi('x', FLOAT, [2])], output: [vi('s', FLOAT, [2]), vi('x', FLOAT, [2])] }),
    ],
    out: [o(FLOAT), o(FLOAT)],
    ort: false,
  },

  // type-only entries
  ...['MaxUnpool', 'GridSample', 'RoiAlign', 'MaxRoiPool', 'CenterCropPad', 'Col2Im', 'AffineGrid'].map(
    (op): Case => ({ op, in: [f(1, 2, 3, 3)], out: [o(FLOAT)], ort: false, what: 'element type only' }),
  ),

  // other domains
  { op: 'ALReLU', domain: 'ai.alrelu', in: [f('N', 3)], out: [fl('N', 3)], ort: false, what: "the converter's own function" },
  { op: 'Relu', domain: 'com.example', in: [f(2, 3)], out: [o(undefined)], ort: false, what: 'another domain: unknown (old train engine: the input type)' },
  { op: 'NoSuchOp', in: [f(2, 3)], out: [o(undefined)], ort: false, what: 'unknown op: unknown' },
];
