/**
 * `serve`: the evaluation of `eval`, run by the user's own browser on their own GPU. We start the
 * loopback server and hand out a URL; the page that opens it becomes a `browser-webgpu` (or
 * `browser-wasm`) runtime driven over HTTP (remote.ts), and `evaluate` runs on it exactly as on a
 * Chromium we launched: same data, feeding, metrics, agreement and report. Local EPs (cpu by default)
 * run too, first, so the report shows how far the browser's answers are from them.
 *
 * Latency for the browser rows is what the page measured around session.run; the HTTP transfer of
 * feeds and outputs, which Node's clock would include, is left out.
 */
import { UserError, messageOf } from '../errors.js';
import { checkModels, evaluate, prepareData } from '../eval/evaluate.js';
import { LatencyRecorder } from '../eval/latency.js';
import type { EvalReport, EvaluateOptions, RunResult } from '../eval/types.js';
import { BrowserRuntime, type BrowserEp, type PageTiming } from '../runtime/browser.js';
import { Loopback } from '../runtime/http.js';
import { PageChannel, type PageHello } from './remote.js';
import type { EpName } from '../runtime/types.js';

export type PageEpChoice = 'auto' | 'webgpu' | 'wasm';

export interface ServeOptions extends Omit<EvaluateOptions, 'eps' | 'runtimes'> {
  /** which onnxruntime-web backend the page uses: 'auto' (default) takes WebGPU when the browser has an adapter */
  pageEp?: PageEpChoice;
  /** local EPs evaluated as well, before the page's; the first is the agreement reference. Default ['cpu'] */
  compare?: EpName[];
  /** fixed port (e.g. for `ssh -L`), default a free one */
  port?: number;
  /** largest result (one batch of outputs) the page may POST back, bytes; default DEFAULT_BODY_BYTES */
  maxBodyBytes?: number;
  /** give up when no browser connects within this many ms; default: wait */
  connectTimeoutMs?: number;
  /** wasm threads in the page (default min(4, the browser's cores)) and of the --compare providers (default all cores) */
  threads?: number;
  /** called with the URL to open once the server listens */
  onUrl?: (url: string) => void;
  /** called when a page connects, with the EP it will run */
  onConnect?: (page: PageHello, ep: BrowserEp) => void;
  /** text shown in the page when it is done (e.g. the summary table) */
  summary?: (report: ServeReport) => string;
}

export interface ServeReport extends EvalReport {
  browser: {
    ep: BrowserEp;
    userAgent: string;
    adapter: string | null;
    threads: number;
    crossOriginIsolated: boolean;
    /** browser rows: measured inside the page around session.run, HTTP transfers excluded */
    latency: 'page';
  };
}

/** The page's EP: WebGPU when asked for or available (auto); asking for WebGPU without it is an error, not a fallback. */
function pickPageEp(hello: PageHello, choice: PageEpChoice): BrowserEp {
  if (choice === 'wasm') return 'browser-wasm';
  if (hello.adapter) return 'browser-webgpu';
  if (choice === 'auto') return 'browser-wasm';
  throw new UserError(
    'pageEp=webgpu',
    hello.gpu
      ? `the browser exposes WebGPU but has no adapter (${hello.userAgent}); fix: enable hardware acceleration, or in Chrome check chrome://gpu`
      : `the browser has no WebGPU (${hello.userAgent}); fix: open the URL in Chrome/Edge 113+ (or Firefox/Safari with WebGPU enabled), or use --page-ep wasm`,
  );
}

/**
 * Browser rows' latency rebuilt from the page's own clock. evaluate() runs warm-ups, then the timed
 * runs of full batches with a partial last one; the page saw the same runs in the same order.
 */
function pageLatency(result: RunResult, timings: readonly PageTiming[]): RunResult {
  if (!result.ok) return result;
  const runs = timings.filter((t) => t.model === result.model).map((t) => t.ms);
  const { batchSize: b, warmupRuns, samples } = result.latency;
  const timed = Math.ceil(samples / b);
  if (runs.length !== warmupRuns + timed) return result; // not the run pattern we expect: keep Node's clock
  const rec = new LatencyRecorder(b, warmupRuns);
  for (let i = 0; i < warmupRuns; i++) rec.warm();
  for (let i = 0; i < timed; i++) rec.record(runs[warmupRuns + i]!, Math.min(b, samples - i * b));
  return { ...result, latency: rec.summary() };
}

/** Serves the page, waits for a browser, evaluates on it (and on `compare`), and returns the report. */
export async function serve(opts: ServeOptions): Promise<ServeReport> {
  const compare = opts.compare ?? ['cpu'];
  for (const ep of compare) {
    if (ep.startsWith('browser-'))
      throw new UserError('compare', `${ep} runs in a Chromium of ours; serve compares the page with local EPs (cpu, cuda, webgpu, wasm)`);
  }
  // Everything that can be checked without the page is checked before the URL is handed out: a user
  // should not open a browser only to be told the model path was mistyped.
  checkModels(opts.models, 'serve');
  const data = await prepareData(opts);
  let server: Loopback;
  try {
    server = await Loopback.start({ port: opts.port ?? 0, ...(opts.maxBodyBytes ? { maxBodyBytes: opts.maxBodyBytes } : {}) });
  } catch (e) {
    throw new UserError(`port=${opts.port ?? 0}`, `cannot listen on 127.0.0.1: ${messageOf(e)}`);
  }
  try {
    const channel = new PageChannel(server, opts.threads ?? 0);
    opts.onUrl?.(channel.url);
    const hello = await channel.waitForPage(opts.connectTimeoutMs);
    const { onProgress } = opts;
    let ep: BrowserEp;
    let report: EvalReport;
    let rt: BrowserRuntime;
    try {
      ep = pickPageEp(hello, opts.pageEp ?? 'auto');
      opts.onConnect?.(hello, ep);
      rt = BrowserRuntime.attach(ep, server, channel.call, hello);
      report = await evaluate(
        {
          ...opts,
          eps: [...compare, ep],
          runtimes: { [ep]: rt },
          onProgress: (p) => {
            if (p.ep === ep) channel.note = `running ${p.model.split('/').pop()}: ${p.done}/${p.total}`;
            onProgress?.(p);
          },
        },
        data,
      );
    } catch (e) {
      await channel.finish(`stopped: ${messageOf(e)}`);
      throw e;
    }
    const timings = rt.pageTimings();
    const out: ServeReport = {
      ...report,
      results: report.results.map((r) => (r.ep === ep ? pageLatency(r, timings) : r)),
      browser: {
        ep,
        userAgent: hello.userAgent,
        adapter: hello.adapter,
        threads: hello.threads,
        crossOriginIsolated: hello.crossOriginIsolated,
        latency: 'page',
      },
    };
    await channel.finish(opts.summary?.(out) ?? '');
    return out;
  } finally {
    await server.close();
  }
}
