import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkEps, probeNodeEp } from '../../src/runtime/doctor.js';
import { openRuntime } from '../../src/runtime/index.js';
import { CUDA_FIX, SWIFTSHADER_ICD, cudaProviderMissing, nvidiaDriver } from '../../src/runtime/node.js';
import { ROOT } from '../helpers.js';

// Where the CUDA libraries or a driver exist, cuda may well work; the error path is then untestable.
const noCuda = cudaProviderMissing() !== undefined;
const hasSwiftShader = existsSync(SWIFTSHADER_ICD);

describe('checkEps', () => {
  it('reports every EP in order, and each unusable one with a reason and a fix', async () => {
    const all = await checkEps();
    console.log(all);
    expect(all.map((s) => s.ep)).toEqual(['cpu', 'cuda', 'webgpu', 'wasm', 'browser-webgpu', 'browser-wasm']);
    const by = Object.fromEntries(all.map((s) => [s.ep, s]));
    expect(by.cpu).toMatchObject({ usable: true, detail: expect.stringMatching(/^onnxruntime-node 1\.\d+/) });
    expect(by.wasm).toMatchObject({ usable: true, detail: expect.stringContaining('onnxruntime-web') });
    expect(by['browser-wasm']).toMatchObject({ usable: true });
    expect(by['browser-webgpu']).toMatchObject({ usable: true, detail: expect.stringMatching(/adapter: .*swiftshader/i) });
    for (const s of all.filter((x) => !x.usable)) {
      expect(s.reason, s.ep).toBeTruthy();
      expect(s.fix, s.ep).toBeTruthy();
    }
    if (noCuda) {
      expect(by.cuda!.usable).toBe(false);
      expect(by.cuda!.reason).toMatch(/CUDA provider libraries are not installed/);
      expect(by.cuda!.fix).toContain(CUDA_FIX);
    }
    // Without a driver named in the environment, a CPU-only box has no adapter; doctor must say that
    // the SwiftShader export works, having tried it.
    if (!process.env.VK_ICD_FILENAMES && !by.webgpu!.usable && hasSwiftShader) {
      expect(by.webgpu!.reason).toMatch(/no WebGPU \(Vulkan\) adapter/);
      expect(by.webgpu!.fix).toContain(`export VK_ICD_FILENAMES=${SWIFTSHADER_ICD} (tested here: works`);
    }
  });

  it.runIf(hasSwiftShader)('webgpu follows VK_ICD_FILENAMES: SwiftShader works, a missing manifest is explained', async () => {
    const [swift] = await checkEps({ eps: ['webgpu'], env: { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD } });
    expect(swift).toMatchObject({ ep: 'webgpu', usable: true, detail: expect.stringContaining('SwiftShader') });
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

// No adapter as the environment stands (true on CPU-only CI): openRuntime must say so, not pick SwiftShader.
const noAdapter = !process.env.VK_ICD_FILENAMES && hasSwiftShader && !(await probeNodeEp('webgpu')).ok;

describe.runIf(noAdapter)('asking for webgpu without a Vulkan adapter', () => {
  it('is a UserError with the SwiftShader export, not a silent CPU fallback', async () => {
    // This process's Dawn is now committed to "no adapter"; the other tests here probe in children.
    await expect(openRuntime('webgpu')).rejects.toMatchObject({
      name: 'UserError',
      message: `webgpu: no WebGPU (Vulkan) adapter found; fix: install your GPU's Vulkan driver, or on CPU-only Linux use Debian chromium's SwiftShader: export VK_ICD_FILENAMES=${SWIFTSHADER_ICD} (slow; for correctness checks)`,
    });
    expect(process.env.VK_ICD_FILENAMES).toBeUndefined();
  });
});

describe.runIf(noCuda)('asking for an unusable EP', () => {
  it('cuda: a UserError naming the EP, the cause and the fix, no fallback', async () => {
    const err = await openRuntime('cuda').then(() => null, (e: unknown) => e);
    expect(err).toMatchObject({ name: 'UserError', subject: 'cuda' });
    const msg = (err as Error).message;
    expect(msg).toMatch(/^cuda: CUDA provider libraries are not installed/);
    expect(msg).toContain(`fix: ${nvidiaDriver() ? '' : 'install the NVIDIA driver and CUDA 12 runtime, then '}${CUDA_FIX}`);
  });

  it('doctor --require cuda: JSON on stdout, one error line on stderr, exit 2', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'doctor', '--ep', 'cpu', '--require', 'cuda', '--json'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(2);
    const report = JSON.parse(r.stdout) as { eps: { ep: string; usable: boolean }[] };
    expect(report.eps.map((s) => [s.ep, s.usable])).toEqual([['cpu', true], ['cuda', false]]);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^error: --require: cuda is not usable: CUDA provider libraries are not installed.*; fix: .*ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node$/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
