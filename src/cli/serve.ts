/**
 * `alrelu-convert serve <model.onnx...> --data <spec>`: prints a URL; the browser that opens it runs the
 * evaluation with onnxruntime-web on its own GPU (WebGPU, else wasm) and the results come back here.
 * Same data flags and report as `eval`; local EPs (--compare, default cpu) run too, for agreement.
 */
import { Command, Option } from 'commander';
import { writeFileAtomic } from '../atomic.js';
import { UserError } from '../errors.js';
import { failuresOf } from '../eval/evaluate.js';
import { formatSummary, renderHtml } from '../eval/report.js';
import { parseEpList } from '../runtime/index.js';
import { serve, type PageEpChoice, type ServeReport } from '../runtime/serve.js';
import { evaluateOptions, failureLine, type EvalCliOptions } from './eval.js';
import { action, printJson, say } from './run.js';

export interface ServeCliOptions extends Omit<EvalCliOptions, 'ep'> {
  pageEp: PageEpChoice;
  compare: string;
  port?: string;
  timeout?: string;
  threads?: string;
  save?: string;
}

function positiveInt(flag: string, s: string | undefined, min: number): number | undefined {
  if (s === undefined) return undefined;
  const v = Number(s);
  if (!Number.isInteger(v) || v < min) throw new UserError(flag, `expected an integer >= ${min}, found '${s}'`);
  return v;
}

function browserLine(r: ServeReport): string {
  const b = r.browser;
  const where = b.ep === 'browser-webgpu' ? `WebGPU adapter: ${b.adapter}` : `wasm, ${b.threads} thread(s)${b.crossOriginIsolated ? '' : ', not cross-origin isolated'}`;
  return `browser: ${b.userAgent}\n  ran on ${b.ep} (${where}); browser latency measured inside the page`;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('evaluate in your own browser on your own GPU: prints a URL, the page runs the models with onnxruntime-web and sends the results back')
    .argument('<models...>', 'ONNX models; the first is the baseline the others are compared with')
    .requiredOption('--data <spec>', 'built-in mnist|iris|penguins|spam (optionally name:split), or a path: .npz, .npy, .csv, an image folder, a test_data_set folder or a model folder holding them')
    .addOption(new Option('--page-ep <ep>', 'onnxruntime-web backend in the page: auto takes WebGPU when the browser has an adapter, else wasm').choices(['auto', 'webgpu', 'wasm']).default('auto'))
    .option('--compare <list>', "local EPs to evaluate too, for agreement with the browser (comma-separated; 'none' for none)", 'cpu')
    .option('--port <n>', 'listen on this port of 127.0.0.1 (default: a free one); with `ssh -L n:127.0.0.1:n` a browser on another machine can open it')
    .option('--timeout <s>', 'give up when no browser connects within s seconds (default: wait)')
    .option('--threads <n>', 'wasm threads in the page (default min(4, cores))')
    .addOption(new Option('--split <split>', 'part of a labelled set (seeded 80/10/10); default all').choices(['train', 'val', 'test', 'all']))
    .option('--seed <n>', 'seed of the train/val/test split (default 0)')
    .option('--limit <n>', 'evaluate n samples spread evenly over the set (or the first n reference cases)')
    .option('--batch-size <n>', 'samples per run when the model has a symbolic batch dimension (default 32)')
    .option('--input <name>', 'model input that receives the data (default: the only one, or the one whose shape fits)')
    .option('--output <name>', 'model output that is scored (default: the first whose size fits the labels)')
    .option('--scale <k>', 'multiply the data by k first (e.g. 255 for models trained on raw 0..255 pixels)')
    .option('--mean <list>', 'subtract per-channel (or one) mean after scaling')
    .option('--std <list>', 'then divide by per-channel (or one) standard deviation')
    .addOption(new Option('--layout <layout>', 'image layout the model expects').choices(['nchw', 'nhwc']))
    .addOption(new Option('--task <task>', 'what the labels are, for user files').choices(['classification', 'regression']))
    .option('--label-column <col>', 'CSV label column: header name or 0-based index')
    .option('--labels <file>', '.npy labels file, when the samples file is not x.npy with y.npy beside it')
    .option('--image-size <HxW>', "resize images of an image folder to this size (default: the first image's)")
    .addOption(new Option('--channels <c>', 'image channels').choices(['rgb', 'gray']))
    .option('--warmup <n>', 'untimed runs before timing (default 2)')
    .option('--tolerance <t>', 'absolute and relative tolerance against test_data_set references (default 1e-4)')
    .option('--save <file>', 'also write the JSON report to this file')
    .option('--report <file>', 'also write a self-contained HTML report with charts')
    .option('--json', 'print the full report as JSON on stdout (the URL still goes to stderr)')
    .option('--quiet', 'print nothing but the URL and errors')
    .option('--verbose', 'print stack traces on errors')
    .action(
      action(async (models: string[], o: ServeCliOptions) => {
        const base = evaluateOptions(models, { ...o, ep: 'cpu' });
        const compare = o.compare.trim() === '' || o.compare.trim() === 'none' ? [] : parseEpList(o.compare);
        const timeout = positiveInt('--timeout', o.timeout, 1);
        const port = positiveInt('--port', o.port, 1);
        const threads = positiveInt('--threads', o.threads, 1);
        const { eps: _eps, ...rest } = base;
        const report = await serve({
          ...rest,
          compare,
          pageEp: o.pageEp,
          ...(port ? { port } : {}),
          ...(threads ? { threads } : {}),
          ...(timeout ? { connectTimeoutMs: timeout * 1000 } : {}),
          // The URL is the point of the command: printed even under --quiet and --json (to stderr).
          onUrl: (url) => {
            process.stderr.write(`open this URL in a browser on this machine (WebGPU needs Chrome/Edge 113+ or another WebGPU browser):\n  ${url}\n`);
            const p = new URL(url).port;
            say(o, `from another machine: ssh -L ${p}:127.0.0.1:${p} <this host> (start serve with --port ${p} to keep it fixed), then open the same URL there`);
            say(o, 'waiting for a browser... (Ctrl-C to stop)');
          },
          onConnect: (hello, ep) => say(o, `browser connected: running on ${ep}${hello.adapter ? ` (adapter: ${hello.adapter})` : ''}`),
          summary: (r) => formatSummary(r),
        });
        if (o.json) printJson(report);
        else say(o, `${browserLine(report)}\n${formatSummary(report)}`);
        if (o.save) {
          await writeFileAtomic(o.save, JSON.stringify(report, null, 2) + '\n');
          say(o, `saved: ${o.save}`);
        }
        if (o.report) {
          await writeFileAtomic(o.report, renderHtml(report));
          say(o, `report: ${o.report}`);
        }
        const failed = failuresOf(report);
        if (failed.length) throw new UserError('', failureLine(failed));
      }),
    );
}
