/**
 * Wraps an onnxruntime InferenceSession (node or web: both speak onnxruntime-common) as a Session.
 * The two packages carry separate Tensor classes, so the caller hands in the one its session accepts.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { isUserError, messageOf, UserError } from '../errors.js';
import { hostData, isTensorType } from './tensor.js';
import type { DeviceTensor, HostTensor, IoMeta, Session, SessionOptions } from './types.js';

export type TensorCtor = new (type: HostTensor['type'], data: HostTensor['data'], dims: readonly number[]) => Tensor;

/** ORT's option names for our optimization levels. */
export function ortOptimization(o: SessionOptions['optimization']): InferenceSession.SessionOptions['graphOptimizationLevel'] {
  return o ?? 'all';
}

export function ioMeta(meta: readonly InferenceSession.ValueMetadata[]): IoMeta[] {
  return meta.map((m) =>
    m.isTensor ? { name: m.name, type: isTensorType(m.type) ? m.type : 'unknown', shape: [...m.shape] } : { name: m.name, type: 'unknown', shape: [] },
  );
}

export function toHost(name: string, t: Tensor): HostTensor {
  if (!isTensorType(t.type)) throw new UserError(name, `output has element type ${t.type}, which alrelu cannot carry`);
  return { type: t.type, dims: [...t.dims], data: hostData(t.type, t.data) };
}

/** Checks feeds against the model's inputs up front: ORT's own messages name neither input nor shape. */
export function checkFeeds(inputs: IoMeta[], feeds: Record<string, HostTensor | DeviceTensor>): void {
  for (const i of inputs) {
    const f = feeds[i.name];
    if (!f) throw new UserError(i.name, `missing input (model inputs: ${inputs.map((x) => x.name).join(', ')})`);
    if (i.type !== 'unknown' && f.type !== i.type) throw new UserError(i.name, `input is ${i.type}, got ${f.type}`);
    if (i.shape.length !== f.dims.length || i.shape.some((d, k) => typeof d === 'number' && d !== f.dims[k])) {
      throw new UserError(i.name, `input shape is [${i.shape.join(', ')}], got [${f.dims.join(', ')}]`);
    }
  }
  for (const name of Object.keys(feeds)) {
    if (!inputs.some((i) => i.name === name)) throw new UserError(name, `not an input of the model (inputs: ${inputs.map((x) => x.name).join(', ')})`);
  }
}

/**
 * onnxruntime's message in one line: its last line, without the source location it starts with or the
 * "Load model from <file> failed:" that repeats the file the caller names anyway.
 */
export function ortMessage(e: unknown): string {
  const lines = messageOf(e)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines[lines.length - 1] ?? '')
    .replace(/^Load model from .* failed:\s*/, '')
    .replace(/^(?:failed to call OrtRun\(\)\.|Can't create a session\.) ERROR_CODE: \d+, ERROR_MESSAGE: /, '')
    .replace(/^\S+\.(?:cc|h|cpp):\d+ .*?\(\)\s+/, '');
}

/** What a failed run of a user's model (SessionOptions.name) throws: the user's error, naming the file. */
export function runFailure(file: string | undefined, runtime: string): (e: unknown) => unknown {
  if (file === undefined) return (e) => e;
  return (e) => (isUserError(e) ? e : new UserError(file, `${runtime} could not run the model: ${ortMessage(e)}`));
}

/** A Session over a host-only ORT session (cpu, wasm, and webgpu/cuda without keepOnDevice). */
export function wrapHostSession(s: InferenceSession, Tensor: TensorCtor, failed: (e: unknown) => unknown = (e) => e): Session {
  const inputs = ioMeta(s.inputMetadata);
  const outputs = ioMeta(s.outputMetadata);
  return {
    inputs,
    outputs,
    async run(feeds) {
      checkFeeds(inputs, feeds);
      const ortFeeds: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) ortFeeds[k] = new Tensor(v.type, v.data, v.dims);
      const res = await s.run(ortFeeds).catch((e: unknown) => {
        throw failed(e);
      });
      const out: Record<string, HostTensor> = {};
      for (const [k, v] of Object.entries(res)) out[k] = toHost(k, v);
      return out;
    },
    release: () => s.release(),
  };
}
