/**
 * Throughput per execution provider relative to onnxruntime-node CPU, on real CNNs: the shipped
 * models/mnist-cnn.onnx (batch 64) and the ResNet-style bench network (batch 1, its fixed shape).
 * wasm is onnxruntime-web in Node (SIMD); cpu and wasm both get --threads threads; node webgpu only with --webgpu: on a
 * machine without a GPU it runs on SwiftShader (Vulkan on the CPU), which proves the kernels work but
 * says nothing about GPU speed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openRuntime } from '../src/runtime/index.js';
import { SWIFTSHADER_ICD } from '../src/runtime/node.js';
import type { EpName, HostTensor, Runtime } from '../src/runtime/types.js';
import { randomInput } from './forms.js';
import { interleave } from './interleave.js';
import { cpuSession, type TimedSession } from './ort.js';
import { resnet } from './model.js';
import { fmt, median } from './stats.js';
import { ratioRow, type BenchOptions, type Row, type Section, type SectionResult } from './types.js';

export function mnistModel(): string {
  // dist/bench/ when built, bench/ under tsx: models/ is at the package root either way.
  for (const rel of ['../../models/mnist-cnn.onnx', '../models/mnist-cnn.onnx']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error('models/mnist-cnn.onnx not found');
}

function batchOf(feeds: Record<string, HostTensor>, batch: number): Record<string, HostTensor> {
  const [name, t] = Object.entries(feeds)[0]!;
  const per = t.data.length;
  const data = new Float32Array(per * batch);
  for (let b = 0; b < batch; b++) data.set(t.data as Float32Array, b * per);
  return { [name]: { type: 'float32', data, dims: [batch, ...t.dims.slice(1)] } };
}

export const epsSection: Section = {
  name: 'eps',
  description: 'inference throughput per EP / onnxruntime-node CPU (mnist-cnn, resnet-small)',
  async run(opts: BenchOptions): Promise<SectionResult> {
    const eps: EpName[] = ['cpu', 'wasm'];
    const skipped: string[] = [];
    if (opts.webgpu) eps.push('webgpu');
    else skipped.push('webgpu: pass --webgpu (node WebGPU on SwiftShader here: a correctness path, not a speed figure)');
    // cpu: ORT directly, for the thread count; wasm and webgpu: the library's runtimes.
    const runtimes = new Map<EpName, Runtime | 'cpu'>([['cpu', 'cpu']]);
    for (const ep of eps.filter((e) => e !== 'cpu')) {
      try {
        const icd = ep === 'webgpu' && !process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD) ? SWIFTSHADER_ICD : undefined;
        runtimes.set(ep, await openRuntime(ep, ep === 'wasm' ? { threads: opts.threads } : icd ? { vulkanIcd: icd } : {}));
      } catch (e) {
        skipped.push(`${ep}: ${(e as Error).message}`);
      }
    }
    const open = async (rt: Runtime | 'cpu', bytes: Uint8Array, feeds: Record<string, HostTensor>): Promise<TimedSession> => {
      if (rt === 'cpu') return cpuSession(bytes, feeds, opts.threads);
      const s = await rt.load(bytes);
      return { run: () => s.run(feeds), release: () => s.release() };
    };
    const small = await resnet(opts.cacheDir);
    const models = [
      { name: 'mnist-cnn', bytes: readFileSync(mnistModel()), batch: 64, rounds: opts.quick ? 3 : 8, perRound: 5 },
      { name: 'resnet-small', bytes: readFileSync(small.path), batch: 1, rounds: opts.quick ? 3 : 8, perRound: 5 },
    ];
    const rows: Row[] = [];
    const details: Record<string, unknown> = {};
    try {
      for (const m of models) {
        const feeds = batchOf(randomInput(m.bytes), m.batch);
        const sessions = [];
        for (const [ep, rt] of runtimes) sessions.push({ ep, s: await open(rt, m.bytes, feeds) });
        // SwiftShader is ~100x slower than CPU: fewer runs keep the section short.
        const res = await interleave(
          sessions.map(({ ep, s }) => ({ name: ep, run: s.run })),
          { clock: opts.clock === 'cpu' && !runtimes.has('webgpu') ? 'cpu' : 'wall', warmup: 3, rounds: m.rounds, perRound: m.perRound },
        );
        for (const { s } of sessions) await s.release();
        const perSec = (ep: string) => (m.batch * 1000) / median(res.blocks[ep]!);
        const cpu = perSec('cpu');
        for (const ep of runtimes.keys()) {
          rows.push(
            ratioRow(
              `${m.name} batch ${m.batch}: ${ep} throughput, samples/s`,
              perSec(ep),
              'samples/s',
              { name: 'cpu', value: cpu, unit: 'samples/s' },
              undefined,
              `${fmt(median(res.blocks[ep]!))} ms/batch ${res.clock} time (best of ${m.perRound} per round, ${m.rounds} rounds; wall p50 of all runs ${fmt(median(res.wall[ep]!))})${ep === 'webgpu' ? '; SwiftShader (CPU), not a GPU figure' : ''}`,
            ),
          );
        }
        opts.log(`eps: ${m.name}: ${[...runtimes.keys()].map((ep) => `${ep} ${fmt(perSec(ep))}/s`).join(', ')}`);
        details[m.name] = { batch: m.batch, clock: res.clock, wallMs: res.wall, cpuMs: res.cpu };
      }
    } finally {
      for (const rt of runtimes.values()) if (rt !== 'cpu') await rt.close();
    }
    return { rows, details, skipped };
  },
};
