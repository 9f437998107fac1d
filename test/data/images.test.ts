import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { decodeImage, resizeBilinear, toPlanar } from '../../src/data/images.js';
import { loadImageFolder } from '../../src/data/imageFolder.js';

const dir = mkdtempSync(join(tmpdir(), 'alrelu-img-'));

/** RGBA pixels with a known pattern: r = 10·x, g = 20·y, b = 200. */
function pattern(w: number, h: number): Buffer {
  const d = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) d.set([10 * x, 20 * y, 200, 255], (y * w + x) * 4);
  return d;
}

function png(w: number, h: number, data = pattern(w, h)): Buffer {
  const p = new PNG({ width: w, height: h });
  data.copy(p.data);
  return PNG.sync.write(p);
}

describe('decoding', () => {
  it('round-trips a PNG exactly', () => {
    const img = decodeImage(png(5, 3), 'a.png');
    expect([img.width, img.height]).toEqual([5, 3]);
    expect(Buffer.from(img.data).equals(pattern(5, 3))).toBe(true);
    const planar = toPlanar(img, 'rgb');
    expect(planar.length).toBe(3 * 15);
    expect(planar[4]).toBeCloseTo(40 / 255, 6); // R at (x=4, y=0)
    expect(planar[15 + 2 * 5]).toBeCloseTo(40 / 255, 6); // G at (x=0, y=2)
    expect(planar[30]).toBeCloseTo(200 / 255, 6);
    const gray = toPlanar(img, 'gray');
    expect(gray[0]).toBeCloseTo((0.114 * 200) / 255, 6);
  });

  it('round-trips a JPEG within compression error', () => {
    const data = Buffer.alloc(16 * 16 * 4);
    for (let i = 0; i < 256; i++) data.set([120, 60, 30, 255], i * 4);
    const enc = jpeg.encode({ width: 16, height: 16, data }, 100);
    const img = decodeImage(enc.data, 'a.jpg');
    expect([img.width, img.height]).toEqual([16, 16]);
    for (let i = 0; i < 256; i++) {
      expect(Math.abs(img.data[i * 4]! - 120)).toBeLessThanOrEqual(3);
      expect(Math.abs(img.data[i * 4 + 1]! - 60)).toBeLessThanOrEqual(3);
      expect(Math.abs(img.data[i * 4 + 2]! - 30)).toBeLessThanOrEqual(3);
    }
  });

  it('rejects corrupt and foreign files', () => {
    expect(() => decodeImage(Buffer.from('GIF89a....'), 'x.png')).toThrow(/x\.png: is not a PNG or JPEG image/);
    const bad = png(8, 8);
    bad.fill(0x55, 40, 60);
    expect(() => decodeImage(bad, 'bad.png')).toThrow(UserError);
    expect(() => decodeImage(bad, 'bad.png')).toThrow(/bad\.png: corrupt PNG image/);
    const trunc = jpeg.encode({ width: 16, height: 16, data: Buffer.alloc(1024, 128) }, 90).data.subarray(0, 100);
    expect(() => decodeImage(trunc, 'cut.jpg')).toThrow(/cut\.jpg: corrupt JPEG image/);
  });
});

describe('bilinear resize (half-pixel centres)', () => {
  it('downscales 4x4 to 2x2 by averaging 2x2 blocks', () => {
    const src = Float32Array.from({ length: 16 }, (_, i) => i);
    expect(Array.from(resizeBilinear(src, 1, 4, 4, 2, 2))).toEqual([2.5, 4.5, 10.5, 12.5]);
  });
  it('upscales 1x2 to 1x4 with clamped edges', () => {
    expect(Array.from(resizeBilinear(new Float32Array([0, 1]), 1, 1, 2, 1, 4))).toEqual([0, 0.25, 0.75, 1]);
  });
});

describe('image folder', () => {
  it('reads one subfolder per class, sorted, resized', async () => {
    const root = join(dir, 'pets');
    mkdirSync(join(root, 'dog'), { recursive: true });
    mkdirSync(join(root, 'cat'), { recursive: true });
    writeFileSync(join(root, 'cat', 'b.png'), png(4, 4));
    writeFileSync(join(root, 'cat', 'a.PNG'), png(8, 8));
    writeFileSync(join(root, 'cat', 'notes.txt'), 'ignored');
    writeFileSync(join(root, 'dog', 'z.jpg'), jpeg.encode({ width: 6, height: 6, data: Buffer.alloc(144, 255) }, 95).data);
    const ds = await loadImageFolder(root, { size: 4, channels: 'gray' });
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect(Array.from(ds.y)).toEqual([0, 0, 1]);
    expect(ds.sampleShape).toEqual([1, 4, 4]);
    // b.png is already 4x4: gray of (10x, 20y, 200)
    const b = ds.x.subarray(16, 32);
    expect(b[1 * 4 + 2]).toBeCloseTo((0.299 * 20 + 0.587 * 20 + 0.114 * 200) / 255, 5);
    expect(ds.x[40]).toBeGreaterThan(0.97); // white JPEG
    const rgb = await loadImageFolder(root);
    expect(rgb.sampleShape).toEqual([3, 8, 8]); // default size: the first image, cat/a.PNG (8x8)
  });

  it('names the bad file', async () => {
    const root = join(dir, 'broken');
    mkdirSync(join(root, 'x'), { recursive: true });
    writeFileSync(join(root, 'x', 'oops.png'), 'not really a png');
    await expect(loadImageFolder(root)).rejects.toThrow(/broken\/x\/oops\.png: is not a PNG or JPEG image/);
    const empty = join(dir, 'empty');
    mkdirSync(join(empty, 'a'), { recursive: true });
    await expect(loadImageFolder(empty)).rejects.toThrow(/has zero images/);
    await expect(loadImageFolder(dir + '/pets/cat')).rejects.toThrow(/has no class subfolders/);
  });
});
