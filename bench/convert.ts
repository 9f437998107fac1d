/**
 * Conversion of a ~100 MB model, end to end through the library (readModel -> convert -> writeModel),
 * against a plain copy of the same file and, where python3-onnx exists, against the Python route
 * (onnx.load + Relu nodes replaced + onnx.save). All three are timed in-process (no interpreter or
 * Node start-up) on a warm page cache, interleaved, and compared by median. Peak memory is measured
 * in a fresh child process (getrusage maxrss) above the floor of a process that has only loaded the code.
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { convert } from '../src/convert/convert.js';
import { readModel } from '../src/onnx/read.js';
import { writeModel } from '../src/onnx/write.js';
import { cnn100 } from './model.js';
import { findPython, runPythonJson, type Python } from './python.js';
import { fmt, MB, median, rotate, spread, timeMs } from './stats.js';
import { ratioRow, type BenchOptions, type Row, type Section, type SectionResult } from './types.js';

const execFileP = promisify(execFile);

/** The Python route, as a user would write it: replace each Relu by LeakyRelu + Abs (our subgraph form). */
const PY_CONVERT = String.raw`
import json, resource, sys, time
import onnx
from onnx import helper
src, dst = sys.argv[1], sys.argv[2]
try:
    floor = int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()
except OSError:
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
m = onnx.load(src)
t1 = time.perf_counter()
nodes, n = [], 0
for node in m.graph.node:
    if node.op_type == 'Relu' and node.domain in ('', 'ai.onnx'):
        mid = node.output[0] + '_alrelu_' + str(n)
        nodes.append(helper.make_node('LeakyRelu', [node.input[0]], [mid], name=node.name + '_leaky', alpha=0.01))
        nodes.append(helper.make_node('Abs', [mid], [node.output[0]], name=node.name + '_abs'))
        n += 1
    else:
        c = onnx.NodeProto()
        c.CopyFrom(node)
        nodes.append(c)
del m.graph.node[:]
m.graph.node.extend(nodes)
t2 = time.perf_counter()
onnx.save(m, dst)
t3 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({'ms': (t3 - t0) * 1e3, 'loadMs': (t1 - t0) * 1e3, 'editMs': (t2 - t1) * 1e3, 'saveMs': (t3 - t2) * 1e3,
                  'replaced': n, 'floorBytes': floor, 'peakBytes': peak * 1024}))
`;

interface PyResult {
  ms: number;
  loadMs: number;
  editMs: number;
  saveMs: number;
  replaced: number;
  floorBytes: number;
  peakBytes: number;
}
interface ChildResult {
  floorBytes: number;
  peakBytes: number;
  modelBytes: number;
  replaced: number;
  readMs: number;
  convertMs: number;
  writeMs: number;
}

/** convert-child next to this module: .js when built, .ts under tsx (execArgv carries tsx's loader). */
function childScript(): string {
  const js = fileURLToPath(new URL('./convert-child.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('./convert-child.ts', import.meta.url));
}

async function ours(input: string, output: string): Promise<number> {
  const file = await readModel(input);
  const report = convert(file.model, { form: 'subgraph' });
  if (report.replaced === 0) throw new Error('bench model has no Relu to convert');
  await writeModel(file.model, output, { sourceDir: file.dir, force: true });
  return report.replaced;
}

export const convertSection: Section = {
  name: 'convert',
  description: 'read+convert+write a ~100 MB CNN vs a file copy and vs Python onnx; peak memory',
  async run(opts: BenchOptions): Promise<SectionResult> {
    const model = await cnn100(opts.cacheDir);
    opts.log(`convert: ${model.path} (${fmt(model.bytes / MB)} MB${model.built ? ', built now' : ', cached'})`);
    const tmp = join(opts.cacheDir, 'tmp');
    await fs.mkdir(tmp, { recursive: true });
    const out = { copy: join(tmp, 'copy.onnx'), ours: join(tmp, 'ours.onnx'), python: join(tmp, 'python.onnx') };
    const skipped: string[] = [];
    const py = await findPython(['onnx']);
    if (typeof py === 'string') skipped.push(`python onnx route: ${py}`);

    type Who = 'copy' | 'ours' | 'python';
    const contenders: Who[] = typeof py === 'string' ? ['copy', 'ours'] : ['copy', 'ours', 'python'];
    const times: Record<Who, number[]> = { copy: [], ours: [], python: [] };
    const pyRuns: PyResult[] = [];
    const once = async (who: Who) => {
      // Always a fresh output file, as for a user's first conversion: replacing an existing file by
      // rename makes ext4 (auto_da_alloc) start writeback at once, which measured 3-10x slower writes.
      await fs.rm(out[who], { force: true });
      if (who === 'copy') return timeMs(() => fs.copyFile(model.path, out.copy));
      if (who === 'ours') return timeMs(() => ours(model.path, out.ours));
      const r = await runPythonJson<PyResult>(py as Python, PY_CONVERT, [model.path, out.python]);
      pyRuns.push(r);
      return r.ms;
    };
    // One untimed round warms the page cache, the JIT and Python's imports.
    for (const who of contenders) await once(who);
    const rounds = opts.quick ? 2 : 5;
    for (let r = 0; r < rounds; r++) {
      for (const who of rotate(contenders, r)) times[who].push(await once(who));
      opts.log(`convert: round ${r + 1}/${rounds}: ${contenders.map((w) => `${w} ${fmt(times[w].at(-1)!)} ms`).join(', ')}`);
    }
    await Promise.all(Object.values(out).map((p) => fs.rm(p, { force: true })));

    const med = { copy: median(times.copy), ours: median(times.ours), python: median(times.python) };
    // Paired per round (each round ran every contender once, back to back), then the median.
    const paired = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
    const rows: Row[] = [
      {
        ...ratioRow(
          'read+convert+write, ms (ours)',
          med.ours,
          'ms',
          { name: 'fs.copyFile', value: med.copy, unit: 'ms' },
          { max: 3 },
          `wall time, median of ${rounds} interleaved rounds, ratio paired per round; ours ${spread(times.ours)}; copy ${spread(times.copy)}`,
        ),
        ratio: paired(times.ours, times.copy),
      },
    ];
    if (typeof py !== 'string') {
      rows.push({
        ...ratioRow(
          'read+convert+write, ms (ours)',
          med.ours,
          'ms',
          { name: 'python onnx load+edit+save', value: med.python, unit: 'ms' },
          { max: 1 },
          `as above; python onnx ${py.versions.onnx} timed inside the interpreter: ${spread(times.python)}`,
        ),
        ratio: paired(times.ours, times.python),
      });
    }

    // Peak memory: a fresh process per measurement, so nothing from the runs above inflates it.
    const child = childScript();
    const mem: ChildResult[] = [];
    for (let i = 0; i < (opts.quick ? 1 : 2); i++) {
      await fs.rm(out.ours, { force: true });
      const { stdout } = await execFileP(process.execPath, [...process.execArgv, child, model.path, out.ours], { maxBuffer: 1 << 20 });
      mem.push(JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult);
    }
    await fs.rm(out.ours, { force: true });
    const above = Math.max(...mem.map((m) => m.peakBytes - m.floorBytes));
    const peak = Math.max(...mem.map((m) => m.peakBytes));
    rows.push(
      ratioRow(
        'peak memory above process floor, MB (ours)',
        above / MB,
        'MB',
        { name: 'model file size', value: model.bytes / MB, unit: 'MB' },
        { max: 2 },
        `peak RSS ${fmt(peak / MB)} MB incl. ${fmt(mem[0]!.floorBytes / MB)} MB for Node + code`,
      ),
    );
    if (pyRuns.length) {
      const pyAbove = Math.max(...pyRuns.map((r) => r.peakBytes - r.floorBytes));
      rows.push(
        ratioRow(
          'peak memory above process floor, MB (python onnx)',
          pyAbove / MB,
          'MB',
          { name: 'model file size', value: model.bytes / MB, unit: 'MB' },
          undefined,
          'for reference: the same measurement for the Python route',
        ),
      );
    }
    return {
      rows,
      skipped,
      details: { modelBytes: model.bytes, samplesMs: times, childRuns: mem, pythonRuns: pyRuns, python: typeof py === 'string' ? py : py.versions },
    };
  },
};
