import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { loadCsv, parseCsv } from '../../src/data/csv.js';

const dir = mkdtempSync(join(tmpdir(), 'alrelu-csv-'));
const file = (name: string, text: string): string => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

describe('CSV', () => {
  it('parses quotes, escapes and CRLF', () => {
    const rows = parseCsv('a,"b,c","say ""hi"""\r\n1,"multi\nline",3\n\n', ',', 't');
    expect(rows.map((r) => r.cells)).toEqual([
      ['a', 'b,c', 'say "hi"'],
      ['1', 'multi\nline', '3'],
    ]);
    expect(rows.map((r) => r.line)).toEqual([1, 2]);
  });

  it('detects a header, uses the label column, sorts string classes', async () => {
    const f = file('flowers.csv', '\ufeffpetal,label,sepal\n1.5,virginica,2\n0.5,setosa,3\n1,versicolor,4\n0.25,setosa,5\n');
    const ds = await loadCsv(f);
    expect(ds.count).toBe(4);
    expect(ds.sampleShape).toEqual([2]);
    expect(ds.featureNames).toEqual(['petal', 'sepal']);
    expect(ds.classes).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(Array.from(ds.y)).toEqual([2, 0, 1, 0]);
    expect(Array.from(ds.x)).toEqual([1.5, 2, 0.5, 3, 1, 4, 0.25, 5]);
  });

  it('defaults to the last column without a header; integer labels are indices', async () => {
    const f = file('plain.csv', '1,2,0\n3,4,2\n5,6,1\n');
    const ds = await loadCsv(f);
    expect(ds.featureNames).toBeUndefined();
    expect(Array.from(ds.y)).toEqual([0, 2, 1]);
    expect(ds.classes).toEqual(['0', '1', '2']);
    const first = await loadCsv(f, { labelColumn: 0 });
    expect(Array.from(first.y)).toEqual([1, 3, 5]);
    expect(Array.from(first.x)).toEqual([2, 0, 4, 2, 6, 1]);
  });

  it('takes a label column by name, and regression targets', async () => {
    const f = file('reg.csv', 'price,a,b\n1.5,1,2\n2.25,3,4\n');
    const ds = await loadCsv(f, { labelColumn: 'price', task: 'regression' });
    expect(ds.task).toBe('regression');
    expect(Array.from(ds.y)).toEqual([1.5, 2.25]);
    await expect(loadCsv(f, { labelColumn: 'price' })).rejects.toThrow(/line 2: label 1.5 in column "price" is not an integer/);
    await expect(loadCsv(f, { labelColumn: 'cost' })).rejects.toThrow(/no column named "cost"; the header has "price", "a", "b"/);
  });

  it('reads tab-separated .tsv', async () => {
    const ds = await loadCsv(file('t.tsv', 'a\tb\tlabel\n1\t2\tx\n3\t4\ty\n'));
    expect(ds.classes).toEqual(['x', 'y']);
  });

  it('reports bad input with file and line', async () => {
    await expect(loadCsv(file('ragged.csv', 'a,b,label\n1,2,0\n3,0\n'))).rejects.toThrow(/ragged\.csv: line 3 has 2 fields, expected 3/);
    await expect(loadCsv(file('nan.csv', 'a,b,label\n1,2,0\n3,oops,1\n'))).rejects.toThrow(/nan\.csv: line 3, column "b": expected a number, found "oops"/);
    await expect(loadCsv(file('head.csv', 'a,b,label\n'))).rejects.toThrow(/head\.csv: has zero rows/);
    await expect(loadCsv(file('empty.csv', '\n\n'))).rejects.toThrow(/empty\.csv: is empty/);
    await expect(loadCsv(file('neg.csv', '1,2,-1\n'))).rejects.toThrow(/label y\[0\] = -1 is not a class index/);
    await expect(loadCsv(file('quote.csv', 'a,b\n1,"2\n'))).rejects.toThrow(/never closed/);
    await expect(loadCsv(join(dir, 'missing.csv'))).rejects.toThrow(UserError);
  });
});
