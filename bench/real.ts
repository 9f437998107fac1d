/**
 * Fine-tuning real networks at 224×224 (npm run bench -- --real): torchvision's ResNet-18 and MobileNetV2,
 * built from torchvision's definitions with random initialisation (no weights downloaded), exported in
 * eval mode (BatchNormalization folded into the convolutions) and converted to ALReLU, then fine-tuned
 * with Adam by our finetune() and by PyTorch on the very same graph (rebuilt in torch from the ONNX, same
 * parameters, batch, optimizer and threads). Every run is its own child process, so each side's peak RSS
 * (VmHWM) is its own; ours and PyTorch's take turns (A B A B) so load on the machine hits both alike, and
 * each ratio is taken within a pair, then the median over pairs reported.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../src/atomic.js';
import { decodeModel, encodeModel } from '../src/onnx/schema.js';
import { convert } from '../src/convert/convert.js';
import { chooseParameters } from '../src/train/params.js';
import type { RealJob, RealRun } from './real-child.js';
import { findPython, runPythonJson, type Python } from './python.js';
import { fmt, MB, median } from './stats.js';
import { TORCH_NET } from './torchnet.js';
import { ratioRow, type BenchOptions, type Row, type Section, type SectionResult } from './types.js';

const run = promisify(execFile);

/** torchvision definitions, random init, eval-mode export with a symbolic batch; written beside, then renamed. */
const PY_EXPORT = String.raw`
import os, sys, torch, torchvision
name, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
m = getattr(torchvision.models, name)(weights=None).eval()
# fresh BatchNorm layers fold into identical zero biases, which the exporter then shares between layers
# (tied parameters no pretrained network has): draw their statistics and affine terms at random instead
with torch.no_grad():
    for b in m.modules():
        if isinstance(b, torch.nn.BatchNorm2d):
            b.weight.uniform_(0.5, 1.5); b.bias.uniform_(-0.1, 0.1)
            b.running_mean.uniform_(-0.1, 0.1); b.running_var.uniform_(0.5, 1.5)
tmp = out + '.part'
torch.onnx.export(m, torch.zeros(1, 3, 224, 224), tmp, opset_version=17, input_names=['input'], output_names=['logits'],
                  dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL)
os.replace(tmp, out)
print('{}')
`;

/** PyTorch's fine-tune of the same graph, alone in its process: Adam steps, then no-grad forwards, then VmHWM. */
const PY_RUN = String.raw`
import json, re, sys, time
import torch
path, batch, threads, steps, forwards = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
trainable = set(json.loads(sys.argv[6]))
torch.set_num_threads(threads)
torch.manual_seed(0)
${TORCH_NET}
x, y = bench_batch(batch)
opt = torch.optim.Adam(list(params.values()), lr=1e-4)
times, first = [], None
for s in range(steps):
    w0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(forward(x), y)
    loss.backward()
    opt.step()
    l = loss.item()
    if first is None: first = l
    times.append((time.perf_counter() - w0) * 1e3)
peak = int(re.search(r'VmHWM:\s+(\d+) kB', open('/proc/self/status').read()).group(1)) * 1024
fwd = []
with torch.no_grad():
    for i in range(forwards + 1):
        w0 = time.perf_counter()
        forward(x)
        if i: fwd.append((time.perf_counter() - w0) * 1e3)
print(json.dumps({'steps': times[1:], 'forward': fwd, 'peakRss': peak, 'firstLoss': first, 'torch': torch.__version__}))
`;

interface TorchRun {
  steps: number[];
  forward: number[];
  peakRss: number;
  firstLoss: number;
  torch: string;
}

const NETS = [
  { name: 'resnet18', label: 'ResNet-18' },
  { name: 'mobilenet_v2', label: 'MobileNetV2' },
] as const;

async function exported(py: Python, cacheDir: string, name: string): Promise<string> {
  const file = join(cacheDir, `${name}.torchvision.v2.onnx`);
  if (!existsSync(file)) {
    await fs.mkdir(cacheDir, { recursive: true });
    await runPythonJson(py, PY_EXPORT, [name, file]);
  }
  return file;
}

async function ours(job: RealJob): Promise<RealRun> {
  const child = fileURLToPath(new URL('./real-child.js', import.meta.url));
  const { stdout } = await run(process.execPath, [child, JSON.stringify(job)], { timeout: 1_800_000, maxBuffer: 16 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as RealRun;
}

const torchEnv = (threads: number) => ({ OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads), OMP_WAIT_POLICY: 'PASSIVE', KMP_BLOCKTIME: '0' });

interface Pair {
  ours: RealRun;
  torch: TorchRun;
}

const stepMs = (r: { steps: number[] }) => median(r.steps);
const fwdMs = (r: { forward: number[] }) => median(r.forward);
const pairMedian = (pairs: Pair[], f: (p: Pair) => number) => median(pairs.map(f));

export const realSection: Section = {
  name: 'real',
  description:
    'ResNet-18 and MobileNetV2 (torchvision) fine-tuned at 224x224 with Adam vs PyTorch: step time at 1 and all threads, step/forward, peak RSS, fixed cost',
  async run(opts: BenchOptions): Promise<SectionResult> {
    const py = await findPython(['torch', 'torchvision', 'onnx', 'numpy']);
    if (typeof py === 'string') return { rows: [], skipped: [`real networks: ${py}`] };
    const all = availableParallelism();
    const threadCounts = [...new Set([1, all])];
    const batches = opts.quick ? [8] : [8, 32];
    const steps = opts.quick ? 3 : 6;
    const forwards = opts.quick ? 2 : 4;
    const pairsPer = opts.quick ? 1 : 2;
    const rows: Row[] = [];
    const details: Record<string, unknown> = { threads: threadCounts, steps, forwards, pairs: pairsPer };
    for (const net of NETS) {
      const file = await exported(py, opts.cacheDir, net.name);
      const converted = decodeModel(await fs.readFile(file));
      convert(converted, { form: 'subgraph' });
      const trainable = chooseParameters(converted.graph!).trainable;
      // PyTorch rebuilds the converted graph (ours converts the export itself, as a user would)
      const peerFile = join(opts.cacheDir, 'tmp', `real-${process.pid}-${net.name}.alrelu.onnx`);
      await fs.mkdir(dirname(peerFile), { recursive: true });
      await writeFileAtomic(peerFile, encodeModel(converted), { replace: true });
      try {
        for (const B of batches) {
          const byThreads = new Map<number, Pair[]>();
          for (const threads of threadCounts) {
            const pairs: Pair[] = [];
            for (let k = 0; k < pairsPer; k++) {
              opts.log(`real: ${net.label} batch ${B}, ${threads} thread(s), pair ${k + 1}/${pairsPer}: ours`);
              const o = await ours({ model: file, batch: B, threads, steps: steps + 1, forwards, scratch: join(opts.cacheDir, 'tmp', `real-${process.pid}`) });
              opts.log(`real:   ours step ${fmt(stepMs(o))} ms, forward ${fmt(fwdMs(o))} ms, peak ${fmt(o.peakRss / MB)} MB; PyTorch`);
              const t = await runPythonJson<TorchRun>(
                py,
                PY_RUN,
                [peerFile, String(B), String(threads), String(steps + 1), String(forwards), JSON.stringify(trainable)],
                torchEnv(threads),
              );
              opts.log(`real:   PyTorch step ${fmt(stepMs(t))} ms, forward ${fmt(fwdMs(t))} ms, peak ${fmt(t.peakRss / MB)} MB`);
              pairs.push({ ours: o, torch: t });
            }
            byThreads.set(threads, pairs);
            const label = `${net.label} b${B} ${threads}t`;
            const last = pairs[pairs.length - 1]!;
            const how = `wall time, median of ${steps} steps after the first, ${pairsPer} pair(s) of runs (ours, PyTorch) each in its own process, ratio per pair then median`;
            const losses = `first-step loss ours ${last.ours.firstLoss.toFixed(5)} vs PyTorch ${last.torch.firstLoss.toFixed(5)}`;
            rows.push({
              metric: `${label}: training step, ms (ours)`,
              value: median(pairs.map((p) => stepMs(p.ours))),
              unit: 'ms',
              baseline: { name: `pytorch ${last.torch.torch}`, value: median(pairs.map((p) => stepMs(p.torch))), unit: 'ms' },
              ratio: pairMedian(pairs, (p) => stepMs(p.torch) / stepMs(p.ours)),
              goal: { min: 0.7 },
              note: `PyTorch's step time / ours (>= 0.7x: what standard ops allow; 1.0x: parity); ${how}; Adam, same graph and parameters (${trainable.length} tensors); ${losses}`,
            });
            rows.push({
              ...ratioRow(
                `${label}: training step / forward (ours)`,
                median(pairs.map((p) => stepMs(p.ours))),
                'ms',
                { name: 'forward pass', value: median(pairs.map((p) => fwdMs(p.ours))), unit: 'ms' },
                { max: 3.5 },
                `${how}; PyTorch's step = ${pairMedian(pairs, (p) => stepMs(p.torch) / fwdMs(p.torch)).toFixed(2)}x its no-grad forward (${fmt(median(pairs.map((p) => fwdMs(p.torch))))} ms)`,
              ),
              ratio: pairMedian(pairs, (p) => stepMs(p.ours) / fwdMs(p.ours)),
            });
            rows.push({
              metric: `${label}: fine-tune peak RSS, MB (ours)`,
              value: median(pairs.map((p) => p.ours.peakRss)) / MB,
              unit: 'MB',
              baseline: { name: 'pytorch', value: median(pairs.map((p) => p.torch.peakRss)) / MB, unit: 'MB' },
              ratio: pairMedian(pairs, (p) => p.ours.peakRss / p.torch.peakRss),
              goal: { max: 1 },
              note: `VmHWM of each process: ours the whole finetune() (set-up, steps, validation, test, checkpoint, output model), PyTorch's its ${steps + 1} steps (it also holds the parsed ONNX it rebuilt the network from)`,
            });
            if (net.name === 'resnet18' && B === 8 && threads === all) {
              const fx = last.ours.fixed;
              const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
              rows.push({
                metric: `${label}: fixed cost around the steps, s (ours)`,
                value: median(pairs.map((p) => (p.ours.fixed.beforeSteps + p.ours.fixed.afterSteps) / 1000)),
                unit: 's',
                note: `goal <= 3 s; finetune() wall time less its steps: before the first step ${s(fx.beforeSteps)} (graph building, sessions, validation of the starting parameters), after the last ${s(fx.afterSteps)} (validation, checkpoint, test, output model); timed alone: eval graph ${s(fx.buildEval)}, training graph ${s(fx.buildStep)}, step session ${s(fx.loadStep)}, eval session ${s(fx.loadEval)}; conversion before it ${s(fx.convert)}`,
              });
            }
          }
          if (threadCounts.length > 1) {
            const one = byThreads.get(1)!;
            const many = byThreads.get(all)!;
            const scale = (f: (p: Pair) => number) => median(one.map((p, i) => f(p) / f(many[i]!)));
            rows.push({
              metric: `${net.label} b${B}: training step, 1 thread / ${all} threads (ours)`,
              value: median(one.map((p) => stepMs(p.ours))),
              unit: 'ms',
              baseline: { name: `${all} threads`, value: median(many.map((p) => stepMs(p.ours))), unit: 'ms' },
              ratio: scale((p) => stepMs(p.ours)),
              goal: { min: 1.7 },
              note: `speed-up from 1 to ${all} threads (goal >= 1.7x at 2); PyTorch's: ${scale((p) => stepMs(p.torch)).toFixed(2)}x; pairs matched in run order`,
            });
          }
          details[`${net.name}-b${B}`] = Object.fromEntries(byThreads);
        }
      } finally {
        await fs.rm(peerFile, { force: true });
      }
    }
    return { rows, details };
  },
};
