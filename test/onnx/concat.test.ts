/**
 * onnx/concat: a Concat of many inputs as a tree of Concats of at most 7. The reproduction: one Concat of
 * 8 or more inputs runs wrong on onnxruntime-web 1.30's WebGPU EP in Chromium (its pipeline needs more
 * storage buffers than the device was asked for; onnxruntime only logs that and read back zeros, the
 * page now makes it a run failure). The tree gives the concatenation computed here on cpu and on
 * browser-webgpu, whether or not a later onnxruntime fixes the kernel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { intAttr } from '../../src/onnx/attrs.js';
import { Builder } from '../../src/onnx/builder.js';
import { chunks, concat, MAX_CONCAT_INPUTS } from '../../src/onnx/concat.js';
import { DataType } from '../../src/onnx/dtype.js';
import { encodeModel } from '../../src/onnx/schema.js';
import { openRuntime } from '../../src/runtime/index.js';
import type { HostTensor, Runtime } from '../../src/runtime/types.js';

const vi = (name: string, dims?: number[]) => ({
  name,
  type: { tensorType: { elemType: DataType.FLOAT, ...(dims ? { shape: { dim: dims.map((d) => ({ dimValue: d })) } } : {}) } },
});

/** `k` inputs a0..a{k-1} of [2, i+1, 3] (sizes differ along the axis, so a misplaced block shows), joined on axis 1. */
function model(k: number, tree: boolean) {
  let n = 0;
  const b = new Builder((base) => `${base}_${n++}`, { opset: 13 });
  const names = Array.from({ length: k }, (_, i) => `a${i}`);
  const out = tree ? concat(b, names, 1) : b.op('Concat', names, [intAttr('axis', 1)]);
  const graph = { name: 'g', node: b.nodes, input: names.map((nm, i) => vi(nm, [2, (i % 3) + 1, 3])), output: [vi(out)] };
  const feeds: Record<string, HostTensor> = {};
  // values unique per element, none zero: a skipped or zero-filled block cannot match
  names.forEach((nm, i) => {
    const dims = [2, (i % 3) + 1, 3];
    feeds[nm] = { type: 'float32', data: Float32Array.from({ length: 6 * ((i % 3) + 1) }, (_, j) => 1 + i * 100 + j), dims };
  });
  // the reference: per batch row, each input's block in order
  const expected: number[] = [];
  for (let r = 0; r < 2; r++)
    for (const nm of names) {
      const t = feeds[nm]!;
      const len = t.data.length / 2;
      expected.push(...Array.from(t.data as Float32Array).slice(r * len, (r + 1) * len));
    }
  return { bytes: encodeModel({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }], graph }), nodes: b.nodes, feeds, expected };
}

async function runOn(rt: Runtime, m: ReturnType<typeof model>): Promise<number[]> {
  const s = await rt.load(m.bytes);
  try {
    const out = await s.run(m.feeds);
    return Array.from(Object.values(out)[0]!.data as Float32Array);
  } finally {
    await s.release();
  }
}

describe('concat as a tree of small Concats', () => {
  it('chunks runs of 7 in order', () => {
    expect(chunks([1, 2, 3], 2)).toEqual([[1, 2], [3]]);
    expect(chunks([])).toEqual([]);
    expect(chunks(Array.from({ length: 15 }, (_, i) => i)).map((c) => c.length)).toEqual([7, 7, 1]);
  });

  it('emits no Concat of more than 7 inputs, one part as itself, none as an error', () => {
    for (const k of [2, 7, 8, 9, 49, 50, 400]) {
      const m = model(k, true);
      expect(
        m.nodes.every((nd) => nd.opType === 'Concat' && nd.input!.length <= MAX_CONCAT_INPUTS),
        `k=${k}`,
      ).toBe(true);
      // a tree: every part read once, every inner Concat read once
      const reads = m.nodes.flatMap((nd) => nd.input!);
      expect(new Set(reads).size).toBe(reads.length);
    }
    const b = new Builder((s) => s, { opset: 13 });
    expect(concat(b, ['x'], 0)).toBe('x');
    expect(b.nodes).toHaveLength(0);
    expect(() => concat(b, [], 0)).toThrow(/no inputs/);
  });

  const runtimes: Partial<Record<'cpu' | 'browser-webgpu', Runtime>> = {};
  beforeAll(async () => {
    runtimes.cpu = await openRuntime('cpu');
    runtimes['browser-webgpu'] = await openRuntime('browser-webgpu');
  }, 120_000);
  afterAll(async () => {
    for (const rt of Object.values(runtimes)) await rt.close();
  });

  for (const ep of ['cpu', 'browser-webgpu'] as const) {
    it(`${ep}: the tree gives the concatenation of 8, 9 and 49 inputs (a 3x3 and a 7x7 kernel's offsets)`, async () => {
      for (const k of [8, 9, 49]) {
        const m = model(k, true);
        expect(await runOn(runtimes[ep]!, m), `${ep} k=${k}`).toEqual(m.expected);
      }
    }, 120_000);
  }

  it('browser-webgpu: a single Concat of 7 is right (the limit the tree keeps to); of 9, right or a run failure, never silently wrong', async () => {
    const seven = model(7, false);
    expect(await runOn(runtimes['browser-webgpu']!, seven)).toEqual(seven.expected);
    // onnxruntime-web 1.30 fails WebGPU validation here, which the page turns into a run failure (it used to
    // read back zeros); a fixed onnxruntime gives the right values
    const nine = model(9, false);
    const got = await runOn(runtimes['browser-webgpu']!, nine).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
    if (got instanceof Error)
      expect(got.message).toMatch(
        /^browser-webgpu: run failed: the WebGPU EP ran a kernel that failed WebGPU validation, so the outputs are wrong: .*storage buffers/,
      );
    else expect(got).toEqual(nine.expected);
    // the session and the page still work after the failure
    const again = model(9, true);
    expect(await runOn(runtimes['browser-webgpu']!, again)).toEqual(again.expected);
  }, 120_000);
});
