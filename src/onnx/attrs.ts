/** Reading and making node attributes. */
import { AttrType, int, type AttributeProto, type GraphProto, type NodeProto, type TensorProto } from './types.js';

export function attr(n: NodeProto, name: string): AttributeProto | undefined {
  return (n.attribute ?? []).find((a) => a.name === name);
}

export function attrFloat(n: NodeProto, name: string, dflt: number): number {
  const a = attr(n, name);
  return a && a.f !== undefined && a.f !== null ? a.f : dflt;
}

export function attrInt(n: NodeProto, name: string, dflt: number): number {
  const a = attr(n, name);
  return a && a.i !== undefined && a.i !== null ? int(a.i) : dflt;
}

export function attrInts(n: NodeProto, name: string): number[] | undefined {
  const a = attr(n, name);
  return a ? (a.ints ?? []).map(int) : undefined;
}

export function attrString(n: NodeProto, name: string, dflt = ''): string {
  const a = attr(n, name);
  return a?.s ? Buffer.from(a.s).toString('utf8') : dflt;
}

export function attrStrings(n: NodeProto, name: string): string[] {
  return (attr(n, name)?.strings ?? []).map((s) => Buffer.from(s).toString('utf8'));
}

export const floatAttr = (name: string, f: number): AttributeProto => ({ name, type: AttrType.FLOAT, f });
export const intAttr = (name: string, i: number): AttributeProto => ({ name, type: AttrType.INT, i });
export const intsAttr = (name: string, ints: number[]): AttributeProto => ({ name, type: AttrType.INTS, ints });
export const stringAttr = (name: string, s: string): AttributeProto => ({ name, type: AttrType.STRING, s: Buffer.from(s) });
export const tensorAttr = (name: string, t: TensorProto): AttributeProto => ({ name, type: AttrType.TENSOR, t });
export const graphAttr = (name: string, g: GraphProto): AttributeProto => ({ name, type: AttrType.GRAPH, g });

/** The ONNX operator set's own domain, spelled '' or 'ai.onnx'. */
export const isDefaultDomain = (domain: string | undefined): boolean => (domain ?? '') === '' || domain === 'ai.onnx';

/** A node with the given attributes; `domain` omitted for the default domain. */
export function makeNode(opType: string, input: string[], output: string[], name: string, attribute: AttributeProto[] = [], domain?: string): NodeProto {
  const n: NodeProto = { opType, input, output, name };
  if (attribute.length) n.attribute = attribute;
  if (domain) n.domain = domain;
  return n;
}
