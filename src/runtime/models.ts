/** Tiny models built in code: availability probes and device-to-host copies need no files on disk. */
import { DataType } from '../onnx/dtype.js';
import { encodeModel } from '../onnx/schema.js';
import type { ModelProto, ValueInfo } from '../onnx/types.js';
import type { HostTensor, TensorType } from './types.js';

const ELEM: Record<TensorType, number> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  float16: DataType.FLOAT16,
  int8: DataType.INT8,
  uint8: DataType.UINT8,
  int16: DataType.INT16,
  uint16: DataType.UINT16,
  int32: DataType.INT32,
  uint32: DataType.UINT32,
  int64: DataType.INT64,
  uint64: DataType.UINT64,
  bool: DataType.BOOL,
};

function value(name: string, type: TensorType, dims?: number[]): ValueInfo {
  const shape = dims ? { dim: dims.map((d) => ({ dimValue: d })) } : undefined;
  return { name, type: { tensorType: { elemType: ELEM[type], ...(shape ? { shape } : {}) } } };
}

/** y = op(x); `domain`: a contrib op, whose output shape the model leaves undeclared */
function singleOp(opType: string, type: TensorType, dims?: number[], domain?: string): Uint8Array {
  const model: ModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }, ...(domain ? [{ domain, version: 1 }] : [])],
    producerName: 'alrelu',
    graph: {
      name: `${opType.toLowerCase()}_probe`,
      node: [{ opType, input: ['x'], output: ['y'], name: opType.toLowerCase(), ...(domain ? { domain } : {}) }],
      input: [value('x', type, dims)],
      output: [value('y', type, domain ? undefined : dims)],
    },
  };
  return encodeModel(model);
}

/** y = Relu(x), x: float32[2, 4]; every EP we target implements it. */
export function probeModel(): Uint8Array {
  return singleOp('Relu', 'float32', [2, 4]);
}

export const PROBE_INPUT: HostTensor = {
  type: 'float32',
  dims: [2, 4],
  data: Float32Array.from([-2, -1, -0.5, 0, 0.5, 1, 2, 3]),
};

export const PROBE_EXPECTED = Float32Array.from([0, 0, 0, 0, 0.5, 1, 2, 3]);

/** y = Identity(x) of any shape: copies a device tensor to the host when run with default output location. */
export function identityModel(type: TensorType): Uint8Array {
  return singleOp('Identity', type);
}

/** onnxruntime CPU's NCHWc domain, whose kernels the cpu training step calls (train/nchwc.ts) */
export const NCHWC_DOMAIN = 'com.microsoft.nchwc';

/** y = ReorderInput(x), x: float32[1, 4, 1, 1]: y's channels are 4 padded to the NCHWc block size. */
export function nchwcReorderModel(): Uint8Array {
  return singleOp('ReorderInput', 'float32', [1, 4, 1, 1], NCHWC_DOMAIN);
}
