/**
 * `npm run bench -- --gpu`: the GPU execution providers against onnxruntime-node CPU, in one go, on the
 * networks of the other sections: the shipped mnist-cnn and the bench ResNet, converted to ALReLU.
 * For each of cuda, webgpu and browser-webgpu: inference throughput (the eval path: the converted model,
 * a fixed batch) and fine-tuning throughput (the finetune path: the training step run by StepRunner, so
 * parameters stay on the device on cuda and webgpu), each as a ratio to cpu, with the agreement: the
 * largest absolute difference of the outputs, and of the losses step by step, from cpu's.
 *
 * An EP that cannot run is one line with the missing piece and its fix, and the others still run. A
 * WebGPU adapter that is software (SwiftShader) is flagged: its figures prove the kernels, not the speed,
 * so it runs mnist-cnn only, once or a few steps (the ResNet's training step takes minutes there). The
 * cpu baseline uses every core (a GPU is measured against the whole CPU). The whole run stops starting
 * new work after 8 minutes, so a remote run comes back with what it has.
 */
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { readFileSync } from 'node:fs';
import { convert } from '../src/convert/convert.js';
import { messageOf } from '../src/errors.js';
import { decodeModel } from '../src/onnx/schema.js';
import { elementCount } from '../src/onnx/tensor.js';
import { openRuntime } from '../src/runtime/index.js';
import { nvidiaDriver } from '../src/runtime/vulkan.js';
import type { AdapterInfo, EpName, HostTensor, Runtime } from '../src/runtime/types.js';
import { chooseParameters } from '../src/train/params.js';
import { freshStart, StepRunner } from '../src/train/runner.js';
import { buildEvalModel, buildTrainingModel, type TrainingModel } from '../src/train/step.js';
import { mnistModel } from './eps.js';
import { resnet } from './model.js';
import { fmt, median } from './stats.js';
import type { BenchOptions, Row, Section, SectionResult } from './types.js';

export const GPU_EPS = ['cuda', 'webgpu', 'browser-webgpu'] as const satisfies readonly EpName[];
const LR = 0.001;

interface Net {
  name: string;
  file: string;
  evalBatch: number;
  trainBatch: number;
  /** also run on a software adapter (small enough for SwiftShader) */
  onSoftware: boolean;
}

const BUDGET_MS = 8 * 60_000;
/**
 * Agreement with cpu that a correct EP keeps: float32 kernels differ in summation order, by about 1e-5
 * on these logits and by about 1e-4 on losses after a few Adam steps; a wrong kernel is off by far more.
 */
const OUTPUT_TOLERANCE = 1e-3;
const LOSS_TOLERANCE = 1e-3;

/** The network as the tool runs it: converted, its inference model and its training step (Adam, finetune's default). */
interface Prepared {
  net: Net;
  evalBytes: Uint8Array;
  evalInput: string;
  sampleDims: number[];
  tm: TrainingModel;
}

/** One EP on one network: what it measured, or why it could not. */
export interface GpuMeasurement {
  net: string;
  ep: EpName;
  eval?: { batch: number; ms: number; runs: number; maxAbsDiff?: number };
  train?: { batch: number; msPerStep: number; steps: number; losses: number[]; maxLossDiff?: number };
  error?: string;
}

export interface GpuEpStatus {
  ep: EpName;
  ok: boolean;
  /** the one line that says what is missing and the fix */
  error?: string;
  adapter?: AdapterInfo;
  threads?: number;
}

function prepare(net: Net): Prepared {
  const model = decodeModel(readFileSync(net.file));
  convert(model);
  const base = { sourceDir: dirname(net.file), file: net.file, dynamicBatch: true };
  const params = chooseParameters(model.graph!).trainable;
  const tm = buildTrainingModel(model, { ...base, params, task: 'classification', outputRank: 2, optimizer: { name: 'adam' } });
  const ev = buildEvalModel(model, { ...base, params: [] });
  const dims = (model.graph!.input!.find((i) => i.name === tm.input)!.type!.tensorType!.shape!.dim ?? []).map((d) => Number(d.dimValue ?? 0));
  return { net, evalBytes: ev.bytes, evalInput: ev.input, sampleDims: dims.slice(1), tm };
}

/** The same deterministic batch on every EP: x[i] = (i * 2654435761 mod 1000) / 1000, labels b mod 10. */
function batch(size: number, sampleDims: number[]): { x: HostTensor; y: HostTensor } {
  const x = new Float32Array(size * elementCount(sampleDims));
  for (let i = 0; i < x.length; i++) x[i] = ((i * 2654435761) % 1000) / 1000;
  const y = BigInt64Array.from({ length: size }, (_, b) => BigInt(b % 10));
  return { x: { type: 'float32', data: x, dims: [size, ...sampleDims] }, y: { type: 'int64', data: y, dims: [size, 1] } };
}

function maxAbsDiff(a: HostTensor, b: HostTensor): number {
  if (a.data.length !== b.data.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  return m;
}

/** How much to run: a software adapter proves the kernels in a few runs; its timings mean nothing. */
function budget(rt: Runtime, quick: boolean): { runs: number; steps: number; seconds: number } {
  if (rt.adapter?.software) return { runs: 1, steps: 3, seconds: 0 };
  return quick ? { runs: 5, steps: 4, seconds: 5 } : { runs: 20, steps: 8, seconds: 15 };
}

async function measureEval(rt: Runtime, p: Prepared, quick: boolean): Promise<{ ms: number; runs: number; out: HostTensor }> {
  const { x } = batch(p.net.evalBatch, p.sampleDims);
  const s = await rt.load(p.evalBytes, { name: `${p.net.name} (converted)` });
  try {
    const out = Object.values(await s.run({ [p.evalInput]: x }))[0]!; // warm-up: kernels compile here
    const { runs, seconds } = budget(rt, quick);
    const times: number[] = [];
    const t0 = performance.now();
    while (times.length < runs && (times.length < 2 || performance.now() - t0 < seconds * 1000)) {
      const t = performance.now();
      await s.run({ [p.evalInput]: x });
      times.push(performance.now() - t);
    }
    return { ms: median(times), runs: times.length, out };
  } finally {
    await s.release();
  }
}

async function measureTrain(rt: Runtime, p: Prepared, quick: boolean): Promise<{ msPerStep: number; losses: number[] }> {
  const { x, y } = batch(p.net.trainBatch, p.sampleDims);
  const runner = await StepRunner.open(rt, p.tm, freshStart(p.tm));
  try {
    const { steps } = budget(rt, quick);
    const losses: number[] = [];
    const times: number[] = [];
    for (let t = 1; t <= steps; t++) {
      const t0 = performance.now();
      losses.push((await runner.step(x, y, t, LR)).loss);
      // the first step builds the session's kernels and buffers: not a step's cost
      if (t > 1) times.push(performance.now() - t0);
    }
    return { msPerStep: median(times), losses };
  } finally {
    await runner.close();
  }
}

/** The one line a user acts on: the EP's own UserError already names the cause and the fix. */
function oneLine(e: unknown): string {
  return messageOf(e).split('\n')[0]!;
}

async function open(ep: EpName, threads: number): Promise<Runtime> {
  // cpu: every core; the GPU EPs: the adapter 'auto' picks, reported, and their CPU fallback ops on every core too
  return openRuntime(ep, { threads, webgpuAdapter: 'auto' });
}

export async function runGpuBench(
  opts: BenchOptions,
  eps: readonly EpName[] = GPU_EPS,
): Promise<{ statuses: GpuEpStatus[]; measurements: GpuMeasurement[]; threads: number }> {
  const threads = availableParallelism();
  const small = await resnet(opts.cacheDir);
  const nets: Net[] = [
    { name: 'mnist-cnn', file: mnistModel(), evalBatch: 64, trainBatch: 32, onSoftware: true },
    { name: 'resnet-small', file: small.path, evalBatch: 16, trainBatch: 8, onSoftware: false },
  ];
  const prepared = nets.map(prepare);
  const measurements: GpuMeasurement[] = [];
  const statuses: GpuEpStatus[] = [];
  const baseline = new Map<string, { eval: HostTensor; losses: number[] }>();
  const deadline = performance.now() + BUDGET_MS;
  for (const ep of ['cpu' as const, ...eps]) {
    let rt: Runtime;
    try {
      rt = await open(ep, threads);
    } catch (e) {
      statuses.push({ ep, ok: false, error: oneLine(e) });
      opts.log(`gpu: ${ep}: NOT RUN: ${oneLine(e)}`);
      continue;
    }
    statuses.push({ ep, ok: true, threads: rt.threads, ...(rt.adapter ? { adapter: rt.adapter } : {}) });
    if (rt.adapter) opts.log(`gpu: ${ep}: adapter ${rt.adapter.name}${rt.adapter.software ? ' (software: speed not meaningful)' : ''}`);
    try {
      for (const p of prepared) {
        const m: GpuMeasurement = { net: p.net.name, ep };
        if (rt.adapter?.software && !p.net.onSoftware) {
          m.error = `not run on ${rt.adapter.name}, a software adapter (a training step takes minutes there)`;
          measurements.push(m);
          continue;
        }
        if (performance.now() > deadline) {
          m.error = `not run: the bench's ${BUDGET_MS / 60_000}-minute budget was spent`;
          measurements.push(m);
          continue;
        }
        try {
          const ev = await measureEval(rt, p, opts.quick);
          const ref = baseline.get(p.net.name);
          m.eval = { batch: p.net.evalBatch, ms: ev.ms, runs: ev.runs, ...(ref ? { maxAbsDiff: maxAbsDiff(ev.out, ref.eval) } : {}) };
          const tr = await measureTrain(rt, p, opts.quick);
          m.train = { batch: p.net.trainBatch, msPerStep: tr.msPerStep, steps: tr.losses.length, losses: tr.losses };
          if (ref) m.train.maxLossDiff = Math.max(...tr.losses.map((l, i) => Math.abs(l - (ref.losses[i] ?? NaN))));
          if (ep === 'cpu') baseline.set(p.net.name, { eval: ev.out, losses: tr.losses });
          opts.log(`gpu: ${ep} ${p.net.name}: eval ${fmt(ev.ms)} ms/batch ${p.net.evalBatch}, train ${fmt(tr.msPerStep)} ms/step batch ${p.net.trainBatch}`);
        } catch (e) {
          m.error = oneLine(e);
          opts.log(`gpu: ${ep} ${p.net.name}: FAILED: ${m.error}`);
        }
        measurements.push(m);
      }
    } finally {
      await rt.close();
    }
  }
  return { statuses, measurements, threads };
}

/** Table rows: throughput ratios against cpu (above 1: faster than the CPU), agreement in the note. */
function rows(statuses: GpuEpStatus[], ms: GpuMeasurement[], threads: number): Row[] {
  const out: Row[] = [];
  const cpu = (net: string) => ms.find((m) => m.ep === 'cpu' && m.net === net);
  for (const m of ms.filter((x) => x.ep !== 'cpu')) {
    const st = statuses.find((s) => s.ep === m.ep);
    const adapter = st?.adapter ? `; adapter ${st.adapter.name}${st.adapter.software ? ' (SOFTWARE: speed not meaningful)' : ''}` : '';
    const base = cpu(m.net);
    if (m.eval && base?.eval) {
      const v = (m.eval.batch * 1000) / m.eval.ms;
      const b = (base.eval.batch * 1000) / base.eval.ms;
      out.push({
        metric: `${m.net} eval on ${m.ep}, samples/s`,
        value: v,
        unit: 'samples/s',
        baseline: { name: `cpu, ${threads} threads`, value: b, unit: 'samples/s' },
        ratio: v / b,
        note: `batch ${m.eval.batch}, median of ${m.eval.runs} wall-clock run${m.eval.runs === 1 ? '' : 's'} after one warm-up; outputs max |diff| vs cpu ${m.eval.maxAbsDiff?.toExponential(2) ?? 'n/a'}${adapter}`,
      });
    }
    if (m.train && base?.train) {
      const v = (m.train.batch * 1000) / m.train.msPerStep;
      const b = (base.train.batch * 1000) / base.train.msPerStep;
      out.push({
        metric: `${m.net} fine-tune on ${m.ep}, samples/s`,
        value: v,
        unit: 'samples/s',
        baseline: { name: `cpu, ${threads} threads`, value: b, unit: 'samples/s' },
        ratio: v / b,
        note: `batch ${m.train.batch}, Adam, median of steps 2-${m.train.steps}; losses max |diff| vs cpu over ${m.train.steps} steps ${m.train.maxLossDiff?.toExponential(2) ?? 'n/a'}${adapter}`,
      });
    }
  }
  return out;
}

/** Results that disagree with cpu beyond float32 noise: wrong on any machine. */
function disagreements(ms: GpuMeasurement[]): string[] {
  const out: string[] = [];
  for (const m of ms) {
    if (m.eval?.maxAbsDiff !== undefined && !(m.eval.maxAbsDiff <= OUTPUT_TOLERANCE)) {
      out.push(`${m.ep} on ${m.net}: eval outputs differ from cpu's by up to ${m.eval.maxAbsDiff.toExponential(2)} (tolerance ${OUTPUT_TOLERANCE})`);
    }
    if (m.train?.maxLossDiff !== undefined && !(m.train.maxLossDiff <= LOSS_TOLERANCE * Math.max(1, ...m.train.losses.map(Math.abs)))) {
      out.push(
        `${m.ep} on ${m.net}: training losses differ from cpu's by up to ${m.train.maxLossDiff.toExponential(2)} (losses ${m.train.losses.map((l) => l.toPrecision(4)).join(', ')}): the EP computes the training step wrongly`,
      );
    }
  }
  return out;
}

/** Lines that need acting on: EPs that did not run, and software adapters on a machine with an NVIDIA GPU. */
function problems(statuses: GpuEpStatus[], ms: GpuMeasurement[]): string[] {
  const out = statuses.filter((s) => !s.ok).map((s) => (s.error!.startsWith(`${s.ep}: `) ? s.error! : `${s.ep}: ${s.error}`));
  for (const m of ms.filter((x) => x.error)) out.push(`${m.ep} on ${m.net}: ${m.error}`);
  if (nvidiaDriver()) {
    for (const s of statuses.filter((x) => x.adapter?.software)) {
      out.push(
        `${s.ep}: ran on ${s.adapter!.name}, a software adapter, although an NVIDIA driver is loaded; fix: install NVIDIA's Vulkan driver (nvidia_icd.json, from the libnvidia-gl package matching the driver) and libvulkan1`,
      );
    }
  }
  return out;
}

export const gpuSection: Section = {
  name: 'gpu',
  description: 'cuda, webgpu, browser-webgpu vs cpu (all cores): eval and fine-tune throughput, agreement (npm run bench -- --gpu)',
  async run(opts: BenchOptions): Promise<SectionResult> {
    const { statuses, measurements, threads } = await runGpuBench(opts);
    const issues = problems(statuses, measurements);
    // Without an NVIDIA driver a missing cuda is expected (a CPU-only machine); with one, it is a failure.
    // Results that disagree with cpu are failures everywhere.
    const gpu = nvidiaDriver();
    const wrong = disagreements(measurements);
    return {
      rows: rows(statuses, measurements, threads),
      ...(gpu ? { failures: [...wrong, ...issues] } : { skipped: issues, failures: wrong }),
      details: { threads, nvidiaDriver: gpu ?? null, statuses, measurements },
    };
  },
};
