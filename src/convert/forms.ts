/**
 * The output forms of one ALReLU activation. Each emits the nodes that replace a Relu/LeakyRelu; the
 * last node always writes the original output name, so consumers, graph outputs and subgraph captures
 * keep working without rewiring.
 */
import { floatAttr, makeNode, tensorAttr } from '../onnx/attrs.js';
import { scalarTensor } from '../onnx/tensor.js';
import { AttrType, type AttributeProto, type FunctionProto, type NodeProto } from '../onnx/types.js';

export type Form = 'subgraph' | 'fused' | 'function';
/** `max` is not user-selectable: it stands in where LeakyRelu cannot take the element type. */
export type EmittedForm = Form | 'max';

export const FUNCTION_DOMAIN = 'ai.alrelu';
export const FUNCTION_NAME = 'ALReLU';

/** A call of the `function` form's ALReLU. */
export const isAlreluCall = (n: NodeProto): boolean => n.domain === FUNCTION_DOMAIN && n.opType === FUNCTION_NAME;
/** The model-local function that defines it. */
export const isAlreluFunction = (f: FunctionProto): boolean => f.domain === FUNCTION_DOMAIN && f.name === FUNCTION_NAME;

export interface Site {
  x: string;
  y: string;
  alpha: number;
  elemType: number | undefined;
  /** name for the node that writes y (the original node's name) */
  name: string | undefined;
}

export interface Fresh {
  value(base: string): string;
  node(base: string | undefined, suffix: string): string | undefined;
}

type Emit = (s: Site, fresh: Fresh) => { nodes: NodeProto[]; intermediates: string[] };

/** makeNode, leaving the name unset when the original node had none. */
const node = (op: string, input: string[], output: string[], name: string | undefined, attrs: AttributeProto[] = [], domain?: string) => {
  const n = makeNode(op, input, output, name ?? '', attrs, domain);
  if (name === undefined) delete n.name;
  return n;
};

export const FORMS: Record<EmittedForm, Emit> = {
  // Abs(LeakyRelu(x, a)): the definition, as the paper writes it.
  subgraph: (s, fresh) => {
    const t = fresh.value(`${s.y}_leaky`);
    return {
      nodes: [
        node('LeakyRelu', [s.x], [t], fresh.node(s.name, 'leaky'), [floatAttr('alpha', s.alpha)]),
        node('Abs', [t], [s.y], s.name),
      ],
      intermediates: [t],
    };
  },
  // LeakyRelu(x, -a) is the same function in one node, and onnxruntime fuses it into a preceding Conv.
  fused: (s) => ({ nodes: [node('LeakyRelu', [s.x], [s.y], s.name, [floatAttr('alpha', -s.alpha)])], intermediates: [] }),
  function: (s) => ({
    nodes: [node(FUNCTION_NAME, [s.x], [s.y], s.name, [floatAttr('alpha', s.alpha)], FUNCTION_DOMAIN)],
    intermediates: [],
  }),
  // Max(x, -a*x): ops that take every float type at every opset that has the type.
  max: (s, fresh) => {
    const c = fresh.value(`${s.y}_neg_alpha`);
    const t = fresh.value(`${s.y}_scaled`);
    return {
      nodes: [
        node('Constant', [], [c], fresh.node(s.name, 'neg_alpha'), [tensorAttr('value', scalarTensor(c, s.elemType ?? 1, -s.alpha))]),
        node('Mul', [s.x, c], [t], fresh.node(s.name, 'scaled')),
        node('Max', [s.x, t], [s.y], s.name),
      ],
      intermediates: [t],
    };
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
