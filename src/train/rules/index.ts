/** The gradient rule table: op type (prefixed by its domain outside ai.onnx) -> rule. */
import { isDefaultDomain } from '../../onnx/attrs.js';
import type { NodeProto } from '../../onnx/types.js';
import { ACTIVATIONS } from './activations.js';
import { CONV } from './conv.js';
import { ELEMENTWISE } from './elementwise.js';
import { GATHER } from './gather.js';
import { LINEAR } from './linear.js';
import { NORM } from './norm.js';
import { POOL } from './pool.js';
import { REDUCE } from './reduce.js';
import { RESIZE } from './resize.js';
import { SHAPE } from './shape.js';
import type { GradRule } from './types.js';

export const RULES: Readonly<Record<string, GradRule>> = {
  ...ELEMENTWISE,
  ...ACTIVATIONS,
  ...LINEAR,
  ...CONV,
  ...POOL,
  ...NORM,
  ...SHAPE,
  ...RESIZE,
  ...REDUCE,
  ...GATHER,
};

/** The table key of a node: `Conv`, or `ai.alrelu:ALReLU` for a model-local function. */
function ruleKey(n: NodeProto): string {
  return isDefaultDomain(n.domain) ? (n.opType ?? '') : `${n.domain}:${n.opType ?? ''}`;
}

export function ruleFor(n: NodeProto): GradRule | undefined {
  return Object.hasOwn(RULES, ruleKey(n)) ? RULES[ruleKey(n)] : undefined;
}

/** Op types with a rule, for docs and error messages. */
export function opsWithRules(): string[] {
  return Object.keys(RULES).sort();
}

export { NoGradientRuleError, OpsetTooOldError, ShapeUnknownError, UnsupportedGradientError } from './errors.js';
export type { GradRule, RuleArgs } from './types.js';
