/**
 * `alrelu-convert finetune` as a user runs it (the built CLI): the pretrained MNIST model, converted to
 * ALReLU, fine-tuned for one short epoch on CPU, judged by the independent evaluation code; interruption
 * and --resume; NaN loss; early stopping; gradient dumps; and every kind of bad input giving one error
 * line, exit 2 and no output file.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeNpy } from '../../src/data/npy.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { readModel } from '../../src/onnx/read.js';
import { tensorValues } from '../../src/onnx/tensor.js';
import type { FinetuneLog } from '../../src/train/loop.js';
import { CLI, errorLine, runCli } from '../cli.js';
import { ROOT } from '../helpers.js';
import { hasGpuDevice } from '../runtime/gpu.js';

const MNIST = resolve(ROOT, '../shared/fixtures/models/onnx2c/mnist/model.onnx');
const IRIS_MLP = resolve(ROOT, '../shared/fixtures/gradients/mlp_iris/model.onnx');
const tmp = () => mkdtempSync(join(tmpdir(), 'alrelu-ft-'));

async function testAccuracy(models: string[], split: 'test' | 'all'): Promise<number[]> {
  const report = await evaluate({ models, data: 'mnist', split, eps: ['cpu'], preprocess: { scale: 255 }, warmup: 0 });
  return report.results.map((r) => {
    if (!r.ok || r.metrics.task !== 'classification') throw new Error(`evaluation failed: ${JSON.stringify(r)}`);
    return r.metrics.top1;
  });
}

describe('fine-tuning the converted pretrained MNIST model', () => {
  it('loses accuracy when converted; one short epoch on CPU brings it back to the original or above', async () => {
    const dir = tmp();
    const conv = join(dir, 'mnist.alrelu.onnx');
    const out = join(dir, 'mnist.ft.onnx');
    expect((await runCli([MNIST, '-o', conv, '--quiet'])).code).toBe(0);
    const r = await runCli(['finetune', conv, '--data', 'mnist', '--scale', '255', '--epochs', '1', '--lr', '1e-4', '--seed', '0', '-o', out, '--json'], {
      timeoutMs: 170_000,
    });
    expect(r.code, r.stderr).toBe(0);
    const log = JSON.parse(r.stdout) as FinetuneLog;
    // mnist-8 has a fixed batch of 1 and a Reshape to [1, 256]: both made symbolic for training.
    expect(log.batch).toMatchObject({ size: 32, relaxed: true, originalBatch: 1, stepsPerEpoch: 250 });
    expect(log.loss.kind).toBe('cross-entropy');
    expect(log.deviceResident).toBe(false);
    expect(log.stepGraph.update).toBe('graph'); // a small model: the graph's own update (loop.ts updateOn)

    const [origAll, convAll] = await testAccuracy([MNIST, conv], 'all');
    const [orig, converted, tuned] = await testAccuracy([MNIST, conv, out], 'test');
    console.log(
      `mnist-8 accuracy, all 10,000: original ${origAll}, converted ${convAll}; test split: original ${orig}, converted ${converted}, fine-tuned ${tuned}; val ${log.initial.accuracy} -> ${log.best?.value} (epoch ${log.best?.epoch}); ${log.seconds.toFixed(1)} s`,
    );
    expect(convAll).toBeLessThan(origAll!);
    expect(tuned).toBeGreaterThanOrEqual(orig! - 0.005);
    // The run's own test figure is the written model's, as the evaluation code measures it.
    expect(log.test?.accuracy).toBeCloseTo(tuned!, 10);

    // The output is the converted graph unchanged, with new values in the trained initializers only.
    const a = (await readModel(conv)).model.graph!;
    const b = (await readModel(out)).model.graph!;
    expect(b.node!.map((n) => [n.opType, n.input, n.output])).toEqual(a.node!.map((n) => [n.opType, n.input, n.output]));
    expect(b.input).toEqual(a.input);
    expect(b.output).toEqual(a.output);
    const before = new Map(a.initializer!.map((t) => [t.name, tensorValues(t)!]));
    let changed = 0;
    for (const t of b.initializer!) {
      const v = tensorValues(t)!;
      const same = v.every((x, i) => x === before.get(t.name)![i]);
      if (t.dataType === 7) expect(same, t.name).toBe(true);
      else if (!same) changed++;
    }
    if (log.best!.epoch > 0) expect(changed).toBe(log.parameters.trainable.length);
    expect(existsSync(`${out}.ckpt`)).toBe(true);
    expect(JSON.parse(readFileSync(`${out}.log.json`, 'utf8'))).toMatchObject({ output: out, epochs: [{ epoch: 1, steps: 250 }] });
  }, 200_000);
});

describe('the one-command flow', () => {
  it('alrelu-convert model.onnx --finetune --data iris converts, fine-tunes and writes one model', async () => {
    const dir = tmp();
    const out = join(dir, 'iris.alrelu.onnx');
    const r = await runCli([IRIS_MLP, '--finetune', '--data', 'iris', '--epochs', '2', '--lr', '0.01', '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const log = JSON.parse(r.stdout) as FinetuneLog;
    expect(log.epochs).toHaveLength(2);
    const ops = (await readModel(out)).model.graph!.node!.map((n) => n.opType);
    expect(ops.filter((o) => o === 'Relu')).toHaveLength(0);
    expect(ops.filter((o) => o === 'LeakyRelu')).toHaveLength(2);
    expect(errorLine(await runCli([IRIS_MLP, '--finetune', '-o', join(dir, 'x.onnx')]))).toMatch(/--finetune: needs --data <spec>/);
  });
});

describe.runIf(!hasGpuDevice())('the WebGPU adapter trained on, without a GPU', () => {
  it("webgpu's auto adapter falls back to SwiftShader: the log and the summary say so, software; --webgpu-adapter gpu refuses in one line", async () => {
    const dir = tmp();
    const out = join(dir, 'iris.ft.onnx');
    const r = await runCli(['finetune', IRIS_MLP, '--data', 'iris', '--epochs', '1', '--max-steps', '2', '--ep', 'webgpu', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      "WebGPU adapter: SwiftShader (Vulkan on the CPU) (software: on the CPU, not GPU speed; auto fell back: no WebGPU adapter with the system's Vulkan drivers)",
    );
    const log = JSON.parse(readFileSync(`${out}.log.json`, 'utf8')) as FinetuneLog;
    expect(log.adapter).toEqual({
      name: 'SwiftShader (Vulkan on the CPU)',
      software: true,
      choice: 'auto',
      fallback: "no WebGPU adapter with the system's Vulkan drivers",
    });
    const gpu = await runCli([
      'finetune',
      IRIS_MLP,
      '--data',
      'iris',
      '--epochs',
      '1',
      '--ep',
      'webgpu',
      '--webgpu-adapter',
      'gpu',
      '-o',
      join(dir, 'gpu.onnx'),
    ]);
    expect(gpu.code).toBe(2);
    expect(errorLine(gpu)).toMatch(/^error: webgpu: no WebGPU \(Vulkan\) adapter found; fix: /);
    expect(existsSync(join(dir, 'gpu.onnx'))).toBe(false);
  });
});

describe('runs that stop', () => {
  it('Ctrl-C writes nothing partial; --resume continues from the last epoch', async () => {
    const dir = tmp();
    const model = join(dir, 'iris.onnx');
    copyFileSync(IRIS_MLP, model);
    const out = join(dir, 'iris.ft.onnx');
    const args = ['finetune', model, '--data', 'iris', '--batch-size', '4', '--epochs', '100000', '-o', out];
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const code = await new Promise<number | null>((done) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // interrupt once two epochs are done, so a checkpoint exists
        if (/epoch 2\//.test(stderr) && !child.killed) child.kill('SIGINT');
      });
      child.on('close', (c) => done(c));
    });
    expect(code).toBe(130);
    expect(stderr).toMatch(/error: .*interrupted during epoch \d+ \(step \d+\); the checkpoint .*\.ckpt holds epoch \d+: continue with --resume/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.log.json`)).toBe(false);
    expect(existsSync(`${out}.ckpt`)).toBe(true);
    const held = Number(/holds epoch (\d+)/.exec(stderr)![1]);

    // Without --resume the checkpoint is not silently overwritten.
    expect(errorLine(await runCli(args))).toMatch(/\.ckpt: a checkpoint of an earlier run is here: --resume to continue it, or --force to start over/);
    const r = await runCli(['finetune', model, '--data', 'iris', '--batch-size', '4', '--epochs', String(held + 2), '-o', out, '--resume', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const log = JSON.parse(r.stdout) as FinetuneLog;
    expect(log.resumedFrom, stderr).toBe(held);
    expect(log.epochs.map((e) => e.epoch)).toEqual(Array.from({ length: held + 2 }, (_, i) => i + 1));
    expect(existsSync(out)).toBe(true);
  });

  it('NaN/Inf loss stops the run, says which step, keeps the last good checkpoint and writes no model', async () => {
    const dir = tmp();
    const out = join(dir, 'nan.onnx');
    const r = await runCli(['finetune', IRIS_MLP, '--data', 'iris', '--optimizer', 'sgd', '--lr', '1e30', '--batch-size', '8', '--epochs', '5', '-o', out]);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toMatch(
      /loss is (NaN|Infinity|-Infinity) at step \d+ \(epoch \d+, batch \d+\); stopped\. (The last good checkpoint is .*\.ckpt \(epoch \d+\)|No epoch had completed; nothing was written); try a lower --lr/,
    );
    expect(existsSync(out)).toBe(false);
  });

  it('--patience stops when validation stops improving', async () => {
    const dir = tmp();
    const out = join(dir, 'p.onnx');
    const r = await runCli([
      'finetune',
      IRIS_MLP,
      '--data',
      'iris',
      '--optimizer',
      'sgd',
      '--lr',
      '1e-12',
      '--epochs',
      '10',
      '--patience',
      '2',
      '-o',
      out,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const log = JSON.parse(r.stdout) as FinetuneLog;
    expect(log.stopped).toBe('early-stopping');
    expect(log.epochs).toHaveLength(2);
    expect(log.best?.epoch).toBe(0);
  });

  it("--dump-gradients writes the loss and each parameter's gradient of the first batch, and trains nothing", async () => {
    const dir = tmp();
    const file = join(dir, 'g.json');
    const out = join(dir, 'never.onnx');
    const r = await runCli(['finetune', IRIS_MLP, '--data', 'iris', '--no-shuffle', '--batch-size', '16', '--dump-gradients', file, '-o', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const dump = JSON.parse(readFileSync(file, 'utf8')) as {
      batch: number;
      loss: number;
      lossKind: string;
      gradients: Record<string, { dims: number[]; values: number[] }>;
    };
    expect(dump.batch).toBe(16);
    expect(dump.lossKind).toBe('cross-entropy');
    expect(Number.isFinite(dump.loss)).toBe(true);
    expect(Object.keys(dump.gradients).sort()).toEqual(['0.bias', '0.weight', '2.bias', '2.weight', '4.bias', '4.weight']);
    expect(dump.gradients['0.weight']!.dims).toEqual([16, 4]);
    expect(dump.gradients['0.weight']!.values.some((v) => v !== 0)).toBe(true);
    // Softmax cross-entropy: the last bias's gradient sums to zero over the classes.
    expect(Math.abs(dump.gradients['4.bias']!.values.reduce((a, b) => a + b, 0))).toBeLessThan(1e-6);
    expect(existsSync(out)).toBe(false);
  });
});

describe('bad input: one error line, exit 2, nothing written', () => {
  function npyData(rows: number, maxLabel: number): string {
    const dir = tmp();
    mkdirSync(join(dir, 'd'));
    const x = Float32Array.from({ length: rows * 4 }, (_, i) => (i % 7) / 7);
    const y = Int32Array.from({ length: rows }, (_, i) => i % (maxLabel + 1));
    writeFileSync(join(dir, 'd', 'x.npy'), encodeNpy('<f4', [rows, 4], x));
    writeFileSync(join(dir, 'd', 'y.npy'), encodeNpy('<i4', [rows], y));
    return join(dir, 'd', 'x.npy');
  }

  const cases: [string, () => string[], RegExp][] = [
    [
      'labels that do not fit the output',
      () => ['--data', npyData(60, 5)],
      /--data: labels go up to 5, but the model's output 'logits' has 3 values per sample \(classes 0\.\.2\)/,
    ],
    [
      'a data set smaller than one batch',
      () => ['--data', npyData(20, 2), '--batch-size', '32'],
      /--data: the training split has 16 samples, fewer than one batch of 32/,
    ],
    ['a split in the data spec', () => ['--data', 'iris:train'], /--data iris:train: fine-tuning splits the data itself/],
    ['samples that do not fit the input', () => ['--data', 'mnist'], /\.onnx: input 'input' takes shape \[batch, 4\]; samples of shape \[1, 28, 28\]/],
    ['a --freeze that matches nothing', () => ['--data', 'iris', '--freeze', 'conv*'], /--freeze: 'conv\*' matches no parameter/],
    ['a bad learning rate', () => ['--data', 'iris', '--lr=-1'], /--lr: must be a number > 0/],
    ['a missing checkpoint for --resume', () => ['--data', 'iris', '--resume'], /\.ckpt: no such checkpoint/],
  ];
  for (const [what, extra, message] of cases) {
    it(what, async () => {
      const dir = tmp();
      const out = join(dir, 'out.onnx');
      const r = await runCli(['finetune', IRIS_MLP, '-o', out, ...extra()]);
      expect(r.code, r.stderr).toBe(2);
      expect(errorLine(r)).toMatch(message);
      expect(existsSync(out)).toBe(false);
      expect(existsSync(`${out}.log.json`)).toBe(false);
    });
  }

  it('an existing output without --force', async () => {
    const dir = tmp();
    const out = join(dir, 'out.onnx');
    writeFileSync(out, 'keep me');
    const r = await runCli(['finetune', IRIS_MLP, '--data', 'iris', '-o', out]);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toMatch(/out\.onnx: already exists \(use --force to overwrite\)/);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
  });
});
