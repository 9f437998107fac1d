/** The shape of a gradient rule: one small function per op, from upstream gradients to input gradients. */
import type { NodeProto } from '../../onnx/types.js';
import type { GradCtx } from '../ctx.js';

export interface RuleArgs {
  node: NodeProto;
  /** input names ('' where an optional input is omitted) */
  x: string[];
  /** output names */
  y: string[];
  /** gradient of the loss w.r.t. each output; undefined where no gradient reaches that output */
  dy: (string | undefined)[];
  /** which inputs need a gradient (on a path from a trainable value, and differentiable) */
  need: boolean[];
  ctx: GradCtx;
}

/** Gradients per input; undefined where none is needed or the input is not differentiable. */
export type Grads = (string | undefined)[];

export interface GradRule {
  /** input positions that carry a gradient ('all' for every one); indices, shapes, axes, running statistics don't */
  diff: number[] | 'all';
  grad(a: RuleArgs): Grads;
}

/** The upstream gradient of output `i`, zeros when none reaches it (e.g. one unused Split output). */
export function dyOr0(a: RuleArgs, i = 0): string {
  return a.dy[i] ?? a.ctx.zerosLike(a.y[i]!);
}

/** Shorthand for the common single-output case. */
export const rule = (diff: number[] | 'all', grad: (a: RuleArgs) => Grads): GradRule => ({ diff, grad });

/** Normalizes a possibly negative axis. */
export const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);
