import { describe, expect, it } from 'vitest';
import { DataType } from '../../src/onnx/dtype.js';
import { tensorFromProto } from '../../src/runtime/tensor.js';

describe('tensorFromProto', () => {
  it('reads typed fields and raw_data of every width', () => {
    expect([...tensorFromProto({ dataType: DataType.FLOAT, dims: [2], floatData: [1.5, -2] }).data]).toEqual([1.5, -2]);
    expect([...tensorFromProto({ dataType: DataType.INT64, dims: [2], int64Data: [3, -4] }).data]).toEqual([3n, -4n]);
    const raw = new Uint8Array(new Float64Array([0.25, 8]).buffer);
    expect([...tensorFromProto({ dataType: DataType.DOUBLE, dims: [1, 2], rawData: raw }).data]).toEqual([0.25, 8]);
  });

  it('refuses typed fields or raw_data that do not fill the dims, instead of padding with zeros', () => {
    expect(() => tensorFromProto({ name: 'w', dataType: DataType.FLOAT, dims: [2, 2], floatData: [1, 2] })).toThrow("tensor 'w' has 2 elements, dims say 4");
    expect(() => tensorFromProto({ name: 'i', dataType: DataType.INT32, dims: [3], int32Data: [1, 2, 3, 4] })).toThrow("tensor 'i' has 4 elements, dims say 3");
    expect(() => tensorFromProto({ name: 's', dataType: DataType.FLOAT, dims: [] })).toThrow("tensor 's' has 0 elements, dims say 1");
    expect(() => tensorFromProto({ name: 'r', dataType: DataType.FLOAT, dims: [3], rawData: new Uint8Array(8) })).toThrow(
      "tensor 'r' has 2 elements, dims say 3",
    );
  });
});
