/**
 * Mutated real models (bit flips, truncation, corrupted length fields, spliced bytes): reading and
 * converting them must end in a UserError or a valid model, never a crash, a hang or another error.
 * Where onnxruntime loads the mutated model, it must load the converted one too.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/convert/convert.js';
import { mulberry32 } from '../../src/data/prng.js';
import { isUserError } from '../../src/errors.js';
import { validateExternal } from '../../src/onnx/external.js';
import { decodeModelBytes } from '../../src/onnx/read.js';
import { decodeModel, encodeModel } from '../../src/onnx/schema.js';
import { allTensors } from '../../src/onnx/walk.js';
import { encodeInline } from '../../src/onnx/write.js';
import { fixture } from '../helpers.js';

const SEEDS = [
  'onnx2c/mnist/model.onnx',
  'windows-ml/iris_mlp/Network.onnx',
  'burn-onnx/subgraph/outer_scope_loop.onnx',
  'onnx-onnx/examples-simple_cnn/simple_cnn.onnx',
  'onnx-onnx/light/light_squeezenet.onnx',
  'onnx-onnx/node/test_leakyrelu/model.onnx',
  'windows-ml/custom_domain_relu/relu.onnx',
].map(fixture);
const CASES_PER_MODEL = 1500;

type Mutation = (b: Uint8Array, r: () => number) => Uint8Array;
const at = (b: Uint8Array, r: () => number) => Math.floor(r() * b.length);

/** A protobuf varint, for planting absurd lengths where a length prefix stood. */
function varint(v: bigint): number[] {
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

const MUTATIONS: Record<string, Mutation> = {
  bitflips: (b, r) => {
    const c = Uint8Array.from(b);
    for (let k = 1 + Math.floor(r() * 8); k > 0; k--) c[at(c, r)]! ^= 1 << Math.floor(r() * 8);
    return c;
  },
  truncate: (b, r) => b.subarray(0, at(b, r)),
  length: (b, r) => {
    // Find a length-delimited field (wire type 2) and replace its length with a wrong one.
    const c = Array.from(b);
    for (let tries = 0; tries < 32; tries++) {
      const i = at(b, r);
      if ((c[i]! & 7) !== 2 || i + 1 >= c.length) continue;
      const lengths = [0n, 1n, 127n, 128n, BigInt(c.length), 0x7fffffffn, 0xffffffffn, (1n << 63n) - 1n, BigInt(Math.floor(r() * 300))];
      const v = lengths[Math.floor(r() * lengths.length)]!;
      let end = i + 1;
      while (end < c.length && c[end]! & 0x80) end++;
      c.splice(i + 1, end + 1 - (i + 1), ...varint(v));
      return Uint8Array.from(c);
    }
    return MUTATIONS.bitflips!(b, r);
  },
  splice: (b, r) => {
    const i = at(b, r);
    const j = at(b, r);
    const n = Math.floor(r() * 64);
    return Uint8Array.from([...b.subarray(0, i), ...b.subarray(j, j + n), ...b.subarray(i)]);
  },
};

describe('fuzz: mutated real models', () => {
  for (const file of SEEDS) {
    it(`${file.split('/models/')[1]}: ${CASES_PER_MODEL} mutations, only clean errors or valid output`, async () => {
      const original = readFileSync(file);
      const dir = dirname(file);
      const r = mulberry32(original.length);
      const tally: Record<string, number> = { userError: 0, converted: 0, ortChecked: 0 };
      const kinds = Object.keys(MUTATIONS);
      for (let k = 0; k < CASES_PER_MODEL; k++) {
        const kind = kinds[k % kinds.length]!;
        const bytes = MUTATIONS[kind]!(original, r);
        const started = performance.now();
        let out: Uint8Array | undefined;
        try {
          const model = decodeModelBytes(file, bytes);
          validateExternal(file, dir, allTensors(model));
          convert(model, { file });
          out = encodeInline(model, dir);
          // A valid output: it decodes again, and a second conversion finds nothing new to do.
          const again = decodeModel(out);
          expect(convert(again, { file }).replaced).toBe(0);
          expect(encodeModel(again).length).toBe(out.length);
          tally.converted!++;
        } catch (e) {
          if (!isUserError(e)) throw new Error(`case ${k} (${kind}): ${e instanceof Error ? e.stack : String(e)}`);
          expect((e as Error).message.split('\n')).toHaveLength(1);
          tally.userError!++;
        }
        expect(performance.now() - started, `case ${k} (${kind}) took too long`).toBeLessThan(5000);
        // Where onnxruntime accepts the mutated model, it accepts the converted one.
        if (out && k % 10 === 0) {
          const mutated = await ort.InferenceSession.create(encodeInline(decodeModelBytes(file, bytes), dir), { logSeverityLevel: 4 }).catch(() => undefined);
          if (mutated) {
            await mutated.release();
            const conv = await ort.InferenceSession.create(out, { logSeverityLevel: 4 });
            await conv.release();
            tally.ortChecked!++;
          }
        }
      }
      expect(tally.userError! + tally.converted!).toBe(CASES_PER_MODEL);
      // Both outcomes occur: the mutations neither all break the model nor all miss.
      expect(tally.userError).toBeGreaterThan(0);
      expect(tally.converted).toBeGreaterThan(0);
    });
  }
});
