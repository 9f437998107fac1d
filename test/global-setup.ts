/**
 * Builds dist/ once per test run: the CLI tests spawn the real `alrelu-convert` binary from it. tsc emits
 * even when some file has a type error; `npm test` type-checks strictly before vitest starts.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

export default function setup(): void {
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`tsc reported errors (dist built anyway):\n${r.stdout}${r.stderr}`);
  // tsc writes files 0644; the bin must stay runnable for `npx alrelu-convert`.
  chmodSync(join(ROOT, 'dist/src/cli/main.js'), 0o755);
}
