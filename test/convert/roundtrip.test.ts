/** Read -> write of every fixture model: onnxruntime loads the result and gives bit-identical outputs. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readModel } from '../../src/onnx/read.js';
import { decodeModel, encodeModel } from '../../src/onnx/schema.js';
import { writeModel } from '../../src/onnx/write.js';
import { randomFeeds } from '../../src/convert/verify.js';
import { allFixtureModels, bytesOf, FIXTURES, maxScaledDiff, runPositional, session, testSets } from '../helpers.js';

// Models onnxruntime cannot run by design (a custom-domain op with no kernel).
const NOT_RUNNABLE = new Set(['windows-ml/custom_domain_relu/relu.onnx']);

describe('round trip of every fixture model', () => {
  for (const file of allFixtureModels()) {
    const name = relative(FIXTURES, file);
    it(name, async () => {
      const mf = await readModel(file);
      const out = join(mkdtempSync(join(tmpdir(), 'alrelu-rt-')), basename(file));
      await writeModel(mf.model, out, { sourceDir: mf.dir });
      // The written protobuf decodes to the same message (field by field).
      const again = decodeModel(readFileSync(out));
      expect(JSON.stringify(again)).toBe(JSON.stringify(decodeModel(readFileSync(file))));
      expect(encodeModel(again)).toEqual(encodeModel(mf.model));
      if (NOT_RUNNABLE.has(name)) return;

      const sets = testSets(file);
      if (sets.length) {
        for (const set of sets) {
          const a = await runPositional(file, set.inputs);
          const b = await runPositional(out, set.inputs);
          a.forEach((t, i) => expect(bytesOf(b[i]!)).toEqual(bytesOf(t)));
          // ...and the round-tripped model still matches the upstream reference data.
          set.outputs.forEach((ref, i) => expect(maxScaledDiff(b[i]!, ref)).toBeLessThan(1e-4));
        }
      } else {
        const feeds = randomFeeds(mf.model, { N: 2, batch_size: 2 }, 1, file);
        const s1 = await session(file);
        const s2 = await session(out);
        const r1 = await s1.run(feeds);
        const r2 = await s2.run(feeds);
        for (const k of s1.outputNames) expect(bytesOf(r2[k]!)).toEqual(bytesOf(r1[k]!));
        await s1.release();
        await s2.release();
      }
    });
  }
});
