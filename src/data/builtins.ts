/** The built-in data sets, by name. Each loads the full set in a fixed order; splits are applied on top. */
import { UserError } from '../errors.js';
import { loadIris } from './iris.js';
import { loadMnist } from './mnist.js';
import { loadPenguins } from './penguins.js';
import { loadSpam, type SpamOptions } from './spam.js';
import type { Dataset } from './types.js';

export type BuiltinOptions = SpamOptions;

export interface Builtin {
  name: string;
  description: string;
  load(opts: BuiltinOptions): Promise<Dataset>;
  /** whether the loaded set depends on the options (so the cache is keyed by them) */
  optionKey?(opts: BuiltinOptions): string;
}

const BUILTINS: Record<string, Builtin> = {
  mnist: { name: 'mnist', description: '10,000 handwritten digits 28×28, 10 classes', load: loadMnist },
  iris: { name: 'iris', description: '150 iris flowers, 4 features, 3 classes', load: loadIris },
  penguins: { name: 'penguins', description: '342 Palmer penguins, 4 features, 3 species', load: loadPenguins },
  spam: {
    name: 'spam',
    description: '6,046 SpamAssassin e-mails as hashed bags of words, spam/ham',
    load: loadSpam,
    optionKey: (o) => `${o.buckets ?? ''}/${o.values ?? ''}`,
  },
};

export const BUILTIN_NAMES = Object.keys(BUILTINS);

export function isBuiltin(name: string): boolean {
  return Object.hasOwn(BUILTINS, name);
}

const cache = new Map<string, Promise<Dataset>>();

/** The full built-in set, loaded once per process (callers get copies through applySplit). */
export function loadBuiltin(name: string, opts: BuiltinOptions = {}): Promise<Dataset> {
  const b = BUILTINS[name];
  if (!b || !isBuiltin(name)) {
    throw new UserError(
      `data set ${JSON.stringify(name)}`,
      `unknown; the built-in data sets are ${BUILTIN_NAMES.join(', ')} (or give a path to .npz, .npy, .csv, an image folder or a test_data_set folder)`,
    );
  }
  const key = `${name}:${b.optionKey?.(opts) ?? ''}`;
  let p = cache.get(key);
  if (!p) {
    p = b.load(opts);
    cache.set(key, p);
    // A failed load should not be remembered: the user may fix the install and retry in the same process.
    p.catch(() => cache.delete(key));
  }
  return p;
}
