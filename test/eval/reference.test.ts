/**
 * Every upstream test_data_set among the fixtures, evaluated through `evaluate` on every EP that runs
 * here (CPU, wasm, node WebGPU and both browser EPs on SwiftShader): each output must match its
 * reference within numpy.allclose(atol=1e-4, rtol=1e-4). The references come from the ONNX backend
 * suite and the model zoo, so they are independent of onnxruntime.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../src/eval/evaluate.js';
import type { RunOk } from '../../src/eval/types.js';
import { openRuntime } from '../../src/runtime/index.js';
import { SWIFTSHADER_ICD } from '../../src/runtime/node.js';
import type { EpName, Runtime } from '../../src/runtime/types.js';
import { FIXTURES } from '../helpers.js';

const EPS: EpName[] = ['cpu', 'wasm', 'webgpu', 'browser-wasm', 'browser-webgpu'];

/** Model folders holding test_data_set_N beside model.onnx. */
function referenceModels(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const p = join(d, e.name);
      if (e.name.startsWith('test_data_set_')) {
        if (existsSync(join(d, 'model.onnx')) && !out.includes(d)) out.push(d);
      } else walk(p);
    }
  };
  walk(FIXTURES);
  return out.sort();
}

const MODELS = referenceModels();
const runtimes: Partial<Record<EpName, Runtime>> = {};

beforeAll(async () => {
  // Opened once for the file (a browser launch takes seconds) and handed to every evaluate call.
  // Node WebGPU on SwiftShader unless the environment already names a Vulkan driver.
  for (const ep of EPS) runtimes[ep] = await openRuntime(ep, ep === 'webgpu' ? { vulkanIcd: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD } : {});
});
afterAll(async () => {
  for (const rt of Object.values(runtimes)) await rt.close();
});

describe('upstream test_data_set references on every EP', () => {
  it('finds the fixtures (12 models, onnx2c mnist with 3 sets)', () => {
    expect(MODELS.length).toBeGreaterThanOrEqual(12);
    expect(MODELS.map((m) => relative(FIXTURES, m))).toContain('onnx2c/mnist');
  });

  it.each(MODELS.map((m) => [relative(FIXTURES, m), m]))('%s', async (_name, dir) => {
    const report = await evaluate({ models: [join(dir, 'model.onnx')], data: dir, eps: EPS, runtimes, warmup: 1 });
    const failed = report.results.filter((r) => !r.ok);
    expect(failed, JSON.stringify(failed)).toEqual([]);
    const worst: Record<string, number> = {};
    for (const r of report.results as RunOk[]) {
      if (r.metrics.task !== 'reference') throw new Error('expected reference metrics');
      expect(r.metrics.pass, `${r.ep}: ${JSON.stringify(r.metrics.outputs)}`).toBe(true);
      expect(r.metrics.outputs.length).toBeGreaterThan(0);
      expect(r.metrics.cases).toBe(readdirSync(dir).filter((n) => n.startsWith('test_data_set_')).length);
      worst[r.ep] = r.metrics.maxRel;
    }
    // Providers agree with each other as well as with the reference; the reference EP is named.
    for (const a of report.agreement) {
      expect(a.referenceEp).toBe('cpu');
      for (const o of a.outputs) if (o.argmaxAgreementPct !== null) expect(o.argmaxAgreementPct).toBe(100);
    }
    expect(report.agreement.map((a) => a.ep)).toEqual(EPS.slice(1));
    console.log(relative(FIXTURES, dirname(join(dir, 'model.onnx'))), 'max rel error per EP', worst);
  });
});
