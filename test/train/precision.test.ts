/**
 * Float16 models fine-tune with float32 master weights: the promoted forward gives what onnxruntime
 * gives for the float16 model (within float16 rounding), zero learning rate writes every initializer
 * back bit for bit, and real training writes a float16 model that onnxruntime runs and that keeps what
 * was learned. bfloat16 the same way: the written values are the trained ones rounded to nearest.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { loadData } from '../../src/data/index.js';
import type { Dataset } from '../../src/data/types.js';
import { DataType } from '../../src/onnx/dtype.js';
import { readModel } from '../../src/onnx/read.js';
import { decodeModel, encodeModel } from '../../src/onnx/schema.js';
import { bf16ToFloat, elementCount, floatToBf16, floatToHalf, halfToFloat, tensorValues } from '../../src/onnx/tensor.js';
import type { ModelProto } from '../../src/onnx/types.js';
import { openRuntime } from '../../src/runtime/index.js';
import type { Runtime } from '../../src/runtime/types.js';
import { finetune } from '../../src/train/loop.js';
import { chooseParameters } from '../../src/train/params.js';
import { freshStart } from '../../src/train/runner.js';
import { buildTrainingModel, LOSS_OUTPUT, LR_INPUT, STEP_INPUT } from '../../src/train/step.js';
import { mulberry32 } from '../../src/data/prng.js';
import { fixture, ROOT } from '../helpers.js';

let rt: Runtime;
beforeAll(async () => {
  rt = await openRuntime('cpu');
});
afterAll(async () => {
  await rt?.close();
});

/** The shipped iris MLP with every float tensor and type stored as float16 (or bfloat16). */
function halfIris(dataType: number = DataType.FLOAT16): ModelProto {
  const m = decodeModel(readFileSync(`${ROOT}/models/iris-mlp.onnx`));
  const g = m.graph!;
  for (const t of g.initializer ?? []) {
    if (t.dataType !== DataType.FLOAT) continue;
    const v = tensorValues(t, Infinity)!;
    t.dataType = dataType;
    t.rawData = new Uint8Array(Uint16Array.from(v.map(dataType === DataType.FLOAT16 ? floatToHalf : floatToBf16)).buffer);
    delete t.floatData;
  }
  for (const v of [...g.input!, ...g.output!]) if (v.type?.tensorType?.elemType === DataType.FLOAT) v.type.tensorType.elemType = dataType;
  g.valueInfo = [];
  return m;
}

async function irisAccuracy(m: ModelProto, x: Float32Array, y: Int32Array, n: number): Promise<number> {
  const s = await ort.InferenceSession.create(encodeModel(m), { logSeverityLevel: 3 });
  const out = await s.run({ [s.inputNames[0]!]: new ort.Tensor('float16', Uint16Array.from(x.subarray(0, n * 4), floatToHalf), [n, 4]) });
  await s.release();
  const z = out[s.outputNames[0]!]!.data as Uint16Array;
  let ok = 0;
  for (let i = 0; i < n; i++) {
    const row = [0, 1, 2].map((k) => halfToFloat(z[i * 3 + k]!));
    if (row.indexOf(Math.max(...row)) === y[i]) ok++;
  }
  return ok / n;
}

describe('float16 models train in float32 and are written back in float16', () => {
  it('a learning rate too small to move a float16 value writes every initializer back bit for bit', async () => {
    const iris = (await loadData('iris', { split: 'all' })) as Dataset;
    const model = halfIris();
    const r = await finetune({
      model,
      sourceDir: '.',
      file: 'iris-half.onnx',
      train: iris,
      val: iris,
      runtime: rt,
      epochs: 1,
      batchSize: 16,
      maxSteps: 2,
      optimizer: { name: 'sgd' },
      schedule: { name: 'constant', lr: 1e-30 },
    });
    expect(r.log.float32Master).toBe(true);
    const before = new Map(model.graph!.initializer!.map((t) => [t.name, t]));
    for (const t of r.model.graph!.initializer!) {
      expect(t.dataType).toBe(DataType.FLOAT16);
      expect(Buffer.from(t.rawData!).equals(Buffer.from(before.get(t.name)!.rawData!))).toBe(true);
    }
  });

  it('an iris MLP in float16 fine-tunes; the written float16 model keeps its accuracy on onnxruntime', async () => {
    const iris = (await loadData('iris', { split: 'all' })) as Dataset;
    const model = halfIris();
    const r = await finetune({
      model,
      sourceDir: '.',
      file: 'iris-half.onnx',
      train: iris,
      val: iris,
      runtime: rt,
      epochs: 10,
      batchSize: 16,
      optimizer: { name: 'adam' },
      schedule: { name: 'constant', lr: 0.01 },
    });
    expect(r.log.epochs.at(-1)!.trainLoss).toBeLessThan(r.log.epochs[0]!.trainLoss);
    // the parameters really moved, and what the float32 training measured holds for the float16 model
    const changed = r.model.graph!.initializer!.some((t, i) => !Buffer.from(t.rawData!).equals(Buffer.from(model.graph!.initializer![i]!.rawData!)));
    expect(changed).toBe(true);
    const acc = await irisAccuracy(r.model, iris.x as Float32Array, iris.y as Int32Array, iris.count);
    expect(acc).toBeGreaterThanOrEqual(0.9);
    expect(Math.abs(acc - r.log.best!.value)).toBeLessThanOrEqual(0.02);
  });

  it('a bfloat16 model trains too: the written bfloat16 values are the trained float32 ones rounded to nearest', async () => {
    const iris = (await loadData('iris', { split: 'all' })) as Dataset;
    const r = await finetune({
      model: halfIris(DataType.BFLOAT16),
      sourceDir: '.',
      file: 'iris-bf16.onnx',
      train: iris,
      val: iris,
      runtime: rt,
      epochs: 3,
      batchSize: 16,
      optimizer: { name: 'adam' },
      schedule: { name: 'constant', lr: 0.01 },
    });
    expect(r.log.float32Master).toBe(true);
    expect(r.log.epochs.at(-1)!.trainLoss).toBeLessThan(r.log.epochs[0]!.trainLoss);
    for (const t of r.model.graph!.initializer!) {
      expect(t.dataType).toBe(DataType.BFLOAT16);
      const trained = r.params[t.name!]!.data as Float32Array;
      expect(tensorValues(t, Infinity)).toEqual(Array.from(trained, (v) => bf16ToFloat(floatToBf16(v))));
    }
  });

  it("the pretrained float16 SqueezeNet (opset 7): the promoted training step's loss is the NLL of onnxruntime's float16 probabilities", async () => {
    const file = fixture('windows-ml/squeezenet_fp16/SqueezeNet_fp16.onnx');
    const mf = await readModel(file);
    const params = chooseParameters(mf.model.graph!).trainable;
    const tm = buildTrainingModel(mf.model, { sourceDir: mf.dir, file, params, task: 'classification', optimizer: { name: 'sgd' } });
    expect([tm.promoted, tm.sourceOpset, tm.opset]).toEqual([true, 7, 17]);
    const dims = [1, 3, 224, 224];
    const r = mulberry32(3);
    // float16-exact inputs, so both sides see the same image
    const half = Uint16Array.from({ length: elementCount(dims) }, () => floatToHalf(r() * 2 - 1));
    const ref = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
    const P = (await ref.run({ [ref.inputNames[0]!]: new ort.Tensor('float16', half, dims) }))[ref.outputNames[0]!]!.data as Uint16Array;
    await ref.release();
    const label = 281;
    const nll = -Math.log(halfToFloat(P[label]!));
    const s = await ort.InferenceSession.create(tm.bytes(), { logSeverityLevel: 3 });
    const start = freshStart(tm);
    const feeds: Record<string, ort.Tensor> = {
      [tm.input]: new ort.Tensor('float32', Float32Array.from(half, halfToFloat), dims),
      [tm.labels]: new ort.Tensor('int64', BigInt64Array.from([BigInt(label)]), [1, 1]),
      [LR_INPUT]: new ort.Tensor('float32', new Float32Array([0.001]), []),
      [STEP_INPUT]: new ort.Tensor('float32', new Float32Array([1]), []),
    };
    for (const [k, v] of Object.entries(start.params)) {
      expect(v.type).toBe('float32');
      feeds[k] = new ort.Tensor(v.type, v.data, v.dims);
    }
    const out = await s.run(feeds);
    await s.release();
    // the label's float16 probability is about 8e-7, a subnormal resolved in steps of 6e-8 (7% of it); measured 0.02 apart
    expect(Math.abs(Number(out[LOSS_OUTPUT]!.data[0]) - nll)).toBeLessThan(5e-3 * Math.max(1, nll));
  }, 60_000);
});
