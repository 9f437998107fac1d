/**
 * npm run bench: every figure is a ratio against a baseline measured in the same run, so numbers from
 * different machines compare by their ratios. Table on stdout (progress on stderr), or JSON with --json.
 *
 *   node dist/bench/main.js [--quick] [--json] [--only a,b] [--skip a,b] [--webgpu] [--gpu] [--real] [--out FILE]
 */
import { availableParallelism, cpus } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable } from '../src/eval/table.js';
import { VERSION } from '../src/version.js';
import { convertSection } from './convert.js';
import { epsSection } from './eps.js';
import { formsSection } from './forms.js';
import { gpuSection } from './gpu.js';
import { writeFileAtomic } from '../src/atomic.js';
import { fmt } from './stats.js';
import { realSection } from './real.js';
import { trainSection } from './train.js';
import { goalText, meets, type Section, type SectionResult } from './types.js';

const SECTIONS: Section[] = [convertSection, formsSection, epsSection, trainSection, realSection, gpuSection];
/** Sections a plain run leaves out: gpu is its own run (--gpu), for a machine with a GPU; real (--real) takes many minutes. */
const ON_REQUEST = new Set(['gpu', 'real']);

const HELP = `usage: npm run bench -- [options]

  --quick        fewer rounds (a smoke run; noisier figures)
  --json         print one JSON document on stdout instead of the table
  --only a,b     run only these sections
  --skip a,b     skip these sections
  --threads N    intra-op threads for CPU and wasm sessions (default 1: steadiest on a shared machine)
  --clock C      cpu (default): latency as process CPU time per run, immune to other processes
                 competing for the cores; equals wall time on an idle machine with 1 thread.
                 wall: wall-clock time (use on an idle machine, or with --threads > 1)
  --webgpu       also measure node WebGPU in 'eps' (SwiftShader on CPU-only machines: slow, not a speed figure)
  --gpu          run the gpu section (alone, or with --only's): cuda, webgpu and browser-webgpu against cpu
                 on all cores, eval and fine-tune throughput and agreement; exits 1 where an NVIDIA driver is
                 loaded but an EP could not use the GPU (each such line names the fix)
  --real         run the real section (alone, or with --only's): torchvision's ResNet-18 and MobileNetV2 at
                 224x224, Adam fine-tune vs PyTorch at 1 and all threads, batch 8 and 32 (--quick: batch 8);
                 needs python3-torch, python3-torchvision, python3-onnx
  --out FILE     also write the JSON document to FILE (e.g. to bring a remote run's results back)
  --cache DIR    where generated models live (default .bench/)

sections:
${SECTIONS.map((s) => `  ${s.name.padEnd(9)} ${s.description}`).join('\n')}
`;

function list(v: string | undefined): string[] | undefined {
  return v === undefined
    ? undefined
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      only: { type: 'string' },
      skip: { type: 'string' },
      webgpu: { type: 'boolean', default: false },
      gpu: { type: 'boolean', default: false },
      real: { type: 'boolean', default: false },
      out: { type: 'string' },
      threads: { type: 'string', default: '1' },
      clock: { type: 'string', default: 'cpu' },
      cache: { type: 'string', default: '.bench' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const requested = [...(values.gpu ? ['gpu'] : []), ...(values.real ? ['real'] : [])];
  const only = requested.length ? [...(list(values.only) ?? []), ...requested] : list(values.only);
  const skip = list(values.skip) ?? [];
  for (const n of [...(only ?? []), ...skip]) {
    if (!SECTIONS.some((s) => s.name === n)) {
      process.stderr.write(`error: --only/--skip: unknown section '${n}' (known: ${SECTIONS.map((s) => s.name).join(', ')})\n`);
      return 2;
    }
  }
  const chosen = SECTIONS.filter((s) => (only ? only.includes(s.name) : !ON_REQUEST.has(s.name)) && !skip.includes(s.name));
  const log = (msg: string) => process.stderr.write(`${msg}\n`);
  const threads = Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1) {
    process.stderr.write(`error: --threads: must be a positive integer, got '${values.threads}'\n`);
    return 2;
  }
  const clock = values.clock;
  if (clock !== 'cpu' && clock !== 'wall') {
    process.stderr.write(`error: --clock: must be cpu or wall, got '${clock}'\n`);
    return 2;
  }
  const opts = { clock: clock as 'cpu' | 'wall', quick: values.quick, webgpu: values.webgpu, threads, cacheDir: resolve(values.cache), log };

  const started = performance.now();
  const results: { name: string; seconds: number; result?: SectionResult; error?: string }[] = [];
  for (const s of chosen) {
    log(`== ${s.name}: ${s.description}`);
    const t0 = performance.now();
    try {
      const result = await s.run(opts);
      results.push({ name: s.name, seconds: (performance.now() - t0) / 1000, result });
    } catch (e) {
      // One failing section must not hide the others' figures.
      const error = (e as Error).stack ?? String(e);
      log(`${s.name}: failed: ${error}`);
      results.push({ name: s.name, seconds: (performance.now() - t0) / 1000, error: (e as Error).message });
    }
  }
  const env = {
    alrelu: VERSION,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    threads,
    clock,
    quick: opts.quick,
    date: new Date().toISOString(),
    totalSeconds: (performance.now() - started) / 1000,
  };

  const failed = results.some((r) => r.error || r.result?.failures?.length);
  const doc = `${JSON.stringify({ env, sections: results }, null, 2)}\n`;
  if (values.out) {
    await writeFileAtomic(values.out, doc, { replace: true });
    log(`results: ${values.out}`);
  }
  if (values.json) {
    process.stdout.write(doc);
    return failed ? 1 : 0;
  }
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const r of results) {
    for (const row of r.result?.rows ?? []) {
      const ok = meets(row);
      notes.push(row.note ?? '');
      rows.push([
        r.name,
        row.metric,
        fmt(row.value),
        row.baseline ? `${row.baseline.name} = ${fmt(row.baseline.value)}` : '',
        row.ratio !== undefined ? `${row.ratio >= 0.095 ? row.ratio.toFixed(2) : row.ratio.toPrecision(2)}x` : '',
        goalText(row.goal),
        ok === undefined ? '' : ok ? 'yes' : 'NO',
        `[${notes.length}]`,
      ]);
    }
  }
  const out: string[] = [];
  out.push(
    `alrelu ${env.alrelu} bench, ${env.node} ${env.platform}, ${env.cores} cores (${env.cpu}), ${threads} thread${threads > 1 ? 's' : ''} per session, ${clock} clock${opts.quick ? ', --quick' : ''}`,
  );
  out.push('');
  out.push(
    formatTable(['section', 'metric', 'value', 'baseline (same run)', 'ratio', 'goal', 'met', 'note'], rows, [
      'left',
      'left',
      'right',
      'left',
      'right',
      'left',
      'left',
      'left',
    ]),
  );
  out.push('');
  notes.forEach((n, i) => {
    if (n) out.push(`[${i + 1}] ${n}`);
  });
  for (const r of results) {
    for (const s of r.result?.skipped ?? []) out.push(`${r.name}: not measured: ${s}`);
    for (const f of r.result?.failures ?? []) out.push(`${r.name}: FAILED: ${f}`);
    if (r.error) out.push(`${r.name}: FAILED: ${r.error}`);
  }
  out.push(`sections: ${results.map((r) => `${r.name} ${r.seconds.toFixed(0)} s`).join(', ')}; total ${env.totalSeconds.toFixed(0)} s`);
  process.stdout.write(`${out.join('\n')}\n`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
