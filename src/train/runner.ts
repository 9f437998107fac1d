/**
 * Runs a training-step model step after step on one Runtime, holding the parameters and optimizer
 * state between steps. On node `webgpu` and `cuda` they stay in device memory (the session keeps the
 * updated outputs on the device and the next step feeds them back), so a step moves only the batch,
 * the two scalars and the loss/logits through JS; elsewhere they round-trip through host memory.
 * Running statistics (`--bn train`) travel with the parameters, under their initializer names.
 */
import { isUserError, messageOf, UserError } from '../errors.js';
import { tensorFromProto } from '../runtime/tensor.js';
import type { DeviceTensor, HostTensor, Runtime, Session } from '../runtime/types.js';
import type { TrainingModel } from './step.js';
import { LR_INPUT, LOSS_OUTPUT, STEP_INPUT } from './step.js';
import { elementCount } from '../onnx/tensor.js';

type Value = HostTensor | DeviceTensor;

const isDevice = (v: Value): v is DeviceTensor => 'kind' in v && v.kind === 'device';

export function deviceResident(rt: Runtime): boolean {
  return rt.ep === 'webgpu' || rt.ep === 'cuda';
}

export function zerosLike(dims: number[], dataType: number): HostTensor {
  const n = elementCount(dims);
  return dataType === 11 ? { type: 'float64', data: new Float64Array(n), dims } : { type: 'float32', data: new Float32Array(n), dims };
}

/** Where a fresh run starts: the model's own parameter values (and running statistics) and zero optimizer state. */
export function freshStart(tm: TrainingModel): { params: Record<string, HostTensor>; state: Record<string, HostTensor> } {
  const params: Record<string, HostTensor> = {};
  for (const p of [...tm.params, ...tm.running]) params[p.name] = tensorFromProto(tm.initial.get(p.name)!);
  const state: Record<string, HostTensor> = {};
  for (const s of tm.state) state[s.name] = zerosLike(s.dims, s.dataType);
  return { params, state };
}

export class StepRunner {
  /** current values by input name (parameters and state) */
  private values = new Map<string, Value>();

  private constructor(
    private readonly tm: TrainingModel,
    private readonly session: Session,
    readonly onDevice: boolean,
    private readonly ep: string,
  ) {}

  static async open(rt: Runtime, tm: TrainingModel, start: { params: Record<string, HostTensor>; state: Record<string, HostTensor> }): Promise<StepRunner> {
    const onDevice = deviceResident(rt);
    const keep = onDevice ? [...tm.params, ...tm.state, ...tm.running].map((p) => p.updated) : [];
    // no arena: a step's activations and gradients are freed after it, not kept reserved beside validation's
    const session = await rt.load(tm.bytes(), keep.length ? { keepOnDevice: keep } : { arena: false });
    const r = new StepRunner(tm, session, onDevice, rt.ep);
    for (const p of [...tm.params, ...tm.running]) r.values.set(p.name, start.params[p.name]!);
    for (const s of tm.state) r.values.set(s.name, start.state[s.name]!);
    return r;
  }

  /** One optimizer step; `t` is 1-based. Returns the loss before the update and the batch's outputs. */
  async step(x: HostTensor, labels: HostTensor, t: number, lr: number): Promise<{ loss: number; logits: HostTensor }> {
    const feeds: Record<string, Value> = {
      [this.tm.input]: x,
      [this.tm.labels]: labels,
      [STEP_INPUT]: { type: 'float32', data: new Float32Array([t]), dims: [] },
      [LR_INPUT]: { type: 'float32', data: new Float32Array([lr]), dims: [] },
    };
    for (const [k, v] of this.values) feeds[k] = v;
    let host: Record<string, HostTensor>;
    const next = new Map<string, Value>();
    try {
      if (this.onDevice && this.session.runOnDevice) {
        const res = await this.session.runOnDevice(feeds);
        host = res.host;
        for (const p of this.carried()) next.set(p.name, res.device[p.updated]!);
      } else {
        host = await this.session.run(feeds as Record<string, HostTensor>);
        for (const p of this.carried()) next.set(p.name, host[p.updated]!);
      }
    } catch (e) {
      if (isUserError(e)) throw e;
      // A kernel the EP lacks at run time (e.g. WebGPU MaxPool with Indices) is the user's choice of EP to change.
      const msg =
        messageOf(e)
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
          .pop() ?? '';
      throw new UserError(`ep=${this.ep}`, `onnxruntime could not run the training step: ${msg}; try another --ep (cpu and wasm run every op of it)`);
    }
    for (const v of this.values.values()) if (isDevice(v)) v.dispose();
    this.values = next;
    return { loss: Number(host[LOSS_OUTPUT]!.data[0]), logits: host[this.tm.output]! };
  }

  /** Every value a step updates and the next one reads: parameters, optimizer state, running statistics. */
  private carried(): { name: string; updated: string }[] {
    return [...this.tm.params, ...this.tm.state, ...this.tm.running];
  }

  /** Host copies of the current parameters (running statistics included) and state (by input name). */
  async snapshot(): Promise<{ params: Record<string, HostTensor>; state: Record<string, HostTensor> }> {
    const get = async (name: string): Promise<HostTensor> => {
      const v = this.values.get(name)!;
      return isDevice(v) ? v.download() : v;
    };
    const params: Record<string, HostTensor> = {};
    const state: Record<string, HostTensor> = {};
    for (const p of [...this.tm.params, ...this.tm.running]) params[p.name] = await get(p.name);
    for (const s of this.tm.state) state[s.name] = await get(s.name);
    return { params, state };
  }

  async close(): Promise<void> {
    for (const v of this.values.values()) if (isDevice(v)) v.dispose();
    this.values.clear();
    await this.session.release();
  }
}
