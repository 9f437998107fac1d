import { readFileSync } from 'node:fs';

/** The package version, read once from package.json (two or three folders up from this module). */
export const VERSION: string = (() => {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const p = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'alrelu' && p.version) return p.version;
    } catch {
      // try the next candidate
    }
  }
  return '0.0.0';
})();
