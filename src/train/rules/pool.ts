/**
 * Pooling. MaxPool: the gradient of each output goes to the input element its window picked. MaxPool's
 * Indices output names that element (flat NCHW index), so ScatterElements(reduction='add') of dY into a
 * flat zero tensor at those indices is the gradient, summing where overlapping windows picked the same
 * element (MaxUnpool would overwrite instead). AveragePool: the transpose of a box filter, i.e. a
 * ConvTranspose of dY / divisor with a ones kernel, per channel.
 */
import { attr, attrInt, attrInts, attrString, intAttr, intsAttr, stringAttr } from '../../onnx/attrs.js';
import { DataType } from '../../onnx/dtype.js';
import { convGeom, convInputGrad } from './conv.js';
import { UnsupportedGradientError } from './errors.js';
import { rule, type GradRule } from './types.js';

export const POOL: Record<string, GradRule> = {
  MaxPool: rule([0], ({ node, x, y, dy, ctx }) => {
    const name = node.name ?? '';
    if (attrInt(node, 'storage_order', 0) !== 0) throw new UnsupportedGradientError('MaxPool', name, 'storage_order=1');
    ctx.need(16, "the MaxPool gradient (ScatterElements with reduction='add')");
    let idx = y[1];
    if (!idx) {
      // the forward node did not ask for indices: a twin that does (ORT computes both in one pass)
      const attrs = (node.attribute ?? []).filter((a) => a.name !== 'storage_order');
      idx = ctx.opN('MaxPool', [x[0]!], 2, attrs, ctx.dtype(x[0]!))[1]!;
      ctx.info.types.set(idx, DataType.INT64);
    }
    const g = dy[0]!;
    const flat = ctx.ints([-1]);
    const zeros = ctx.zerosOfShape(ctx.countShape(x[0]!), ctx.dtype(g));
    const scat = ctx.op('ScatterElements', [zeros, ctx.reshape(idx, flat), ctx.reshape(g, flat)], [intAttr('axis', 0), stringAttr('reduction', 'add')]);
    return [ctx.reshape(scat, ctx.shapeOf(x[0]!))];
  }),
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
    // ceil_mode: extra end padding so that a floor-mode window grid gives the same outputs
    const pads = [...geom.pads];
    for (let i = 0; i < n; i++) {
      const ke = (kernel[i]! - 1) * geom.dilations[i]! + 1;
      const need = (outSize[i]! - 1) * geom.strides[i]! + ke - geom.inSize[i]! - pads[i]! - pads[i + n]!;
      if (need > 0) pads[i + n] = pads[i + n]! + need;
    }
    // divisor per output: the window's elements counted in X (or in X plus its declared pads)
    const ones = ctx.constant(ctx.dtype(X), [1, 1, ...geom.inSize], new Array(geom.inSize.reduce((p, q) => p * q, 1)).fill(1));
    const kOnes = ctx.constant(ctx.dtype(X), [1, 1, ...kernel], new Array(kernel.reduce((p, q) => p * q, 1)).fill(1));
    let counted = ones;
    let cpads = pads;
    if (inclPad) {
      // the declared pads count as elements: ones over the padded extent, conv'd with the extra (ceil) pads only
      const padded = geom.inSize.map((h, i) => h + geom.pads[i]! + geom.pads[i + n]!);
      counted = ctx.constant(ctx.dtype(X), [1, 1, ...padded], new Array(padded.reduce((p, q) => p * q, 1)).fill(1));
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
    const scale = sp && sp.every((d) => typeof d === 'number')
      ? ctx.scalar(1 / (sp as number[]).reduce((p, q) => p * q, 1), X)
      : ctx.div(ctx.countAs(y[0]!, X), ctx.countAs(X, X));
    return [ctx.op('Expand', [ctx.mul(dy[0]!, scale), ctx.shapeOf(X)])];
  }),
  // to every element equal to its channel's max (ties each get the full gradient)
  GlobalMaxPool: rule([0], ({ x, y, dy, ctx }) => {
    const G = ctx.op('Expand', [dy[0]!, ctx.shapeOf(x[0]!)]);
    return [ctx.select(ctx.op('Equal', [x[0]!, y[0]!]), G, 0, G)];
  }),
};
