/**
 * Recurrent ops in training graphs: onnxruntime's LSTM, GRU and RNN kernels have no gradient here, so one
 * on the path from a trainable value to the loss is unrolled into the standard ops it is made of (one
 * input projection for the whole sequence, then per step a MatMul with R and the cell's gate algebra),
 * which the gradient rules then differentiate. The equations are the ONNX spec's (see CELLS). The
 * sequence length must be static (finetune takes it from the data where the model leaves it open).
 * Not covered: LSTM's input_forget, layout 1.
 */
import { attr, attrFloat, attrInt, attrString, floatAttr, intAttr, intsAttr, tensorAttr } from '../onnx/attrs.js';
import { Builder } from '../onnx/builder.js';
import { concat } from '../onnx/concat.js';
import { DataType } from '../onnx/dtype.js';
import { makeTensor } from '../onnx/tensor.js';
import type { GraphProto, NodeProto, TensorProto } from '../onnx/types.js';
import { ShapeUnknownError, UnsupportedGradientError } from './rules/errors.js';
import { inferGraph } from '../onnx/shapes.js';

/** Rewrites every LSTM, GRU and RNN that depends on one of `sources` into unrolled standard ops, in place; returns how many. */
export function unrollRecurrent(graph: GraphProto, opset: number, sources: Iterable<string>, fresh: (base: string) => string): number {
  const nodes = graph.node ?? [];
  if (!nodes.some((n) => Object.hasOwn(CELLS, n.opType ?? '') && !n.domain)) return 0;
  const reached = reach(nodes, sources);
  const info = inferGraph(graph, opset);
  const out: NodeProto[] = [];
  const inits: TensorProto[] = [];
  let count = 0;
  for (const n of nodes) {
    const cell = Object.hasOwn(CELLS, n.opType ?? '') && !n.domain ? CELLS[n.opType!] : undefined;
    if (!cell || !(n.input ?? []).some((i) => i && reached.has(i))) {
      out.push(n);
      continue;
    }
    if (opset < 13) throw new UnsupportedGradientError(n.opType!, n.name ?? '', `a training graph at opset ${opset} (the unrolled form needs 13)`);
    const b = new Builder(fresh, { opset, info, prefix: n.name || n.output![0]! });
    unroll(n, cell, b, info.shapes.get(n.input![0]!));
    out.push(...b.nodes);
    inits.push(...b.initializers);
    count++;
  }
  graph.node = out;
  graph.initializer = [...(graph.initializer ?? []), ...inits];
  return count;
}

/** Names computed from `sources` (fixpoint: the graph need not be sorted). */
function reach(nodes: NodeProto[], sources: Iterable<string>): Set<string> {
  const r = new Set(sources);
  for (let changed = true; changed; ) {
    changed = false;
    for (const n of nodes) {
      if (!(n.input ?? []).some((i) => i && r.has(i))) continue;
      for (const o of n.output ?? [])
        if (o && !r.has(o)) {
          r.add(o);
          changed = true;
        }
    }
  }
  return r;
}

/** Row i of x (axis 0). */
const gather = (b: Builder, x: string, i: number) => b.op('Gather', [x, b.int0(i)], [intAttr('axis', 0)]);

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
  affine: { alpha: 1, beta: 0, emit: (b, x, a, c) => b.op('Add', [b.op('Mul', [x, b.scalar(a, x)]), b.scalar(c, x)]) },
  scaledtanh: { alpha: 1, beta: 1, emit: (b, x, a, c) => b.op('Mul', [b.op('Tanh', [b.op('Mul', [x, b.scalar(c, x)])]), b.scalar(a, x)]) },
};

type Act = (x: string) => string;

/**
 * One recurrent op: how many gate blocks its W/R/B stack per direction, its activations per direction,
 * and one time step from the step's input projection xw (X_t W^T + Wb) to the new states.
 */
interface Cell {
  gates: number;
  activations: string[];
  /** the states a step carries: [H] or [H, C] */
  states: number;
  step(b: Builder, a: StepArgs): string[];
}

interface StepArgs {
  n: NodeProto;
  H: number;
  /** [B, gates * H] */
  xw: string;
  /** R^T of this direction, [H, gates * H] */
  rT: string;
  /** Rb of this direction, [gates * H], when the op has B */
  rb?: string;
  /** this direction's peepholes [3H] (LSTM) */
  p?: string;
  prev: string[];
  acts: Act[];
  clipped: Act;
}

const CELLS: Record<string, Cell> = {
  // gates i, o, f, c; C' = f C + i c~; o sees C' through its peephole; H' = o h(C')
  LSTM: {
    gates: 4,
    activations: ['sigmoid', 'tanh', 'tanh'],
    states: 2,
    step(b, { n, H, xw, rT, rb, p, prev: [h0, c0], acts: [f, g, h], clipped }) {
      if (attrInt(n, 'input_forget', 0) !== 0) throw new UnsupportedGradientError('LSTM', n.name ?? '', 'input_forget=1');
      let gates = b.op('Add', [xw, b.op('MatMul', [h0!, rT])]);
      if (rb) gates = b.op('Add', [gates, rb]);
      const gate = (j: number) => b.slice(gates, [j * H], [(j + 1) * H], [1]);
      let [gi, go, gf, gc] = [gate(0), gate(1), gate(2), gate(3)];
      const [pi, po, pf] = p ? [0, 1, 2].map((k) => b.slice(p, [k * H], [(k + 1) * H], [0])) : [];
      if (pi && pf) {
        gi = b.op('Add', [gi, b.op('Mul', [pi, c0!])]);
        gf = b.op('Add', [gf, b.op('Mul', [pf, c0!])]);
      }
      const c = b.op('Add', [b.op('Mul', [f!(clipped(gf)), c0!]), b.op('Mul', [f!(clipped(gi)), g!(clipped(gc))])]);
      if (po) go = b.op('Add', [go, b.op('Mul', [po, c])]);
      return [b.op('Mul', [f!(clipped(go)), h!(c)]), c];
    },
  },
  // gates z, r, h; the candidate's recurrent term is (r H) Rh + Rbh, or r (H Rh + Rbh) with
  // linear_before_reset; H' = (1 - z) h~ + z H = h~ + z (H - h~)
  GRU: {
    gates: 3,
    activations: ['sigmoid', 'tanh'],
    states: 1,
    step(b, { n, H, xw, rT, rb, prev: [h0], acts: [f, g], clipped }) {
      const rzT = b.slice(rT, [0], [2 * H], [1]);
      const rhT = b.slice(rT, [2 * H], [3 * H], [1]);
      let zr = b.op('Add', [b.slice(xw, [0], [2 * H], [1]), b.op('MatMul', [h0!, rzT])]);
      if (rb) zr = b.op('Add', [zr, b.slice(rb, [0], [2 * H], [0])]);
      const z = f!(clipped(b.slice(zr, [0], [H], [1])));
      const r = f!(clipped(b.slice(zr, [H], [2 * H], [1])));
      const rbh = rb ? b.slice(rb, [2 * H], [3 * H], [0]) : undefined;
      const plus = (x: string) => (rbh ? b.op('Add', [x, rbh]) : x);
      const recur = attrInt(n, 'linear_before_reset', 0)
        ? b.op('Mul', [r, plus(b.op('MatMul', [h0!, rhT]))])
        : plus(b.op('MatMul', [b.op('Mul', [r, h0!]), rhT]));
      const cand = g!(clipped(b.op('Add', [b.slice(xw, [2 * H], [3 * H], [1]), recur])));
      return [b.op('Add', [cand, b.op('Mul', [z, b.op('Sub', [h0!, cand])])])];
    },
  },
  // H' = f(X W^T + H R^T + Wb + Rb)
  RNN: {
    gates: 1,
    activations: ['tanh'],
    states: 1,
    step(b, { xw, rT, rb, prev: [h0], acts: [f], clipped }) {
      let pre = b.op('Add', [xw, b.op('MatMul', [h0!, rT])]);
      if (rb) pre = b.op('Add', [pre, rb]);
      return [f!(clipped(pre))];
    },
  },
};

/**
 * The shared part: checks, activations (with activation_alpha/beta taken in order), the whole-sequence
 * input projection per direction, the time loop (reversed for the reverse direction), and the outputs
 * Y [S, D, B, H] and the final states [D, B, H].
 */
function unroll(n: NodeProto, cell: Cell, b: Builder, xShape: (number | string | null)[] | undefined): void {
  const op = n.opType ?? '';
  const name = n.name ?? '';
  const [X = '', W = '', R = '', B = '', seqLens = '', h0 = '', c0 = '', P = ''] = n.input ?? [];
  // layout 1 (batch first) is left out: onnxruntime's recurrent kernels refuse it, so no model that runs has it
  if (attrInt(n, 'layout', 0) !== 0) throw new UnsupportedGradientError(op, name, 'layout=1');
  const dt = b.dtype(X);
  const S = xShape?.[0];
  if (typeof S !== 'number') throw new ShapeUnknownError(name, `the sequence length of ${X} (${op}, unrolled for training)`);
  const H = attrInt(n, 'hidden_size', 0);
  if (!H) throw new UnsupportedGradientError(op, name, 'no hidden_size attribute');
  const direction = attrString(n, 'direction', 'forward');
  const dirs = direction === 'bidirectional' ? 2 : 1;
  const clip = attr(n, 'clip') ? attrFloat(n, 'clip', 0) : undefined;
  const names = (attr(n, 'activations')?.strings ?? []).map((s) => Buffer.from(s).toString().toLowerCase());
  const funcs = names.length ? names : Array<string[]>(dirs).fill(cell.activations).flat();
  const alphas = [...(attr(n, 'activation_alpha')?.floats ?? [])];
  const betas = [...(attr(n, 'activation_beta')?.floats ?? [])];
  const acts = funcs.map((f): Act => {
    const spec = ACTIVATIONS[f];
    if (!spec) throw new UnsupportedGradientError(op, name, `activation ${f}`);
    const alpha = spec.alpha !== undefined ? (alphas.shift() ?? spec.alpha) : 0;
    const beta = spec.beta !== undefined ? (betas.shift() ?? spec.beta) : 0;
    return (x) => spec.emit(b, x, alpha, beta);
  });
  const clipped: Act = (x) => (clip === undefined ? x : b.op('Clip', [x, b.scalar(-clip, dt), b.scalar(clip, dt)]));
  // zeros [B, H] for missing initial states, B from the data at run time
  const batch = b.op('Slice', [b.op('Shape', [X]), b.ints([1]), b.ints([2])]);
  const zeros = () =>
    b.op('ConstantOfShape', [b.op('Concat', [batch, b.ints([H])], [intAttr('axis', 0)])], [tensorAttr('value', makeTensor('', dt, [1], [0]))]);
  const G = cell.gates * H;
  const ys: string[] = [];
  const finals: string[][] = Array.from({ length: cell.states }, () => []);
  // sequence_lens: a sequence's steps past its length keep its state and output zeros, and the reverse
  // direction runs each sequence from its own last step (ReverseSequence within each length, and back)
  const lens64 = seqLens ? b.op('Cast', [seqLens], [intAttr('to', DataType.INT64)]) : undefined;
  const within = (t: number) => b.unsqueeze(b.op('Less', [b.int0(t), lens64!]), [1]); // [B, 1]
  const reverseEach = (x: string) => b.op('ReverseSequence', [x, lens64!], [intAttr('batch_axis', 1), intAttr('time_axis', 0)]);
  for (let d = 0; d < dirs; d++) {
    const k0 = acts.length / dirs;
    const backwards = direction === 'reverse' || d === 1;
    const input = lens64 && backwards ? reverseEach(X) : X;
    let xw = b.op('MatMul', [input, b.op('Transpose', [gather(b, W, d)], [intsAttr('perm', [1, 0])])]); // [S, B, G]
    const bd = B ? gather(b, B, d) : undefined;
    if (bd) xw = b.op('Add', [xw, b.slice(bd, [0], [G], [0])]);
    const rT = b.op('Transpose', [gather(b, R, d)], [intsAttr('perm', [1, 0])]); // [H, G]
    const rb = bd ? b.slice(bd, [G], [2 * G], [0]) : undefined;
    const p = P ? gather(b, P, d) : undefined;
    let prev = [h0 ? gather(b, h0, d) : zeros(), ...(cell.states > 1 ? [c0 ? gather(b, c0, d) : zeros()] : [])];
    const perStep = new Array<string>(S);
    for (let k = 0; k < S; k++) {
      // with lengths, the reversed copy runs forwards; without, the steps run backwards
      const t = backwards && !lens64 ? S - 1 - k : k;
      const next = cell.step(b, { n, H, xw: gather(b, xw, t), rT, rb, p, prev, acts: acts.slice(d * k0, (d + 1) * k0), clipped });
      if (lens64) {
        const m = within(t);
        perStep[t] = b.unsqueeze(b.op('Where', [m, next[0]!, b.scalar(0, dt)]), [0]);
        prev = next.map((v, j) => b.op('Where', [m, v, prev[j]!]));
      } else {
        prev = next;
        perStep[t] = b.unsqueeze(prev[0]!, [0]);
      }
    }
    let y = concat(b, perStep, 0); // [S, B, H]
    if (lens64 && backwards) y = reverseEach(y);
    ys.push(b.unsqueeze(y, [1])); // [S, 1, B, H]
    prev.forEach((v, j) => finals[j]!.push(b.unsqueeze(v, [0])));
  }
  const join = (parts: string[], axis: number) => concat(b, parts, axis);
  const outs = n.output ?? [];
  // each result under the op's own output name
  const output = (x: string, name: string) => b.node('Identity', [x], [name], [], { name: b.fresh(`${b.prefix}/Identity`) });
  if (outs[0]) output(join(ys, 1), outs[0]);
  finals.forEach((f, j) => {
    const out = outs[j + 1];
    if (out) output(join(f, 0), out);
  });
}
