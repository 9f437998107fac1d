/**
 * The code that runs inside the page, used both by BrowserRuntime (driven through playwright) and by
 * serve/remote.ts (a user's own browser). It keeps sessions in the page and moves tensors only as binary
 * bundles over HTTP (bundle.ts, the same module Node packs with): GET feeds, POST outputs.
 *
 * Browser code: it runs as the compiled runner.js, served by page.ts next to the other files of this
 * folder, with onnxruntime-web's dist files under ort/ beside it. It imports only from this folder at
 * run time (the layer check refuses anything else) and may use no Node API.
 */
import type * as Ort from 'onnxruntime-web';
import type { ExternalFile, PageApi, PageInfo } from './api.js';
import { packTensors, unpackTensors, type Packable } from './bundle.js';
import type { IoMeta } from '../types.js';

// Loaded from the server at run time rather than bundled: the page gets onnxruntime-web's own files,
// the same version Node has installed, and finds its wasm beside them.
const base = new URL('.', import.meta.url).href;
const mod = (await import(base + 'ort/ort.min.mjs')) as typeof Ort & { default?: typeof Ort };
const ort: typeof Ort = mod.default ?? mod;
ort.env.wasm.wasmPaths = base + 'ort/';

async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function post(url: string, body: Uint8Array): Promise<void> {
  const r = await fetch(url, { method: 'POST', body: body as Uint8Array<ArrayBuffer> });
  if (!r.ok) throw new Error(`POST ${url}: HTTP ${r.status} ${await r.text().catch(() => '')}`);
}

async function describeGpu(): Promise<Pick<PageInfo, 'gpu' | 'adapter' | 'software'>> {
  // undefined where the browser has no WebGPU, whatever the DOM types say
  const gpu = navigator.gpu as GPU | undefined;
  if (!gpu) return { gpu: false, adapter: null, software: false };
  const a = await gpu.requestAdapter();
  if (!a) return { gpu: true, adapter: null, software: false };
  const i: Partial<GPUAdapterInfo> = a.info ?? {};
  const adapter = [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'unnamed adapter';
  // Chromium offers SwiftShader as the fallback adapter when it finds no GPU, even without being told to.
  const software =
    !!(i.isFallbackAdapter ?? (a as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter) || /swiftshader|llvmpipe|lavapipe|software/i.test(adapter);
  return { gpu: true, adapter, software };
}

function meta(ms: readonly Ort.InferenceSession.ValueMetadata[]): IoMeta[] {
  return ms.map((m) =>
    m.isTensor ? { name: m.name, type: m.type as IoMeta['type'], shape: Array.from(m.shape) } : { name: m.name, type: 'unknown', shape: [] },
  );
}

function dispose(tensors: Ort.InferenceSession.ReturnType | undefined): void {
  for (const t of Object.values(tensors ?? {})) t.dispose();
}

/** Outputs as the bundle takes them: string tensors have no bytes to send. */
function packable(out: Ort.InferenceSession.ReturnType): Record<string, Packable> {
  const r: Record<string, Packable> = {};
  for (const [name, t] of Object.entries(out)) {
    if (!ArrayBuffer.isView(t.data)) throw new Error(`output ${name}: unsupported type ${t.type}`);
    r[name] = { type: t.type, dims: t.dims, data: t.data };
  }
  return r;
}

const sessions = new Map<number, Ort.InferenceSession>();
const webgpuSessions = new Set<number>();
let nextId = 1;

export async function init(threads: number): Promise<PageInfo> {
  ort.env.wasm.numThreads = threads > 0 ? threads : Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
  return { crossOriginIsolated: self.crossOriginIsolated, threads: ort.env.wasm.numThreads, ...(await describeGpu()) };
}

/** modelUrl: URL of the .onnx bytes; external: the model's external data files. */
export async function load(modelUrl: string, external: ExternalFile[], ep: string, optimization: string): ReturnType<PageApi['load']> {
  const bytes = await fetchBytes(modelUrl);
  const s = await ort.InferenceSession.create(bytes, {
    executionProviders: [ep],
    graphOptimizationLevel: optimization as Ort.InferenceSession.SessionOptions['graphOptimizationLevel'],
    ...(external.length ? { externalData: external.map((e) => ({ path: e.path, data: e.url })) } : {}),
  });
  const id = nextId++;
  sessions.set(id, s);
  if (ep === 'webgpu') webgpuSessions.add(id);
  return { id, inputs: meta(s.inputMetadata), outputs: meta(s.outputMetadata) };
}

export async function run(id: number, feedsUrl: string, resultUrl: string): Promise<number> {
  const s = sessions.get(id);
  if (!s) throw new Error(`session ${id} was released`);
  const feeds: Record<string, Ort.Tensor> = {};
  for (const [name, t] of Object.entries(unpackTensors(await fetchBytes(feedsUrl)))) feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  // onnxruntime-web's WebGPU EP only logs a kernel that fails WebGPU validation (a Concat of 8+ inputs
  // in 1.30: more storage buffers than its device allows), and the kernels submitted with it never run,
  // so the outputs come back wrong without an error. An error scope around the run makes it a failure.
  // (ort types env.webgpu.device as a promise; awaiting takes the plain device it holds after a load too.)
  const device = webgpuSessions.has(id) ? await ort.env.webgpu.device : undefined;
  device?.pushErrorScope('validation');
  const t0 = performance.now();
  let out: Ort.InferenceSession.ReturnType | undefined;
  try {
    out = await s.run(feeds);
  } finally {
    const invalid = await device?.popErrorScope();
    if (invalid) {
      dispose(out);
      throw new Error(`the WebGPU EP ran a kernel that failed WebGPU validation, so the outputs are wrong: ${invalid.message.split('\n')[0]}`);
    }
  }
  const ms = performance.now() - t0;
  try {
    await post(resultUrl, packTensors(packable(out)));
  } finally {
    dispose(out);
  }
  return ms;
}

export async function release(id: number): Promise<void> {
  const s = sessions.get(id);
  sessions.delete(id);
  webgpuSessions.delete(id);
  await s?.release();
}

const api: PageApi = { init, load, run, release };
(window as Window & { __alrelu?: PageApi }).__alrelu = api;
window.dispatchEvent(new Event('alrelu-ready'));
