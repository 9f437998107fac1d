/**
 * The output forms of one ALReLU activation. Each emits the nodes that replace a Relu/LeakyRelu; the
 * last node always writes the original output name, so consumers, graph outputs and subgraph captures
 * keep working without rewiring.
 */
import { attrFloat, floatAttr, isDefaultDomain, tensorAttr } from '../onnx/attrs.js';
import type { Builder } from '../onnx/builder.js';
import { DataType } from '../onnx/dtype.js';
import type { Graph } from '../onnx/graph.js';
import { makeTensor } from '../onnx/tensor.js';
import { AttrType, type FunctionProto, type NodeProto } from '../onnx/types.js';

export type Form = 'subgraph' | 'fused' | 'function';
/** `max` is not user-selectable: it stands in where LeakyRelu cannot take the element type. */
export type EmittedForm = Form | 'max';

export const FUNCTION_DOMAIN = 'ai.alrelu';
export const FUNCTION_NAME = 'ALReLU';

/** A call of the `function` form's ALReLU. */
export const isAlreluCall = (n: NodeProto): boolean => n.domain === FUNCTION_DOMAIN && n.opType === FUNCTION_NAME;
/** The model-local function that defines it. */
export const isAlreluFunction = (f: FunctionProto): boolean => f.domain === FUNCTION_DOMAIN && f.name === FUNCTION_NAME;

/** LeakyRelu's alpha when the attribute is absent (ONNX). */
const LEAKY_DEFAULT = 0.01;

/** An ALReLU already in a graph, found at the node that writes its output. */
export interface AlreluMatch {
  form: Form;
  /** the activation's input */
  x: string;
  /** the slope a, as in ALReLU(x) = -a·x below 0 (the subgraph form's LeakyRelu alpha as written) */
  alpha: number;
  /** the subgraph form's LeakyRelu, which only the Abs reads */
  leaky?: NodeProto;
}

/**
 * The one ALReLU matcher (convert reports these as already converted, training fuses and differentiates
 * them): a call of the function form; a LeakyRelu with alpha < 0 (fused form); an Abs whose input is a
 * LeakyRelu read by nothing else (subgraph form). A LeakyRelu is matched by isAlrelu(g, its reader).
 */
export function isAlrelu(g: Graph, n: NodeProto): AlreluMatch | undefined {
  const x = n.input?.[0];
  if (!x) return undefined;
  if (isAlreluCall(n)) return { form: 'function', x, alpha: attrFloat(n, 'alpha', LEAKY_DEFAULT) };
  if (!isDefaultDomain(n.domain)) return undefined;
  if (n.opType === 'LeakyRelu') {
    const a = attrFloat(n, 'alpha', LEAKY_DEFAULT);
    return a < 0 ? { form: 'fused', x, alpha: -a } : undefined;
  }
  if (n.opType !== 'Abs') return undefined;
  const p = g.producer(x);
  if (p?.opType !== 'LeakyRelu' || !isDefaultDomain(p.domain) || !p.input?.[0] || g.uses(x) !== 1) return undefined;
  return { form: 'subgraph', x: p.input[0], alpha: attrFloat(p, 'alpha', LEAKY_DEFAULT), leaky: p };
}

export interface Site {
  x: string;
  y: string;
  alpha: number;
  elemType: number | undefined;
  /** name for the node that writes y (the original node's name) */
  name: string | undefined;
}

/** Emits one site's nodes into `b` (the last writes y); returns the new intermediate values. */
type Emit = (s: Site, b: Builder) => string[];

/** A name for one more node of the replacement: derived from the original's, or none when it had none. */
const part = (b: Builder, s: Site, suffix: string) => (s.name === undefined ? undefined : b.fresh(`${s.name}/${suffix}`));

export const FORMS: Record<EmittedForm, Emit> = {
  // Abs(LeakyRelu(x, a)): the definition, as the paper writes it.
  subgraph: (s, b) => {
    const t = b.fresh(`${s.y}_leaky`);
    b.node('LeakyRelu', [s.x], [t], [floatAttr('alpha', s.alpha)], { name: part(b, s, 'leaky') });
    b.node('Abs', [t], [s.y], [], { name: s.name });
    return [t];
  },
  // LeakyRelu(x, -a) is the same function in one node, and onnxruntime fuses it into a preceding Conv.
  fused: (s, b) => {
    b.node('LeakyRelu', [s.x], [s.y], [floatAttr('alpha', -s.alpha)], { name: s.name });
    return [];
  },
  function: (s, b) => {
    b.node(FUNCTION_NAME, [s.x], [s.y], [floatAttr('alpha', s.alpha)], { name: s.name, domain: FUNCTION_DOMAIN });
    return [];
  },
  // Max(x, -a*x): ops that take every float type at every opset that has the type.
  max: (s, b) => {
    const c = b.fresh(`${s.y}_neg_alpha`);
    const t = b.fresh(`${s.y}_scaled`);
    // a Constant node, not an initializer: function bodies have none
    b.node('Constant', [], [c], [tensorAttr('value', makeTensor(c, s.elemType ?? DataType.FLOAT, [], [-s.alpha]))], { name: part(b, s, 'neg_alpha') });
    b.node('Mul', [s.x, c], [t], [], { name: part(b, s, 'scaled') });
    b.node('Max', [s.x, t], [s.y], [], { name: s.name });
    return [t];
  },
};

/** The model-local function behind the `function` form: body = Abs(LeakyRelu(X, alpha)). */
export function alreluFunction(opset: number): FunctionProto {
  return {
    name: FUNCTION_NAME,
    domain: FUNCTION_DOMAIN,
    input: ['X'],
    output: ['Y'],
    attribute: ['alpha'],
    node: [
      { opType: 'LeakyRelu', input: ['X'], output: ['T'], attribute: [{ name: 'alpha', type: AttrType.FLOAT, refAttrName: 'alpha' }] },
      { opType: 'Abs', input: ['T'], output: ['Y'] },
    ],
    opsetImport: [{ domain: '', version: opset }],
    docString: 'ALReLU(x) = |LeakyRelu(x, alpha)|: x for x > 0, -alpha*x otherwise (Mastromichalakis 2020).',
  };
}
