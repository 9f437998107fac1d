/**
 * Structurally invalid graphs through the CLI: convert (every mode) and finetune refuse them with exit 2,
 * one line naming the file and the first problem, and write nothing; inspect lists every problem and says
 * the model cannot be converted, with exit 0 (it is a report).
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeModel, encodeModel } from '../../src/onnx/schema.js';
import type { ModelProto } from '../../src/onnx/types.js';
import { errorLine, runCli } from '../cli.js';
import { fixture, ROOT } from '../helpers.js';

const IRIS = join(ROOT, 'models/iris-mlp.onnx');

/** `src` edited by `edit`, written as model.onnx into a fresh folder. */
function broken(src: string, edit: (m: ModelProto) => void): { dir: string; model: string } {
  const dir = mkdtempSync(join(tmpdir(), 'alrelu-invalid-'));
  const m = decodeModel(readFileSync(src));
  edit(m);
  const model = join(dir, 'model.onnx');
  writeFileSync(model, encodeModel(m));
  return { dir, model };
}

/** iris-mlp (Gemm -> Relu -> Gemm) with three problems: an undefined input, a value produced twice, a cycle. */
const threeProblems = () =>
  broken(IRIS, (m) => {
    const nodes = m.graph!.node!;
    nodes[1]!.input = ['hidden_typo'];
    nodes.push(
      { name: 'again', opType: 'Neg', input: ['input'], output: ['logits'] },
      { name: 'ring_a', opType: 'Add', input: ['logits', 'ring_out'], output: ['ring_in'] },
      { name: 'ring_b', opType: 'Relu', input: ['ring_in'], output: ['ring_out'] },
    );
  });
const FIRST = "invalid graph: node 'again' (Neg) output 'logits' is also produced by node '/fc2/Gemm' (Gemm) (and 2 more problems)";
const ALL = [
  "node 'again' (Neg) output 'logits' is also produced by node '/fc2/Gemm' (Gemm)",
  "node '/Relu' (Relu) input 'hidden_typo' is not defined",
  "nodes 'ring_a' -> 'ring_b' -> 'ring_a' form a cycle",
];

async function expectRefused(args: string[], dir: string, model: string, cause: string): Promise<void> {
  const r = await runCli(args);
  expect(r.code, r.stderr).toBe(2);
  expect(errorLine(r)).toBe(`error: ${model}: ${cause}`);
  expect(readdirSync(dir)).toEqual(['model.onnx']);
}

describe('convert and finetune refuse an invalid graph', () => {
  const { dir, model } = threeProblems();
  const cases: [string, string[]][] = [
    ['convert', [model]],
    ['convert --form function -o out.onnx', [model, '--form', 'function', '-o', join(dir, 'out.onnx')]],
    ['convert --dry-run', [model, '--dry-run']],
    ['convert --verify', [model, '--verify']],
    ['convert --finetune', [model, '--finetune', '--data', 'iris', '--quiet']],
    ['finetune', ['finetune', model, '--data', 'iris']],
    ['finetune --dump-gradients', ['finetune', model, '--data', 'iris', '--dump-gradients', join(dir, 'g.json')]],
  ];
  for (const [what, args] of cases) {
    it(`${what}: exit 2, the first problem, nothing written`, () => expectRefused(args, dir, model, FIRST));
  }

  it('a problem inside an If branch is named by its path', async () => {
    const sub = broken(fixture('burn-onnx/subgraph/outer_scope_ref.onnx'), (m) => {
      m.graph!.node![1]!.attribute!.find((a) => a.name === 'then_branch')!.g!.node![0]!.input = ['y', 'bias_typo'];
    });
    await expectRefused([sub.model], sub.dir, sub.model, "invalid graph: main/If#1.then_branch: node 'Add#0' (Add) input 'bias_typo' is not defined");
  });
});

describe('inspect lists every problem', () => {
  it('as text and as JSON, says the model cannot be converted, and exits 0', async () => {
    const { model } = threeProblems();
    const text = await runCli(['inspect', model]);
    expect(text.code, text.stderr).toBe(0);
    const rows = text.stderr.split('\n');
    expect(rows.filter((l) => l.startsWith('problem ')).map((l) => l.replace(/^problem\s+/, ''))).toEqual(ALL);
    expect(rows).toContain('convertible  no: the graph is invalid (3 problems)');
    expect(rows.some((l) => l.startsWith('fine-tuning'))).toBe(false);

    const json = await runCli(['inspect', model, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const r = JSON.parse(json.stdout) as { problems: string[]; notConvertible: string | null; training: unknown; activations: unknown[] };
    expect(r.problems).toEqual(ALL);
    expect(r.notConvertible).toBe('the graph is invalid (3 problems)');
    expect(r.training).toBeNull();
    expect(r.activations).toEqual([]);
  });

  it('a valid model: no problems, convertible', async () => {
    const r = JSON.parse((await runCli(['inspect', IRIS, '--json', '--no-training'])).stdout) as { problems: string[]; notConvertible: string | null };
    expect(r.problems).toEqual([]);
    expect(r.notConvertible).toBeNull();
  });

  it('a valid model convert refuses for another reason (opset 5 has no LeakyRelu): still a report, with the reason', async () => {
    const { model } = broken(IRIS, (m) => (m.opsetImport = [{ domain: '', version: 5 }]));
    const r = await runCli(['inspect', model, '--no-training']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^convertible {2}no: opset 5 is older than LeakyRelu/m);
  });
});
