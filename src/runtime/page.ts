/**
 * The code that runs inside the page: plain JavaScript served as /runner.mjs by the loopback server and
 * used both by BrowserRuntime (driven through playwright) and by serve/serve.ts (a user's own browser). It
 * keeps sessions in the page and moves tensors only as binary bundles over HTTP: GET feeds, POST outputs.
 * The bundle layout must match packTensors/unpackTensors in tensor.ts.
 */

export const RUNNER_JS = String.raw`
const base = new URL('.', import.meta.url).href;
const mod = await import(base + 'ort/ort.min.mjs');
export const ort = mod.default ?? mod;
ort.env.wasm.wasmPaths = base + 'ort/';

const ARRAYS = {
  float32: Float32Array, float64: Float64Array, float16: Uint16Array, int8: Int8Array, uint8: Uint8Array,
  int16: Int16Array, uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array,
  uint64: BigUint64Array, bool: Uint8Array,
};
const align8 = (n) => Math.ceil(n / 8) * 8;

export function unpack(buf) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hl = dv.getUint32(0, true);
  const entries = JSON.parse(new TextDecoder().decode(buf.subarray(4, 4 + hl)));
  const start = align8(4 + hl);
  const out = {};
  for (const e of entries) {
    const C = ARRAYS[e.type];
    if (!C) throw new Error('input ' + e.name + ': unsupported type ' + e.type);
    out[e.name] = new ort.Tensor(e.type, new C(buf.buffer, buf.byteOffset + start + e.offset, e.length / C.BYTES_PER_ELEMENT), e.dims);
  }
  return out;
}

export function pack(tensors) {
  const entries = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    if (!ARRAYS[t.type]) throw new Error('output ' + name + ': unsupported type ' + t.type);
    const d = t.data;
    entries.push({ name, type: t.type, dims: Array.from(t.dims), offset, length: d.byteLength, bytes: new Uint8Array(d.buffer, d.byteOffset, d.byteLength) });
    offset = align8(offset + d.byteLength);
  }
  const header = new TextEncoder().encode(JSON.stringify(entries.map(({ bytes, ...e }) => e)));
  const start = align8(4 + header.byteLength);
  const out = new Uint8Array(start + offset);
  new DataView(out.buffer).setUint32(0, header.byteLength, true);
  out.set(header, 4);
  for (const e of entries) out.set(e.bytes, start + e.offset);
  return out;
}

export async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error('GET ' + url + ': HTTP ' + r.status);
  return new Uint8Array(await r.arrayBuffer());
}

export async function post(url, body) {
  const r = await fetch(url, { method: 'POST', body });
  if (!r.ok) throw new Error('POST ' + url + ': HTTP ' + r.status + ' ' + (await r.text().catch(() => '')));
}

export async function describeGpu() {
  if (!navigator.gpu) return { gpu: false, adapter: null, software: false };
  const a = await navigator.gpu.requestAdapter();
  if (!a) return { gpu: true, adapter: null, software: false };
  const i = a.info ?? {};
  const adapter = [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'unnamed adapter';
  // Chromium offers SwiftShader as the fallback adapter when it finds no GPU, even without being told to.
  const software = !!(i.isFallbackAdapter ?? a.isFallbackAdapter) || /swiftshader|llvmpipe|lavapipe|software/i.test(adapter);
  return { gpu: true, adapter, software };
}

const meta = (ms) => ms.map((m) => m.isTensor ? { name: m.name, type: m.type, shape: Array.from(m.shape) } : { name: m.name, type: 'unknown', shape: [] });
const sessions = new Map();
const webgpuSessions = new Set();
let nextId = 1;

export async function init(threads) {
  ort.env.wasm.numThreads = threads > 0 ? threads : Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1));
  return { crossOriginIsolated: self.crossOriginIsolated, threads: ort.env.wasm.numThreads, ...(await describeGpu()) };
}

/** model: URL of the .onnx bytes; external: [{path, url}] for external data files. */
export async function load(modelUrl, external, ep, optimization) {
  const bytes = await fetchBytes(modelUrl);
  const s = await ort.InferenceSession.create(bytes, {
    executionProviders: [ep],
    graphOptimizationLevel: optimization,
    ...(external.length ? { externalData: external.map((e) => ({ path: e.path, data: e.url })) } : {}),
  });
  const id = nextId++;
  sessions.set(id, s);
  if (ep === 'webgpu') webgpuSessions.add(id);
  return { id, inputs: meta(s.inputMetadata), outputs: meta(s.outputMetadata) };
}

export async function run(id, feedsUrl, resultUrl) {
  const s = sessions.get(id);
  if (!s) throw new Error('session ' + id + ' was released');
  const feeds = unpack(await fetchBytes(feedsUrl));
  // onnxruntime-web's WebGPU EP only logs a kernel that fails WebGPU validation (a Concat of 8+ inputs
  // in 1.30: more storage buffers than its device allows), and the kernels submitted with it never run,
  // so the outputs come back wrong without an error. An error scope around the run makes it a failure.
  const device = webgpuSessions.has(id) ? ort.env.webgpu.device : undefined;
  device?.pushErrorScope('validation');
  const t0 = performance.now();
  let out;
  try {
    out = await s.run(feeds);
  } finally {
    const invalid = await device?.popErrorScope();
    if (invalid) {
      for (const t of Object.values(out ?? {})) t.dispose?.();
      throw new Error('the WebGPU EP ran a kernel that failed WebGPU validation, so the outputs are wrong: ' + invalid.message.split('\n')[0]);
    }
  }
  const ms = performance.now() - t0;
  await post(resultUrl, pack(out));
  for (const t of Object.values(out)) t.dispose?.();
  return ms;
}

export async function release(id) {
  const s = sessions.get(id);
  sessions.delete(id);
  webgpuSessions.delete(id);
  await s?.release();
}

window.__alrelu = { init, load, run, release };
window.dispatchEvent(new Event('alrelu-ready'));
`;

/** The blank page playwright drives: it only loads the runner. */
export const AUTOMATION_HTML = `<!doctype html><meta charset="utf-8"><title>alrelu runtime</title><script type="module" src="runner.mjs"></script>`;
