/**
 * Checkpoints are verified before anything in them is used: damage of every kind (truncation at many
 * offsets, appended bytes, a flipped bit anywhere, swapped tensors, an old format) is refused naming the
 * file; files crafted to pass the checksum are still bounds-checked; a checkpoint of another model or of
 * other settings is refused with each difference listed; and a good resume continues bit for bit.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadData } from '../../src/data/index.js';
import type { Dataset } from '../../src/data/types.js';
import { UserError } from '../../src/errors.js';
import { decodeModel } from '../../src/onnx/schema.js';
import type { ModelProto } from '../../src/onnx/types.js';
import { openRuntime } from '../../src/runtime/index.js';
import type { HostTensor, Runtime } from '../../src/runtime/types.js';
import { decodeCheckpoint, encodeCheckpoint, readCheckpoint, writeCheckpoint, type Checkpoint, type RunSettings } from '../../src/train/checkpoint.js';
import { finetune, type FinetuneOptions } from '../../src/train/loop.js';
import { errorLine, runCli } from '../cli.js';
import { ROOT } from '../helpers.js';
import { IRIS_ADAM_SETTINGS } from './settings.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'alrelu-ckpt-'));
const f32 = (v: number[], dims = [v.length]): HostTensor => ({ type: 'float32', data: Float32Array.from(v), dims });

const settings: RunSettings = IRIS_ADAM_SETTINGS;

function sample(): Checkpoint {
  const history = [1, 2].map((epoch) => ({ epoch, trainLoss: 1 / epoch, valMetric: 0.5, val: { accuracy: 0.5 }, lr: 0.01, seconds: 1, steps: 20 }));
  return {
    meta: {
      version: 2,
      modelHash: 'a'.repeat(64),
      settings,
      params: ['w', 'b'],
      epoch: 2,
      globalStep: 40,
      best: { epoch: 1, value: 0.9 },
      sinceBest: 1,
      history,
    },
    params: { w: f32([1, 2, 3, 4, 5, 6], [2, 3]), b: f32([7, 8]) },
    state: { 'm:w': f32([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [2, 3]), 'm:b': f32([0.7, 0.8]) },
    best: { w: f32([9, 10, 11, 12, 13, 14], [2, 3]), b: f32([15, 16]) },
  };
}

/** The cause of decoding `bytes`, which must be a refusal naming the file. */
function refusal(bytes: Uint8Array, file = 'run.ckpt'): string {
  try {
    decodeCheckpoint(file, bytes);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).subject).toBe(file);
    return (e as UserError).cause_;
  }
  throw new Error('accepted');
}

/** Layout of an encoded checkpoint: where the JSON and the tensor data start. */
function layout(bytes: Uint8Array) {
  const metaLength = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  const meta = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + metaLength))) as { tensors: { name: string; offset: number; length: number }[] };
  return { metaLength, meta, data: Math.ceil((12 + metaLength) / 8) * 8 };
}

/** Re-signs edited bytes, as an attacker who knows the format would. */
function resign(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 32);
  out.set(body);
  out.set(createHash('sha256').update(body).digest(), body.length);
  return out;
}

/** A checkpoint with `edit` applied to its metadata JSON, re-signed, so only the parser stands in the way. */
function craft(edit: (meta: Record<string, unknown> & { tensors: Record<string, unknown>[] }) => void, c = sample()): Uint8Array {
  const good = encodeCheckpoint(c);
  const { meta, data } = layout(good);
  edit(meta as never);
  const json = new TextEncoder().encode(JSON.stringify(meta));
  const base = Math.ceil((12 + json.length) / 8) * 8;
  const tensorBytes = good.subarray(data, good.length - 32);
  const body = new Uint8Array(base + tensorBytes.length);
  body.set(good.subarray(0, 8));
  new DataView(body.buffer).setUint32(8, json.length, true);
  body.set(json, 12);
  body.set(tensorBytes, base);
  return resign(body);
}

describe('checkpoint format', () => {
  it('round-trips metadata and every tensor exactly', async () => {
    const file = join(tmp(), 'c.ckpt');
    writeFileSync(file, encodeCheckpoint(sample()));
    const back = await readCheckpoint(file);
    expect(back.meta).toEqual(sample().meta);
    for (const part of ['params', 'state', 'best'] as const) {
      for (const [k, v] of Object.entries(sample()[part])) {
        expect(back[part][k]!.dims).toEqual(v.dims);
        expect(Array.from(back[part][k]!.data as Float32Array)).toEqual(Array.from(v.data as Float32Array));
      }
    }
  });

  it('written piece by piece, the file is the one-array encoding byte for byte: odd lengths padded, views of larger arrays at their offsets', async () => {
    const c = sample();
    const big = Float32Array.from({ length: 11 }, (_, i) => i + 0.5);
    c.params.w = { type: 'float32', data: big.subarray(3, 9), dims: [2, 3] };
    c.params.q = { type: 'uint8', data: Uint8Array.from([1, 2, 3]), dims: [3] };
    c.state['m:h'] = { type: 'float16', data: Uint16Array.from([0x3c00, 0x4000, 0xc000]), dims: [3] };
    c.best.d = { type: 'float64', data: Float64Array.from([Math.PI]), dims: [1] };
    const file = join(tmp(), 'c.ckpt');
    await writeCheckpoint(file, c);
    const bytes = readFileSync(file);
    expect(bytes.equals(encodeCheckpoint(c))).toBe(true);
    expect(bytes.subarray(-32).equals(createHash('sha256').update(bytes.subarray(0, -32)).digest())).toBe(true);
    const back = await readCheckpoint(file);
    expect(Array.from(back.params.w!.data as Float32Array)).toEqual([3.5, 4.5, 5.5, 6.5, 7.5, 8.5]);
    expect(Array.from(back.params.q!.data as Uint8Array)).toEqual([1, 2, 3]);
    expect(Array.from(back.state['m:h']!.data as Uint16Array)).toEqual([0x3c00, 0x4000, 0xc000]);
    expect(Array.from(back.best.d!.data as Float64Array)).toEqual([Math.PI]);
    expect(layout(bytes).meta.tensors.every((t) => t.offset % 8 === 0)).toBe(true);
  });

  it('refuses truncation at every offset tried, 4-byte boundaries included', () => {
    const good = encodeCheckpoint(sample());
    const { data } = layout(good);
    const cuts = new Set([
      0,
      1,
      4,
      7,
      8,
      11,
      12,
      16,
      20,
      data - 4,
      data,
      data + 4,
      data + 8,
      good.length - 36,
      good.length - 32,
      good.length - 8,
      good.length - 4,
      good.length - 1,
    ]);
    for (let k = 4; k < good.length; k += 4 * 7) cuts.add(k);
    for (const cut of cuts) expect(refusal(good.subarray(0, cut)), `cut at ${cut}`).toMatch(/not an alrelu checkpoint|truncated|sha256 does not match/);
  });

  it('refuses appended bytes', () => {
    const good = encodeCheckpoint(sample());
    for (const extra of [1, 4, 8, 32, 4096]) {
      const longer = new Uint8Array(good.length + extra);
      longer.set(good);
      expect(refusal(longer), `+${extra}`).toMatch(/sha256 does not match/);
      // Appending a copy of the digest (a plausible-looking trailer) is no better.
      const twice = new Uint8Array(good.length + 32);
      twice.set(good);
      twice.set(good.subarray(good.length - 32), good.length);
      expect(refusal(twice)).toMatch(/sha256 does not match/);
    }
  });

  it('refuses a flipped bit in the header, the JSON, the weights and the checksum itself', () => {
    const good = encodeCheckpoint(sample());
    const { metaLength, meta, data } = layout(good);
    const w = meta.tensors.find((t) => t.name === 'param/w')!;
    const places: [string, number][] = [
      ['magic', 3],
      ['length field', 9],
      ['JSON', 12 + Math.floor(metaLength / 2)],
      ['JSON (a digit of the epoch)', 12 + new TextDecoder().decode(good.subarray(12, 12 + metaLength)).indexOf('"epoch":2') + 8],
      ['weights', data + w.offset + 5],
      ['best weights', data + meta.tensors.find((t) => t.name === 'best/b')!.offset],
      ['checksum', good.length - 1],
    ];
    for (const [where, at] of places) {
      for (const bit of [0, 7]) {
        const bad = Uint8Array.from(good);
        bad[at]! ^= 1 << bit;
        expect(refusal(bad), `${where} bit ${bit}`).toMatch(/not an alrelu checkpoint|sha256 does not match/);
      }
    }
  });

  it('refuses two tensors swapped', () => {
    const good = encodeCheckpoint(sample());
    const { meta, data } = layout(good);
    const a = meta.tensors.find((t) => t.name === 'param/b')!;
    const b = meta.tensors.find((t) => t.name === 'best/b')!;
    const bad = Uint8Array.from(good);
    bad.set(good.subarray(data + a.offset, data + a.offset + a.length), data + b.offset);
    bad.set(good.subarray(data + b.offset, data + b.offset + b.length), data + a.offset);
    expect(refusal(bad)).toMatch(/sha256 does not match/);
  });

  it('refuses the old format with a clear message, and a file that is no checkpoint', () => {
    const old = new Uint8Array(64);
    old.set(new TextEncoder().encode('ALRCKPT1'));
    expect(refusal(old)).toMatch(/older version \(format 1, without a checksum/);
    expect(refusal(new TextEncoder().encode('{"version":2}'))).toMatch(/not an alrelu checkpoint/);
    expect(refusal(new Uint8Array(0))).toMatch(/not an alrelu checkpoint/);
  });

  it('still bounds-checks a file crafted to pass the checksum', () => {
    const cases: [string, (m: Record<string, unknown> & { tensors: Record<string, unknown>[] }) => void, RegExp][] = [
      [
        'a tensor past the end',
        (m) => {
          m.tensors[0]!.offset = 1 << 30;
        },
        /lies outside the file/,
      ],
      [
        'a length its dims do not explain',
        (m) => {
          m.tensors[0]!.length = 8;
        },
        /has 8 bytes, its type and dims \[2, 3\] need 24/,
      ],
      [
        'dims far larger than the file',
        (m) => {
          m.tensors[0]!.dims = [1 << 20, 1 << 20];
        },
        /need \d+/,
      ],
      [
        'negative dims',
        (m) => {
          m.tensors[0]!.dims = [-2, -3];
        },
        /field 'tensors'/,
      ],
      [
        'fractional offset',
        (m) => {
          m.tensors[0]!.offset = 0.5;
        },
        /field 'tensors'/,
      ],
      [
        'misaligned offset',
        (m) => {
          m.tensors[1]!.offset = (m.tensors[1]!.offset as number) + 4;
          m.tensors[1]!.length = 4;
          m.tensors[1]!.dims = [1];
        },
        /outside the file/,
      ],
      [
        'overlapping tensors',
        (m) => {
          m.tensors[1]!.offset = 0;
        },
        /overlap/,
      ],
      [
        'a tensor twice',
        (m) => {
          m.tensors[1]!.name = m.tensors[0]!.name;
        },
        /appears twice/,
      ],
      [
        'an unknown part',
        (m) => {
          m.tensors[0]!.name = 'weights/w';
        },
        /unexpected tensor name 'weights\/w'/,
      ],
      [
        'an unknown type',
        (m) => {
          m.tensors[0]!.type = 'complex128';
        },
        /field 'tensors'/,
      ],
      [
        'a prototype-polluting name',
        (m) => {
          m.tensors[0]!.name = 'param/__proto__';
        },
        /unexpected tensor name 'param\/__proto__'/,
      ],
      [
        'another format version',
        (m) => {
          m.version = 3;
        },
        /format version 3, expected 2/,
      ],
      [
        'a malformed model hash',
        (m) => {
          m.modelHash = '../etc';
        },
        /field 'modelHash'/,
      ],
      [
        'history that disagrees with the epoch',
        (m) => {
          m.epoch = 5;
        },
        /field 'history'/,
      ],
      [
        'missing settings',
        (m) => {
          delete m.settings;
        },
        /field 'settings'/,
      ],
      [
        'a string where a number goes',
        (m) => {
          m.globalStep = '40';
        },
        /field 'globalStep'/,
      ],
    ];
    for (const [what, edit, cause] of cases) {
      let c: string | undefined;
      try {
        decodeCheckpoint('run.ckpt', craft(edit));
      } catch (e) {
        expect(e, what).toBeInstanceOf(UserError);
        c = (e as UserError).cause_;
      }
      expect(c, what).toMatch(cause);
    }
    // The metadata length field pointing past the file, re-signed.
    const good = encodeCheckpoint(sample());
    const body = Uint8Array.from(good.subarray(0, good.length - 32));
    new DataView(body.buffer).setUint32(8, 0xffffffff, true);
    expect(refusal(resign(body))).toMatch(/metadata length 4294967295 runs past the end/);
    new DataView(body.buffer).setUint32(8, 3, true);
    expect(refusal(resign(body))).toMatch(/metadata is not JSON/);
  });

  it('refuses a folder, a FIFO or a missing file as the checkpoint, without blocking', async () => {
    const dir = tmp();
    await expect(readCheckpoint(dir)).rejects.toThrow(/is not a regular file/);
    if (spawnSync('mkfifo', [join(dir, 'fifo.ckpt')]).status === 0)
      await expect(readCheckpoint(join(dir, 'fifo.ckpt'))).rejects.toThrow(/is not a regular file/);
    await expect(readCheckpoint(join(dir, 'none.ckpt'))).rejects.toThrow(/no such checkpoint/);
  });
});

describe('resume checks the run it continues', () => {
  let rt: Runtime;
  let train: Dataset;
  let val: Dataset;
  let model: ModelProto;
  beforeAll(async () => {
    rt = await openRuntime('cpu');
    train = (await loadData('iris', { split: 'train' })) as Dataset;
    val = (await loadData('iris', { split: 'val' })) as Dataset;
    model = decodeModel(readFileSync(join(ROOT, 'models/iris-mlp.onnx')));
  });
  afterAll(async () => {
    await rt?.close();
  });

  const base = (checkpoint: string, epochs = 2): FinetuneOptions => ({
    model,
    sourceDir: ROOT,
    file: 'iris-mlp.onnx',
    train,
    val,
    runtime: rt,
    epochs,
    batchSize: 16,
    optimizer: { name: 'adam' },
    schedule: { name: 'constant', lr: 0.01 },
    checkpoint,
    seed: 3,
  });

  it('continues bit for bit: 2 epochs, then 2 more from the checkpoint, equal 4 straight', async () => {
    const dir = tmp();
    const straight = await finetune(base(join(dir, 'a.ckpt'), 4));
    await finetune(base(join(dir, 'b.ckpt'), 2));
    const resumed = await finetune({ ...base(join(dir, 'b.ckpt'), 4), resume: true });
    expect(resumed.log.resumedFrom).toBe(2);
    expect(resumed.log.epochs.map((e) => e.trainLoss)).toEqual(straight.log.epochs.map((e) => e.trainLoss));
    for (const [k, v] of Object.entries(straight.params))
      expect(Array.from(resumed.params[k]!.data as Float32Array), k).toEqual(Array.from(v.data as Float32Array));
    const a = await readCheckpoint(join(dir, 'a.ckpt'));
    const b = await readCheckpoint(join(dir, 'b.ckpt'));
    expect(b.meta.globalStep).toBe(a.meta.globalStep);
    expect(Array.from(b.params['fc1.weight']!.data as Float32Array)).toEqual(Array.from(a.params['fc1.weight']!.data as Float32Array));
  });

  it('refuses, listing each difference, a resume with other settings; and another model', async () => {
    const dir = tmp();
    const file = join(dir, 'run.ckpt');
    await finetune({ ...base(file, 1), maxSteps: 3 });
    const before = readFileSync(file);
    const other = (await loadData('iris', { split: 'train', seed: 1 })) as Dataset;
    const cases: [string, Partial<FinetuneOptions>, RegExp][] = [
      ['batch size', { batchSize: 8 }, /batch size 16, this run has 8/],
      ['optimizer', { optimizer: { name: 'sgd' } }, /optimizer adam, this run has sgd/],
      ['weight decay', { optimizer: { name: 'adam', weightDecay: 0.1 } }, /weight decay 0, this run has 0\.1/],
      ['learning rate', { schedule: { name: 'constant', lr: 0.001 } }, /learning rate 0\.01, this run has 0\.001/],
      ['schedule', { schedule: { name: 'step', lr: 0.01 } }, /schedule constant, this run has step/],
      ['seed', { seed: 4 }, /seed 3, this run has 4/],
      ['shuffle', { shuffle: false }, /shuffle true, this run has false/],
      ['freeze', { freeze: ['fc2.*'] }, /freeze none, this run has fc2\.\*/],
      ['train-only', { trainOnly: ['fc1.*'] }, /train-only none, this run has fc1\.\*/],
      ['max steps', { maxSteps: 4 }, /max steps per epoch 3, this run has 4/],
      ['data', { train: other }, /data iris \(120 training, 15 validation samples, sha256 \w+\), this run has iris \(120, 15, sha256 \w+\)/],
      ['several at once', { batchSize: 8, seed: 9 }, /batch size 16, this run has 8; seed 3, this run has 9; resume with the checkpoint's settings/],
    ];
    for (const [what, change, cause] of cases) {
      const e = await finetune({ ...base(file, 3), maxSteps: 3, resume: true, ...change }).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e, what).toBeInstanceOf(UserError);
      expect((e as UserError).subject, what).toBe(file);
      expect((e as UserError).cause_, what).toMatch(cause);
    }
    const changed = decodeModel(readFileSync(join(ROOT, 'models/iris-mlp.onnx')));
    changed.graph!.initializer![0]!.rawData![0]! ^= 1;
    await expect(finetune({ ...base(file, 3), model: changed, maxSteps: 3, resume: true })).rejects.toThrow(/was made for another model/);
    // Nothing refused touched the checkpoint.
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('under the cosine schedule, the number of epochs is part of the run', async () => {
    const dir = tmp();
    const file = join(dir, 'cos.ckpt');
    const cos = { schedule: { name: 'cosine' as const, lr: 0.01 }, maxSteps: 2 };
    await finetune({ ...base(file, 1), ...cos });
    await expect(finetune({ ...base(file, 3), ...cos, resume: true })).rejects.toThrow(/epochs \(the cosine schedule spans the whole run\) 1, this run has 3/);
  });

  it('refuses a checkpoint whose tensors do not fit the run, even when it verifies', async () => {
    const dir = tmp();
    const file = join(dir, 'run.ckpt');
    await finetune({ ...base(file, 1), maxSteps: 2 });
    const c = await readCheckpoint(file);
    const w = c.params['fc1.weight']!;
    c.params['fc1.weight'] = { ...w, dims: [w.dims[1]!, w.dims[0]!] };
    writeFileSync(file, encodeCheckpoint(c));
    await expect(finetune({ ...base(file, 2), maxSteps: 2, resume: true })).rejects.toThrow(
      /parameter 'fc1\.weight' is float32 \[4, 16\], this run needs float32 \[16, 4\]/,
    );
    const d = await readCheckpoint(file);
    d.params['fc1.weight'] = w;
    d.state['m:extra'] = w;
    writeFileSync(file, encodeCheckpoint(d));
    await expect(finetune({ ...base(file, 2), maxSteps: 2, resume: true })).rejects.toThrow(/holds optimizer state 'm:extra', which this run does not train/);
    delete d.state['m:extra'];
    delete d.best['fc2.bias'];
    writeFileSync(file, encodeCheckpoint(d));
    await expect(finetune({ ...base(file, 2), maxSteps: 2, resume: true })).rejects.toThrow(/best parameter 'fc2\.bias' is missing/);
  });
});

describe('through the CLI: a damaged or foreign checkpoint is refused with one line naming it', () => {
  it('truncated on a 4-byte boundary, appended to, a flipped weight bit, format 1, another batch size', async () => {
    const dir = tmp();
    const out = join(dir, 'ft.onnx');
    const ckpt = `${out}.ckpt`;
    const args = ['finetune', join(ROOT, 'models/iris-mlp.onnx'), '--data', 'iris', '--batch-size', '16', '--max-steps', '2', '-o', out];
    const first = await runCli([...args, '--epochs', '1', '--quiet']);
    expect(first.code, first.stderr).toBe(0);
    rmSync(out);
    rmSync(`${out}.log.json`);
    const good = readFileSync(ckpt);
    const { meta, data } = layout(good);
    const w = meta.tensors.find((t) => t.name === 'param/fc1.weight')!;
    const flipped = Uint8Array.from(good);
    flipped[data + w.offset + 2]! ^= 0x10;
    const longer = new Uint8Array(good.length + 4);
    longer.set(good);
    const old = Uint8Array.from(good);
    old.set(new TextEncoder().encode('ALRCKPT1'));
    const cases: [string, Uint8Array, string[], RegExp][] = [
      ['truncated at a 4-byte boundary', good.subarray(0, (good.length - 36) & ~3), [], /corrupt checkpoint: its sha256 does not match its content/],
      ['4 bytes appended', longer, [], /corrupt checkpoint: its sha256 does not match its content/],
      ['a flipped bit in the weights', flipped, [], /corrupt checkpoint: its sha256 does not match its content/],
      ['format 1', old, [], /is a checkpoint of an older version \(format 1/],
      ['another batch size', good, ['--batch-size', '8'], /was made with batch size 16, this run has 8/],
    ];
    for (const [what, bytes, extra, cause] of cases) {
      writeFileSync(ckpt, bytes);
      const r = await runCli([...args, '--epochs', '2', '--resume', ...extra]);
      expect(r.code, `${what}: ${r.stderr}`).toBe(2);
      expect(errorLine(r), what).toMatch(new RegExp(`^error: ${ckpt.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${cause.source}`));
      expect(readFileSync(ckpt).equals(Buffer.from(bytes)), what).toBe(true);
      expect(existsSync(out), what).toBe(false);
    }
  });
});
