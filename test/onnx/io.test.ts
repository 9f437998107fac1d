/**
 * Model I/O beyond the plain round trip: external data kept, moved out and inlined; the 2 GiB rule;
 * locations that escape the model's folder; atomic writes that never leave or clobber a file.
 */
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { convert } from '../../src/convert/convert.js';
import { randomFeeds } from '../../src/convert/verify.js';
import { UserError } from '../../src/errors.js';
import { externalRef, isExternal } from '../../src/onnx/external.js';
import { readModel } from '../../src/onnx/read.js';
import { decodeModel, encodeModel } from '../../src/onnx/schema.js';
import { allTensors } from '../../src/onnx/walk.js';
import { writeModel } from '../../src/onnx/write.js';
import { bytesOf, fixture } from '../helpers.js';

const SIMPLE_CNN = fixture('onnx-onnx/examples-simple_cnn/simple_cnn.onnx');
const MNIST = fixture('burn-onnx/mnist_pytorch2/mnist.onnx');
const tmp = (p = 'alrelu-io-') => mkdtempSync(join(tmpdir(), p));

async function outputs(path: string, feeds: Record<string, ort.Tensor>): Promise<Buffer[]> {
  const s = await ort.InferenceSession.create(path, { logSeverityLevel: 3 });
  try {
    const o = await s.run(feeds);
    return s.outputNames.map((n) => Buffer.from(bytesOf(o[n]!)));
  } finally {
    await s.release();
  }
}

const externalLocations = (file: string) => [
  ...new Set(
    allTensors(decodeModel(readFileSync(file)))
      .filter(isExternal)
      .map((t) => externalRef(t).location),
  ),
];

async function rejection(p: Promise<unknown>): Promise<UserError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UserError);
  return e as UserError;
}

describe('external data', () => {
  it('keeps weights external, copying the data file beside an output in another folder', async () => {
    const mf = await readModel(SIMPLE_CNN);
    const feeds = randomFeeds(mf.model, {}, 3, SIMPLE_CNN);
    convert(mf.model);
    const dir = tmp();
    const out = join(dir, 'converted.onnx');
    const res = await writeModel(mf.model, out, { sourceDir: mf.dir });
    expect(externalLocations(out)).toEqual(['simple_cnn.onnx.data']);
    expect(res.dataFiles).toEqual([join(dir, 'simple_cnn.onnx.data')]);
    expect(readFileSync(join(dir, 'simple_cnn.onnx.data')).equals(readFileSync(`${SIMPLE_CNN}.data`))).toBe(true);
    expect(statSync(out).size).toBeLessThan(20_000);
    // The same conversion written inline gives the same outputs: the external weights were found.
    const inline = join(dir, 'inline.onnx');
    await writeModel(mf.model, inline, { sourceDir: mf.dir, externalData: 'inline' });
    expect(externalLocations(inline)).toEqual([]);
    expect(statSync(inline).size).toBeGreaterThan(100_000);
    expect(await outputs(out, feeds)).toEqual(await outputs(inline, feeds));
  });

  it('--external-data moves every large tensor into one aligned <output>.data file', async () => {
    const mf = await readModel(MNIST);
    const feeds = randomFeeds(mf.model, {}, 4, MNIST);
    const dir = tmp();
    const out = join(dir, 'm.onnx');
    await writeModel(mf.model, out, { sourceDir: mf.dir, externalData: 'all' });
    expect(externalLocations(out)).toEqual(['m.onnx.data']);
    expect(statSync(out).size).toBeLessThan(50_000); // of 1.5 MB: tensors under 1 KiB stay inline
    for (const t of allTensors(decodeModel(readFileSync(out))).filter(isExternal)) expect(externalRef(t).offset % 64).toBe(0);
    expect(await outputs(out, feeds)).toEqual(await outputs(MNIST, feeds));
    // The caller's model is untouched by writing it externally.
    expect(Buffer.from(encodeModel(mf.model)).equals(readFileSync(MNIST))).toBe(true);
  });

  it('writes external data when the protobuf would pass the 2 GiB limit', async () => {
    const mf = await readModel(MNIST);
    const feeds = randomFeeds(mf.model, {}, 5, MNIST);
    const out = join(tmp(), 'big.onnx');
    const res = await writeModel(mf.model, out, { sourceDir: mf.dir, protobufLimit: 1_000_000 });
    expect(res.warnings.join(' ')).toMatch(/2 GiB/);
    expect(externalLocations(out)).toEqual(['big.onnx.data']);
    expect(await outputs(out, feeds)).toEqual(await outputs(MNIST, feeds));
  });

  function withLocation(location: string): string {
    const dir = tmp();
    const m = decodeModel(readFileSync(SIMPLE_CNN));
    for (const t of allTensors(m).filter(isExternal)) for (const kv of t.externalData!) if (kv.key === 'location') kv.value = location;
    const file = join(dir, 'model.onnx');
    writeFileSync(file, encodeModel(m));
    return file;
  }

  it('refuses absolute and escaping locations, and missing or short data files', async () => {
    expect((await rejection(readModel(withLocation('/etc/passwd')))).message).toMatch(/is absolute/);
    expect((await rejection(readModel(withLocation('../outside.data')))).message).toMatch(/escapes the model's folder/);
    expect((await rejection(readModel(withLocation('sub/../../x.data')))).message).toMatch(/escapes/);
    const missing = withLocation('weights.data');
    const e = await rejection(readModel(missing));
    expect(e.message).toMatch(/weights\.data.*missing/);
    expect(e.subject).toBe(missing);
    writeFileSync(join(missing, '..', 'weights.data'), Buffer.alloc(100));
    expect((await rejection(readModel(missing))).message).toMatch(/needs bytes .* which has 100/);
  });
});

describe('writes are atomic', () => {
  it('refuses an existing output without force and leaves it untouched; force replaces it', async () => {
    const mf = await readModel(MNIST);
    const dir = tmp();
    const out = join(dir, 'x.onnx');
    writeFileSync(out, 'precious');
    expect((await rejection(writeModel(mf.model, out))).message).toMatch(/already exists/);
    expect(readFileSync(out, 'utf8')).toBe('precious');
    await writeModel(mf.model, out, { force: true });
    expect(readFileSync(out).equals(readFileSync(MNIST))).toBe(true);
    expect(readdirSync(dir)).toEqual(['x.onnx']);
  });

  it('refuses a data file that would be clobbered', async () => {
    const mf = await readModel(SIMPLE_CNN);
    const dir = tmp();
    writeFileSync(join(dir, 'simple_cnn.onnx.data'), 'mine');
    expect((await rejection(writeModel(mf.model, join(dir, 'o.onnx'), { sourceDir: mf.dir }))).message).toMatch(/already exists/);
    expect(readFileSync(join(dir, 'simple_cnn.onnx.data'), 'utf8')).toBe('mine');
    expect(readdirSync(dir)).toEqual(['simple_cnn.onnx.data']);
  });

  it('an unwritable or missing folder is a clean error with nothing created', async () => {
    const mf = await readModel(MNIST);
    expect((await rejection(writeModel(mf.model, join(tmp(), 'no', 'such', 'x.onnx')))).message).toMatch(/does not exist/);
    const ro = tmp();
    chmodSync(ro, 0o555);
    try {
      // root ignores permission bits: only assert where the OS enforces them.
      const probe = join(ro, 'probe');
      let enforced = true;
      try {
        writeFileSync(probe, '');
        enforced = false;
      } catch {
        /* enforced */
      }
      if (enforced) {
        expect((await rejection(writeModel(mf.model, join(ro, 'x.onnx')))).message).toMatch(/not writable/);
        expect(readdirSync(ro)).toEqual([]);
      }
    } finally {
      chmodSync(ro, 0o755);
    }
  });

  it('a failure while writing leaves no temporary file behind', async () => {
    const dir = tmp();
    // The data file to copy disappears between reading and writing.
    const src = tmp();
    copyFileSync(SIMPLE_CNN, join(src, 'simple_cnn.onnx'));
    copyFileSync(`${SIMPLE_CNN}.data`, join(src, 'simple_cnn.onnx.data'));
    const again = await readModel(join(src, 'simple_cnn.onnx'));
    rmSync(join(src, 'simple_cnn.onnx.data'));
    await expect(writeModel(again.model, join(dir, 'o.onnx'), { sourceDir: src })).rejects.toThrow();
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(join(dir, 'o.onnx'))).toBe(false);
  });
});
