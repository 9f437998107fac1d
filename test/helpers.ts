/** Test helpers: fixture paths, upstream test data, onnxruntime sessions. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { decodeTensor } from '../src/onnx/schema.js';
import { tensorFromProto } from '../src/runtime/tensor.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = resolve(ROOT, '../shared/fixtures/models');
export const fixture = (p: string) => join(FIXTURES, p);

export function allFixtureModels(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.onnx')) out.push(p);
    }
  };
  walk(FIXTURES);
  return out.sort();
}

/** A serialized TensorProto (.pb) as an onnxruntime tensor. */
export function pbTensor(file: string): { name: string; tensor: ort.Tensor } {
  const t = decodeTensor(readFileSync(file));
  const h = tensorFromProto(t);
  return { name: t.name ?? '', tensor: new ort.Tensor(h.type, h.data, h.dims) };
}

export interface TestCase {
  inputs: ort.Tensor[];
  outputs: ort.Tensor[];
}

/** Upstream test_data_set_N folders beside a model. */
export function testSets(modelFile: string): TestCase[] {
  const dir = dirname(modelFile);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((d) => d.startsWith('test_data_set_'))
    .sort()
    .map((d) => {
      const files = readdirSync(join(dir, d)).sort();
      return {
        inputs: files.filter((f) => f.startsWith('input_')).map((f) => pbTensor(join(dir, d, f)).tensor),
        outputs: files.filter((f) => f.startsWith('output_')).map((f) => pbTensor(join(dir, d, f)).tensor),
      };
    });
}

export async function session(model: string | Uint8Array, opts: ort.InferenceSession.SessionOptions = {}): Promise<ort.InferenceSession> {
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, { logSeverityLevel: 3, ...opts })
    : ort.InferenceSession.create(model, { logSeverityLevel: 3, ...opts });
}

/** Runs a model on positional inputs (graph inputs that are not initializers, in order). */
export async function runPositional(model: string | Uint8Array, inputs: ort.Tensor[], opts: ort.InferenceSession.SessionOptions = {}): Promise<ort.Tensor[]> {
  const s = await session(model, opts);
  try {
    const feeds = Object.fromEntries(s.inputNames.slice(0, inputs.length).map((n, i) => [n, inputs[i]!]));
    const out = await s.run(feeds);
    return s.outputNames.map((n) => out[n]!);
  } finally {
    await s.release();
  }
}

export function bytesOf(t: ort.Tensor): Uint8Array {
  const d = t.data as unknown as { buffer: ArrayBuffer; byteOffset: number; byteLength: number };
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

export function maxAbsDiff(a: ort.Tensor, b: ort.Tensor): number {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(Number(x[i]) - Number(y[i])));
  return m;
}

/** Largest |a-b| / max(1, |b|): absolute for small values, relative for large logits. */
export function maxScaledDiff(a: ort.Tensor, b: ort.Tensor): number {
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(Number(x[i]) - Number(y[i])) / Math.max(1, Math.abs(Number(y[i]))));
  return m;
}
