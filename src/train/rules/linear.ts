/** Gemm and MatMul: the gradients are matrix products with the other operand, transposed to fit. */
import { attrFloat, attrInt, floatAttr, intAttr } from '../../onnx/attrs.js';
import type { GradCtx } from '../ctx.js';
import { UnsupportedGradientError } from './errors.js';
import { rule, type GradRule } from './types.js';

export const LINEAR: Record<string, GradRule> = {
  /*
   * Y = alpha * A' B' + beta * C with A' = transA ? A^T : A. Then dA' = alpha g B'^T and dB' = alpha A'^T g;
   * transposing where the operand was transposed gives one Gemm per operand whose trans flags pick the
   * right layout without materialized transposes.
   */
  Gemm: rule('all', ({ node, x, dy, need, ctx }) => {
    const g = dy[0]!;
    const [A, B, C] = [x[0]!, x[1]!, x[2]];
    const alpha = attrFloat(node, 'alpha', 1);
    const beta = attrFloat(node, 'beta', 1);
    const tA = attrInt(node, 'transA', 0);
    const tB = attrInt(node, 'transB', 0);
    let dA: string | undefined;
    let dB: string | undefined;
    if (need[0]) {
      dA = tA
        ? gemm(ctx, B, g, alpha, tB ? 1 : 0, 1) // (g B'^T)^T = B' g^T
        : gemm(ctx, g, B, alpha, 0, tB ? 0 : 1); // g B'^T
    }
    if (need[1]) {
      dB = tB
        ? gemm(ctx, g, A, alpha, 1, tA ? 1 : 0) // (A'^T g)^T = g^T A'
        : gemm(ctx, A, g, alpha, tA ? 0 : 1, 0); // A'^T g
    }
    const dC = need[2] && C ? ctx.unbroadcast(ctx.scale(g, beta), C) : undefined;
    return [dA, dB, dC];
  }),
  /*
   * Batched, broadcasting matmul: dA = g B^T and dB = A^T g over the last two axes, then summed over the
   * batch axes each operand was broadcast along. 1-D operands are lifted to matrices as the op does.
   */
  MatMul: rule('all', ({ node, x, dy, need, ctx }) => {
    let g = dy[0]!;
    let [A, B] = [x[0]!, x[1]!];
    const ra = ctx.rank(A);
    const rb = ctx.rank(B);
    if (ra === undefined || rb === undefined) throw new UnsupportedGradientError('MatMul', node.name ?? '', 'operands of unknown rank');
    if (ra === 1) {
      A = ctx.unsqueeze(A, [0]);
      g = ctx.unsqueeze(g, [rb === 1 ? 0 : -2]);
    }
    if (rb === 1) {
      B = ctx.unsqueeze(B, [1]);
      g = ctx.unsqueeze(g, [-1]);
    }
    const swap = (v: string) => {
      const r = ctx.rank(v) ?? 2;
      return ctx.transpose(v, [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2]);
    };
    const back = (d: string, lifted: string, orig: string) => {
      const r = ctx.unbroadcast(d, lifted);
      return lifted === orig ? r : ctx.reshape(r, ctx.shapeOf(orig));
    };
    const dA = need[0] ? back(ctx.op('MatMul', [g, swap(B)]), A, x[0]!) : undefined;
    const dB = need[1] ? back(ctx.op('MatMul', [swap(A), g]), B, x[1]!) : undefined;
    return [dA, dB];
  }),
};

/** alpha * op(a) op(b) as a Gemm (C omitted: optional from opset 11) or MatMul + Transpose before. */
function gemm(ctx: GradCtx, a: string, b: string, alpha: number, transA: number, transB: number): string {
  if (ctx.opset >= 11) {
    const attrs = [];
    if (alpha !== 1) attrs.push(floatAttr('alpha', alpha));
    if (transA) attrs.push(intAttr('transA', 1));
    if (transB) attrs.push(intAttr('transB', 1));
    return ctx.op('Gemm', [a, b], attrs);
  }
  const ta = transA ? ctx.transpose(a, [1, 0]) : a;
  const tb = transB ? ctx.transpose(b, [1, 0]) : b;
  return ctx.scale(ctx.op('MatMul', [ta, tb]), alpha);
}
