/**
 * Gather and GatherElements: the gradient adds dY back at the gathered positions (an index gathered
 * twice, as in embeddings, gets both), i.e. ScatterND / ScatterElements with reduction='add' (opset 16).
 */
import { attrInt, intAttr, stringAttr } from '../../onnx/attrs.js';
import { normAxis, rule, type GradRule } from './types.js';
import type { GradCtx } from '../ctx.js';

/** Negative indices count from the end: make them positive for the scatter. */
function positive(ctx: GradCtx, idx: string, data: string, axis: number): string {
  const dim = ctx.dimsOf(data, axis, axis + 1);
  const cv = ctx.constValue(idx);
  if (cv?.every((v) => v >= 0)) return idx;
  const i64 = ctx.dtype(idx) === 7 ? idx : ctx.op('Cast', [idx], [intAttr('to', 7)], { dtype: 7 });
  const neg = ctx.op('Less', [i64, ctx.int0(0)]);
  return ctx.op('Where', [neg, ctx.add(i64, ctx.squeeze(dim, [0])), i64], [], { dtype: 7 });
}

export const GATHER: Record<string, GradRule> = {
  Gather: rule([0], ({ node, x, dy, ctx }) => {
    ctx.need(16, "the Gather gradient (ScatterND with reduction='add')");
    const [data, indices] = [x[0]!, x[1]!];
    const r = ctx.needRank(data, 'Gather');
    const ri = ctx.needRank(indices, 'Gather');
    const axis = normAxis(attrInt(node, 'axis', 0), r);
    const idx = ctx.unsqueeze(positive(ctx, indices, data, axis), [-1]);
    let g = dy[0]!;
    // bring the gathered axis to the front: data (D_axis, D_<axis, D_>axis), dY (I..., D_<axis, D_>axis)
    const dataPerm = [axis, ...Array.from({ length: r }, (_, i) => i).filter((i) => i !== axis)];
    const gPerm = [
      ...Array.from({ length: ri }, (_, i) => axis + i),
      ...Array.from({ length: axis }, (_, i) => i),
      ...Array.from({ length: r - axis - 1 }, (_, i) => axis + ri + i),
    ];
    g = ctx.transpose(g, gPerm);
    const fixed = ctx.fixedShape(data);
    const permShape = fixed ? ctx.ints(dataPerm.map((p) => fixed[p]!)) : ctx.op('Gather', [ctx.shapeOf(data), ctx.ints(dataPerm)]);
    const zeros = ctx.zerosOfShape(permShape, ctx.dtype(data));
    const scat = ctx.op('ScatterND', [zeros, idx, g], [stringAttr('reduction', 'add')]);
    const inv = new Array<number>(r);
    dataPerm.forEach((p, i) => {
      inv[p] = i;
    });
    return [ctx.transpose(scat, inv)];
  }),
  GatherElements: rule([0], ({ node, x, dy, ctx }) => {
    ctx.need(16, "the GatherElements gradient (ScatterElements with reduction='add')");
    const [data, indices] = [x[0]!, x[1]!];
    const r = ctx.needRank(data, 'GatherElements');
    const axis = normAxis(attrInt(node, 'axis', 0), r);
    const idx = positive(ctx, indices, data, axis);
    return [ctx.op('ScatterElements', [ctx.zerosLike(data), idx, dy[0]!], [intAttr('axis', axis), stringAttr('reduction', 'add')])];
  }),
};
