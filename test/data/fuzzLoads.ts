/**
 * The data-loader fuzz run, in a process of its own so its peak memory can be measured (run by
 * test/data/fuzz.test.ts: `node --import tsx --max-old-space-size=256 test/data/fuzzLoads.ts <dir>`).
 *
 * Real files of every kind the data loader reads (.npz written by numpy, .npy, CSV, PNG, JPEG, a
 * reference .pb) are mutated with a seeded PRNG: bit flips, truncation, size and length fields set
 * to absurd values, spliced bytes; then the attacks of issue 8. Each goes through the public
 * loadData with a small data size limit and must end in a one-line UserError or a valid load, in
 * bounded time. Prints one JSON summary line on stdout.
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateSync, inflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { loadData } from '../../src/data/index.js';
import { mulberry32 } from '../../src/data/prng.js';
import type { Dataset } from '../../src/data/types.js';
import { ZipReader } from '../../src/data/zip.js';
import { isUserError } from '../../src/errors.js';
import { deflatedZeros, npy, pngOf, withJpegSize, zipOf, zlibZeros } from './build.js';

const MiB = 2 ** 20;
/** The data size limit of every load: small, so that the memory bound below is tight. */
export const LIMIT = 64 * MiB;
export const CASES_PER_SEED = 250;
const SLOW_MS = 5000;

const HERE = fileURLToPath(import.meta.url);
const FIXTURES = join(dirname(HERE), '../../../shared/fixtures');
type Rand = () => number;
type Field = { at: number; width: 1 | 2 | 4 | 8; big: boolean };

/** A seed file, prepared on disk: `dir` holds it (as `file`) and the files that stay intact beside it. */
interface Seed {
  name: string;
  dir: string;
  file: string;
  /** what is given to loadData, relative to the case folder */
  spec: string;
  format: Format;
}

/** An attack, prepared on disk in `dir`; `limit` 'default' loads it at the default data size limit. */
interface Attack {
  name: string;
  dir: string;
  spec: string;
  limit?: 'default';
}

type Format = 'zip' | 'npy' | 'csv' | 'png' | 'jpeg' | 'pb';

const le = (at: number, width: Field['width']): Field => ({ at, width, big: false });
const be = (at: number, width: Field['width']): Field => ({ at, width, big: true });

function zipFields(b: Buffer): Field[] {
  const out: Field[] = [];
  for (let p = b.indexOf('PK'); p >= 0 && p + 4 <= b.length; p = b.indexOf('PK', p + 1)) {
    const sig = b.readUInt32LE(p);
    if (sig === 0x04034b50) out.push(le(p + 14, 4), le(p + 18, 4), le(p + 22, 4), le(p + 26, 2), le(p + 28, 2), le(p + 34, 8), le(p + 42, 8));
    if (sig === 0x02014b50) out.push(le(p + 16, 4), le(p + 20, 4), le(p + 24, 4), le(p + 28, 2), le(p + 30, 2), le(p + 32, 2), le(p + 42, 4));
    if (sig === 0x06054b50) out.push(le(p + 8, 2), le(p + 10, 2), le(p + 12, 4), le(p + 16, 4));
  }
  return out;
}

function pngFields(b: Buffer): Field[] {
  const out: Field[] = [be(16, 4), be(20, 4)];
  for (let p = 8; p + 8 <= b.length; p += 12 + b.readUInt32BE(p)) out.push(be(p, 4));
  return out;
}

function jpegFields(b: Buffer): Field[] {
  const out: Field[] = [];
  for (let p = 2; p + 4 <= b.length && b[p] === 0xff; p += 2 + b.readUInt16BE(p + 2)) {
    out.push(be(p + 2, 2));
    if (b[p + 1]! >= 0xc0 && b[p + 1]! <= 0xc2) out.push(be(p + 5, 2), be(p + 7, 2));
    if (b[p + 1] === 0xda) break;
  }
  return out;
}

/** Protobuf length prefixes: the byte after a wire-type-2 tag (a one-byte varint length). */
function pbFields(b: Buffer): Field[] {
  const out: Field[] = [];
  for (let i = 0; i + 1 < b.length; i++) if ((b[i]! & 7) === 2 && b[i]! < 0x80) out.push(le(i + 1, 1));
  return out;
}

const FIELDS: Record<Format, (b: Buffer) => Field[]> = {
  zip: zipFields,
  npy: () => [le(8, 2), le(6, 1)],
  csv: () => [],
  png: pngFields,
  jpeg: jpegFields,
  pb: pbFields,
};

/**
 * A hostile PNG carries valid chunk CRCs; without them every mutation would stop at the CRC check.
 * Every complete chunk's CRC is recomputed, so that the decoder itself meets the mutated data.
 */
function fixPngCrcs(b: Buffer): Buffer {
  const c = Buffer.from(b);
  for (let p = 8; p + 12 <= c.length; ) {
    const len = c.readUInt32BE(p);
    if (p + 12 + len > c.length) break;
    c.writeUInt32BE(crc32(c.subarray(p + 4, p + 8 + len)), p + 8 + len);
    p += 12 + len;
  }
  return c;
}

const ABSURD = [0n, 1n, 0x7fn, 0xffn, 0xffffn, 0x7fffffffn, 0xffffffffn, (1n << 53n) + 1n, (1n << 63n) - 1n, (1n << 64n) - 1n];

function writeField(c: Buffer, f: Field, v: bigint): void {
  const bits = BigInt(f.width * 8);
  const val = v & ((1n << bits) - 1n);
  if (f.at + f.width > c.length) return;
  for (let k = 0; k < f.width; k++) {
    const byte = Number((val >> BigInt(8 * k)) & 0xffn);
    c[f.big ? f.at + f.width - 1 - k : f.at + k] = byte;
  }
}

const at = (n: number, r: Rand) => Math.floor(r() * n);

type Mutation = (b: Buffer, r: Rand, s: Seed) => Buffer;
const MUTATIONS: Record<string, Mutation> = {
  bitflips: (b, r) => {
    const c = Buffer.from(b);
    for (let k = 1 + at(8, r); k > 0; k--) c[at(c.length, r)]! ^= 1 << at(8, r);
    return c;
  },
  truncate: (b, r) => b.subarray(0, at(b.length, r)),
  fields: (b, r, s) => {
    const fields = FIELDS[s.format](b);
    if (fields.length === 0) return MUTATIONS.splice!(b, r, s);
    const c = Buffer.from(b);
    const f = fields[at(fields.length, r)]!;
    const near = BigInt(b.length) + BigInt(at(64, r)) - 32n;
    const v = r() < 0.8 ? ABSURD[at(ABSURD.length, r)]! : near < 0n ? 0n : near;
    writeField(c, f, v);
    return c;
  },
  splice: (b, r) => {
    const i = at(b.length, r);
    const j = at(b.length, r);
    return Buffer.concat([b.subarray(0, i), b.subarray(j, j + at(64, r)), b.subarray(i)]);
  },
};

function write(dir: string, files: Record<string, Buffer>): void {
  for (const [name, bytes] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  }
}

/**
 * Writes the seed files (real files written by numpy, pngjs, jpeg-js and the ONNX test suite, and a
 * CSV) and the attacks of issue 8 under `work`, with a manifest; run in the test's own process, so
 * that building them (a 400 MB bomb is built bit by bit) does not count in the fuzz run's memory.
 */
export function prepare(work: string): void {
  const npz = readFileSync(join(FIXTURES, 'gradients/mlp_iris/batch.npz'));
  const digits = new ZipReader(readFileSync(join(FIXTURES, 'gradients/cnn_digits/batch.npz')), 'digits');
  const members = digits.names().map((name) => ({ name, content: Buffer.from(digits.read(name)), deflate: true }));
  const plain = new ZipReader(npz, 'iris');
  const xNpy = Buffer.from(plain.read('x.npy'));
  const yNpy = Buffer.from(plain.read('y.npy'));
  const rgba = new PNG({ width: 12, height: 10 });
  for (let i = 0; i < rgba.data.length; i++) rgba.data[i] = (i * 29) & 0xff;
  const jpg = Buffer.from(jpeg.encode({ width: 24, height: 16, data: Buffer.from(Array.from({ length: 24 * 16 * 4 }, (_, i) => (i * 13) & 0xff)) }, 85).data);
  const species = ['setosa', 'versicolor', '"virginica"'];
  const rows = Array.from(
    { length: 60 },
    (_, i) => `${(4.3 + (i % 30) / 10).toFixed(1)},${(2 + (i % 12) / 10).toFixed(1)},${1 + (i % 50) / 10},${(i % 25) / 10},${species[i % 3]}`,
  );
  const csv = ['sepal length,sepal width,"petal, length",petal width,species', ...rows].join('\r\n');
  const pbDir = join(FIXTURES, 'models/onnx-onnx/node/test_prelu_example/test_data_set_0');
  const pb = (n: string) => readFileSync(join(pbDir, n));
  const seeds: (Omit<Seed, 'dir'> & { files: Record<string, Buffer> })[] = [
    { name: 'npz (numpy, stored)', format: 'zip', file: 'd.npz', spec: 'd.npz', files: { 'd.npz': npz } },
    { name: 'npz (deflated)', format: 'zip', file: 'd.npz', spec: 'd.npz', files: { 'd.npz': zipOf(members) } },
    { name: 'npy samples', format: 'npy', file: 'p/x.npy', spec: 'p/x.npy', files: { 'p/x.npy': xNpy, 'p/y.npy': yNpy } },
    { name: 'npy labels', format: 'npy', file: 'p/y.npy', spec: 'p/x.npy', files: { 'p/x.npy': xNpy, 'p/y.npy': yNpy } },
    { name: 'csv', format: 'csv', file: 'd.csv', spec: 'd.csv', files: { 'd.csv': Buffer.from(csv) } },
    {
      name: 'png (pngjs, RGBA)',
      format: 'png',
      file: 'img/a/0.png',
      spec: 'img',
      files: { 'img/a/0.png': PNG.sync.write(rgba), 'img/b/1.png': pngOf({ width: 12, height: 10 }) },
    },
    { name: 'png (interlaced)', format: 'png', file: 'img/a/0.png', spec: 'img', files: { 'img/a/0.png': pngOf({ width: 13, height: 11, interlaced: true }) } },
    { name: 'jpeg (jpeg-js)', format: 'jpeg', file: 'img/a/0.jpg', spec: 'img', files: { 'img/a/0.jpg': jpg } },
    {
      name: 'pb (onnx test data)',
      format: 'pb',
      file: 'test_data_set_0/input_0.pb',
      spec: 'test_data_set_0',
      files: {
        'test_data_set_0/input_0.pb': pb('input_0.pb'),
        'test_data_set_0/input_1.pb': pb('input_1.pb'),
        'test_data_set_0/output_0.pb': pb('output_0.pb'),
      },
    },
  ];
  const y = npy('<i8', [3], new BigInt64Array(3));
  const bomb = 400e6;
  const small = Buffer.from(jpeg.encode({ width: 16, height: 16, data: Buffer.alloc(1024, 90) }, 90).data);
  const attacks: (Omit<Attack, 'dir'> & { files: Record<string, Buffer> })[] = [
    {
      name: 'npz bomb: 2.5 MB declaring 400 MB',
      spec: 'a.npz',
      files: {
        'a.npz': zipOf([
          { name: 'x.npy', content: Buffer.alloc(0), raw: deflatedZeros(bomb), size: bomb, deflate: true },
          { name: 'y.npy', content: y },
        ]),
      },
    },
    {
      name: 'npz member declaring 100 bytes, inflating to 400 MB',
      spec: 'a.npz',
      limit: 'default',
      files: {
        'a.npz': zipOf([
          { name: 'x.npy', content: Buffer.alloc(100), raw: deflatedZeros(bomb), size: 100, deflate: true },
          { name: 'y.npy', content: y },
        ]),
      },
    },
    {
      name: 'npz member declaring 0 bytes, inflating to 400 MB',
      spec: 'a.npz',
      limit: 'default',
      files: {
        'a.npz': zipOf([
          { name: 'x.npy', content: Buffer.alloc(0), raw: deflatedZeros(bomb), size: 0, deflate: true },
          { name: 'y.npy', content: y },
        ]),
      },
    },
    {
      name: 'PNG IHDR 30000x30000, 5.6 MB of valid image data',
      spec: 'img',
      limit: 'default',
      files: { 'img/a/0.png': pngOf({ width: 30000, height: 30000, idat: zlibZeros(30000 * 30001) }) },
    },
    {
      name: 'PNG IHDR 30000x30000, tiny IDAT',
      spec: 'img',
      limit: 'default',
      files: { 'img/a/0.png': pngOf({ width: 30000, height: 30000, idat: deflateSync(Buffer.alloc(64)) }) },
    },
    {
      name: 'interlaced PNG, IDAT inflating to 400 MB',
      spec: 'img',
      limit: 'default',
      files: { 'img/a/0.png': pngOf({ width: 16, height: 16, interlaced: true, idat: zlibZeros(bomb) }) },
    },
    { name: 'JPEG SOF 65535x65535', spec: 'img', limit: 'default', files: { 'img/a/0.jpg': withJpegSize(small, 65535, 65535) } },
    { name: 'JPEG SOF 8000x8000 (within jpeg-js defaults, above the limit)', spec: 'img', files: { 'img/a/0.jpg': withJpegSize(small, 8000, 8000) } },
    {
      name: 'npy declaring 100000x100000 over 16 bytes',
      spec: 'p/x.npy',
      limit: 'default',
      files: { 'p/x.npy': npy('<f4', [100000, 100000], new Float32Array(4)), 'p/y.npy': y },
    },
    {
      name: 'npy shape overflowing 2^53',
      spec: 'p/x.npy',
      limit: 'default',
      files: { 'p/x.npy': npy('<f4', [], new Float32Array(0), false, '(4294967296, 4294967296, 4294967296)'), 'p/y.npy': y },
    },
    {
      name: 'int64 label 2^40 (a billion class names)',
      spec: 'p/x.npy',
      limit: 'default',
      files: { 'p/x.npy': npy('<f4', [3, 2], new Float32Array(6)), 'p/y.npy': npy('<i8', [3], new BigInt64Array([0n, 1n, 1n << 40n])) },
    },
  ];
  const manifest: { seeds: Seed[]; attacks: Attack[] } = { seeds: [], attacks: [] };
  seeds.forEach(({ files, ...s }, i) => {
    const dir = join(work, `seed${i}`);
    write(dir, files);
    manifest.seeds.push({ ...s, dir });
  });
  attacks.forEach(({ files, ...a }, i) => {
    const dir = join(work, `attack${i}`);
    write(dir, files);
    manifest.attacks.push({ ...a, dir });
  });
  writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest));
}

export interface FuzzSummary {
  tried: number;
  held: number;
  loaded: number;
  refused: number;
  perSeed: Record<string, { tried: number; loaded: number; refused: number }>;
  attacks: { name: string; error: string }[];
  failures: string[];
  slowestMs: number;
  /** the process's peak resident memory before the first load and after the last, in MiB */
  rssBeforeMiB: number;
  rssPeakMiB: number;
  /** the most buffer memory (outside the JS heap) still held after any one load, in MiB */
  maxRetainedMiB: number;
}

/**
 * A PNG whose inflated image data (filter bytes and pixels) is mutated and compressed again, with
 * valid CRCs: what gets past zlib and the CRC checks to pngjs's unfiltering and bit unpacking.
 */
function mutatePngPixels(b: Buffer, r: Rand): Buffer {
  const chunks: { type: string; data: Buffer }[] = [];
  for (let p = 8; p + 12 <= b.length; p += 12 + b.readUInt32BE(p)) {
    const len = b.readUInt32BE(p);
    chunks.push({ type: b.toString('latin1', p + 4, p + 8), data: b.subarray(p + 8, p + 8 + len) });
  }
  const idat = Buffer.concat(chunks.filter((c) => c.type === 'IDAT').map((c) => c.data));
  let raw: Buffer = inflateSync(idat);
  raw = r() < 0.25 ? raw.subarray(0, at(raw.length, r)) : MUTATIONS.bitflips!(raw, r, undefined as never);
  const out: Buffer[] = [b.subarray(0, 8)];
  let wroteData = false;
  for (const c of chunks) {
    if (c.type === 'IDAT') {
      if (wroteData) continue;
      wroteData = true;
    }
    const data = c.type === 'IDAT' ? deflateSync(raw) : c.data;
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(c.type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    out.push(head, data, crc);
  }
  return Buffer.concat(out);
}

/** A message must be one line; from the loaders of src/data, it must hold no control characters at all. */
const ONE_LINE = /[\n\r]/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** One load: loaded (with a digest of the samples and labels), refused (the UserError's message), or undefined where it failed otherwise (recorded). */
type Outcome = { loaded: true; digest: string } | { loaded: false; error: string };

async function attempt(spec: string, limit: number | undefined, what: string, s: FuzzSummary, unprintable = ONE_LINE): Promise<Outcome | undefined> {
  const started = performance.now();
  const buffers = process.memoryUsage().arrayBuffers;
  try {
    const d = await loadData(spec, limit === undefined ? {} : { maxDataBytes: limit });
    const digest = createHash('sha256');
    if (!Array.isArray(d)) {
      const ds = d as Dataset;
      const per = ds.sampleShape.reduce((a, b) => a * b, 1);
      if (ds.x.length !== ds.count * per || ds.y.length < ds.count)
        throw new Error(`inconsistent data set: ${ds.count} rows of ${ds.sampleShape}, ${ds.x.length} values`);
      digest.update(new Uint8Array(ds.x.buffer, ds.x.byteOffset, ds.x.byteLength)).update(new Uint8Array(ds.y.buffer, ds.y.byteOffset, ds.y.byteLength));
    } else if (d.length === 0) throw new Error('no reference cases');
    return { loaded: true, digest: digest.digest('hex') };
  } catch (e) {
    if (isUserError(e) && !unprintable.test(e.message)) return { loaded: false, error: e.message };
    s.failures.push(`${what}: ${e instanceof Error ? e.stack : String(e)}`);
    return undefined;
  } finally {
    const ms = performance.now() - started;
    s.slowestMs = Math.max(s.slowestMs, ms);
    if (ms > SLOW_MS) s.failures.push(`${what}: took ${ms.toFixed(0)} ms`);
    s.maxRetainedMiB = Math.max(s.maxRetainedMiB, (process.memoryUsage().arrayBuffers - buffers) / MiB);
  }
}

/** Runs every attack, then CASES_PER_SEED mutations of each seed, from the manifest `prepare` wrote. */
export async function fuzz(work: string): Promise<FuzzSummary> {
  const { seeds, attacks } = JSON.parse(readFileSync(join(work, 'manifest.json'), 'utf8')) as { seeds: Seed[]; attacks: Attack[] };
  const rssMiB = () => process.resourceUsage().maxRSS / 1024;
  const s: FuzzSummary = {
    tried: 0,
    held: 0,
    loaded: 0,
    refused: 0,
    perSeed: {},
    attacks: [],
    failures: [],
    slowestMs: 0,
    rssBeforeMiB: rssMiB(),
    rssPeakMiB: 0,
    maxRetainedMiB: 0,
  };
  for (const a of attacks) {
    s.tried++;
    const r = await attempt(join(a.dir, a.spec), a.limit === 'default' ? undefined : LIMIT, `attack '${a.name}'`, s);
    if (r?.loaded) s.failures.push(`attack '${a.name}' loaded`);
    else if (r) {
      s.held++;
      s.refused++;
      s.attacks.push({ name: a.name, error: r.error });
    }
  }
  const kinds = Object.keys(MUTATIONS);
  const dir = join(work, 'case');
  for (const seed of seeds) {
    rmSync(dir, { recursive: true, force: true });
    cpSync(seed.dir, dir, { recursive: true });
    // The seed itself loads: mutations start from a valid file.
    if (!(await attempt(join(dir, seed.spec), LIMIT, `seed ${seed.name}`, s))?.loaded) s.failures.push(`seed ${seed.name} does not load`);
    const original = readFileSync(join(seed.dir, seed.file));
    const tally = { tried: 0, loaded: 0, refused: 0 };
    const r = mulberry32(original.length * 7919 + seed.name.length);
    for (let k = 0; k < CASES_PER_SEED; k++) {
      // PNG: every fifth case mutates the pixels under valid compression and CRCs; of the rest, half
      // get their CRCs fixed so the mutation reaches the decoder.
      const kind = seed.format === 'png' && k % 5 === 4 ? 'pixels' : kinds[k % kinds.length]!;
      let bytes = kind === 'pixels' ? mutatePngPixels(original, r) : MUTATIONS[kind]!(original, r, seed);
      if (seed.format === 'png' && kind !== 'pixels' && k % 2 === 0) bytes = fixPngCrcs(bytes);
      writeFileSync(join(dir, seed.file), bytes);
      // Reference .pb files are read by src/data/reference.ts and src/onnx, whose messages carry
      // tensor names as they are (the CLI escapes them when printing): one line is asked of them.
      const what = `${seed.name} case ${k} (${kind})`;
      const out = await attempt(join(dir, seed.spec), LIMIT, what, s, seed.format === 'pb' ? ONE_LINE : CONTROL);
      if (process.env.FUZZ_TRACE) process.stderr.write(`${what}: ${JSON.stringify(out)}\n`);
      s.tried++;
      tally.tried++;
      if (out === undefined) continue;
      // Decoders that reuse memory could make an outcome depend on what it held: images load twice alike.
      if (seed.format === 'png' || seed.format === 'jpeg') {
        const again = await attempt(join(dir, seed.spec), LIMIT, what, s, CONTROL);
        if (JSON.stringify(again) !== JSON.stringify(out))
          s.failures.push(`${what}: loads differently twice: ${JSON.stringify(out)}, then ${JSON.stringify(again)}`);
      }
      s.held++;
      if (out.loaded) {
        s.loaded++;
        tally.loaded++;
      } else {
        s.refused++;
        tally.refused++;
      }
    }
    s.perSeed[seed.name] = tally;
  }
  s.rssPeakMiB = rssMiB();
  return s;
}

// Run as a script (`node --import tsx fuzzLoads.ts <work>`, after prepare): the summary is stdout's last line.
if (process.argv[1] && resolve(process.argv[1]) === HERE) {
  const summary = await fuzz(process.argv[2]!);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
