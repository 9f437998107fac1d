/**
 * Pooling. MaxPool: the gradient of each output goes to the input element its window picked. MaxPool's
 * Indices output names that element (flat NCHW index), so ScatterElements(reduction='add') of dY into a
 * flat zero tensor at those indices is the gradient, summing where overlapping windows picked the same
 * element (MaxUnpool would overwrite instead). AveragePool: the transpose of a box filter, i.e. a
 * ConvTranspose of dY / divisor with a ones kernel, per channel.
 */
import { attr, attrInt, attrInts, attrString, intAttr, intsAttr, stringAttr } from '../../onnx/attrs.js';
import { DataType } from '../../onnx/dtype.js';
import { convGeom, convInputGrad, oneHotKernels } from './conv.js';
import { UnsupportedGradientError } from './errors.js';
import { rule, type GradRule, type Grads, type RuleArgs } from './types.js';
import { elementCount } from '../../onnx/tensor.js';

export const POOL: Record<string, GradRule> = {
  // double: onnxruntime has no double Conv, and no EP without double MaxPool Indices runs double anyway
  MaxPool: rule([0], (a) => (a.ctx.options.maxPool === 'indices' || a.ctx.dtype(a.x[0]!) === DataType.DOUBLE ? maxPoolByIndices(a) : maxPoolByWindows(a))),
  AveragePool: rule([0], ({ node, x, y, dy, ctx }) => {
    const name = node.name ?? '';
    const X = x[0]!;
    const kernel = attrInts(node, 'kernel_shape')!;
    const outSize = ctx.needDims(y[0]!, 2, 'AveragePool gradient');
    const geom = convGeom(ctx, node, X, kernel, outSize);
    geom.group = 1;
    const n = kernel.length;
    const inclPad = attrInt(node, 'count_include_pad', 0) === 1;
    if (attr(node, 'auto_pad') && attrString(node, 'auto_pad') !== 'NOTSET' && inclPad) {
      throw new UnsupportedGradientError('AveragePool', name, 'auto_pad with count_include_pad=1');
    }
    const pads = ceilPads(geom, kernel, outSize);
    // divisor per output: the window's elements counted in X (or in X plus its declared pads)
    const ones = ctx.constant(ctx.dtype(X), [1, 1, ...geom.inSize], new Array(elementCount(geom.inSize)).fill(1));
    const kOnes = ctx.constant(ctx.dtype(X), [1, 1, ...kernel], new Array(elementCount(kernel)).fill(1));
    let counted = ones;
    let cpads = pads;
    if (inclPad) {
      // the declared pads count as elements: ones over the padded extent, conv'd with the extra (ceil) pads only
      const padded = geom.inSize.map((h, i) => h + geom.pads[i]! + geom.pads[i + n]!);
      counted = ctx.constant(ctx.dtype(X), [1, 1, ...padded], new Array(elementCount(padded)).fill(1));
      cpads = pads.map((p, i) => p - geom.pads[i]!);
    }
    const convAttrs = [intsAttr('kernel_shape', kernel), intsAttr('strides', geom.strides), intsAttr('dilations', geom.dilations), intsAttr('pads', cpads)];
    const divisor = ctx.op('Conv', [counted, kOnes], convAttrs); // (1, 1, out...)
    // per channel: fold N*C into the batch axis, spread with a ones kernel, unfold
    const g = ctx.div(dy[0]!, divisor);
    const g1 = ctx.reshape(g, ctx.op('Concat', [ctx.ints([-1, 1]), ctx.dimsOf(y[0]!, 2)], [intAttr('axis', 0)]));
    const dx = convInputGrad(ctx, g1, kOnes, { ...geom, pads });
    return [ctx.reshape(dx, ctx.shapeOf(X))];
  }),
  GlobalAveragePool: rule([0], ({ x, y, dy, ctx }) => {
    const X = x[0]!;
    const sp = ctx.shape(X)?.slice(2);
    const scale = sp?.every((d) => typeof d === 'number') ? ctx.scalar(1 / elementCount(sp as number[]), X) : ctx.div(ctx.countAs(y[0]!, X), ctx.countAs(X, X));
    return [ctx.op('Expand', [ctx.mul(dy[0]!, scale), ctx.shapeOf(X)])];
  }),
  // to every element equal to its channel's max (ties each get the full gradient)
  GlobalMaxPool: rule([0], ({ x, y, dy, ctx }) => {
    const G = ctx.op('Expand', [dy[0]!, ctx.shapeOf(x[0]!)]);
    return [ctx.select(ctx.op('Equal', [x[0]!, y[0]!]), G, 0, G)];
  }),
};

/** The lowest finite value of a float type: the pad value that never wins a max and never overflows a product. */
function lowest(dtype: number): number {
  if (dtype === DataType.DOUBLE) return -Number.MAX_VALUE;
  if (dtype === DataType.FLOAT16) return -65504;
  return -3.4028234663852886e38;
}

/**
 * MaxPool's gradient from its window contents, without Indices (onnxruntime 1.30's WebGPU MaxPool
 * rejects the Indices output at run time, and ScatterElements-add needs opset 16):
 * 1. pad X with the type's lowest value as MaxPool does implicitly (plus the ceil_mode overhang), if any;
 * 2. a Conv with K one-hot kernels (K = kernel size) lays out each window's K elements as K channels;
 * 3. ArgMax over the K channels picks the first maximum in scan order, as onnxruntime's and PyTorch's
 *    kernels do;
 * 4. dY on that channel (times the one-hot Equal as a mask), and a ConvTranspose with the same one-hot kernels
 *    adds each window's gradient back at its position, summing where windows overlap.
 * (Matching the windows against Y and keeping the first match by an exclusive CumSum took five passes
 * over the K-fold windows where ArgMax, Equal and Where take three: ResNet-18's 3x3 stride-2 MaxPool
 * at batch 8 went from 142 to 111 ms a step on onnxruntime 1.30 CPU, one thread.)
 * Exact: one-hot products are x*1 plus zeros.
 */
function maxPoolByWindows({ node, x, y, dy, ctx }: RuleArgs): Grads {
  ctx.need(11, 'the MaxPool gradient (Pad with inputs)');
  const X = x[0]!;
  const dt = ctx.dtype(X);
  const kernel = attrInts(node, 'kernel_shape')!;
  const outSize = ctx.needDims(y[0]!, 2, 'MaxPool gradient');
  const geom = convGeom(ctx, node, X, kernel, outSize);
  const n = kernel.length;
  const pads = ceilPads(geom, kernel, outSize);
  const kernels = oneHotKernels(ctx, dt, kernel);
  const flat = (v: string) => ctx.reshape(v, ctx.op('Concat', [ctx.ints([-1, 1]), ctx.dimsOf(v, 2)], [intAttr('axis', 0)]));
  const padded = pads.some((p) => p !== 0)
    ? ctx.op('Pad', [flat(X), ctx.ints([0, 0, ...pads.slice(0, n), 0, 0, ...pads.slice(n)]), ctx.scalar(lowest(dt), X)])
    : flat(X);
  // (strided Slices of each offset, concatenated, cost as much as this Conv; DepthToSpace for the way
  // back costs twice the ConvTranspose on 2x2 tiles: both measured on onnxruntime 1.30 CPU)
  // square windows tiling X exactly (kernel = stride, no pads): SpaceToDepth lays them out in the same
  // order, 3x faster than the one-hot Conv on onnxruntime 1.30 CPU (512x1x28x28, 2x2)
  const tiled =
    n === 2 &&
    kernel[0] === kernel[1] &&
    geom.strides.every((s, i) => s === kernel[i]) &&
    geom.dilations.every((d) => d === 1) &&
    pads.every((p) => p === 0) &&
    geom.inSize.every((h, i) => h === outSize[i]! * kernel[i]!);
  const windows = tiled
    ? ctx.op('SpaceToDepth', [padded], [intAttr('blocksize', kernel[0]!)])
    : ctx.op('Conv', [padded, kernels], [intsAttr('kernel_shape', kernel), intsAttr('strides', geom.strides), intsAttr('dilations', geom.dilations)]);
  const K = elementCount(kernel);
  const picked = ctx.op('ArgMax', [windows], [intAttr('axis', 1), intAttr('keepdims', 1)]); // (N*C, 1, out...)
  const first = ctx.op('Equal', [picked, ctx.constant(DataType.INT64, [1, K, ...kernel.map(() => 1)], [...Array(K).keys()])]);
  // (a broadcast Where took 67 ms here, the mask's Cast and Mul 20)
  const g = ctx.select(first, flat(dy[0]!), 0, X);
  const dx = convInputGrad(ctx, g, kernels, { ...geom, pads, group: 1 });
  return [ctx.reshape(dx, ctx.shapeOf(X))];
}

/** The forward pads plus end padding that makes floor-mode windows cover what ceil_mode's did. */
function ceilPads(geom: ReturnType<typeof convGeom>, kernel: number[], outSize: number[]): number[] {
  const n = kernel.length;
  const pads = [...geom.pads];
  for (let i = 0; i < n; i++) {
    const ke = (kernel[i]! - 1) * geom.dilations[i]! + 1;
    const extra = (outSize[i]! - 1) * geom.strides[i]! + ke - geom.inSize[i]! - pads[i]! - pads[i + n]!;
    if (extra > 0) pads[i + n] = pads[i + n]! + extra;
  }
  return pads;
}

/** MaxPool's gradient through its Indices output: ScatterElements(reduction='add') into a flat zero tensor. */
function maxPoolByIndices({ node, x, y, dy, ctx }: RuleArgs): Grads {
  ctx.need(16, "the MaxPool gradient (ScatterElements with reduction='add')");
  // the node's own Indices where they are row-major (storage_order 1 numbers them column by column)
  let idx = attrInt(node, 'storage_order', 0) === 0 ? y[1] : undefined;
  if (!idx) {
    // a twin that gives row-major Indices (onnxruntime computes both outputs in one pass)
    const attrs = (node.attribute ?? []).filter((a) => a.name !== 'storage_order');
    idx = ctx.opN('MaxPool', [x[0]!], 2, attrs, { dtype: ctx.dtype(x[0]!) })[1]!;
    ctx.info.types.set(idx, DataType.INT64);
  }
  const g = dy[0]!;
  const flat = ctx.ints([-1]);
  const zeros = ctx.zerosOfShape(ctx.countShape(x[0]!), ctx.dtype(g));
  const scat = ctx.op('ScatterElements', [zeros, ctx.reshape(idx, flat), ctx.reshape(g, flat)], [intAttr('axis', 0), stringAttr('reduction', 'add')]);
  return [ctx.reshape(scat, ctx.shapeOf(x[0]!))];
}
