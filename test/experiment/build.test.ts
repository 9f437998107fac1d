/** From-scratch models: PyTorch's default initialisation, one seed = one set of weights for every activation, and a graph that computes the network. */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/data/prng.js';
import { UserError } from '../../src/errors.js';
import { ACTIVATIONS, buildModel, type BuildOptions } from '../../src/experiment/build.js';
import { encodeModel } from '../../src/onnx/schema.js';
import type { ModelProto } from '../../src/onnx/types.js';

const MLP: Omit<BuildOptions, 'activation' | 'seed'> = { arch: 'mlp', hidden: [16, 8], channels: [], sampleShape: [5], classes: 3 };
const CNN: Omit<BuildOptions, 'activation' | 'seed'> = { arch: 'cnn', hidden: [32], channels: [4, 6], sampleShape: [1, 12, 12], classes: 10 };

const weights = (m: ModelProto) => (m.graph!.initializer ?? []).map((t) => ({ name: t.name!, dims: t.dims!.map(Number), bytes: Buffer.from(t.rawData!) }));
const floats = (b: Buffer) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
const ops = (m: ModelProto) => m.graph!.node!.map((n) => n.opType);

describe('buildModel', () => {
  it('the three activations start from byte-identical weights for one seed, and other weights for another', () => {
    for (const spec of [MLP, CNN]) {
      const [relu, leaky, alrelu] = ACTIVATIONS.map((activation) => weights(buildModel({ ...spec, activation, seed: 7 })));
      expect(leaky).toEqual(relu);
      expect(alrelu).toEqual(relu);
      const other = weights(buildModel({ ...spec, activation: 'relu', seed: 8 }));
      expect(other.map((w) => w.name)).toEqual(relu!.map((w) => w.name));
      expect(other[0]!.bytes.equals(relu![0]!.bytes)).toBe(false);
    }
  });

  it("activations: Relu, LeakyRelu(0.01), and the converter's ALReLU (LeakyRelu(0.01) then Abs)", () => {
    const [relu, leaky, alrelu] = ACTIVATIONS.map((activation) => buildModel({ ...MLP, activation, seed: 1 }));
    expect(ops(relu!).filter((o) => o === 'Relu')).toHaveLength(2);
    const lr = leaky!.graph!.node!.filter((n) => n.opType === 'LeakyRelu');
    expect(lr).toHaveLength(2);
    for (const n of lr) expect(n.attribute![0]!.f).toBeCloseTo(0.01, 7);
    expect(ops(alrelu!)).not.toContain('Relu');
    expect(ops(alrelu!).filter((o) => o === 'Abs')).toHaveLength(2);
  });

  it('PyTorch default init: U(±1/sqrt(fan_in)) for weight and bias, drawn layer by layer, weight first, from mulberry32(seed)', () => {
    for (const spec of [MLP, CNN]) {
      const w = weights(buildModel({ ...spec, activation: 'relu', seed: 11 }));
      const rand = mulberry32(11);
      let fanIn = 0;
      for (const t of w) {
        if (t.name.endsWith('.weight')) fanIn = t.dims.slice(1).reduce((a, b) => a * b, 1);
        const bound = 1 / Math.sqrt(fanIn);
        const v = floats(t.bytes);
        expect(v.length).toBe(t.dims.reduce((a, b) => a * b, 1));
        for (let i = 0; i < v.length; i++) expect(v[i]).toBe(Math.fround((rand() * 2 - 1) * bound));
        expect(Math.max(...Array.from(v, Math.abs))).toBeLessThanOrEqual(bound);
      }
      // fan_in of a convolution counts its kernel: conv1 [4, 1, 3, 3] has fan_in 9
      if (spec.arch === 'cnn') expect(w[0]!.dims).toEqual([4, 1, 3, 3]);
    }
  });

  it('computes the network it describes: the ALReLU MLP on onnxruntime against a float64 forward pass', async () => {
    const model = buildModel({ ...MLP, activation: 'alrelu', seed: 3 });
    const w = weights(model);
    const x = Float32Array.from({ length: 4 * 5 }, (_, i) => Math.sin(i * 1.7) * 3);
    const s = await ort.InferenceSession.create(encodeModel(model));
    const y = (await s.run({ input: new ort.Tensor('float32', x, [4, 5]) })).logits!;
    expect(y.dims).toEqual([4, 3]);
    const act = (v: number) => Math.abs(v >= 0 ? v : 0.01 * v);
    for (let r = 0; r < 4; r++) {
      let h = Array.from(x.subarray(r * 5, r * 5 + 5));
      for (let l = 0; l < 3; l++) {
        const W = floats(w[2 * l]!.bytes);
        const b = floats(w[2 * l + 1]!.bytes);
        const [out, inn] = w[2 * l]!.dims as [number, number];
        const z = Array.from({ length: out }, (_, o) => b[o]! + h.reduce((s2, hv, i) => s2 + W[o * inn + i]! * hv, 0));
        h = l < 2 ? z.map(act) : z;
      }
      for (let c = 0; c < 3; c++) expect(Math.abs((y.data as Float32Array)[r * 3 + c]! - h[c]!)).toBeLessThan(1e-5);
    }
    await s.release();
  });

  it('the CNN runs on onnxruntime with a symbolic batch', async () => {
    const s = await ort.InferenceSession.create(encodeModel(buildModel({ ...CNN, activation: 'leakyrelu', seed: 0 })));
    const y = (await s.run({ input: new ort.Tensor('float32', new Float32Array(3 * 144).fill(0.5), [3, 1, 12, 12]) })).logits!;
    expect(y.dims).toEqual([3, 10]);
    await s.release();
  });

  it('refuses what it cannot build, naming the problem', () => {
    const bad: [Partial<BuildOptions>, RegExp][] = [
      [{ arch: 'cnn', sampleShape: [5], channels: [4] }, /image samples/],
      [{ classes: 1 }, /2 or more/],
      [{ hidden: [0] }, /whole numbers/],
      [{ hidden: [] }, /at least one/],
      [{ seed: -1 }, /integer/],
      [{ sampleShape: [0] }, /fixed shape/],
      [{ arch: 'cnn', sampleShape: [1, 12, 12], channels: [2, 2, 2, 2, 2] }, /below 1 pixel/],
      [{ hidden: [65536, 65536] }, /parameters/],
    ];
    for (const [o, msg] of bad) {
      const run = () => buildModel({ ...MLP, activation: 'relu', seed: 0, ...o });
      expect(run).toThrow(UserError);
      expect(run).toThrow(msg);
    }
  });
});
