/**
 * Runs a training-step model step after step on one Runtime, holding the parameters and optimizer
 * state between steps. On node `webgpu` and `cuda` they stay in device memory (the session keeps the
 * updated outputs on the device and the next step feeds them back), so a step moves only the batch,
 * the two scalars and the loss/logits through JS; elsewhere they live in host memory and either go
 * through the session and come back updated, or, with the update on the host (tm.hostOptimizer), stay
 * the runner's own arrays, updated in place from the gradients the session returns.
 * Running statistics (`--bn train`) travel with the parameters, under their initializer names.
 */
import { isUserError, messageOf, UserError } from '../errors.js';
import { tensorFromProto } from '../runtime/tensor.js';
import type { DeviceTensor, HostTensor, Runtime, Session } from '../runtime/types.js';
import { nchwcBlock } from './nchwc.js';
import type { StepOptions, TrainingModel } from './step.js';
import { LR_INPUT, LOSS_OUTPUT, STEP_INPUT } from './step.js';
import { elementCount } from '../onnx/tensor.js';
import { hostUpdate } from './optim.js';

type Value = HostTensor | DeviceTensor;

const isDevice = (v: Value): v is DeviceTensor => 'kind' in v && v.kind === 'device';

export function deviceResident(rt: Runtime): boolean {
  return rt.ep === 'webgpu' || rt.ep === 'cuda';
}

/**
 * The step graph's forms for the kernels that will run it on `rt`: onnxruntime CPU's blocked-layout block size
 * (cpu only), and MaxPool's gradient through its Indices wherever onnxruntime's own CPU kernels run (cpu, and
 * wasm in Node or a browser; WebGPU cannot produce Indices)
 */
export async function stepKernels(rt: Runtime): Promise<Pick<StepOptions, 'nchwcBlock' | 'cpuKernels'>> {
  return { nchwcBlock: await nchwcBlock(rt), cpuKernels: rt.ep === 'cpu' || rt.ep === 'wasm' || rt.ep === 'browser-wasm' };
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
  /** optimizer state input names, which a graph that computes gradients only does not read */
  private readonly stateNames: Set<string>;
  /** each parameter's state names, in stateSlots() order (the host update's arguments) */
  private readonly slots = new Map<string, string[]>();

  private constructor(
    private readonly tm: TrainingModel,
    private readonly session: Session,
    readonly onDevice: boolean,
    private readonly ep: string,
  ) {
    this.stateNames = new Set(tm.state.map((s) => s.name));
    for (const s of tm.state) this.slots.set(s.param, [...(this.slots.get(s.param) ?? []), s.name]);
  }

  static async open(rt: Runtime, tm: TrainingModel, start: { params: Record<string, HostTensor>; state: Record<string, HostTensor> }): Promise<StepRunner> {
    const onDevice = deviceResident(rt);
    if (onDevice && tm.hostOptimizer) throw new Error(`the optimizer runs in the graph on ${rt.ep} (its parameters stay in device memory)`);
    const keep = onDevice ? [...tm.params, ...tm.state, ...tm.running].map((p) => p.updated) : [];
    // no arena: a step's activations and gradients are freed after it, not kept reserved beside validation's;
    // no memory pattern: each tensor its own allocation, which malloc recycles from step to step, where the
    // pattern's one block for everything is mapped and faulted in afresh each step (the fine-tune's peak
    // 80-190 MB lower on MobileNetV2 and ResNet-18 at batch 8)
    const session = await rt.load(tm.bytes(), keep.length ? { keepOnDevice: keep } : { arena: false, memoryPattern: false });
    const r = new StepRunner(tm, session, onDevice, rt.ep);
    // updated in place on the host: the runner's own copies, so the caller's (e.g. the best so far) stay as they were
    for (const p of [...tm.params, ...tm.running]) r.values.set(p.name, r.apart(start.params[p.name]!));
    for (const s of tm.state) r.values.set(s.name, r.apart(start.state[s.name]!));
    return r;
  }

  /** One optimizer step; `t` is 1-based. Returns the loss before the update and the batch's outputs. */
  async step(x: HostTensor, labels: HostTensor, t: number, lr: number): Promise<{ loss: number; logits: HostTensor }> {
    const host = this.tm.hostOptimizer;
    const feeds: Record<string, Value> = { [this.tm.input]: x, [this.tm.labels]: labels };
    if (!host) {
      feeds[STEP_INPUT] = { type: 'float32', data: new Float32Array([t]), dims: [] };
      feeds[LR_INPUT] = { type: 'float32', data: new Float32Array([lr]), dims: [] };
    }
    for (const [k, v] of this.values) if (!host || !this.stateNames.has(k)) feeds[k] = v;
    let out: Record<string, HostTensor>;
    const next = new Map<string, Value>();
    try {
      if (this.onDevice && this.session.runOnDevice) {
        const res = await this.session.runOnDevice(feeds);
        out = res.host;
        for (const p of this.carried()) next.set(p.name, res.device[p.updated]!);
      } else {
        out = await this.session.run(feeds as Record<string, HostTensor>);
        for (const p of this.carried()) next.set(p.name, out[p.updated]!);
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
    if (host) {
      for (const [k, v] of next) this.values.set(k, v);
      for (const p of this.tm.params) {
        const value = this.values.get(p.name) as HostTensor;
        const state = (this.slots.get(p.name) ?? []).map((s) => (this.values.get(s) as HostTensor).data as Float32Array);
        hostUpdate(host, t, lr, value.data as Float32Array, out[p.grad]!.data as Float32Array, state);
      }
    } else this.values = next;
    return { loss: Number(out[LOSS_OUTPUT]!.data[0]), logits: out[this.tm.output]! };
  }

  /** `t`, or a copy of it where the runner updates its values in place (the host update): what crosses the runner's boundary */
  private apart(t: HostTensor): HostTensor {
    return this.tm.hostOptimizer ? { ...t, data: t.data.slice() } : t;
  }

  /** Every value a step updates and the next one reads (parameters, optimizer state, running statistics) from its outputs. */
  private carried(): { name: string; updated: string }[] {
    return this.tm.hostOptimizer ? [...this.tm.running] : [...this.tm.params, ...this.tm.state, ...this.tm.running];
  }

  /** Host copies of the current parameters (running statistics included) and state (by input name). */
  async snapshot(): Promise<{ params: Record<string, HostTensor>; state: Record<string, HostTensor> }> {
    const get = async (name: string): Promise<HostTensor> => {
      const v = this.values.get(name)!;
      return isDevice(v) ? v.download() : v;
    };
    const params: Record<string, HostTensor> = {};
    const state: Record<string, HostTensor> = {};
    for (const p of [...this.tm.params, ...this.tm.running]) params[p.name] = this.apart(await get(p.name));
    for (const s of this.tm.state) state[s.name] = this.apart(await get(s.name));
    return { params, state };
  }

  async close(): Promise<void> {
    for (const v of this.values.values()) if (isDevice(v)) v.dispose();
    this.values.clear();
    await this.session.release();
  }
}
