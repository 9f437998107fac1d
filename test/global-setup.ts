/**
 * Builds dist/ once per test run: the CLI tests spawn the real `alrelu-convert` binary from it. tsc emits
 * even when some file has a type error; `npm test` type-checks strictly before vitest starts.
 * Every temporary file of the run (the tests' folders, the CLIs they spawn, Chromium's) goes under one
 * folder of its own, TMPDIR for the workers and their children, removed when the run ends.
 */
import '../src/runtime/telemetry.js';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

export default function setup(): () => void {
  const tmp = mkdtempSync(join(tmpdir(), 'alrelu-test-'));
  process.env.TMPDIR = tmp;
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`tsc reported errors (dist built anyway):\n${r.stdout}${r.stderr}`);
  // tsc writes files 0644; the bin must stay runnable for `npx alrelu-convert`.
  chmodSync(join(ROOT, 'dist/src/cli/main.js'), 0o755);
  return () => rmSync(tmp, { recursive: true, force: true });
}
