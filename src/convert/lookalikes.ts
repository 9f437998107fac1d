/**
 * Ops that behave like ReLU but are not default-domain Relu/LeakyRelu nodes. They are reported, never
 * rewritten: each has its own semantics (learned slopes, thresholds, caps) or lives where a rewrite
 * cannot reach (inside a fused kernel or an RNN's activation list).
 */
import { attrFloat, attrString, attrStrings, isDefaultDomain } from '../onnx/attrs.js';
import { tensorValues } from '../onnx/tensor.js';
import type { NodeProto, TensorProto } from '../onnx/types.js';

export type ConstLookup = (name: string) => TensorProto | undefined;

const isDefault = (n: NodeProto) => isDefaultDomain(n.domain);
const reluName = /^(leaky)?relu$/i;
const isZero = (t: TensorProto | undefined) => {
  const v = t && tensorValues(t, 1);
  return v !== undefined && v.length === 1 && v[0] === 0;
};

/** One rule per look-alike: returns what it is, or undefined. */
const RULES: ((n: NodeProto, constant: ConstLookup) => string | undefined)[] = [
  (n) => (isDefault(n) && n.opType === 'PRelu' ? 'PRelu: learned negative slope, not a fixed-alpha activation' : undefined),
  (n) => (isDefault(n) && n.opType === 'ThresholdedRelu' ? `ThresholdedRelu(alpha=${attrFloat(n, 'alpha', 1)}): zero below a threshold, not ReLU` : undefined),
  (n, constant) => {
    if (!isDefault(n) || n.opType !== 'Clip') return undefined;
    const minZero = n.input?.[1] ? isZero(constant(n.input[1])) : attrFloat(n, 'min', -Infinity) === 0;
    return minZero ? 'Clip with min 0: a capped ReLU (ReLU6-style), not rewritten' : undefined;
  },
  (n, constant) => (isDefault(n) && n.opType === 'Max' && (n.input ?? []).some((x) => isZero(constant(x))) ? 'Max(x, 0): ReLU written as Max' : undefined),
  (n) => (!isDefault(n) && reluName.test(n.opType ?? '') ? `op named ${n.opType} in custom domain '${n.domain}': not the ONNX operator` : undefined),
  (n) => {
    if (!isDefault(n) || !['LSTM', 'GRU', 'RNN'].includes(n.opType ?? '')) return undefined;
    const acts = attrStrings(n, 'activations').filter((a) => reluName.test(a));
    return acts.length ? `${n.opType} activation list names ${acts.join(', ')}: inside the recurrent kernel, no node to rewrite` : undefined;
  },
  (n) => {
    if (isDefault(n)) return undefined;
    const act = attrString(n, 'activation');
    return reluName.test(act) ? `${act} fused inside ${n.domain}:${n.opType}` : undefined;
  },
];

export function lookalike(n: NodeProto, constant: ConstLookup): string | undefined {
  for (const rule of RULES) {
    const why = rule(n, constant);
    if (why) return why;
  }
  return undefined;
}
