import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRuntime } from '../../src/runtime/index.js';
import type { BrowserRuntime } from '../../src/runtime/browser.js';
import type { Runtime } from '../../src/runtime/types.js';
import { CASES, checkCases } from './fixtures.js';

// One Chromium per EP for the whole file: launching is the slow part.
const rts: Partial<Record<'browser-wasm' | 'browser-webgpu', Runtime>> = {};
beforeAll(async () => {
  rts['browser-wasm'] = await openRuntime('browser-wasm');
  rts['browser-webgpu'] = await openRuntime('browser-webgpu');
});
afterAll(async () => { await Promise.all(Object.values(rts).map((rt) => rt.close())); });

describe.each(['browser-wasm', 'browser-webgpu'] as const)('%s', (ep) => {
  it('matches the reference outputs of relu and mnist within 1e-4', async () => {
    const rt = rts[ep]!;
    console.log(`${ep} page:`, (rt as BrowserRuntime).info);
    const diffs = await checkCases(rt);
    console.log(`${ep} max |diff|/max(1,|ref|):`, diffs);
  });
});

describe('browser sessions', () => {
  it('reports io metadata, runs several sessions side by side and fails cleanly after release', async () => {
    const rt = rts['browser-wasm']!;
    const [relu, mnist] = [CASES[0]!, CASES[1]!];
    const a = await rt.load(relu.model);
    const b = await rt.load(mnist.model);
    expect(b.inputs).toEqual([{ name: 'Input3', type: 'float32', shape: [1, 1, 28, 28] }]);
    const [ya, yb] = await Promise.all([a.run({ x: relu.input }), b.run({ Input3: mnist.input })]);
    expect(ya.y!.dims).toEqual(relu.expected.dims);
    expect(yb.Plus214_Output_0!.dims).toEqual([1, 10]);
    await a.release();
    await expect(a.run({ x: relu.input })).rejects.toThrow(/released/);
    await expect(b.run({ Input3: { ...mnist.input, type: 'int32', data: new Int32Array(784) } })).rejects.toThrow(/input is float32, got int32/);
    await b.release();
  });

  it('refuses keepOnDevice', async () => {
    await expect(rts['browser-webgpu']!.load(CASES[0]!.model, { keepOnDevice: ['y'] })).rejects.toThrow(/no device handles/);
  });
});
