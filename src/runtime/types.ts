/**
 * One Runtime interface for every execution provider. A session never knows which backend it got:
 * callers pass plain typed arrays in and get plain typed arrays back.
 */

export const EP_NAMES = ['cpu', 'cuda', 'webgpu', 'wasm', 'browser-webgpu', 'browser-wasm'] as const;
export type EpName = (typeof EP_NAMES)[number];

export type TensorType = 'float32' | 'float64' | 'float16' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool';

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** A tensor as plain data (float16 travels as its raw Uint16Array bits). */
export interface HostTensor {
  type: TensorType;
  data: TypedArray;
  dims: number[];
}

export interface IoMeta {
  name: string;
  type: TensorType | 'unknown';
  /** fixed dims as numbers, symbolic dims as strings */
  shape: (number | string)[];
}

/**
 * A tensor left in device memory (a WebGPU or CUDA buffer) by `Session.runOnDevice`, so a training loop
 * can feed it to the next run without a round trip through JS. Opaque on purpose: the only ways out
 * are `download()` (a copy to host) and `dispose()` (frees the buffer; the owner must call it).
 */
export interface DeviceTensor {
  readonly kind: 'device';
  readonly type: TensorType;
  readonly dims: readonly number[];
  download(): Promise<HostTensor>;
  dispose(): void;
}

export interface DeviceRunResult {
  /** outputs not named in keepOnDevice */
  host: Record<string, HostTensor>;
  /** outputs named in keepOnDevice; the caller owns them and must dispose() them */
  device: Record<string, DeviceTensor>;
}

export interface Session {
  readonly inputs: IoMeta[];
  readonly outputs: IoMeta[];
  /** Every output comes back on the host, including those named in keepOnDevice (copied down). */
  run(feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>>;
  /**
   * Only on sessions loaded with `keepOnDevice` (node `webgpu` and `cuda`): feeds may be DeviceTensors
   * from an earlier run of any session of the same runtime, and the keepOnDevice outputs stay on device.
   */
  runOnDevice?(feeds: Record<string, HostTensor | DeviceTensor>): Promise<DeviceRunResult>;
  release(): Promise<void>;
}

export interface SessionOptions {
  /** graph optimization level, default 'all' */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Output names to leave in device memory (ORT `preferredOutputLocation: 'gpu-buffer'`), node `webgpu`
   * and `cuda` only; any other EP rejects it with a UserError rather than silently copying.
   */
  keepOnDevice?: string[];
  /**
   * The file a user's model came from. Load and run failures then name it and are the user's (UserError):
   * the model or the data does not fit. Without it, a run failure of bytes the tool built stays an error.
   */
  name?: string;
  /**
   * onnxruntime's CPU memory arena (default on). Off, each run's buffers go back when it ends instead of
   * staying reserved at their peak: the training step of ResNet-18 (batch 8) peaked about 400 MB lower at
   * the same speed. node cpu only; other EPs ignore it.
   */
  arena?: boolean;
  /**
   * onnxruntime's memory pattern (default on): one block per run for all the planned intermediates. Off,
   * each tensor is its own allocation, which the allocator recycles from run to run where one big block
   * is mapped and faulted in afresh. node cpu only; other EPs ignore it.
   */
  memoryPattern?: boolean;
}

/**
 * Which WebGPU adapter a webgpu or browser-webgpu runtime asks for: 'gpu' the real one (or an error), 'swiftshader'
 * the CPU Vulkan driver Debian's chromium ships (correct, slow, everywhere), 'auto' the real one where there is
 * one, else SwiftShader, and the runtime says which it got.
 */
export const WEBGPU_ADAPTERS = ['auto', 'gpu', 'swiftshader'] as const;
export type WebGpuAdapterChoice = (typeof WEBGPU_ADAPTERS)[number];

/** The WebGPU adapter a runtime computes on. */
export interface AdapterInfo {
  /** as the adapter names itself (browser: vendor, architecture, description), or the Vulkan driver (node) */
  name: string;
  /** a CPU implementation (SwiftShader, lavapipe): results are right, speed is not a GPU's */
  software: boolean;
  /** what was asked for */
  choice: WebGpuAdapterChoice;
  /** 'auto' only: why the real adapter was not used, when it fell back to SwiftShader */
  fallback?: string;
}

export interface Runtime {
  readonly ep: EpName;
  /** threads the EP computes with: onnxruntime's intra-op pool (cpu and the CPU parts of cuda/webgpu), or wasm threads */
  readonly threads: number;
  /** webgpu and browser-webgpu: the adapter in use */
  readonly adapter?: AdapterInfo;
  /** `model`: a path to an .onnx file (external data resolved beside it) or the model's bytes */
  load(model: string | Uint8Array, options?: SessionOptions): Promise<Session>;
  close(): Promise<void>;
}

export interface EpStatus {
  ep: EpName;
  usable: boolean;
  /** why not, in a sentence a user can act on */
  reason?: string;
  fix?: string;
  detail?: string;
  /** webgpu and browser-webgpu when usable: the adapter they run on */
  adapter?: AdapterInfo;
}
