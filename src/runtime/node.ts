/**
 * onnxruntime-node: EPs `cpu`, `cuda` and `webgpu` (Dawn over Vulkan).
 *
 * WebGPU environment: Dawn reads VK_ICD_FILENAMES (which Vulkan driver) and wants XDG_RUNTIME_DIR when
 * it first asks for an adapter, i.e. at the first webgpu session of the process. Setting process.env
 * before that works (Node writes through to the C environment). Once an adapter request has failed the
 * process never retries, so the variables must be right before the first attempt. `webgpuAdapter` picks
 * the driver (vulkan.ts: 'auto' probes the system's drivers in a child and falls back to SwiftShader), and
 * `vulkanIcd` names one outright.
 *
 * keepOnDevice (webgpu, cuda): outputs so named come back as DeviceTensors that wrap ORT's 'gpu-buffer'
 * tensors and can be fed to the next run of any session of this runtime without a JS copy. Reading one
 * back goes through a cached Identity session whose output lands on the CPU, because ORT 1.30's
 * Tensor.getData() on a node WebGPU tensor aborts the process (seen here, "terminate called after
 * throwing an instance of 'char const*'").
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import './telemetry.js';
import ort from 'onnxruntime-node';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { UserError, messageLine, messageOf } from '../errors.js';
import { identityModel } from './models.js';
import { threadCount } from './threads.js';
import { checkFeeds, ioMeta, ortMessage, ortOptimization, runFailure, toHost, wrapHostSession, type TensorCtor } from './ort.js';
import type { AdapterInfo, DeviceRunResult, DeviceTensor, HostTensor, Runtime, Session, SessionOptions, TensorType, WebGpuAdapterChoice } from './types.js';
import { SWIFTSHADER_ICD, chooseVulkanDriver, nvidiaDriver } from './vulkan.js';

export type NodeEp = 'cpu' | 'cuda' | 'webgpu';

export { SWIFTSHADER_ICD, nvidiaDriver };
export const CUDA_FIX = 'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node';

export interface NodeRuntimeOptions {
  /** webgpu: Vulkan ICD manifest to use (e.g. SWIFTSHADER_ICD); set as VK_ICD_FILENAMES before WebGPU starts; overrides webgpuAdapter */
  vulkanIcd?: string;
  /** webgpu: 'auto' (default) the system's Vulkan drivers where they give an adapter, else SwiftShader; 'gpu'; 'swiftshader' */
  webgpuAdapter?: WebGpuAdapterChoice;
  /** cuda device index, default 0 */
  deviceId?: number;
  /** intra-op threads, default all cores */
  threads?: number;
  /**
   * Whether idle pool threads spin waiting for work (onnxruntime's default). Spinning pools of sessions that
   * take turns (a training step and its validation) steal each other's cores: false makes them sleep.
   */
  spinning?: boolean;
}

/** Folder of onnxruntime-node's native libraries; the CUDA provider .so files land here when installed. */
function ortNodeLibDir(): string {
  const index = createRequire(import.meta.url).resolve('onnxruntime-node');
  return join(dirname(index), '..', 'bin', 'napi-v6', process.platform, process.arch);
}

export function cudaProviderMissing(): string | undefined {
  for (const lib of ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']) {
    const p = join(ortNodeLibDir(), lib);
    if (!existsSync(p)) return p;
  }
  return undefined;
}

let webgpuStarted = false;

/** Puts Dawn's environment in place before the first webgpu session; refuses changes after it. */
function prepareWebGpuEnv(vulkanIcd?: string): void {
  if (vulkanIcd !== undefined && process.env.VK_ICD_FILENAMES !== vulkanIcd) {
    if (webgpuStarted) {
      throw new UserError(
        'webgpu',
        `WebGPU already started in this process with VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES ?? '(unset)'}; it cannot switch to ${vulkanIcd}`,
      );
    }
    if (!existsSync(vulkanIcd)) throw new UserError(vulkanIcd, 'Vulkan ICD manifest not found');
    process.env.VK_ICD_FILENAMES = vulkanIcd;
  }
  // Dawn only warns without it, but some Vulkan loaders fail: a private temp dir is always acceptable.
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = mkdtempSync(join(tmpdir(), 'alrelu-xdg-'));
    process.env.XDG_RUNTIME_DIR = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
}

/** Turns ORT's provider failures into the sentence doctor would print. */
export function explainNodeFailure(ep: NodeEp, message: string, env: NodeJS.ProcessEnv = process.env): { reason: string; fix?: string } {
  if (ep === 'cuda') {
    const driver = nvidiaDriver();
    if (/providers_(shared|cuda)|Failed to load shared library/.test(message)) {
      return driver
        ? { reason: 'CUDA provider libraries are not installed in onnxruntime-node', fix: CUDA_FIX }
        : {
            reason: 'CUDA provider libraries are not installed, and no NVIDIA driver is loaded (/proc/driver/nvidia/version missing)',
            fix: `install the NVIDIA driver and CUDA 12 runtime, then ${CUDA_FIX}`,
          };
    }
    if (!driver) return { reason: `no NVIDIA driver is loaded (${messageLine(message, 'last')})`, fix: 'install the NVIDIA driver and CUDA 12 runtime' };
    return { reason: messageLine(message, 'last') };
  }
  if (ep === 'webgpu' && /adapter/i.test(message)) {
    const icd = env.VK_ICD_FILENAMES;
    const swift = existsSync(SWIFTSHADER_ICD);
    const fix = icd
      ? `VK_ICD_FILENAMES=${icd} gave no usable adapter; check that file, or unset it to use the system's Vulkan drivers`
      : swift
        ? `install your GPU's Vulkan driver, or on CPU-only Linux choose the WebGPU adapter 'auto' or 'swiftshader' (Debian chromium's SwiftShader: slow; for correctness checks)`
        : `install your GPU's Vulkan driver, or on CPU-only Linux: apt-get install -y chromium libvulkan1 and choose the WebGPU adapter 'auto' or 'swiftshader' (SwiftShader: slow; for correctness checks)`;
    return { reason: 'no WebGPU (Vulkan) adapter found', fix };
  }
  return { reason: messageLine(message, 'last') };
}

const Ctor = ort.Tensor as unknown as TensorCtor;

/** A DeviceTensor's ORT tensor, keyed by the handle, so the handle stays opaque to callers. */
const deviceTensors = new WeakMap<DeviceTensor, { tensor: Tensor; owner: NodeRuntime }>();

export class NodeRuntime implements Runtime {
  private identity = new Map<TensorType, Promise<InferenceSession>>();
  private sessions = new Set<InferenceSession>();

  readonly threads: number;

  private constructor(
    readonly ep: NodeEp,
    private readonly opts: NodeRuntimeOptions,
    readonly adapter?: AdapterInfo,
  ) {
    this.threads = threadCount(opts.threads);
  }

  static async open(ep: NodeEp, opts: NodeRuntimeOptions = {}): Promise<NodeRuntime> {
    if (ep === 'cuda') {
      const missing = cudaProviderMissing();
      if (missing) {
        const { reason, fix } = explainNodeFailure('cuda', `Failed to load shared library ${missing}`);
        throw new UserError('cuda', `${reason}; fix: ${fix}`);
      }
    }
    if (ep !== 'webgpu') return new NodeRuntime(ep, opts);
    const { icd, adapter, unavailable } = await chooseVulkanDriver(opts.webgpuAdapter ?? 'auto', opts.vulkanIcd, webgpuStarted);
    if (unavailable !== undefined) {
      const { reason, fix } = explainNodeFailure('webgpu', unavailable);
      throw new UserError('webgpu', fix ? `${reason}; fix: ${fix}` : reason);
    }
    prepareWebGpuEnv(icd);
    return new NodeRuntime(ep, opts, adapter);
  }

  private providers(): InferenceSession.SessionOptions['executionProviders'] {
    const deviceId = this.opts.deviceId ?? 0;
    if (this.ep === 'cuda') return [{ name: 'cuda', deviceId }];
    // The node WebGPU EP rejects deviceId ("unrecognized option"); it always takes Dawn's default adapter.
    if (this.ep === 'webgpu') return ['webgpu'];
    return ['cpu'];
  }

  private async create(model: string | Uint8Array, extra: InferenceSession.SessionOptions, name?: string): Promise<InferenceSession> {
    // fatal only: warnings (e.g. shape ops kept on CPU under WebGPU) are not the user's to act on, and errors come
    // back as exceptions, which the caller words; logged too, they would be a second line on stderr
    const options: InferenceSession.SessionOptions = {
      executionProviders: this.providers(),
      logSeverityLevel: 4,
      intraOpNumThreads: this.threads,
      ...(this.opts.spinning === false ? { extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } } } : {}),
      ...extra,
    };
    if (this.ep === 'webgpu') webgpuStarted = true;
    try {
      const s = typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
      this.sessions.add(s);
      return s;
    } catch (e) {
      const msg = messageOf(e);
      const subject = name ?? (typeof model === 'string' ? model : this.ep);
      if (this.ep !== 'cpu' && /adapter|shared library|provider|CUDA|cuda/.test(msg)) {
        const { reason, fix } = explainNodeFailure(this.ep, msg);
        throw new UserError(this.ep, fix ? `${reason}; fix: ${fix}` : reason);
      }
      throw new UserError(subject, `onnxruntime-node (${this.ep}) cannot load the model: ${ortMessage(msg)}`);
    }
  }

  async load(model: string | Uint8Array, options: SessionOptions = {}): Promise<Session> {
    const keep = options.keepOnDevice ?? [];
    if (keep.length > 0 && this.ep === 'cpu') {
      throw new UserError('keepOnDevice', 'needs a device EP (webgpu or cuda); cpu outputs are already on the host');
    }
    const base: InferenceSession.SessionOptions = {
      graphOptimizationLevel: ortOptimization(options.optimization),
      ...(options.arena === false && this.ep === 'cpu' ? { enableCpuMemArena: false } : {}),
      ...(options.memoryPattern === false && this.ep === 'cpu' ? { enableMemPattern: false } : {}),
    };
    const failed = runFailure(options.name, `onnxruntime-node (${this.ep})`);
    if (keep.length === 0) {
      const s = await this.create(model, base, options.name);
      const wrapped = wrapHostSession(s, Ctor, failed);
      return {
        ...wrapped,
        release: async () => {
          this.sessions.delete(s);
          await s.release();
        },
      };
    }
    // 'gpu-buffer' is the binding's only device location for both EPs (verified on webgpu; cuda untested here).
    const s = await this.create(model, { ...base, preferredOutputLocation: Object.fromEntries(keep.map((n) => [n, 'gpu-buffer' as const])) }, options.name);
    const unknown = keep.filter((n) => !s.outputNames.includes(n));
    if (unknown.length) {
      await s.release();
      throw new UserError('keepOnDevice', `${unknown.join(', ')}: not outputs of the model (outputs: ${s.outputNames.join(', ')})`);
    }
    return this.deviceSession(s, new Set(keep), failed);
  }

  private deviceSession(s: InferenceSession, keep: Set<string>, failed: (e: unknown) => unknown): Session {
    const inputs = ioMeta(s.inputMetadata);
    const outputs = ioMeta(s.outputMetadata);
    const runOnDevice = async (feeds: Record<string, HostTensor | DeviceTensor>): Promise<DeviceRunResult> => {
      checkFeeds(inputs, feeds);
      const ortFeeds: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = 'kind' in v ? this.unwrap(k, v) : new Ctor(v.type, v.data, v.dims);
      const res = await s.run(ortFeeds).catch((e: unknown) => {
        throw failed(e);
      });
      const out: DeviceRunResult = { host: {}, device: {} };
      for (const [k, v] of Object.entries(res)) {
        if (keep.has(k)) out.device[k] = this.wrap(k, v);
        else out.host[k] = toHost(k, v);
      }
      return out;
    };
    return {
      inputs,
      outputs,
      runOnDevice,
      run: async (feeds) => {
        const r = await runOnDevice(feeds);
        const out = { ...r.host };
        for (const [k, d] of Object.entries(r.device)) {
          try {
            out[k] = await d.download();
          } finally {
            d.dispose();
          }
        }
        return out;
      },
      release: async () => {
        this.sessions.delete(s);
        await s.release();
      },
    };
  }

  private wrap(name: string, tensor: Tensor): DeviceTensor {
    const type = tensor.type;
    if (type === 'string' || type === 'int4' || type === 'uint4') throw new UserError(name, `output has element type ${type}, which alrelu cannot carry`);
    let disposed = false;
    const handle: DeviceTensor = {
      kind: 'device',
      type,
      dims: [...tensor.dims],
      download: async () => {
        if (disposed) throw new Error(`device tensor '${name}' was disposed`);
        const id = await this.identitySession(type);
        const res = await id.run({ x: tensor });
        return toHost(name, res.y!);
      },
      dispose: () => {
        if (!disposed) {
          disposed = true;
          tensor.dispose();
        }
      },
    };
    deviceTensors.set(handle, { tensor, owner: this });
    return handle;
  }

  private unwrap(name: string, d: DeviceTensor): Tensor {
    const entry = deviceTensors.get(d);
    if (!entry || entry.owner !== this) throw new UserError(name, 'device tensor comes from another runtime; download() it and feed the host copy');
    return entry.tensor;
  }

  private identitySession(type: TensorType): Promise<InferenceSession> {
    let p = this.identity.get(type);
    if (!p) {
      p = this.create(identityModel(type), {});
      this.identity.set(type, p);
    }
    return p;
  }

  async close(): Promise<void> {
    const all = [...this.sessions];
    this.sessions.clear();
    this.identity.clear();
    await Promise.allSettled(all.map((s) => s.release()));
  }
}
