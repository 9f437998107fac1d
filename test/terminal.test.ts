/**
 * What reaches the terminal: a model and a data set whose names carry terminal escape sequences
 * (screen clear, window title), carriage return and line feed, a bidi override and a C1 CSI, run
 * through the real CLI. None of those characters may reach stdout or stderr raw; each name shows in
 * its escaped form on one line, and --json keeps the exact names.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataType } from '../src/onnx/dtype.js';
import { errorLine, runCli, type CliResult } from './cli.js';
import { buildModel, bytesOfModel, floatTensor, makeNode, tensorInfo } from './convert/build.js';
import { pngOf } from './data/build.js';

/** Clear screen, set the window title, overwrite and forge a line, reverse the text, and a C1 CSI. */
const EVIL = '\x1b[2J\x1b]0;pwned\x07\r\nerror: forged\u202eevil\x9b31m<i>';
/** The same, as printable() writes it (independent of it: spelled out by hand). */
const SHOWN = String.raw`\x1b[2J\x1b]0;pwned\x07\x0d\x0aerror: forged\u{202e}evil\x9b31m<i>`;
/** Characters that must never reach the terminal raw (LF is checked through SHOWN: the tool's own lines have it). */
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

const tmp = mkdtempSync(join(tmpdir(), 'alrelu-terminal-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const name = (what: string) => `${what}${EVIL}`;

/** x [N,1,2,2] -> Flatten -> MatMul [4,2] -> Relu -> Relu -> y [N,2], every name hostile. */
function evilModel(extraDomain: boolean): Uint8Array {
  const [x, flat, mm, r1, y] = ['in', 'flat', 'mm', 'r1', 'out'].map(name) as [string, string, string, string, string];
  const m = buildModel({
    nodes: [
      makeNode('Flatten', [x], [flat], name('flatten')),
      makeNode('MatMul', [flat, name('w')], [mm], name('matmul')),
      makeNode('Relu', [mm], [r1], name('relu')),
      makeNode('Relu', [r1], [y], name('skipme')),
    ],
    inputs: [tensorInfo(x, DataType.FLOAT, ['N', 1, 2, 2])],
    outputs: [tensorInfo(y, DataType.FLOAT, ['N', 2])],
    initializers: [floatTensor(name('w'), [4, 2], [1, -1, 0.5, 0.25, -0.5, 1, 0.75, -0.25])],
  });
  m.producerName = name('producer');
  m.producerVersion = name('1.0');
  m.docString = name('doc');
  m.metadataProps = [{ key: name('key'), value: name('value') }];
  m.graph!.name = name('graph');
  if (extraDomain) m.opsetImport!.push({ domain: name('domain'), version: 1 });
  return bytesOfModel(m);
}

const modelPath = join(tmp, `${name('model')}.onnx`);
writeFileSync(modelPath, evilModel(true));
const plainDomainModel = join(tmp, `${name('second')}.onnx`);
writeFileSync(plainDomainModel, evilModel(false));

/** A 2-class image folder whose own name and class names are hostile; 2x2 grayscale PNGs. */
const data = join(tmp, name('data'));
for (const [k, cls] of [name('cat'), name('dog')].entries()) {
  mkdirSync(join(data, cls), { recursive: true });
  for (let i = 0; i < 3; i++)
    writeFileSync(join(data, cls, `${name(String(i))}.png`), pngOf({ width: 2, height: 2, pixels: Uint8Array.of(10 * i, 200 * k, 30, 90) }));
}

/** Nothing raw on either stream, and the names that should show do, escaped on one line. */
function expectPrintable(r: CliResult, shows: string[]): void {
  const all = r.stdout + r.stderr;
  expect(all, all).not.toMatch(RAW);
  expect(all).not.toMatch(/^error: forged/m);
  for (const s of shows) expect(all).toContain(`${s}${SHOWN}`);
}

describe('names from models and data reach the terminal escaped', () => {
  it('inspect: node, input, output, producer and opset domain names', async () => {
    const r = await runCli(['inspect', modelPath]);
    expect(r.code, r.stderr).toBe(0);
    expectPrintable(r, ['model', 'in', 'out', 'producer', 'domain', 'relu']);
  });

  it('inspect --json keeps the exact names, with nothing raw on the terminal', async () => {
    const r = await runCli(['inspect', modelPath, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(RAW);
    const j = JSON.parse(r.stdout) as { producer: string; inputs: { name: string }[]; outputs: { name: string }[] };
    expect(j.producer).toContain(name('producer'));
    expect(j.inputs.map((i) => i.name)).toEqual([name('in')]);
    expect(j.outputs.map((o) => o.name)).toEqual([name('out')]);
  });

  it('convert: file names and skipped node names', async () => {
    const out = join(tmp, `${name('converted')}.onnx`);
    const r = await runCli(['convert', modelPath, '-o', out, '--exclude', '/skipme/']);
    expect(r.code, r.stderr).toBe(0);
    expectPrintable(r, ['model', 'converted', 'skipme']);
  });

  it('eval (text): model file names, the data folder name, output names; the HTML report escapes them as HTML', async () => {
    const report = join(tmp, `${name('report')}.html`);
    const r = await runCli(['eval', modelPath, plainDomainModel, '--data', data, '--channels', 'gray', '--ep', 'cpu,wasm', '--report', report]);
    expect(r.code, r.stderr).toBe(0);
    expectPrintable(r, ['model', 'second', 'data', 'out', 'report']);
    const html = readFileSync(report, 'utf8');
    expect(html).not.toContain('<i>');
    for (const shown of ['model', 'data', 'out', 'cat', 'dog'])
      expect(html, shown).toContain(`${shown}\x1b[2J\x1b]0;pwned\x07\r\nerror: forged\u202eevil\x9b31m&lt;i&gt;`);
  });

  it('finetune: the written file named in its summary', async () => {
    const out = join(tmp, `${name('tuned')}.onnx`);
    const r = await runCli(['finetune', modelPath, '--data', data, '--channels', 'gray', '--epochs', '1', '--batch-size', '2', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expectPrintable(r, ['tuned']);
  });

  it('error lines: one line, the hostile names escaped in it', async () => {
    // class folders without images: the error lists the class names
    const empty = join(tmp, name('empty'));
    for (const c of [name('cat'), name('dog')]) mkdirSync(join(empty, c), { recursive: true });
    const e1 = await runCli(['eval', modelPath, '--data', empty]);
    expect(e1.code).toBe(2);
    expect(errorLine(e1)).toContain(`cat${SHOWN}, dog${SHOWN}`);
    expectPrintable(e1, ['empty']);
    // a file that is not there, for every command that reads a model
    for (const cmd of [['inspect'], ['convert', '-o', join(tmp, 'o.onnx')], ['eval', '--data', 'iris']]) {
      const missing = join(tmp, `${name('missing')}.onnx`);
      const r = await runCli([cmd[0]!, missing, ...cmd.slice(1)]);
      expect(r.code, cmd[0]).toBe(2);
      errorLine(r);
      expectPrintable(r, ['missing']);
    }
  });
});
