/**
 * Serves the page's code: the compiled files of page/ (runner.js and what it imports), flat under the
 * loopback server's base so that their relative imports resolve, with onnxruntime-web under ort/.
 *
 * The files come from tsc's output, found relative to this module: next to it when it runs from dist/,
 * and in dist/ when it runs as source (vitest transforms src/*.ts itself and emits no .js; its global
 * setup builds dist/ before any test runs). A missing build is an error that says so, never a stale page.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Loopback } from './http.js';

/** The page module the pages load (AUTOMATION_HTML here, serve.mjs in serve/remote.ts). */
export const RUNNER = 'runner.js';

/** page/ as compiled: beside this module (dist/src/runtime/page.js), or the built copy when run as source. */
function pageDir(): string {
  const candidates = [new URL('./page/', import.meta.url), new URL('../../dist/src/runtime/page/', import.meta.url)].map((u) => fileURLToPath(u));
  const dir = candidates.find((d) => existsSync(d + RUNNER));
  if (!dir) throw new Error(`the browser page is not built (no ${RUNNER} in ${candidates.join(' or ')}); run npm run build`);
  return dir;
}

/** Serves every compiled module of page/ at server.base + its file name. */
export function servePage(server: Loopback): void {
  const dir = pageDir();
  for (const f of readdirSync(dir)) {
    if (f.endsWith('.js')) server.set(f, { body: readFileSync(dir + f), type: 'text/javascript' });
  }
}

/** The blank page playwright drives: it only loads the runner. */
export const AUTOMATION_HTML = `<!doctype html><meta charset="utf-8"><title>alrelu runtime</title><script type="module" src="${RUNNER}"></script>`;
