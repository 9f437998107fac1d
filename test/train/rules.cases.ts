/** The finite-difference cases: one or more per rule, with the awkward configurations called out by name. */
import { alreluFunction } from '../../src/convert/forms.js';
import { n, type Case } from './rules.harness.js';

const F = true; // float64
const grad = (shape: number[], more: Partial<Case['inputs'][string]> = {}) => ({ shape, grad: true, ...more });
const cst = (shape: number[], more: Partial<Case['inputs'][string]> = {}) => ({ shape, ...more });
const ints = (values: number[], shape = [values.length]) => ({ shape, ints: values });

export const ELEMENTWISE_CASES: Case[] = [
  { name: 'Add broadcast both ways [2,1,4]+[3,1]', nodes: [n('Add', ['A', 'B'])], inputs: { A: grad([2, 1, 4]), B: grad([3, 1]) }, float64: F },
  { name: 'Sub broadcast both ways', nodes: [n('Sub', ['A', 'B'])], inputs: { A: grad([3, 1]), B: grad([2, 1, 4]) }, float64: F },
  { name: 'Mul broadcast both ways', nodes: [n('Mul', ['A', 'B'])], inputs: { A: grad([2, 1, 4]), B: grad([3, 1]) }, float64: F },
  { name: 'Div broadcast both ways', nodes: [n('Div', ['A', 'B'])], inputs: { A: grad([2, 3, 1]), B: grad([4], { gen: 'positive' }) }, float64: F },
  { name: 'Mul same input twice (fan-in)', nodes: [n('Mul', ['A', 'A'])], inputs: { A: grad([3, 2]) }, float64: F },
  {
    name: 'fan-out: A*Relu(A) + A',
    nodes: [n('Relu', ['A'], ['r']), n('Mul', ['A', 'r'], ['m']), n('Add', ['m', 'A'])],
    inputs: { A: grad([3, 4], { gen: 'away' }) },
    float64: F,
  },
  {
    name: 'Add symbolic dims (runtime unbroadcast)',
    nodes: [n('Add', ['A', 'B'])],
    inputs: { A: grad([2, 1, 4], { symbolic: [0, 2] }), B: grad([3, 1], { symbolic: [0] }) },
    float64: F,
  },
  { name: 'Neg', nodes: [n('Neg', ['A'])], inputs: { A: grad([5]) }, float64: F },
  { name: 'Sum of 3 with broadcast', nodes: [n('Sum', ['A', 'B', 'C'])], inputs: { A: grad([2, 3]), B: grad([3]), C: grad([2, 1]) }, float64: F },
  { name: 'Mean of 2', nodes: [n('Mean', ['A', 'B'])], inputs: { A: grad([2, 3]), B: grad([1, 3]) } },
  {
    name: 'Max / Min',
    nodes: [n('Max', ['A', 'B'], ['M']), n('Min', ['A', 'B'], ['m']), n('Sub', ['M', 'm'])],
    inputs: { A: grad([4, 3], { gen: 'distinct' }), B: grad([3], { gen: 'distinct' }) },
    float64: F,
  },
  {
    name: 'Where',
    nodes: [n('Greater', ['C', 'Z'], ['c']), n('Where', ['c', 'A', 'B'])],
    inputs: { C: cst([3, 4]), Z: cst([1], { values: [0] }), A: grad([3, 4]), B: grad([4]) },
    float64: F,
  },
  { name: 'Expand', nodes: [n('Expand', ['A', 'S'])], inputs: { A: grad([3, 1]), S: ints([2, 3, 4]) }, float64: F },
  { name: 'Pow', nodes: [n('Pow', ['A', 'B'])], inputs: { A: grad([2, 3], { gen: 'positive' }), B: grad([3]) }, float64: F },
  { name: 'Exp', nodes: [n('Exp', ['A'])], inputs: { A: grad([2, 3]) }, float64: F },
  { name: 'Log', nodes: [n('Log', ['A'])], inputs: { A: grad([2, 3], { gen: 'positive' }) }, float64: F },
  { name: 'Sqrt', nodes: [n('Sqrt', ['A'])], inputs: { A: grad([2, 3], { gen: 'positive' }) }, float64: F },
  { name: 'Reciprocal', nodes: [n('Reciprocal', ['A'])], inputs: { A: grad([2, 3], { gen: 'positive' }) }, float64: F },
  { name: 'Identity', nodes: [n('Identity', ['A'])], inputs: { A: grad([2, 3]) }, float64: F },
  { name: 'Dropout (inference)', nodes: [n('Dropout', ['A'], ['Y', 'mask'])], inputs: { A: grad([2, 3]) }, float64: F },
  {
    name: 'Cast float32 -> float64 -> float32',
    nodes: [n('Cast', ['A'], ['d'], { to: 11 }), n('Mul', ['d', 'd'], ['e']), n('Cast', ['e'], ['Y'], { to: 1 })],
    inputs: { A: grad([2, 3]) },
  },
];

export const ACTIVATION_CASES: Case[] = [
  { name: 'Relu', nodes: [n('Relu', ['X'])], inputs: { X: grad([3, 4], { gen: 'away' }) }, float64: F },
  { name: 'LeakyRelu alpha 0.2', nodes: [n('LeakyRelu', ['X'], ['Y'], { alpha: 0.2 })], inputs: { X: grad([3, 4], { gen: 'away' }) }, float64: F },
  {
    name: 'LeakyRelu negative alpha -0.01 (fused ALReLU)',
    nodes: [n('LeakyRelu', ['X'], ['Y'], { alpha: -0.01 })],
    inputs: { X: grad([3, 4], { gen: 'away' }) },
    float64: F,
  },
  { name: 'Abs', nodes: [n('Abs', ['X'])], inputs: { X: grad([3, 4], { gen: 'away' }) }, float64: F },
  {
    name: 'ALReLU subgraph form Abs(LeakyRelu)',
    nodes: [n('LeakyRelu', ['X'], ['t'], { alpha: 0.01 }), n('Abs', ['t'])],
    inputs: { X: grad([3, 4], { gen: 'away' }) },
    float64: F,
  },
  {
    name: 'LeakyRelu feeding Abs and more (not fused)',
    nodes: [n('LeakyRelu', ['X'], ['t'], { alpha: 0.01 }), n('Abs', ['t'], ['a']), n('Add', ['a', 't'])],
    inputs: { X: grad([3, 4], { gen: 'away' }) },
    float64: F,
  },
  {
    name: 'ALReLU model-local function ai.alrelu:ALReLU',
    nodes: [n('ALReLU', ['X'], ['Y'], { alpha: 0.01 }, 'ai.alrelu')],
    inputs: { X: grad([3, 4], { gen: 'away' }) },
    functions: [alreluFunction(17)],
    extraOpsets: [{ domain: 'ai.alrelu', version: 1 }],
    float64: F,
  },
  {
    name: 'PRelu per-channel slope',
    nodes: [n('PRelu', ['X', 'S'])],
    inputs: { X: grad([2, 3, 4], { gen: 'away' }), S: grad([3, 1], { gen: 'positive' }) },
    float64: F,
  },
  { name: 'Erf', nodes: [n('Erf', ['X'])], inputs: { X: grad([3, 4]) } },
  {
    name: 'HardSigmoid',
    nodes: [n('HardSigmoid', ['X'], ['Y'], { alpha: 0.3, beta: 0.4 })],
    inputs: { X: grad([3, 4], { values: [-3, -2, -1.2, -0.5, -0.1, 0.1, 0.5, 1, 1.5, 2.5, 3, 4] }) },
  },
  { name: 'Sigmoid', nodes: [n('Sigmoid', ['X'])], inputs: { X: grad([3, 4]) }, float64: F },
  { name: 'Tanh', nodes: [n('Tanh', ['X'])], inputs: { X: grad([3, 4]) }, float64: F },
  { name: 'Softplus', nodes: [n('Softplus', ['X'])], inputs: { X: grad([3, 4]) } },
  { name: 'Elu', nodes: [n('Elu', ['X'], ['Y'], { alpha: 0.7 })], inputs: { X: grad([3, 4], { gen: 'away' }) } },
  {
    name: 'HardSwish across -3 and 3',
    nodes: [n('HardSwish', ['X'])],
    inputs: { X: grad([3, 4], { values: [-5, -3.5, -2.9, -1.5, -0.4, 0.2, 0.9, 1.7, 2.6, 2.95, 3.2, 6] }) },
  },
  { name: 'Selu', nodes: [n('Selu', ['X'], ['Y'], { alpha: 1.5, gamma: 1.2 })], inputs: { X: grad([3, 4], { gen: 'away' }) } },
  { name: 'Celu alpha 0.8', nodes: [n('Celu', ['X'], ['Y'], { alpha: 0.8 })], inputs: { X: grad([3, 4], { gen: 'away' }) } },
  { name: 'Softsign', nodes: [n('Softsign', ['X'])], inputs: { X: grad([3, 4]) } },
  {
    name: 'ThresholdedRelu alpha 0.3',
    nodes: [n('ThresholdedRelu', ['X'], ['Y'], { alpha: 0.3 })],
    inputs: { X: grad([3, 4], { values: [-1, -0.5, 0, 0.1, 0.25, 0.35, 0.5, 0.8, 1.2, -0.2, 0.6, 2] }) },
  },
  { name: 'Gelu exact (opset 20)', nodes: [n('Gelu', ['X'])], inputs: { X: grad([3, 4]) }, opset: 20 },
  { name: 'Gelu tanh approximation (opset 20)', nodes: [n('Gelu', ['X'], ['Y'], { approximate: 'tanh' })], inputs: { X: grad([3, 4]) }, opset: 20 },
  { name: 'Mish (opset 18)', nodes: [n('Mish', ['X'])], inputs: { X: grad([3, 4]) }, opset: 18 },
  {
    name: 'Clip min/max inputs',
    nodes: [n('Clip', ['X', 'lo', 'hi'])],
    inputs: { X: grad([3, 4], { gen: 'distinct' }), lo: cst([], { values: [-0.12] }), hi: cst([], { values: [0.13] }) },
    float64: F,
  },
  { name: 'Clip max only', nodes: [n('Clip', ['X', '', 'hi'])], inputs: { X: grad([3, 4], { gen: 'distinct' }), hi: cst([], { values: [0.13] }) }, float64: F },
  {
    name: 'Clip opset 10 attributes',
    nodes: [n('Clip', ['X'], ['Y'], { min: -0.12, max: 0.13 })],
    inputs: { X: grad([3, 4], { gen: 'distinct' }) },
    opset: 10,
  },
  { name: 'Softmax axis 1 of rank 3', nodes: [n('Softmax', ['X'], ['Y'], { axis: 1 })], inputs: { X: grad([2, 3, 4]) }, float64: F },
  { name: 'LogSoftmax axis -1', nodes: [n('LogSoftmax', ['X'], ['Y'], { axis: -1 })], inputs: { X: grad([2, 3, 4]) }, float64: F },
  { name: 'Softmax opset 11 (flattens from axis 1)', nodes: [n('Softmax', ['X'], ['Y'], { axis: 1 })], inputs: { X: grad([2, 3, 4]) }, float64: F, opset: 11 },
  { name: 'LogSoftmax opset 11 default axis', nodes: [n('LogSoftmax', ['X'])], inputs: { X: grad([2, 3, 4]) }, float64: F, opset: 11 },
];

const gemm = (tA: number, tB: number, aShape: number[], bShape: number[], cShape: number[] | null, opset = 17): Case => ({
  name: `Gemm transA=${tA} transB=${tB} alpha 0.7 beta 1.3 C ${cShape ? `[${cShape}]` : 'none'}${opset !== 17 ? ` opset ${opset}` : ''}`,
  nodes: [n('Gemm', cShape ? ['A', 'B', 'C'] : ['A', 'B'], ['Y'], { transA: tA, transB: tB, alpha: 0.7, beta: 1.3 })],
  inputs: { A: grad(aShape), B: grad(bShape), ...(cShape ? { C: grad(cShape) } : {}) },
  float64: F,
  opset,
});

export const LINEAR_CASES: Case[] = [
  gemm(0, 0, [3, 4], [4, 5], [5]),
  gemm(0, 1, [3, 4], [5, 4], [3, 1]),
  gemm(1, 0, [4, 3], [4, 5], [3, 5]),
  gemm(1, 1, [4, 3], [5, 4], [1]),
  gemm(0, 0, [3, 4], [4, 5], null),
  gemm(1, 1, [4, 3], [5, 4], [5], 9),
  { name: 'MatMul 2-D', nodes: [n('MatMul', ['A', 'B'])], inputs: { A: grad([3, 4]), B: grad([4, 2]) }, float64: F },
  { name: 'MatMul batched broadcast [2,1,3,4]x[3,4,5]', nodes: [n('MatMul', ['A', 'B'])], inputs: { A: grad([2, 1, 3, 4]), B: grad([3, 4, 5]) }, float64: F },
  { name: 'MatMul batched broadcast [3,4]x[2,4,5]', nodes: [n('MatMul', ['A', 'B'])], inputs: { A: grad([3, 4]), B: grad([2, 4, 5]) }, float64: F },
  { name: 'MatMul 1-D x 3-D', nodes: [n('MatMul', ['A', 'B'])], inputs: { A: grad([4]), B: grad([2, 4, 3]) }, float64: F },
  { name: 'MatMul 3-D x 1-D', nodes: [n('MatMul', ['A', 'B'])], inputs: { A: grad([2, 3, 4]), B: grad([4]) }, float64: F },
  { name: 'MatMul 1-D x 1-D', nodes: [n('MatMul', ['A', 'B'])], inputs: { A: grad([4]), B: grad([4]) }, float64: F },
  { name: 'MatMul symbolic batch', nodes: [n('MatMul', ['A', 'B'])], inputs: { A: grad([2, 3, 4], { symbolic: [0] }), B: grad([4, 2]) }, float64: F },
];

const conv = (name: string, x: number[], w: number[], attrs: Record<string, number | number[] | string>, bias = true, more: Partial<Case> = {}): Case => ({
  name: `Conv ${name}`,
  nodes: [n('Conv', bias ? ['X', 'W', 'B'] : ['X', 'W'], ['Y'], attrs)],
  inputs: { X: grad(x), W: grad(w), ...(bias ? { B: grad([w[0]!]) } : {}) },
  ...more,
});

export const CONV_CASES: Case[] = [
  conv('stride 2 odd sizes asymmetric pads', [2, 3, 7, 6], [4, 3, 3, 2], { strides: [2, 2], pads: [1, 0, 1, 1] }),
  conv('stride 3 leftover rows (output_padding)', [1, 2, 8, 7], [3, 2, 2, 3], { strides: [3, 2] }),
  conv('dilations 2 with pads', [1, 2, 7, 7], [2, 2, 3, 3], { dilations: [2, 2], pads: [2, 1, 2, 1] }),
  conv('groups 2', [2, 4, 5, 5], [6, 2, 3, 3], { group: 2, pads: [1, 1, 1, 1] }),
  conv('depthwise stride 2', [2, 3, 6, 5], [3, 1, 3, 3], { group: 3, strides: [2, 2], pads: [1, 1, 1, 1] }),
  conv('depthwise multiplier 2 with dilation', [1, 2, 7, 6], [4, 1, 2, 2], { group: 2, dilations: [2, 1] }),
  conv('SAME_UPPER stride 2 odd', [1, 2, 7, 5], [3, 2, 3, 2], { auto_pad: 'SAME_UPPER', strides: [2, 2] }),
  conv('SAME_LOWER stride 2 even kernel', [1, 2, 6, 5], [2, 2, 2, 4], { auto_pad: 'SAME_LOWER', strides: [2, 1] }),
  conv('VALID stride 2', [1, 2, 7, 6], [2, 2, 3, 3], { auto_pad: 'VALID', strides: [2, 2] }, false),
  conv('1-D stride 2', [2, 3, 9], [2, 3, 3], { strides: [2], pads: [1, 0] }),
  conv('3-D', [1, 2, 4, 3, 4], [2, 2, 2, 2, 2], { strides: [2, 1, 2], pads: [0, 1, 0, 1, 0, 1] }, true, { maxElems: 60 }),
  conv('1x1 (weight gradient straight from X)', [2, 3, 4, 5], [4, 3, 1, 1], {}),
  conv('1x1 stride 2 odd size (strided X)', [2, 3, 5, 7], [4, 3, 1, 1], { strides: [2, 2] }),
  conv('1x1 pads (patches)', [1, 2, 3, 3], [2, 2, 1, 1], { pads: [1, 0, 0, 1] }, false),
  conv('groups 3 stride 2 dilations', [2, 6, 8, 7], [9, 2, 2, 3], { group: 3, strides: [2, 1], dilations: [1, 2], pads: [0, 1, 1, 0] }),
  // the input gradient as a Conv with flipped weights (chosen on CPU for 16+ channels on 32x32+ images)
  conv('input gradient as Conv: asymmetric pads', [2, 3, 6, 5], [4, 3, 3, 2], { pads: [1, 0, 2, 1] }, true, { grad: { convInput: 'conv' } }),
  conv('input gradient as Conv: groups 2 dilations 2', [1, 4, 7, 6], [6, 2, 3, 2], { group: 2, dilations: [2, 1], pads: [2, 0, 1, 1] }, false, {
    grad: { convInput: 'conv' },
  }),
  conv('input gradient as Conv: depthwise multiplier 2', [2, 3, 5, 5], [6, 1, 3, 3], { group: 3, pads: [1, 1, 1, 1] }, true, { grad: { convInput: 'conv' } }),
  conv('input gradient as Conv: 1-D', [2, 3, 9], [2, 3, 3], { pads: [2, 0] }, true, { grad: { convInput: 'conv' } }),
  conv('input gradient as Conv: 3-D', [1, 2, 4, 3, 4], [2, 2, 2, 2, 2], { pads: [0, 1, 0, 1, 0, 1] }, true, { maxElems: 60, grad: { convInput: 'conv' } }),
  conv('16 channels stride 2 dilations', [2, 16, 6, 7], [3, 16, 3, 2], { strides: [2, 1], dilations: [1, 2], pads: [1, 0, 1, 1] }, true, { maxElems: 80 }),
  conv('16 channels symbolic batch', [3, 16, 4, 4], [2, 16, 3, 3], { pads: [1, 1, 1, 1] }, false, {
    maxElems: 80,
    inputs: { X: grad([3, 16, 4, 4], { symbolic: [0] }), W: grad([2, 16, 3, 3]) },
  }),
  // the depthwise weight gradient as one depthwise Conv over batch x channels (the cpu step's form)
  conv('depthwise weight gradient as correlation: pads', [2, 3, 6, 5], [3, 1, 3, 3], { group: 3, pads: [1, 1, 1, 1] }, true, {
    grad: { depthwiseWeight: 'correlation' },
  }),
  conv(
    'depthwise weight gradient as correlation: stride 2 odd, asymmetric pads',
    [2, 2, 7, 6],
    [2, 1, 3, 2],
    { group: 2, strides: [2, 2], pads: [1, 0, 0, 1] },
    false,
    {
      grad: { depthwiseWeight: 'correlation' },
    },
  ),
  conv(
    'depthwise weight gradient as correlation: stride 3 leftover rows, dilations 2',
    [1, 2, 9, 8],
    [2, 1, 2, 3],
    { group: 2, strides: [3, 2], dilations: [2, 1] },
    false,
    {
      grad: { depthwiseWeight: 'correlation' },
    },
  ),
  // many channels, few positions: the batch folded into the weight gradient's GEMMs
  conv('batch folded into the weight GEMMs: pads', [2, 6, 3, 4], [5, 6, 3, 3], { pads: [1, 1, 1, 1] }),
  conv('batch folded into the weight GEMMs: stride 2 dilations', [2, 5, 7, 6], [6, 5, 2, 3], { strides: [2, 2], dilations: [2, 1], pads: [0, 1, 1, 0] }, false),
  // strided, ungrouped: the weight gradient as one Conv a dimension up (X as one image of N channels, dY as kernels)
  conv('7x7 stride 2 stem, symbolic batch', [2, 3, 11, 10], [4, 3, 7, 7], { strides: [2, 2], pads: [3, 3, 3, 3] }, false, {
    maxElems: 80,
    inputs: { X: grad([2, 3, 11, 10], { symbolic: [0] }), W: grad([4, 3, 7, 7]) },
  }),
  conv('stride 3 and 2, dilations 2 and 1, leftover rows', [2, 2, 11, 8], [3, 2, 2, 3], { strides: [3, 2], dilations: [2, 1], pads: [1, 0, 0, 2] }),
  conv('batch folded into the weight GEMMs: symbolic batch', [3, 6, 3, 3], [4, 6, 2, 2], {}, false, {
    inputs: { X: grad([3, 6, 3, 3], { symbolic: [0] }), W: grad([4, 6, 2, 2]) },
  }),
  conv('no bias, symbolic batch', [2, 2, 5, 5], [3, 2, 3, 3], { pads: [1, 1, 1, 1] }, false, {
    inputs: { X: grad([2, 2, 5, 5], { symbolic: [0] }), W: grad([3, 2, 3, 3]) },
  }),
  {
    name: 'ConvTranspose stride 2 pads output_padding',
    nodes: [n('ConvTranspose', ['X', 'W', 'B'], ['Y'], { strides: [2, 2], pads: [1, 0, 0, 1], output_padding: [1, 0] })],
    inputs: { X: grad([2, 3, 3, 4]), W: grad([3, 2, 3, 2]), B: grad([2]) },
  },
  {
    name: 'ConvTranspose groups 2 dilations 2',
    nodes: [n('ConvTranspose', ['X', 'W'], ['Y'], { group: 2, dilations: [2, 1], strides: [1, 2] })],
    inputs: { X: grad([1, 4, 3, 3]), W: grad([4, 3, 2, 2]) },
  },
  {
    name: 'ConvTranspose 1-D stride 3 large end pad',
    nodes: [n('ConvTranspose', ['X', 'W'], ['Y'], { strides: [3], pads: [1, 2] })],
    inputs: { X: grad([2, 2, 4]), W: grad([2, 3, 3]) },
  },
];

const pool = (op: string, name: string, x: number[], attrs: Record<string, number | number[] | string>, more: Partial<Case> = {}): Case => ({
  name: `${op} ${name}`,
  nodes: [n(op, ['X'], ['Y'], attrs)],
  inputs: { X: grad(x, { gen: 'distinct' }) },
  ...more,
});

export const POOL_CASES: Case[] = [
  pool('MaxPool', 'overlapping 3x3 stride 2', [2, 2, 7, 7], { kernel_shape: [3, 3], strides: [2, 2] }),
  pool('MaxPool', 'overlapping 3x3 stride 1 pads', [1, 2, 5, 6], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
  pool('MaxPool', 'ceil_mode stride 2 odd', [1, 2, 6, 7], { kernel_shape: [2, 3], strides: [2, 2], ceil_mode: 1 }),
  pool('MaxPool', 'dilations 2', [1, 1, 7, 7], { kernel_shape: [2, 2], dilations: [2, 2] }),
  pool('MaxPool', 'SAME_UPPER stride 2', [1, 2, 5, 5], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }),
  pool('MaxPool', '1-D', [2, 3, 9], { kernel_shape: [3], strides: [2] }),
  pool('MaxPool', 'symbolic batch', [2, 2, 5, 5], { kernel_shape: [2, 2] }, { inputs: { X: grad([2, 2, 5, 5], { gen: 'distinct', symbolic: [0] }) } }),
  {
    ...pool('MaxPool', 'with Indices output', [1, 2, 5, 5], { kernel_shape: [3, 3], strides: [2, 2] }),
    nodes: [n('MaxPool', ['X'], ['Y', 'I'], { kernel_shape: [3, 3], strides: [2, 2] })],
  },
  // Indices numbered column by column: the Indices form must not scatter at them
  {
    ...pool('MaxPool', 'with column-major Indices output (storage_order 1)', [1, 2, 5, 7], { kernel_shape: [3, 3], strides: [2, 2] }),
    nodes: [n('MaxPool', ['X'], ['Y', 'I'], { kernel_shape: [3, 3], strides: [2, 2], storage_order: 1 })],
  },
  pool('MaxPool', 'tiles 2x2 stride 2 odd size (floor drops a row)', [2, 3, 7, 6], { kernel_shape: [2, 2], strides: [2, 2] }),
  pool('MaxPool', 'tiles 3x3 exactly (SpaceToDepth windows)', [2, 2, 6, 3], { kernel_shape: [3, 3], strides: [3, 3] }),
  pool('MaxPool', 'tiles 3x2 ceil_mode with pads', [1, 2, 7, 7], { kernel_shape: [3, 2], strides: [3, 2], pads: [1, 0, 0, 1], ceil_mode: 1 }),
  pool(
    'MaxPool',
    'tiles 1-D symbolic batch',
    [3, 2, 9],
    { kernel_shape: [2], strides: [2] },
    { inputs: { X: grad([3, 2, 9], { gen: 'distinct', symbolic: [0] }) } },
  ),
  pool(
    'MaxPool',
    'negative values with pads (pads never win)',
    [1, 1, 4, 4],
    { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    { inputs: { X: grad([1, 1, 4, 4], { gen: 'distinct' }) } },
  ),
  pool('AveragePool', 'overlapping pads exclude pad', [2, 2, 6, 5], { kernel_shape: [3, 3], strides: [2, 1], pads: [1, 1, 1, 1] }),
  pool('AveragePool', 'overlapping pads include pad', [1, 2, 6, 5], { kernel_shape: [3, 2], strides: [2, 2], pads: [1, 0, 1, 1], count_include_pad: 1 }),
  pool('AveragePool', 'ceil_mode', [1, 2, 7, 6], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }),
  pool('AveragePool', 'ceil_mode include pad', [1, 1, 7, 6], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 }),
  pool('AveragePool', 'SAME_UPPER stride 2', [1, 2, 5, 6], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }),
  pool('AveragePool', '1-D', [2, 2, 8], { kernel_shape: [3], strides: [2] }),
  { name: 'GlobalAveragePool', nodes: [n('GlobalAveragePool', ['X'])], inputs: { X: grad([2, 3, 4, 3]) } },
  { name: 'GlobalAveragePool symbolic', nodes: [n('GlobalAveragePool', ['X'])], inputs: { X: grad([2, 3, 4, 3], { symbolic: [0, 2, 3] }) } },
  { name: 'GlobalMaxPool', nodes: [n('GlobalMaxPool', ['X'])], inputs: { X: grad([2, 3, 4, 3], { gen: 'distinct' }) } },
  {
    name: 'BatchNormalization inference, scale/bias/input',
    nodes: [n('BatchNormalization', ['X', 'S', 'B', 'M', 'V'], ['Y'], { epsilon: 1e-3 })],
    inputs: { X: grad([2, 3, 4, 3]), S: grad([3]), B: grad([3]), M: cst([3]), V: cst([3], { gen: 'positive' }) },
    float64: F,
  },
  {
    name: 'LayerNormalization axis -1',
    nodes: [n('LayerNormalization', ['X', 'S', 'B'], ['Y'], { epsilon: 1e-3 })],
    inputs: { X: grad([2, 3, 4]), S: grad([4]), B: grad([4]) },
    float64: F,
  },
  {
    name: 'LayerNormalization axis 1 (over the last two axes)',
    nodes: [n('LayerNormalization', ['X', 'S'], ['Y'], { axis: 1 })],
    inputs: { X: grad([2, 3, 4]), S: grad([3, 4]) },
    float64: F,
  },
  {
    name: 'InstanceNormalization',
    nodes: [n('InstanceNormalization', ['X', 'S', 'B'], ['Y'], { epsilon: 1e-3 })],
    inputs: { X: grad([2, 3, 3, 2]), S: grad([3]), B: grad([3]) },
  },
  { name: 'LRN size 3 (AlexNet-style)', nodes: [n('LRN', ['X'], ['Y'], { size: 3, alpha: 0.5, beta: 0.75, bias: 1.5 })], inputs: { X: grad([2, 5, 2, 2]) } },
  {
    name: 'LRN size 5 over 4 channels (windows cut at both ends)',
    nodes: [n('LRN', ['X'], ['Y'], { size: 5, alpha: 0.3, beta: 0.6, bias: 1.25 })],
    inputs: { X: grad([2, 4, 3, 1]) },
  },
  {
    name: 'BatchNormalization rank 2',
    nodes: [n('BatchNormalization', ['X', 'S', 'B', 'M', 'V'], ['Y'])],
    inputs: { X: grad([4, 3]), S: grad([3]), B: grad([3]), M: cst([3]), V: cst([3], { gen: 'positive' }) },
    float64: F,
  },
];

/** The same MaxPool cases through the Indices + ScatterElements(reduction='add') form. */
export const MAXPOOL_INDICES_CASES: Case[] = POOL_CASES.filter((c) => c.name.startsWith('MaxPool')).map((c) => ({
  ...c,
  name: `${c.name} (indices form)`,
  grad: { maxPool: 'indices' as const },
  float64: true,
}));

export const SHAPE_CASES: Case[] = [
  { name: 'Flatten axis 2', nodes: [n('Flatten', ['X'], ['Y'], { axis: 2 })], inputs: { X: grad([2, 3, 2, 2]) }, float64: F },
  { name: 'Reshape with 0 and -1', nodes: [n('Reshape', ['X', 'S'])], inputs: { X: grad([2, 3, 4]), S: ints([0, -1, 2]) }, float64: F },
  { name: 'Reshape symbolic', nodes: [n('Reshape', ['X', 'S'])], inputs: { X: grad([2, 3, 4], { symbolic: [0] }), S: ints([-1, 4]) }, float64: F },
  { name: 'Transpose perm', nodes: [n('Transpose', ['X'], ['Y'], { perm: [2, 0, 1] })], inputs: { X: grad([2, 3, 4]) }, float64: F },
  { name: 'Transpose default (reverse)', nodes: [n('Transpose', ['X'])], inputs: { X: grad([2, 3, 4]) }, float64: F },
  {
    name: 'Concat axis 1, one constant operand',
    nodes: [n('Concat', ['A', 'C', 'B'], ['Y'], { axis: 1 })],
    inputs: { A: grad([2, 2, 3]), C: cst([2, 1, 3]), B: grad([2, 3, 3]) },
    float64: F,
  },
  {
    name: 'Concat symbolic axis -1',
    nodes: [n('Concat', ['A', 'B'], ['Y'], { axis: -1 })],
    inputs: { A: grad([2, 2], { symbolic: [1] }), B: grad([2, 3], { symbolic: [1] }) },
    float64: F,
  },
  {
    name: 'Split sizes, one output unused',
    nodes: [n('Split', ['X', 'S'], ['a', 'b', 'c'], { axis: 1 })],
    inputs: { X: grad([2, 6]), S: ints([1, 3, 2]) },
    outputs: ['a', 'c'],
    float64: F,
  },
  {
    name: 'Split opset 11 equal parts',
    nodes: [n('Split', ['X'], ['a', 'b'], { axis: 0 })],
    inputs: { X: grad([4, 3]) },
    outputs: ['a', 'b'],
    float64: F,
    opset: 11,
  },
  {
    name: 'Slice unit steps',
    nodes: [n('Slice', ['X', 's', 'e', 'a'])],
    inputs: { X: grad([4, 5, 3]), s: ints([1, -4]), e: ints([3, 100]), a: ints([0, 1]) },
    float64: F,
  },
  {
    name: 'Slice steps 2 and -1',
    nodes: [n('Slice', ['X', 's', 'e', 'a', 'p'])],
    inputs: { X: grad([5, 6]), s: ints([0, -1]), e: ints([5, 0]), a: ints([0, 1]), p: ints([2, -1]) },
    float64: F,
  },
  {
    name: 'Slice symbolic dims',
    nodes: [n('Slice', ['X', 's', 'e', 'a'])],
    inputs: { X: grad([4, 5], { symbolic: [0, 1] }), s: ints([1]), e: ints([-1]), a: ints([1]) },
    float64: F,
  },
  {
    name: 'Slice opset 9 attributes',
    nodes: [n('Slice', ['X'], ['Y'], { starts: [1, 0], ends: [3, 2], axes: [0, 1] })],
    inputs: { X: grad([4, 5]) },
    float64: F,
    opset: 9,
  },
  { name: 'Squeeze', nodes: [n('Squeeze', ['X', 'a'])], inputs: { X: grad([2, 1, 3]), a: ints([1]) }, float64: F },
  { name: 'Unsqueeze', nodes: [n('Unsqueeze', ['X', 'a'])], inputs: { X: grad([2, 3]), a: ints([0, 3]) }, float64: F },
  { name: 'Unsqueeze opset 11 attribute', nodes: [n('Unsqueeze', ['X'], ['Y'], { axes: [1] })], inputs: { X: grad([2, 3]) }, float64: F, opset: 11 },
  { name: 'Pad constant', nodes: [n('Pad', ['X', 'p'])], inputs: { X: grad([2, 3, 4]), p: ints([0, 1, 2, 1, 0, 1]) }, float64: F },
  { name: 'Pad negative pads (crop)', nodes: [n('Pad', ['X', 'p'])], inputs: { X: grad([3, 5]), p: ints([1, -1, -1, 2]) }, float64: F },
  { name: 'Tile repeats [2, 1, 3]', nodes: [n('Tile', ['X', 'r'])], inputs: { X: grad([2, 3, 2]), r: ints([2, 1, 3]) }, float64: F },
  { name: 'Tile symbolic batch', nodes: [n('Tile', ['X', 'r'])], inputs: { X: grad([2, 3, 2], { symbolic: [0] }), r: ints([1, 2, 2]) }, float64: F },
  {
    name: 'Resize nearest x2 x3 (half_pixel, round_prefer_floor), symbolic batch',
    nodes: [n('Resize', ['X', '', 's'], ['Y'], { mode: 'nearest' })],
    inputs: { X: grad([2, 2, 2, 3], { symbolic: [0] }), s: cst([4], { values: [1, 1, 2, 3] }) },
  },
  {
    name: 'Resize nearest by sizes (asymmetric, floor)',
    nodes: [n('Resize', ['X', '', '', 'z'], ['Y'], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' })],
    inputs: { X: grad([2, 2, 3, 2]), z: ints([2, 2, 6, 6]) },
  },
  {
    name: 'Resize linear x2 (half_pixel: bilinear, align_corners=False)',
    nodes: [n('Resize', ['X', '', 's'], ['Y'], { mode: 'linear' })],
    inputs: { X: grad([1, 2, 3, 4]), s: cst([4], { values: [1, 1, 2, 2] }) },
  },
  {
    name: 'Resize linear align_corners by sizes 3x4 -> 5x7',
    nodes: [n('Resize', ['X', '', '', 'z'], ['Y'], { mode: 'linear', coordinate_transformation_mode: 'align_corners' })],
    inputs: { X: grad([1, 2, 3, 4]), z: ints([1, 2, 5, 7]) },
  },
  {
    name: 'Resize linear asymmetric x1.5 on the last axis only',
    nodes: [n('Resize', ['X', '', 's'], ['Y'], { mode: 'linear', coordinate_transformation_mode: 'asymmetric' })],
    inputs: { X: grad([2, 3, 4]), s: cst([3], { values: [1, 1, 1.5] }) },
  },
  {
    name: 'Resize linear downsample x0.5 (pytorch_half_pixel)',
    nodes: [n('Resize', ['X', '', 's'], ['Y'], { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' })],
    inputs: { X: grad([1, 1, 4, 6]), s: cst([4], { values: [1, 1, 0.5, 0.5] }) },
  },
  {
    name: 'Resize nearest x1.5 (half_pixel, round_prefer_ceil)',
    nodes: [n('Resize', ['X', '', 's'], ['Y'], { mode: 'nearest', nearest_mode: 'round_prefer_ceil' })],
    inputs: { X: grad([1, 1, 4, 4]), s: cst([4], { values: [1, 1, 1.5, 1.5] }) },
  },
  {
    name: 'Resize nearest downsample by sizes 5x7 -> 2x3 (asymmetric, ceil)',
    nodes: [n('Resize', ['X', '', '', 'z'], ['Y'], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'ceil' })],
    inputs: { X: grad([1, 1, 5, 7]), z: ints([1, 1, 2, 3]) },
  },
  {
    name: 'Resize cubic x2 (half_pixel, a = -0.75)',
    nodes: [n('Resize', ['X', '', 's'], ['Y'], { mode: 'cubic' })],
    inputs: { X: grad([1, 1, 4, 5]), s: cst([4], { values: [1, 1, 2, 2] }) },
  },
  {
    name: 'Resize cubic x1.5, a = -0.5, exclude_outside (asymmetric)',
    nodes: [n('Resize', ['X', '', 's'], ['Y'], { mode: 'cubic', cubic_coeff_a: -0.5, exclude_outside: 1, coordinate_transformation_mode: 'asymmetric' })],
    inputs: { X: grad([1, 1, 4, 4]), s: cst([4], { values: [1, 1, 1.5, 1.5] }) },
  },
  {
    name: 'Resize-10 nearest downsample x0.5',
    nodes: [n('Resize', ['X', 's'], ['Y'], { mode: 'nearest' })],
    inputs: { X: grad([1, 1, 4, 6]), s: cst([4], { values: [1, 1, 0.5, 0.5] }) },
    opset: 10,
  },
  {
    name: 'Upsample opset 9 nearest x2',
    nodes: [n('Upsample', ['X', 's'], ['Y'], { mode: 'nearest' })],
    inputs: { X: grad([1, 2, 2, 3]), s: cst([4], { values: [1, 1, 2, 2] }) },
    opset: 9,
  },
  { name: 'Pad edge', nodes: [n('Pad', ['X', 'p'], ['Y'], { mode: 'edge' })], inputs: { X: grad([3, 4]), p: ints([1, 2, 2, 1]) }, float64: F },
  { name: 'Pad edge on a dim of 1', nodes: [n('Pad', ['X', 'p'], ['Y'], { mode: 'edge' })], inputs: { X: grad([1, 3]), p: ints([2, 1, 1, 0]) }, float64: F },
  { name: 'Pad reflect', nodes: [n('Pad', ['X', 'p'], ['Y'], { mode: 'reflect' })], inputs: { X: grad([4, 5]), p: ints([2, 1, 1, 3]) }, float64: F },
  {
    name: 'Pad reflect, axes input (opset 18)',
    nodes: [n('Pad', ['X', 'p', '', 'a'], ['Y'], { mode: 'reflect' })],
    inputs: { X: grad([2, 3, 4]), p: ints([1, 2]), a: ints([-1]) },
    float64: F,
    opset: 18,
  },
  { name: 'Pad wrap (opset 19)', nodes: [n('Pad', ['X', 'p'], ['Y'], { mode: 'wrap' })], inputs: { X: grad([3, 4]), p: ints([1, 1, 2, 3]) }, opset: 19 },
  { name: 'Pad opset 10 attribute', nodes: [n('Pad', ['X'], ['Y'], { pads: [1, 0, 0, 2] })], inputs: { X: grad([3, 4]) }, opset: 10, float64: F },
];

export const REDUCE_CASES: Case[] = [
  { name: 'ReduceSum axes input keepdims 1', nodes: [n('ReduceSum', ['X', 'a'])], inputs: { X: grad([2, 3, 4]), a: ints([0, 2]) }, float64: F },
  {
    name: 'ReduceSum keepdims 0 negative axis',
    nodes: [n('ReduceSum', ['X', 'a'], ['Y'], { keepdims: 0 })],
    inputs: { X: grad([2, 3, 4]), a: ints([-2]) },
    float64: F,
  },
  { name: 'ReduceSum noop_with_empty_axes', nodes: [n('ReduceSum', ['X'], ['Y'], { noop_with_empty_axes: 1 })], inputs: { X: grad([2, 3]) }, float64: F },
  {
    name: 'ReduceSum opset 11 attribute',
    nodes: [n('ReduceSum', ['X'], ['Y'], { axes: [1], keepdims: 0 })],
    inputs: { X: grad([2, 3, 4]) },
    float64: F,
    opset: 11,
  },
  { name: 'ReduceMean keepdims 0 axes 1', nodes: [n('ReduceMean', ['X'], ['Y'], { axes: [1], keepdims: 0 })], inputs: { X: grad([2, 3, 4]) }, float64: F },
  { name: 'ReduceMean all', nodes: [n('ReduceMean', ['X'], ['Y'], { keepdims: 0 })], inputs: { X: grad([2, 3, 4]) }, float64: F },
  { name: 'ReduceMean symbolic', nodes: [n('ReduceMean', ['X'], ['Y'], { axes: [0, 2] })], inputs: { X: grad([2, 3, 4], { symbolic: [0, 2] }) }, float64: F },
  {
    name: 'ReduceMean opset 18 axes input',
    nodes: [n('ReduceMean', ['X', 'a'], ['Y'], { keepdims: 0 })],
    inputs: { X: grad([2, 3, 4]), a: ints([2]) },
    float64: F,
    opset: 18,
  },
  { name: 'ReduceSumSquare', nodes: [n('ReduceSumSquare', ['X'], ['Y'], { axes: [1] })], inputs: { X: grad([2, 3]) }, float64: F },
  { name: 'ReduceL1', nodes: [n('ReduceL1', ['X'], ['Y'], { axes: [1] })], inputs: { X: grad([2, 3], { gen: 'away' }) }, float64: F },
  { name: 'ReduceL2 (embedding normalization)', nodes: [n('ReduceL2', ['X'], ['Y'], { axes: [1], keepdims: 0 })], inputs: { X: grad([2, 3]) }, float64: F },
  { name: 'ReduceLogSumExp', nodes: [n('ReduceLogSumExp', ['X'], ['Y'], { axes: [1], keepdims: 0 })], inputs: { X: grad([2, 3]) }, float64: F },
  { name: 'ReduceMax', nodes: [n('ReduceMax', ['X'], ['Y'], { axes: [0] })], inputs: { X: grad([3, 4], { gen: 'distinct' }) }, float64: F },
  {
    name: 'Gather axis 0 embedding, repeated and negative indices',
    nodes: [n('Gather', ['E', 'I'])],
    inputs: { E: grad([5, 3]), I: ints([0, 2, 2, -1, 4, 0], [2, 3]) },
    float64: F,
  },
  { name: 'Gather axis 1', nodes: [n('Gather', ['E', 'I'], ['Y'], { axis: 1 })], inputs: { E: grad([2, 4, 3]), I: ints([3, 1, 3]) }, float64: F },
  { name: 'Gather scalar index', nodes: [n('Gather', ['E', 'I'], ['Y'], { axis: 1 })], inputs: { E: grad([2, 4]), I: ints([2], []) }, float64: F },
  {
    name: 'GatherElements (NLL-style pick)',
    nodes: [n('GatherElements', ['X', 'I'], ['Y'], { axis: 1 })],
    inputs: { X: grad([3, 4]), I: ints([1, 1, 3, 0, -1, 2], [3, 2]) },
    float64: F,
  },
];

export const ALL_CASES: Case[] = [
  ...ELEMENTWISE_CASES,
  ...ACTIVATION_CASES,
  ...LINEAR_CASES,
  ...CONV_CASES,
  ...POOL_CASES,
  ...MAXPOOL_INDICES_CASES,
  ...SHAPE_CASES,
  ...REDUCE_CASES,
];
