import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRuntime } from '../../src/runtime/index.js';
import { chromiumArgs, type BrowserRuntime } from '../../src/runtime/browser.js';
import type { Runtime } from '../../src/runtime/types.js';
import { CASES, checkCases } from './fixtures.js';
import { hasGpuDevice } from './gpu.js';

// One Chromium per EP for the whole file: launching is the slow part.
const rts: Partial<Record<'browser-wasm' | 'browser-webgpu', Runtime>> = {};
beforeAll(async () => {
  rts['browser-wasm'] = await openRuntime('browser-wasm');
  rts['browser-webgpu'] = await openRuntime('browser-webgpu');
});
afterAll(async () => {
  await Promise.all(Object.values(rts).map((rt) => rt.close()));
});

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

describe('chromiumArgs', () => {
  const common = ['--disable-background-networking', '--disable-component-update', '--disable-sync'];
  it('pins SwiftShader, or asks for the GPU through Vulkan past the blocklist; wasm gets no WebGPU flags; only root drops the sandbox', () => {
    expect(chromiumArgs('browser-webgpu', 'swiftshader', false)).toEqual([
      '--headless=new',
      ...common,
      '--enable-unsafe-webgpu',
      '--use-webgpu-adapter=swiftshader',
    ]);
    expect(chromiumArgs('browser-webgpu', 'gpu', false)).toEqual([
      '--headless=new',
      ...common,
      '--enable-unsafe-webgpu',
      '--enable-features=Vulkan',
      '--ignore-gpu-blocklist',
    ]);
    expect(chromiumArgs('serve', 'gpu', true)).toEqual([
      '--headless=new',
      '--no-sandbox',
      ...common,
      '--enable-unsafe-webgpu',
      '--enable-features=Vulkan',
      '--ignore-gpu-blocklist',
    ]);
    for (const adapter of ['swiftshader', 'gpu'] as const) expect(chromiumArgs('browser-wasm', adapter, false)).toEqual(['--headless=new', ...common]);
    // the default stays the configuration that works everywhere
    expect(chromiumArgs('browser-webgpu', undefined, false)).toContain('--use-webgpu-adapter=swiftshader');
  });
});

// On a machine without a GPU (this one), Chromium offers only its SwiftShader fallback adapter.
describe.runIf(!hasGpuDevice())('browser-webgpu adapter choice without a GPU', () => {
  it('auto falls back to SwiftShader and says so: software, and why', () => {
    const a = rts['browser-webgpu']!.adapter;
    expect(a).toMatchObject({ choice: 'auto', software: true, name: expect.stringMatching(/swiftshader/i) });
    expect(a!.fallback).toMatch(/^Chromium's only adapter is .*swiftshader.*, a software \(CPU\) one$/i);
    expect(rts['browser-wasm']!.adapter).toBeUndefined();
  });

  it('gpu is a UserError naming the software adapter it found, within seconds', async () => {
    const t0 = Date.now();
    const err = await openRuntime('browser-webgpu', { webgpuAdapter: 'gpu' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'UserError', subject: 'browser-webgpu' });
    expect((err as Error).message).toMatch(
      /^browser-webgpu: no hardware WebGPU adapter: Chromium's only adapter is google swiftshader, a software \(CPU\) one; fix: install the GPU's Vulkan driver/,
    );
    expect((err as Error).message).not.toContain('\n');
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('gpu: a Chromium that does not come up in time is the same one-line error, not a hang', async () => {
    const err = await openRuntime('browser-webgpu', { webgpuAdapter: 'gpu', timeoutMs: 1 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/^browser-webgpu: no hardware WebGPU adapter: Chromium with its own adapter choice failed: .*[Tt]imeout/);
  });

  it('swiftshader pins it without trying the GPU: no fallback to report', async () => {
    const rt = await openRuntime('browser-webgpu', { webgpuAdapter: 'swiftshader' });
    try {
      expect(rt.adapter).toEqual({ name: 'google swiftshader', software: true, choice: 'swiftshader' });
    } finally {
      await rt.close();
    }
  });
});
