import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ortNode from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Loopback } from '../../src/runtime/http.js';
import { RUNNER, servePage } from '../../src/runtime/page.js';
import * as page from '../../src/runtime/page/bundle.js';
import * as node from '../../src/runtime/tensor.js';
import type { HostTensor, TensorType } from '../../src/runtime/types.js';
import { ROOT } from '../helpers.js';

/** One tensor of every type, with values that would be mangled by a wrong width, sign or byte order. */
const EVERY_TYPE: Record<string, HostTensor> = {
  f32: { type: 'float32', dims: [2, 2], data: new Float32Array([1.5, -0, Number.NaN, -3.25e-20]) },
  f64: { type: 'float64', dims: [3], data: new Float64Array([Math.PI, -1e300, Number.NEGATIVE_INFINITY]) },
  // float16 as raw bits: 1.0, -2.0, the largest finite half, a NaN with payload
  f16: { type: 'float16', dims: [4], data: new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x7e01]) },
  i8: { type: 'int8', dims: [3], data: new Int8Array([-128, 0, 127]) },
  u8: { type: 'uint8', dims: [1, 3], data: new Uint8Array([0, 128, 255]) },
  i16: { type: 'int16', dims: [2], data: new Int16Array([-32768, 32767]) },
  u16: { type: 'uint16', dims: [2], data: new Uint16Array([0, 65535]) },
  i32: { type: 'int32', dims: [3], data: new Int32Array([-(2 ** 31), 0, 2 ** 31 - 1]) },
  u32: { type: 'uint32', dims: [1], data: new Uint32Array([2 ** 32 - 1]) },
  // int64 past 2^53, where a trip through Number would round
  i64: { type: 'int64', dims: [3], data: new BigInt64Array([-(2n ** 63n), 2n ** 53n + 1n, -1n]) },
  u64: { type: 'uint64', dims: [2], data: new BigUint64Array([2n ** 64n - 1n, 2n ** 53n + 1n]) },
  b: { type: 'bool', dims: [5], data: new Uint8Array([1, 0, 0, 1, 1]) },
  empty: { type: 'float32', dims: [0, 3], data: new Float32Array(0) },
  emptyI64: { type: 'int64', dims: [2, 0], data: new BigInt64Array(0) },
  // odd byte lengths before it: its data must still start 8-aligned
  after: { type: 'float64', dims: [1], data: new Float64Array([42]) },
};

describe('tensor bundle (one implementation for Node and the page)', () => {
  it('is the very module the page imports: Node re-exports it, the server hands the page its compiled copy', async () => {
    expect(node.packTensors).toBe(page.packTensors);
    expect(node.unpackTensors).toBe(page.unpackTensors);
    // run as source here, so page.ts finds the compiled page in dist/ (built by the global setup)
    const server = await Loopback.start();
    try {
      servePage(server);
      const get = async (f: string) => {
        const r = await fetch(server.base + f, { headers: { origin: new URL(server.base).origin } });
        expect(r.status, f).toBe(200);
        expect(r.headers.get('content-type'), f).toBe('text/javascript');
        return r.text();
      };
      const runner = await get(RUNNER);
      expect(runner).toMatch(/^import \{ packTensors, unpackTensors \} from '\.\/bundle\.js';$/m);
      expect(runner).not.toMatch(/function (un)?packTensors|new DataView/);
      expect(await get('bundle.js')).toBe(readFileSync(join(ROOT, 'dist/src/runtime/page/bundle.js'), 'utf8'));
    } finally {
      await server.close();
    }
  });

  it('round-trips every element type bit for bit, float16, int64 and zero-size tensors included', () => {
    const bytes = node.packTensors(EVERY_TYPE);
    const back = page.unpackTensors(bytes);
    expect(Object.keys(back)).toEqual(Object.keys(EVERY_TYPE));
    for (const [name, t] of Object.entries(EVERY_TYPE)) {
      const b = back[name]!;
      expect(b.type, name).toBe(t.type);
      expect(b.dims, name).toEqual(t.dims);
      expect(b.data.constructor, name).toBe(t.data.constructor);
      // bytes, not values: NaN payloads and -0 must survive
      expect(
        Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
        name,
      ).toBe(true);
      // a view of the bundle, not a copy (the page relies on it for large feeds)
      expect(b.data.buffer, name).toBe(bytes.buffer);
    }
  });

  it('lays the bundle out as documented: u32 LE header length, JSON header, data on 8-byte boundaries', () => {
    const bytes = node.packTensors(EVERY_TYPE);
    const headerLength = new DataView(bytes.buffer).getUint32(0, true);
    const entries = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + headerLength))) as {
      name: string;
      type: TensorType;
      offset: number;
      length: number;
    }[];
    const base = Math.ceil((4 + headerLength) / 8) * 8;
    for (const e of entries) {
      expect((base + e.offset) % 8, e.name).toBe(0);
      expect(e.length, e.name).toBe(EVERY_TYPE[e.name]!.data.byteLength);
    }
    const last = entries.at(-1)!;
    expect(bytes.byteLength).toBe(base + Math.ceil((last.offset + last.length) / 8) * 8);
    expect(new Float64Array(bytes.buffer, base + last.offset, 1)[0]).toBe(42);
  });

  it('packs onnxruntime tensors as the page does (its outputs) and Node reads them back', () => {
    const out = {
      y: new ortNode.Tensor('float32', new Float32Array([1, 2, 3]), [1, 3]),
      idx: new ortNode.Tensor('int64', new BigInt64Array([2n ** 40n]), [1]),
      none: new ortNode.Tensor('float32', new Float32Array(0), [0]),
    };
    const back = node.unpackTensors(page.packTensors(out));
    expect(Array.from(back.y!.data as Float32Array)).toEqual([1, 2, 3]);
    expect(back.y!.dims).toEqual([1, 3]);
    expect(Array.from(back.idx!.data as BigInt64Array)).toEqual([2n ** 40n]);
    expect(back.none!.data.length).toBe(0);
  });

  it('refuses what it cannot carry, and bundles that lie about their size', () => {
    expect(() => page.packTensors({ s: { type: 'string', dims: [1], data: new Uint8Array(1) } })).toThrow(/'s' has unsupported type string/);
    const bytes = node.packTensors({ x: EVERY_TYPE.f64! });
    expect(() => page.unpackTensors(bytes.subarray(0, bytes.byteLength - 8))).toThrow(/'x' runs past the end/);
    expect(() => page.unpackTensors(bytes.subarray(0, 2))).toThrow(/no header/);
    const huge = new Uint8Array(bytes);
    new DataView(huge.buffer).setUint32(0, 1 << 30, true);
    expect(() => page.unpackTensors(huge)).toThrow(/shorter than its header/);
    const wrongType = new TextEncoder().encode(JSON.stringify([{ name: 'x', type: 'float8', dims: [1], offset: 0, length: 1 }]));
    const forged = new Uint8Array(Math.ceil((4 + wrongType.byteLength) / 8) * 8 + 8);
    new DataView(forged.buffer).setUint32(0, wrongType.byteLength, true);
    forged.set(wrongType, 4);
    expect(() => page.unpackTensors(forged)).toThrow(/'x' has unsupported type float8/);
  });
});
