/**
 * The rewrite, checked on every fixture model and on hand-built models for the cases no fixture has:
 * counts, bit-exact alpha = 0 equivalence, the three forms bit-identical, the upstream LeakyRelu
 * conformance data, look-alikes untouched, idempotence, subgraphs and functions, dtypes, selection,
 * provenance.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { convert, type ConvertOptions, type ConvertReport } from '../../src/convert/convert.js';
import type { Form } from '../../src/convert/forms.js';
import { randomFeeds, runModel } from '../../src/convert/verify.js';
import { graphAttr, floatAttr, makeNode } from '../../src/onnx/attrs.js';
import { DataType } from '../../src/onnx/dtype.js';
import { readModel } from '../../src/onnx/read.js';
import { decodeModel, encodeModel } from '../../src/onnx/schema.js';
import { int, type ModelProto, type NodeProto } from '../../src/onnx/types.js';
import { allNames, scopeNodes, scopes } from '../../src/onnx/walk.js';
import { encodeInline } from '../../src/onnx/write.js';
import { UserError } from '../../src/errors.js';
import { allFixtureModels, bytesOf, fixture, FIXTURES, maxScaledDiff, testSets } from '../helpers.js';
import { buildModel, floatTensor, tensorInfo } from './build.js';

const FORMS: Form[] = ['subgraph', 'fused', 'function'];
const NOT_RUNNABLE = new Set(['windows-ml/custom_domain_relu/relu.onnx']);

/** Replaced Relu/LeakyRelu and look-alikes per fixture, counted by hand from the models (Netron / onnx.helper). */
const EXPECTED: Record<string, { replaced: number; byOp?: Record<string, number>; lookalikes?: number }> = {
  'burn-onnx/fixtures/external_data.onnx': { replaced: 0 },
  'burn-onnx/fixtures/non_topological_order.onnx': { replaced: 1 },
  'burn-onnx/mnist_pytorch2/mnist.onnx': { replaced: 4 },
  'burn-onnx/subgraph/outer_scope_loop.onnx': { replaced: 1 },
  'burn-onnx/subgraph/outer_scope_ref.onnx': { replaced: 1 },
  'onnx-onnx/examples-simple_cnn/simple_cnn.onnx': { replaced: 2 },
  'onnx-onnx/light/light_densenet121.onnx': { replaced: 121 },
  'onnx-onnx/light/light_resnet50.onnx': { replaced: 49 },
  'onnx-onnx/light/light_squeezenet.onnx': { replaced: 26 },
  'onnx-onnx/node/test_abs/model.onnx': { replaced: 0 },
  'onnx-onnx/node/test_leakyrelu/model.onnx': { replaced: 1, byOp: { LeakyRelu: 1 } },
  'onnx-onnx/node/test_leakyrelu_default/model.onnx': { replaced: 1, byOp: { LeakyRelu: 1 } },
  'onnx-onnx/node/test_leakyrelu_example/model.onnx': { replaced: 1, byOp: { LeakyRelu: 1 } },
  'onnx-onnx/node/test_prelu_example/model.onnx': { replaced: 0, lookalikes: 1 },
  'onnx-onnx/node/test_relu/model.onnx': { replaced: 1 },
  'onnx-onnx/node/test_thresholdedrelu/model.onnx': { replaced: 0, lookalikes: 1 },
  'onnx-onnx/pytorch-converted/test_LeakyReLU/model.onnx': { replaced: 1, byOp: { LeakyRelu: 1 } },
  'onnx-onnx/pytorch-converted/test_LeakyReLU_with_negval/model.onnx': { replaced: 1, byOp: { LeakyRelu: 1 } },
  'onnx-onnx/pytorch-converted/test_ReLU/model.onnx': { replaced: 1 },
  'onnx-onnx/simple/test_single_relu_model/model.onnx': { replaced: 1 },
  'onnx2c/mnist/model.onnx': { replaced: 2 },
  'onnx2c/simple_networks/lstm_k1_b1_r1_relu.onnx': { replaced: 0, lookalikes: 1 },
  'windows-ml/custom_domain_relu/relu.onnx': { replaced: 0, lookalikes: 1 },
  'windows-ml/iris_mlp/Network.onnx': { replaced: 2 },
  'windows-ml/squeezenet_fp16/SqueezeNet_fp16.onnx': { replaced: 26 },
};

interface Converted {
  model: ModelProto;
  report: ConvertReport;
  bytes: Uint8Array;
}

async function convertFile(file: string, opts: ConvertOptions = {}): Promise<Converted> {
  const mf = await readModel(file);
  const report = convert(mf.model, { file, ...opts });
  return { model: mf.model, report, bytes: encodeInline(mf.model, mf.dir) };
}

function convertModel(model: ModelProto, opts: ConvertOptions = {}): Converted {
  const copy = decodeModel(encodeModel(model));
  const report = convert(copy, opts);
  return { model: copy, report, bytes: encodeModel(copy) };
}

/** Feeds for a fixture: its first upstream test set when it has one, else seeded random inputs. */
async function feedsFor(file: string): Promise<Record<string, ort.Tensor>> {
  const mf = await readModel(file);
  const sets = testSets(file);
  if (!sets.length) return randomFeeds(mf.model, { N: 2, batch_size: 2 }, 7, file);
  const s = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
  const names = s.inputNames;
  await s.release();
  return Object.fromEntries(sets[0]!.inputs.map((t, i) => [names[i]!, t]));
}

/**
 * Output bytes with graph optimizations off: the ops' own arithmetic. (With optimizations on, onnxruntime
 * fuses Conv+Add+Relu but not Conv+Add+LeakyRelu, so summation order, and the last bit, can differ.)
 */
async function outputsOf(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Uint8Array[]> {
  const out = await runModel(bytes, feeds);
  return Object.keys(out)
    .sort()
    .map((k) => new Uint8Array(bytesOf(out[k]!)));
}

/** Original model bytes with external data inlined (the round trip itself is tested bit-exact elsewhere). */
async function originalBytes(file: string): Promise<Uint8Array> {
  const mf = await readModel(file);
  return encodeInline(mf.model, mf.dir);
}

const opsets = (m: ModelProto) => (m.opsetImport ?? []).map((o) => [o.domain ?? '', int(o.version)]);
const allNodes = (m: ModelProto): NodeProto[] => scopes(m).flatMap(scopeNodes);
const opsOf = (m: ModelProto) => allNodes(m).map((n) => `${n.domain ? `${n.domain}:` : ''}${n.opType}`);

describe('every fixture model', () => {
  for (const file of allFixtureModels()) {
    const name = relative(FIXTURES, file);
    const want = EXPECTED[name];
    it(`${name}: counts, alpha=0 equivalence, forms identical, idempotent`, async () => {
      expect(want, `add ${name} to EXPECTED`).toBeDefined();
      const original = readFileSync(file);
      const base = await convertFile(file);
      expect(base.report.replaced).toBe(want!.replaced);
      expect(base.report.lookalikes.length).toBe(want!.lookalikes ?? 0);
      if (want!.byOp) expect(base.report.byOp).toEqual(want!.byOp);
      else if (want!.replaced) expect(base.report.byOp).toEqual({ Relu: want!.replaced });

      // Nothing to rewrite: the model is written back byte for byte, without provenance.
      if (want!.replaced === 0) {
        expect(Buffer.from(encodeModel(base.model)).equals(original)).toBe(true);
        return;
      }
      // Idempotent for every form: a second pass recognises its own output and changes nothing.
      for (const form of FORMS) {
        const once = form === 'subgraph' ? base : await convertFile(file, { form });
        const again = convertModel(once.model, { form });
        expect(again.report.replaced, form).toBe(0);
        expect(again.report.alreadyAlrelu.length, form).toBe(want!.replaced);
        expect(Buffer.from(again.bytes).equals(Buffer.from(encodeModel(once.model))), form).toBe(true);
      }
      if (NOT_RUNNABLE.has(name)) return;

      const feeds = await feedsFor(file);
      const reference = await outputsOf(await originalBytes(file), feeds);
      // alpha = 0 on Relu nodes computes exactly Relu: outputs bit-identical to the original.
      const relus = base.report.byOp.Relu ?? 0;
      if (relus) {
        const zero = await convertFile(file, { alpha: 0, ops: ['relu'] });
        expect(await outputsOf(zero.bytes, feeds)).toEqual(reference);
      }
      // The three forms are the same function on onnxruntime CPU, bit for bit.
      const outs = await Promise.all(FORMS.map(async (form) => outputsOf((await convertFile(file, { form })).bytes, feeds)));
      expect(outs[1]).toEqual(outs[0]);
      expect(outs[2]).toEqual(outs[0]);
      // With onnxruntime's default optimizations, the forms agree to float32 rounding.
      const optimized = await Promise.all(
        FORMS.map(async (form) => {
          const s = await ort.InferenceSession.create((await convertFile(file, { form })).bytes, { logSeverityLevel: 3 });
          try {
            return await s.run(feeds);
          } finally {
            await s.release();
          }
        }),
      );
      for (const k of Object.keys(optimized[0]!)) {
        if (optimized[0]![k]!.type !== 'float32') continue;
        for (const o of optimized.slice(1)) expect(maxScaledDiff(o[k]!, optimized[0]![k]!)).toBeLessThan(1e-5);
      }
    });
  }
});

describe('upstream conformance data', () => {
  const fround = Math.fround;
  // ALReLU(x) = |LeakyRelu(x, a)|: the converted model's output is the absolute value of the upstream LeakyRelu output.
  for (const dir of [
    'node/test_leakyrelu',
    'node/test_leakyrelu_default',
    'node/test_leakyrelu_example',
    'pytorch-converted/test_LeakyReLU',
    'pytorch-converted/test_LeakyReLU_with_negval',
  ]) {
    it(`${dir}: converted output = |upstream LeakyRelu output|`, async () => {
      const file = fixture(`onnx-onnx/${dir}/model.onnx`);
      const set = testSets(file)[0]!;
      for (const form of FORMS) {
        const { bytes } = await convertFile(file, { form });
        const [got] = await outputsOf(bytes, await feedsFor(file));
        const ref = set.outputs[0]!.data as Float32Array;
        const want = Float32Array.from(ref, (v) => Math.abs(v));
        expect(got, form).toEqual(new Uint8Array(want.buffer));
      }
    });
  }
  for (const dir of ['node/test_relu', 'pytorch-converted/test_ReLU']) {
    it(`${dir}: converted output = x for x > 0, -a*x below, with --alpha`, async () => {
      const file = fixture(`onnx-onnx/${dir}/model.onnx`);
      const x = testSets(file)[0]!.inputs[0]!.data as Float32Array;
      expect(x.some((v) => v < 0)).toBe(true);
      for (const alpha of [0.01, 0.2]) {
        const { bytes } = await convertFile(file, { alpha });
        const [got] = await outputsOf(bytes, await feedsFor(file));
        const want = Float32Array.from(x, (v) => (v > 0 ? v : Math.abs(fround(fround(alpha) * v))));
        expect(got).toEqual(new Uint8Array(want.buffer));
      }
    });
  }
});

describe('look-alikes', () => {
  it('reports PRelu, ThresholdedRelu, custom-domain Relu and LSTM activations without touching them', async () => {
    const cases: [string, RegExp][] = [
      ['onnx-onnx/node/test_prelu_example/model.onnx', /PRelu/],
      ['onnx-onnx/node/test_thresholdedrelu/model.onnx', /ThresholdedRelu/],
      ['windows-ml/custom_domain_relu/relu.onnx', /custom domain 'MyReluDomain'/],
      ['onnx2c/simple_networks/lstm_k1_b1_r1_relu.onnx', /LSTM activation/],
    ];
    for (const [f, what] of cases) {
      const { report, model } = await convertFile(fixture(f));
      expect(report.lookalikes[0]!.what).toMatch(what);
      expect(Buffer.from(encodeModel(model)).equals(readFileSync(fixture(f)))).toBe(true);
    }
  });

  it('reports Clip(min=0), Max(x, 0) and com.microsoft fused activations', () => {
    const x = tensorInfo('x', DataType.FLOAT, [4]);
    const m = buildModel({
      nodes: [
        makeNode('Clip', ['x', 'zero', 'six'], ['a'], 'relu6'),
        makeNode('Max', ['a', 'zero'], ['b'], 'max0'),
        makeNode('FusedConv', ['b'], ['y'], 'fc', [{ name: 'activation', type: 3, s: Buffer.from('Relu') }], 'com.microsoft'),
      ],
      inputs: [x],
      outputs: [tensorInfo('y', DataType.FLOAT, [4])],
      initializers: [floatTensor('zero', [], [0]), floatTensor('six', [], [6])],
    });
    const { report } = convertModel(m);
    expect(report.replaced).toBe(0);
    expect(report.lookalikes.map((l) => l.node)).toEqual(['relu6', 'max0', 'fc']);
  });
});

/** x -> If(c) { then: If(c) { Relu(x) } else: { Relu(x) } } else: { Relu(x) }, and Block(x) = Relu(x) as a local function. */
function nestedModel(): ModelProto {
  const vec = (n: string) => tensorInfo(n, DataType.FLOAT, [4]);
  const body = (name: string, nodes: NodeProto[], out: string) => ({ name, node: nodes, input: [], output: [vec(out)] });
  const inner = makeNode('If', ['c'], ['i1'], 'inner_if', [
    graphAttr('then_branch', body('inner_then', [makeNode('Relu', ['x'], ['t2'], 'deep_relu')], 't2')),
    graphAttr('else_branch', body('inner_else', [makeNode('Neg', ['x'], ['e2'], 'neg')], 'e2')),
  ]);
  const outer = makeNode('If', ['c'], ['y'], 'outer_if', [
    graphAttr('then_branch', body('outer_then', [inner, makeNode('Identity', ['i1'], ['t1'], 'id')], 't1')),
    graphAttr('else_branch', body('outer_else', [makeNode('Relu', ['x'], ['e1'], 'else_relu')], 'e1')),
  ]);
  const m = buildModel({
    nodes: [outer, makeNode('Block', ['x'], ['z'], 'block', [], 'local')],
    inputs: [vec('x'), tensorInfo('c', DataType.BOOL, [])],
    outputs: [vec('y'), vec('z')],
  });
  m.opsetImport!.push({ domain: 'local', version: 1 });
  m.functions = [
    {
      name: 'Block',
      domain: 'local',
      input: ['X'],
      output: ['Y'],
      node: [makeNode('Relu', ['X'], ['Y'], 'fn_relu')],
      opsetImport: [{ domain: '', version: 13 }],
    },
  ];
  return m;
}

describe('everywhere in the model', () => {
  const x = new Float32Array([-2, -0.5, 0.25, 3]);
  const alrelu = Float32Array.from(x, (v) => (v > 0 ? v : Math.abs(Math.fround(Math.fround(0.01) * v))));
  const run = (bytes: Uint8Array, c: boolean) =>
    runModel(bytes, { x: new ort.Tensor('float32', x, [4]), c: new ort.Tensor('bool', Uint8Array.of(c ? 1 : 0), []) });

  it('rewrites Relus in If bodies at depth 2 and in model-local functions, for every form', async () => {
    for (const form of FORMS) {
      const { model, report, bytes } = convertModel(nestedModel(), { form });
      expect(report.replaced).toBe(3);
      expect(Object.keys(report.byScope).sort()).toEqual(expect.arrayContaining(['function local:Block']));
      expect(report.byScope['main/outer_if.then_branch/inner_if.then_branch']).toBe(1);
      expect(report.byScope['main/outer_if.else_branch']).toBe(1);
      expect(opsOf(model)).not.toContain('Relu');
      const yes = await run(bytes, true);
      const no = await run(bytes, false);
      expect(yes.y!.data, form).toEqual(alrelu);
      expect(no.y!.data, form).toEqual(alrelu);
      expect(yes.z!.data, form).toEqual(alrelu);
      // Idempotent inside bodies and functions too.
      expect(convertModel(model, { form }).report.replaced).toBe(0);
    }
  });

  it('keeps outer-scope captures working: the Relu output read inside If/Loop bodies is the ALReLU value', async () => {
    const xs = Float32Array.of(-3, -1, -0.25, 0.5, 2, -7);
    const x = new ort.Tensor('float32', xs, [2, 3]);
    const y = Float32Array.from(xs, (v) => (v > 0 ? v : Math.abs(Math.fround(Math.fround(0.5) * v))));
    // Loop: accum_out = accum + y, three times from zero, in float32.
    const loop = fixture('burn-onnx/subgraph/outer_scope_loop.onnx');
    const loopFeeds = {
      x,
      max_iter: new ort.Tensor('int64', BigInt64Array.of(3n), []),
      cond_init: new ort.Tensor('bool', Uint8Array.of(1), []),
      accum_init: new ort.Tensor('float32', new Float32Array(6), [2, 3]),
    };
    const want = Float32Array.from(y, (v) => Math.fround(Math.fround(v + v) + v));
    const converted = await runModel((await convertFile(loop, { alpha: 0.5 })).bytes, loopFeeds);
    expect(converted.output!.data).toEqual(want);
    // If: both branches read y; alpha = 0 reproduces the original, alpha = 0.5 does not.
    const ref = fixture('burn-onnx/subgraph/outer_scope_ref.onnx');
    for (const c of [0, 1]) {
      const feeds = { x, condition: new ort.Tensor('bool', Uint8Array.of(c), []) };
      const original = await outputsOf(readFileSync(ref), feeds);
      expect(await outputsOf((await convertFile(ref, { alpha: 0 })).bytes, feeds)).toEqual(original);
      expect(await outputsOf((await convertFile(ref, { alpha: 0.5 })).bytes, feeds)).not.toEqual(original);
    }
  });

  it('gives every new value and node a name unique across the whole model', () => {
    for (const form of FORMS) {
      const { model } = convertModel(nestedModel(), { form });
      const outs = allNodes(model).flatMap((n) => n.output ?? []);
      const fnOuts = new Set((model.functions ?? []).flatMap((f) => f.node ?? []).flatMap((n) => n.output ?? []));
      const graphOuts = outs.filter((o) => !fnOuts.has(o));
      expect(new Set(graphOuts).size).toBe(graphOuts.length);
      const names = allNodes(model)
        .map((n) => n.name)
        .filter(Boolean);
      expect(new Set(names).size).toBe(names.length);
      expect(allNames(model).size).toBeGreaterThan(0);
    }
  });
});

describe('dtypes and opsets', () => {
  it('float16 SqueezeNet at opset 7: LeakyRelu-6 takes float16, so the opset stays and outputs follow ALReLU', async () => {
    const file = fixture('windows-ml/squeezenet_fp16/SqueezeNet_fp16.onnx');
    const feeds = await feedsFor(file);
    const { report, model, bytes } = await convertFile(file);
    expect(report.opset).toBe(7);
    expect(report.warnings).toEqual([]);
    expect(opsets(model)).toEqual(opsets((await readModel(file)).model));
    const zero = await convertFile(file, { alpha: 0 });
    expect(await outputsOf(zero.bytes, feeds)).toEqual(await outputsOf(readFileSync(file), feeds));
    const out = await outputsOf(bytes, feeds);
    expect(out[0]!.length).toBeGreaterThan(0);
  });

  it('bfloat16 before opset 16: written as Max(x, Mul(x, -a)), ops that exist at the model opset, with a warning', () => {
    const m = buildModel({
      nodes: [makeNode('Relu', ['x'], ['y'], 'r')],
      inputs: [tensorInfo('x', DataType.BFLOAT16, [4])],
      outputs: [tensorInfo('y', DataType.BFLOAT16, [4])],
      opset: 14,
    });
    const { model, report } = convertModel(m);
    expect(report.replaced).toBe(1);
    expect(report.nodes[0]!.form).toBe('max');
    expect(report.warnings.join(' ')).toMatch(/bfloat16/);
    expect(opsOf(model)).toEqual(['Constant', 'Mul', 'Max']);
    expect(opsets(model)).toEqual([['', 14]]);
    // At opset 16 LeakyRelu takes bfloat16: the normal form.
    const m16 = convertModel({ ...m, opsetImport: [{ domain: '', version: 16 }] });
    expect(opsOf(m16.model)).toEqual(['LeakyRelu', 'Abs']);
  });

  it('refuses opsets older than LeakyRelu (opset < 6)', () => {
    const m = buildModel({ nodes: [makeNode('Relu', ['x'], ['y'], 'r')], inputs: [tensorInfo('x', 1, [4])], outputs: [tensorInfo('y', 1, [4])], opset: 5 });
    expect(() => convert(m, { file: 'old.onnx' })).toThrow(UserError);
    expect(() => convert(m, { file: 'old.onnx' })).toThrow(/opset 5 is older than LeakyRelu/);
  });

  it('function form raises IR version to 8 when older, and says so', async () => {
    const { model, report } = await convertFile(fixture('onnx2c/mnist/model.onnx'), { form: 'function' });
    expect(report.irVersion.to).toBeGreaterThanOrEqual(8);
    if (report.irVersion.from < 8) expect(report.warnings.join(' ')).toMatch(/IR version raised/);
    expect(model.functions?.filter((f) => f.name === 'ALReLU')).toHaveLength(1);
  });
});

describe('what is not an activation', () => {
  const shapeModel = () =>
    buildModel({
      nodes: [
        makeNode('Shape', ['x'], ['s'], 'shape'),
        makeNode('Cast', ['s'], ['sf'], 'cast', [{ name: 'to', type: 2, i: DataType.FLOAT }]),
        makeNode('Relu', ['sf'], ['sr'], 'shape_relu'),
        makeNode('Relu', ['k'], ['kr'], 'scalar_relu'),
        makeNode('Relu', ['n'], ['nr'], 'int_relu'),
        makeNode('Relu', ['x'], ['y'], 'act'),
      ],
      inputs: [tensorInfo('x', DataType.FLOAT, [2, 3]), tensorInfo('k', DataType.FLOAT, []), tensorInfo('n', DataType.INT32, [3])],
      outputs: [
        tensorInfo('y', DataType.FLOAT, [2, 3]),
        tensorInfo('sr', DataType.FLOAT, [2]),
        tensorInfo('kr', DataType.FLOAT, []),
        tensorInfo('nr', DataType.INT32, [3]),
      ],
    });

  it('skips shape arithmetic, scalars and integer Relus with a reason; --all-relus takes the float ones', () => {
    const { report } = convertModel(shapeModel());
    expect(report.replaced).toBe(1);
    const reasons = Object.fromEntries(report.skipped.map((s) => [s.node, s.reason]));
    expect(reasons.shape_relu).toMatch(/Shape/);
    expect(reasons.scalar_relu).toMatch(/rank-0/);
    expect(reasons.int_relu).toMatch(/int32/);
    const all = convertModel(shapeModel(), { allRelus: true });
    expect(all.report.replaced).toBe(3);
    expect(all.report.skipped.map((s) => s.node)).toEqual(['int_relu']);
  });
});

describe('selection', () => {
  const file = fixture('burn-onnx/mnist_pytorch2/mnist.onnx');
  it('--include / --exclude by glob and /regex/, --ops', async () => {
    const names = (await convertFile(file)).report.nodes.map((n) => n.node);
    expect(names).toHaveLength(4);
    const one = await convertFile(file, { include: [names[0]!] });
    expect(one.report.replaced).toBe(1);
    expect(one.report.skipped).toHaveLength(3);
    expect(one.report.skipped[0]!.reason).toMatch(/--include/);
    const notOne = await convertFile(file, { exclude: [names[0]!] });
    expect(notOne.report.nodes.map((n) => n.node)).toEqual(names.slice(1));
    const re = await convertFile(file, { include: [`/^${names[1]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$/`] });
    expect(re.report.nodes.map((n) => n.node)).toEqual([names[1]]);
    const glob = await convertFile(file, { include: ['*'], exclude: ['*'] });
    expect(glob.report.replaced).toBe(0);
    const leakyOnly = await convertFile(file, { ops: ['leakyrelu'] });
    expect(leakyOnly.report.replaced).toBe(0);
    expect(leakyOnly.report.skipped.every((s) => /--ops/.test(s.reason))).toBe(true);
  });

  it('a LeakyRelu keeps its own alpha; --alpha applies to Relu only', async () => {
    const { model } = await convertFile(fixture('onnx-onnx/node/test_leakyrelu/model.onnx'), { alpha: 0.3 });
    const leaky = allNodes(model).find((n) => n.opType === 'LeakyRelu')!;
    expect(leaky.attribute?.[0]?.f).toBeCloseTo(0.1, 6);
    const dflt = await convertFile(fixture('onnx-onnx/node/test_leakyrelu_default/model.onnx'), { alpha: 0.3 });
    expect(allNodes(dflt.model).find((n) => n.opType === 'LeakyRelu')!.attribute?.[0]?.f).toBeCloseTo(0.01, 6);
  });
});

describe('provenance and what is kept', () => {
  it('records alpha, form, count and version; keeps metadata, doc strings, value_info and opset imports', async () => {
    const m = buildModel({
      nodes: [{ ...makeNode('Relu', ['x'], ['h'], 'r1'), docString: 'first activation' }, makeNode('Relu', ['h'], ['y'], 'r2')],
      inputs: [tensorInfo('x', DataType.FLOAT, ['N', 4])],
      outputs: [tensorInfo('y', DataType.FLOAT, ['N', 4])],
      valueInfo: [tensorInfo('h', DataType.FLOAT, ['N', 4])],
    });
    m.docString = 'model doc';
    m.metadataProps = [{ key: 'author', value: 'someone' }];
    const { model, report } = convertModel(m, { alpha: 0.05 });
    const props = Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key, p.value]));
    expect(props).toMatchObject({ author: 'someone', 'alrelu.alpha': '0.05', 'alrelu.form': 'subgraph', 'alrelu.count': '2' });
    expect(props['alrelu.version']).toMatch(/^\d+\.\d+\.\d+/);
    expect(model.docString).toBe('model doc');
    expect(opsets(model)).toEqual([['', 13]]);
    const h = allNodes(model).find((n) => n.output?.[0] === 'h')!;
    expect(h.opType).toBe('Abs');
    expect(h.docString).toBe('first activation');
    // value_info: the original entry stays and each new intermediate gets the type of the value beside it.
    const vi = model.graph!.valueInfo!;
    expect(vi[0]!.name).toBe('h');
    const added = vi.slice(1);
    expect(added).toHaveLength(report.replaced);
    for (const v of added) expect(JSON.stringify(v.type)).toBe(JSON.stringify(vi[0]!.type));
    expect(report.replaced).toBe(2);
  });

  it('writes nothing new into a model with nothing to convert', () => {
    const m = buildModel({ nodes: [makeNode('Abs', ['x'], ['y'], 'a')], inputs: [tensorInfo('x', 1, [2])], outputs: [tensorInfo('y', 1, [2])] });
    const { model } = convertModel(m);
    expect(model.metadataProps ?? []).toEqual([]);
  });

  it('a function-form model converted again with --form fused: recognised, nothing changes', async () => {
    const f = await convertFile(fixture('onnx2c/mnist/model.onnx'), { form: 'function' });
    const again = convertModel(f.model, { form: 'fused' });
    expect(again.report.replaced).toBe(0);
    expect(again.report.alreadyAlrelu.map((a) => a.form)).toEqual(['function', 'function']);
  });
});

describe('alpha attribute of the fused form', () => {
  it('is exactly -a', () => {
    const m = buildModel({
      nodes: [makeNode('LeakyRelu', ['x'], ['y'], 'l', [floatAttr('alpha', 0.2)])],
      inputs: [tensorInfo('x', 1, [2])],
      outputs: [tensorInfo('y', 1, [2])],
    });
    const { model } = convertModel(m, { form: 'fused' });
    const n = allNodes(model)[0]!;
    expect(n.opType).toBe('LeakyRelu');
    expect(n.attribute![0]!.f).toBeCloseTo(-0.2, 7);
    expect(n.output).toEqual(['y']);
  });
});
