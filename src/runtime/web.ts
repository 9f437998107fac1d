/**
 * `wasm`: onnxruntime-web's WebAssembly backend inside Node. Its env is process-global and read when
 * the first session initialises the wasm module, so the first WebRuntime's thread count wins.
 * The .wasm/.mjs files come from node_modules/onnxruntime-web/dist (the package's own default in Node).
 */
import * as ortWeb from 'onnxruntime-web';
import { UserError } from '../errors.js';
import { ortMessage, runFailure, wrapHostSession, ortOptimization, type TensorCtor } from './ort.js';
import { modelSource } from './source.js';
import { threadCount } from './threads.js';
import type { Runtime, Session, SessionOptions } from './types.js';

export interface WebRuntimeOptions {
  /** threads: onnxruntime's intra-op pool on node EPs, wasm threads on wasm; default all cores (1 avoids worker threads) */
  threads?: number;
}

// The ESM build exports namespace members; some bundlings put them under default.
const ort = (ortWeb as unknown as { default?: typeof ortWeb }).default ?? ortWeb;

let wasmStarted = false;

export class WebRuntime implements Runtime {
  readonly ep = 'wasm' as const;
  private sessions = new Set<{ release(): Promise<void> }>();

  private constructor(readonly threads: number) {}

  static async open(opts: WebRuntimeOptions = {}): Promise<WebRuntime> {
    // env.wasm is read once, when the first session starts the module: a later runtime's count is not applied.
    const threads = threadCount(opts.threads);
    if (!wasmStarted) ort.env.wasm.numThreads = threads;
    return new WebRuntime(ort.env.wasm.numThreads ?? 1);
  }

  async load(model: string | Uint8Array, options: SessionOptions = {}): Promise<Session> {
    if (options.keepOnDevice?.length) throw new UserError('keepOnDevice', 'the wasm EP has no device memory; outputs are already on the host');
    const src = await modelSource(model);
    let s: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
    wasmStarted = true;
    try {
      s = await ort.InferenceSession.create(src.bytes, {
        executionProviders: ['wasm'],
        // fatal only: errors come back as exceptions; logged too, they would be a second line on stderr
        logSeverityLevel: 4,
        graphOptimizationLevel: ortOptimization(options.optimization),
        ...(src.external.length ? { externalData: src.external } : {}),
      });
    } catch (e) {
      throw new UserError(options.name ?? src.label, `onnxruntime-web (wasm) cannot load the model: ${ortMessage(e)}`);
    }
    this.sessions.add(s);
    const wrapped = wrapHostSession(s, ort.Tensor as unknown as TensorCtor, runFailure(options.name, 'onnxruntime-web (wasm)'));
    return {
      ...wrapped,
      release: async () => {
        this.sessions.delete(s);
        await s.release();
      },
    };
  }

  async close(): Promise<void> {
    const all = [...this.sessions];
    this.sessions.clear();
    await Promise.allSettled(all.map((s) => s.release()));
  }
}
