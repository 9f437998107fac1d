/**
 * onnxruntime-node CPU sessions with an explicit thread count. The library's Runtime leaves threads to
 * ORT (one per core), which is right for users but makes timings on a shared machine swing with
 * every other process; the bench pins them (--threads, default 1) so ratios measure the graphs.
 */
import '../src/runtime/telemetry.js';
import ort from 'onnxruntime-node';
import type { HostTensor } from '../src/runtime/types.js';

export interface TimedSession {
  run(): Promise<unknown>;
  release(): Promise<void>;
}

export async function cpuSession(bytes: Uint8Array, feeds: Record<string, HostTensor>, threads: number): Promise<TimedSession> {
  const s = await ort.InferenceSession.create(bytes, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
  const tensors = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]));
  return { run: () => s.run(tensors), release: () => s.release() };
}
