import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 as nodeCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { parseNpy } from '../../src/data/npy.js';
import { loadNpyPair, loadNpz } from '../../src/data/numpy.js';
import { crc32 } from '../../src/data/zip.js';
import { npy, zip } from './build.js';

const dir = mkdtempSync(join(tmpdir(), 'alrelu-npy-'));

function write(name: string, bytes: Uint8Array): string {
  const f = join(dir, name);
  writeFileSync(f, bytes);
  return f;
}

const X = new Float32Array([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5]); // 3 rows of [2, 2]
const Y = new BigInt64Array([2n, 0n, 1n]);

describe('.npy parser', () => {
  it('reads every supported dtype', () => {
    const cases: [string, ArrayBufferView, number[]][] = [
      ['<f4', new Float32Array([1.5, -2]), [1.5, -2]],
      ['<f8', new Float64Array([1e-300, 3]), [1e-300, 3]],
      ['<i8', new BigInt64Array([-5n, 7n]), [-5, 7]],
      ['<i4', new Int32Array([-1, 2147483647]), [-1, 2147483647]],
      ['|u1', new Uint8Array([0, 255]), [0, 255]],
      ['|b1', new Uint8Array([1, 0]), [1, 0]],
    ];
    for (const [descr, data, want] of cases) {
      const a = parseNpy(npy(descr, [2], data), 't.npy');
      expect(a.shape).toEqual([2]);
      expect(Array.from(a.data, Number)).toEqual(want);
    }
  });

  it('reads a 3-d array with an odd byte offset', () => {
    const bytes = npy('<f4', [3, 2, 2], X);
    const shifted = new Uint8Array(bytes.length + 1).subarray(1);
    shifted.set(bytes);
    const a = parseNpy(shifted, 't.npy');
    expect(a.shape).toEqual([3, 2, 2]);
    expect(Array.from(a.data as Float32Array)).toEqual(Array.from(X));
  });

  it('rejects bad files with the cause', () => {
    expect(() => parseNpy(Buffer.from('hello world, not numpy'), 'bad.npy')).toThrow(/bad\.npy: not a valid \.npy array: expected the magic bytes/);
    expect(() => parseNpy(npy('<f4', [3, 2, 2], X).subarray(0, 100), 't.npy')).toThrow(/needs 48 data bytes, found \d+ \(truncated\?\)/);
    expect(() => parseNpy(npy('<f4', [2], new Float32Array(2), true), 't.npy')).toThrow(/Fortran order/);
    expect(() => parseNpy(npy('<c8', [1], new Float32Array(2)), 't.npy')).toThrow(/dtype <c8 is not supported/);
    expect(() => parseNpy(npy('>f4', [1], new Float32Array(1)), 't.npy')).toThrow(/big-endian/);
    expect(() => parseNpy(Buffer.alloc(3), 't.npy')).toThrow(UserError);
  });

  it('matches node crc32', () => {
    const b = Buffer.from('The quick brown fox jumps over the lazy dog');
    expect(crc32(b)).toBe(0x414fa339);
    expect(crc32(b)).toBe(nodeCrc32(b));
  });
});

describe('.npz', () => {
  for (const deflate of [false, true]) {
    it(`loads x and y from a ${deflate ? 'deflated' : 'stored'} zip`, async () => {
      const f = write(`d${deflate}.npz`, zip({ 'x.npy': npy('<f4', [3, 2, 2], X), 'y.npy': npy('<i8', [3], Y) }, deflate));
      const ds = await loadNpz(f);
      expect(ds.count).toBe(3);
      expect(ds.sampleShape).toEqual([2, 2]);
      expect(Array.from(ds.x)).toEqual(Array.from(X));
      expect(Array.from(ds.y)).toEqual([2, 0, 1]);
      expect(ds.task).toBe('classification');
      expect(ds.classes).toEqual(['0', '1', '2']);
    });
  }

  it('gives UserErrors naming the file and the cause', async () => {
    const onlyX = write('onlyx.npz', zip({ 'x.npy': npy('<f4', [3, 2, 2], X) }, false));
    await expect(loadNpz(onlyX)).rejects.toThrow(/onlyx\.npz: missing array y; expected arrays named x and y .*found x/);
    const mismatch = write('mismatch.npz', zip({ 'x.npy': npy('<f4', [3, 2, 2], X), 'y.npy': npy('<i8', [2], new BigInt64Array(2)) }, false));
    await expect(loadNpz(mismatch)).rejects.toThrow(/x has 3 rows but y has 2/);
    const empty = write('empty.npz', zip({ 'x.npy': npy('<f4', [0, 4], new Float32Array(0)), 'y.npy': npy('<i8', [0], new BigInt64Array(0)) }, true));
    await expect(loadNpz(empty)).rejects.toThrow(/zero rows/);
    const floats = write('floaty.npz', zip({ 'x.npy': npy('<f4', [3, 2, 2], X), 'y.npy': npy('<f8', [3], new Float64Array([0, 0.5, 1])) }, false));
    await expect(loadNpz(floats)).rejects.toThrow(/label y\[1\] = 0.5 is not a class index/);
    const reg = await loadNpz(floats, 'regression');
    expect(reg.task).toBe('regression');
    expect(Array.from(reg.y)).toEqual([0, 0.5, 1]);
    const good = zip({ 'x.npy': npy('<f4', [3, 2, 2], X), 'y.npy': npy('<i8', [3], Y) }, true);
    const corrupt = Buffer.from(good);
    corrupt[60] = corrupt[60]! ^ 0xff;
    await expect(loadNpz(write('corrupt.npz', corrupt))).rejects.toThrow(/corrupt\.npz.*(CRC-32|inflate|damaged)/);
    await expect(loadNpz(write('trunc.npz', good.subarray(0, good.length - 30)))).rejects.toThrow(/trunc\.npz: not a valid \.npz \(zip\) file/);
    await expect(loadNpz(write('text.npz', Buffer.from('just text')))).rejects.toThrow(/expected a zip archive/);
    await expect(loadNpz(join(dir, 'nope.npz'))).rejects.toThrow(/nope\.npz: no such file/);
  });
});

describe('.npy pairs', () => {
  it('reads x.npy with y.npy beside it, or an explicit labels file', async () => {
    const sub = join(dir, 'pair');
    execFileSync('mkdir', ['-p', sub]);
    writeFileSync(join(sub, 'x.npy'), npy('<f4', [3, 4], X));
    writeFileSync(join(sub, 'y.npy'), npy('|u1', [3, 1], new Uint8Array([1, 1, 0])));
    const ds = await loadNpyPair(join(sub, 'x.npy'), undefined);
    expect(ds.sampleShape).toEqual([4]);
    expect(Array.from(ds.y)).toEqual([1, 1, 0]);
    writeFileSync(join(sub, 'samples.npy'), npy('<f4', [3, 4], X));
    await expect(loadNpyPair(join(sub, 'samples.npy'), undefined)).rejects.toThrow(/missing array y/);
    const ds2 = await loadNpyPair(join(sub, 'samples.npy'), join(sub, 'y.npy'));
    expect(ds2.count).toBe(3);
  });
});

const python = '/usr/bin/python3';
const hasNumpy =
  existsSync(python) &&
  (() => {
    try {
      execFileSync(python, ['-c', 'import numpy'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

describe.skipIf(!hasNumpy)('files written by numpy', () => {
  it('reads savez and savez_compressed output of several dtypes', async () => {
    const script = `
import numpy as np, sys
d = sys.argv[1]
x = np.arange(24, dtype=np.float64).reshape(6, 2, 2) / 8
y = np.array([0, 1, 2, 1, 0, 2], dtype=np.int64)
np.savez(d + '/plain.npz', x=x, y=y)
np.savez_compressed(d + '/comp.npz', x=x.astype(np.float32), y=y.astype(np.int32))
np.savez(d + '/u8.npz', x=(x * 8).astype(np.uint8), y=y.astype(np.uint8))
np.savez(d + '/bool.npz', x=x > 1, y=(y > 0))
np.save(d + '/big.npy', np.zeros((3, 70000), dtype=np.float32))
`;
    execFileSync(python, ['-c', script, dir]);
    for (const f of ['plain', 'comp', 'u8', 'bool']) {
      const ds = await loadNpz(join(dir, `${f}.npz`));
      expect(ds.count).toBe(6);
      expect(ds.sampleShape).toEqual([2, 2]);
      const want = Array.from({ length: 24 }, (_, i) => (f === 'u8' ? i : f === 'bool' ? Number(i / 8 > 1) : i / 8));
      expect(Array.from(ds.x)).toEqual(want);
      expect(Array.from(ds.y)).toEqual(f === 'bool' ? [0, 1, 1, 1, 0, 1] : [0, 1, 2, 1, 0, 2]);
    }
    const { readFileSync } = await import('node:fs');
    const big = parseNpy(readFileSync(join(dir, 'big.npy')), 'big.npy');
    expect(big.shape).toEqual([3, 70000]);
  });
});
