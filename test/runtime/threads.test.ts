/**
 * --threads: the count a command asks for is the count onnxruntime computes with. Checked where it shows: the
 * worker threads the process holds while a session is alive (onnxruntime's intra-op pool of N has N - 1 workers
 * beside the calling thread), and the count every JSON report records.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openRuntime } from '../../src/runtime/index.js';
import { defaultThreads, threadCount } from '../../src/runtime/threads.js';
import { errorLine, runCli } from '../cli.js';
import { ROOT } from '../helpers.js';
import { CASES } from './fixtures.js';

/** OS threads of a fresh Node process holding one cpu session opened with `threads` (undefined: the default). */
function osThreadsWith(threads: number | undefined, spinning = true): number {
  const script = `
    import { readdirSync } from 'node:fs';
    const { openRuntime } = await import(${JSON.stringify(join(ROOT, 'dist/src/runtime/index.js'))});
    const rt = await openRuntime('cpu', ${JSON.stringify({ ...(threads ? { threads } : {}), spinning })});
    const s = await rt.load(${JSON.stringify(CASES[1]!.model)});
    process.stdout.write(JSON.stringify({ tasks: readdirSync('/proc/self/task').length, threads: rt.threads }));
    await rt.close();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const out = JSON.parse(r.stdout) as { tasks: number; threads: number };
  expect(out.threads).toBe(threads ?? availableParallelism());
  return out.tasks;
}

describe('threads', () => {
  it('defaults to every core, and refuses anything but a positive integer', () => {
    expect(defaultThreads()).toBe(availableParallelism());
    expect(threadCount(undefined)).toBe(availableParallelism());
    expect(threadCount(3)).toBe(3);
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => threadCount(bad)).toThrow(/threads: must be a positive integer/);
  });

  it('a cpu session of N threads holds N - 1 pool workers more than one of 1 thread', () => {
    const one = osThreadsWith(1);
    expect(osThreadsWith(2) - one).toBe(1);
    expect(osThreadsWith(4) - one).toBe(3);
    // sleeping instead of spinning changes how workers wait, not how many there are
    expect(osThreadsWith(4, false) - one).toBe(3);
    expect(osThreadsWith(undefined) - one).toBe(availableParallelism() - 1);
  });

  it('sessions of any thread count compute the same outputs', async () => {
    const c = CASES[1]!;
    const outs: Float32Array[] = [];
    for (const threads of [1, 2, 3]) {
      const rt = await openRuntime('cpu', { threads, spinning: threads !== 2 });
      try {
        const s = await rt.load(c.model);
        const y = Object.values(await s.run({ [s.inputs[0]!.name]: c.input }))[0]!;
        outs.push(y.data as Float32Array);
      } finally {
        await rt.close();
      }
    }
    for (const o of outs.slice(1)) for (let i = 0; i < o.length; i++) expect(Math.abs(o[i]! - outs[0]![i]!)).toBeLessThan(1e-4);
  });

  it('eval, finetune and convert --verify record the count in --json; doctor shows it; 0 is refused with one line', async () => {
    const model = join(ROOT, 'models/mnist-cnn.onnx');
    const ev = await runCli(['eval', model, '--data', 'mnist:test', '--limit', '16', '--ep', 'cpu,wasm', '--threads', '2', '--json']);
    expect(ev.code, ev.stderr).toBe(0);
    const report = JSON.parse(ev.stdout) as { results: { ep: string; threads: number }[] };
    expect(report.results.map((r) => [r.ep, r.threads])).toEqual([
      ['cpu', 2],
      ['wasm', 2],
    ]);

    const iris = join(ROOT, 'models/iris-mlp.onnx');
    const out = join(mkdtempSync(join(tmpdir(), 'alrelu-threads-')), 'iris.finetuned.onnx');
    const ft = await runCli(['finetune', iris, '--data', 'iris', '--epochs', '1', '--threads', '1', '-o', out, '--force', '--json']);
    expect(ft.code, ft.stderr).toBe(0);
    expect((JSON.parse(ft.stdout) as { threads: number }).threads).toBe(1);

    const cv = await runCli([model, '--verify', '--dry-run', '--threads', '3', '--json']);
    expect(cv.code, cv.stderr).toBe(0);
    expect((JSON.parse(cv.stdout) as { verify: { threads: number } }).verify.threads).toBe(3);

    const dr = await runCli(['doctor', '--ep', 'cpu', '--threads', '2']);
    expect(dr.code, dr.stderr).toBe(0);
    expect(dr.stderr).toMatch(/2 thread\(s\)/);

    for (const args of [
      ['eval', model, '--data', 'mnist', '--threads', '0'],
      ['finetune', iris, '--data', 'iris', '--threads', 'two'],
      [model, '--verify', '--threads', '-1'],
      ['doctor', '--threads', '1.5'],
    ]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(errorLine(r)).toMatch(/--threads/);
    }
  });
});
