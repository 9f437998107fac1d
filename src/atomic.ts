/** Writes that never leave a partial or clobbered file: write a temporary file beside the target, then rename. */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';

function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Runs `fill(tempPath)` for each target, then renames all temporaries into place. If anything fails,
 * every temporary is removed and no target is touched.
 */
export async function commitFiles(targets: string[], fill: (temps: string[]) => Promise<void>): Promise<void> {
  const temps = targets.map(tempPathFor);
  try {
    await fill(temps);
    for (let i = 0; i < targets.length; i++) await fs.rename(temps[i]!, targets[i]!);
  } catch (e) {
    await Promise.all(temps.map((t) => fs.rm(t, { force: true })));
    throw e;
  }
}

export async function writeFileAtomic(target: string, data: Uint8Array | string): Promise<void> {
  await commitFiles([target], async ([tmp]) => fs.writeFile(tmp!, data));
}

/** Whether anything exists at `p` (a refused overwrite is checked with this before any work). */
export async function pathExists(p: string): Promise<boolean> {
  return fs.access(p).then(() => true, () => false);
}
