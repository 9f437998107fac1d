/** firstBatchGradients: the first batch's feeds are cut as the loop cuts them (regression with several targets per row). */
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../src/data/types.js';
import { DataType } from '../../src/onnx/dtype.js';
import type { ModelProto } from '../../src/onnx/types.js';
import { firstBatchGradients } from '../../src/train/gradients.js';
import { makeTensor } from '../../src/onnx/tensor.js';

const info = (name: string, last: number) => ({
  name,
  type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'N' }, { dimValue: last }] } } },
});

describe('firstBatchGradients', () => {
  it("feeds each row's targetSize targets for regression", async () => {
    // y = x W, x [4, 3], W [3, 2]; mse loss = mean((xW - t)^2), dW = x^T (2 (xW - t) / 8)
    const model: ModelProto = {
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        node: [{ opType: 'MatMul', input: ['x', 'W'], output: ['y'], name: 'mm' }],
        input: [info('x', 3)],
        output: [info('y', 2)],
        initializer: [makeTensor('W', DataType.FLOAT, [3, 2], [1, 2, 3, 4, 5, 6])],
      },
    };
    const train: Dataset = {
      name: 't',
      sampleShape: [3],
      task: 'regression',
      count: 4,
      targetSize: 2,
      x: Float32Array.from({ length: 12 }, (_, i) => i / 10),
      y: Float32Array.from({ length: 8 }, (_, i) => i),
    };
    const g = await firstBatchGradients(model, train, { batchSize: 4, seed: 0, shuffle: false, sourceDir: '.', file: 'm' });
    const x = (r: number, c: number) => (r * 3 + c) / 10;
    const W = [
      [1, 2],
      [3, 4],
      [5, 6],
    ];
    const d = [0, 1, 2, 3].map((r) => [0, 1].map((j) => x(r, 0) * W[0]![j]! + x(r, 1) * W[1]![j]! + x(r, 2) * W[2]![j]! - (r * 2 + j)));
    const loss = d.flat().reduce((s, v) => s + v * v, 0) / 8;
    const dW = [0, 1, 2].flatMap((i) => [0, 1].map((j) => d.reduce((s, row, r) => s + (x(r, i) * 2 * row[j]!) / 8, 0)));
    expect(g.rows).toBe(4);
    expect(g.loss).toBeCloseTo(loss, 4);
    expect(g.grads.W!.dims).toEqual([3, 2]);
    Array.from(g.grads.W!.data as Float32Array).forEach((v, k) => expect(v).toBeCloseTo(dW[k]!, 4));
  });
});
