/**
 * Conv and ConvTranspose. For Conv (the recipes in DESIGN.md, verified on ORT CPU):
 * - dX = ConvTranspose(dY, W) with the forward strides, dilations, pads and group, and output_padding set
 *   to the rows the forward conv's floor division dropped, so the result has X's size again;
 * - dW, strided and ungrouped (1-D, 2-D): one Conv a dimension up, X the image and dY the kernels (convWeightGradByConvUp);
 * - dW otherwise = im2col patches of X times dY, one batched MatMul summed over the batch (convWeightGradByPatches);
 *   where W's shape is not static, Conv(X^T, dY^T) with batch and channel axes swapped, strides and
 *   dilations swapped, the forward pads, sliced to the kernel size (the "image" is X, the "kernel" is
 *   dY, summed over the batch; groups folded into the channel axis);
 * - dB = ReduceSum(dY) over batch and spatial axes.
 * auto_pad is resolved to explicit pads from the static spatial sizes (the batch may stay symbolic).
 */
import { attrInt, attrInts, attrString, intAttr, intsAttr } from '../../onnx/attrs.js';
import type { AttributeProto, NodeProto } from '../../onnx/types.js';
import type { GradCtx } from '../ctx.js';
import { DataType } from '../../onnx/dtype.js';
import { UnsupportedGradientError } from './errors.js';
import { rule, type GradRule } from './types.js';
import { elementCount } from '../../onnx/tensor.js';
import { chunks, concat } from '../../onnx/concat.js';

export interface ConvGeom {
  /** spatial input sizes */
  inSize: number[];
  outSize: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [begin..., end...] */
  pads: number[];
  group: number;
}

/** Explicit geometry of a Conv/pool node from its attributes and the static spatial sizes. */
export function convGeom(ctx: GradCtx, node: NodeProto, X: string, kernel: number[], outSize: number[]): ConvGeom {
  const name = node.name ?? '';
  const inSize = ctx.needDims(X, 2, `${node.opType} gradient`);
  const n = inSize.length;
  const strides = attrInts(node, 'strides') ?? Array<number>(n).fill(1);
  const dilations = attrInts(node, 'dilations') ?? Array<number>(n).fill(1);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  let pads = attrInts(node, 'pads') ?? Array<number>(2 * n).fill(0);
  if (autoPad === 'VALID') pads = Array<number>(2 * n).fill(0);
  else if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = Array<number>(2 * n).fill(0);
    for (let i = 0; i < n; i++) {
      const ke = (kernel[i]! - 1) * dilations[i]! + 1;
      const total = Math.max(0, (outSize[i]! - 1) * strides[i]! + ke - inSize[i]!);
      const small = Math.floor(total / 2);
      // SAME_UPPER puts the odd pad at the end, SAME_LOWER at the beginning
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + n] = total - pads[i]!;
    }
  } else if (autoPad !== 'NOTSET') throw new UnsupportedGradientError(node.opType ?? '', name, `auto_pad ${autoPad}`);
  return { inSize, outSize, kernel, strides, dilations, pads, group: attrInt(node, 'group', 1) };
}

const geomAttrs = (g: ConvGeom, extra: AttributeProto[] = []): AttributeProto[] => [
  intsAttr('kernel_shape', g.kernel),
  intsAttr('strides', g.strides),
  intsAttr('dilations', g.dilations),
  intsAttr('pads', g.pads),
  ...extra,
];

/**
 * K one-hot kernels (K, 1, kernel...) for K = the kernel's element count: a Conv with them lays out each
 * window's K elements as K channels (exact: products x*1 plus zeros).
 */
export function oneHotKernels(ctx: GradCtx, dataType: number, kernel: number[]): string {
  const K = elementCount(kernel);
  return ctx.constant(
    dataType,
    [K, 1, ...kernel],
    permutation(K, (j) => j),
  );
}

/**
 * The transpose of a strided window op on the input side: ConvTranspose of `dy` (N, Cin, out...) with
 * weights `w` back to the forward input size (the rows dropped by the floor division come back as output_padding).
 */
export function convInputGrad(ctx: GradCtx, dy: string, w: string, g: ConvGeom): string {
  const n = g.inSize.length;
  const outputPadding = g.inSize.map((h, i) => {
    const ke = (g.kernel[i]! - 1) * g.dilations[i]! + 1;
    return h - (g.strides[i]! * (g.outSize[i]! - 1) + ke - g.pads[i]! - g.pads[i + n]!);
  });
  const ws = ctx.fixedShape(w);
  // onnxruntime 1.30's WebGPU ConvTranspose is wrong for groups of several input channels and one output
  // channel (a Conv with a channel multiplier: W = (G*m, 1, k)); the same sum as a depthwise ConvTranspose
  // (group = G*m, which it gets right) followed by adding up each group's m channels
  const multiplier = ws && g.group > 1 && ws[1] === 1 && ws[0]! > g.group ? ws[0]! / g.group : 1;
  const attrs = geomAttrs(g, [intAttr('group', multiplier > 1 ? ws![0]! : g.group)]);
  if (outputPadding.some((p) => p !== 0)) attrs.push(intsAttr('output_padding', outputPadding));
  const out = ctx.op('ConvTranspose', [dy, w], attrs);
  if (multiplier === 1) return out;
  const split = ctx.reshape(out, ctx.op('Concat', [ctx.ints([0, g.group, multiplier]), ctx.dimsOf(out, 2)], [intAttr('axis', 0)]));
  return ctx.reduceSum(split, [2], false);
}

/**
 * Conv's input gradient with stride 1 as a Conv: the full correlation of dY with W flipped in space and
 * its channel axes swapped per group, padded by (effective kernel - 1 - forward pad) on each side (the
 * output then has X's size exactly). onnxruntime CPU runs a Conv through its blocked-layout kernels,
 * a ConvTranspose through GEMM + col2im, which took 1.3x the forward Conv on the bench ResNet. Strided
 * convs, pads wider than the kernel, and few channels (where ConvTranspose is as fast or faster) stay
 * on ConvTranspose.
 */
function convInputGradByConv(ctx: GradCtx, dy: string, w: string, g: ConvGeom): string | undefined {
  const ws = ctx.fixedShape(w);
  const n = g.kernel.length;
  const form = ctx.options.convInput ?? 'auto';
  if (form === 'convTranspose' || !ws || ctx.opset < 10 || g.strides.some((s) => s !== 1)) return undefined;
  // measured on onnxruntime 1.30 CPU, one thread, 3x3 kernels: the Conv wins where dX has 16+ channels
  // and no fewer than dY (8x64x64x16: 2.6 vs 4.2 ms; 8x32x32x64: 7.2 vs 8.2; 8x16x16x128: 6.9 vs 7.7),
  // ConvTranspose where dX has fewer (64x14x14 32 -> 16: 2.0 vs 2.5 ms; 8x64x64 32 -> 3: 1.1 vs 2.4)
  if (form === 'auto' && (ws[1]! * g.group < 16 || ws[1]! * g.group < ws[0]!)) return undefined;
  const pads = [...g.pads.slice(0, n), ...g.pads.slice(n)].map((p, i) => (g.kernel[i % n]! - 1) * g.dilations[i % n]! - p);
  if (pads.some((p) => p < 0)) return undefined;
  const G = g.group;
  const [cout, cg] = [ws[0]!, ws[1]!];
  return ctx.op(
    'Conv',
    [dy, flippedTranspose(ctx, w, G, cout, cg, g.kernel)],
    [intsAttr('kernel_shape', g.kernel), intsAttr('dilations', g.dilations), intsAttr('pads', pads), intAttr('group', G)],
  );
}

/** float and double: the types whose one-hot MatMuls onnxruntime runs on every EP (and exactly: x*1 plus zeros) */
const byMatMul = (ctx: GradCtx, x: string) => ctx.dtype(x) === DataType.FLOAT || ctx.dtype(x) === DataType.DOUBLE;

/** (K, K) row-major, a one in each row r at column at(r) */
function permutation(K: number, at: (row: number) => number): number[] {
  const m = new Array<number>(K * K).fill(0);
  for (let r = 0; r < K; r++) m[r * K + at(r)] = 1;
  return m;
}

/** The permutation a MatMul applies to the last axis of its left operand (see permutation) */
function permutationMatrix(ctx: GradCtx, dataType: number, K: number, at: (row: number) => number): string {
  return ctx.constant(dataType, [K, K], permutation(K, at));
}

/**
 * W (G*Og, Cg, k...) with each group's channel axes swapped and every spatial axis reversed: (G*Cg, Og, k...).
 * Reversing all spatial axes reverses the flat kernel index, so it is one MatMul by the (K, K) exchange
 * matrix over the swapped (…, K) rows, where a Slice with negative steps copies element by element:
 * on ResNet-18's 512x512x3x3 weights the Transpose + Slice took 17-22 ms, the Transpose of K-element rows
 * + MatMul 12 ms (onnxruntime 1.30 CPU, one thread), and the MatMul runs on every thread.
 */
function flippedTranspose(ctx: GradCtx, w: string, G: number, cout: number, cg: number, kernel: number[]): string {
  const K = elementCount(kernel);
  const rows = ctx.transpose(ctx.reshape(w, ctx.ints([G, cout / G, cg, K])), [0, 2, 1, 3]); // (G, Cg, Og, K)
  if (K === 1) return ctx.reshape(rows, ctx.ints([G * cg, cout / G, ...kernel]));
  if (byMatMul(ctx, w)) {
    const flipped = ctx.op('MatMul', [rows, permutationMatrix(ctx, ctx.dtype(w), K, (r) => K - 1 - r)]);
    return ctx.reshape(flipped, ctx.ints([G * cg, cout / G, ...kernel]));
  }
  const sp = kernel.map((_, i) => i + 2);
  return ctx.slice(
    ctx.reshape(rows, ctx.ints([G * cg, cout / G, ...kernel])),
    sp.map(() => -1),
    sp.map(() => -(2 ** 62)),
    sp,
    sp.map(() => -1),
  );
}

/**
 * Correlation of `img` (N, Ci, in...) with `ker` (N, Co, k...) over the batch, per group:
 * out[co, ci, j] = sum_{n,p} ker[n, co, p] * img_padded[n, ci, j*dilation + p*stride], sliced to `size`.
 * Returns (Co, Ci/G, size...) for grouped layouts where Ci and Co are split into G groups.
 */
function batchCorrelation(
  ctx: GradCtx,
  img: string,
  ker: string,
  group: number,
  strides: number[],
  dilations: number[],
  pads: number[],
  size: number[],
): string {
  const n = size.length;
  const sp = Array.from({ length: n }, (_, i) => i + 2);
  let input: string;
  let weight: string;
  if (group === 1) {
    input = ctx.transpose(img, [1, 0, ...sp]); // (Ci, N, in...)
    weight = ctx.transpose(ker, [1, 0, ...sp]); // (Co, N, out...)
  } else {
    // fold the groups into the channel axis: input (Ci/G, G*N, in...), weight (Co, N, out...), group=G
    const ci = ctx.needDims(img, 1, 'grouped gradient')[0]!;
    const r5 = ctx.reshape(img, ctx.op('Concat', [ctx.ints([0, group, ci / group]), ctx.dimsOf(img, 2)], [intAttr('axis', 0)]));
    const t = ctx.transpose(r5, [2, 1, 0, ...sp.map((a) => a + 1)]); // (Ci/G, G, N, in...)
    input = ctx.reshape(t, ctx.op('Concat', [ctx.ints([ci / group, -1]), ctx.dimsOf(img, 2)], [intAttr('axis', 0)]));
    weight = ctx.transpose(ker, [1, 0, ...sp]);
  }
  const attrs = [intsAttr('strides', dilations), intsAttr('dilations', strides), intsAttr('pads', pads)];
  if (group !== 1) attrs.push(intAttr('group', group));
  const full = ctx.op('Conv', [input, weight], attrs); // (Ci/G, Co, k'...)
  const cut = ctx.slice(
    full,
    size.map(() => 0),
    size,
    sp,
  );
  return ctx.transpose(cut, [1, 0, ...sp]);
}

/**
 * Conv's weight gradient as im2col and MatMuls, when W's shape is static:
 * dW[co, ci, k] = sum_{n,l} dY[n, co, l] * P[n, ci, k, l], where P holds each output position's window
 * (K = kernel elements, L = output positions), i.e. per image a GEMM over the output positions, summed
 * over the batch. Ungrouped, the windows at kernel offset k are one strided Slice of the padded X, and
 * each offset gets its own MatMul; grouped, P is a Conv of each channel alone with K one-hot kernels
 * (exact: products x*1 plus zeros) and one MatMul per group. A 1x1 kernel without pads needs no patches
 * (X itself, strided by a Slice). onnxruntime CPU runs these GEMMs at about forward-conv speed, where
 * the batch correlation (a Conv whose kernel is the whole of dY) ran 5-8x slower than the forward Conv.
 */
function convWeightGradByPatches(ctx: GradCtx, X: string, gY: string, W: string, g: ConvGeom): string | undefined {
  const ws = ctx.fixedShape(W);
  if (!ws) return undefined;
  const G = g.group;
  const [cout, cg] = [ws[0]!, ws[1]!];
  const C = cg * G;
  const og = cout / G;
  const K = elementCount(g.kernel);
  const L = elementCount(g.outSize);
  const sp = g.kernel.map((_, i) => i + 2);
  let P: string;
  if (K === 1 && g.pads.every((p) => p === 0)) {
    const same = g.strides.every((s) => s === 1) && g.outSize.every((o, i) => o === g.inSize[i]);
    P = same
      ? X
      : ctx.slice(
          X,
          sp.map(() => 0),
          g.outSize.map((o, i) => (o - 1) * g.strides[i]! + 1),
          sp,
          g.strides,
        );
  } else if (G === 1 && ctx.opset >= 11) {
    // ungrouped: one strided Slice of the padded X per kernel offset (N, C, out...), each times dY^T
    const n = g.kernel.length;
    // Per image, each offset's GEMM leaves an N-fold partial (C, Cout) to concatenate and sum; where those
    // outweigh X and dY (many channels, few positions: K*C*Cout > (C+Cout)*L), move the batch next to
    // the positions instead and fold it into the GEMMs' inner dimension: (C, N*L) x (N*L, Cout) per
    // offset. On the bench ResNet's 16x16x128 layer this took the weight gradients from 36.4 to 32.0 ms.
    const fold = K * C * cout > (C + cout) * L;
    const src = fold ? ctx.transpose(X, [1, 0, ...sp]) : X;
    // 2-D stride 1: every offset's windows are one contiguous run of the padded X read row-major,
    // shifted by a*Wp + b, when each output row is taken Wp wide (dY gets Wp - Wo zero columns, so the
    // wrapped-around extra products count zero); one more zero row keeps the last shift in range. Long
    // runs copy faster than Wo-wide strided ones and the GEMMs ran faster on them: bench ResNet 2-3%
    // a step (Slice 17.8 -> 16.1 ms, GEMMs 79 -> 73 ms, one more Pad +3 ms). (Moving the row offset
    // into kh shifted copies of dY, three wider GEMMs instead of nine, lost 5%: Concat and Pad copies.)
    const shift = n === 2 && g.strides.every((st) => st === 1);
    const Wp = g.inSize[1]! + g.pads[1]! + g.pads[3]!;
    const pads = shift ? [g.pads[0]!, g.pads[1]!, g.pads[2]! + 1, g.pads[3]!] : g.pads;
    const padded = pads.some((p) => p !== 0) ? ctx.op('Pad', [src, ctx.ints([0, 0, ...pads.slice(0, n), 0, 0, ...pads.slice(n)])]) : src;
    const Lr = shift ? g.outSize[0]! * Wp : L; // positions per image the GEMMs run over
    const rows = shift ? ctx.reshape(padded, ctx.ints([0, 0, -1])) : padded;
    const parts: string[] = [];
    for (let j = 0; j < K; j++) {
      const at: number[] = []; // offset j in row-major order, in dilated steps
      for (let i = n - 1, r = j; i >= 0; r = Math.floor(r / g.kernel[i]!), i--) at[i] = (r % g.kernel[i]!) * g.dilations[i]!;
      if (shift) parts.push(ctx.slice(rows, [at[0]! * Wp + at[1]!], [at[0]! * Wp + at[1]! + Lr], [2]));
      else
        parts.push(
          ctx.slice(
            padded,
            at,
            at.map((a0, i) => a0 + (g.outSize[i]! - 1) * g.strides[i]! + 1),
            sp,
            g.strides,
          ),
        );
    }
    const gW = shift && Wp > g.outSize[1]! ? ctx.op('Pad', [gY, ctx.ints([0, 0, 0, 0, 0, 0, 0, Wp - g.outSize[1]!])]) : gY;
    // Each offset's GEMM is dY x patches^T, giving (Cout, C) (onnxruntime folds the Transpose into the
    // MatMul); the K of them stacked (K, Cout*C) need only the offset axis moved inwards to be W's
    // layout. (Patches x dY^T gave (K, C, Cout), whose reversal to (Cout, C, K) ran 50-270 ms a step on
    // ResNet-18's 512x512x3x3 layers: onnxruntime's general Transpose path.) That move is a 2-D
    // transpose with K-element rows, which onnxruntime's Transpose copies element by element on one
    // thread; as the transposed operand of a MatMul by the identity, onnxruntime CPU folds it into the
    // GEMM's packing (FusedMatMul, transA): 512x512x3x3 in 12 instead of 23 ms, on every thread. Exact.
    const toW = (stack: string) => {
      const rows = ctx.transpose(ctx.reshape(stack, ctx.ints([K, -1])), [1, 0]); // (Cout*C, K)
      return ctx.reshape(byMatMul(ctx, stack) ? ctx.op('MatMul', [rows, permutationMatrix(ctx, ctx.dtype(stack), K, (r) => r)]) : rows, ctx.ints(ws));
    };
    if (fold) {
      const D = ctx.reshape(ctx.transpose(gW, [1, 0, ...sp]), ctx.ints([cout, -1])); // (Cout, N*L)
      return toW(
        concat(
          ctx,
          parts.map((p) => ctx.op('MatMul', [D, ctx.transpose(ctx.reshape(p, ctx.ints([C, -1])), [1, 0])])),
          0,
        ),
      ); // (K*Cout, C)
    }
    const D = ctx.reshape(gW, ctx.ints([-1, cout, Lr]));
    // one MatMul per offset rather than one over the concatenated patches: writing and reading back all
    // K*C*L patch rows costs more than the smaller GEMMs lose (bench ResNet: 292 vs 330 ms a step)
    const mm = parts.map((p) => ctx.op('MatMul', [D, ctx.transpose(ctx.reshape(p, ctx.ints([-1, C, Lr])), [0, 2, 1])])); // (N, Cout, C) each
    // (N, K*Cout, C) summed over the batch, as runs of offsets each summed, then stacked (K*Cout, C): a
    // Concat of 8+ inputs is wrong on onnxruntime-web's WebGPU EP (onnx/concat.ts)
    return toW(
      concat(
        ctx,
        chunks(mm).map((run) => ctx.reduceSum(concat(ctx, run, 1), [0], false)),
        0,
      ),
    );
  } else {
    // grouped: every channel on its own through K one-hot kernels (N*C, K, L). (A depthwise Conv with K
    // kernels per channel is faster on CPU, but onnxruntime 1.30's WebGPU EP gets it wrong.)
    const kernels = oneHotKernels(ctx, ctx.dtype(X), g.kernel);
    P = ctx.op('Conv', [ctx.reshape(X, ctx.ints([-1, 1, ...g.inSize])), kernels], geomAttrs(g));
  }
  const Pg = ctx.reshape(P, ctx.ints([-1, G, cg * K, L]));
  const Dg = ctx.reshape(gY, ctx.ints([-1, G, og, L]));
  const m = ctx.op('MatMul', [Dg, ctx.transpose(Pg, [0, 1, 3, 2])]); // (N, G, Og, Cg*K): W's layout, summed over N
  return ctx.reshape(ctx.reduceSum(m, [0], false), ctx.ints(ws));
}

/**
 * Conv's weight gradient for strided, ungrouped 1-D and 2-D convs as one Conv a dimension up (the "Conv3D
 * trick"): X (N, C, in...) read as one image (1, N, C, in...) of N channels, dY (N, K, out...) as K kernels
 * (K, N, 1, out...) dilated by the forward strides, strided by the forward dilations, padded as forward:
 * out[0, k, c, j] = sum_{n,p} dY[n, k, p] * X_padded[n, c, j*dilation + p*stride] = dW[k, c, j], sliced to
 * the kernel (the floor division may leave more) and reshaped (free) to (K, C, kernel...). It builds no
 * K-fold copy of X's windows, where the per-offset strided Slices build K of them (49 for a 7x7 stem).
 */
function convWeightGradByConvUp(ctx: GradCtx, X: string, gY: string, W: string, g: ConvGeom): string | undefined {
  const ws = ctx.fixedShape(W);
  const n = g.kernel.length;
  if (!ws || g.group !== 1 || n > 2 || g.strides.every((s) => s === 1) || elementCount(g.kernel) === 1) return undefined;
  const [cout, C] = [ws[0]!, ws[1]!];
  const img = ctx.reshape(X, ctx.ints([1, -1, C, ...g.inSize])); // (1, N, C, in...)
  const sp = g.kernel.map((_, i) => i + 2);
  const ker = ctx.reshape(ctx.transpose(gY, [1, 0, ...sp]), ctx.ints([cout, -1, 1, ...g.outSize])); // (K, N, 1, out...)
  const pads = [0, ...g.pads.slice(0, n), 0, ...g.pads.slice(n)];
  const full = ctx.op('Conv', [img, ker], [intsAttr('strides', [1, ...g.dilations]), intsAttr('dilations', [1, ...g.strides]), intsAttr('pads', pads)]); // (1, K, C, k'...)
  const size = g.inSize.map((h, i) => h + g.pads[i]! + g.pads[i + n]! - g.strides[i]! * (g.outSize[i]! - 1) - 1);
  const reach = size.map((s, i) => Math.floor(s / g.dilations[i]!) + 1);
  const cut = reach.some((r, i) => r !== g.kernel[i])
    ? ctx.slice(
        full,
        g.kernel.map(() => 0),
        g.kernel,
        sp.map((a) => a + 1),
      )
    : full;
  return ctx.reshape(cut, ctx.ints(ws));
}

/**
 * A depthwise Conv's weight gradient (W (C, 1, k...), group C) as one depthwise Conv over batch x channels
 * (GradOptions.depthwiseWeight 'correlation'): X read as one image (1, N*C, in...), dY as N*C kernels
 * (N*C, 1, out...) dilated by the forward strides, strided by the forward dilations:
 * out[0, n*C + c, j] = sum_p dY[n, c, p] * X_padded[n, c, j*dilation + p*stride] = dW[c, 0, j] from image n,
 * summed over n. Its group is N*C, so the batch must be static.
 */
function depthwiseWeightGradByCorrelation(ctx: GradCtx, X: string, gY: string, W: string, g: ConvGeom): string | undefined {
  const ws = ctx.fixedShape(W);
  const xs = ctx.fixedShape(X);
  const n = g.kernel.length;
  if (ctx.options.depthwiseWeight !== 'correlation' || !ws || !xs || n !== 2 || ws[1] !== 1 || ws[0] !== g.group || xs[1] !== g.group) return undefined;
  const NC = xs[0]! * g.group;
  if (NC % (ctx.options.channelBlock ?? 1) !== 0) return undefined;
  const img = ctx.reshape(X, ctx.ints([1, NC, ...g.inSize]));
  const ker = ctx.reshape(gY, ctx.ints([NC, 1, ...g.outSize]));
  // end pads that make the output the kernel (a negative one: none, and the surplus sliced off)
  const end = g.kernel.map((k, i) => (k - 1) * g.dilations[i]! + (g.outSize[i]! - 1) * g.strides[i]! + 1 - g.inSize[i]! - g.pads[i]!);
  const pads = [...g.pads.slice(0, n), ...end.map((e) => Math.max(0, e))];
  const attrs = [intsAttr('strides', g.dilations), intsAttr('dilations', g.strides), intsAttr('pads', pads), intAttr('group', NC)];
  const full = ctx.op('Conv', [img, ker], attrs); // (1, N*C, k'...)
  const sp = g.kernel.map((_, i) => i + 2);
  const cut = end.some((e) => e < 0)
    ? ctx.slice(
        full,
        g.kernel.map(() => 0),
        g.kernel,
        sp,
      )
    : full;
  return ctx.reshape(ctx.reduceSum(ctx.reshape(cut, ctx.ints([xs[0]!, -1])), [0], false), ctx.ints(ws));
}

export const CONV: Record<string, GradRule> = {
  Conv: rule('all', ({ node, x, y, dy, need, ctx }) => {
    const gY = dy[0]!;
    const [X, W, B] = [x[0]!, x[1]!, x[2]];
    const kernel = attrInts(node, 'kernel_shape') ?? ctx.needDims(W, 2, 'Conv kernel size');
    const geom = convGeom(ctx, node, X, kernel, ctx.needDims(y[0]!, 2, 'Conv gradient'));
    const sp = kernel.map((_, i) => i + 2);
    const dX = need[0] ? (convInputGradByConv(ctx, gY, W, geom) ?? convInputGrad(ctx, gY, W, geom)) : undefined;
    const dW = need[1]
      ? (convWeightGradByConvUp(ctx, X, gY, W, geom) ??
        depthwiseWeightGradByCorrelation(ctx, X, gY, W, geom) ??
        convWeightGradByPatches(ctx, X, gY, W, geom) ??
        batchCorrelation(ctx, X, gY, geom.group, geom.strides, geom.dilations, geom.pads, kernel))
      : undefined;
    const dB = need[2] && B ? ctx.reduceSum(gY, [0, ...sp], false) : undefined;
    return [dX, dW, dB];
  }),
  /*
   * ConvTranspose is the adjoint of Conv in X: dX = Conv(dY, W) with the same geometry. dW correlates
   * dY (the padded "image") with X (the "kernel"): dW[c, o, k] = sum_{n,i} X[n,c,i] dY[n, o, i*s + k*d - pad].
   */
  ConvTranspose: rule('all', ({ node, x, y, dy, need, ctx }) => {
    const gY = dy[0]!;
    const [X, W, B] = [x[0]!, x[1]!, x[2]];
    const name = node.name ?? '';
    const kernel = attrInts(node, 'kernel_shape') ?? ctx.needDims(W, 2, 'ConvTranspose kernel size');
    const inSize = ctx.needDims(X, 2, 'ConvTranspose gradient');
    const outSize = ctx.needDims(y[0]!, 2, 'ConvTranspose gradient');
    const n = kernel.length;
    const strides = attrInts(node, 'strides') ?? Array<number>(n).fill(1);
    const dilations = attrInts(node, 'dilations') ?? Array<number>(n).fill(1);
    const group = attrInt(node, 'group', 1);
    const autoPad = attrString(node, 'auto_pad', 'NOTSET');
    if (autoPad !== 'NOTSET' && autoPad !== 'VALID') throw new UnsupportedGradientError('ConvTranspose', name, `auto_pad ${autoPad}`);
    if (attrInts(node, 'output_shape')) throw new UnsupportedGradientError('ConvTranspose', name, 'output_shape (give pads and output_padding instead)');
    const pads = autoPad === 'VALID' ? Array<number>(2 * n).fill(0) : (attrInts(node, 'pads') ?? Array<number>(2 * n).fill(0));
    const sp = kernel.map((_, i) => i + 2);
    let dX: string | undefined;
    if (need[0]) {
      dX = ctx.op(
        'Conv',
        [gY, W],
        [intsAttr('kernel_shape', kernel), intsAttr('strides', strides), intsAttr('dilations', dilations), intsAttr('pads', pads), intAttr('group', group)],
      );
    }
    let dW: string | undefined;
    if (need[1]) {
      // the image dY padded so that position i*s + k*d - pad_begin is in range; the end pad covers output_padding
      const endPads = inSize.map((h, i) => Math.max(0, (h - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! - pads[i]! - (outSize[i]! - 1)));
      const cpads = [...pads.slice(0, n), ...endPads];
      dW = batchCorrelation(ctx, gY, X, group, strides, dilations, cpads, kernel);
      // batchCorrelation returns (X-channels, dY-channels/G, k): ConvTranspose's W layout (C_in, C_out/G, k)
    }
    const dB = need[2] && B ? ctx.reduceSum(gY, [0, ...sp], false) : undefined;
    return [dX, dW, dB];
  }),
};
