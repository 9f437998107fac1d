/**
 * `serve` for real: headless Debian Chromium plays the user's browser and opens the printed URL.
 * With --enable-unsafe-webgpu and SwiftShader it has a WebGPU adapter (auto picks browser-webgpu);
 * without those flags it has none (auto picks browser-wasm, and --page-ep webgpu must refuse).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunOk } from '../../src/eval/types.js';
import { chromiumArgs, launchChromium } from '../../src/runtime/browser.js';
import { CONTROL_BODY_BYTES } from '../../src/runtime/http.js';
import { serve, type ServeOptions, type ServeReport } from '../../src/serve/serve.js';
import { ROOT } from '../helpers.js';
import { FIXTURES } from '../runtime/fixtures.js';

const IRIS = join(FIXTURES, 'windows-ml', 'iris_mlp', 'Network.onnx');
const RELU = join(FIXTURES, 'onnx-onnx', 'node', 'test_relu');
const MNIST = join(FIXTURES, 'onnx2c', 'mnist');

let gpu: Browser;
let plain: Browser;
beforeAll(async () => {
  [gpu, plain] = await Promise.all([launchChromium('serve'), launchChromium('browser-wasm')]);
});
afterAll(async () => {
  await Promise.all([gpu?.close(), plain?.close()]);
});

/** serve() with `browser` opening the URL as soon as it is printed. */
async function serveIn(browser: Browser, opts: Omit<ServeOptions, 'onUrl'>): Promise<ServeReport> {
  const pages: Promise<unknown>[] = [];
  try {
    return await serve({
      connectTimeoutMs: 60_000,
      ...opts,
      onUrl: (url) => {
        pages.push(browser.newPage().then((p) => p.goto(url)));
      },
    });
  } finally {
    await Promise.allSettled(pages);
    for (const ctx of browser.contexts()) await ctx.close();
  }
}

const ok = (r: ServeReport, ep: string) => r.results.find((x): x is RunOk => x.ok && x.ep === ep)!;

describe('serve in a WebGPU browser', () => {
  it('iris_mlp on iris: same accuracy as cpu, outputs within 1e-4 of cpu, page-timed latency', async () => {
    const r = await serveIn(gpu, { models: [IRIS], data: 'iris' });
    expect(r.browser).toMatchObject({ ep: 'browser-webgpu', adapter: expect.stringMatching(/swiftshader/i), latency: 'page' });
    expect(r.results.map((x) => [x.ep, x.ok])).toEqual([
      ['cpu', true],
      ['browser-webgpu', true],
    ]);
    const cpu = ok(r, 'cpu');
    const web = ok(r, 'browser-webgpu');
    if (cpu.metrics.task !== 'classification' || web.metrics.task !== 'classification') throw new Error('expected classification');
    console.log('iris top-1 cpu/browser-webgpu:', cpu.metrics.top1, web.metrics.top1, 'agreement:', r.agreement[0]?.outputs, 'page p50 ms:', web.latency.p50Ms);
    expect(web.metrics.top1).toBeCloseTo(0.98, 2); // the independent figure for this model
    expect(web.metrics.confusion).toEqual(cpu.metrics.confusion);
    expect(r.agreement).toHaveLength(1);
    expect(r.agreement[0]).toMatchObject({ referenceEp: 'cpu', ep: 'browser-webgpu' });
    for (const o of r.agreement[0]!.outputs) {
      expect(o.samples).toBe(150);
      expect(o.maxAbsDiff, o.output).toBeLessThan(1e-4);
      expect(o.argmaxAgreementPct).toBe(100);
    }
    // 150 samples in batches of 32: 2 warm-ups, then 5 timed runs measured in the page; the
    // percentiles cover the 4 full batches (the short last one would flatter them).
    expect(web.latency).toMatchObject({ batchSize: 32, warmupRuns: 2, runs: 4, samples: 150 });
    expect(web.latency.p50Ms).toBeGreaterThan(0);
  });

  it('test_data_set references: the browser matches the upstream outputs within 1e-4', async () => {
    const r = await serveIn(gpu, { models: [join(RELU, 'model.onnx')], data: RELU, compare: [] });
    const web = ok(r, 'browser-webgpu');
    if (web.metrics.task !== 'reference') throw new Error('expected reference data');
    expect(web.metrics.pass).toBe(true);
    expect(web.metrics.maxAbs).toBeLessThan(1e-4);
  });

  it('a second tab is turned away while the first runs the job', async () => {
    let url = '';
    let second: Promise<{ status: number; text: string }> | undefined;
    const r = await serve({
      models: [IRIS],
      data: 'iris',
      maxSamples: 30,
      compare: [],
      connectTimeoutMs: 60_000,
      onUrl: (u) => {
        url = u;
        void gpu.newPage().then((p) => p.goto(u));
      },
      // what a second tab's page does first; sent while the first page holds the job
      onConnect: () => {
        second = fetch(new URL('hello', url), { method: 'POST', body: '{}' }).then(async (res) => ({ status: res.status, text: await res.text() }));
      },
    }).finally(async () => {
      for (const ctx of gpu.contexts()) await ctx.close();
    });
    expect(r.results.every((x) => x.ok)).toBe(true);
    expect(await second).toEqual({ status: 409, text: 'another tab is already running this job; close this one' });
  });
});

describe('serve when the tab is closed mid-run', () => {
  it('records the browser run as failed with the reason instead of hanging', async () => {
    let closing: Promise<void> | undefined;
    const t0 = Date.now();
    const page = gpu.newPage();
    const r = await serve({
      models: [IRIS],
      data: 'iris',
      compare: [],
      connectTimeoutMs: 60_000,
      onUrl: (u) => {
        void page.then((p) => p.goto(u));
      },
      onProgress: (p) => {
        if (p.done > 0) closing ??= page.then((x) => x.close());
      },
    });
    console.log('closed tab: serve returned after', Date.now() - t0, 'ms');
    await closing;
    expect(r.results).toEqual([
      expect.objectContaining({
        ep: 'browser-webgpu',
        ok: false,
        stage: 'run',
        error: expect.stringContaining('the browser page was closed or reloaded before the evaluation finished'),
      }),
    ]);
  });
});

describe('serve in a browser without WebGPU', () => {
  it('auto runs on browser-wasm, and matches the mnist references within 1e-4', async () => {
    const r = await serveIn(plain, { models: [join(MNIST, 'model.onnx')], data: MNIST, compare: ['cpu'] });
    expect(r.browser.ep).toBe('browser-wasm');
    expect(r.browser.adapter).toBeNull();
    const web = ok(r, 'browser-wasm');
    if (web.metrics.task !== 'reference') throw new Error('expected reference data');
    expect(web.metrics.cases).toBe(3);
    expect(web.metrics.pass).toBe(true);
    // agreement with cpu, relative to the logits' size (they reach thousands)
    for (const o of r.agreement[0]!.outputs) expect(o.maxRelDiff).toBeLessThan(1e-4);
  });

  it('--page-ep webgpu refuses with the reason and the fix instead of falling back', async () => {
    await expect(serveIn(plain, { models: [IRIS], data: 'iris', pageEp: 'webgpu' })).rejects.toMatchObject({
      name: 'UserError',
      // headless Chromium on localhost has navigator.gpu but no adapter without --enable-unsafe-webgpu
      message: expect.stringMatching(/^pageEp=webgpu: the browser (has no WebGPU|exposes WebGPU but has no adapter) \(.*HeadlessChrome.*\); fix: /),
    });
  });

  it('bad input is refused before any URL is printed', async () => {
    let printed = false;
    await expect(
      serve({
        models: ['/nonexistent/model.onnx'],
        data: 'iris',
        onUrl: () => {
          printed = true;
        },
      }),
    ).rejects.toThrow(/^\/nonexistent\/model.onnx: model file not found$/);
    await expect(
      serve({
        models: [IRIS],
        data: 'no-such-set',
        onUrl: () => {
          printed = true;
        },
      }),
    ).rejects.toMatchObject({ name: 'UserError' });
    expect(printed).toBe(false);
  });
});

describe('alrelu-convert serve (CLI)', () => {
  it('prints the URL on stderr, the report as JSON on stdout, saves it, exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alrelu-serve-'));
    const save = join(dir, 'report.json');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'serve',
        IRIS,
        '--data',
        'iris',
        '--limit',
        '30',
        '--compare',
        'none',
        '--timeout',
        '60',
        '--json',
        '--save',
        save,
      ],
      { cwd: ROOT },
    );
    let stdout = '';
    let stderr = '';
    let opened = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\/[0-9a-f]+\/index\.html/.exec(stderr);
      if (m && !opened) {
        opened = true;
        void plain.newPage().then((p) => p.goto(m[0]));
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    for (const ctx of plain.contexts()) await ctx.close();
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as ServeReport;
    expect(report.eps).toEqual(['browser-wasm']);
    expect(report.data.count).toBe(30);
    expect(report.results[0]).toMatchObject({ ok: true, ep: 'browser-wasm' });
    expect(JSON.parse(readFileSync(save, 'utf8'))).toEqual(report);
  });
});

/** One request with headers a browser would not let a page set (Host), on its own connection. */
function hit(
  url: URL,
  opts: { method?: string; headers?: Record<string, string>; body?: Uint8Array; path?: string },
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      method: opts.method ?? 'GET',
      path: opts.path ?? url.pathname,
      headers: { host: url.host, ...opts.headers },
      agent: false,
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(parts).toString() }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe("serve's server admits only its own page", () => {
  it('refuses oversized, foreign-host, cross-origin and malformed requests while it waits; no page connects', async () => {
    let checks: Promise<Record<string, number | number[]>> | undefined;
    const hello = new TextEncoder().encode(JSON.stringify({ crossOriginIsolated: true, threads: 1, gpu: false, adapter: null, userAgent: 'forged' }));
    const started = serve({
      models: [IRIS],
      data: 'iris',
      compare: [],
      connectTimeoutMs: 4000,
      onUrl: (u) => {
        const url = new URL(u);
        const at = (p: string) => new URL(p, url);
        checks = (async () => ({
          page: (await hit(url, {})).status,
          // a rebinding page's requests name its own host; a foreign page's POST carries its origin
          foreignHost: (await hit(url, { headers: { host: `attacker.example:${url.port}` } })).status,
          foreignOrigin: (await hit(at('hello'), { method: 'POST', headers: { origin: 'http://attacker.example' }, body: hello })).status,
          // hello is a control message: a few MiB at most, refused unread above that
          oversized: (await hit(at('hello'), { method: 'POST', headers: { 'content-length': String(CONTROL_BODY_BYTES + 1) } })).status,
          malformed: (await hit(url, { path: `${url.pathname.replace('index.html', '')}%E0%A4%A` })).status,
          // a hello from our own origin that is not one is refused, and does not take the job
          badHellos: await Promise.all(
            ['null', '{}', 'not json', '{"userAgent":1}'].map(
              async (b) => (await hit(at('hello'), { method: 'POST', body: new TextEncoder().encode(b) })).status,
            ),
          ),
        }))();
      },
    });
    await expect(started).rejects.toThrow(/no browser opened .* within 4 s/);
    expect(await checks).toEqual({ page: 200, foreignHost: 403, foreignOrigin: 403, oversized: 413, malformed: 400, badHellos: [409, 409, 409, 409] });
  });
});

describe('Chromium launch arguments', () => {
  it('drop the sandbox only for root, where Chromium refuses to start with it', () => {
    for (const ep of ['browser-wasm', 'browser-webgpu', 'serve'] as const) {
      expect(chromiumArgs(ep, 'swiftshader', true)).toContain('--no-sandbox');
      const user = chromiumArgs(ep, 'swiftshader', false);
      expect(user.filter((a) => /sandbox/.test(a))).toEqual([]);
      // everything else is the same either way
      expect(chromiumArgs(ep, 'swiftshader', true).filter((a) => a !== '--no-sandbox')).toEqual(user);
    }
    expect(chromiumArgs('browser-wasm')).toEqual(chromiumArgs('browser-wasm', 'swiftshader', process.getuid?.() === 0));
  });
});
