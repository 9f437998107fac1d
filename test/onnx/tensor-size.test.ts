/**
 * A tensor whose dims disagree with its data is refused when the model is read, by every command, with
 * exit 2 and the file's name: raw bytes short or long, typed values miscounted, external ranges of the
 * wrong length, negative dims, and dims whose product passes 2^53 (or wraps int64 to something small).
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadReferenceCases } from '../../src/data/reference.js';
import { UserError } from '../../src/errors.js';
import { DataType } from '../../src/onnx/dtype.js';
import { decodeModelBytes, readModel } from '../../src/onnx/read.js';
import { encodeModel, encodeTensor } from '../../src/onnx/schema.js';
import type { ModelProto, TensorProto } from '../../src/onnx/types.js';
import { errorLine, runCli } from '../cli.js';
import { buildModel, makeNode, tensorInfo } from '../convert/build.js';
import { externalTensor, gemmModel, tmp, weights } from './links.js';

const floats = (n: number) => new Uint8Array(new Float32Array(n).buffer);
const w = (t: Partial<TensorProto>): TensorProto => ({ name: 'w', dataType: DataType.FLOAT, dims: [4, 3], ...t });

async function rejection(p: Promise<unknown>): Promise<UserError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UserError);
  return e as UserError;
}

/** Lying versions of the Gemm model's [4, 3] float weight, each with the cause it must be refused for. */
const lies: { name: string; w: TensorProto; file?: Buffer; cause: RegExp }[] = [
  { name: 'too few raw bytes', w: w({ rawData: floats(11) }), cause: /tensor 'w' has 44 bytes of raw data, but dims \[4, 3\] of float need 48/ },
  { name: 'too many raw bytes', w: w({ rawData: floats(13) }), cause: /has 52 bytes of raw data, but dims \[4, 3\] of float need 48/ },
  { name: 'a float_data count mismatch', w: w({ floatData: new Array(11).fill(0.5) }), cause: /has 11 values in float_data, but dims \[4, 3\] declare 12/ },
  { name: 'no data at all', w: w({}), cause: /has no data, but dims \[4, 3\] declare 12 elements/ },
  { name: 'a negative dim', w: w({ dims: [-4, -3], rawData: floats(12) }), cause: /has a negative dimension \(-4\)/ },
  {
    name: 'dims whose product passes 2^53',
    w: w({ dims: [2 ** 27, 2 ** 27], rawData: floats(12) }),
    cause: /dims \[134217728, 134217728\] whose product is beyond 2\^53/,
  },
  // 2^32 * 2^32 is 0 in int64 arithmetic: a reader that multiplies blindly sees an empty tensor.
  { name: 'dims whose product wraps int64 to 0', w: w({ dims: [2 ** 32, 2 ** 32] }), cause: /whose product is beyond 2\^53/ },
  { name: 'a dim beyond 2^53', w: w({ dims: [2 ** 60, 1], rawData: floats(12) }), cause: /has a dimension of 1152921504606846976, beyond 2\^53/ },
  {
    name: 'an external range of the wrong length',
    w: externalTensor('w', [4, 3], 'w.bin', 0, 44),
    file: weights(),
    cause: /has 44 bytes of external data 'w\.bin', but dims \[4, 3\] of float need 48/,
  },
  {
    name: 'an external file too short, no length given',
    w: externalTensor('w', [4, 3], 'w.bin', 8),
    file: weights(),
    cause: /has 40 bytes of external data 'w\.bin', but dims \[4, 3\] of float need 48/,
  },
  {
    name: 'external dims larger than the file says',
    w: externalTensor('w', [4, 4], 'w.bin', 0, 48),
    file: weights(),
    cause: /has 48 bytes of external data 'w\.bin', but dims \[4, 4\] of float need 64/,
  },
];

function writeLie(l: (typeof lies)[number]): { dir: string; file: string } {
  const dir = tmp('alrelu-size-');
  const file = join(dir, 'model.onnx');
  writeFileSync(file, encodeModel(gemmModel(l.w)));
  if (l.file) writeFileSync(join(dir, 'w.bin'), l.file);
  return { dir, file };
}

describe('tensor sizes: refused at read time', () => {
  for (const l of lies) {
    it(l.name, async () => {
      const { file } = writeLie(l);
      const e = await rejection(readModel(file));
      expect(e.subject).toBe(file);
      expect(e.cause_).toMatch(l.cause);
    });
  }

  /** A model whose only lying tensor sits somewhere other than the main graph's initializers. */
  const elsewhere = (where: string): ModelProto => {
    const lying: TensorProto = { name: 'c', dataType: DataType.FLOAT, dims: [2], rawData: floats(3) };
    const constant = makeNode('Constant', [], ['c'], 'const', [{ name: 'value', type: 4, t: lying }]);
    const x = tensorInfo('x', DataType.FLOAT, [2]);
    if (where === 'function') {
      const m = buildModel({ nodes: [makeNode('F', ['x'], ['y'], 'f', [], 'local')], inputs: [x], outputs: [tensorInfo('y', DataType.FLOAT, [2])] });
      m.opsetImport!.push({ domain: 'local', version: 1 });
      m.functions = [
        {
          name: 'F',
          domain: 'local',
          input: ['x'],
          output: ['y'],
          opsetImport: [{ domain: '', version: 13 }],
          node: [constant, makeNode('Add', ['x', 'c'], ['y'], 'add')],
        },
      ];
      return m;
    }
    if (where === 'sparse') {
      const m = buildModel({ nodes: [makeNode('Identity', ['x'], ['y'], 'id')], inputs: [x], outputs: [tensorInfo('y', DataType.FLOAT, [2])] });
      m.graph!.sparseInitializer = [
        { dims: [4], values: { ...lying, name: 's' }, indices: { name: 's_i', dataType: DataType.INT64, dims: [2], int64Data: [0, 3] } },
      ];
      return m;
    }
    // a Constant inside an If's then-branch
    const branch = (nodes: ReturnType<typeof makeNode>[]) => ({ name: 'b', node: nodes, output: [tensorInfo('c', DataType.FLOAT, [2])] });
    return buildModel({
      nodes: [
        makeNode('If', ['cond'], ['y'], 'if', [
          { name: 'then_branch', type: 5, g: branch([constant]) },
          {
            name: 'else_branch',
            type: 5,
            g: branch([makeNode('Constant', [], ['c'], 'k', [{ name: 'value', type: 4, t: { ...lying, rawData: floats(2) } }])]),
          },
        ]),
      ],
      inputs: [tensorInfo('cond', DataType.BOOL, [])],
      outputs: [tensorInfo('y', DataType.FLOAT, [2])],
    });
  };

  for (const where of ['subgraph', 'function', 'sparse']) {
    it(`a lying tensor in a ${where} is found too`, () => {
      const e = (() => {
        try {
          decodeModelBytes('m.onnx', encodeModel(elsewhere(where)));
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).cause_).toMatch(/has 12 bytes of raw data, but dims \[2\] of float need 8/);
    });
  }

  it('other element types: int64 and string counts, 4-bit packing', () => {
    const check = (t: TensorProto) => {
      const m = gemmModel(w({ rawData: floats(12) }));
      m.graph!.initializer!.push(t);
      try {
        decodeModelBytes('m.onnx', encodeModel(m));
        return undefined;
      } catch (e) {
        return (e as UserError).cause_;
      }
    };
    expect(check({ name: 'i', dataType: DataType.INT64, dims: [3], int64Data: [1, 2] })).toMatch(/'i' has 2 values in int64_data, but dims \[3\] declare 3/);
    expect(check({ name: 's', dataType: DataType.STRING, dims: [2], stringData: [new Uint8Array([65])] })).toMatch(/'s' has 1 values in string_data/);
    expect(check({ name: 'q', dataType: DataType.INT4, dims: [3], rawData: new Uint8Array(2) })).toBeUndefined(); // 3 nibbles in 2 bytes
    expect(check({ name: 'q', dataType: DataType.INT4, dims: [3], rawData: new Uint8Array(3) })).toMatch(
      /'q' has 3 bytes of raw data, but dims \[3\] of int4 need 2/,
    );
    expect(check({ name: 'h', dataType: DataType.FLOAT16, dims: [2], int32Data: [15360, 15360] })).toBeUndefined();
    expect(check({ name: '', dataType: DataType.DOUBLE, dims: [1], rawData: new Uint8Array(4) })).toMatch(/an unnamed tensor has 4 bytes/);
  });

  it('zero-sized dims and scalars read; a valid external tensor reads', async () => {
    const dir = tmp('alrelu-size-');
    const m = gemmModel(externalTensor('w', [4, 3], 'w.bin', 0, 48));
    m.graph!.initializer!.push(
      { name: 'empty', dataType: DataType.FLOAT, dims: [0, 3] },
      { name: 'empty_raw', dataType: DataType.FLOAT, dims: [5, 0], rawData: new Uint8Array(0) },
      { name: 'scalar', dataType: DataType.FLOAT, dims: [], floatData: [2] },
    );
    writeFileSync(join(dir, 'w.bin'), weights());
    writeFileSync(join(dir, 'model.onnx'), encodeModel(m));
    const mf = await readModel(join(dir, 'model.onnx'));
    expect(mf.model.graph!.initializer!.map((t) => t.name)).toEqual(['w', 'b', 'empty', 'empty_raw', 'scalar']);
    // and the CLI agrees: inspect and convert take it
    expect((await runCli(['inspect', join(dir, 'model.onnx'), '--no-training'])).code).toBe(0);
    const c = await runCli(['convert', join(dir, 'model.onnx'), '-o', join(dir, 'out.onnx'), '--quiet']);
    expect(c.code, c.stderr).toBe(0);
  });
});

describe('tensor sizes: reference .pb files', () => {
  it('dims that claim more than the data are refused before anything is allocated from them', async () => {
    const set = join(tmp('alrelu-size-'), 'test_data_set_0');
    mkdirSync(set);
    writeFileSync(join(set, 'output_0.pb'), encodeTensor({ name: 'y', dataType: DataType.FLOAT, dims: [1], floatData: [0] }));
    // 2^50 doubles (8 PiB) from 10 bytes of dims: sizing the buffer first fails with V8's allocation error
    writeFileSync(join(set, 'input_0.pb'), encodeTensor({ name: 'x', dataType: DataType.DOUBLE, dims: [2 ** 50], doubleData: [1] }));
    const e = await rejection(loadReferenceCases(set));
    expect(e.subject).toBe(join(set, 'input_0.pb'));
    expect(e.cause_).toMatch(/tensor 'x' has 1 elements, dims say 1125899906842624/);
    writeFileSync(join(set, 'input_0.pb'), encodeTensor({ name: 'x', dataType: DataType.FLOAT, dims: [-2], floatData: [1, 2] }));
    expect((await rejection(loadReferenceCases(set))).cause_).toMatch(/dims say -2/);
  });
});

describe('tensor sizes: every command refuses with exit 2 and the file name', () => {
  const cases = lies.filter((l) =>
    [
      'too few raw bytes',
      'too many raw bytes',
      'a float_data count mismatch',
      'a negative dim',
      'dims whose product passes 2^53',
      'an external range of the wrong length',
    ].includes(l.name),
  );
  for (const l of cases) {
    it(l.name, async () => {
      const { dir, file } = writeLie(l);
      const before = readdirSync(dir).sort();
      for (const args of [
        ['inspect', file],
        ['convert', file, '-o', join(dir, 'out.onnx')],
        ['eval', file, '--data', 'iris', '--ep', 'cpu'],
      ]) {
        const r = await runCli(args, { timeoutMs: 60_000 });
        expect(r.code, `${args[0]}: ${r.stderr}`).toBe(2);
        const line = errorLine(r);
        expect(line).toContain(file);
        expect(line).toMatch(l.cause);
      }
      expect(existsSync(join(dir, 'out.onnx'))).toBe(false);
      expect(readdirSync(dir).sort()).toEqual(before);
    });
  }
});
