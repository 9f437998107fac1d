/** The CLI names a library option by the flag the user typed; everything else stays as the library said it. */
import { describe, expect, it } from 'vitest';
import { asFlag, withFlag } from '../src/cli/run.js';

describe('asFlag: library subjects as the user knows them', () => {
  it.each([
    ['epochs', '--epochs'],
    ['batchSize', '--batch-size'],
    ['maxSamples', '--limit'],
    ['schedule.every', '--lr-step'],
    ['optimizer.weightDecay', '--weight-decay'],
    ['input=x', '--input x'],
    ['data=no such: set', '--data no such: set'],
    ['pageEp=webgpu', '--page-ep webgpu'],
  ])('%s -> %s', (subject, flag) => expect(asFlag(subject)).toBe(flag));

  it.each([
    // a model's own input or output, files, and names that only look like keys
    'input x',
    'output logits',
    'model',
    '/tmp/data',
    'data.csv',
    'optimizer.eps',
    'constructor',
    'toString=1',
    '',
    'Epochs',
    'x=epochs',
  ])('leaves %j as it is', (subject) => expect(asFlag(subject)).toBe(subject));

  it("takes a command's own flag over the table", () => {
    expect(asFlag('output=y', { output: '--train-output' })).toBe('--train-output y');
    expect(asFlag('input=y', { output: '--train-output' })).toBe('--input y');
  });
});

describe('withFlag: a recorded `subject: cause` message', () => {
  it('names the option by its flag and keeps the cause', () => {
    expect(withFlag('input=nope: no such input in m.onnx; expected one of: input [N,4]')).toBe(
      '--input nope: no such input in m.onnx; expected one of: input [N,4]',
    );
    expect(withFlag('output=z: no such output in m.onnx')).toBe('--output z: no such output in m.onnx');
  });
  it("leaves messages about a model's input, a file or a type alone", () => {
    for (const m of [
      'input input: expected samples of shape [4]',
      'm.onnx: has no inputs',
      'float16 input: cannot feed float data',
      'input=a:b: no such input',
    ])
      expect(withFlag(m)).toBe(m);
  });
});
