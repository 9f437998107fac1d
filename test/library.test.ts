/** The package as a library (`import ... from 'alrelu'`): the built entry point exports every command's function. */
import { describe, expect, it } from 'vitest';
import { fixture, ROOT } from './helpers.js';

describe('library entry point', () => {
  it('resolves through package.json exports and converts, evaluates and builds a training step', async () => {
    const pkg = (await import(`${ROOT}/package.json`, { with: { type: 'json' } })).default as { exports: { '.': { default: string } } };
    const lib = (await import(`${ROOT}/${pkg.exports['.'].default}`)) as typeof import('../src/index.js');
    const mf = await lib.readModel(fixture('windows-ml/iris_mlp/Network.onnx'));
    expect(lib.convert(mf.model, { form: 'fused' }).replaced).toBe(2);
    const report = await lib.evaluate({ models: [fixture('windows-ml/iris_mlp/Network.onnx')], data: 'iris', eps: ['cpu'] });
    expect(report.results).toHaveLength(1);
    expect(report.results[0]).toMatchObject({ ok: true, ep: 'cpu' });
    const tm = lib.buildTrainingModel(mf.model, {
      sourceDir: mf.dir,
      file: 'iris',
      params: lib.chooseParameters(mf.model.graph!).trainable,
      task: 'classification',
      optimizer: { name: 'sgd' },
    });
    expect(tm.params.length).toBeGreaterThan(0);
    for (const name of [
      'openRuntime',
      'checkEps',
      'serve',
      'loadData',
      'backward',
      'computeGradients',
      'finetune',
      'trainability',
      'writeModel',
      'inspect',
      'verify',
      'replaceHead',
      'loadTrainingSets',
      'modelImageSize',
    ]) {
      expect(typeof (lib as Record<string, unknown>)[name], name).toBe('function');
    }
  });
});
