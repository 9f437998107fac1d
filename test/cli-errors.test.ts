/**
 * One exit code for user mistakes, command by command: every bad option, argument, file and model/data
 * combination exits 2 with exactly one `error: <subject>: <cause>` line, no stack trace, nothing on stdout.
 * Each row also names the cause it expects, so an exit 2 for the wrong reason fails. Most rows fail before
 * any onnxruntime session exists; the few that need one use the 131-parameter iris MLP. Run two at a time.
 *
 * Output paths, data loaders, external data and serve's HTTP side have their own tables (test/onnx,
 * test/data, test/serve/serve): the rows here are options, arguments, and model/data misfits.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../src/onnx/schema.js';
import type { ModelProto } from '../src/onnx/types.js';
import { errorLine, runCli, type CliResult } from './cli.js';
import { ROOT } from './helpers.js';

const IRIS = join(ROOT, 'models/iris-mlp.onnx');
const DIR = mkdtempSync(join(tmpdir(), 'alrelu-cli-errors-'));
const at = (name: string) => join(DIR, name);
const OUT = at('out.onnx'); // never written: every row fails first

/** iris-mlp (input [N, 4] -> Gemm fc1 [16, 4] -> Relu -> Gemm fc2 [3, 16] -> logits) with one edit. */
function irisWith(name: string, edit: (m: ModelProto) => void): string {
  const m = decodeModel(readFileSync(IRIS));
  edit(m);
  writeFileSync(at(name), encodeModel(m));
  return at(name);
}

// Bad files of every kind, made once.
writeFileSync(at('empty.onnx'), '');
writeFileSync(at('garbage.onnx'), Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 2654435761) >>> 24)));
mkdirSync(at('folder.onnx'));
// Five features for a model that takes four (a header and 30 rows, 3 classes).
writeFileSync(at('five.csv'), ['a,b,c,d,e,label', ...Array.from({ length: 30 }, (_, i) => `${i % 5},1,2,3,4,${i % 3}`)].join('\n') + '\n');
/** fc1.weight holds 64 floats as [32, 2] instead of [16, 4]: onnxruntime's shape inference refuses it at load. */
const WRONG_WEIGHT = irisWith('wrong-weight.onnx', (m) => (m.graph!.initializer!.find((t) => t.name === 'fc1.weight')!.dims = [32, 2]));
/** fc2.bias holds 2 values for 3 classes: loads, then fails in onnxruntime's Gemm at the first run. */
const SHORT_BIAS = irisWith('short-bias.onnx', (m) => {
  const b = m.graph!.initializer!.find((t) => t.name === 'fc2.bias')!;
  b.dims = [2];
  b.rawData = b.rawData!.slice(0, 8);
});
/** The feature dim made symbolic: 5-feature data passes every check before onnxruntime's Gemm. */
const SYMBOLIC = irisWith('symbolic.onnx', (m) => (m.graph!.input![0]!.type!.tensorType!.shape!.dim![1] = { dimParam: 'features' }));
const INVALID = irisWith('invalid.onnx', (m) => (m.graph!.node![1]!.input = ['nowhere']));

type Row = [args: string[], cause: RegExp];

/** Per command: the whole command line (convert is the default command), and the cause the one error line must carry. */
const TABLE: Record<string, Row[]> = {
  convert: [
    [[], /missing required argument 'model'/],
    [[IRIS, '--bogus'], /unknown option '--bogus'/],
    [[IRIS, '-o'], /option '-o, --output <file>' argument missing/],
    [[IRIS, '--alpha', 'abc'], /^error: --alpha: expected a number, found 'abc'$/],
    [[IRIS, '--form', 'bogus'], /argument 'bogus' is invalid\. Allowed choices are subgraph, fused, function/],
    [[IRIS, '--ops', 'relu,gelu'], /--ops takes relu and\/or leakyrelu, got 'gelu'/],
    [[IRIS, '--include', '/[/'], /^error: --include: '\/\[\/' is not a valid \/regular expression\/: .*Unterminated character class/],
    [[IRIS, '--external-data', '--inline-data', '-o', OUT], /^error: --external-data: cannot be combined with --inline-data$/],
    [[at('nope.onnx')], /nope\.onnx: no such file$/],
    [[at('folder.onnx')], /folder\.onnx: is a directory/],
    [[at('empty.onnx')], /empty\.onnx: is empty$/],
    [[at('garbage.onnx')], /garbage\.onnx: not an ONNX model/],
    [[INVALID, '-o', OUT], /invalid\.onnx: invalid graph: node '\/Relu' \(Relu\) input 'nowhere' is not defined$/],
  ],
  'convert --verify': [
    [[IRIS, '--verify', '--dry-run', '--dim', 'N'], /^error: --dim: expected name=value, got 'N'$/],
    [[IRIS, '--verify', '--dry-run', '--seed', 'abc'], /^error: --seed: expected a number, found 'abc'$/],
    [[IRIS, '--verify', '--dry-run', '--seed', '-1'], /^error: --seed: expected an integer >= 0/],
    [[IRIS, '--verify', '--dry-run', '--dim', 'N=99999999999'], /iris-mlp\.onnx: input 'input' of shape \[99999999999, 4\] is too large for --verify/],
    [[WRONG_WEIGHT, '--verify', '--dry-run'], /wrong-weight\.onnx: the original model does not run on onnxruntime-node CPU: .*ShapeInferenceError/],
    [[SHORT_BIAS, '--verify', '--dry-run'], /short-bias\.onnx: the original model does not run on onnxruntime-node CPU: .*bias/],
  ],
  'convert --finetune': [
    [[IRIS, '--finetune', '-o', OUT], /^error: --finetune: needs --data/],
    [[IRIS, '--finetune', '--data', 'iris', '--dry-run'], /^error: --finetune: cannot be combined with --dry-run$/],
    [[IRIS, '--finetune', '--data', 'iris', '--epochs', '0', '-o', OUT], /^error: --epochs: expected an integer >= 1, found '0'$/],
    [[IRIS, '--finetune', '--data', 'iris', '--batch-size', '-3', '-o', OUT], /^error: --batch-size: expected an integer >= 1, found '-3'$/],
    [[IRIS, '--finetune', '--data', 'iris', '--include', '/(/', '-o', OUT], /^error: --include: '\/\(\/' is not a valid \/regular expression\//],
    [[IRIS, '--finetune', '--data', 'no-such-set', '--quiet', '-o', OUT], /^error: --data no-such-set: no such file or folder, and not a built-in data set/],
    [[IRIS, '--finetune', '--data', at('five.csv'), '--quiet', '-o', OUT], /iris-mlp\.onnx: input 'input' takes shape \[N, 4\]; samples of shape \[5\]/],
  ],
  inspect: [
    [['inspect'], /missing required argument 'model'/],
    [['inspect', at('nope.onnx')], /nope\.onnx: no such file$/],
    [['inspect', at('folder.onnx')], /folder\.onnx: is a directory/],
    [['inspect', at('garbage.onnx')], /garbage\.onnx: not an ONNX model/],
  ],
  eval: [
    [['eval', IRIS], /required option '--data <spec>' not specified/],
    [['eval', '--data', 'iris'], /missing required argument 'models'/],
    [['eval', IRIS, '--data', 'iris', '--bogus'], /unknown option '--bogus'/],
    [['eval', IRIS, '--data', 'no-such-set'], /^error: --data no-such-set: no such file or folder/],
    [['eval', IRIS, '--data', 'iris', '--split', 'bogus'], /Allowed choices are train, val, test, all/],
    [['eval', IRIS, '--data', 'iris', '--limit', '0'], /^error: --limit: expected an integer >= 1, found '0'$/],
    [['eval', IRIS, '--data', 'iris', '--warmup', '-1'], /^error: --warmup: expected an integer >= 0/],
    [['eval', IRIS, '--data', 'iris', '--seed', '1.5'], /^error: --seed: expected an integer >= 0, found '1\.5'$/],
    [['eval', IRIS, '--data', 'iris', '--ep', 'cpu,tpu'], /^error: --ep: unknown execution provider 'tpu'/],
    [['eval', IRIS, '--data', 'iris', '--ep', ','], /^error: --ep: expected at least one execution provider/],
    [['eval', IRIS, '--data', 'iris', '--scale', 'abc'], /^error: --scale: expected a number/],
    [['eval', IRIS, '--data', 'iris', '--mean', '0.5,x'], /^error: --mean: expected a number, found 'x'$/],
    [['eval', IRIS, '--data', 'iris', '--quiet', '--input', 'nosuch'], /--input nosuch: no such input/],
    [['eval', IRIS, '--data', 'iris', '--quiet', '--output', 'nosuch'], /--output nosuch: no such output/],
    [['eval', IRIS, '--data', at('five.csv'), '--quiet'], /iris-mlp\.onnx: input input: expected samples of shape \[4\]/],
    [['eval', at('nope.onnx'), '--data', 'iris'], /nope\.onnx: .*(not found|no such file)/],
    [
      ['eval', WRONG_WEIGHT, '--data', 'iris', '--quiet'],
      /^error: \S*wrong-weight\.onnx: onnxruntime-node \(cpu\) cannot load the model: .*ShapeInferenceError/,
    ],
    [['eval', SHORT_BIAS, '--data', 'iris', '--quiet'], /^error: cpu on \S*short-bias\.onnx: .*Invalid bias shape/],
    [['eval', SYMBOLIC, '--data', at('five.csv'), '--quiet'], /^error: cpu on \S*symbolic\.onnx: .*Gemm.*Dimension mismatch/],
    [['eval', INVALID, '--data', 'iris', '--quiet'], /invalid\.onnx: onnxruntime-node \(cpu\) cannot load the model: .*nowhere/],
  ],
  finetune: [
    [['finetune', IRIS, '-o', OUT], /required option '--data <spec>' not specified/],
    [['finetune', IRIS, '--data', 'iris', '-o', OUT, '--epochs', '1.5'], /^error: --epochs: expected an integer >= 1, found '1\.5'$/],
    [['finetune', IRIS, '--data', 'iris', '-o', OUT, '--lr', 'abc'], /^error: --lr: expected a number, found 'abc'$/],
    [['finetune', IRIS, '--data', 'iris', '-o', OUT, '--lr', '0'], /^error: --lr: must be a number > 0/],
    [['finetune', IRIS, '--data', 'iris', '-o', OUT, '--patience', '0'], /^error: --patience: expected an integer >= 1/],
    [['finetune', IRIS, '--data', 'iris', '-o', OUT, '--max-steps', '-2'], /^error: --max-steps: expected an integer >= 1/],
    [['finetune', IRIS, '--data', 'iris', '-o', OUT, '--ep', 'tpu'], /Allowed choices are cpu, cuda, webgpu, wasm/],
    [['finetune', IRIS, '--data', 'iris', '-o', OUT, '--freeze', '/[/'], /^error: --freeze: '\/\[\/' is not a valid \/regular expression\//],
    [['finetune', IRIS, '--data', 'iris', '-o', OUT, '--input', 'nosuch'], /^error: --input nosuch: no such data input/],
    [['finetune', IRIS, '--data', 'iris', '-o', OUT, '--train-output', 'nosuch'], /^error: --train-output nosuch: no such output in \S*iris-mlp\.onnx/],
    [['finetune', INVALID, '--data', 'iris', '-o', OUT], /invalid\.onnx: invalid graph: node '\/Relu' \(Relu\) input 'nowhere' is not defined$/],
    [['finetune', WRONG_WEIGHT, '--data', 'iris', '-o', OUT], /wrong-weight\.onnx: onnxruntime-node \(cpu\) cannot load the model: .*ShapeInferenceError/],
    [['finetune', SHORT_BIAS, '--data', 'iris', '-o', OUT], /short-bias\.onnx: onnxruntime-node \(cpu\) could not run the model: .*Invalid bias shape/],
    [['finetune', SYMBOLIC, '--data', at('five.csv'), '-o', OUT], /symbolic\.onnx: onnxruntime-node \(cpu\) could not run the model: .*Dimension mismatch/],
    [
      ['finetune', SHORT_BIAS, '--data', 'iris', '--dump-gradients', at('g.json')],
      /short-bias\.onnx: onnxruntime-node \(cpu\) could not run the model: .*Invalid bias shape/,
    ],
  ],
  serve: [
    [['serve', IRIS], /required option '--data <spec>' not specified/],
    [['serve', IRIS, '--data', 'iris', '--port', 'abc'], /^error: --port: expected a number, found 'abc'$/],
    [['serve', IRIS, '--data', 'iris', '--threads', '0'], /^error: --threads: expected an integer >= 1/],
    [['serve', IRIS, '--data', 'iris', '--page-ep', 'gpu'], /Allowed choices are auto, webgpu, wasm/],
    [['serve', IRIS, '--data', 'iris', '--compare', 'tpu'], /^error: --compare: unknown execution provider 'tpu'/],
    [['serve', at('nope.onnx'), '--data', 'iris', '--timeout', '1'], /nope\.onnx: .*(not found|no such file)/],
  ],
  doctor: [
    [['doctor', '--bogus'], /unknown option '--bogus'/],
    [['doctor', '--ep', 'tpu'], /^error: --ep: unknown execution provider 'tpu'/],
    [['doctor', '--require', 'tpu'], /^error: --require: unknown execution provider 'tpu'/],
    [
      ['doctor', '--quiet', '--ep', 'browser-wasm', '--require', 'browser-wasm', '--chromium', at('no-chromium')],
      /^error: --require: browser-wasm is not usable: Chromium not found/,
    ],
  ],
};

/** At most two CLI processes at once: the machine's two cores are shared. */
const slots = { free: 2, waiting: [] as (() => void)[] };
async function limited(args: string[]): Promise<CliResult> {
  if (slots.free === 0) await new Promise<void>((go) => slots.waiting.push(go));
  else slots.free--;
  try {
    return await runCli(args, { timeoutMs: 60_000 });
  } finally {
    const next = slots.waiting.shift();
    if (next) next();
    else slots.free++;
  }
}

describe.concurrent('every command: bad options and inputs exit 2 with one error line', () => {
  for (const [command, rows] of Object.entries(TABLE)) {
    for (const [args, cause] of rows) {
      it(`${command}: ${args.map((a) => a.replace(`${DIR}/`, '').replace(`${ROOT}/`, '')).join(' ') || '(no arguments)'}`, async () => {
        const r = await limited(args);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stdout).toBe('');
        // exactly one line, `error: `, no stack trace
        expect(errorLine(r)).toMatch(cause);
      });
    }
  }
});
