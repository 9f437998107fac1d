/**
 * `alrelu-convert doctor`: which execution providers work here, and for each that does not, why and the
 * command that fixes it. A report, so it exits 0 whatever it finds; `--require` turns it into a gate
 * that exits 2 (like `eval --ep` asking for an unusable EP) when a named EP is unusable.
 */
import { arch, platform } from 'node:os';
import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { CHROMIUM } from '../runtime/browser.js';
import { checkEps } from '../runtime/doctor.js';
import { parseEpList } from '../runtime/index.js';
import type { EpStatus } from '../runtime/types.js';
import { action, printJson, say, type GlobalOptions } from './run.js';
import { parseThreads, parseWebgpuAdapter, threadsOption, webgpuAdapterOption } from './options.js';
import { table } from '../eval/table.js';

export interface DoctorCliOptions extends GlobalOptions {
  ep?: string;
  require?: string;
  chromium?: string;
  threads?: string;
  webgpuAdapter?: string;
}

/** Two columns of facts per EP: what it runs on (or why not), then the fix on its own line. */
function formatDoctor(statuses: EpStatus[]): string {
  const rows: string[][] = [['ep', 'usable', 'details']];
  for (const s of statuses) {
    rows.push([s.ep, s.usable ? 'yes' : 'NO', s.usable ? (s.detail ?? '') : (s.reason ?? '')]);
    if (!s.usable && s.fix) rows.push(['', '', `fix: ${s.fix}`]);
    if (!s.usable && s.detail) rows.push(['', '', `note: ${s.detail}`]);
  }
  return table(rows);
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check every execution provider (cpu, cuda, webgpu, wasm, browser-*): usable or not, why, and the fix')
    .option('--ep <list>', 'check only these EPs (comma-separated)')
    .option('--require <list>', 'exit 2 if any of these EPs (comma-separated) is not usable')
    .option('--chromium <path>', 'Chromium executable for the browser EPs', CHROMIUM)
    .addOption(threadsOption())
    .addOption(webgpuAdapterOption())
    .option('--json', 'machine-readable report on stdout')
    .option('--quiet', 'print nothing but errors')
    .option('--verbose', 'print stack traces on errors')
    .action(
      action(async (o: DoctorCliOptions) => {
        const required = o.require ? parseEpList(o.require, '--require') : [];
        const listed = o.ep ? parseEpList(o.ep) : undefined;
        const eps = listed ? [...new Set([...listed, ...required])] : undefined;
        if (process.stderr.isTTY && !o.json) say(o, 'checking each execution provider by running a small model on it...');
        const statuses = await checkEps({
          ...(eps ? { eps } : {}),
          ...(o.chromium ? { chromium: o.chromium } : {}),
          ...parseThreads(o.threads),
          ...parseWebgpuAdapter(o.webgpuAdapter),
        });
        if (o.json) printJson({ platform: `${platform()} ${arch()}`, node: process.version, eps: statuses });
        else say(o, formatDoctor(statuses));
        const missing = statuses.filter((s) => required.includes(s.ep) && !s.usable);
        if (missing.length) {
          throw new UserError(
            '--require',
            missing.map((s) => `${s.ep} is not usable: ${s.reason ?? 'unknown reason'}${s.fix ? `; fix: ${s.fix}` : ''}`).join(' | '),
          );
        }
      }),
    );
}
