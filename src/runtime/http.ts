/**
 * A loopback HTTP server (127.0.0.1, random port) that hands a page onnxruntime-web's dist files, model
 * bytes and tensor bundles, and takes results back by POST. Everything lives under a random token path
 * so other local pages and processes cannot read models or forge results. COOP/COEP headers make the
 * page cross-origin isolated, which onnxruntime-web needs for multi-threaded wasm (SharedArrayBuffer).
 *
 * Whoever reaches the port is not trusted before they prove to be our page: the Host must name this
 * server (DNS rebinding), an Origin must be our own, the URL must decode to a plain route, and a body
 * is refused (413) before it is read once it is larger than its route takes.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join } from 'node:path';

const TYPES: Record<string, string> = {
  '.mjs': 'text/javascript',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
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

/** Bodies of POSTs that carry JSON (hello, replies): a few control messages, never data. */
export const CONTROL_BODY_BYTES = 4 << 20;
/** Default cap on a POST body elsewhere (tensor bundles: one batch of a model's outputs). */
export const DEFAULT_BODY_BYTES = 1 << 30;
/** Longer request targets are refused: ours are a token and a short path (under 200 characters). */
const MAX_URL_CHARS = 2048;
/** Node answers 431 to larger request heads; a browser's are a few hundred bytes. */
const MAX_HEADER_BYTES = 8192;
/** How much of a refused body is read and thrown away, at most, before the connection is cut. */
const LINGER_BYTES = 64 << 20;
const LINGER_MS = 2000;
/** One page keeps a long poll, a presence request and a few fetches open; more is not a page of ours. */
const MAX_CONNECTIONS = 32;

export interface LoopbackOptions {
  /** 0 (default) takes a free one; a fixed port suits an `ssh -L` forward to a remote machine */
  port?: number;
  /** largest POST body, in bytes, on a route that sets no limit of its own (default DEFAULT_BODY_BYTES) */
  maxBodyBytes?: number;
}

/** An answer to a request that is refused before any handler sees it. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface PostRoute {
  handler: (body: Uint8Array) => void | Promise<void>;
  maxBytes: number;
}

export class Loopback {
  /** e.g. http://127.0.0.1:41234/3f9c.../ */
  readonly base: string;
  private gets = new Map<string, Served>();
  private posts = new Map<string, PostRoute>();
  private dynamic = new Map<string, GetHandler>();
  /**
   * Host headers naming this server. A page on another name that resolves to 127.0.0.1 (DNS
   * rebinding) sends its own name, and is refused: it would otherwise be same-origin with us.
   */
  private readonly hosts: Set<string>;

  private constructor(
    private readonly server: ReturnType<typeof createServer>,
    readonly port: number,
    private readonly token: string,
    private readonly dist: string,
    private readonly maxBodyBytes: number,
  ) {
    this.base = `http://127.0.0.1:${port}/${token}/`;
    const names = ['127.0.0.1', 'localhost', '[::1]'];
    // a browser leaves the default port out of Host
    this.hosts = new Set([...names.map((n) => `${n}:${port}`), ...(port === 80 ? names : [])]);
  }

  static async start(opts: LoopbackOptions = {}): Promise<Loopback> {
    const token = randomBytes(12).toString('hex');
    const dist = ortWebDist();
    let self: Loopback | undefined;
    const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
      self!.handle(req, res).catch(() => {
        // a client gone mid-body, or a bug of ours: no message (it may name local paths), no half-written answer
        if (res.headersSent) res.destroy();
        else res.writeHead(500, { 'content-type': 'text/plain', connection: 'close' }).end('internal error');
      });
    });
    // A client that dribbles its headers or body cannot hold a socket for long.
    server.headersTimeout = 10_000;
    server.requestTimeout = 300_000;
    server.maxConnections = MAX_CONNECTIONS;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    self = new Loopback(server, (server.address() as AddressInfo).port, token, dist, opts.maxBodyBytes ?? DEFAULT_BODY_BYTES);
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

  /**
   * Calls `handler` with each POST body to base + path; a handler that throws answers 409 with its
   * message. A body over `maxBytes` (default: the server's) is refused with 413 before it is read.
   */
  onPost(path: string, handler: (body: Uint8Array) => void | Promise<void>, maxBytes = this.maxBodyBytes): string {
    this.posts.set(path, { handler, maxBytes });
    return this.base + path;
  }

  offPost(path: string): void {
    this.posts.delete(path);
  }

  /**
   * Everything that is checked before a route is looked up: who the request is for (Host), where it
   * comes from (Origin), and whether its path can be read at all. Returns the path under the token,
   * or null for a request outside it.
   */
  private admit(req: IncomingMessage): string | null {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!this.hosts.has(host))
      throw new Refusal(403, `unexpected Host header; open the URL as printed (http://127.0.0.1:${this.port}/...), through an ssh -L forward of the same port`);
    // Browsers send Origin on every cross-origin request and on same-origin POSTs; ours is this host.
    const origin = req.headers.origin;
    if (origin !== undefined && origin.toLowerCase() !== `http://${host}`) throw new Refusal(403, 'cross-origin requests are refused');
    const target = req.url ?? '';
    if (target.length > MAX_URL_CHARS) throw new Refusal(414, 'request URL too long');
    if (!target.startsWith('/')) throw new Refusal(400, 'malformed request URL');
    const raw = target.replace(/[?#].*$/s, '');
    let path: string;
    try {
      path = decodeURIComponent(raw);
    } catch {
      throw new Refusal(400, 'malformed request URL');
    }
    // Routes are exact names; nothing that could walk a file system (dot segments, separators, NUL) is one.
    if (/[\\\0]/.test(path) || path.split('/').some((seg) => seg === '.' || seg === '..')) throw new Refusal(400, 'malformed request URL');
    const prefix = `/${this.token}/`;
    return path.startsWith(prefix) ? path.slice(prefix.length) : null;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const headers = {
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cache-control': 'no-store',
    };
    let path: string | null;
    try {
      path = this.admit(req);
    } catch (e) {
      if (!(e instanceof Refusal)) throw e;
      refuse(req, res, e.status, e.message);
      return;
    }
    // answers that come before a body is read go through refuse(), which bounds what it still reads
    if (path === null) {
      refuse(req, res, 404, 'not found');
      return;
    }
    if (req.method === 'POST') {
      const route = this.posts.get(path);
      if (!route) {
        refuse(req, res, 404, 'not found');
        return;
      }
      const body = await readBody(req, route.maxBytes);
      if (body === 'too large') {
        refuse(req, res, 413, `request body over ${route.maxBytes} bytes`);
        return;
      }
      try {
        await route.handler(body);
      } catch (e) {
        res.writeHead(409, { ...headers, 'content-type': 'text/plain; charset=utf-8' }).end(e instanceof Error ? e.message : String(e));
        return;
      }
      res.writeHead(204, headers).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      refuse(req, res, 405, 'method not allowed');
      return;
    }
    const dynamic = this.dynamic.get(path);
    if (dynamic) {
      const gone = new AbortController();
      res.on('close', () => {
        if (!res.writableFinished) gone.abort();
      });
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

/**
 * Answers `status` at once. What the client still sends of a body is read and thrown away (nothing is
 * kept), so that it sees the answer before the connection drops: closing a socket with unread data
 * resets it, and the reset can overtake the answer. A client that goes on past a bound is cut off.
 */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  req.removeAllListeners('data');
  req.resume();
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(message);
  if (req.complete) return;
  const socket = req.socket;
  // For a client that sent Connection: close, Node closes the socket as soon as the answer is out;
  // only half-close it here (the answer still ends with FIN), and let the watch below close it.
  socket.destroySoon = () => {
    if (socket.writable) socket.end();
  };
  const from = socket.bytesRead;
  const since = Date.now();
  const watch = setInterval(() => {
    if (req.complete) clearInterval(watch);
    else if (socket.bytesRead - from > LINGER_BYTES || Date.now() - since > LINGER_MS) {
      clearInterval(watch);
      socket.destroy();
    }
  }, 50);
  watch.unref();
  socket.once('close', () => clearInterval(watch));
}

/**
 * A request body of at most `limit` bytes. A declared Content-Length over it is refused before a byte
 * is read; a chunked body is counted as it arrives and refused when it passes the limit.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | 'too large'> {
  const declared = req.headers['content-length'];
  // Node's parser has checked that Content-Length is one decimal number, and delivers no more than it.
  const size = declared === undefined ? undefined : Number(declared);
  if (size !== undefined && size > limit) return Promise.resolve('too large');
  return new Promise((resolve, reject) => {
    const whole = size === undefined ? undefined : Buffer.allocUnsafe(size);
    const chunks: Buffer[] = [];
    let got = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (c: Buffer) => {
      if (got + c.length > limit || (whole && got + c.length > whole.length)) {
        stop();
        resolve('too large');
        return;
      }
      if (whole) c.copy(whole, got);
      else chunks.push(c);
      got += c.length;
    };
    const onEnd = () => {
      stop();
      resolve(new Uint8Array(whole ? whole.subarray(0, got) : Buffer.concat(chunks, got)));
    };
    const onError = (e: Error) => {
      stop();
      reject(e);
    };
    const onClose = () => {
      stop();
      reject(new Error('the client closed the connection before the body was complete'));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    req.once('close', onClose);
  });
}
