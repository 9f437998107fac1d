/**
 * A loopback HTTP server (127.0.0.1, random port) that hands a page onnxruntime-web's dist files, model
 * bytes and tensor bundles, and takes results back by POST. Everything lives under a random token path
 * so other local pages and processes cannot read models or forge results. COOP/COEP headers make the
 * page cross-origin isolated, which onnxruntime-web needs for multi-threaded wasm (SharedArrayBuffer).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join } from 'node:path';

const TYPES: Record<string, string> = {
  '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html; charset=utf-8',
  '.json': 'application/json', '.map': 'application/json',
};

/** node_modules/onnxruntime-web/dist: the package's main entry lives there (package.json is not exported). */
function ortWebDist(): string {
  return dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
}

export interface Served {
  body: Uint8Array | string;
  type: string;
}

/**
 * Answers a GET when it likes (a long poll); `gone` aborts when the client disconnects first. A
 * rejection with an Error answers 409 with its message, which the page shows to the user.
 */
export type GetHandler = (gone: AbortSignal) => Promise<Served>;

export class Loopback {
  /** e.g. http://127.0.0.1:41234/3f9c.../ */
  readonly base: string;
  private gets = new Map<string, Served>();
  private posts = new Map<string, (body: Uint8Array) => void | Promise<void>>();
  private dynamic = new Map<string, GetHandler>();

  private constructor(private readonly server: ReturnType<typeof createServer>, port: number, private readonly token: string, private readonly dist: string) {
    this.base = `http://127.0.0.1:${port}/${token}/`;
  }

  /** `port` 0 (default) takes a free one; a fixed port suits an `ssh -L` forward to a remote machine. */
  static async start(port = 0): Promise<Loopback> {
    const token = randomBytes(12).toString('hex');
    const dist = ortWebDist();
    let self: Loopback | undefined;
    const server = createServer((req, res) => {
      self!.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(e));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    self = new Loopback(server, (server.address() as AddressInfo).port, token, dist);
    return self;
  }

  /** Serves `body` at base + path until unset. */
  set(path: string, served: Served): string {
    this.gets.set(path, served);
    return this.base + path;
  }

  unset(path: string): void {
    this.gets.delete(path);
  }

  /** Answers GET base + path with whatever `handler` resolves to, whenever it does. */
  onGet(path: string, handler: GetHandler): string {
    this.dynamic.set(path, handler);
    return this.base + path;
  }

  /** Calls `handler` with each POST body to base + path; a handler that throws answers 409 with its message. */
  onPost(path: string, handler: (body: Uint8Array) => void | Promise<void>): string {
    this.posts.set(path, handler);
    return this.base + path;
  }

  offPost(path: string): void {
    this.posts.delete(path);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const headers = {
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cache-control': 'no-store',
    };
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const prefix = `/${this.token}/`;
    if (!url.pathname.startsWith(prefix)) {
      res.writeHead(404, headers).end();
      return;
    }
    const path = decodeURIComponent(url.pathname.slice(prefix.length));
    if (req.method === 'POST') {
      const handler = this.posts.get(path);
      if (!handler) { res.writeHead(404, headers).end(); return; }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      try {
        await handler(new Uint8Array(Buffer.concat(chunks)));
      } catch (e) {
        res.writeHead(409, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end(e instanceof Error ? e.message : String(e));
        return;
      }
      res.writeHead(204, headers).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, headers).end(); return; }
    const dynamic = this.dynamic.get(path);
    if (dynamic) {
      const gone = new AbortController();
      res.on('close', () => { if (!res.writableFinished) gone.abort(); });
      let answer: Served;
      try {
        answer = await dynamic(gone.signal);
      } catch (e) {
        if (!res.destroyed) res.writeHead(409, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end(e instanceof Error ? e.message : String(e));
        return;
      }
      if (!res.destroyed) res.writeHead(200, { ...headers, 'content-type': answer.type }).end(answer.body);
      return;
    }
    const served = this.gets.get(path);
    if (served) {
      res.writeHead(200, { ...headers, 'content-type': served.type }).end(served.body);
      return;
    }
    // onnxruntime-web's own files: one flat folder, so a bare file name is all we accept.
    const m = /^ort\/([\w.-]+)$/.exec(path);
    if (m && TYPES[extname(m[1]!)]) {
      try {
        const body = await fs.readFile(join(this.dist, m[1]!));
        res.writeHead(200, { ...headers, 'content-type': TYPES[extname(m[1]!)]! }).end(body);
      } catch {
        res.writeHead(404, headers).end();
      }
      return;
    }
    res.writeHead(404, headers).end();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
