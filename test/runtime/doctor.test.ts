import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkEps } from '../../src/runtime/doctor.js';
import { probeNodeEp } from '../../src/runtime/probe.js';
import { openRuntime } from '../../src/runtime/index.js';
import { CUDA_FIX, SWIFTSHADER_ICD, cudaProviderMissing, nvidiaDriver } from '../../src/runtime/node.js';
import { ROOT } from '../helpers.js';
import { hasGpuDevice } from './gpu.js';

// Where the CUDA libraries or a driver exist, cuda may well work; the error path is then untestable.
const noCuda = cudaProviderMissing() !== undefined;
const hasSwiftShader = existsSync(SWIFTSHADER_ICD);
// No adapter as the environment stands (true on CPU-only CI); probed in a child, which commits nothing here.
const noAdapter = !process.env.VK_ICD_FILENAMES && hasSwiftShader && !(await probeNodeEp('webgpu')).ok;
const SOFTWARE = 'software: runs on the CPU, correct but not GPU speed';

describe('checkEps', () => {
  it('reports every EP in order, and each unusable one with a reason and a fix', async () => {
    const all = await checkEps();
    console.log(all);
    expect(all.map((s) => s.ep)).toEqual(['cpu', 'cuda', 'webgpu', 'wasm', 'browser-webgpu', 'browser-wasm']);
    const by = Object.fromEntries(all.map((s) => [s.ep, s]));
    expect(by.cpu).toMatchObject({ usable: true, detail: expect.stringMatching(/^onnxruntime-node 1\.\d+/) });
    expect(by.wasm).toMatchObject({ usable: true, detail: expect.stringContaining('onnxruntime-web') });
    expect(by['browser-wasm']).toMatchObject({ usable: true });
    if (!hasGpuDevice()) {
      expect(by['browser-webgpu']).toMatchObject({ usable: true, adapter: { name: 'google swiftshader', software: true, choice: 'auto' } });
      expect(by['browser-webgpu']!.detail).toContain(
        `adapter: google swiftshader (${SOFTWARE}); auto fell back to it: Chromium's only adapter is google swiftshader, a software (CPU) one`,
      );
    }
    for (const s of all.filter((x) => !x.usable)) {
      expect(s.reason, s.ep).toBeTruthy();
      expect(s.fix, s.ep).toBeTruthy();
    }
    if (noCuda) {
      expect(by.cuda!.usable).toBe(false);
      expect(by.cuda!.reason).toMatch(/CUDA provider libraries are not installed/);
      expect(by.cuda!.fix).toContain(CUDA_FIX);
    }
    // Without a driver named in the environment, a CPU-only box has no adapter: 'auto' runs on SwiftShader,
    // having tried it, and doctor says it is a software one and why it was taken.
    if (noAdapter) {
      expect(by.webgpu).toMatchObject({ usable: true, adapter: { name: 'SwiftShader (Vulkan on the CPU)', software: true, choice: 'auto' } });
      expect(by.webgpu!.detail).toContain(
        `adapter: SwiftShader (Vulkan on the CPU) (${SOFTWARE}); auto fell back to it: no WebGPU adapter with the system's Vulkan drivers`,
      );
    }
  });

  it.runIf(noAdapter && !hasGpuDevice())(
    "webgpuAdapter 'gpu' finds neither a node nor a browser GPU here; 'swiftshader' names SwiftShader as software",
    async () => {
      const gpu = await checkEps({ eps: ['webgpu', 'browser-webgpu'], webgpuAdapter: 'gpu' });
      expect(gpu.map((s) => [s.ep, s.usable])).toEqual([
        ['webgpu', false],
        ['browser-webgpu', false],
      ]);
      expect(gpu[0]!.reason).toMatch(/^no WebGPU \(Vulkan\) adapter found/);
      expect(gpu[0]!.fix).toContain("choose the WebGPU adapter 'auto' or 'swiftshader'");
      expect(gpu[1]!.reason).toBe("no hardware WebGPU adapter: Chromium's only adapter is google swiftshader, a software (CPU) one");
      expect(gpu[1]!.fix).toMatch(/^install the GPU's Vulkan driver/);
      const swift = await checkEps({ eps: ['webgpu', 'browser-webgpu'], webgpuAdapter: 'swiftshader' });
      expect(swift.map((s) => [s.ep, s.usable, s.adapter])).toEqual([
        ['webgpu', true, { name: 'SwiftShader (Vulkan on the CPU)', software: true, choice: 'swiftshader' }],
        ['browser-webgpu', true, { name: 'google swiftshader', software: true, choice: 'swiftshader' }],
      ]);
      for (const s of swift) expect(s.detail).toContain(SOFTWARE);
    },
  );

  it.runIf(hasSwiftShader)('webgpu follows VK_ICD_FILENAMES: SwiftShader works, a missing manifest is explained', async () => {
    const [swift] = await checkEps({ eps: ['webgpu'], env: { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD } });
    expect(swift).toMatchObject({
      ep: 'webgpu',
      usable: true,
      adapter: { software: true, choice: 'auto' },
      detail: expect.stringContaining(`SwiftShader (Vulkan on the CPU) (${SOFTWARE})`),
    });
    const [bad] = await checkEps({ eps: ['webgpu'], env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' } });
    expect(bad).toMatchObject({ ep: 'webgpu', usable: false, reason: expect.stringContaining('no WebGPU (Vulkan) adapter') });
    expect(bad!.fix).toContain('VK_ICD_FILENAMES=/nonexistent/icd.json gave no usable adapter');
  });

  it('a missing Chromium makes both browser EPs unusable with the apt-get fix', async () => {
    const st = await checkEps({ eps: ['browser-wasm', 'browser-webgpu'], chromium: '/nonexistent/chromium' });
    expect(st).toEqual([
      { ep: 'browser-webgpu', usable: false, reason: 'Chromium not found at /nonexistent/chromium', fix: 'apt-get install -y chromium' },
      { ep: 'browser-wasm', usable: false, reason: 'Chromium not found at /nonexistent/chromium', fix: 'apt-get install -y chromium' },
    ]);
  });
});

// 'auto' (the default) falls back to SwiftShader and says so: test/eval/cli.test.ts runs it in a child.
describe.runIf(noAdapter)("asking for webgpu's GPU without a Vulkan adapter", () => {
  it('is a UserError naming both ways out, not a silent CPU fallback', async () => {
    // Decided by a probe in a child: Dawn in this process is never asked, and stays free to start.
    await expect(openRuntime('webgpu', { webgpuAdapter: 'gpu' })).rejects.toMatchObject({
      name: 'UserError',
      message:
        "webgpu: no WebGPU (Vulkan) adapter found; fix: install your GPU's Vulkan driver, or on CPU-only Linux choose the WebGPU adapter 'auto' or 'swiftshader' (Debian chromium's SwiftShader: slow; for correctness checks)",
    });
    expect(process.env.VK_ICD_FILENAMES).toBeUndefined();
  });
});

describe.runIf(noCuda)('asking for an unusable EP', () => {
  it('cuda: a UserError naming the EP, the cause and the fix, no fallback', async () => {
    const err = await openRuntime('cuda').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ name: 'UserError', subject: 'cuda' });
    const msg = (err as Error).message;
    expect(msg).toMatch(/^cuda: CUDA provider libraries are not installed/);
    expect(msg).toContain(`fix: ${nvidiaDriver() ? '' : 'install the NVIDIA driver and CUDA 12 runtime, then '}${CUDA_FIX}`);
  });

  it('doctor --require cuda: JSON on stdout, one error line on stderr, exit 2', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'doctor', '--ep', 'cpu', '--require', 'cuda', '--json'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(2);
    const report = JSON.parse(r.stdout) as { eps: { ep: string; usable: boolean }[] };
    expect(report.eps.map((s) => [s.ep, s.usable])).toEqual([
      ['cpu', true],
      ['cuda', false],
    ]);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /^error: --require: cuda is not usable: CUDA provider libraries are not installed.*; fix: .*ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node$/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
