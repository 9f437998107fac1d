/**
 * A page the user opens in their own browser, driven over HTTP instead of playwright: the page long-polls
 * GET cmd for the next call of the runner API (runtime/page/runner.ts), runs it, and POSTs the reply. A second
 * request, GET presence, stays open for the page's lifetime, so a closed or reloaded tab is noticed
 * at once (the browser drops the connection) and pending calls fail instead of hanging.
 *
 * Only the first page to say hello gets the job; a second tab is told so and does nothing.
 */
import { UserError } from '../errors.js';
import type { PageApi, PageCall, PageInfo } from '../runtime/browser.js';
import { CONTROL_BODY_BYTES, type Loopback } from '../runtime/http.js';
import { RUNNER, servePage } from '../runtime/page.js';

/** What the page reports when it connects. */
export interface PageHello extends PageInfo {
  userAgent: string;
}

interface Command {
  seq: number;
  op: keyof PageApi | 'finish';
  args: unknown[];
  /** progress text the page shows while it works */
  note: string;
}

type Reply = { ok: true; value: unknown } | { ok: false; error: string };

const JSON_TYPE = 'application/json';

export class PageChannel {
  private queue: Command[] = [];
  private waiter: ((c: Command) => void) | undefined;
  private pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private seq = 0;
  private hello: PageHello | undefined;
  private helloWaiters: { resolve(h: PageHello): void; reject(e: Error): void }[] = [];
  private goneError: Error | undefined;
  /** shown in the page next to each command */
  note = '';

  constructor(
    private readonly server: Loopback,
    threads = 0,
  ) {
    server.set('index.html', { body: SERVE_HTML, type: 'text/html; charset=utf-8' });
    servePage(server);
    server.set('serve.mjs', { body: SERVE_JS, type: 'text/javascript' });
    server.set('job.json', { body: JSON.stringify({ threads }), type: JSON_TYPE });
    server.onPost('hello', (body) => this.onHello(body), CONTROL_BODY_BYTES);
    server.onGet('cmd', (gone) => this.nextCommand(gone));
    server.onGet('presence', (gone) => this.presence(gone));
    server.onPost('reply', (body) => this.onReply(body), CONTROL_BODY_BYTES);
  }

  /** The URL to open. */
  get url(): string {
    return this.server.base + 'index.html';
  }

  /** Resolves when a page has connected; rejects after `timeoutMs` (0 or undefined: wait for ever). */
  waitForPage(timeoutMs?: number): Promise<PageHello> {
    if (this.hello) return Promise.resolve(this.hello);
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      this.helloWaiters.push(w);
      if (timeoutMs) {
        const t = setTimeout(() => {
          this.helloWaiters = this.helloWaiters.filter((x) => x !== w);
          reject(new UserError('serve', `no browser opened ${this.url} within ${Math.round(timeoutMs / 1000)} s`));
        }, timeoutMs);
        t.unref?.();
      }
    });
  }

  /** The runner API of the connected page, as BrowserRuntime wants it. */
  readonly call: PageCall = ((op: keyof PageApi, args: unknown[]) => this.send(op, args)) as PageCall;

  /**
   * Tells the page it is done (it shows `message`). Resolves once the page has picked the message up,
   * or after `waitMs` when it does not (it may be gone), so the server can then close.
   */
  async finish(message: string, waitMs = 2000): Promise<void> {
    if (this.goneError || !this.hello) return;
    const c: Command = { seq: ++this.seq, op: 'finish', args: [message], note: '' };
    this.enqueue(c);
    const deadline = Date.now() + waitMs;
    while (this.queue.includes(c) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // the poll's answer is being written now; let it reach the socket before the server closes
    await new Promise((r) => setTimeout(r, 50));
  }

  private send(op: keyof PageApi, args: unknown[]): Promise<unknown> {
    if (this.goneError) return Promise.reject(this.goneError);
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      this.enqueue({ seq, op, args, note: this.note });
    });
  }

  private enqueue(c: Command): void {
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w(c);
    } else {
      this.queue.push(c);
    }
  }

  private onHello(body: Uint8Array): void {
    if (this.hello) throw new Error('another tab is already running this job; close this one');
    this.hello = parseHello(body);
    for (const w of this.helloWaiters.splice(0)) w.resolve(this.hello);
  }

  private nextCommand(gone: AbortSignal): Promise<{ body: string; type: string }> {
    if (!this.hello) return Promise.reject(new Error('say hello first'));
    const answer = (c: Command) => ({ body: JSON.stringify(c), type: JSON_TYPE });
    const c = this.queue.shift();
    if (c) return Promise.resolve(answer(c));
    return new Promise((resolve, reject) => {
      const w = (cmd: Command) => resolve(answer(cmd));
      this.waiter = w;
      gone.addEventListener('abort', () => {
        if (this.waiter === w) this.waiter = undefined;
        reject(new Error('disconnected'));
      });
    });
  }

  private presence(gone: AbortSignal): Promise<never> {
    return new Promise((_, reject) => {
      gone.addEventListener('abort', () => {
        this.pageGone();
        reject(new Error('gone'));
      });
    });
  }

  private pageGone(): void {
    this.goneError ??= new UserError('serve', 'the browser page was closed or reloaded before the evaluation finished');
    for (const p of this.pending.values()) p.reject(this.goneError);
    this.pending.clear();
  }

  private onReply(body: Uint8Array): void {
    const r = JSON.parse(new TextDecoder().decode(body)) as Reply & { seq: number };
    const p = this.pending.get(r.seq);
    if (!p) return;
    this.pending.delete(r.seq);
    if (r.ok) p.resolve(r.value);
    else p.reject(new Error(r.error));
  }
}

/** The page's hello, checked field by field: whoever holds the URL can send one. */
function parseHello(body: Uint8Array): PageHello {
  let h: unknown;
  try {
    h = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new Error('malformed hello: not JSON');
  }
  const o = (typeof h === 'object' && h !== null ? h : {}) as Record<string, unknown>;
  const ok =
    typeof o.userAgent === 'string' &&
    (o.adapter === null || typeof o.adapter === 'string') &&
    typeof o.gpu === 'boolean' &&
    typeof o.crossOriginIsolated === 'boolean' &&
    Number.isInteger(o.threads);
  if (!ok) throw new Error('malformed hello: expected userAgent, adapter, gpu, crossOriginIsolated and threads');
  return {
    userAgent: o.userAgent as string,
    adapter: o.adapter as string | null,
    gpu: o.gpu as boolean,
    crossOriginIsolated: o.crossOriginIsolated as boolean,
    threads: o.threads as number,
  };
}

/** The page the user sees: what runs, on what, and how far it got. */
export const SERVE_HTML = `<!doctype html>
<meta charset="utf-8">
<title>alrelu evaluation</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222 }
  #status { font-weight: 600 } pre { background: #f4f4f4; padding: 1rem; overflow: auto; font-size: 13px }
  .err { color: #b00020 }
</style>
<h1>alrelu: evaluation in this browser</h1>
<p id="status">starting onnxruntime-web…</p>
<p id="env"></p>
<pre id="summary" hidden></pre>
<script type="module" src="serve.mjs"></script>
`;

/** The page's loop: connect, then run commands until told to finish. Plain JS, served as /serve.mjs. */
export const SERVE_JS = String.raw`
const status = (s, err) => { const e = document.getElementById('status'); e.textContent = s; e.className = err ? 'err' : ''; };
let api;
try {
  api = await import('./${RUNNER}');
} catch (e) {
  status('could not start onnxruntime-web: ' + (e && e.message ? e.message : e), true);
  throw e;
}
const job = await (await fetch('job.json')).json();
const info = await api.init(job.threads);
document.getElementById('env').textContent = 'WebGPU adapter: ' + (info.adapter ?? (info.gpu ? 'none found' : 'no WebGPU in this browser')) +
  ' · wasm threads: ' + info.threads + (info.crossOriginIsolated ? '' : ' (not cross-origin isolated)');
const hello = await fetch('hello', { method: 'POST', body: JSON.stringify({ ...info, userAgent: navigator.userAgent }) });
if (!hello.ok) {
  status(await hello.text(), true);
} else {
  fetch('presence').catch(() => {});
  status('connected; waiting for work');
  for (;;) {
    let cmd;
    try {
      const r = await fetch('cmd');
      if (!r.ok) { status('the command stopped: ' + await r.text(), true); break; }
      cmd = await r.json();
    } catch (e) {
      status('lost the connection to the alrelu command (it may have been stopped)', true);
      break;
    }
    if (cmd.op === 'finish') {
      status('done: the results are back in your terminal; you can close this tab');
      const pre = document.getElementById('summary');
      pre.textContent = cmd.args[0];
      pre.hidden = !cmd.args[0];
      break;
    }
    if (cmd.note) status(cmd.note);
    let reply;
    try {
      reply = { seq: cmd.seq, ok: true, value: (await api[cmd.op](...cmd.args)) ?? null };
    } catch (e) {
      reply = { seq: cmd.seq, ok: false, error: String(e && e.message ? e.message : e) };
    }
    await fetch('reply', { method: 'POST', body: JSON.stringify(reply) });
  }
}
`;
