/** `alrelu-convert eval <model.onnx...> --data <spec> --ep <list>`: accuracy, agreement and latency per provider. */
import { basename } from 'node:path';
import type { Command } from 'commander';
import { checkOutputs, writeFileAtomic } from '../atomic.js';
import { checkSplit } from '../data/split.js';
import { UserError } from '../errors.js';
import { evaluate, failuresOf } from '../eval/evaluate.js';
import { formatSummary, renderHtml } from '../eval/report.js';
import type { EvalReport, EvaluateOptions, RunFailed } from '../eval/types.js';
import { parseEpList } from '../runtime/index.js';
import {
  addEvalDataOptions,
  dataInputs,
  dataOptions,
  modelInputs,
  parseInteger,
  parseNumber,
  parseThreads,
  parseWebgpuAdapter,
  preprocessOptions,
  type EvalDataCliOptions,
} from './options.js';
import { printable } from '../printable.js';
import { action, printJson, progressBar, say, withFlag, type GlobalOptions } from './run.js';

export interface EvalCliOptions extends GlobalOptions, EvalDataCliOptions {
  ep: string;
  report?: string;
  force?: boolean;
}

export function evaluateOptions(models: string[], o: EvalCliOptions): EvaluateOptions {
  return {
    models,
    data: o.data,
    eps: [...new Set(parseEpList(o.ep))],
    ...(o.split !== undefined ? { split: checkSplit(o.split) } : {}),
    ...(o.seed !== undefined ? { seed: parseInteger('--seed', o.seed, 0) } : {}),
    ...(o.limit !== undefined ? { maxSamples: parseInteger('--limit', o.limit, 1) } : {}),
    ...(o.batchSize !== undefined ? { batchSize: parseInteger('--batch-size', o.batchSize, 1) } : {}),
    ...(o.warmup !== undefined ? { warmup: parseInteger('--warmup', o.warmup, 0) } : {}),
    ...(o.tolerance !== undefined ? { tolerance: parseNumber('--tolerance', o.tolerance) } : {}),
    ...parseThreads(o.threads),
    ...parseWebgpuAdapter(o.webgpuAdapter),
    ...(o.input !== undefined ? { input: o.input } : {}),
    ...(o.output !== undefined ? { output: o.output } : {}),
    preprocess: preprocessOptions(o),
    dataOptions: dataOptions(o),
  };
}

/** The one `error:` line for failed runs: the first failure, and how many more the table shows. */
function failureLine(failed: RunFailed[]): string {
  const f = failed[0]!;
  // Provider failures already start with the EP's name; a data mismatch is about the model, not the EP.
  // A model that does not load names itself already (and says which onnxruntime it tried).
  const named = f.stage === 'open' || (f.stage === 'load' && f.error.startsWith(`${f.model}: `));
  const head = named ? f.error : f.stage === 'data' ? `${f.model}: ${withFlag(f.error)}` : `${f.ep} on ${f.model}: ${f.error}`;
  const more = failed.length > 1 ? ` (and ${failed.length - 1} more failed run${failed.length > 2 ? 's' : ''}, listed above)` : '';
  return head + more;
}

export function register(program: Command): void {
  const cmd = program
    .command('eval')
    .description('evaluate models on data across execution providers: accuracy, agreement between providers, latency')
    .argument('<models...>', 'ONNX models; the first is the baseline the others are compared with (e.g. original then converted)')
    .option('--ep <list>', 'execution providers, comma-separated: cpu,cuda,webgpu,wasm,browser-webgpu,browser-wasm', 'cpu');
  addEvalDataOptions(cmd)
    .option('--report <file>', 'also write a self-contained HTML report with charts')
    .option('--force', 'overwrite an existing report')
    .option('--json', 'print the full report as JSON on stdout')
    .option('--quiet', 'print nothing but errors')
    .option('--verbose', 'print stack traces on errors')
    .action(
      action(async (models: string[], o: EvalCliOptions) => {
        const opts = evaluateOptions(models, o);
        await checkEvalOutputs(models, o, [o.report]);
        const bar = process.stderr.isTTY && !o.quiet ? progressBar() : undefined;
        let report: EvalReport;
        try {
          report = await evaluate({ ...opts, ...(bar ? { onProgress: (p) => bar.update(p.done, p.total, `${basename(p.model)} on ${p.ep}`) } : {}) });
        } finally {
          bar?.clear();
        }
        if (o.json) printJson(report);
        else say(o, formatSummary(report));
        await finishEvaluation(o, report);
      }),
    );
}

/** Writes the HTML report when asked, then fails with one line if any run failed (after all results are out). */
export async function finishEvaluation(o: GlobalOptions & { report?: string; force?: boolean }, report: EvalReport): Promise<void> {
  if (o.report) {
    await writeFileAtomic(o.report, renderHtml(report), { replace: o.force });
    say(o, `report: ${printable(o.report)}`);
  }
  const failed = failuresOf(report);
  if (failed.length) throw new UserError('', failureLine(failed));
}

/** The rules of every output (src/atomic.ts), checked before evaluating, so a long run does not end in a refused path. */
export async function checkEvalOutputs(models: string[], o: EvalDataCliOptions & { force?: boolean }, outputs: (string | undefined)[]): Promise<void> {
  const files = outputs.filter((f): f is string => f !== undefined);
  if (files.length) await checkOutputs(files, { force: o.force, inputs: [...modelInputs(models), ...dataInputs(o.data, o.labels)] });
}
