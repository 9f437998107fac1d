/**
 * One fine-tune of a real network, alone in this process so its peak RSS (VmHWM) is its own: the library's
 * finetune() on synthetic data (one epoch of `steps` batches, validation, test, checkpoint and output model
 * written), then forward passes of the same converted network at the same batch. Prints one JSON line
 * (RealRun). Spawned by real.ts; argument: a JSON RealJob.
 */
import { promises as fs, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { convert } from '../src/convert/convert.js';
import type { Dataset } from '../src/data/types.js';
import { decodeModel } from '../src/onnx/schema.js';
import { elementCount } from '../src/onnx/tensor.js';
import { openRuntime } from '../src/runtime/index.js';
import { finetune } from '../src/train/loop.js';
import { chooseParameters } from '../src/train/params.js';
import { buildEvalModel, buildTrainingModel } from '../src/train/step.js';
import { median } from './stats.js';

export interface RealJob {
  model: string;
  batch: number;
  threads: number;
  steps: number;
  forwards: number;
  scratch: string;
}

export interface RealRun {
  /** wall ms of the training steps after the first (the end of one step to the end of the next) */
  steps: number[];
  forward: number[];
  /** peak resident set of the fine-tune, bytes */
  peakRss: number;
  firstLoss: number;
  /** wall ms: the whole finetune() call, its parts around the steps, and the pieces timed again alone */
  fixed: { total: number; beforeSteps: number; afterSteps: number; convert: number; buildEval: number; buildStep: number; loadStep: number; loadEval: number };
}

/** The bench batch of train.ts/torchnet.ts: x[i] = ((i mod 1000) * 761 mod 1000) / 1000, y[b] = b mod 10. */
export function benchData(name: string, count: number, sampleShape: number[]): Dataset {
  const per = elementCount(sampleShape);
  const x = new Float32Array(count * per);
  for (let i = 0; i < x.length; i++) x[i] = (((i % 1000) * 761) % 1000) / 1000;
  const y = Int32Array.from({ length: count }, (_, b) => b % 10);
  return { name, sampleShape, x, y, task: 'classification', count };
}

export function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function main(job: RealJob): Promise<RealRun> {
  const t0 = performance.now();
  const model = decodeModel(readFileSync(job.model));
  convert(model, { form: 'subgraph' });
  const convertMs = performance.now() - t0;
  const dims = (model.graph!.input![0]!.type!.tensorType!.shape!.dim ?? []).map((d) => Number(d.dimValue ?? 0));
  const sample = dims.slice(1);
  const B = job.batch;
  const rt = await openRuntime('cpu', { threads: job.threads, spinning: false });
  await fs.mkdir(job.scratch, { recursive: true });
  const stamps: number[] = [];
  let firstLoss = NaN;
  const f0 = performance.now();
  await finetune({
    model,
    sourceDir: dirname(job.model),
    file: job.model,
    runtime: rt,
    train: benchData('train', B * job.steps, sample),
    val: benchData('val', B, sample),
    test: benchData('test', B, sample),
    epochs: 1,
    batchSize: B,
    optimizer: { name: 'adam' },
    schedule: { name: 'constant', lr: 1e-4 },
    shuffle: false,
    out: join(job.scratch, 'out.onnx'),
    checkpoint: join(job.scratch, 'out.ckpt'),
    log: join(job.scratch, 'log.json'),
    force: true,
    onProgress: (p) => {
      stamps.push(performance.now());
      if (p.batch === 1) firstLoss = p.runningLoss;
    },
  });
  const f1 = performance.now();
  const peak = peakRss();
  const steps = stamps.slice(1).map((t, i) => t - stamps[i]!);
  const step = median(steps.length ? steps : [NaN]);
  // The first step's own time is unknown (its end is the first stamp): count it as a typical step.
  const beforeSteps = stamps[0]! - f0 - step;
  const afterSteps = f1 - stamps[stamps.length - 1]!;

  // The pieces of the set-up, timed again alone.
  const params = chooseParameters(model.graph!).trainable;
  const base = { sourceDir: dirname(job.model), file: job.model, fuseActivations: true };
  let t = performance.now();
  const evalModel = buildEvalModel(model, { ...base, params: [] });
  const buildEval = performance.now() - t;
  t = performance.now();
  const tm = buildTrainingModel(model, { ...base, params, task: 'classification', outputRank: 2, optimizer: { name: 'adam' } });
  const bytes = tm.bytes();
  const buildStep = performance.now() - t;
  t = performance.now();
  const stepSession = await rt.load(bytes);
  const loadStep = performance.now() - t;
  await stepSession.release();
  t = performance.now();
  const fwd = await rt.load(evalModel.bytes);
  const loadEval = performance.now() - t;
  const x = benchData('x', B, sample).x;
  const feeds = { [evalModel.input]: { type: 'float32' as const, data: x, dims: [B, ...sample] } };
  const forward: number[] = [];
  for (let i = 0; i < job.forwards + 1; i++) {
    const s = performance.now();
    await fwd.run(feeds);
    if (i > 0) forward.push(performance.now() - s);
  }
  await fwd.release();
  await fs.rm(job.scratch, { recursive: true, force: true });
  return {
    steps,
    forward,
    peakRss: peak,
    firstLoss,
    fixed: { total: f1 - f0, beforeSteps, afterSteps, convert: convertMs, buildEval, buildStep, loadStep, loadEval },
  };
}

const job = JSON.parse(process.argv[2]!) as RealJob;
process.stdout.write(`${JSON.stringify(await main(job))}\n`);
