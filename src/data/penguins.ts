/**
 * Built-in `penguins`: the Palmer penguins from the `vega-datasets` npm package (data/penguins.json, 344
 * rows). The 2 rows with no measurements at all (one Adelie, one Gentoo) are dropped — any row missing
 * one of the four numbers is dropped — leaving 342. Sample shape [4], raw and not normalised, in this
 * order: bill length (mm), bill depth (mm), flipper length (mm), body mass (g) (the file calls bills
 * "Beak"). Label = species, classes in alphabetical order: Adelie = 0, Chinstrap = 1, Gentoo = 2.
 * Island and sex are not used. Rows keep the file's order.
 */
import { UserError } from '../errors.js';
import { readPackageJson } from './packages.js';
import type { Dataset } from './types.js';

/** Column names in the JSON, in feature order. */
const PENGUIN_COLUMNS = ['Beak Length (mm)', 'Beak Depth (mm)', 'Flipper Length (mm)', 'Body Mass (g)'] as const;
const PENGUIN_FEATURES = ['bill length (mm)', 'bill depth (mm)', 'flipper length (mm)', 'body mass (g)'];
const PENGUIN_CLASSES = ['Adelie', 'Chinstrap', 'Gentoo'];

type PenguinRow = Record<string, string | number | null>;

export async function loadPenguins(): Promise<Dataset> {
  const rows = await readPackageJson<PenguinRow[]>('vega-datasets', 'data', 'penguins.json');
  const kept = rows.filter((r) => PENGUIN_COLUMNS.every((c) => typeof r[c] === 'number' && Number.isFinite(r[c])));
  const x = new Float32Array(kept.length * 4);
  const y = new Int32Array(kept.length);
  kept.forEach((r, i) => {
    PENGUIN_COLUMNS.forEach((c, f) => (x[i * 4 + f] = r[c] as number));
    const label = PENGUIN_CLASSES.indexOf(String(r.Species));
    if (label < 0) throw new UserError('vega-datasets penguins.json', `unknown species ${JSON.stringify(r.Species)}`);
    y[i] = label;
  });
  return {
    name: 'penguins',
    sampleShape: [4],
    x,
    y,
    task: 'classification',
    classes: [...PENGUIN_CLASSES],
    featureNames: [...PENGUIN_FEATURES],
    count: kept.length,
    source: 'npm package vega-datasets (data/penguins.json)',
  };
}
