/** `npm run models`: the same seed writes the same bytes (cpu, one thread), and another seed does not. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHIPPED, trainShipped, type ShippedModel } from '../../src/experiment/shipped.js';
import { decodeModel } from '../../src/onnx/schema.js';
import { openRuntime, type Runtime } from '../../src/runtime/index.js';

describe('shipped models trained by the tool', () => {
  let rt: Runtime;
  beforeAll(async () => {
    rt = await openRuntime('cpu', { threads: 1 });
  });
  afterAll(async () => rt.close());

  it('spam-mlp: trained twice from one seed, byte-identical; from another seed, different', async () => {
    // small: 400 of the 6,046 e-mails, one epoch (the shipped recipe otherwise)
    const small: ShippedModel = { ...SHIPPED.find((m) => m.data === 'spam')!, limit: 400, epochs: 1 };
    const a = await trainShipped(small, rt);
    const b = await trainShipped(small, rt);
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
    const c = await trainShipped({ ...small, seed: small.seed + 1 }, rt);
    expect(Buffer.from(c.bytes).equals(Buffer.from(a.bytes))).toBe(false);
    // it learned something, and says how it was made
    expect(a.test.accuracy).toBeGreaterThan(0.85);
    const m = decodeModel(a.bytes);
    expect(m.docString).toMatch(/trained from scratch by alrelu .* seed 0, 1 epochs/);
    expect(m.graph!.node!.map((n) => n.opType)).toEqual(['Gemm', 'Relu', 'Gemm']);
  }, 60_000);
});
