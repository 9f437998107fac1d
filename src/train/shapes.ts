/**
 * Static shapes of a forward graph, as far as they follow from declared shapes, initializers and constant
 * operands. Gradient rules use them only to pick simpler graphs (a static reduce axis list, a rank for a
 * Transpose perm); every rule has a runtime-shape path (Shape ops) for dims that stay symbolic.
 */
import { attr, attrInt, attrInts, attrString, isDefaultDomain } from '../onnx/attrs.js';
import { valueTypeOf } from '../onnx/infer.js';
import { int, type GraphProto, type NodeProto, type TensorProto } from '../onnx/types.js';
import { constValues } from './tensors.js';
import { elementCount } from '../onnx/tensor.js';

/** A dimension: a number when fixed, a string when symbolic, null when unknown. */
export type Dim = number | string | null;
export type Shape = Dim[];

export interface StaticInfo {
  shapes: Map<string, Shape>;
  /** values of small constant tensors (initializers, Constant nodes, and simple shape arithmetic) */
  consts: Map<string, number[]>;
  /** element types */
  types: Map<string, number>;
}

const norm = (a: number, r: number) => (a < 0 ? a + r : a);

function broadcastShapes(shapes: Shape[]): Shape {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    let clash = false; // two different symbolic dims: unknown for good
    for (const s of shapes) {
      const x = s[i - rank + s.length];
      if (x === undefined || x === 1 || x === null && d !== 1) continue;
      // in a valid model an unknown dim is 1 or equal to the others, so a known one wins
      if (d === 1 || d === null) d = clash && typeof x !== 'number' ? null : x;
      else if (x !== d && typeof d !== 'number') {
        if (typeof x === 'number') d = x;
        else { d = null; clash = true; }
      }
    }
    out.push(d);
  }
  return out;
}

const UNARY = new Set([
  'Relu', 'LeakyRelu', 'Abs', 'Sigmoid', 'Tanh', 'Clip', 'Softmax', 'LogSoftmax', 'Identity', 'Dropout', 'Neg', 'Exp',
  'Log', 'Sqrt', 'Reciprocal', 'Erf', 'Elu', 'Selu', 'Softplus', 'HardSigmoid', 'HardSwish', 'Cast', 'CastLike',
  'BatchNormalization', 'LRN', 'InstanceNormalization', 'LayerNormalization', 'Sign', 'Floor', 'Ceil', 'Round',
  'Celu', 'Mish', 'Gelu', 'PRelu', 'ALReLU', 'Sin', 'Cos', 'ThresholdedRelu', 'Softsign', 'Hardmax', 'Not',
  'ScatterElements', 'ScatterND', 'ReverseSequence',
]);
const BINARY = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Where', 'And', 'Or']);

/** Infers what it can, in node order (the graph must be topologically sorted). */
export function inferStatic(graph: GraphProto, opset: number): StaticInfo {
  const shapes = new Map<string, Shape>();
  const consts = new Map<string, number[]>();
  const types = new Map<string, number>();
  for (const t of graph.initializer ?? []) if (t.name) addConst(t.name, t, shapes, consts, types);
  for (const v of [...(graph.input ?? []), ...(graph.valueInfo ?? []), ...(graph.output ?? [])]) {
    const t = valueTypeOf(v.type);
    if (!v.name || !t) continue;
    if (!types.has(v.name) && t.elemType) types.set(v.name, t.elemType);
    if (t.shape && !shapes.has(v.name)) shapes.set(v.name, t.shape);
  }
  const info = { shapes, consts, types };
  for (const n of graph.node ?? []) inferInto(info, n, opset);
  return info;
}

/** Adds what follows from one more node (used for the gradient nodes as they are emitted). */
export function inferInto(info: StaticInfo, n: NodeProto, opset: number): void {
  try {
    inferNode(n, info.shapes, info.consts, info.types, opset);
  } catch {
    // a malformed or unusual node: leave its outputs unknown
  }
}

function inferNode(n: NodeProto, shapes: Map<string, Shape>, consts: Map<string, number[]>, types: Map<string, number>, opset: number): void {
  const ins = n.input ?? [];
  const outs = n.output ?? [];
  const sh = (i: number) => (ins[i] ? shapes.get(ins[i]!) : undefined);
  const cv = (i: number) => (ins[i] ? consts.get(ins[i]!) : undefined);
  const set = (i: number, s: Shape | undefined) => {
    if (s && outs[i] && !shapes.has(outs[i]!)) shapes.set(outs[i]!, s);
  };
  const op = n.opType ?? '';
  const t0 = ins[0] ? types.get(ins[0]) : undefined;
  const INT64 = 7;
  const BOOL = 9;
  if (op === 'Shape' || op === 'Size' || op === 'ArgMax' || op === 'NonZero') types.set(outs[0]!, INT64);
  else if (op === 'Cast') types.set(outs[0]!, attrInt(n, 'to', 1));
  else if (['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Not', 'And', 'Or'].includes(op)) types.set(outs[0]!, BOOL);
  else if (op === 'Where' && ins[1]) { const t = types.get(ins[1]); if (t) types.set(outs[0]!, t); }
  else if (op === 'OneHot' && ins[2]) { const t = types.get(ins[2]); if (t) types.set(outs[0]!, t); }
  else if (op === 'CastLike' && ins[1]) { const t = types.get(ins[1]); if (t) types.set(outs[0]!, t); }
  else if (op === 'Constant') { const t = attr(n, 'value')?.t; if (t) addConst(outs[0]!, t, shapes, consts, types); return; }
  else if (op === 'ConstantOfShape') types.set(outs[0]!, attr(n, 'value')?.t?.dataType ?? 1);
  else if (t0 !== undefined) for (const o of outs) if (o && !types.has(o)) types.set(o, t0);
  if (!isDefaultDomain(n.domain) && op !== 'ALReLU') return;

  const s0 = sh(0);
  if (UNARY.has(op)) { set(0, s0); if (op === 'Dropout') set(1, s0); return; }
  if (BINARY.has(op)) {
    const all = ins.filter((x) => x).map((x) => shapes.get(x));
    if (all.every((s) => s)) set(0, broadcastShapes(all as Shape[]));
    // integer shape arithmetic on constants, as exporters emit around Reshape
    const vals = ins.map((x) => consts.get(x));
    if (vals.length === 2 && vals.every((v) => v) && ['Add', 'Sub', 'Mul', 'Div'].includes(op) && types.get(outs[0]!) === INT64) {
      const [a, b] = vals as number[][];
      const len = Math.max(a!.length, b!.length);
      const f = (x: number, y: number) => (op === 'Add' ? x + y : op === 'Sub' ? x - y : op === 'Mul' ? x * y : Math.trunc(x / y));
      consts.set(outs[0]!, Array.from({ length: len }, (_, i) => f(a![a!.length === 1 ? 0 : i]!, b![b!.length === 1 ? 0 : i]!)));
    }
    return;
  }
  switch (op) {
    case 'Shape': {
      if (s0) {
        set(0, [s0.length]);
        const r = s0.length;
        const start = norm(attrInt(n, 'start', 0), r);
        const endA = attr(n, 'end');
        const end = endA ? Math.min(norm(attrInt(n, 'end', r), r), r) : r;
        const part = s0.slice(Math.max(0, start), end);
        if (part.every((d) => typeof d === 'number')) consts.set(outs[0]!, part as number[]);
        shapes.set(outs[0]!, [part.length]);
      }
      return;
    }
    case 'Gemm': {
      const a = sh(0), b = sh(1);
      if (a && b) set(0, [attrInt(n, 'transA', 0) ? a[1]! : a[0]!, attrInt(n, 'transB', 0) ? b[0]! : b[1]!]);
      return;
    }
    case 'MatMul': {
      const a = sh(0), b = sh(1);
      if (!a || !b) return;
      const a2 = a.length === 1 ? [1, a[0]!] : a;
      const b2 = b.length === 1 ? [b[0]!, 1] : b;
      const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]);
      const out: Shape = [...batch, a2[a2.length - 2]!, b2[b2.length - 1]!];
      if (a.length === 1) out.splice(out.length - 2, 1);
      if (b.length === 1) out.pop();
      set(0, out);
      return;
    }
    case 'Conv': case 'MaxPool': case 'AveragePool': case 'ConvTranspose': case 'LpPool': {
      if (!s0) return;
      const w = sh(1);
      const nsp = s0.length - 2;
      const k = attrInts(n, 'kernel_shape') ?? (w ? (w.slice(2) as number[]) : undefined);
      if (!k || k.some((d) => typeof d !== 'number')) return;
      const st = attrInts(n, 'strides') ?? Array(nsp).fill(1);
      const dl = attrInts(n, 'dilations') ?? Array(nsp).fill(1);
      const pads = attrInts(n, 'pads') ?? Array(2 * nsp).fill(0);
      const autoPad = attrString(n, 'auto_pad', 'NOTSET');
      const ceil = attrInt(n, 'ceil_mode', 0);
      let c: Dim = s0[1]!;
      if (op === 'Conv') c = w ? w[0]! : null;
      if (op === 'ConvTranspose') c = w && typeof w[1] === 'number' ? w[1] * attrInt(n, 'group', 1) : null;
      const sp: Dim[] = [];
      for (let i = 0; i < nsp; i++) {
        const x = s0[i + 2];
        const ke = (k[i]! - 1) * dl[i]! + 1;
        if (typeof x !== 'number') { sp.push(null); continue; }
        if (op === 'ConvTranspose') {
          const osh = attrInts(n, 'output_shape');
          const opad = attrInts(n, 'output_padding')?.[i] ?? 0;
          if (osh) sp.push(osh[i]!);
          else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') sp.push(x * st[i]!);
          else sp.push(st[i]! * (x - 1) + opad + ke - (autoPad === 'VALID' ? 0 : pads[i]! + pads[i + nsp]!));
        } else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') sp.push(Math.ceil(x / st[i]!));
        else {
          const p = autoPad === 'VALID' ? 0 : pads[i]! + pads[i + nsp]!;
          const num = x + p - ke;
          let o = (ceil ? Math.ceil(num / st[i]!) : Math.floor(num / st[i]!)) + 1;
          // ceil mode: the last window must start inside the input or left padding
          if (ceil && (o - 1) * st[i]! >= x + pads[i]!) o--;
          sp.push(o);
        }
      }
      set(0, [s0[0]!, c, ...sp]);
      if (op === 'MaxPool') set(1, [s0[0]!, c, ...sp]);
      return;
    }
    case 'GlobalAveragePool': case 'GlobalMaxPool': case 'GlobalLpPool':
      if (s0) set(0, [s0[0]!, s0[1]!, ...s0.slice(2).map(() => 1)]);
      return;
    case 'Flatten': {
      if (!s0) return;
      const ax = norm(attrInt(n, 'axis', 1), s0.length);
      const prod = (d: Dim[]) => d.reduce<Dim>((a, b) => (typeof a === 'number' && typeof b === 'number' ? a * b : null), 1);
      set(0, [prod(s0.slice(0, ax)), prod(s0.slice(ax))]);
      return;
    }
    case 'Reshape': {
      const target = opset >= 5 ? cv(1) : attrInts(n, 'shape');
      if (!target) return;
      const allowzero = attrInt(n, 'allowzero', 0);
      const out: Dim[] = target.map((d, i) => (d === 0 && !allowzero ? (s0 ? s0[i] ?? null : null) : d === -1 ? -1 : d));
      const neg = out.indexOf(-1);
      if (neg >= 0) {
        const total = s0 && s0.every((d) => typeof d === 'number') ? elementCount(s0 as number[]) : null;
        const rest = out.filter((_, i) => i !== neg);
        out[neg] = total !== null && rest.every((d) => typeof d === 'number') ? total / elementCount(rest as number[]) : null;
      }
      set(0, out);
      return;
    }
    case 'Transpose': {
      if (!s0) return;
      const perm = attrInts(n, 'perm') ?? s0.map((_, i) => s0.length - 1 - i);
      set(0, perm.map((p) => s0[p]!));
      return;
    }
    case 'Concat': {
      const all = ins.map((x) => shapes.get(x));
      if (all.some((s) => !s)) return;
      const ss = all as Shape[];
      const ax = norm(attrInt(n, 'axis', 0), ss[0]!.length);
      const out = [...ss[0]!];
      out[ax] = ss.reduce<Dim>((a, s) => (typeof a === 'number' && typeof s[ax] === 'number' ? a + (s[ax] as number) : null), 0);
      set(0, out);
      const vals = ins.map((x) => consts.get(x));
      if (vals.every((v) => v)) consts.set(outs[0]!, (vals as number[][]).flat());
      return;
    }
    case 'Split': {
      if (!s0) return;
      const ax = norm(attrInt(n, 'axis', 0), s0.length);
      let split = opset >= 13 ? cv(1) : attrInts(n, 'split');
      const total = s0[ax];
      if (!split && typeof total === 'number') {
        const k = outs.length;
        const size = Math.ceil(total / k);
        split = outs.map((_, i) => Math.max(0, Math.min(size, total - i * size)));
      }
      outs.forEach((_, i) => { const s = [...s0]; s[ax] = split ? split[i]! : null; set(i, s); });
      return;
    }
    case 'Squeeze': case 'Unsqueeze': {
      if (!s0) return;
      const axes = opset >= 13 ? cv(1) : attrInts(n, 'axes');
      if (op === 'Squeeze') {
        if (!axes) { if (s0.every((d) => d !== null && typeof d === 'number')) set(0, s0.filter((d) => d !== 1)); return; }
        const ax = axes.map((a) => norm(a, s0.length));
        set(0, s0.filter((_, i) => !ax.includes(i)));
        if (cv(0)) consts.set(outs[0]!, cv(0)!);
      } else {
        if (!axes) return;
        const r = s0.length + axes.length;
        const ax = axes.map((a) => norm(a, r));
        const out: Dim[] = [];
        let j = 0;
        for (let i = 0; i < r; i++) out.push(ax.includes(i) ? 1 : s0[j++]!);
        set(0, out);
        if (cv(0)) consts.set(outs[0]!, cv(0)!);
      }
      return;
    }
    case 'ReduceSum': case 'ReduceMean': case 'ReduceMax': case 'ReduceMin': case 'ReduceProd': case 'ReduceL1': case 'ReduceL2': case 'ReduceLogSumExp': case 'ReduceSumSquare': {
      if (!s0) return;
      const axesIn = (op === 'ReduceSum' && opset >= 13) || opset >= 18;
      const axes = axesIn ? cv(1) : attrInts(n, 'axes');
      if (axesIn && ins[1] && !axes) return;
      const keep = attrInt(n, 'keepdims', 1);
      if ((!axes || !axes.length) && axesIn && attrInt(n, 'noop_with_empty_axes', 0)) { set(0, s0); return; }
      const ax = axes && axes.length ? axes.map((a) => norm(a, s0.length)) : s0.map((_, i) => i);
      set(0, keep ? s0.map((d, i) => (ax.includes(i) ? 1 : d)) : s0.filter((_, i) => !ax.includes(i)));
      return;
    }
    case 'Gather': {
      const i1 = sh(1);
      if (!s0 || !i1) return;
      const ax = norm(attrInt(n, 'axis', 0), s0.length);
      set(0, [...s0.slice(0, ax), ...i1, ...s0.slice(ax + 1)]);
      const v = cv(0), idx = cv(1);
      if (v && idx && s0.length === 1) consts.set(outs[0]!, idx.map((i) => v[norm(i, v.length)]!));
      return;
    }
    case 'GatherElements':
      set(0, sh(1));
      return;
    case 'OneHot': {
      // the indices' shape with a `depth`-long axis inserted at `axis`
      if (!s0) return;
      const ax = norm(attrInt(n, 'axis', -1), s0.length + 1);
      const depth = cv(1)?.[0] ?? null;
      set(0, [...s0.slice(0, ax), depth, ...s0.slice(ax)]);
      return;
    }
    case 'Slice': {
      if (!s0) return;
      const starts = opset >= 10 ? cv(1) : attrInts(n, 'starts');
      const ends = opset >= 10 ? cv(2) : attrInts(n, 'ends');
      const axes = opset >= 10 ? (ins[3] ? cv(3) : s0.map((_, i) => i).slice(0, starts?.length ?? 0)) : attrInts(n, 'axes') ?? s0.map((_, i) => i).slice(0, starts?.length ?? 0);
      const steps = opset >= 10 && ins[4] ? cv(4) : starts?.map(() => 1);
      if (!starts || !ends || !axes || !steps) return;
      const out = [...s0];
      axes.forEach((a0, j) => {
        const a = norm(a0, s0.length);
        const d = s0[a];
        if (typeof d !== 'number') { out[a] = null; return; }
        const step = steps[j]!;
        const clamp = (v: number, lo: number, hi: number) => Math.max(lo, Math.min(hi, v));
        let s = starts[j]!, e = ends[j]!;
        s = s < 0 ? s + d : s; e = e < 0 ? e + d : e;
        if (step > 0) { s = clamp(s, 0, d); e = clamp(e, 0, d); out[a] = Math.max(0, Math.ceil((e - s) / step)); }
        else { s = clamp(s, -1, d - 1); e = clamp(e, -1, d - 1); out[a] = Math.max(0, Math.ceil((s - e) / -step)); }
      });
      set(0, out);
      const v = cv(0);
      if (v && s0.length === 1 && axes.length === 1 && steps[0] === 1) {
        const d = v.length;
        let s = starts[0]!, e = ends[0]!;
        s = Math.max(0, Math.min(d, s < 0 ? s + d : s)); e = Math.max(0, Math.min(d, e < 0 ? e + d : e));
        consts.set(outs[0]!, v.slice(s, e));
      }
      return;
    }
    case 'Pad': {
      const pads = opset >= 11 ? cv(1) : attrInts(n, 'pads');
      if (!s0 || !pads) return;
      const r = s0.length;
      const axes = opset >= 18 && ins[3] ? cv(3)!.map((a) => norm(a, r)) : s0.map((_, i) => i);
      const out = [...s0];
      axes.forEach((a, j) => {
        const d = s0[a];
        out[a] = typeof d === 'number' ? d + pads[j]! + pads[j + axes.length]! : null;
      });
      set(0, out);
      return;
    }
    case 'Expand': {
      const target = cv(1);
      const len = sh(1)?.[0];
      if (s0 && target) set(0, broadcastShapes([s0, target]));
      else if (s0 && typeof len === 'number') set(0, broadcastShapes([s0, new Array<Dim>(len).fill(null)]));
      return;
    }
    case 'Tile': {
      const reps = cv(1);
      if (s0 && reps) set(0, s0.map((d, i) => (typeof d === 'number' ? d * reps[i]! : reps[i] === 1 ? d : null)));
      return;
    }
    case 'Resize': case 'Upsample': {
      // sizes, or floor(dim * scale); Resize-18's `axes` (scales for some axes only) is left unknown
      if (!s0 || attr(n, 'axes')) return;
      const sizes = op === 'Resize' && opset >= 11 ? cv(3) : undefined;
      if (sizes && sizes.length === s0.length) { set(0, sizes); return; }
      const scales = op === 'Upsample' && opset < 9 ? attr(n, 'scales')?.floats : cv(op === 'Resize' && opset >= 11 ? 2 : 1);
      if (scales && scales.length === s0.length) set(0, s0.map((d, i) => (typeof d === 'number' ? Math.floor(d * scales[i]!) : scales[i] === 1 ? d : null)));
      return;
    }
    case 'ConstantOfShape': {
      // the values when constant, else at least the rank (the length of the shape input)
      const v = cv(0);
      const len = s0?.[0];
      if (v) set(0, v);
      else if (typeof len === 'number') set(0, new Array<Dim>(len).fill(null));
      return;
    }
  }
}

/** A tensor whose value the model holds (initializer, Constant node): its shape, type and small values. */
function addConst(name: string, t: TensorProto, shapes: Map<string, Shape>, consts: Map<string, number[]>, types: Map<string, number>) {
  shapes.set(name, (t.dims ?? []).map(int));
  types.set(name, t.dataType ?? 0);
  const v = constValues(t, 4096);
  if (v) consts.set(name, v);
}
