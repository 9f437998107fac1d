import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openRuntime } from '../../src/runtime/index.js';
import { SWIFTSHADER_ICD } from '../../src/runtime/node.js';
import type { Runtime } from '../../src/runtime/types.js';
import { CASES, checkCases, maxDiff } from './fixtures.js';
import { ROOT } from '../helpers.js';

const opened: Runtime[] = [];
afterAll(async () => {
  for (const rt of opened) await rt.close();
});

async function open(ep: 'cpu' | 'wasm' | 'webgpu'): Promise<Runtime> {
  // SwiftShader unless the environment already names a Vulkan driver (set before the first webgpu session).
  const rt = await openRuntime(ep, ep === 'webgpu' ? { vulkanIcd: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD } : {});
  opened.push(rt);
  return rt;
}

describe.each(['cpu', 'wasm', 'webgpu'] as const)('%s', (ep) => {
  it('matches the reference outputs of relu and mnist within 1e-4 (path and bytes)', async () => {
    const rt = await open(ep);
    expect(rt.ep).toBe(ep);
    const diffs = { ...(await checkCases(rt)), ...Object.fromEntries(Object.entries(await checkCases(rt, true)).map(([k, v]) => [`${k}(bytes)`, v])) };
    console.log(`${ep} max |diff|/max(1,|ref|):`, diffs);
  });
});

describe('session checks', () => {
  it('reports io metadata and rejects wrong feeds with a UserError', async () => {
    const rt = await open('cpu');
    const mnist = CASES[1]!;
    const s = await rt.load(mnist.model);
    expect(s.inputs).toEqual([{ name: 'Input3', type: 'float32', shape: [1, 1, 28, 28] }]);
    expect(s.outputs).toEqual([{ name: 'Plus214_Output_0', type: 'float32', shape: [1, 10] }]);
    await expect(s.run({ wrong: mnist.input })).rejects.toMatchObject({ name: 'UserError', message: expect.stringContaining('missing input') });
    await expect(s.run({ Input3: { ...mnist.input, dims: [1, 784] } })).rejects.toThrow(/input shape is \[1, 1, 28, 28\], got \[1, 784\]/);
    await s.release();
  });

  it('keepOnDevice on webgpu: device outputs feed the next run and download correctly', async () => {
    const rt = await open('webgpu');
    const relu = CASES[0]!;
    const s = await rt.load(relu.model, { keepOnDevice: ['y'] });
    const first = await s.runOnDevice!({ x: relu.input });
    expect(first.host).toEqual({});
    const y = first.device.y!;
    expect(y.kind).toBe('device');
    expect(y.dims).toEqual(relu.expected.dims);
    // Relu is idempotent: feeding y back must give y again, without y ever visiting JS.
    const second = await s.runOnDevice!({ x: y });
    const y2 = await second.device.y!.download();
    expect(maxDiff(y2, relu.expected)).toBeLessThan(1e-6);
    y.dispose();
    second.device.y!.dispose();
    // run() on a keepOnDevice session still returns host tensors
    const plain = await s.run({ x: relu.input });
    expect(maxDiff(plain.y!, relu.expected)).toBeLessThan(1e-6);
    await s.release();
  });

  it('without the arena and the memory pattern (as the training step runs), runs give the same outputs bit for bit', async () => {
    const rt = await open('cpu');
    const mnist = CASES[1]!;
    const outputs = async (options: { arena?: boolean; memoryPattern?: boolean }) => {
      const s = await rt.load(mnist.model, options);
      try {
        const runs: number[][] = [];
        for (let i = 0; i < 3; i++) runs.push(Array.from((await s.run({ Input3: mnist.input })).Plus214_Output_0!.data as Float32Array));
        return runs;
      } finally {
        await s.release();
      }
    };
    const [plain, lean] = [await outputs({}), await outputs({ arena: false, memoryPattern: false })];
    expect(maxDiff({ type: 'float32', data: Float32Array.from(plain[0]!), dims: [1, 10] }, mnist.expected)).toBeLessThan(1e-4);
    for (const run of [...plain, ...lean]) expect(run).toEqual(plain[0]);
  });

  it('keepOnDevice is refused on cpu', async () => {
    const rt = await open('cpu');
    await expect(rt.load(CASES[0]!.model, { keepOnDevice: ['y'] })).rejects.toThrow(/needs a device EP/);
  });
});

describe("onnxruntime's telemetry", () => {
  it('is off unless the environment turns it on: no device id or events database in HOME, no files in TMPDIR', () => {
    const root = mkdtempSync(join(tmpdir(), 'alrelu-telemetry-'));
    try {
      const script = `
        const { openRuntime } = await import(${JSON.stringify(join(ROOT, 'dist/src/runtime/index.js'))});
        const { identityModel } = await import(${JSON.stringify(join(ROOT, 'dist/src/runtime/models.js'))});
        const rt = await openRuntime('cpu', {});
        await (await rt.load(identityModel('float32'))).release();
        await rt.close();
      `;
      const run = (name: string, setting?: string) => {
        const [home, tmp] = [join(root, name, 'home'), join(root, name, 'tmp')];
        mkdirSync(home, { recursive: true });
        mkdirSync(tmp, { recursive: true });
        const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, TMPDIR: tmp };
        // onnxruntime keeps its telemetry off on CI machines by itself; these runs must see it as a user's would
        for (const ci of ['ORT_DISABLE_TELEMETRY', 'CI', 'TF_BUILD', 'GITHUB_ACTIONS']) delete env[ci];
        if (setting !== undefined) env.ORT_DISABLE_TELEMETRY = setting;
        const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        return { home: readdirSync(home), tmp: readdirSync(tmp) };
      };
      expect(run('default')).toEqual({ home: [], tmp: [] });
      // the user's own setting stands (and shows what the default prevents)
      const on = run('on', '0');
      expect(on.home).toEqual(['.cache']);
      expect(on.tmp).toContain('.ses');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
