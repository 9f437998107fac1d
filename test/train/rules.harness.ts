/**
 * Finite-difference checking of gradient rules on real onnxruntime sessions. A case is a few forward
 * nodes ending in outputs Y...; the harness adds loss = sum_i ReduceSum(Y_i * R_i) with random R_i,
 * builds the gradient with backward(), runs the model once for the analytic gradients, then perturbs each
 * element of each differentiated input by ±eps and compares with the central difference.
 */
import * as ort from 'onnxruntime-node';
import { intAttr, makeNode } from '../../src/onnx/attrs.js';
import { DataType } from '../../src/onnx/dtype.js';
import { encodeModel } from '../../src/onnx/schema.js';
import type { FunctionProto, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfo } from '../../src/onnx/types.js';
import { backward, type BackwardResult, type GradOptions } from '../../src/train/backward.js';
import { makeTensor } from '../../src/onnx/tensor.js';
import { mulberry32 } from '../../src/data/prng.js';

export type Gen = 'normal' | 'away' | 'distinct' | 'positive';

export interface InputSpec {
  shape: number[];
  /** differentiate w.r.t. it (a graph input); otherwise it is a constant initializer */
  grad?: boolean;
  /** int64 values (indices, shapes, axes): always a constant */
  ints?: number[];
  /** explicit float values */
  values?: number[];
  gen?: Gen;
  /** declare dim 0 symbolic ('N') in the graph input, to exercise the runtime-shape paths */
  symbolic?: number[];
}

export interface Case {
  name: string;
  nodes: NodeProto[];
  inputs: Record<string, InputSpec>;
  outputs?: string[];
  float64?: boolean;
  opset?: number;
  functions?: FunctionProto[];
  extraOpsets?: { domain: string; version: number }[];
  /** backward() options */
  grad?: GradOptions;
  /** check at most this many elements per input (random subset), default all */
  maxElems?: number;
}

export interface CheckResult {
  name: string;
  checked: number;
  maxAbsErr: number;
  maxRelErr: number;
  worst?: string;
  failures: string[];
  result: BackwardResult;
}

const vi = (name: string, elem: number, shape: (number | string)[]): ValueInfo => ({
  name,
  type: { tensorType: { elemType: elem, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});

function generate(spec: InputSpec, rand: () => number): number[] {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.values) return spec.values;
  const normal = () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  switch (spec.gen ?? 'normal') {
    case 'normal':
      return Array.from({ length: n }, normal);
    // |x| >= 0.1: finite differences never cross a kink at 0
    case 'away':
      return Array.from({ length: n }, () => (rand() < 0.5 ? -1 : 1) * (0.1 + rand()));
    case 'positive':
      return Array.from({ length: n }, () => 0.5 + rand());
    // all values 0.05 apart: no ties and no argmax change under the perturbation
    case 'distinct': {
      const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.05);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [v[i], v[j]] = [v[j]!, v[i]!];
      }
      return v;
    }
  }
}

const ortType = (f64: boolean) => (f64 ? 'float64' : 'float32');
const toArr = (f64: boolean, v: number[]) => (f64 ? Float64Array.from(v) : Float32Array.from(v));

async function open(model: ModelProto): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(encodeModel(model), { logSeverityLevel: 3, intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'basic' });
}

/** Builds the loss model for a case (without the gradient). */
function lossModel(c: Case, yShapes: number[][], rand: () => number) {
  const f64 = !!c.float64;
  const elem = f64 ? DataType.DOUBLE : DataType.FLOAT;
  const opset = c.opset ?? 17;
  const outs = c.outputs ?? ['Y'];
  const initializer: TensorProto[] = [];
  const input: ValueInfo[] = [];
  const values: Record<string, number[]> = {};
  const rFeeds: Record<string, number[]> = {};
  for (const [name, s] of Object.entries(c.inputs)) {
    if (s.ints) {
      initializer.push(makeTensor(name, DataType.INT64, s.shape, s.ints));
      continue;
    }
    const v = generate(s, rand);
    values[name] = v;
    if (s.grad)
      input.push(
        vi(
          name,
          elem,
          s.shape.map((d, i) => (s.symbolic?.includes(i) ? `d${i}` : d)),
        ),
      );
    else initializer.push(makeTensor(name, elem, s.shape, v));
  }
  const nodes: NodeProto[] = [...c.nodes];
  const terms: string[] = [];
  // with symbolic inputs, R is a graph input of unknown dims too, so no shape leaks back in through it
  const symbolic = Object.values(c.inputs).some((s) => s.symbolic?.length);
  outs.forEach((y, i) => {
    const r = `R_${i}`;
    const rv = Array.from({ length: yShapes[i]!.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1);
    if (symbolic) {
      input.push(
        vi(
          r,
          elem,
          yShapes[i]!.map((_, k) => `r${i}_${k}`),
        ),
      );
      values[r] = rv;
      rFeeds[r] = yShapes[i]!;
    } else initializer.push(makeTensor(r, elem, yShapes[i]!, rv));
    nodes.push(makeNode('Mul', [y, r], [`YR_${i}`], `loss_mul_${i}`));
    // no axes: all of them, in every opset's form
    nodes.push(makeNode('ReduceSum', [`YR_${i}`], [`T_${i}`], `loss_sum_${i}`, [intAttr('keepdims', 0)]));
    terms.push(`T_${i}`);
  });
  nodes.push(terms.length === 1 ? makeNode('Identity', terms, ['loss'], 'loss_id') : makeNode('Sum', terms, ['loss'], 'loss_sum'));
  const graph: GraphProto = { name: c.name, node: nodes, initializer, input, output: [vi('loss', elem, [])] };
  return { graph, values, opset, elem, rFeeds };
}

function modelOf(graph: GraphProto, c: Case, opset: number): ModelProto {
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: opset }, ...(c.extraOpsets ?? [])],
    graph,
    functions: c.functions,
  };
}

/** Output shapes of the forward part, from a probe run. */
async function probe(c: Case, rand: () => number): Promise<number[][]> {
  const f64 = !!c.float64;
  const { graph, values, opset } = lossModel(
    c,
    (c.outputs ?? ['Y']).map(() => [1]),
    rand,
  );
  const outs = c.outputs ?? ['Y'];
  const g: GraphProto = { ...graph, node: c.nodes, output: outs.map((y) => vi(y, f64 ? DataType.DOUBLE : DataType.FLOAT, [])) };
  g.output = outs.map((y) => ({ name: y }));
  g.input = (g.input ?? []).filter((v) => v.name! in c.inputs);
  const s = await open(modelOf(g, c, opset));
  try {
    const r = await s.run(feedsOf(c, values));
    return outs.map((y) => r[y]!.dims.map(Number));
  } finally {
    await s.release();
  }
}

function feedsOf(c: Case, values: Record<string, number[]>, rFeeds: Record<string, number[]> = {}): Record<string, ort.Tensor> {
  const f64 = !!c.float64;
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, s] of Object.entries(c.inputs)) if (s.grad) feeds[name] = new ort.Tensor(ortType(f64), toArr(f64, values[name]!), s.shape);
  for (const [name, dims] of Object.entries(rFeeds)) feeds[name] = new ort.Tensor(ortType(f64), toArr(f64, values[name]!), dims);
  return feeds;
}

export interface GradModel {
  model: ModelProto;
  result: BackwardResult;
  wrt: string[];
  /** gradient output name per wrt input */
  gradOuts: (string | undefined)[];
  values: Record<string, number[]>;
  feeds: Record<string, ort.Tensor>;
}

/** The case's loss model with its gradient graph appended; outputs: loss, then the gradients. */
export async function gradModel(c: Case, seed = 1): Promise<GradModel> {
  const shapes = await probe(c, mulberry32(seed));
  const rand = mulberry32(seed);
  const { graph, values, opset, rFeeds } = lossModel(c, shapes, rand);
  const wrt = Object.entries(c.inputs)
    .filter(([, s]) => s.grad)
    .map(([n]) => n);
  const result = backward(graph, { wrt, loss: 'loss', opset, ...c.grad });
  const gradOuts = wrt.map((w) => result.grads.get(w));
  const full: GraphProto = {
    ...graph,
    node: [...(graph.node ?? []), ...result.nodes],
    initializer: [...(graph.initializer ?? []), ...result.initializers],
    output: [...(graph.output ?? []), ...gradOuts.filter((g): g is string => !!g).map((g) => ({ name: g }))],
  };
  return { model: modelOf(full, c, opset), result, wrt, gradOuts, values, feeds: feedsOf(c, values, rFeeds) };
}

export async function gradCheck(c: Case, seed = 1): Promise<CheckResult> {
  const f64 = !!c.float64;
  const { model, result, wrt, gradOuts, values, feeds } = await gradModel(c, seed);
  const s = await open(model);
  const failures: string[] = [];
  let maxAbs = 0;
  let maxRel = 0;
  let worst: string | undefined;
  let checked = 0;
  try {
    const base = feeds;
    const out = await s.run(base);
    const eps = f64 ? 1e-6 : 1e-2;
    // float64: central differences are exact to ~1e-9 here; float32: rounding of the loss (~1e-7 relative)
    // divided by 2*eps gives ~1e-5, and the ops tested in float32 are piecewise linear (no truncation error)
    const atol = f64 ? 1e-6 : 2e-3;
    const rtol = f64 ? 1e-6 : 2e-3;
    const lossAt = async (name: string, i: number, delta: number) => {
      const v = values[name]!.slice();
      v[i] = v[i]! + delta;
      const feeds = { ...base, [name]: new ort.Tensor(ortType(f64), toArr(f64, v), c.inputs[name]!.shape) };
      const r = await s.run(feeds, ['loss']);
      return Number(r.loss!.data[0]);
    };
    const pick = mulberry32(seed + 7);
    for (const [k, w] of wrt.entries()) {
      const gname = gradOuts[k];
      if (!gname) {
        failures.push(`${w}: no gradient`);
        continue;
      }
      const g = out[gname]!;
      const dims = g.dims.map(Number);
      if (dims.join(',') !== c.inputs[w]!.shape.join(',')) failures.push(`${w}: gradient shape [${dims}] != [${c.inputs[w]!.shape}]`);
      const n = values[w]!.length;
      let idx = Array.from({ length: n }, (_, i) => i);
      if (c.maxElems && n > c.maxElems) idx = idx.filter(() => pick() < c.maxElems! / n);
      for (const i of idx) {
        const fd = ((await lossAt(w, i, eps)) - (await lossAt(w, i, -eps))) / (2 * eps);
        const an = Number(g.data[i]);
        const err = Math.abs(an - fd);
        checked++;
        if (err > maxAbs) {
          maxAbs = err;
          worst = `${w}[${i}] analytic ${an} fd ${fd}`;
        }
        const rel = err / Math.max(Math.abs(fd), 1e-12);
        if (Math.abs(fd) > 1e-3) maxRel = Math.max(maxRel, rel);
        if (err > atol + rtol * Math.abs(fd) && failures.length < 5) failures.push(`${w}[${i}]: analytic ${an} vs finite difference ${fd}`);
      }
    }
  } finally {
    await s.release();
  }
  return { name: c.name, checked, maxAbsErr: maxAbs, maxRelErr: maxRel, worst, failures, result };
}

/** Node shorthand for cases: n('Conv', ['X', 'W'], ['Y'], { strides: [2, 2] }). */
export function n(op: string, inputs: string[], outputs: string[] = ['Y'], attrs: Record<string, number | number[] | string> = {}, domain?: string): NodeProto {
  const list = Object.entries(attrs).map(([k, v]) => {
    if (typeof v === 'string') return { name: k, type: 3, s: Buffer.from(v) };
    if (Array.isArray(v)) return { name: k, type: 7, ints: v };
    return Number.isInteger(v) && !FLOAT_ATTRS.has(k) ? { name: k, type: 2, i: v } : { name: k, type: 1, f: v };
  });
  return makeNode(op, inputs, outputs, `${op}_${outputs[0] ?? 'node'}`, list, domain);
}

const FLOAT_ATTRS = new Set(['alpha', 'beta', 'epsilon', 'min', 'max', 'ratio', 'gamma']);
