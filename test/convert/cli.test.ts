/**
 * The `alrelu-convert` command as a user runs it: the built binary in a child process. Bad input of
 * every kind gives exit code 2, one `error: <file>: <cause>` line, no stack trace and no file written.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../../src/onnx/schema.js';
import { isExternal } from '../../src/onnx/external.js';
import { allTensors } from '../../src/onnx/walk.js';
import { CLI, errorLine, runCli } from '../cli.js';
import { fixture, ROOT } from '../helpers.js';

const SHIPPED = join(ROOT, 'models/mnist-cnn.onnx');
const MNIST = fixture('onnx2c/mnist/model.onnx');

/** A fresh folder holding a copy of `src` as model.onnx (plus any extra files). */
function workdir(src = SHIPPED, name = 'model.onnx'): { dir: string; model: string } {
  const dir = mkdtempSync(join(tmpdir(), 'alrelu-cli-'));
  const model = join(dir, name);
  copyFileSync(src, model);
  return { dir, model };
}

function withModel(edit: (m: ReturnType<typeof decodeModel>) => void): { dir: string; model: string } {
  const { dir, model } = workdir();
  const m = decodeModel(readFileSync(model));
  edit(m);
  writeFileSync(model, encodeModel(m));
  return { dir, model };
}

/** Asserts the bad-input contract and that the folder holds exactly what it held before. */
async function expectRefused(args: string[], dir: string, cause: RegExp, subject?: string): Promise<string> {
  const before = readdirSync(dir).sort();
  const r = await runCli(args);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const line = errorLine(r);
  expect(line).toMatch(cause);
  if (subject) expect(line.startsWith(`error: ${subject}: `), line).toBe(true);
  expect(readdirSync(dir).sort()).toEqual(before);
  return line;
}

describe('bad input', () => {
  it('missing file, directory, empty file', async () => {
    const { dir } = workdir();
    await expectRefused([join(dir, 'nope.onnx')], dir, /no such file/, join(dir, 'nope.onnx'));
    mkdirSync(join(dir, 'folder.onnx'));
    await expectRefused([join(dir, 'folder.onnx')], dir, /is a directory/);
    writeFileSync(join(dir, 'empty.onnx'), '');
    await expectRefused([join(dir, 'empty.onnx')], dir, /is empty/, join(dir, 'empty.onnx'));
  });

  it('random bytes, a truncated model, a protobuf that is not a ModelProto', async () => {
    const { dir } = workdir();
    const rnd = join(dir, 'random.onnx');
    writeFileSync(rnd, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)));
    await expectRefused([rnd], dir, /not an ONNX model|corrupt|truncated/, rnd);
    const cut = join(dir, 'cut.onnx');
    const full = readFileSync(SHIPPED);
    writeFileSync(cut, full.subarray(0, Math.floor(full.length / 2)));
    await expectRefused([cut], dir, /truncated|corrupt|not an ONNX model/, cut);
    const tensor = join(dir, 'tensor.onnx');
    copyFileSync(fixture('onnx2c/mnist/test_data_set_0/input_0.pb'), tensor);
    await expectRefused([tensor], dir, /not an ONNX model/, tensor);
  });

  it('IR or opset newer than onnxruntime 1.30 supports, opset older than LeakyRelu', async () => {
    const ir = withModel((m) => (m.irVersion = 14));
    await expectRefused([ir.model], ir.dir, /IR version 14/, ir.model);
    const newer = withModel((m) => (m.opsetImport = [{ domain: '', version: 27 }]));
    await expectRefused([newer.model], newer.dir, /opset 27/, newer.model);
    const older = withModel((m) => (m.opsetImport = [{ domain: '', version: 5 }]));
    await expectRefused([older.model], older.dir, /opset 5 is older than LeakyRelu/, older.model);
  });

  it('missing and escaping external data', async () => {
    const { dir, model } = workdir(fixture('onnx-onnx/examples-simple_cnn/simple_cnn.onnx'), 'simple_cnn.onnx');
    await expectRefused([model], dir, /simple_cnn\.onnx\.data.*missing/, model);
    const m = decodeModel(readFileSync(model));
    for (const t of allTensors(m).filter(isExternal)) for (const kv of t.externalData!) if (kv.key === 'location') kv.value = '../../etc/passwd';
    writeFileSync(model, encodeModel(m));
    await expectRefused([model], dir, /escapes the model's folder/, model);
  });

  it('unwritable output folder, existing output without --force, output = input', async () => {
    const { dir, model } = workdir();
    await expectRefused([model, '-o', join(dir, 'no/such/dir/out.onnx')], dir, /does not exist/);
    const out = join(dir, 'model.alrelu.onnx');
    writeFileSync(out, 'keep me');
    await expectRefused([model], dir, /already exists \(use --force/, out);
    expect(readFileSync(out, 'utf8')).toBe('keep me');
    await expectRefused([model, '-o', model], dir, /is the input model; choose another path/);
  });

  it('bad options: unknown option, non-numeric --alpha, unknown --ops and --form', async () => {
    const { dir, model } = workdir();
    await expectRefused([model, '--no-such-option'], dir, /unknown option/);
    await expectRefused([model, '--alpha', 'abc'], dir, /--alpha: expected a number/);
    await expectRefused([model, '--ops', 'gelu'], dir, /--ops takes relu/);
    await expectRefused([model, '--form', 'sparkly'], dir, /subgraph, fused, function/);
    await expectRefused([model, '--dim', 'N'], dir, /--dim: expected name=value/);
  });

  it('--verbose adds the stack trace', async () => {
    const { dir } = workdir();
    const r = await runCli([join(dir, 'nope.onnx'), '--verbose']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toMatch(/^error: .*no such file/);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});

describe('converting', () => {
  it('writes <name>.alrelu.onnx beside the input with a short summary on stderr and nothing on stdout', async () => {
    const { dir, model } = workdir();
    const r = await runCli([model]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/replaced\s+\d+ \(Relu \d+\)/);
    expect(readdirSync(dir).sort()).toEqual(['model.alrelu.onnx', 'model.onnx']);
    const out = decodeModel(readFileSync(join(dir, 'model.alrelu.onnx')));
    const ops = (out.graph!.node ?? []).map((n) => n.opType);
    expect(ops).not.toContain('Relu');
    expect(ops.filter((o) => o === 'Abs').length).toBe(ops.filter((o) => o === 'LeakyRelu').length);
    // --force overwrites; --quiet prints nothing.
    const again = await runCli([model, '--force', '--quiet', '--form', 'fused']);
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('');
    expect(decodeModel(readFileSync(join(dir, 'model.alrelu.onnx'))).graph!.node!.some((n) => n.opType === 'Abs')).toBe(false);
  });

  it('--json: nothing but the report on stdout', async () => {
    const { dir, model } = workdir(MNIST);
    const out = join(dir, 'x.onnx');
    const r = await runCli([model, '-o', out, '--json', '--alpha', '0.02']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ input: model, output: out, form: 'subgraph', alpha: 0.02, replaced: { total: 2, byOp: { Relu: 2 }, byGraph: { main: 2 } } });
    expect(j.skipped).toEqual([]);
    expect(j.lookalikes).toEqual([]);
    expect(Array.isArray(j.warnings)).toBe(true);
    expect(j.nodes).toHaveLength(2);
    expect(statSync(out).size).toBeGreaterThan(20_000);
  });

  it('--dry-run reports and writes nothing', async () => {
    const { dir, model } = workdir();
    const r = await runCli([model, '--dry-run', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.dryRun).toBe(true);
    expect(j.output).toBeNull();
    expect(j.replaced.total).toBeGreaterThan(0);
    expect(readdirSync(dir)).toEqual(['model.onnx']);
  });

  it('--verify: one verdict line; alpha=0 identical and the converted model runs', async () => {
    const { model } = workdir(MNIST);
    const r = await runCli([model, '--verify']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/verify\s+ok: alpha=0 identical to the original on 2 Relu; converted model runs/);
    const j = JSON.parse((await runCli([model, '--verify', '--json', '--force', '--form', 'function'])).stdout);
    expect(j.verify).toMatchObject({ ok: true, equivalence: 'identical', runs: true, checkedRelus: 2 });
  });

  it('--verify with a symbolic batch dim and --dim', async () => {
    const { model } = workdir(fixture('windows-ml/iris_mlp/Network.onnx'));
    const r = await runCli([model, '--verify', '--dim', 'batch_size=5', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.verify.ok).toBe(true);
    expect(Object.values(j.verify.inputs as Record<string, number[]>)[0]![0]).toBeGreaterThan(0);
  });

  it('--external-data writes weights to <output>.data', async () => {
    const { dir, model } = workdir(fixture('burn-onnx/mnist_pytorch2/mnist.onnx'));
    const r = await runCli([model, '-o', join(dir, 'o.onnx'), '--external-data', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).dataFiles).toEqual([join(dir, 'o.onnx.data')]);
    expect(readdirSync(dir).sort()).toEqual(['model.onnx', 'o.onnx', 'o.onnx.data']);
  });

  it('look-alikes and skipped nodes are listed in the summary', async () => {
    const { model } = workdir(fixture('onnx-onnx/node/test_prelu_example/model.onnx'));
    const r = await runCli([model, '--dry-run']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/look-alike .*PRelu/);
  });
});

describe('the installed binary', () => {
  it('runs as an executable (shebang and mode), as npx runs it', () => {
    const r = spawnSync(CLI, ['--version'], { encoding: 'utf8' });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });
});

describe('inspect', () => {
  it('--json: IR, opsets, I/O with shapes, op histogram, activations with their graph path', async () => {
    const r = await runCli(['inspect', MNIST, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.irVersion).toBe(3);
    expect(j.opsets).toEqual({ 'ai.onnx': 8 });
    expect(j.inputs[0]).toMatchObject({ name: 'Input3', shape: [1, 1, 28, 28] });
    expect(j.ops.Relu).toBe(2);
    expect(j.activations.map((a: { scope: string }) => a.scope)).toEqual(['main', 'main']);
    const human = await runCli(['inspect', MNIST]);
    expect(human.stdout).toBe('');
    expect(human.stderr).toMatch(/activation\s+main/);
  });

  it('says whether finetune can train the model, and why not', async () => {
    const mnist = JSON.parse((await runCli(['inspect', MNIST, '--json'])).stdout).training;
    // mnist-8: two Conv weights and biases, the MatMul weight and its bias; raised from opset 8; logits
    expect(mnist).toMatchObject({ ok: true, parameters: 6, opset: 17, modelOpset: 8, rewritten: 0, loss: 'cross-entropy', reason: null });
    const lstm = await runCli(['inspect', fixture('onnx2c/simple_networks/lstm_k1_b1_r1_relu.onnx')]);
    expect(lstm.stderr).toMatch(
      /fine-tuning\s+no: node lstm: the gradient needs the sequence length of lstm_X .*\(finetune sets the input's symbolic dims M1 from the data's sample shape, which this check cannot see\)/,
    );
    const half = await runCli(['inspect', fixture('windows-ml/squeezenet_fp16/SqueezeNet_fp16.onnx')]);
    expect(half.stderr).toMatch(
      /fine-tuning\s+yes: 52 parameter tensors \(1235496 values\); nll-softmax loss; training graph at opset 17 \(2 node\(s\) rewritten from opset 7\); float32 master weights/,
    );
    const skipped = await runCli(['inspect', MNIST, '--no-training', '--json']);
    expect(JSON.parse(skipped.stdout).training).toBeNull();
  });

  it('bad input is the same one-line error', async () => {
    const { dir } = workdir();
    await expectRefused(['inspect', join(dir, 'missing.onnx')], dir, /no such file/);
  });
});
