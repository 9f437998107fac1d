/** Small hand-built models for converter tests: the cases no public fixture covers. */
import { makeNode } from '../../src/onnx/attrs.js';
import { DataType } from '../../src/onnx/dtype.js';
import { encodeModel } from '../../src/onnx/schema.js';
import type { ModelProto, NodeProto, TensorProto, ValueInfo } from '../../src/onnx/types.js';

export { makeNode };

export function tensorInfo(name: string, elemType: number, dims: (number | string)[]): ValueInfo {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

export function floatTensor(name: string, dims: number[], values: number[]): TensorProto {
  return { name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(Float32Array.from(values).buffer) };
}

export interface ModelSpec {
  nodes: NodeProto[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers?: TensorProto[];
  valueInfo?: ValueInfo[];
  opset?: number;
  irVersion?: number;
}

export function buildModel(s: ModelSpec): ModelProto {
  return {
    irVersion: s.irVersion ?? 8,
    producerName: 'alrelu-tests',
    opsetImport: [{ domain: '', version: s.opset ?? 13 }],
    graph: {
      name: 'g',
      node: s.nodes,
      input: s.inputs,
      output: s.outputs,
      initializer: s.initializers ?? [],
      valueInfo: s.valueInfo ?? [],
    },
  };
}

export const bytesOfModel = (m: ModelProto): Uint8Array => encodeModel(m);
