/**
 * Fine-tuning cost, on the shipped mnist-cnn (batch 64) and the bench ResNet (batch 8): one training step (forward + loss + backward + SGD-momentum update, the
 * training-step model of src/train run by onnxruntime-node CPU, updated parameters fed back each
 * step) against one forward pass of the same converted network at the same batch; and, where
 * python3-torch is installed, our steps/s against PyTorch's on the very same network (rebuilt in
 * torch from the ONNX graph, same parameters, batch, optimizer and thread count). The first step's
 * loss is compared too, as evidence that both sides train the same network.
 */
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../src/runtime/telemetry.js';
import ort from 'onnxruntime-node';
import { writeFileAtomic } from '../src/atomic.js';
import { convert } from '../src/convert/convert.js';
import { decodeModel } from '../src/onnx/schema.js';
import { elementCount } from '../src/onnx/tensor.js';
import { openRuntime } from '../src/runtime/index.js';
import { chooseParameters } from '../src/train/params.js';
import { freshStart, stepKernels } from '../src/train/runner.js';
import { buildEvalModel, buildTrainingModel, LOSS_OUTPUT, LR_INPUT, STEP_INPUT, type StepOptions } from '../src/train/step.js';
import { interleave, pairedRatio, type Contender } from './interleave.js';
import { cpuSession } from './ort.js';
import { resnet } from './model.js';
import { findPython, PythonWorker } from './python.js';
import { TORCH_NET } from './torchnet.js';
import { fmt, median } from './stats.js';
import { ratioRow, type BenchOptions, type Row, type Section, type SectionResult } from './types.js';

const LR = 0.01;
const MOMENTUM = 0.9;

function mnistModel(): string {
  for (const rel of ['../../models/mnist-cnn.onnx', '../models/mnist-cnn.onnx']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error('models/mnist-cnn.onnx not found');
}

/** Deterministic batch both sides can rebuild exactly: x[i] = (i * 2654435761 mod 1000) / 1000, y[b] = b mod 10. */
function batch(size: number, perSample: number): { x: Float32Array; y: BigInt64Array } {
  const x = new Float32Array(size * perSample);
  for (let i = 0; i < x.length; i++) x[i] = ((i * 2654435761) % 1000) / 1000;
  const y = BigInt64Array.from({ length: size }, (_, b) => BigInt(b % 10));
  return { x, y };
}

/** The same network in PyTorch, built node by node from the ONNX graph (the ops our CNNs use). */
const PY_TORCH = String.raw`
import json, sys, time
import torch
path, batch, threads, lr, momentum = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
trainable = set(json.loads(sys.argv[6]))
torch.set_num_threads(threads)
torch.manual_seed(0)
${TORCH_NET}
x, y = bench_batch(batch)
opt = torch.optim.SGD(list(params.values()), lr=lr, momentum=momentum)

def step():
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(forward(x), y)
    loss.backward()
    opt.step()
    return loss.item()

first_loss = step()
for _ in range(2): step()
print(json.dumps({'firstLoss': first_loss, 'torch': torch.__version__}), flush=True)

def no_grad_forward():
    with torch.no_grad():
        forward(x)

# Then one JSON timing line per command, so runs interleave with ours.
for line in sys.stdin:
    f = step if line.strip() == 'step' else no_grad_forward
    c0, w0 = time.process_time(), time.perf_counter()
    f()
    print(json.dumps({'wall': (time.perf_counter() - w0) * 1e3, 'cpu': (time.process_time() - c0) * 1e3}), flush=True)
`;

interface TorchReady {
  firstLoss: number;
  torch: string;
}

interface Net {
  name: string;
  file: string;
  batch: number;
  rounds: number;
  perRound: number;
}

async function measure(
  net: Net,
  opts: BenchOptions,
  kernels: Pick<StepOptions, 'nchwcBlock' | 'cpuKernels'>,
): Promise<{ rows: Row[]; skipped: string[]; details: Record<string, unknown> }> {
  const { file, batch: B } = net;
  const model = decodeModel(readFileSync(file));
  convert(model, { form: 'subgraph' });
  const params = chooseParameters(model.graph!).trainable;
  // Fixed-batch models (the bench ResNet is 1x3x64x64) get a symbolic batch, as finetune does.
  const base = { sourceDir: dirname(file), file, dynamicBatch: true };
  // the step graph finetune() builds on cpu: its batch pinned, blocked-layout convs, MaxPool gradients by Indices
  const tm = buildTrainingModel(model, {
    ...base,
    batch: B,
    ...kernels,
    params,
    task: 'classification',
    outputRank: 2,
    optimizer: { name: 'momentum', momentum: MOMENTUM },
  });
  const evalModel = buildEvalModel(model, { ...base, params: [] });
  // The same forward with the weights fed as inputs, as the training step has them: onnxruntime cannot
  // pre-pack or re-layout (NCHWc) weights it does not know at load time.
  const fedModel = buildEvalModel(model, { ...base, params });
  const inputDims = (model.graph!.input!.find((i) => i.name === tm.input)!.type!.tensorType!.shape!.dim ?? []).map((d) => Number(d.dimValue ?? 0));
  const perSample = elementCount(inputDims.slice(1));
  const { x, y } = batch(B, perSample);
  const xDims = [B, ...inputDims.slice(1)];

  const fwd = await cpuSession(evalModel.bytes, { [evalModel.input]: { type: 'float32', data: x, dims: xDims } }, opts.threads);
  const start = freshStart(tm);
  const fed = await cpuSession(fedModel.bytes, { [fedModel.input]: { type: 'float32', data: x, dims: xDims }, ...start.params }, opts.threads);
  const stepSession = await ort.InferenceSession.create(tm.bytes(), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: opts.threads,
    interOpNumThreads: 1,
    logSeverityLevel: 3,
  });
  const feeds: Record<string, ort.Tensor> = {
    [tm.input]: new ort.Tensor('float32', x, xDims),
    [tm.labels]: new ort.Tensor('int64', y, [B, 1]),
    [LR_INPUT]: new ort.Tensor('float32', new Float32Array([LR]), []),
  };
  for (const h of [start.params, start.state]) for (const [name, v] of Object.entries(h)) feeds[name] = new ort.Tensor(v.type, v.data, v.dims);
  let t = 0;
  const losses: number[] = [];
  // A real loop: each step feeds the previous step's parameters and momentum back in.
  const step = async () => {
    feeds[STEP_INPUT] = new ort.Tensor('float32', new Float32Array([++t]), []);
    const out = await stepSession.run(feeds);
    for (const p of tm.params) feeds[p.name] = out[p.updated]!;
    for (const s of tm.state) feeds[s.name] = out[s.updated]!;
    if (losses.length < 3) losses.push(Number(out[LOSS_OUTPUT]!.data[0]));
  };
  const { rounds, perRound } = net;
  const skipped: string[] = [];
  const contenders: Contender[] = [
    { name: 'forward', run: fwd.run },
    { name: 'forward-fed', run: fed.run },
    { name: 'step', run: step },
  ];
  // PyTorch takes turns with us (same rounds, same blocks), so both see the same machine.
  let torch: { worker: PythonWorker; ready: TorchReady } | undefined;
  const py = await findPython(['torch', 'onnx', 'numpy']);
  const netFile = join(opts.cacheDir, 'tmp', `train-${net.name}.onnx`);
  if (typeof py === 'string') {
    skipped.push(`PyTorch comparison: ${py}`);
  } else {
    await fs.mkdir(dirname(netFile), { recursive: true });
    await writeFileAtomic(netFile, evalModel.bytes, { replace: true });
    torch = await PythonWorker.start<TorchReady>(
      py,
      PY_TORCH,
      [netFile, String(B), String(opts.threads), String(LR), String(MOMENTUM), JSON.stringify(tm.params.map((p) => p.name))],
      {
        // OpenMP threads that spin-wait between PyTorch's ops would compete with our turns (and
        // ignore set_num_threads in some kernels): same thread count, and sleep when idle.
        OMP_NUM_THREADS: String(opts.threads),
        MKL_NUM_THREADS: String(opts.threads),
        OMP_WAIT_POLICY: 'PASSIVE',
        KMP_BLOCKTIME: '0',
      },
    );
    const w = torch.worker;
    contenders.push({ name: 'torch-forward', run: () => w.call('forward') }, { name: 'torch-step', run: () => w.call('step') });
  }
  let res;
  try {
    res = await interleave(contenders, { clock: opts.clock, warmup: 2, rounds, perRound });
  } finally {
    await fwd.release();
    await fed.release();
    await stepSession.release();
    await torch?.worker.close();
    await fs.rm(netFile, { force: true });
  }
  const ms = (k: string) => median(res.blocks[k]!);
  const label = `${net.name} (ALReLU) batch ${B}`;
  opts.log(`train: ${label}: step ${fmt(ms('step'))} ms, forward ${fmt(ms('forward'))} ms${torch ? `; PyTorch step ${fmt(ms('torch-step'))} ms` : ''}`);
  const how = `${opts.clock} time, best of ${perRound} per round, ${rounds} interleaved rounds, ratio paired per round`;
  const rows: Row[] = [
    {
      ...ratioRow(
        `${label}: training step, ms`,
        ms('step'),
        'ms',
        { name: 'forward pass', value: ms('forward'), unit: 'ms' },
        { max: 3.5 },
        `${how}; SGD momentum ${MOMENTUM}, ${tm.params.length} parameter tensors fed back each step`,
      ),
      ratio: pairedRatio(res, 'step', 'forward'),
    },
    {
      ...ratioRow(
        `${label}: training step (vs a weights-fed forward), ms`,
        ms('step'),
        'ms',
        { name: 'forward, weights fed', value: ms('forward-fed'), unit: 'ms' },
        undefined,
        `${how}; the forward with its weights as graph inputs, as in the training step (no constant-weight kernels); that forward costs ${pairedRatio(res, 'forward-fed', 'forward').toFixed(2)}x the constant-weight one`,
      ),
      ratio: pairedRatio(res, 'step', 'forward-fed'),
    },
  ];
  if (torch) {
    // Throughput ratio: our samples/s over PyTorch's = PyTorch's step time over ours.
    rows.push({
      metric: `${label}: training throughput, samples/s (ours)`,
      value: (B * 1000) / ms('step'),
      unit: 'samples/s',
      baseline: { name: `pytorch ${torch.ready.torch}`, value: (B * 1000) / ms('torch-step'), unit: 'samples/s' },
      ratio: pairedRatio(res, 'torch-step', 'step'),
      goal: { min: 1 },
      note: `${how}; same network, parameters, batch, optimizer, ${opts.threads} thread(s); first-step loss ours ${losses[0]?.toFixed(6)} vs torch ${torch.ready.firstLoss.toFixed(6)}; PyTorch step = ${pairedRatio(res, 'torch-step', 'torch-forward').toFixed(2)}x its own forward (${fmt(ms('torch-forward'))} ms)`,
    });
  }
  return { rows, skipped, details: { clock: opts.clock, wallMs: res.wall, cpuMs: res.cpu, firstLosses: losses, torch: torch?.ready } };
}

export const trainSection: Section = {
  name: 'train',
  description: 'one training step / one forward pass at the same batch on CPU; vs PyTorch',
  async run(opts: BenchOptions): Promise<SectionResult> {
    const small = await resnet(opts.cacheDir);
    const nets: Net[] = [
      { name: 'mnist-cnn', file: mnistModel(), batch: 64, rounds: opts.quick ? 4 : 10, perRound: 5 },
      { name: 'resnet-small', file: small.path, batch: 8, rounds: opts.quick ? 2 : 4, perRound: 3 },
    ];
    const out: SectionResult = { rows: [], skipped: [], details: {} };
    const rt = await openRuntime('cpu', { threads: opts.threads });
    const kernels = await stepKernels(rt).finally(() => rt.close());
    for (const net of nets) {
      const r = await measure(net, opts, kernels);
      out.rows.push(...r.rows);
      for (const s of r.skipped) if (!out.skipped!.includes(s)) out.skipped!.push(s);
      out.details![net.name] = r.details;
    }
    return out;
  },
};
