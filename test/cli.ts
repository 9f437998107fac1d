/** Runs the built `alrelu-convert` binary (dist/, built by test/global-setup.ts) as a user would. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './helpers.js';

export const CLI = join(ROOT, 'dist/src/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 110_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** The one-line error contract: exactly one non-empty stderr line, `error: ...`, no stack trace. */
export function errorLine(r: CliResult): string {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  if (lines.length !== 1 || !lines[0]!.startsWith('error: ') || /\n\s+at /.test(r.stderr)) {
    throw new Error(`expected one 'error:' line on stderr, got:\n${r.stderr}`);
  }
  return lines[0]!;
}
