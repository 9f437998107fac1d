/**
 * A new classifier head for a new label set: the last linear layer that produces the logits (a Gemm, or a
 * MatMul followed by an Add of a bias), possibly followed by Softmax / LogSoftmax / Flatten / Identity
 * before the graph output, gets a freshly initialised weight and bias with N outputs.
 *
 * The initialisation is PyTorch's default for nn.Linear(fan_in, N): weight and bias ~ U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) (kaiming_uniform_ with a = sqrt(5) gives exactly that bound for the weight). Values come
 * from mulberry32(seed): the weight first, in PyTorch's [out, in] order whatever the stored layout, then
 * the bias; so a transB=0 Gemm, a transB=1 Gemm and a MatMul + Add built from one seed compute the same
 * function. Names of nodes and initializers stay, so --freeze / --train-only patterns keep matching.
 */
import { UserError } from '../errors.js';
import { mulberry32 } from '../data/prng.js';
import { attrInt, isDefaultDomain } from '../onnx/attrs.js';
import { DataType, dtypeName } from '../onnx/dtype.js';
import { decodeModel, encodeModel } from '../onnx/schema.js';
import { floatToBf16, floatToHalf } from '../onnx/tensor.js';
import { int, type ModelProto, type TensorProto, type ValueInfo } from '../onnx/types.js';
import { Graph } from '../onnx/graph.js';
import { nodeLabel } from '../onnx/walk.js';

/** More classes than any label file may name (labels are capped at 2^20 - 1, see data/labels.ts). */
export const MAX_HEAD_CLASSES = 2 ** 20;
/** A head weight above this many values (256 MiB of float32) is refused before it is allocated. */
const MAX_HEAD_VALUES = 2 ** 26;

/** Ops that may sit between the head and the graph output without changing what the class axis means. */
const PASS_THROUGH = new Set(['Softmax', 'LogSoftmax', 'Flatten', 'Identity']);

export interface HeadOptions {
  /** outputs of the new head (the new number of classes), at least 2 */
  numClasses: number;
  /** seed of the initialisation */
  seed: number;
  /** the graph output whose head is replaced; default the first */
  output?: string;
  /** names the model in messages */
  file?: string;
}

export interface HeadReplacement {
  /** the graph output whose classes changed */
  output: string;
  form: 'Gemm' | 'MatMul+Add';
  /** the replaced nodes (names, or Op#index where unnamed), head first */
  nodes: string[];
  /** nodes between the head and the output, left as they were */
  passedThrough: string[];
  weight: string;
  bias: string | null;
  /** in features (fan_in) */
  features: number;
  oldClasses: number;
  newClasses: number;
  /** the uniform's bound, 1/sqrt(fan_in) */
  bound: number;
  seed: number;
}

const FLOATS = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/** Little-endian bytes of `values` in a float element type (float64 values only for a double tensor). */
function encodeFloats(values: Float32Array | Float64Array, dataType: number): Uint8Array {
  switch (dataType) {
    case DataType.DOUBLE:
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case DataType.FLOAT16:
      return new Uint8Array(Uint16Array.from(values, floatToHalf).buffer);
    case DataType.BFLOAT16:
      return new Uint8Array(Uint16Array.from(values, floatToBf16).buffer);
    default:
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  }
}

function setData(t: TensorProto, dims: number[], values: Float32Array | Float64Array): void {
  for (const k of ['floatData', 'doubleData', 'int32Data', 'externalData', 'dataLocation'] as const) delete (t as Record<string, unknown>)[k];
  t.dims = dims;
  t.rawData = encodeFloats(values, t.dataType!);
}

/** The last dim of a declared shape set to n (a shape-less declaration stays shape-less). */
function setLastDim(v: ValueInfo | undefined, n: number): void {
  const dims = v?.type?.tensorType?.shape?.dim;
  if (!dims?.length) return;
  dims[dims.length - 1] = { dimValue: n };
}

/**
 * The model with its classifier head replaced (the input model is not modified), and what was done.
 * Refused with a UserError: N < 2 or too large, no recognisable head, a head or a value after it that
 * feeds more than one consumer, weights shared with other nodes or not stored as float initializers.
 */
export function replaceHead(model: ModelProto, o: HeadOptions): { model: ModelProto; report: HeadReplacement } {
  const file = o.file ?? 'model';
  const n = o.numClasses;
  if (!Number.isInteger(n) || n < 2) throw new UserError('number of classes', `expected an integer of at least 2, found ${n}`);
  if (n > MAX_HEAD_CLASSES) throw new UserError('number of classes', `${n} is above ${MAX_HEAD_CLASSES}, the most classes supported`);
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff) throw new UserError('seed', `expected an integer from 0 to 4294967295, found ${o.seed}`);
  const copy = decodeModel(encodeModel(model));
  const g = copy.graph;
  if (!g) throw new UserError(file, 'has no graph');
  const nodes = g.node ?? [];
  const outName = o.output ?? g.output?.[0]?.name;
  const graphOut = (g.output ?? []).find((v) => v.name === outName);
  if (outName === undefined || !graphOut) throw new UserError(file, `has no graph output '${outName ?? ''}'`);

  // uses: node inputs, captures by subgraphs at any depth, and graph outputs
  const graph = Graph.of(g);
  const at = new Map(nodes.map((nd, i) => [nd, i]));
  /** index of the node that writes `v` */
  const producer = (v: string): number | undefined => {
    const nd = graph.producer(v);
    return nd ? at.get(nd) : undefined;
  };
  const inits = new Map((g.initializer ?? []).map((t) => [t.name ?? '', t]));
  const label = (i: number) => nodeLabel(nodes[i]!, i);
  const expected = 'expected the logits to come from a Gemm, or a MatMul + Add, possibly followed by Softmax, LogSoftmax, Flatten or Identity';
  const single = (value: string, what: string) => {
    const k = graph.uses(value);
    if (k > 1)
      throw new UserError(
        file,
        `the classifier head's ${what} '${value}' feeds ${k} consumers; replacing the head would change what the others see, so it is refused`,
      );
  };

  // Walk back from the output through the pass-through ops.
  let value = outName;
  const passed: number[] = [];
  for (;;) {
    const p = producer(value);
    if (p === undefined)
      throw new UserError(
        file,
        `no recognisable classifier head: '${value}' is ${inits.has(value) ? 'a constant' : 'a graph input'}, not computed by a node; ${expected}`,
      );
    single(value, value === outName ? 'output' : 'value');
    const nd = nodes[p]!;
    if (!isDefaultDomain(nd.domain))
      throw new UserError(file, `no recognisable classifier head: '${value}' comes from ${nd.domain}:${nd.opType} '${label(p)}'; ${expected}`);
    if (PASS_THROUGH.has(nd.opType ?? '')) {
      passed.push(p);
      value = nd.input?.[0] ?? '';
      continue;
    }
    if (nd.opType === 'Gemm' || nd.opType === 'Add') break;
    throw new UserError(file, `no recognisable classifier head: '${value}' comes from ${nd.opType} '${label(p)}'; ${expected}`);
  }
  const headIndex = producer(value)!;
  const head = nodes[headIndex]!;

  /** A float initializer read only by the head's own nodes. */
  const parameter = (name: string | undefined, role: string, owners: number): TensorProto => {
    const t = name ? inits.get(name) : undefined;
    if (!t)
      throw new UserError(
        file,
        `no recognisable classifier head: its ${role} '${name ?? ''}' is not an initializer (a weight computed in the graph cannot be re-initialised)`,
      );
    if (!FLOATS.has(t.dataType ?? 0)) throw new UserError(file, `the classifier head's ${role} '${name}' is ${dtypeName(t.dataType)}; expected a float tensor`);
    if (graph.uses(name!) > owners)
      throw new UserError(
        file,
        `the classifier head's ${role} '${name}' is shared with other nodes; re-initialising it would change them too, so it is refused`,
      );
    return t;
  };

  let form: HeadReplacement['form'];
  let weight: TensorProto;
  let bias: TensorProto | undefined;
  let transposed: boolean; // stored [out, in] (Gemm transB=1) rather than [in, out]
  const replaced = [headIndex];
  if (head.opType === 'Gemm') {
    form = 'Gemm';
    if (attrInt(head, 'transA', 0) !== 0)
      throw new UserError(file, `the classifier head Gemm '${label(headIndex)}' has transA=1 (features along axis 0); expected a [batch, features] input`);
    const inputs = head.input ?? [];
    weight = parameter(inputs[1], 'weight', 1);
    transposed = attrInt(head, 'transB', 0) !== 0;
    if (inputs[2]) bias = parameter(inputs[2], 'bias', 1);
    // A fresh nn.Linear is x W^T + b: alpha and beta back to their default 1.
    head.attribute = (head.attribute ?? []).filter((a) => a.name !== 'alpha' && a.name !== 'beta');
  } else {
    form = 'MatMul+Add';
    const [a, b] = head.input ?? [];
    const mm = [a, b].map((v) => (v !== undefined ? producer(v) : undefined));
    const side = [0, 1].find(
      (k) => mm[k] !== undefined && nodes[mm[k]]!.opType === 'MatMul' && isDefaultDomain(nodes[mm[k]]!.domain) && inits.has([a, b][1 - k] ?? ''),
    );
    if (side === undefined)
      throw new UserError(
        file,
        `no recognisable classifier head: '${value}' comes from Add '${label(headIndex)}', which does not add a constant bias to a MatMul; ${expected}`,
      );
    const mmIndex = mm[side]!;
    const matmul = nodes[mmIndex]!;
    single(matmul.output![0]!, 'MatMul output');
    weight = parameter(matmul.input?.[1], 'weight', 1);
    bias = parameter([a, b][1 - side], 'bias', 1);
    transposed = false;
    replaced.unshift(mmIndex);
  }
  const wd = (weight.dims ?? []).map(int);
  if (wd.length !== 2) throw new UserError(file, `the classifier head's weight '${weight.name}' has shape [${wd.join(', ')}]; expected a matrix`);
  const [features, oldClasses] = transposed ? [wd[1]!, wd[0]!] : [wd[0]!, wd[1]!];
  if (features < 1) throw new UserError(file, `the classifier head's weight '${weight.name}' has no input features`);
  if (n * features > MAX_HEAD_VALUES)
    throw new UserError(
      'number of classes',
      `${n} classes of ${features} features make a weight of ${n * features} values, above the ${MAX_HEAD_VALUES} supported`,
    );
  if (bias) {
    const bd = (bias.dims ?? []).map(int);
    const count = bd.reduce((p, d) => p * d, 1);
    if (count !== 1 && bd[bd.length - 1] !== oldClasses) {
      throw new UserError(
        file,
        `the classifier head's bias '${bias.name}' has shape [${bd.join(', ')}], which does not broadcast along its ${oldClasses} classes`,
      );
    }
  }

  const bound = 1 / Math.sqrt(features);
  const rand = mulberry32(o.seed);
  const draw = () => (2 * rand() - 1) * bound;
  const values = (k: number) => (weight.dataType === DataType.DOUBLE ? new Float64Array(k) : new Float32Array(k));
  const w = values(n * features);
  // drawn as PyTorch's [out, in]; stored as the node reads it
  for (let r = 0; r < n; r++) for (let c = 0; c < features; c++) w[transposed ? r * features + c : c * n + r] = draw();
  setData(weight, transposed ? [n, features] : [features, n], w);
  if (bias) {
    const bd = (bias.dims ?? []).map(int);
    const b = values(n);
    for (let k = 0; k < n; k++) b[k] = draw();
    setData(bias, bd.length ? [...bd.slice(0, -1).map(() => 1), n] : [n], b);
  }
  // Old exporters also list initializers as graph inputs; their declared shapes follow.
  for (const t of [weight, bias]) {
    const decl = t && (g.input ?? []).find((v) => v.name === t.name);
    const dims = decl?.type?.tensorType?.shape?.dim;
    if (t && dims) decl.type!.tensorType!.shape!.dim = (t.dims ?? []).map((d) => ({ dimValue: int(d) }));
  }
  // The class axis of every value from the head to the output is now n long.
  const changed = new Set([value, ...passed.map((i) => nodes[i]!.output![0]!)]);
  for (const v of g.valueInfo ?? []) if (v.name && changed.has(v.name)) setLastDim(v, n);
  setLastDim(graphOut, n);

  return {
    model: copy,
    report: {
      output: outName,
      form,
      nodes: replaced.map(label),
      passedThrough: passed.reverse().map(label),
      weight: weight.name!,
      bias: bias?.name ?? null,
      features,
      oldClasses,
      newClasses: n,
      bound,
      seed: o.seed,
    },
  };
}
