/**
 * replaceHead: the rewritten model runs on onnxruntime with N logit columns; the three head forms built
 * from one seed compute the same function (the weight is drawn in PyTorch's [out, in] order whatever the
 * layout); the values lie in ±1/sqrt(fan_in) with the uniform's mean and variance; the same seed gives
 * the same bytes; and every model without a replaceable head is refused with a UserError.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { DataType } from '../../src/onnx/dtype.js';
import { encodeModel } from '../../src/onnx/schema.js';
import { floatToHalf, halfToFloat, tensorValues } from '../../src/onnx/tensor.js';
import { int, type ModelProto, type NodeProto, type TensorProto } from '../../src/onnx/types.js';
import { replaceHead } from '../../src/train/head.js';

type Form = 'gemm-transB1' | 'gemm-transB0' | 'matmul-add';

function floats(name: string, dims: number[], f: (i: number) => number): TensorProto {
  const n = dims.reduce((p, d) => p * d, 1);
  return { name, dataType: DataType.FLOAT, dims, rawData: new Uint8Array(Float32Array.from({ length: n }, (_, i) => f(i)).buffer) };
}

const vi = (name: string, dims: (number | string)[]) => ({
  name,
  type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});

/** x [N, F] -> Relu -> head (K classes) -> tail ops -> output. */
function headModel(form: Form, F: number, K: number, tail: string[] = [], extra: Partial<{ valueInfo: boolean }> = {}): ModelProto {
  const nodes: NodeProto[] = [{ opType: 'Relu', input: ['x'], output: ['h'], name: 'relu' }];
  const inits: TensorProto[] = [];
  if (form === 'matmul-add') {
    inits.push(
      floats('fc.weight', [F, K], (i) => Math.sin(i)),
      floats('fc.bias', [K], (i) => i / 10),
    );
    nodes.push(
      { opType: 'MatMul', input: ['h', 'fc.weight'], output: ['mm'], name: 'fc/MatMul' },
      { opType: 'Add', input: ['mm', 'fc.bias'], output: ['logits'], name: 'fc/Add' },
    );
  } else {
    const t = form === 'gemm-transB1';
    inits.push(
      floats('fc.weight', t ? [K, F] : [F, K], (i) => Math.sin(i)),
      floats('fc.bias', [K], (i) => i / 10),
    );
    nodes.push({
      opType: 'Gemm',
      input: ['h', 'fc.weight', 'fc.bias'],
      output: ['logits'],
      name: 'fc/Gemm',
      attribute: [{ name: 'alpha', type: 1, f: 2 }, ...(t ? [{ name: 'transB', type: 2, i: 1 }] : [])],
    });
  }
  let last = 'logits';
  tail.forEach((op, i) => {
    nodes.push({ opType: op, input: [last], output: [`t${i}`], name: `tail${i}` });
    last = `t${i}`;
  });
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'g',
      node: nodes,
      initializer: inits,
      input: [vi('x', ['N', F])],
      output: [vi(last, ['N', K])],
      ...(extra.valueInfo ? { valueInfo: [vi('logits', ['N', K])] } : {}),
    },
  };
}

async function run(m: ModelProto, x: Float32Array, rows: number, F: number): Promise<ort.Tensor> {
  const s = await ort.InferenceSession.create(encodeModel(m), { logSeverityLevel: 3 });
  try {
    const out = await s.run({ x: new ort.Tensor('float32', x, [rows, F]) });
    return out[s.outputNames[0]!]!;
  } finally {
    await s.release();
  }
}

const input = (rows: number, F: number) => Float32Array.from({ length: rows * F }, (_, i) => Math.cos(i * 0.37));
const init = (m: ModelProto, name: string) => m.graph!.initializer!.find((t) => t.name === name)!;

describe('replaceHead', () => {
  it.each(['gemm-transB1', 'gemm-transB0', 'matmul-add'] as Form[])('%s: runs on onnxruntime with N logit columns; declared shape follows', async (form) => {
    const F = 6;
    const src = headModel(form, F, 3, ['Softmax']);
    const before = encodeModel(src);
    const { model, report } = replaceHead(src, { numClasses: 5, seed: 1 });
    expect(encodeModel(src)).toEqual(before); // the input model is left alone
    const y = await run(model, input(7, F), 7, F);
    expect(y.dims).toEqual([7, 5]);
    // softmax rows sum to 1: the Softmax after the head still sees the whole class axis
    const p = y.data as Float32Array;
    for (let r = 0; r < 7; r++) expect(p.subarray(r * 5, r * 5 + 5).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(model.graph!.output![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || int(d.dimValue))).toEqual(['N', 5]);
    expect(report).toMatchObject({
      form: form === 'matmul-add' ? 'MatMul+Add' : 'Gemm',
      oldClasses: 3,
      newClasses: 5,
      features: F,
      weight: 'fc.weight',
      bias: 'fc.bias',
      passedThrough: ['tail0'],
    });
    expect(report.nodes).toEqual(form === 'matmul-add' ? ['fc/MatMul', 'fc/Add'] : ['fc/Gemm']);
  });

  it('the three forms from one seed compute the same logits: x W^T + b with W drawn as [out, in]', async () => {
    const F = 5;
    const x = input(4, F);
    const outs = [];
    for (const form of ['gemm-transB1', 'gemm-transB0', 'matmul-add'] as Form[]) {
      const { model } = replaceHead(headModel(form, F, 3), { numClasses: 4, seed: 7 });
      outs.push(Array.from((await run(model, x, 4, F)).data as Float32Array));
    }
    // and by hand, from the stored [out, in] weight of the transB=1 form (alpha reset to 1)
    const { model } = replaceHead(headModel('gemm-transB1', F, 3), { numClasses: 4, seed: 7 });
    const w = tensorValues(init(model, 'fc.weight'))!;
    const b = tensorValues(init(model, 'fc.bias'))!;
    const ref: number[] = [];
    for (let r = 0; r < 4; r++)
      for (let k = 0; k < 4; k++) {
        let s = b[k]!;
        for (let c = 0; c < F; c++) s += Math.max(0, x[r * F + c]!) * w[k * F + c]!;
        ref.push(s);
      }
    for (const o of outs) o.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 5));
  });

  it('same seed: byte-identical weights; another seed: different ones', () => {
    const a = replaceHead(headModel('gemm-transB1', 8, 3), { numClasses: 10, seed: 42 }).model;
    const b = replaceHead(headModel('gemm-transB1', 8, 3), { numClasses: 10, seed: 42 }).model;
    const c = replaceHead(headModel('gemm-transB1', 8, 3), { numClasses: 10, seed: 43 }).model;
    expect(Buffer.from(init(a, 'fc.weight').rawData!).equals(Buffer.from(init(b, 'fc.weight').rawData!))).toBe(true);
    expect(Buffer.from(init(a, 'fc.bias').rawData!).equals(Buffer.from(init(b, 'fc.bias').rawData!))).toBe(true);
    expect(Buffer.from(init(a, 'fc.weight').rawData!).equals(Buffer.from(init(c, 'fc.weight').rawData!))).toBe(false);
    expect(encodeModel(a)).toEqual(encodeModel(b));
  });

  it('a big layer: every value within ±1/sqrt(fan_in), mean and variance those of U(-b, b)', () => {
    const F = 512;
    const N = 1000;
    const { model, report } = replaceHead(headModel('gemm-transB1', F, 10), { numClasses: N, seed: 3 });
    const bound = 1 / Math.sqrt(F);
    expect(report.bound).toBe(bound);
    const w = tensorValues(init(model, 'fc.weight'), Infinity)!;
    expect(init(model, 'fc.weight').dims).toEqual([N, F]);
    expect(w.length).toBe(N * F);
    const max = w.reduce((a, v) => Math.max(a, v), -Infinity);
    const min = w.reduce((a, v) => Math.min(a, v), Infinity);
    expect(Math.max(max, -min)).toBeLessThanOrEqual(bound);
    // the extremes are reached: not a narrower distribution
    expect(max).toBeGreaterThan(0.999 * bound);
    expect(min).toBeLessThan(-0.999 * bound);
    const mean = w.reduce((a, v) => a + v, 0) / w.length;
    const variance = w.reduce((a, v) => a + (v - mean) ** 2, 0) / w.length;
    const sd = bound / Math.sqrt(3);
    expect(Math.abs(mean)).toBeLessThan((5 * sd) / Math.sqrt(w.length));
    // the variance of a sample variance of a uniform: (mu4 - sigma^4)/n, mu4 = b^4/5
    const varSe = Math.sqrt((bound ** 4 / 5 - sd ** 4) / w.length);
    expect(Math.abs(variance - sd * sd)).toBeLessThan(5 * varSe);
    const b = tensorValues(init(model, 'fc.bias'))!;
    expect(b.length).toBe(N);
    expect(Math.max(...b.map(Math.abs))).toBeLessThanOrEqual(bound);
  });

  it('LogSoftmax, Flatten and Identity are passed through; value_info of the logits follows', async () => {
    const src = headModel('gemm-transB0', 4, 3, ['Flatten', 'Identity', 'LogSoftmax'], { valueInfo: true });
    const { model, report } = replaceHead(src, { numClasses: 2, seed: 0 });
    expect(report.passedThrough).toEqual(['tail0', 'tail1', 'tail2']);
    expect(model.graph!.valueInfo![0]!.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || int(d.dimValue))).toEqual(['N', 2]);
    expect((await run(model, input(3, 4), 3, 4)).dims).toEqual([3, 2]);
  });

  it('refuses: N < 2, no recognisable head, a head feeding two consumers, shared weights, transA, computed weights', () => {
    const refuse = (m: ModelProto, n: number, cause: RegExp) => {
      let err: unknown;
      try {
        replaceHead(m, { numClasses: n, seed: 0, file: 'm.onnx' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(cause);
    };
    refuse(headModel('gemm-transB1', 4, 3), 1, /at least 2/);
    refuse(headModel('gemm-transB1', 4, 3), 2.5, /at least 2/);
    refuse(headModel('gemm-transB1', 4, 3), 2 ** 21, /most classes/);
    refuse(headModel('gemm-transB1', 100_000, 3), 2 ** 20, /above the \d+ supported/);

    const relu = headModel('gemm-transB1', 4, 3, ['Relu']);
    refuse(relu, 2, /no recognisable classifier head: 't0' comes from Relu 'tail0'/);

    // logits both a graph output and fed to a Softmax that is another output
    const two = headModel('gemm-transB1', 4, 3, ['Softmax']);
    two.graph!.output!.push(vi('logits', ['N', 3]));
    refuse(two, 2, /'logits' feeds 2 consumers/);

    // a read from inside a subgraph (an If branch capturing the logits) is a consumer too
    const captured = headModel('gemm-transB1', 4, 3);
    const branch = (name: string) => ({
      name,
      node: [{ opType: 'Identity', input: ['logits'], output: [`${name}_out`] }],
      output: [vi(`${name}_out`, ['N', 3])],
    });
    captured.graph!.input!.push({ name: 'c', type: { tensorType: { elemType: DataType.BOOL, shape: { dim: [] } } } });
    captured.graph!.node!.push({
      opType: 'If',
      input: ['c'],
      output: ['picked'],
      name: 'if',
      attribute: [
        { name: 'then_branch', type: 5, g: branch('t') },
        { name: 'else_branch', type: 5, g: branch('e') },
      ],
    });
    captured.graph!.output!.push(vi('picked', ['N', 3]));
    refuse(captured, 2, /output 'logits' feeds [23] consumers/);

    const shared = headModel('gemm-transB1', 4, 4);
    shared.graph!.node!.push({ opType: 'Add', input: ['fc.weight', 'fc.weight'], output: ['other'], name: 'other' });
    shared.graph!.output!.push(vi('other', [4, 4]));
    refuse(shared, 2, /weight 'fc.weight' is shared/);

    const ta = headModel('gemm-transB1', 4, 3);
    ta.graph!.node![1]!.attribute!.push({ name: 'transA', type: 2, i: 1 });
    refuse(ta, 2, /transA=1/);

    const computed = headModel('gemm-transB1', 4, 3);
    computed.graph!.initializer = computed.graph!.initializer!.filter((t) => t.name !== 'fc.weight');
    computed.graph!.input!.push(vi('fc.weight', [3, 4]));
    refuse(computed, 2, /weight 'fc.weight' is not an initializer/);

    const addOnly = headModel('gemm-transB1', 4, 3);
    addOnly.graph!.node![1] = { opType: 'Add', input: ['h', 'fc.bias'], output: ['logits'], name: 'add' };
    refuse(addOnly, 2, /does not add a constant bias to a MatMul/);

    const fromInput = headModel('gemm-transB1', 4, 3);
    fromInput.graph!.output = [vi('x', ['N', 4])];
    refuse(fromInput, 2, /not computed by a node/);
  });

  it('a float16 head stays float16: the same draws, rounded to half', () => {
    const half = headModel('gemm-transB1', 16, 3);
    for (const t of half.graph!.initializer!) {
      const v = tensorValues(t)!;
      t.dataType = DataType.FLOAT16;
      t.rawData = new Uint8Array(Uint16Array.from(v, floatToHalf).buffer);
    }
    const h = replaceHead(half, { numClasses: 4, seed: 11 }).model;
    const f = replaceHead(headModel('gemm-transB1', 16, 3), { numClasses: 4, seed: 11 }).model;
    const hw = init(h, 'fc.weight');
    expect(hw.dataType).toBe(DataType.FLOAT16);
    expect(hw.rawData!.byteLength).toBe(4 * 16 * 2);
    const fw = tensorValues(init(f, 'fc.weight'))!;
    tensorValues(hw)!.forEach((v, i) => expect(v).toBe(halfToFloat(floatToHalf(fw[i]!))));
  });

  it('a Gemm without bias gets none; a [1, K] bias keeps its rank', async () => {
    const noBias = headModel('gemm-transB1', 4, 3);
    noBias.graph!.node![1]!.input = ['h', 'fc.weight'];
    noBias.graph!.initializer = noBias.graph!.initializer!.filter((t) => t.name !== 'fc.bias');
    const a = replaceHead(noBias, { numClasses: 2, seed: 0 });
    expect(a.report.bias).toBeNull();
    expect((await run(a.model, input(2, 4), 2, 4)).dims).toEqual([2, 2]);

    const row = headModel('matmul-add', 4, 3);
    row.graph!.initializer![1] = floats('fc.bias', [1, 3], () => 0);
    const b = replaceHead(row, { numClasses: 6, seed: 0 });
    expect(init(b.model, 'fc.bias').dims).toEqual([1, 6]);
    expect((await run(b.model, input(2, 4), 2, 4)).dims).toEqual([2, 6]);
  });
});
