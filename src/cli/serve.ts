/**
 * `alrelu-convert serve <model.onnx...> --data <spec>`: prints a URL; the browser that opens it runs the
 * evaluation with onnxruntime-web on its own GPU (WebGPU, else wasm) and the results come back here.
 * Same data flags and report as `eval`; local EPs (--compare, default cpu) run too, for agreement.
 */
import { constants } from 'node:buffer';
import { type Command, Option } from 'commander';
import { writeFileAtomic } from '../atomic.js';
import { UserError } from '../errors.js';
import { formatSummary } from '../eval/report.js';
import { printable } from '../printable.js';
import { DEFAULT_BODY_BYTES } from '../runtime/http.js';
import { parseEpList } from '../runtime/index.js';
import { serve, type PageEpChoice, type ServeReport } from '../serve/serve.js';
import { checkEvalOutputs, evaluateOptions, finishEvaluation, type EvalCliOptions } from './eval.js';
import { addEvalDataOptions, parseInteger } from './options.js';
import { action, printJson, say } from './run.js';

export interface ServeCliOptions extends Omit<EvalCliOptions, 'ep'> {
  pageEp: PageEpChoice;
  compare: string;
  port?: string;
  timeout?: string;
  threads?: string;
  maxUpload?: string;
  save?: string;
}

const { MAX_LENGTH } = constants;

const positiveInt = (flag: string, s: string | undefined): number | undefined => (s === undefined ? undefined : parseInteger(flag, s, 1));

function browserLine(r: ServeReport): string {
  const b = r.browser;
  // the page says what it is: its words are text from outside, kept to one line each
  const where =
    b.ep === 'browser-webgpu'
      ? `WebGPU adapter: ${printable(String(b.adapter))}`
      : `wasm, ${b.threads} thread(s)${b.crossOriginIsolated ? '' : ', not cross-origin isolated'}`;
  return `browser: ${printable(b.userAgent)}\n  ran on ${b.ep} (${where}); browser latency measured inside the page`;
}

export function register(program: Command): void {
  const cmd = program
    .command('serve')
    .description('evaluate in your own browser on your own GPU: prints a URL, the page runs the models with onnxruntime-web and sends the results back')
    .argument('<models...>', 'ONNX models; the first is the baseline the others are compared with')
    .addOption(
      new Option('--page-ep <ep>', 'onnxruntime-web backend in the page: auto takes WebGPU when the browser has an adapter, else wasm')
        .choices(['auto', 'webgpu', 'wasm'])
        .default('auto'),
    )
    .option('--compare <list>', "local EPs to evaluate too, for agreement with the browser (comma-separated; 'none' for none)", 'cpu')
    .option('--port <n>', 'listen on this port of 127.0.0.1 (default: a free one); with `ssh -L n:127.0.0.1:n` a browser on another machine can open it')
    .option('--timeout <s>', 'give up when no browser connects within s seconds (default: wait)')
    .option(
      '--max-upload <MiB>',
      `largest batch of outputs the page may send back in one request (default ${DEFAULT_BODY_BYTES >> 20}); larger ones are refused before they are read`,
    );
  addEvalDataOptions(cmd)
    .option('--save <file>', 'also write the JSON report to this file')
    .option('--report <file>', 'also write a self-contained HTML report with charts')
    .option('--force', 'overwrite an existing --save or --report file')
    .option('--json', 'print the full report as JSON on stdout (the URL still goes to stderr)')
    .option('--quiet', 'print nothing but the URL and errors')
    .option('--verbose', 'print stack traces on errors')
    .action(
      action(async (models: string[], o: ServeCliOptions) => {
        const base = evaluateOptions(models, { ...o, ep: 'cpu' });
        await checkEvalOutputs(models, o, [o.save, o.report]);
        const compare = o.compare.trim() === '' || o.compare.trim() === 'none' ? [] : parseEpList(o.compare, '--compare');
        const timeout = positiveInt('--timeout', o.timeout);
        const port = positiveInt('--port', o.port);
        const threads = base.threads;
        const maxUpload = positiveInt('--max-upload', o.maxUpload);
        if (maxUpload && maxUpload * 2 ** 20 > MAX_LENGTH)
          throw new UserError('--max-upload', `at most ${MAX_LENGTH / 2 ** 20} MiB, the largest buffer Node holds; found ${maxUpload}`);
        const { eps: _eps, ...rest } = base;
        const report = await serve({
          ...rest,
          compare,
          pageEp: o.pageEp,
          ...(port ? { port } : {}),
          ...(threads ? { threads } : {}),
          ...(maxUpload ? { maxBodyBytes: maxUpload * 2 ** 20 } : {}),
          ...(timeout ? { connectTimeoutMs: timeout * 1000 } : {}),
          // The URL is the point of the command: printed even under --quiet and --json (to stderr).
          onUrl: (url) => {
            process.stderr.write(`open this URL in a browser on this machine (WebGPU needs Chrome/Edge 113+ or another WebGPU browser):\n  ${url}\n`);
            const p = new URL(url).port;
            say(
              o,
              `from another machine: ssh -L ${p}:127.0.0.1:${p} <this host> (start serve with --port ${p} to keep it fixed), then open the same URL there`,
            );
            say(o, 'waiting for a browser... (Ctrl-C to stop)');
          },
          onConnect: (hello, ep) => say(o, `browser connected: running on ${ep}${hello.adapter ? ` (adapter: ${printable(hello.adapter)})` : ''}`),
          summary: (r) => formatSummary(r),
        });
        if (o.json) printJson(report);
        else say(o, `${browserLine(report)}\n${formatSummary(report)}`);
        if (o.save) {
          await writeFileAtomic(o.save, JSON.stringify(report, null, 2) + '\n', { replace: o.force });
          say(o, `saved: ${printable(o.save)}`);
        }
        await finishEvaluation(o, report);
      }),
    );
}
