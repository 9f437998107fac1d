/**
 * LSTM in training graphs: onnxruntime's LSTM kernel has no gradient here, so an LSTM on the path from a
 * trainable value to the loss is unrolled into the standard ops it is made of (one input projection for
 * the whole sequence, then per step a MatMul with R, the gates, the cell and hidden updates), which the
 * gradient rules then differentiate. The equations are the ONNX spec's, gates in i, o, f, c order:
 *   i = f(Xt W_i + H R_i + Wb_i + Rb_i + P_i . C)      f = f(... P_f . C)      c~ = g(Xt W_c + H R_c + b_c)
 *   C' = f . C + i . c~                                 o = f(Xt W_o + H R_o + b_o + P_o . C')   H' = o . h(C')
 * The sequence length must be static (finetune takes it from the data where the model leaves it open).
 * Not covered: sequence_lens (sequences of different lengths), input_forget.
 */
import { attr, attrFloat, attrInt, attrString, floatAttr, intAttr, intsAttr, makeNode, tensorAttr } from '../onnx/attrs.js';
import { DataType } from '../onnx/dtype.js';
import { makeTensor } from './tensors.js';
import type { AttributeProto, GraphProto, NodeProto, TensorProto } from '../onnx/types.js';
import { ShapeUnknownError, UnsupportedGradientError } from './rules/errors.js';
import { inferStatic } from './shapes.js';

/** Rewrites every LSTM that depends on one of `sources` into unrolled standard ops, in place; returns how many. */
export function unrollRecurrent(graph: GraphProto, opset: number, sources: Iterable<string>, fresh: (base: string) => string): number {
  const nodes = graph.node ?? [];
  if (!nodes.some((n) => n.opType === 'LSTM' && !n.domain)) return 0;
  const reached = reach(nodes, sources);
  const info = inferStatic(graph, opset);
  const out: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let count = 0;
  for (const n of nodes) {
    if (n.opType !== 'LSTM' || n.domain || !(n.input ?? []).some((i) => i && reached.has(i))) { out.push(n); continue; }
    if (opset < 13) throw new UnsupportedGradientError('LSTM', n.name ?? '', `a training graph at opset ${opset} (the unrolled form needs 13)`);
    const b = new Builder(fresh, n.name || n.output![0]!, info.types.get(n.input![0]!) ?? DataType.FLOAT);
    unrollLstm(n, b, info.shapes.get(n.input![0]!));
    out.push(...b.nodes);
    inits.push(...b.inits);
    count++;
  }
  graph.node = out;
  graph.initializer = [...(graph.initializer ?? []), ...inits];
  return count;
}

/** Names computed from `sources` (fixpoint: the graph need not be sorted). */
function reach(nodes: NodeProto[], sources: Iterable<string>): Set<string> {
  const r = new Set(sources);
  for (let changed = true; changed;) {
    changed = false;
    for (const n of nodes) {
      if (!(n.input ?? []).some((i) => i && r.has(i))) continue;
      for (const o of n.output ?? []) if (o && !r.has(o)) { r.add(o); changed = true; }
    }
  }
  return r;
}

class Builder {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  constructor(private readonly fresh: (b: string) => string, private readonly base: string, readonly dtype: number) {}
  op(type: string, inputs: string[], attrs: AttributeProto[] = [], output?: string): string {
    const y = output ?? this.fresh(`${this.base}/${type}`);
    this.nodes.push(makeNode(type, inputs, [y], this.fresh(`${this.base}/${type}`), attrs));
    return y;
  }
  private constant(dataType: number, dims: number[], values: number[]): string {
    const name = this.fresh(`${this.base}/const`);
    this.inits.push(makeTensor(name, dataType, dims, values));
    return name;
  }
  ints(values: number[]): string { return this.constant(DataType.INT64, [values.length], values); }
  index(value: number): string { return this.constant(DataType.INT64, [], [value]); }
  scalar(value: number): string { return this.constant(this.dtype, [], [value]); }
  slice(x: string, start: number, end: number, axis: number): string {
    return this.op('Slice', [x, this.ints([start]), this.ints([end]), this.ints([axis])]);
  }
  gather(x: string, i: number): string { return this.op('Gather', [x, this.index(i)], [intAttr('axis', 0)]); }
  unsqueeze(x: string, axis: number): string { return this.op('Unsqueeze', [x, this.ints([axis])]); }
}

/** activation name -> how many of activation_alpha / activation_beta it takes, and their defaults */
const ACTIVATIONS: Record<string, { alpha?: number; beta?: number; emit: (b: Builder, x: string, alpha: number, beta: number) => string }> = {
  sigmoid: { emit: (b, x) => b.op('Sigmoid', [x]) },
  tanh: { emit: (b, x) => b.op('Tanh', [x]) },
  relu: { emit: (b, x) => b.op('Relu', [x]) },
  softsign: { emit: (b, x) => b.op('Softsign', [x]) },
  softplus: { emit: (b, x) => b.op('Softplus', [x]) },
  leakyrelu: { alpha: 0.01, emit: (b, x, a) => b.op('LeakyRelu', [x], [floatAttr('alpha', a)]) },
  thresholdedrelu: { alpha: 1, emit: (b, x, a) => b.op('ThresholdedRelu', [x], [floatAttr('alpha', a)]) },
  elu: { alpha: 1, emit: (b, x, a) => b.op('Elu', [x], [floatAttr('alpha', a)]) },
  hardsigmoid: { alpha: 0.2, beta: 0.5, emit: (b, x, a, c) => b.op('HardSigmoid', [x], [floatAttr('alpha', a), floatAttr('beta', c)]) },
  affine: { alpha: 1, beta: 0, emit: (b, x, a, c) => b.op('Add', [b.op('Mul', [x, b.scalar(a)]), b.scalar(c)]) },
  scaledtanh: { alpha: 1, beta: 1, emit: (b, x, a, c) => b.op('Mul', [b.op('Tanh', [b.op('Mul', [x, b.scalar(c)])]), b.scalar(a)]) },
};

function unrollLstm(n: NodeProto, b: Builder, xShape: (number | string | null)[] | undefined): void {
  const name = n.name ?? '';
  const [X, W, R, B, seqLens, h0, c0, P] = [...(n.input ?? []), '', '', '', '', '', ''] as string[];
  if (seqLens) throw new UnsupportedGradientError('LSTM', name, 'sequence_lens (sequences of different lengths)');
  if (attrInt(n, 'input_forget', 0) !== 0) throw new UnsupportedGradientError('LSTM', name, 'input_forget=1');
  // layout 1 (batch first) is left out: onnxruntime's LSTM kernel refuses it, so no model that runs has it
  const layout = attrInt(n, 'layout', 0);
  if (layout !== 0) throw new UnsupportedGradientError('LSTM', name, 'layout=1');
  const S = xShape?.[0];
  if (typeof S !== 'number') throw new ShapeUnknownError(name, `the sequence length of ${X} (LSTM, unrolled for training)`);
  const H = attrInt(n, 'hidden_size', 0);
  if (!H) throw new UnsupportedGradientError('LSTM', name, 'no hidden_size attribute');
  const direction = attrString(n, 'direction', 'forward');
  const dirs = direction === 'bidirectional' ? 2 : 1;
  const clip = attr(n, 'clip') ? attrFloat(n, 'clip', 0) : undefined;
  // f, g, h per direction, with their alpha/beta taken in order from the two lists
  const names = (attr(n, 'activations')?.strings ?? []).map((s) => Buffer.from(s).toString().toLowerCase());
  const funcs = names.length ? names : Array<string>(dirs).fill('').flatMap(() => ['sigmoid', 'tanh', 'tanh']);
  const alphas = [...(attr(n, 'activation_alpha')?.floats ?? [])];
  const betas = [...(attr(n, 'activation_beta')?.floats ?? [])];
  const acts = funcs.map((f) => {
    const spec = ACTIVATIONS[f];
    if (!spec) throw new UnsupportedGradientError('LSTM', name, `activation ${f}`);
    const alpha = spec.alpha !== undefined ? (alphas.shift() ?? spec.alpha) : 0;
    const beta = spec.beta !== undefined ? (betas.shift() ?? spec.beta) : 0;
    return (x: string) => spec.emit(b, x, alpha, beta);
  });
  const clipped = (x: string) => (clip === undefined ? x : b.op('Clip', [x, b.scalar(-clip), b.scalar(clip)]));

  const xs = X; // [S, B, I]
  // zeros [B, H] for missing initial states, B from the data at run time
  const batch = b.op('Slice', [b.op('Shape', [xs]), b.ints([1]), b.ints([2])]);
  const zeros = () => b.op('ConstantOfShape', [b.op('Concat', [batch, b.ints([H])], [intAttr('axis', 0)])], [tensorAttr('value', makeTensor('', b.dtype, [1], [0]))]);
  const ys: string[] = [];
  const hs: string[] = [];
  const cs: string[] = [];
  for (let d = 0; d < dirs; d++) {
    const [f, g, h] = acts.slice(3 * d, 3 * d + 3) as [(x: string) => string, (x: string) => string, (x: string) => string];
    let xw = b.op('MatMul', [xs, b.op('Transpose', [b.gather(W, d)], [intsAttr('perm', [1, 0])])]); // [S, B, 4H]
    if (B) {
      const bd = b.gather(B, d);
      xw = b.op('Add', [xw, b.op('Add', [b.slice(bd, 0, 4 * H, 0), b.slice(bd, 4 * H, 8 * H, 0)])]);
    }
    const rT = b.op('Transpose', [b.gather(R, d)], [intsAttr('perm', [1, 0])]); // [H, 4H]
    const pd = P ? b.gather(P, d) : undefined;
    const [pi, po, pf] = pd ? [0, 1, 2].map((k) => b.slice(pd, k * H, (k + 1) * H, 0)) : [];
    let hPrev = h0 ? b.gather(h0, d) : zeros();
    let cPrev = c0 ? b.gather(c0, d) : zeros();
    const reverse = direction === 'reverse' || d === 1;
    const perStep: string[] = new Array<string>(S);
    for (let k = 0; k < S; k++) {
      const t = reverse ? S - 1 - k : k;
      const gates = b.op('Add', [b.gather(xw, t), b.op('MatMul', [hPrev, rT])]); // [B, 4H]
      const gate = (j: number) => b.slice(gates, j * H, (j + 1) * H, 1);
      let [gi, go, gf, gc] = [gate(0), gate(1), gate(2), gate(3)];
      if (pi && pf) {
        gi = b.op('Add', [gi, b.op('Mul', [pi, cPrev])]);
        gf = b.op('Add', [gf, b.op('Mul', [pf, cPrev])]);
      }
      const it = f(clipped(gi));
      const ft = f(clipped(gf));
      const ct = g(clipped(gc));
      const c = b.op('Add', [b.op('Mul', [ft, cPrev]), b.op('Mul', [it, ct])]);
      if (po) go = b.op('Add', [go, b.op('Mul', [po, c])]);
      const ot = f(clipped(go));
      hPrev = b.op('Mul', [ot, h(c)]);
      cPrev = c;
      perStep[t] = b.unsqueeze(hPrev, 0);
    }
    ys.push(b.unsqueeze(S === 1 ? perStep[0]! : b.op('Concat', perStep, [intAttr('axis', 0)]), 1)); // [S, 1, B, H]
    hs.push(b.unsqueeze(hPrev, 0));
    cs.push(b.unsqueeze(cPrev, 0));
  }
  const join = (parts: string[], axis: number) => (parts.length === 1 ? parts[0]! : b.op('Concat', parts, [intAttr('axis', axis)]));
  const [yName, hName, cName] = [n.output?.[0], n.output?.[1], n.output?.[2]];
  if (yName) b.op('Identity', [join(ys, 1)], [], yName);
  if (hName) b.op('Identity', [join(hs, 0)], [], hName);
  if (cName) b.op('Identity', [join(cs, 0)], [], cName);
}
