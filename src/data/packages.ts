/** Finding the files of data-set packages on disk (their JSON is read directly, not through their APIs). */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { promises as fs } from 'node:fs';
import { UserError } from '../errors.js';

const require = createRequire(import.meta.url);

/**
 * Folder of a file inside an installed package. Resolves the package's main entry (some packages, like
 * vega-datasets, export nothing else) and walks up to the folder holding package.json.
 */
function packageRoot(pkg: string): string {
  let entry: string;
  try {
    entry = require.resolve(pkg);
  } catch {
    throw new UserError(`package ${pkg}`, 'is not installed; run `npm install` in the alrelu folder');
  }
  let dir = dirname(entry);
  for (let i = 0; i < 6; i++) {
    try {
      const meta = require(join(dir, 'package.json')) as { name?: string };
      if (meta.name === pkg) return dir;
    } catch {
      // no package.json at this level: keep walking up
    }
    dir = dirname(dir);
  }
  throw new UserError(`package ${pkg}`, `cannot find its package.json above ${entry}`);
}

export async function readPackageJson<T>(pkg: string, ...path: string[]): Promise<T> {
  const file = join(packageRoot(pkg), ...path);
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (e) {
    throw new UserError(file, `cannot read the ${pkg} data: ${(e as Error).message}`);
  }
}
