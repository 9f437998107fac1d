/** A model's summary: versions, inputs/outputs, op histogram, and every activation and look-alike with its place. */
import { dtypeName } from '../onnx/dtype.js';
import { valueTypeOf } from '../onnx/shapes.js';
import type { ModelFile } from '../onnx/read.js';
import { int, type ValueInfo } from '../onnx/types.js';
import { graphProblems } from '../onnx/validate.js';
import { scopeNodes, scopes } from '../onnx/walk.js';
import { isUserError } from '../errors.js';
import { convert, type ConvertReport } from './convert.js';
import { elementCount } from '../onnx/tensor.js';

export interface IoSummary {
  name: string;
  type: string;
  shape: (number | string | null)[] | null;
}

export interface Inspection {
  file: string;
  bytes: number;
  irVersion: number;
  opsets: Record<string, number>;
  producer: string;
  inputs: IoSummary[];
  outputs: IoSummary[];
  initializers: number;
  parameters: number;
  ops: Record<string, number>;
  scopes: string[];
  activations: ConvertReport['nodes'];
  alreadyAlrelu: ConvertReport['alreadyAlrelu'];
  skipped: ConvertReport['skipped'];
  lookalikes: ConvertReport['lookalikes'];
  /** structural problems of the graphs (see graphProblems); a model with any cannot be converted */
  problems: string[];
  /** why convert refuses the model (an invalid graph, an opset without LeakyRelu); null when it converts */
  notConvertible: string | null;
}

const io = (v: ValueInfo): IoSummary => {
  const t = valueTypeOf(v.type);
  return { name: v.name ?? '', type: t ? dtypeName(t.elemType) : 'non-tensor', shape: t?.shape ?? null };
};

/** Reads only; `mf.model` is edited by a dry conversion to list activations, so pass a model you will discard. */
export function inspect(mf: ModelFile): Inspection {
  const { model } = mf;
  const inits = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const ops: Record<string, number> = {};
  const all = scopes(model);
  for (const s of all) {
    for (const n of scopeNodes(s)) {
      const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}:${n.opType}` : (n.opType ?? '?');
      ops[key] = (ops[key] ?? 0) + 1;
    }
  }
  const parameters = (model.graph?.initializer ?? []).reduce((sum, t) => sum + elementCount((t.dims ?? []).map(int)), 0);
  const base = {
    file: mf.path,
    bytes: mf.size,
    irVersion: int(model.irVersion),
    opsets: Object.fromEntries((model.opsetImport ?? []).map((o) => [o.domain || 'ai.onnx', int(o.version)])),
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    inputs: (model.graph?.input ?? []).filter((v) => !inits.has(v.name)).map(io),
    outputs: (model.graph?.output ?? []).map(io),
    initializers: inits.size,
    parameters,
    ops: Object.fromEntries(Object.entries(ops).sort((a, b) => b[1] - a[1])),
    scopes: all.map((s) => s.path),
  };
  const problems = graphProblems(model);
  const none = { activations: [], alreadyAlrelu: [], skipped: [], lookalikes: [], problems };
  // convert refuses an invalid graph: there is nothing to list about its activations.
  if (problems.length) return { ...base, ...none, notConvertible: `the graph is invalid (${problems.length} problem${problems.length > 1 ? 's' : ''})` };
  let report: ConvertReport;
  try {
    report = convert(model, {});
  } catch (e) {
    // A report never fails on what it reports: the model's reason not to convert is part of it.
    if (isUserError(e)) return { ...base, ...none, notConvertible: e.cause_ };
    throw e;
  }
  return {
    ...base,
    activations: report.nodes,
    alreadyAlrelu: report.alreadyAlrelu,
    skipped: report.skipped,
    lookalikes: report.lookalikes,
    problems,
    notConvertible: null,
  };
}
