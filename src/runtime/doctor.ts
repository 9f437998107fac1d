/**
 * Availability detection ("doctor"): for every execution provider, whether it works here, and if not,
 * why and what to run. Each EP is proven by the same Relu self-test `openRuntime` uses, never guessed
 * from files alone.
 *
 * The onnxruntime-node EPs are probed in a child process: a failed Dawn adapter request is permanent
 * for the process that made it, and a broken CUDA install can abort the process outright. A child
 * also lets doctor try webgpu a second time with SwiftShader's ICD, as the 'auto' adapter choice would,
 * without committing this process to it.
 */
import { existsSync } from 'node:fs';
import { arch, platform } from 'node:os';
import { isUserError, messageOf } from '../errors.js';
import { openRuntime } from './index.js';
import { threadCount } from './threads.js';
import { probeNodeEp } from './probe.js';
import { CUDA_FIX, SWIFTSHADER_ICD, cudaProviderMissing, explainNodeFailure } from './node.js';
import { CHROMIUM, CHROMIUM_FIX, type BrowserRuntime } from './browser.js';
import { EP_NAMES, type AdapterInfo, type EpName, type EpStatus, type WebGpuAdapterChoice } from './types.js';
import { describeIcd, nvidiaContainerIcd, nvidiaDriver, systemDriver } from './vulkan.js';

export interface DoctorOptions {
  /** which EPs to check, default all of them */
  eps?: readonly EpName[];
  /** Chromium executable for the browser EPs, default /usr/bin/chromium */
  chromium?: string;
  /** environment for the onnxruntime-node probes, default process.env (tests use it to vary VK_ICD_FILENAMES) */
  env?: NodeJS.ProcessEnv;
  /** per-probe limit, ms (default 60000) */
  timeoutMs?: number;
  /** webgpu and browser-webgpu: which adapter to check, as the EPs would choose it (default 'auto') */
  webgpuAdapter?: WebGpuAdapterChoice;
  /** threads the commands would compute with (shown for cpu; used by the wasm and browser checks); default all cores */
  threads?: number;
}

/** "adapter: NAME (software ...)" and, for an 'auto' that fell back, why. */
export function adapterText(a: AdapterInfo): string {
  const kind = a.software ? 'software: runs on the CPU, correct but not GPU speed' : 'hardware';
  return `adapter: ${a.name} (${kind})${a.fallback ? `; auto fell back to it: ${a.fallback}` : ''}`;
}

/** The native library's warnings worth showing: Dawn's reasons for rejecting a Vulkan driver. */
function nativeWarnings(stderr: string): string | undefined {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('Warning:') && !/npm warn/i.test(l));
  const unique = [...new Set(lines.map((l) => l.replace(/^Warning:\s*/, '')))];
  return unique.length ? unique.slice(0, 2).join('; ') : undefined;
}

/** "reason; fix: command" (how openRuntime's UserErrors read) as its two halves. */
function splitFix(message: string): { reason: string; fix?: string } {
  const i = message.indexOf('; fix: ');
  return i < 0 ? { reason: message } : { reason: message.slice(0, i), fix: message.slice(i + '; fix: '.length) };
}

/** A UserError's cause without its "subject: " prefix (the subject is the EP, already in the row). */
function causeOf(e: unknown, ep: string): string {
  const m = messageOf(e);
  return isUserError(e) && m.startsWith(`${ep}: `) ? m.slice(ep.length + 2) : m;
}

async function checkCpu(opts: DoctorOptions): Promise<EpStatus> {
  const r = await probeNodeEp('cpu', opts.env, opts.timeoutMs);
  if (r.ok)
    return { ep: 'cpu', usable: true, detail: `onnxruntime-node ${r.version ?? '?'} (${platform()} ${arch()}), ${threadCount(opts.threads)} thread(s)` };
  return {
    ep: 'cpu',
    usable: false,
    reason: `onnxruntime-node does not run here: ${r.error}`,
    fix: 'npm rebuild onnxruntime-node (or reinstall it for this platform)',
  };
}

async function checkCuda(opts: DoctorOptions): Promise<EpStatus> {
  const missing = cudaProviderMissing();
  if (missing) {
    const { reason, fix } = explainNodeFailure('cuda', `Failed to load shared library ${missing}`);
    return { ep: 'cuda', usable: false, reason, fix: fix ?? CUDA_FIX, detail: `missing ${missing}` };
  }
  const r = await probeNodeEp('cuda', opts.env, opts.timeoutMs);
  if (r.ok) return { ep: 'cuda', usable: true, detail: `onnxruntime-node ${r.version ?? '?'}, device 0` };
  const { reason, fix } = explainNodeFailure('cuda', r.error ?? '');
  return { ep: 'cuda', usable: false, reason, ...(fix ? { fix } : {}), ...(nativeWarnings(r.stderr) ? { detail: nativeWarnings(r.stderr) } : {}) };
}

/**
 * Node WebGPU (Dawn over Vulkan), as `webgpuAdapter` would choose (vulkan.ts): the environment as it is
 * (the system's drivers, or the user's VK_ICD_FILENAMES), and for 'auto' without an adapter there, SwiftShader.
 * onnxruntime-node does not name Dawn's adapter, so the name is the driver's.
 */
async function checkWebGpu(opts: DoctorOptions): Promise<EpStatus> {
  const env = opts.env ?? process.env;
  const choice = opts.webgpuAdapter ?? 'auto';
  const icd = env.VK_ICD_FILENAMES ?? env.VK_DRIVER_FILES;
  const usable = (adapter: AdapterInfo): EpStatus => ({ ep: 'webgpu', usable: true, detail: `Dawn; ${adapterText(adapter)}`, adapter });
  const swiftshader = async (fallback?: string): Promise<EpStatus> => {
    const swiftEnv = { ...env, VK_ICD_FILENAMES: SWIFTSHADER_ICD };
    const r = await probeNodeEp('webgpu', swiftEnv, opts.timeoutMs);
    if (r.ok) return usable({ ...describeIcd(SWIFTSHADER_ICD), choice, ...(fallback ? { fallback } : {}) });
    const { reason, fix } = explainNodeFailure('webgpu', r.error ?? 'no adapter', swiftEnv);
    return { ep: 'webgpu', usable: false, reason: `SwiftShader: ${reason}${fallback ? `; and ${fallback}` : ''}`, ...(fix ? { fix } : {}) };
  };
  if (choice === 'swiftshader') {
    if (!existsSync(SWIFTSHADER_ICD))
      return {
        ep: 'webgpu',
        usable: false,
        reason: `SwiftShader's Vulkan driver not found at ${SWIFTSHADER_ICD}`,
        fix: 'apt-get install -y chromium libvulkan1',
      };
    return swiftshader();
  }
  const r = await probeNodeEp('webgpu', env, opts.timeoutMs);
  if (r.ok) {
    const driver = systemDriver(env);
    if (choice === 'gpu' && driver.software) {
      return {
        ep: 'webgpu',
        usable: false,
        reason: `no hardware WebGPU adapter: Dawn runs, but on ${driver.name}, a software driver`,
        fix: icd ? "unset VK_ICD_FILENAMES and VK_DRIVER_FILES to use the system's Vulkan drivers" : "install your GPU's Vulkan driver",
      };
    }
    return usable({ ...driver, choice });
  }
  const warnings = nativeWarnings(r.stderr);
  if (!/adapter/i.test(r.error ?? '')) {
    const { reason, fix } = explainNodeFailure('webgpu', r.error ?? '', env);
    return { ep: 'webgpu', usable: false, reason, ...(fix ? { fix } : {}), ...(warnings ? { detail: warnings } : {}) };
  }
  const seen = warnings ? ` (Vulkan: ${warnings})` : '';
  // as the runtime does: NVIDIA's manifest where its container runtime mounts it, outside the loader's search path
  const nvidia = icd ? undefined : nvidiaContainerIcd();
  if (nvidia && (await probeNodeEp('webgpu', { ...env, VK_ICD_FILENAMES: nvidia }, opts.timeoutMs)).ok) {
    return usable({ name: `NVIDIA (${nvidiaDriver()}, ${nvidia})`, software: false, choice });
  }
  if (choice === 'auto' && !icd && existsSync(SWIFTSHADER_ICD)) return swiftshader(`no WebGPU adapter with the system's Vulkan drivers${seen}`);
  const { reason, fix } = explainNodeFailure('webgpu', r.error ?? 'no adapter', env);
  return { ep: 'webgpu', usable: false, reason: reason + seen, ...(fix ? { fix } : {}) };
}

async function checkWasm(opts: DoctorOptions): Promise<EpStatus> {
  try {
    const rt = await openRuntime('wasm', opts.threads ? { threads: opts.threads } : {});
    await rt.close();
    return { ep: 'wasm', usable: true, detail: `onnxruntime-web in Node, ${rt.threads} thread(s)` };
  } catch (e) {
    return { ep: 'wasm', usable: false, ...splitFix(causeOf(e, 'wasm')) };
  }
}

async function checkBrowser(ep: 'browser-wasm' | 'browser-webgpu', opts: DoctorOptions): Promise<EpStatus> {
  const exe = opts.chromium ?? CHROMIUM;
  if (!existsSync(exe)) return { ep, usable: false, reason: `Chromium not found at ${exe}`, fix: CHROMIUM_FIX };
  try {
    const rt = await openRuntime(ep, {
      chromium: exe,
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.threads ? { threads: opts.threads } : {}),
      ...(opts.webgpuAdapter ? { webgpuAdapter: opts.webgpuAdapter } : {}),
    });
    const { info, adapter } = rt as BrowserRuntime;
    await rt.close();
    if (ep === 'browser-webgpu' && adapter) {
      const own = adapter.software ? ' (for a GPU this machine lacks: `alrelu-convert serve`, opened in your own browser)' : '';
      return { ep, usable: true, detail: `${exe}; ${adapterText(adapter)}${own}`, adapter };
    }
    return {
      ep,
      usable: true,
      detail: `${exe}; ${info.threads} thread(s), ${info.crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated (single-threaded)'}`,
    };
  } catch (e) {
    return { ep, usable: false, ...splitFix(causeOf(e, ep)) };
  }
}

const CHECKS: Record<EpName, (opts: DoctorOptions) => Promise<EpStatus>> = {
  cpu: checkCpu,
  cuda: checkCuda,
  webgpu: checkWebGpu,
  wasm: (opts) => checkWasm(opts),
  'browser-wasm': (o) => checkBrowser('browser-wasm', o),
  'browser-webgpu': (o) => checkBrowser('browser-webgpu', o),
};

/**
 * Every requested EP's status, in EP_NAMES order. Never throws for an unusable EP: that is the answer.
 * The native probes run side by side; the browsers one after the other (each is a Chromium).
 */
export async function checkEps(opts: DoctorOptions = {}): Promise<EpStatus[]> {
  const wanted = EP_NAMES.filter((e) => !opts.eps || opts.eps.includes(e));
  const guard = async (ep: EpName): Promise<EpStatus> => {
    try {
      return await CHECKS[ep](opts);
    } catch (e) {
      return { ep, usable: false, reason: `the check itself failed: ${messageOf(e)}` };
    }
  };
  const native = Promise.all(wanted.filter((e) => e === 'cpu' || e === 'cuda' || e === 'webgpu').map(guard));
  const rest: EpStatus[] = [];
  for (const ep of wanted.filter((e) => e !== 'cpu' && e !== 'cuda' && e !== 'webgpu')) rest.push(await guard(ep));
  const all = [...(await native), ...rest];
  return wanted.map((ep) => all.find((s) => s.ep === ep)!);
}
