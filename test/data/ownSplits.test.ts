/**
 * Own validation and test sets against the training set: classes matched by name (an image folder whose
 * validation copy lacks a class gets the training numbers, not its own), everything else that differs
 * refused, images loaded at the training images' size, and one data size limit across the files.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { alignSplit, describeSources, loadTrainingSets, sourcesKey } from '../../src/data/ownSplits.js';
import type { Dataset } from '../../src/data/types.js';
import { UserError } from '../../src/errors.js';

const ds = (over: Partial<Dataset>): Dataset => ({
  name: 'd',
  sampleShape: [2],
  x: new Float32Array(6),
  y: Int32Array.from([0, 1, 0]),
  task: 'classification',
  classes: ['a', 'b'],
  count: 3,
  ...over,
});

function png(w: number, h: number, v: number): Buffer {
  const p = new PNG({ width: w, height: h });
  p.data.fill(v);
  for (let i = 3; i < p.data.length; i += 4) p.data[i] = 255;
  return PNG.sync.write(p);
}

function folder(root: string, files: Record<string, [number, number, number][]>): string {
  for (const [cls, list] of Object.entries(files)) {
    mkdirSync(join(root, cls), { recursive: true });
    list.forEach(([w, h, v], i) => writeFileSync(join(root, cls, `${i}.png`), png(w, h, v)));
  }
  return root;
}

describe('alignSplit', () => {
  it('renumbers labels by class name; the same names in the same order pass unchanged', () => {
    const train = ds({ classes: ['cat', 'dog', 'fox'] });
    const val = ds({ classes: ['dog', 'fox'], y: Int32Array.from([0, 1, 1]) });
    const a = alignSplit(train, val, 'validation', 'val');
    expect(Array.from(a.y)).toEqual([1, 2, 2]);
    expect(a.classes).toEqual(['cat', 'dog', 'fox']);
    const same = ds({ classes: ['cat', 'dog'] });
    expect(alignSplit(train, same, 'test', 't').y).toBe(same.y);
  });

  it('refuses an unknown class, another task, sample shape, feature columns or target size', () => {
    const train = ds({});
    const refuse = (other: Dataset, cause: RegExp) => {
      let err: unknown;
      try {
        alignSplit(train, other, 'validation', 'v.csv');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(cause);
    };
    refuse(ds({ classes: ['a', 'c'] }), /^v\.csv: the validation set has class c, which the training data \(a, b\) does not have$/);
    refuse(ds({ classes: ['a', 'b', '\u001b[2J'] }), /class \\x1b\[2J,/);
    refuse(ds({ task: 'regression' }), /holds regression data for the validation set; the training data is classification/);
    refuse(ds({ sampleShape: [3] }), /its samples are 3, the training data's are 2/);
    const cols = ds({ featureNames: ['p', 'q'] });
    expect(() => alignSplit(ds({ featureNames: ['p', 'q'] }), ds({ featureNames: ['q', 'p'] }), 'test', 't')).toThrow(
      /feature columns are q, p, the training data's are p, q/,
    );
    expect(alignSplit(cols, ds({ featureNames: ['p', 'q'] }), 'test', 't').count).toBe(3);
    const reg = ds({ task: 'regression', y: new Float32Array(6), targetSize: 2 });
    expect(() => alignSplit(reg, ds({ task: 'regression', y: new Float32Array(3), targetSize: 1 }), 'test', 't')).toThrow(
      /has 1 target values per sample, the training data's 2/,
    );
  });
});

describe('loadTrainingSets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'alrelu-splits-'));

  it('image folders: validation images at the training size, a missing class renumbered by name', async () => {
    const train = folder(join(dir, 'train'), {
      cat: [
        [10, 8, 10],
        [12, 12, 20],
      ],
      dog: [[30, 9, 200]],
      fox: [[5, 5, 90]],
    });
    const val = folder(join(dir, 'val'), {
      dog: [[40, 40, 200]],
      fox: [
        [7, 3, 90],
        [3, 7, 90],
      ],
    });
    const sets = await loadTrainingSets({ data: train, val });
    // the first training image (cat/0.png, 10 wide, 8 high) sets the size for all
    expect(sets.train.sampleShape).toEqual([3, 8, 10]);
    expect(sets.val.sampleShape).toEqual([3, 8, 10]);
    expect(Array.from(sets.val.y)).toEqual([1, 2, 2]);
    expect(sets.val.classes).toEqual(['cat', 'dog', 'fox']);
    expect(sets.test).toBeUndefined();
    expect(describeSources(sets.sources)).toBe(`train: all of ${train}, 4 samples; validation: all of ${val}, 3 samples; test: none`);
    expect(sourcesKey(sets.sources)).toBe(`train=all:${train} val=all:${val} test=none`);
    // an asked size is used for every set
    const sized = await loadTrainingSets({ data: train, test: val }, { imageSize: [4, 6] });
    expect(sized.test!.sampleShape).toEqual([3, 4, 6]);
    expect(sized.val.count).toBe(0);
  });

  it('without own files: the seeded 80/10/10 split, whose identity is that of runs before own files existed', async () => {
    const sets = await loadTrainingSets({ data: 'iris' });
    expect([sets.train.count, sets.val.count, sets.test!.count]).toEqual([120, 15, 15]);
    expect(sourcesKey(sets.sources)).toBeUndefined();
    const own = await loadTrainingSets({ data: 'iris:train', val: 'iris:val' });
    expect(own.sources.val).toEqual({ spec: 'iris:val', part: 'val', count: 15 });
    expect(sourcesKey(own.sources)).toBe('train=train:iris:train val=val:iris:val test=none');
  });

  it('the files share one data size limit', async () => {
    const a = folder(join(dir, 'big-a'), { x: [[64, 64, 1]], y: [[64, 64, 2]] });
    const b = folder(join(dir, 'big-b'), { x: [[64, 64, 1]], y: [[64, 64, 2]] });
    // a set of 2 RGB 64x64 float images holds 96 KiB, and 112 KiB more while one image is resized: one
    // set fits in 250 KiB, the second one's on top of the first's does not
    await expect(loadTrainingSets({ data: a }, { maxDataBytes: 250 * 1024 })).resolves.toBeDefined();
    await expect(loadTrainingSets({ data: a, test: b }, { maxDataBytes: 250 * 1024 })).rejects.toThrow(
      /big-b.*already loaded for this data set.*above the data size limit/,
    );
    await expect(loadTrainingSets({ data: a, test: b }, { maxDataBytes: 400 * 1024 })).resolves.toBeDefined();
  });
});
