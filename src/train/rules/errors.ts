/**
 * Why a gradient cannot be built. All are user errors: they come from the model (an op we have no rule
 * for, an opset too old, shapes we cannot see) and the fix is on the user's side (freeze, re-export).
 */
import { UserError } from '../../errors.js';

/** A node on the path from a trainable parameter to the loss has no gradient rule. */
export class NoGradientRuleError extends UserError {
  constructor(
    readonly opType: string,
    readonly nodeName: string,
    /** some of the trainable parameters whose gradient flows through the node */
    readonly params: string[] = [],
  ) {
    const via = params.length ? ` (reached from ${params.slice(0, 3).join(', ')}${params.length > 3 ? ', ...' : ''})` : '';
    super(
      `node ${nodeName || '(unnamed)'}`,
      `no gradient rule for op ${opType}${via}; freeze the parameters before it, e.g. --freeze '<glob of those parameters>'`,
    );
    this.name = 'NoGradientRuleError';
  }
}

/** A rule exists but needs a newer opset than the model's (e.g. ScatterElements with reduction='add'). */
export class OpsetTooOldError extends UserError {
  constructor(
    nodeName: string,
    what: string,
    readonly minOpset: number,
    readonly opset: number,
  ) {
    super(
      `node ${nodeName}`,
      `${what} needs opset ${minOpset} or newer, the training graph is opset ${opset}; re-export the model at a newer opset or --freeze the parameters before this node`,
    );
    this.name = 'OpsetTooOldError';
  }
}

/** A rule needs a static shape (or rank) the model does not declare. */
export class ShapeUnknownError extends UserError {
  constructor(nodeName: string, what: string) {
    super(
      `node ${nodeName}`,
      `the gradient needs ${what}, which the model does not make static; declare the input shape (e.g. fix the batch-free dims) or --freeze the parameters before this node`,
    );
    this.name = 'ShapeUnknownError';
  }
}

/** A rule exists for the op but not for this configuration of attributes (e.g. Pad in reflect mode). */
export class UnsupportedGradientError extends UserError {
  constructor(opType: string, nodeName: string, why: string) {
    super(`node ${nodeName}`, `no gradient for ${opType} with ${why}; --freeze the parameters before this node`);
    this.name = 'UnsupportedGradientError';
  }
}
