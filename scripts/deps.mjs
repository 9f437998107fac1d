#!/usr/bin/env node
/**
 * `npm run deps`: the layer order and no cycles (.dependency-cruiser.cjs), checked on the built dist/src.
 *
 * Only the outputs of today's src/*.ts are cruised: tsc never deletes the output of a removed or moved
 * source, and a stale dist/src/runtime/serve.js would report a layer the code no longer has.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cruise } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sources = readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
const files = [];
const missing = [];
for (const f of sources) {
  for (const out of [f.replace(/\.ts$/, '.js'), f.replace(/\.ts$/, '.d.ts')]) {
    const p = join('dist', 'src', out);
    (existsSync(join(root, p)) ? files : missing).push(p);
  }
}
if (missing.length) {
  console.error(`error: dist/src: ${missing.length} compiled file(s) missing (e.g. ${missing[0]}); run npm run build first`);
  process.exit(2);
}
const options = await extractDepcruiseOptions(join(root, '.dependency-cruiser.cjs'));
process.chdir(root);
const result = await cruise(files, { ...options, outputType: 'err-long' });
process.stdout.write(String(result.output));
if (result.exitCode !== 0) console.error('error: imports break the layer order or form a cycle: the rules are in .dependency-cruiser.cjs');
process.exit(result.exitCode === 0 ? 0 : 1);
