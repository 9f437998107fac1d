/**
 * `browser-webgpu` and `browser-wasm`: onnxruntime-web inside headless Debian Chromium, driven by
 * playwright-core (never a downloaded browser). Sessions live in the page; tensors cross as binary
 * bundles over the loopback server (GET feeds, POST outputs), not as JSON through the DevTools pipe.
 * One browser and one page per runtime; every session of the runtime shares them.
 */
import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { UserError, isUserError, messageLine, messageOf } from '../errors.js';
import { Loopback } from './http.js';
import { checkFeeds } from './ort.js';
import { AUTOMATION_HTML, servePage } from './page.js';
import type { PageApi, PageInfo } from './page/api.js';
import { modelSource } from './source.js';
import { packTensors, unpackTensors } from './tensor.js';
import type { AdapterInfo, HostTensor, IoMeta, Runtime, Session, SessionOptions, WebGpuAdapterChoice } from './types.js';

export type BrowserEp = 'browser-webgpu' | 'browser-wasm';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_FIX = 'apt-get install -y chromium';

export interface BrowserRuntimeOptions {
  /** Chromium executable, default /usr/bin/chromium */
  chromium?: string;
  /**
   * browser-webgpu: 'auto' (default) Chromium's real adapter where it finds one, else a relaunch on SwiftShader;
   * 'gpu' the real adapter or a UserError; 'swiftshader' the CPU Vulkan driver that works everywhere
   */
  webgpuAdapter?: WebGpuAdapterChoice;
  /** wasm threads in the page, default min(4, cores) */
  threads?: number;
  /** launch and page start-up timeout, ms (default 60000) */
  timeoutMs?: number;
}

export type { PageApi, PageInfo } from './page/api.js';

type PageWindow = { __alrelu: PageApi };

/**
 * How Node reaches a page's API: through playwright's page.evaluate for a Chromium we launched, or
 * through an HTTP command channel for a page the user opened themselves (remote.ts).
 */
export type PageCall = <K extends keyof PageApi>(op: K, args: Parameters<PageApi[K]>) => Promise<Awaited<ReturnType<PageApi[K]>>>;

/** One run inside the page: which model (as given to load) and how long session.run took there. */
export interface PageTiming {
  model: string;
  ms: number;
}

/**
 * Chromium's command line. The sandbox confines a renderer that a hostile model or page might take
 * over; Chromium refuses to start sandboxed as root, so only root gets --no-sandbox.
 * 'gpu': WebGPU on Linux needs Chromium's Vulkan feature, and headless Chromium blocklists many GPUs (it
 * checks its blocklist for the display stack it does not use); 'swiftshader' pins the CPU adapter.
 * ('--use-angle=vulkan', which some guides add, crashed the page here when no GPU was present.)
 */
export function chromiumArgs(ep: BrowserEp | 'serve', adapter: 'swiftshader' | 'gpu' = 'swiftshader', root = isRoot()): string[] {
  const args = ['--headless=new', ...(root ? ['--no-sandbox'] : []), '--disable-background-networking', '--disable-component-update', '--disable-sync'];
  if (ep === 'browser-wasm') return args;
  args.push('--enable-unsafe-webgpu');
  if (adapter === 'swiftshader') args.push('--use-webgpu-adapter=swiftshader');
  else args.push('--enable-features=Vulkan', '--ignore-gpu-blocklist');
  return args;
}

/** What a launch with Chromium's own adapter choice found, as a reason not to use it. */
function notHardware(info: PageInfo): string | undefined {
  if (!info.adapter) return info.gpu ? 'Chromium found no WebGPU adapter' : 'Chromium has no navigator.gpu';
  if (info.software) return `Chromium's only adapter is ${info.adapter}, a software (CPU) one`;
  return undefined;
}

/** A UserError's cause without its "subject: " prefix. */
function causeOf(e: unknown, subject: string): string {
  const m = messageOf(e);
  return m.startsWith(`${subject}: `) ? m.slice(subject.length + 2) : m;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Launches Debian's Chromium; a missing binary is a UserError with the apt command. */
export async function launchChromium(
  ep: BrowserEp | 'serve',
  opts: BrowserRuntimeOptions = {},
  adapter: 'swiftshader' | 'gpu' = 'swiftshader',
): Promise<Browser> {
  const exe = opts.chromium ?? CHROMIUM;
  if (!existsSync(exe)) throw new UserError(ep, `Chromium not found at ${exe}; fix: ${CHROMIUM_FIX}`);
  // Imported here, not at the top: doctor and serve import this module, and through them every CLI
  // start would pay for loading playwright-core (about 0.4 s) even for `convert`.
  const { chromium } = await import('playwright-core');
  try {
    const args = chromiumArgs(ep, adapter);
    // playwright adds --no-sandbox itself unless told that the sandbox stays
    return await chromium.launch({
      executablePath: exe,
      headless: true,
      args,
      chromiumSandbox: !args.includes('--no-sandbox'),
      timeout: opts.timeoutMs ?? 60_000,
    });
  } catch (e) {
    throw new UserError(ep, `Chromium at ${exe} failed to start: ${messageLine(messageOf(e), 'first')}`);
  }
}

/** A page call that cannot hang the command: a GPU process that never answers becomes an error. */
async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** page.evaluate as a PageCall; the callback is serialized into the page and reaches Node values only through its argument. */
function playwrightCall(page: Page): PageCall {
  return ((op: keyof PageApi, args: unknown[]) =>
    page.evaluate((a) => ((window as unknown as PageWindow).__alrelu[a.op] as (...x: unknown[]) => Promise<unknown>)(...a.args), { op, args })) as PageCall;
}

export class BrowserRuntime implements Runtime {
  private sessionIds = new Set<number>();
  private seq = 0;
  private pageErrors: string[] = [];
  /** every timed-or-not run in order, as measured inside the page */
  private timings: PageTiming[] = [];

  private constructor(
    readonly ep: BrowserEp,
    private readonly call: PageCall,
    private readonly server: Loopback,
    /** what the page found: threads, isolation, WebGPU adapter */
    readonly info: PageInfo,
    private readonly shutdown: () => Promise<void>,
    /** browser-webgpu: the adapter in use and how it was chosen */
    readonly adapter?: AdapterInfo,
  ) {}

  /**
   * A runtime over a page someone else started (the user's own browser, for `serve`): the caller owns
   * the server and the page; close() only forgets the sessions.
   */
  static attach(ep: BrowserEp, server: Loopback, call: PageCall, info: PageInfo): BrowserRuntime {
    return new BrowserRuntime(ep, call, server, info, async () => undefined);
  }

  /**
   * browser-webgpu with 'auto' launches Chromium with its own adapter choice first and, when that is no
   * hardware adapter (none, a crash, or Chromium's SwiftShader fallback), launches it again pinned to
   * SwiftShader: the configuration every test here runs, rather than whatever Chromium fell back to.
   */
  static async open(ep: BrowserEp, opts: BrowserRuntimeOptions = {}): Promise<BrowserRuntime> {
    const choice = opts.webgpuAdapter ?? 'auto';
    if (ep !== 'browser-webgpu') return BrowserRuntime.launch(ep, opts, 'swiftshader');
    const adapterOf = (rt: BrowserRuntime, fallback?: string): BrowserRuntime =>
      new BrowserRuntime(ep, rt.call, rt.server, rt.info, rt.shutdown, {
        name: rt.info.adapter ?? 'none',
        software: !!rt.info.software,
        choice,
        ...(fallback ? { fallback } : {}),
      }).withErrors(rt.pageErrors);
    if (choice === 'swiftshader') return adapterOf(await BrowserRuntime.launch(ep, opts, 'swiftshader'));
    let why: string;
    try {
      const rt = await BrowserRuntime.launch(ep, opts, 'gpu');
      const no = notHardware(rt.info);
      if (!no) return adapterOf(rt);
      await rt.close();
      why = no;
    } catch (e) {
      if (!isUserError(e)) throw e;
      why = `Chromium with its own adapter choice failed: ${causeOf(e, ep)}`;
    }
    if (choice === 'gpu') {
      throw new UserError(
        ep,
        `no hardware WebGPU adapter: ${why}; fix: install the GPU's Vulkan driver and libvulkan1 (check with \`vulkaninfo --summary\`), or ask for the adapter 'auto' or 'swiftshader' to run on the CPU`,
      );
    }
    return adapterOf(await BrowserRuntime.launch(ep, opts, 'swiftshader'), why);
  }

  private withErrors(errors: string[]): this {
    this.pageErrors = errors;
    return this;
  }

  private static async launch(ep: BrowserEp, opts: BrowserRuntimeOptions, adapter: 'swiftshader' | 'gpu'): Promise<BrowserRuntime> {
    const server = await Loopback.start();
    let browser: Browser | undefined;
    try {
      server.set('index.html', { body: AUTOMATION_HTML, type: 'text/html; charset=utf-8' });
      servePage(server);
      browser = await launchChromium(ep, opts, adapter);
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      await page.goto(server.base + 'index.html', { timeout: opts.timeoutMs ?? 60_000 });
      await page
        .waitForFunction(() => (window as unknown as Partial<PageWindow>).__alrelu !== undefined, undefined, { timeout: opts.timeoutMs ?? 60_000 })
        .catch(() => {
          throw new UserError(ep, `the runner page did not start: ${errors.join('; ') || 'no error reported'}`);
        });
      const call = playwrightCall(page);
      const info = await withTimeout(
        call('init', [opts.threads ?? 0]),
        opts.timeoutMs ?? 60_000,
        'the runner page did not answer (asking for the WebGPU adapter)',
      );
      if (ep === 'browser-webgpu' && !info.adapter && adapter === 'swiftshader') {
        throw new UserError(
          ep,
          info.gpu
            ? 'Chromium exposes WebGPU but found no adapter, not even SwiftShader; fix: check that libvulkan1 is installed (apt-get install -y libvulkan1)'
            : 'Chromium has no navigator.gpu; fix: a Chromium with WebGPU (113+) started with --enable-unsafe-webgpu',
        );
      }
      const b = browser;
      const rt = new BrowserRuntime(ep, call, server, info, async () => {
        await b.close().catch(() => undefined);
        await server.close();
      });
      rt.pageErrors = errors;
      return rt;
    } catch (e) {
      await browser?.close().catch(() => undefined);
      await server.close();
      if (e instanceof UserError) throw e;
      throw new UserError(ep, messageLine(messageOf(e), 'first'));
    }
  }

  get threads(): number {
    return this.info.threads;
  }

  /** Runs so far with the time session.run took inside the page, oldest first. */
  pageTimings(): readonly PageTiming[] {
    return this.timings;
  }

  async load(model: string | Uint8Array, options: SessionOptions = {}): Promise<Session> {
    if (options.keepOnDevice?.length) throw new UserError('keepOnDevice', `${this.ep} keeps tensors in the page; it has no device handles for Node`);
    const src = await modelSource(model);
    const id = ++this.seq;
    const modelPath = `model/${id}/model.onnx`;
    const modelUrl = this.server.set(modelPath, { body: src.bytes, type: 'application/octet-stream' });
    const external = src.external.map((e) => ({
      path: e.path,
      url: this.server.set(`model/${id}/${e.path}`, { body: e.data, type: 'application/octet-stream' }),
    }));
    const webEp = this.ep === 'browser-webgpu' ? 'webgpu' : 'wasm';
    let loaded: { id: number; inputs: IoMeta[]; outputs: IoMeta[] };
    try {
      loaded = await this.call('load', [modelUrl, external, webEp, options.optimization ?? 'all']);
    } catch (e) {
      throw new UserError(src.label, `onnxruntime-web (${this.ep}) cannot load the model: ${this.explain(e)}`);
    } finally {
      // The page holds the session now; the server need not keep the bytes.
      this.server.unset(modelPath);
      for (const e of src.external) this.server.unset(`model/${id}/${e.path}`);
    }
    this.sessionIds.add(loaded.id);
    const { inputs, outputs } = loaded;
    return {
      inputs,
      outputs,
      run: (feeds) => this.run(loaded.id, src.label, inputs, feeds),
      release: async () => {
        if (!this.sessionIds.delete(loaded.id)) return;
        await this.call('release', [loaded.id]);
      },
    };
  }

  private async run(sid: number, label: string, inputs: IoMeta[], feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
    if (!this.sessionIds.has(sid)) throw new Error('session was released');
    checkFeeds(inputs, feeds);
    const n = ++this.seq;
    const feedsPath = `feeds/${n}`;
    const resultPath = `result/${n}`;
    let result: Uint8Array | undefined;
    const feedsUrl = this.server.set(feedsPath, { body: packTensors(feeds), type: 'application/octet-stream' });
    const resultUrl = this.server.onPost(resultPath, (body) => {
      result = body;
    });
    try {
      const ms = await this.call('run', [sid, feedsUrl, resultUrl]);
      this.timings.push({ model: label, ms });
    } catch (e) {
      throw new UserError(this.ep, `run failed: ${this.explain(e)}`);
    } finally {
      this.server.unset(feedsPath);
      this.server.offPost(resultPath);
    }
    if (!result) throw new Error('the page finished the run without posting outputs');
    return unpackTensors(result);
  }

  private explain(e: unknown): string {
    const extra = this.pageErrors.splice(0).filter((m) => !m.includes('favicon'));
    return messageLine(messageOf(e), 'first') + (extra.length ? ` (page: ${extra.slice(-3).join('; ')})` : '');
  }

  async close(): Promise<void> {
    this.sessionIds.clear();
    await this.shutdown();
  }
}
