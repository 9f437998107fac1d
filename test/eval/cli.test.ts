/**
 * `alrelu-convert eval` as a user runs it: the built binary, real sessions, real files. Bad input of
 * every kind ends in exit 2 with exactly one `error:` line on stderr, and whatever providers did run
 * are still reported.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EvalReport } from '../../src/eval/types.js';
import { CLI, runCli, type CliResult as Result } from '../cli.js';
import { fixture, ROOT } from '../helpers.js';
import { hasGpuDevice } from '../runtime/gpu.js';

// dist/ is built once per test run by test/global-setup.ts.
const IRIS = fixture('windows-ml/iris_mlp/Network.onnx');
const MNIST = fixture('onnx2c/mnist/model.onnx');
const tmp = mkdtempSync(join(tmpdir(), 'alrelu-evalcli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const run = (args: string[]): Promise<Result> => runCli(['eval', ...args]);

/** Exit 2, one `error:` line (the last line of stderr), no stack trace. */
function oneError(r: Result): string {
  expect(r.code, r.stderr).toBe(2);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
  expect(errors, r.stderr).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr.trimEnd().endsWith(errors[0]!)).toBe(true);
  return errors[0]!;
}

/** Only the error line: nothing was evaluated. */
function onlyError(r: Result): string {
  const line = oneError(r);
  expect(r.stderr.trim()).toBe(line);
  expect(r.stdout).toBe('');
  return line;
}

function file(name: string, content: string | Uint8Array): string {
  const p = join(tmp, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, content);
  return p;
}

const IRIS_HEADER = 'sl,sw,pl,pw,label\n';

describe('eval command', () => {
  it('--json prints only JSON on stdout; --report writes a self-contained HTML file; no progress bar when piped', async () => {
    const html = join(tmp, 'iris.html');
    const r = await run([IRIS, '--data', 'iris', '--ep', 'cpu,wasm', '--json', '--report', html]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as EvalReport;
    expect(report.results.map((x) => [x.ep, x.ok])).toEqual([
      ['cpu', true],
      ['wasm', true],
    ]);
    const cpu = report.results[0]!;
    if (!cpu.ok || cpu.metrics.task !== 'classification') throw new Error('expected classification');
    expect(cpu.metrics.top1).toBeCloseTo(0.98, 10);
    expect(report.agreement[0]).toMatchObject({ referenceEp: 'cpu', ep: 'wasm' });
    expect(r.stderr).not.toMatch(/\r/);
    expect(r.stderr.trim()).toBe(`report: ${html}`);
    const page = readFileSync(html, 'utf8');
    expect(page).toMatch(/^<!doctype html>/i);
    expect(page).toContain('<svg');
    expect(page).not.toMatch(/<script|<link|<img| src=| href=/); // nothing fetched
  });

  it.skipIf(!existsSync('/usr/bin/script'))('draws a progress bar on a terminal (util-linux script gives it a pty)', () => {
    const cmd = [process.execPath, CLI, 'eval', IRIS, '--data', 'iris', '--ep', 'cpu'].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('/usr/bin/script', ['-qec', cmd, '/dev/null'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/\r\x1b\[2KNetwork\.onnx on cpu \[[#.]{24}\] \d+\/150/);
    expect(r.stdout).toMatch(/Network\.onnx\s+cpu\s+98\.00%/);
  });

  it('prints the table on stderr: mnist-8 on the mnist test split x255, 99.50%', async () => {
    const r = await run([MNIST, '--data', 'mnist:test', '--scale', '255', '--ep', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/data: mnist \(test, 1000 samples\)/);
    expect(r.stderr).toMatch(/model\.onnx\s+cpu\s+99\.50%\s+100\.00%/);
    expect(r.stderr).toMatch(/1 \(single\)/);
  });

  it('compares against test_data_set references in a model folder', async () => {
    const r = await run([MNIST, '--data', fixture('onnx2c/mnist'), '--ep', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/model\.onnx\s+cpu\s+3\s+\S+\s+\S+\s+1\.00e-4\s+yes/);
  });

  it('an unusable EP (cuda here) fails alone: cpu results are still printed, then one error line', async () => {
    const r = await run([IRIS, '--data', 'iris', '--ep', 'cpu,cuda', '--json']);
    const line = oneError(r);
    expect(line).toMatch(/^error: cuda: /);
    const report = JSON.parse(r.stdout) as EvalReport;
    expect(report.results.map((x) => [x.ep, x.ok])).toEqual([
      ['cpu', true],
      ['cuda', false],
    ]);
    expect(report.results[1]).toMatchObject({ stage: 'open' });
    const human = await run([IRIS, '--data', 'iris', '--ep', 'cuda,cpu']);
    oneError(human);
    expect(human.stderr).toMatch(/Network\.onnx\s+cpu\s+98\.00%/);
    expect(human.stderr).toMatch(/Failed:[\s\S]*cuda\s+open/);
  });

  // Without a GPU (this machine), 'auto' must land on SwiftShader and say so; 'gpu' must refuse in one line.
  it.runIf(!hasGpuDevice())(
    'webgpu and browser-webgpu name their adapter: auto falls back to SwiftShader, flagged software (JSON, text, HTML); gpu is one error line',
    async () => {
      const html = join(tmp, 'adapters.html');
      const r = await run([IRIS, '--data', 'iris', '--limit', '8', '--ep', 'cpu,webgpu,browser-webgpu', '--json', '--report', html]);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as EvalReport;
      const adapters = report.results.map((x) => [x.ep, x.ok && x.adapter]);
      expect(adapters).toEqual([
        ['cpu', undefined],
        ['webgpu', { name: 'SwiftShader (Vulkan on the CPU)', software: true, choice: 'auto', fallback: "no WebGPU adapter with the system's Vulkan drivers" }],
        [
          'browser-webgpu',
          { name: 'google swiftshader', software: true, choice: 'auto', fallback: "Chromium's only adapter is google swiftshader, a software (CPU) one" },
        ],
      ]);
      const page = readFileSync(html, 'utf8');
      expect(page).toContain('<h2>WebGPU adapters</h2>');
      expect(page).toMatch(/<td>browser-webgpu<\/td><td>google swiftshader<\/td><td>software \(CPU\): latency is not a GPU figure<\/td><td>auto<\/td>/);

      const text = await run([IRIS, '--data', 'iris', '--limit', '8', '--ep', 'webgpu']);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stderr).toContain(
        "webgpu adapter: SwiftShader (Vulkan on the CPU) (software: on the CPU, latency is not a GPU figure; auto fell back: no WebGPU adapter with the system's Vulkan drivers)",
      );

      const t0 = Date.now();
      const gpu = await run([IRIS, '--data', 'iris', '--limit', '8', '--ep', 'browser-webgpu,webgpu', '--webgpu-adapter', 'gpu']);
      expect(oneError(gpu)).toBe(
        "error: browser-webgpu: no hardware WebGPU adapter: Chromium's only adapter is google swiftshader, a software (CPU) one; fix: install the GPU's Vulkan driver and libvulkan1 (check with `vulkaninfo --summary`), or ask for the adapter 'auto' or 'swiftshader' to run on the CPU (and 1 more failed run, listed above)",
      );
      expect(gpu.stderr).toMatch(/webgpu\s+open\s+webgpu: no WebGPU \(Vulkan\) adapter found/);
      expect(Date.now() - t0).toBeLessThan(60_000);
      expect(onlyError(await run([IRIS, '--data', 'iris', '--ep', 'webgpu', '--webgpu-adapter', 'GPU']))).toMatch(
        /^error: .*--webgpu-adapter.*'GPU'.*auto, gpu, swiftshader/,
      );
    },
  );

  it('data that does not fit the model: wrong input name, wrong shape, labels out of range', async () => {
    expect(oneError(await run([IRIS, '--data', 'iris', '--input', 'nope']))).toMatch(
      /--input nope: no such input in .*Network\.onnx; expected one of: input \[batch_size,4\]/,
    );
    expect(oneError(await run([IRIS, '--data', 'mnist:test']))).toMatch(
      /input input: expected samples of shape \[4\] \(input \[batch_size,4\]\), found \[1,28,28\]/,
    );
    const csv = file('five-classes.csv', IRIS_HEADER + '5.1,3.5,1.4,0.2,0\n6.3,3.3,6.0,2.5,4\n');
    expect(oneError(await run([IRIS, '--data', csv]))).toMatch(
      /output output: expected at least 5 classes \(the data's labels go up to 4.*\), found 3 values per sample/,
    );
  });

  it('bad data files: zero rows, corrupt .npz, .pb and image, an unknown name', async () => {
    expect(onlyError(await run([IRIS, '--data', file('empty.csv', IRIS_HEADER)]))).toMatch(/empty\.csv: has zero rows/);
    expect(onlyError(await run([IRIS, '--data', file('bad.npz', 'PK\x03\x04 not really a zip')]))).toMatch(/^error: .*bad\.npz: /);
    file('ref/test_data_set_0/input_0.pb', Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 1]));
    file('ref/test_data_set_0/output_0.pb', Buffer.from([]));
    expect(onlyError(await run([MNIST, '--data', join(tmp, 'ref')]))).toMatch(/input_0\.pb: is not a serialized ONNX TensorProto/);
    file('images/cat/broken.png', '\x89PNG\r\n\x1a\n truncated');
    expect(onlyError(await run([MNIST, '--data', join(tmp, 'images')]))).toMatch(/broken\.png: /);
    expect(onlyError(await run([IRIS, '--data', 'irsi']))).toMatch(/^error: --data irsi: .*the built-in data sets are mnist, iris, penguins, spam/);
  });

  it('bad flags and files: unknown EP, missing model, bad --limit, --std 0', async () => {
    expect(onlyError(await run([IRIS, '--data', 'iris', '--ep', 'cpu,tpu']))).toMatch(/--ep: unknown execution provider 'tpu'/);
    expect(onlyError(await run([join(tmp, 'missing.onnx'), '--data', 'iris']))).toMatch(/missing\.onnx: model file not found/);
    expect(onlyError(await run([IRIS, '--data', 'iris', '--limit', '0']))).toMatch(/--limit: expected an integer >= 1, found '0'/);
    expect(onlyError(await run([IRIS, '--data', 'iris', '--std', '0']))).toMatch(/--std: expected non-zero values/);
  });
});
