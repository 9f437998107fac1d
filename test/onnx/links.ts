/** Tiny models with external weights, and the files around them, for the tests of what a model may read. */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataType } from '../../src/onnx/dtype.js';
import { encodeModel } from '../../src/onnx/schema.js';
import type { ModelProto, TensorProto } from '../../src/onnx/types.js';
import { buildModel, makeNode, tensorInfo } from '../convert/build.js';

export const tmp = (p = 'alrelu-links-') => mkdtempSync(join(tmpdir(), p));

/** Weights of the model: a [4, 3] float matrix, 48 bytes. */
export const W_BYTES = 48;

export function externalTensor(name: string, dims: number[], location: string, offset?: number, length?: number): TensorProto {
  return {
    name,
    dims,
    dataType: DataType.FLOAT,
    dataLocation: 1,
    externalData: [
      { key: 'location', value: location },
      ...(offset !== undefined ? [{ key: 'offset', value: String(offset) }] : []),
      ...(length !== undefined ? [{ key: 'length', value: String(length) }] : []),
    ],
  };
}

/** x [N, 4] -> Gemm(w [4, 3], b [3]) -> Relu -> y [N, 3]: convertible, trainable on iris, evaluable on it. */
export function gemmModel(w: TensorProto): ModelProto {
  return buildModel({
    nodes: [makeNode('Gemm', ['x', 'w', 'b'], ['h'], 'fc'), makeNode('Relu', ['h'], ['y'], 'act')],
    inputs: [tensorInfo('x', DataType.FLOAT, ['N', 4])],
    outputs: [tensorInfo('y', DataType.FLOAT, ['N', 3])],
    initializers: [w, { name: 'b', dims: [3], dataType: DataType.FLOAT, rawData: new Uint8Array(12) }],
  });
}

/** Writes `gemmModel` with external weights at `location` into `dir`; returns the model's path. */
export function writeGemm(dir: string, location: string, name = 'model.onnx'): string {
  const file = join(dir, name);
  writeFileSync(file, encodeModel(gemmModel(externalTensor('w', [4, 3], location, 0, W_BYTES))));
  return file;
}

/** Plain weights: 12 small floats, distinct from any secret. */
export const weights = (): Buffer => Buffer.from(Float32Array.from({ length: 12 }, (_, i) => (i - 6) / 8).buffer);

/**
 * A folder beside the model's holding a secret of exactly W_BYTES bytes, made of a marker unique to this
 * run: any output that holds the marker leaked it.
 */
export function secret(root: string): { dir: string; file: string; marker: Buffer } {
  const dir = join(root, 'outside');
  mkdirSync(dir, { recursive: true });
  const marker = Buffer.from(`LEAK${process.pid}${Date.now().toString(36)}`.padEnd(24, 'X').slice(0, 24));
  const file = join(dir, 'secret.bin');
  writeFileSync(file, Buffer.concat([marker, marker]));
  return { dir, file, marker };
}

/** Every regular file under `dir` (links not followed: a link is not an output). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** Files under `dir` whose bytes hold `marker` (files larger than 64 MiB are not expected here). */
export function holding(dir: string, marker: Buffer): string[] {
  return filesUnder(dir).filter((f) => statSync(f).size < 64 << 20 && readFileSync(f).includes(marker));
}
