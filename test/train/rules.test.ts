/**
 * Every gradient rule against central finite differences on real onnxruntime CPU sessions (see
 * rules.harness.ts). float64 where ORT CPU has the op in double (tolerance 1e-6), float32 otherwise
 * (Conv, ConvTranspose, AveragePool, LeakyRelu...: eps 1e-2, tolerance 2e-3; those ops are piecewise linear, so
 * the only error is the loss's float32 rounding divided by 2*eps, ~1e-5).
 */
import { describe, expect, it } from 'vitest';
import { gradCheck, n, type Case } from './rules.harness.js';

export const CASES: Case[] = [
  { name: 'Relu', nodes: [n('Relu', ['X'])], inputs: { X: { shape: [3, 4], grad: true, gen: 'away' } }, float64: true },
  { name: 'Gemm transB alpha beta', nodes: [n('Gemm', ['A', 'B', 'C'], ['Y'], { transB: 1, alpha: 0.5, beta: 2 })], inputs: { A: { shape: [3, 4], grad: true }, B: { shape: [5, 4], grad: true }, C: { shape: [5], grad: true } }, float64: true },
  { name: 'Conv stride 2 odd size, asymmetric pads', nodes: [n('Conv', ['X', 'W', 'B'], ['Y'], { strides: [2, 2], pads: [1, 0, 1, 1] })], inputs: { X: { shape: [2, 3, 7, 6], grad: true }, W: { shape: [4, 3, 3, 2], grad: true }, B: { shape: [4], grad: true } } },
  { name: 'MaxPool overlapping 3x3 stride 2', nodes: [n('MaxPool', ['X'], ['Y'], { kernel_shape: [3, 3], strides: [2, 2] })], inputs: { X: { shape: [2, 2, 7, 7], grad: true, gen: 'distinct' } }, float64: true },
];

describe('gradient rules match finite differences', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const r = await gradCheck(c);
      expect(r.failures).toEqual([]);
      expect(r.checked).toBeGreaterThan(0);
    });
  }
});
