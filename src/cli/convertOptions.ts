/**
 * The convert command's own options and their parsing, shared by `convert` and by `convert --finetune`
 * (which lives with the finetune command): here so neither command module imports the other.
 */
import type { TargetOp } from '../convert/convert.js';
import type { Form } from '../convert/forms.js';
import { patternMatcher } from '../convert/select.js';
import { UserError } from '../errors.js';
import { outputBeside } from './options.js';
import type { GlobalOptions } from './run.js';

export interface ConvertCliOptions extends GlobalOptions {
  output?: string;
  alpha: string;
  form: Form;
  ops: string;
  include: string[];
  exclude: string[];
  allRelus?: boolean;
  dryRun?: boolean;
  force?: boolean;
  verify?: boolean;
  dim: string[];
  seed: string;
  threads?: string;
  externalData?: boolean;
  inlineData?: boolean;
}

export const defaultOutput = (input: string): string => outputBeside(input, '.alrelu.onnx');

export function parseOps(file: string, s: string): TargetOp[] {
  const ops = s
    .split(',')
    .map((o) => o.trim().toLowerCase())
    .filter(Boolean);
  for (const o of ops) if (o !== 'relu' && o !== 'leakyrelu') throw new UserError(file, `--ops takes relu and/or leakyrelu, got '${o}'`);
  return ops as TargetOp[];
}

/** --include/--exclude patterns checked before the model is read, named by their flag. */
export function checkSelection(o: { include: string[]; exclude: string[] }): void {
  for (const p of o.include) patternMatcher(p, '--include');
  for (const p of o.exclude) patternMatcher(p, '--exclude');
}
