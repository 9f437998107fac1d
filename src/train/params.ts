/**
 * Which initializers fine-tuning may change. Parameters are the model's float initializers (old
 * exporters also list them as graph inputs; that does not make them data). BatchNormalization's running
 * mean and variance are statistics, not weights: never trainable. `--train-only` narrows the set,
 * `--freeze` removes from it; both take the same globs and /regexes/ as the converter's --include.
 */
import { UserError } from '../errors.js';
import { patternMatcher } from '../convert/select.js';
import { isFloatType } from '../onnx/dtype.js';
import { int, type GraphProto, type TensorProto } from '../onnx/types.js';

export interface ParameterChoice {
  /** names of the parameters that will be trained, in initializer order */
  trainable: string[];
  /** float initializers left as they are, and why */
  frozen: { name: string; reason: string }[];
}

export interface ParameterOptions {
  freeze?: string[];
  trainOnly?: string[];
}

/** Float initializers that some node reads (unused ones cannot have a gradient and are left alone). */
function floatInitializers(graph: GraphProto): TensorProto[] {
  const used = new Set((graph.node ?? []).flatMap((n) => n.input ?? []));
  return (graph.initializer ?? []).filter((t) => t.name && isFloatType(t.dataType) && used.has(t.name));
}

/** Inputs 3 and 4 of every BatchNormalization: running mean and variance. */
function runningStatistics(graph: GraphProto): Set<string> {
  const out = new Set<string>();
  for (const n of graph.node ?? []) {
    if (n.opType !== 'BatchNormalization') continue;
    for (const i of [3, 4]) if (n.input?.[i]) out.add(n.input[i]);
  }
  return out;
}

export function chooseParameters(graph: GraphProto, opts: ParameterOptions = {}): ParameterChoice {
  const only = (opts.trainOnly ?? []).map((p) => matcher('trainOnly', p));
  const freeze = (opts.freeze ?? []).map((p) => matcher('freeze', p));
  const stats = runningStatistics(graph);
  const trainable: string[] = [];
  const frozen: ParameterChoice['frozen'] = [];
  const candidates = floatInitializers(graph);
  for (const t of candidates) {
    const name = t.name!;
    if (stats.has(name)) frozen.push({ name, reason: 'BatchNormalization running statistic' });
    else if ((t.dims ?? []).map(int).some((d) => d === 0)) frozen.push({ name, reason: 'empty tensor' });
    else if (only.length && !only.some((m) => m(name))) frozen.push({ name, reason: 'not matched by --train-only' });
    else if (freeze.some((m) => m(name))) frozen.push({ name, reason: 'matched by --freeze' });
    else trainable.push(name);
  }
  for (const [flag, patterns] of [
    ['trainOnly', opts.trainOnly ?? []],
    ['freeze', opts.freeze ?? []],
  ] as const) {
    for (const p of patterns) {
      const m = matcher(flag, p);
      if (!candidates.some((t) => m(t.name!))) {
        throw new UserError(flag, `'${p}' matches no parameter (parameters: ${describe(candidates.map((t) => t.name!))})`);
      }
    }
  }
  if (trainable.length === 0) {
    throw new UserError(
      candidates.length ? 'freeze' : 'model',
      candidates.length ? 'every parameter is frozen; nothing to train' : 'has no float initializers to train',
    );
  }
  return { trainable, frozen };
}

function describe(names: string[]): string {
  return names.length > 8 ? `${names.slice(0, 8).join(', ')}, ... (${names.length} in all)` : names.join(', ') || 'none';
}

function matcher(flag: string, pattern: string): (name: string) => boolean {
  return patternMatcher(pattern, flag);
}
