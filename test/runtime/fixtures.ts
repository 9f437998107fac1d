/** Reference models and their test_data_set_0, shared by the runtime tests. */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { decodeTensor } from '../../src/onnx/schema.js';
import { tensorFromProto } from '../../src/runtime/tensor.js';
import type { HostTensor, Runtime } from '../../src/runtime/types.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = resolve(REPO, '..', 'shared', 'fixtures', 'models');

export interface Case {
  name: string;
  model: string;
  input: HostTensor;
  expected: HostTensor;
}

function load(name: string, rel: string): Case {
  const dir = join(FIXTURES, rel);
  const pb = (f: string) => tensorFromProto(decodeTensor(readFileSync(join(dir, 'test_data_set_0', f))));
  return { name, model: join(dir, 'model.onnx'), input: pb('input_0.pb'), expected: pb('output_0.pb') };
}

export const CASES: Case[] = [load('relu', 'onnx-onnx/node/test_relu'), load('mnist', 'onnx2c/mnist')];

/**
 * Largest |a - ref| / max(1, |ref|): absolute below 1, relative above. MNIST's logits reach 6574, where
 * float32 sums in another order differ by ~8e-4 absolutely (1e-7 relatively), so a purely absolute
 * 1e-4 would test summation order, not correctness.
 */
export function maxDiff(a: HostTensor, ref: HostTensor): number {
  expect(a.type).toBe(ref.type);
  expect(a.dims).toEqual(ref.dims);
  expect(a.data.length).toBe(ref.data.length);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) {
    const r = Number(ref.data[i]);
    m = Math.max(m, Math.abs(Number(a.data[i]) - r) / Math.max(1, Math.abs(r)));
  }
  return m;
}

/** Loads each case on `rt`, runs input_0, and checks output_0 within 1e-4; returns the worst diffs. */
export async function checkCases(rt: Runtime, bytes = false): Promise<Record<string, number>> {
  const diffs: Record<string, number> = {};
  for (const c of CASES) {
    const s = await rt.load(bytes ? readFileSync(c.model) : c.model);
    try {
      const out = await s.run({ [s.inputs[0]!.name]: c.input });
      const y = out[s.outputs[0]!.name]!;
      diffs[c.name] = maxDiff(y, c.expected);
      expect(diffs[c.name], `${rt.ep} ${c.name}`).toBeLessThan(1e-4);
    } finally {
      await s.release();
    }
  }
  return diffs;
}
