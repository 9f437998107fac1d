/**
 * The data size limit: every loader checks what a file's headers declare before allocating it, and
 * every inflate stops at the size its zip entry declares. Each attack of issue 8 is here with the
 * message it must end in; test/data/fuzz.test.ts measures the memory they take in a child process.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../src/data/images.js';
import { loadData } from '../../src/data/index.js';
import { DataBudget, DEFAULT_MAX_DATA_BYTES, formatBytes } from '../../src/data/limits.js';
import { parseNpy } from '../../src/data/npy.js';
import { readNpzArrays } from '../../src/data/numpy.js';
import { errorLine, runCli } from '../cli.js';
import { ROOT } from '../helpers.js';
import { deflatedZeros, npy, pngOf, withJpegSize, zip, zipOf } from './build.js';

const dir = mkdtempSync(join(tmpdir(), 'alrelu-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 2 ** 20;
const X = new Float32Array([0, 0.5, 1, 1.5, 2, 2.5]);
const Y = new BigInt64Array([0n, 1n, 0n]);

function write(name: string, bytes: Uint8Array): string {
  const f = join(dir, name);
  mkdirSync(join(f, '..'), { recursive: true });
  writeFileSync(f, bytes);
  return f;
}

/** A one-class image folder holding `files`. */
function imageFolder(name: string, files: Record<string, Uint8Array>): string {
  const root = join(dir, name);
  for (const [n, b] of Object.entries(files)) write(join(name, 'cls', n), b);
  return root;
}

/** The CRC-32 of `n` zero bytes, computed a MiB at a time. */
function zerosCrc(n: number): number {
  const block = Buffer.alloc(MiB);
  let c = 0;
  for (let left = n; left > 0; left -= MiB) c = crc32(block.subarray(0, Math.min(MiB, left)), c);
  return c;
}

/** Growth of memory outside the JS heap (buffers) while `f` runs, sampled after it. */
async function bufferGrowth(f: () => Promise<unknown>): Promise<number> {
  const before = process.memoryUsage().arrayBuffers;
  await f().catch(() => undefined);
  return process.memoryUsage().arrayBuffers - before;
}

describe('the limit itself', () => {
  it('defaults to 2 GiB or a quarter of memory, and formats sizes in binary units', () => {
    expect(DEFAULT_MAX_DATA_BYTES).toBeGreaterThan(0);
    expect(DEFAULT_MAX_DATA_BYTES).toBeLessThanOrEqual(2 * 2 ** 30);
    expect([formatBytes(100), formatBytes(1536), formatBytes(2 * 2 ** 30), formatBytes(4.5e9)]).toEqual(['100 bytes', '1.5 KiB', '2 GiB', '4.2 GiB']);
  });

  it('counts what is held, refuses what overflows, and gives back what was lent', () => {
    const b = new DataBudget(1000);
    b.take('a', 600, 'declares 600 bytes');
    expect(() => b.take('b', 500, 'declares 500 bytes')).toThrow(
      /^b: declares 500 bytes; with the 600 bytes already loaded for this data set that is above the data size limit \(1000 bytes\); raise the data size limit if you trust this file$/,
    );
    b.release(600);
    b.take('b', 500, 'declares 500 bytes');
    expect(() => b.take('c', 2 ** 60, 'declares 2^60 bytes')).toThrow(/c: declares 2\^60 bytes, a size too large to represent/);
    expect(() => new DataBudget(0)).toThrow(/data size limit: expected a positive number/);
    expect(() => new DataBudget(Number.NaN)).toThrow(/data size limit/);
  });
});

describe('.npz: every inflate is capped by the size its entry declares', () => {
  const bomb = 400e6;

  it('refuses a member whose declared size is above the limit, before inflating (2.5 MB file, 400 MB declared)', async () => {
    const f = write(
      'bomb.npz',
      zipOf([
        { name: 'x.npy', content: Buffer.alloc(0), crc: zerosCrc(bomb), raw: deflatedZeros(bomb), size: bomb, deflate: true },
        { name: 'y.npy', content: npy('<i8', [3], Y) },
      ]),
    );
    const grew = await bufferGrowth(() => loadData(f, { maxDataBytes: 64 * MiB }));
    await expect(loadData(f, { maxDataBytes: 64 * MiB })).rejects.toThrow(
      /bomb\.npz: member x\.npy declares 381 MiB uncompressed, above the data size limit \(64 MiB\); raise the data size limit/,
    );
    expect(grew).toBeLessThan(16 * MiB);
  });

  it('refuses at the default limit a member declaring 3.75 GiB, whatever it holds', async () => {
    const f = write(
      'huge.npz',
      zipOf([
        { name: 'x.npy', content: npy('<f4', [3, 2], X), size: 0xf0000000, deflate: true },
        { name: 'y.npy', content: npy('<i8', [3], Y) },
      ]),
    );
    await expect(loadData(f)).rejects.toThrow(
      new RegExp(`member x\\.npy declares 3\\.8 GiB uncompressed, above the data size limit \\(${formatBytes(DEFAULT_MAX_DATA_BYTES)}\\)`),
    );
  });

  it('refuses a member whose directory says 100 bytes but which inflates to 400 MB, while inflating', async () => {
    const f = write(
      'liar.npz',
      zipOf([
        { name: 'x.npy', content: Buffer.alloc(100), raw: deflatedZeros(bomb), size: 100, deflate: true },
        { name: 'y.npy', content: npy('<i8', [3], Y) },
      ]),
    );
    const started = performance.now();
    const grew = await bufferGrowth(() => loadData(f));
    await expect(loadData(f)).rejects.toThrow(
      /liar\.npz: not a valid \.npz \(zip\) file: member x\.npy inflates to more than the 100 bytes its directory entry declares/,
    );
    expect(grew).toBeLessThan(16 * MiB);
    expect(performance.now() - started).toBeLessThan(2000); // stops at once, not after 400 MB
  });

  it('refuses a local header that disagrees with the central directory', () => {
    const good = { name: 'x.npy', content: npy('<f4', [3, 2], X), deflate: true };
    const bytes = zipOf([{ ...good, localSize: 10 }]);
    expect(() => readNpzArrays(bytes, 'l.npz').get('x')!()).toThrow(
      /l\.npz: not a valid \.npz \(zip\) file: member x\.npy: the local header says size 10, the central directory \d+/,
    );
    const stored = zipOf([{ name: 'x.npy', content: npy('<f4', [3, 2], X), size: 10 }]);
    expect(() => readNpzArrays(stored, 's.npz').get('x')!()).toThrow(/member x\.npy is stored \(not compressed\) but its sizes differ/);
    const named = zipOf([{ ...good, name: 'x\u001b[2J\n.npy' }]);
    expect(() => readNpzArrays(named, 'n.npz')).not.toThrow();
    expect([...readNpzArrays(named, 'n.npz').keys()]).toEqual([String.raw`x\x1b[2J\x0a`]);
    const twice = zipOf([good, good]);
    expect(() => readNpzArrays(twice, 't.npz')).toThrow(/member x\.npy appears twice/);
  });

  it('charges the members it inflates to the data set, so two members cannot each take the whole limit', () => {
    const big = npy('<f4', [1024, 64], new Float32Array(1024 * 64)); // 256 KiB + header
    const bytes = zip({ 'x.npy': big, 'y.npy': big }, true);
    const budget = new DataBudget(700 * 1024);
    const arrays = readNpzArrays(bytes, 'two.npz', budget);
    arrays.get('x')!();
    expect(() => arrays.get('y')!()).toThrow(/two\.npz.*already loaded for this data set that is above the data size limit \(700 KiB\)/);
  });

  it('still reads numpy-written archives (zip64 fields in the local headers)', async () => {
    const ds = await loadData(join(ROOT, '../shared/fixtures/gradients/mlp_iris/batch.npz'));
    expect('count' in ds && ds.count).toBe(32);
  });
});

describe('.npy: the header is checked against the file before the data is allocated', () => {
  it('refuses a header declaring a huge shape over little data, as truncated', async () => {
    const f = write('liar/x.npy', npy('<f4', [100000, 100000], new Float32Array(4)));
    write('liar/y.npy', npy('<i8', [3], Y));
    const grew = await bufferGrowth(() => loadData(f));
    await expect(loadData(f)).rejects.toThrow(
      /x\.npy: not a valid \.npy array: shape \(100000, 100000\) of <f4 needs 40000000000 data bytes, found 16 \(truncated\?\)/,
    );
    expect(grew).toBeLessThan(MiB);
  });

  it('refuses an honest file above the limit by its header, naming both sizes (a sparse 3 GiB x.npy)', async () => {
    const f = join(dir, 'sparse', 'x.npy');
    mkdirSync(join(dir, 'sparse'));
    const head = npy('<f4', [786432, 1024], new Float32Array(0));
    const fd = openSync(f, 'w');
    writeSync(fd, head);
    ftruncateSync(fd, head.length + 3 * 2 ** 30);
    closeSync(fd);
    write('sparse/y.npy', npy('<i8', [786432], new BigInt64Array(0)));
    const limit = formatBytes(DEFAULT_MAX_DATA_BYTES);
    await expect(loadData(f)).rejects.toThrow(
      new RegExp(
        `sparse/x\\.npy: declares 3 GiB of data \\(shape 786432x1024 <f4\\), above the data size limit \\(${limit}\\); raise the data size limit if you trust this file$`,
      ),
    );
    await expect(loadData(f, { maxDataBytes: 1024 })).rejects.toThrow(/declares 3 GiB of data .*above the data size limit \(1 KiB\)/);
  });

  it('charges the float32 copy of narrow dtypes and the labels to the same data set', async () => {
    const x = write('u8/x.npy', npy('|u1', [1000, 100], new Uint8Array(100000)));
    write('u8/y.npy', npy('<i8', [1000], new BigInt64Array(1000)));
    await expect(loadData(x, { maxDataBytes: 450_000 })).rejects.toThrow(
      /u8\/x\.npy: needs 391 KiB for its samples as float32; with the 105 KiB already loaded for this data set that is above the data size limit \(439 KiB\)/,
    );
    expect('count' in (await loadData(x, { maxDataBytes: 600_000 }))).toBe(true);
  });

  it('refuses shapes that overflow, negative or non-integer dims, and overlong headers', () => {
    expect(() => parseNpy(npy('<f4', [], new Float32Array(0), false, '(1099511627776, 1099511627776)'), 'o.npy')).toThrow(
      /o\.npy: not a valid \.npy array: shape \(1099511627776, 1099511627776\) of <f4 declares more data than can be counted/,
    );
    expect(() => parseNpy(npy('<f4', [], new Float32Array(0), false, '(-1, 4)'), 'n.npy')).toThrow(
      /bad shape "\(-1, 4\)": expected non-negative integer dimensions/,
    );
    expect(() => parseNpy(npy('<f4', [], new Float32Array(0), false, '(1e3,)'), 'e.npy')).toThrow(/bad shape/);
    const long = npy('<f4', [1], new Float32Array(1));
    const v2 = Buffer.alloc(12 + 20000 + 4, 0x20);
    long.copy(v2, 0, 0, 6);
    v2[6] = 2;
    v2.writeUInt32LE(20000, 8);
    expect(() => parseNpy(v2, 'h.npy')).toThrow(/h\.npy: not a valid \.npy array: header is 20000 bytes, above the 10000 that numpy itself reads/);
  });

  it.skipIf(process.platform === 'win32')('refuses a FIFO named as data instead of waiting on it', async () => {
    const f = write('fifo/x.npy', npy('<f4', [3, 2], X));
    execFileSync('mkfifo', [join(dir, 'fifo/y.npy')]);
    await expect(loadData(f)).rejects.toThrow(/fifo\/y\.npy: is not a regular file/);
  });
});

describe('images: the header dimensions are checked before decoding', () => {
  it('refuses a 30000x30000 PNG with a tiny IDAT at the default limit', async () => {
    const png = pngOf({ width: 30000, height: 30000, idat: deflateSync(Buffer.alloc(16)) });
    expect(png.length).toBeLessThan(100);
    const d = imageFolder('hugepng', { 'a.png': png });
    const grew = await bufferGrowth(() => loadData(d));
    await expect(loadData(d)).rejects.toThrow(/a\.png: declares 30000x30000 pixels, which take about 5.9 GiB to decode, above the data size limit/);
    expect(grew).toBeLessThan(MiB);
  });

  it('refuses a JPEG whose frame header declares 65535x65535, and one with height 0', () => {
    const small = jpeg.encode({ width: 16, height: 16, data: Buffer.alloc(16 * 16 * 4, 90) }, 90).data;
    expect(decodeImage(small, 'ok.jpg').width).toBe(16);
    expect(() => decodeImage(withJpegSize(small, 65535, 65535), 'big.jpg')).toThrow(
      /big\.jpg: declares 65535x65535 pixels, which take about 112 GiB to decode, above the data size limit/,
    );
    expect(() => decodeImage(withJpegSize(small, 16, 0), 'dnl.jpg')).toThrow(/dnl\.jpg: corrupt JPEG image: declares height 0/);
    expect(() => decodeImage(withJpegSize(small, 0, 16), 'w0.jpg')).toThrow(/w0\.jpg: corrupt JPEG image: declares 0x16 pixels/);
  });

  it('refuses zero-sized PNGs and a PNG whose size disagrees with its IDAT', () => {
    expect(() => decodeImage(pngOf({ width: 0, height: 5, idat: deflateSync(Buffer.alloc(0)) }), 'z.png')).toThrow(
      /z\.png: corrupt PNG image: declares 0x5 pixels/,
    );
    // Too little data is refused before pngjs, which would unfilter whatever its buffer held.
    expect(() => decodeImage(pngOf({ width: 8, height: 8, idat: deflateSync(Buffer.alloc(4)) }), 's.png')).toThrow(
      /^s\.png: corrupt PNG image: its image data inflates to 4 bytes, its 8x8 header implies 72 \(truncated\?\)$/,
    );
  });

  it('decodes interlaced PNGs exactly, and stops an interlaced IDAT that inflates past its header', () => {
    const px = Uint8Array.from({ length: 13 * 11 }, (_, i) => (i * 37) & 0xff);
    const img = decodeImage(pngOf({ width: 13, height: 11, pixels: px, interlaced: true }), 'i.png');
    expect(Array.from(img.data.filter((_, i) => i % 4 === 0))).toEqual(Array.from(px));
    // zlib header, a 400 MB run of zeros (cut short of its checksum: inflation must stop long before)
    const idat = Buffer.concat([Buffer.from([0x78, 0x01]), deflatedZeros(400e6)]);
    const started = performance.now();
    expect(() => decodeImage(pngOf({ width: 16, height: 16, interlaced: true, idat }), 'ib.png')).toThrow(
      /ib\.png: corrupt PNG image: its image data inflates to more than the \d+ bytes its 16x16 header implies/,
    );
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('charges the whole resized set before allocating it', async () => {
    const png = pngOf({ width: 8, height: 8 });
    const d = imageFolder('resized', { 'a.png': png, 'b.png': png, 'c.png': png });
    await expect(loadData(d, { imageSize: [4000, 4000], maxDataBytes: 64 * MiB })).rejects.toThrow(
      /resized: holds 3 images of 3x4000x4000 floats, 549 MiB in all, above the data size limit \(64 MiB\)/,
    );
    const ok = await loadData(d, { imageSize: [16, 16], maxDataBytes: 64 * MiB });
    expect('count' in ok && ok.count).toBe(3);
  });
});

describe('CSV: the file size stands for what parsing takes', () => {
  it('refuses a CSV whose parse would pass the limit, before reading it', async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => `${i % 7},${i % 5},${i % 3}`).join('\n');
    const f = write('big.csv', Buffer.from(`a,b,label\n${rows}\n`));
    await expect(loadData(f, { maxDataBytes: 256 * 1024 })).rejects.toThrow(
      /big\.csv: is 29 KiB, which takes about 586 KiB to parse, above the data size limit \(256 KiB\)/,
    );
  });
});

describe('--max-data-size on the command line', () => {
  const model = join(ROOT, 'models/iris-mlp.onnx');
  it('refuses above the limit with exit 2 and one line, and loads once raised', async () => {
    const x = write('cli/x.npy', npy('<f4', [30, 4], new Float32Array(120).fill(0.5)));
    write('cli/y.npy', npy('<i8', [30], new BigInt64Array(30)));
    const refused = await runCli(['eval', model, '--data', x, '--max-data-size', '256']);
    expect(refused.code, refused.stderr).toBe(2);
    expect(errorLine(refused)).toMatch(
      /^error: .*cli\/x\.npy: declares 480 bytes of data \(shape 30x4 <f4\), above the data size limit \(256 bytes\); raise the data size limit/,
    );
    const ok = await runCli(['eval', model, '--data', x, '--max-data-size', '1M', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await runCli(['eval', model, '--data', x, '--max-data-size', 'lots']);
    expect(bad.code, bad.stderr).toBe(2);
    expect(errorLine(bad)).toMatch(/--max-data-size: expected a size such as 4G, 512M or a number of bytes, found 'lots'/);
  });
});
