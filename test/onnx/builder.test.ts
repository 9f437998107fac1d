/**
 * The one Builder: fresh names under its prefix, constants shared only when they are the same tensor
 * (element type, dims and bytes), inference as nodes are added, opset-dependent forms.
 */
import { describe, expect, it } from 'vitest';
import { intAttr } from '../../src/onnx/attrs.js';
import { Builder } from '../../src/onnx/builder.js';
import { DataType } from '../../src/onnx/dtype.js';
import { emptyInfo } from '../../src/onnx/shapes.js';
import { makeTensor, tensorValues } from '../../src/onnx/tensor.js';
import { nameFactory } from '../../src/onnx/walk.js';

const builder = (opset = 17, taken: string[] = []) => {
  const info = emptyInfo();
  info.types.set('x', DataType.DOUBLE);
  info.shapes.set('x', ['N', 3]);
  return new Builder(nameFactory(new Set(taken)), { opset, info, prefix: 'p' });
};

describe('Builder', () => {
  it('names outputs and nodes under its prefix, never reusing a taken name', () => {
    const b = builder(17, ['p/Relu']);
    const y = b.op('Relu', ['x']);
    const z = b.op('Relu', [y], [], { base: 'act' });
    expect([y, z]).toEqual(['p/Relu_1', 'p/act']);
    expect(b.nodes.map((n) => n.name)).toEqual(['p/Relu_2', 'p/Relu_3']);
    b.prefix = 'q';
    expect(b.op('Neg', [z])).toBe('q/Neg');
  });

  it('shares a constant only with the same element type, dims and bytes', () => {
    const b = builder();
    const one = b.constant(DataType.FLOAT, [], [1]);
    expect(b.scalar(1, DataType.FLOAT)).toBe(one);
    expect(b.constant(DataType.FLOAT, [1], [1])).not.toBe(one); // other dims
    expect(b.scalar(1, DataType.DOUBLE)).not.toBe(one); // other type
    expect(b.scalar(1, 'x')).toBe(b.scalar(1, DataType.DOUBLE)); // x is double
    expect(b.constant(DataType.INT64, [2], [1, 2])).toBe(b.ints([1, 2]));
    expect(b.ints([1, 2])).not.toBe(b.ints([2, 1]));
    // the same float32 after rounding is the same tensor; -0 is not 0
    expect(b.scalar(0.1, DataType.FLOAT)).toBe(b.scalar(0.1 + 1e-12, DataType.FLOAT));
    expect(b.scalar(-0, DataType.FLOAT)).not.toBe(b.scalar(0, DataType.FLOAT));
    expect(b.scalar(NaN, DataType.FLOAT)).toBe(b.scalar(NaN, DataType.FLOAT));
    // a tensor handed in under another name is the same content; another encoding of it gets its own entry (never a wrong share)
    expect(b.tensor(makeTensor('w', DataType.INT64, [2], [1, 2]))).toBe(b.ints([1, 2]));
    expect(b.tensor({ name: 'w', dataType: DataType.INT64, dims: [2], int64Data: [1, 2] })).not.toBe(b.ints([1, 2]));
    const names = b.initializers.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    const bfName = b.scalar(1.5, DataType.BFLOAT16);
    const bf = b.initializers.find((t) => t.name === bfName)!;
    expect(tensorValues(bf)).toEqual([1.5]);
  });

  it('infers each output as the node is added; an explicit dtype wins where inference has none', () => {
    const b = builder();
    const s = b.op('Shape', ['x']);
    expect(b.dtype(s)).toBe(DataType.INT64);
    expect(b.shape(s)).toEqual([2]);
    const t = b.op('Transpose', [b.op('Add', ['x', b.scalar(2, 'x')])]);
    expect(b.shape(t)).toEqual([3, 'N']);
    expect(b.dtype(t)).toBe(DataType.DOUBLE);
    expect(b.fixedShape(t)).toBeUndefined();
    const c = b.ints([4, 5]);
    expect(b.constValue(c)).toEqual([4, 5]);
    const u = b.op('SomeCustomOp', ['x'], [], { dtype: DataType.FLOAT16, domain: 'com.example' });
    expect(b.dtype(u)).toBe(DataType.FLOAT16);
    expect(b.nodes.at(-1)!.domain).toBe('com.example');
  });

  it('emits nodes with given outputs, unnamed unless a name is given', () => {
    const b = builder();
    const n = b.node('Cast', ['x'], ['y'], [intAttr('to', DataType.FLOAT)]);
    expect(n.name).toBeUndefined();
    expect(b.dtype('y')).toBe(DataType.FLOAT);
    expect(b.node('Abs', ['y'], ['z'], [], { name: 'kept' }).name).toBe('kept');
  });

  it('writes axes as inputs or attributes by opset', () => {
    const old = builder(11);
    old.unsqueeze('x', [0]);
    old.reduceSum('x', [1], false);
    expect(old.nodes.map((n) => [n.input!.length, n.attribute?.map((a) => a.name)])).toEqual([
      [1, ['axes']],
      [1, ['axes', 'keepdims']],
    ]);
    const b = builder(18);
    const u = b.unsqueeze('x', [0]);
    const r = b.reduceMean('x', [1], true);
    expect(b.shape(u)).toEqual([1, 'N', 3]);
    expect(b.shape(r)).toEqual(['N', 1]);
    expect(b.nodes.map((n) => n.input!.length)).toEqual([2, 2]);
  });
});
