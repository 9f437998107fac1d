/**
 * `npm run models`: retrains the shipped models the tool builds itself (src/experiment/shipped.ts) and
 * writes them into models/, replacing the old files. A script, not an alrelu-convert command: it writes
 * into the package's own folder.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../atomic.js';
import { SHIPPED, trainShipped } from '../experiment/shipped.js';
import { openRuntime } from '../runtime/index.js';
import { action, say } from './run.js';

/** The package's root: the nearest folder above this module whose package.json is alrelu's (dist/ or sources). */
function packageRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const p = join(dir, 'package.json');
    if (existsSync(p) && (JSON.parse(readFileSync(p, 'utf8')) as { name?: string }).name === 'alrelu') return dir;
  }
  throw new Error('the alrelu package root was not found above this script');
}
const root = packageRoot();

await action(async () => {
  const rt = await openRuntime('cpu', { threads: 1 });
  try {
    for (const m of SHIPPED) {
      const t0 = Date.now();
      const r = await trainShipped(m, rt);
      await writeFileAtomic(join(root, m.file), r.bytes, { replace: true });
      say(
        {},
        `${m.file}: ${m.data} ${r.counts.train}/${r.counts.val}/${r.counts.test}, best epoch ${r.bestEpoch}, test accuracy ${(100 * r.test.accuracy).toFixed(2)}%, macro-F1 ${r.test.macroF1.toFixed(4)}, ROC AUC ${r.test.auc?.toFixed(4) ?? '-'} (${((Date.now() - t0) / 1000).toFixed(1)} s, ${r.bytes.length} bytes)`,
      );
    }
  } finally {
    await rt.close();
  }
})();
