/**
 * The loopback server under hostile requests, over real sockets on 127.0.0.1: bodies larger than a
 * route takes, malformed and walking URLs, foreign Host and Origin headers, too many connections.
 * Every loop is bounded; nothing leaves the loopback interface.
 */
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Loopback } from '../../src/runtime/http.js';

const MiB = 2 ** 20;
/** the route below that takes bodies up to CAP bytes */
const CAP = 8 * MiB;

let server: Loopback;
let port: number;
let token: string;
const received: Uint8Array[] = [];

beforeAll(async () => {
  server = await Loopback.start();
  port = server.port;
  token = new URL(server.base).pathname.split('/')[1]!;
  server.set('page.html', { body: '<p>hello</p>', type: 'text/html' });
  server.onPost(
    'upload',
    (body) => {
      received.push(body);
    },
    CAP,
  );
});
afterAll(async () => {
  await server.close();
});

interface Answer {
  status: number;
  text: string;
  /** body bytes the client got onto the socket before the answer came */
  sent: number;
  ms: number;
}

interface Ask {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** a body: these bytes, or `stream` repeated up to `upTo` bytes (chunked unless a Content-Length is given) */
  body?: Uint8Array;
  stream?: { chunk: Buffer; upTo: number };
  /** a client that keeps its connection open (a browser) rather than sending Connection: close */
  keepAlive?: boolean;
}

/**
 * One request on its own connection. A streamed body is written chunk by chunk, waiting for the
 * socket to drain (so the client holds no backlog), until the answer arrives or `upTo` is reached.
 */
function ask(a: Ask): Promise<Answer> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req = request({
      host: '127.0.0.1',
      port,
      method: a.method ?? 'GET',
      path: a.path,
      headers: { host: `127.0.0.1:${port}`, ...a.headers },
      agent: a.keepAlive ? new Agent({ keepAlive: true }) : false,
    });
    req.on('response', (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, text: Buffer.concat(parts).toString(), sent, ms: Date.now() - t0 }));
      res.on('error', () => resolve({ status: res.statusCode!, text: Buffer.concat(parts).toString(), sent, ms: Date.now() - t0 }));
    });
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    if (a.stream) {
      const { chunk, upTo } = a.stream;
      const pump = () => {
        while (!answered && !req.destroyed && sent < upTo) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        if (!answered && !req.destroyed) req.end();
      };
      pump();
    } else {
      req.end(a.body);
    }
  });
}

/** A request written byte for byte, for what node's client will not send (no Host, absolute targets). */
function raw(lines: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => {
      got += d.toString('latin1');
    });
    s.on('end', () => resolve(got));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.setTimeout(10_000, () => s.destroy());
    s.end(lines);
  });
}

const rss = () => process.memoryUsage().rss;

describe('loopback server: requests that are ours', () => {
  it('serves a page and takes a same-origin POST, under every loopback name of the bound port', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
      expect(await ask({ path: `/${token}/page.html`, headers: { host } })).toMatchObject({ status: 200, text: '<p>hello</p>' });
    }
    received.length = 0;
    const body = new Uint8Array(CAP).map((_, i) => i % 251);
    expect((await ask({ method: 'POST', path: `/${token}/upload`, headers: { origin: `http://127.0.0.1:${port}` }, body })).status).toBe(204);
    // a body of exactly the cap, streamed in chunks, is taken whole too
    const chunk = Buffer.from(body.subarray(0, MiB));
    expect((await ask({ method: 'POST', path: `/${token}/upload`, stream: { chunk, upTo: CAP } })).status).toBe(204);
    expect(received.map((r) => r.length)).toEqual([CAP, CAP]);
    expect(Buffer.from(received[0]!).equals(Buffer.from(body))).toBe(true);
    expect(received[1]![CAP - 1]).toBe(chunk[MiB - 1]);
  });

  it("serves onnxruntime-web's own files by their bare name", async () => {
    const r = await ask({ path: `/${token}/ort/ort.min.mjs` });
    expect(r.status).toBe(200);
    expect(r.text.length).toBeGreaterThan(1000);
  });
});

describe('loopback server: bodies larger than the route takes', () => {
  it('a declared 1.5 GB body is refused with 413 before it is read; memory does not grow with it', async () => {
    received.length = 0;
    const before = rss();
    // The client keeps sending, as a careless one would, for up to 256 MiB; the server reads none of it.
    const r = await ask({
      method: 'POST',
      path: `/${token}/upload`,
      headers: { 'content-length': String(1.5e9) },
      stream: { chunk: Buffer.alloc(MiB, 7), upTo: 256 * MiB },
    });
    console.log('declared 1.5 GB: answered', r.status, 'after', r.ms, 'ms and', r.sent / MiB, 'MiB sent; rss grew', ((rss() - before) / MiB).toFixed(1), 'MiB');
    expect(r.status).toBe(413);
    expect(r.ms).toBeLessThan(5000);
    // loopback socket buffers hold a few MiB; the server has not taken the body in
    expect(r.sent).toBeLessThan(64 * MiB);
    expect(rss() - before).toBeLessThan(64 * MiB);
    expect(received).toEqual([]);
    // the declaration alone is enough: the answer comes before any byte of the body
    const s = connect(port, '127.0.0.1');
    const head = await new Promise<string>((resolve) => {
      s.on('data', (d) => resolve(d.toString('latin1')));
      s.on('error', () => resolve('error'));
      setTimeout(() => resolve('no answer'), 3000);
      s.write(`POST /${token}/upload HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 1500000000\r\n\r\n`);
    });
    s.destroy();
    expect(head).toMatch(/^HTTP\/1\.1 413 /);
  });

  it.each([false, true])('a chunked body is counted while it streams and refused with 413 at the cap (keep-alive %s)', async (keepAlive) => {
    received.length = 0;
    const before = rss();
    const r = await ask({ method: 'POST', path: `/${token}/upload`, stream: { chunk: Buffer.alloc(MiB, 9), upTo: 256 * MiB }, keepAlive });
    console.log('chunked 256 MiB: answered', r.status, 'after', r.ms, 'ms and', r.sent / MiB, 'MiB sent; rss grew', ((rss() - before) / MiB).toFixed(1), 'MiB');
    expect(r.status).toBe(413);
    expect(r.text).toBe(`request body over ${CAP} bytes`);
    expect(r.sent).toBeLessThan(CAP + 64 * MiB);
    expect(rss() - before).toBeLessThan(64 * MiB);
    expect(received).toEqual([]);
  });

  it('one byte over the cap is too many, declared or streamed', async () => {
    expect((await ask({ method: 'POST', path: `/${token}/upload`, body: new Uint8Array(CAP + 1) })).status).toBe(413);
    expect((await ask({ method: 'POST', path: `/${token}/upload`, stream: { chunk: Buffer.alloc(CAP + 1), upTo: CAP + 1 } })).status).toBe(413);
  });

  it('a client that hangs up mid-body leaves the server answering', async () => {
    const s = connect(port, '127.0.0.1');
    await new Promise((r) => s.once('connect', r));
    s.write(`POST /${token}/upload HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(1000)}`);
    await new Promise((r) => setTimeout(r, 50));
    s.destroy();
    expect((await ask({ path: `/${token}/page.html` })).status).toBe(200);
  });
});

describe('loopback server: URLs', () => {
  const bad = () => [
    '/%E0%A4%A',
    `/${token}/%E0%A4%A`,
    '/%',
    `/${token}/page.html%`,
    '/..%2f..%2fetc/passwd',
    `/${token}/..%2f..%2f..%2fetc%2fpasswd`,
    `/${token}/ort/..%2f..%2fpackage.json`,
    `/${token}/ort/%2e%2e/%2e%2e/package.json`,
    `/${token}/ort/..`,
    `/${token}/ort%5c..%5cpackage.json`,
    `/${token}/page.html%00.mjs`,
  ];

  it('malformed or walking paths get 400, not 500, and no file behind them', async () => {
    for (const path of bad()) {
      const r = await ask({ path });
      expect(r.status, path).toBe(400);
      expect(r.text).not.toMatch(/root:|"name"|URIError/);
    }
  });

  it('a request target that is not a path gets 400', async () => {
    for (const target of ['http://evil.example/x', `http://127.0.0.1:${port}/${token}/page.html`, '*']) {
      expect(await raw(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`), target).toMatch(/^HTTP\/1\.1 400 /);
    }
  });

  it('very long URLs get 414 (431 past the header limit), and the server goes on', async () => {
    expect((await ask({ path: `/${token}/${'a'.repeat(3000)}` })).status).toBe(414);
    expect(await raw(`GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    expect((await ask({ path: `/${token}/page.html` })).status).toBe(200);
  });
});

describe('loopback server: Host and Origin', () => {
  it('a Host that is not this server (DNS rebinding) is refused, before any route', async () => {
    for (const host of [
      `evil.example:${port}`,
      `127.0.0.1:${port + 1}`,
      '127.0.0.1',
      `127.0.0.2:${port}`,
      `localhost.evil.example:${port}`,
      `127.0.0.1:${port}.evil.example`,
    ]) {
      const r = await ask({ path: `/${token}/page.html`, headers: { host } });
      expect(r.status, host).toBe(403);
      expect(r.text).not.toContain('hello');
    }
    received.length = 0;
    expect((await ask({ method: 'POST', path: `/${token}/upload`, headers: { host: `evil.example:${port}` }, body: new Uint8Array(10) })).status).toBe(403);
    expect(received).toEqual([]);
    // HTTP/1.0 lets a client leave Host out
    expect(await raw(`GET /${token}/page.html HTTP/1.0\r\n\r\n`)).toMatch(/^HTTP\/1\.1 403 /);
  });

  it('a POST from another origin is refused; one without Origin or from our own is taken', async () => {
    received.length = 0;
    for (const origin of [
      'http://evil.example',
      `http://evil.example:${port}`,
      'null',
      `http://127.0.0.1:${port + 1}`,
      `https://127.0.0.1:${port}`,
      `http://localhost:${port}`,
    ]) {
      const r = await ask({ method: 'POST', path: `/${token}/upload`, headers: { origin }, body: new Uint8Array(10) });
      expect(r.status, origin).toBe(403);
    }
    expect(received).toEqual([]);
    // same-origin is the exact origin the page was loaded from, whichever loopback name that was
    expect(
      (
        await ask({
          method: 'POST',
          path: `/${token}/upload`,
          headers: { host: `localhost:${port}`, origin: `http://localhost:${port}` },
          body: new Uint8Array(10),
        })
      ).status,
    ).toBe(204);
    expect((await ask({ method: 'POST', path: `/${token}/upload`, body: new Uint8Array(10) })).status).toBe(204);
    expect(received).toHaveLength(2);
    // a cross-origin read is refused too
    expect((await ask({ path: `/${token}/page.html`, headers: { origin: 'http://evil.example' } })).status).toBe(403);
  });
});

describe('loopback server: connections', () => {
  it('holds a bounded number of connections open and keeps serving after they go', async () => {
    const sockets = Array.from({ length: 48 }, () => connect(port, '127.0.0.1'));
    const closed = sockets.map(
      (s) =>
        new Promise<boolean>((r) => {
          s.on('close', () => r(true));
          s.on('error', () => undefined);
          setTimeout(() => r(false), 1500);
        }),
    );
    const dropped = (await Promise.all(closed)).filter(Boolean).length;
    for (const s of sockets) s.destroy();
    expect(dropped).toBeGreaterThanOrEqual(16);
    await new Promise((r) => setTimeout(r, 100));
    expect((await ask({ path: `/${token}/page.html` })).status).toBe(200);
  });
});
