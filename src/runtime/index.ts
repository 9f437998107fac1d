/**
 * The backend registry: one tiny table from EP name to opener, in the spirit of onnxruntime js/common's
 * registerBackend. Callers get a Runtime and never learn which package serves it. An EP that cannot run
 * here is a UserError carrying the fix, never a silent fallback to another EP.
 */
import { UserError } from '../errors.js';
import { EP_NAMES, type EpName, type Runtime } from './types.js';
import type { NodeRuntimeOptions } from './node.js';
import type { WebRuntimeOptions } from './web.js';
import type { BrowserRuntimeOptions } from './browser.js';

export type RuntimeOptions = NodeRuntimeOptions & WebRuntimeOptions & BrowserRuntimeOptions;

type Opener = (ep: EpName, opts: RuntimeOptions) => Promise<Runtime>;

// Dynamic imports: `cpu` users never load playwright, browser users never load the native binding.
const openNode: Opener = async (ep, opts) => (await import('./node.js')).NodeRuntime.open(ep as 'cpu' | 'cuda' | 'webgpu', opts);
const openWeb: Opener = async (_ep, opts) => (await import('./web.js')).WebRuntime.open(opts);
const openBrowser: Opener = async (ep, opts) => (await import('./browser.js')).BrowserRuntime.open(ep as 'browser-webgpu' | 'browser-wasm', opts);

const BACKENDS: Record<EpName, Opener> = {
  cpu: openNode,
  cuda: openNode,
  webgpu: openNode,
  wasm: openWeb,
  'browser-webgpu': openBrowser,
  'browser-wasm': openBrowser,
};

export function isEpName(s: string): s is EpName {
  return (EP_NAMES as readonly string[]).includes(s);
}

/** Parses a comma-separated list of EPs given to `flag`; unknown names, or none, are a UserError naming the known ones. */
export function parseEpList(list: string, flag = 'ep'): EpName[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new UserError(flag, `expected at least one execution provider (known: ${EP_NAMES.join(', ')})`);
  for (const n of names) {
    if (!isEpName(n)) throw new UserError(flag, `unknown execution provider '${n}' (known: ${EP_NAMES.join(', ')})`);
  }
  return names as EpName[];
}

/**
 * Opens a runtime and proves it works by running a tiny Relu model on it: a UserError with the reason
 * and fix when the EP is not usable here.
 */
export async function openRuntime(ep: EpName, opts: RuntimeOptions = {}): Promise<Runtime> {
  if (!isEpName(ep)) throw new UserError('ep', `unknown execution provider '${String(ep)}' (known: ${EP_NAMES.join(', ')})`);
  const rt = await BACKENDS[ep](ep, opts);
  try {
    await selfTest(rt);
  } catch (e) {
    await rt.close().catch(() => undefined);
    throw e;
  }
  return rt;
}

async function selfTest(rt: Runtime): Promise<void> {
  const { probeModel, PROBE_INPUT, PROBE_EXPECTED } = await import('./models.js');
  const s = await rt.load(probeModel());
  try {
    const y = (await s.run({ x: PROBE_INPUT })).y;
    const ok = y && y.data.length === PROBE_EXPECTED.length && PROBE_EXPECTED.every((v, i) => Math.abs(Number(y.data[i]) - v) < 1e-6);
    if (!ok) throw new UserError(rt.ep, `a Relu self-test gave wrong results (${y ? Array.from(y.data as Float32Array).join(', ') : 'no output'})`);
  } finally {
    await s.release();
  }
}

export type { DeviceRunResult, DeviceTensor, EpName, EpStatus, HostTensor, IoMeta, Runtime, Session, SessionOptions, TensorType, TypedArray } from './types.js';
export { EP_NAMES } from './types.js';
