/**
 * The ALReLU rewrite over a whole model: every default-domain Relu/LeakyRelu in the main graph, in
 * If/Loop/Scan bodies at any depth and in model-local functions becomes ALReLU in the chosen form.
 * Edits the model in place and returns a report of what it did and did not touch.
 */
import { attrFloat, isDefaultDomain } from '../onnx/attrs.js';
import { DataType, dtypeName, isFloatType } from '../onnx/dtype.js';
import { inferScope, type StaticInfo } from '../onnx/shapes.js';
import { opsetVersion } from '../onnx/read.js';
import { assertValidGraph } from '../onnx/validate.js';
import { Builder } from '../onnx/builder.js';
import { Graph } from '../onnx/graph.js';
import { int, type ModelProto, type NodeProto, type TensorProto, type ValueInfo } from '../onnx/types.js';
import { allNames, nameFactory, nodeLabel, scopeNodes, scopes, type Scope } from '../onnx/walk.js';
import { UserError } from '../errors.js';
import { VERSION } from '../version.js';
import { alreluFunction, FORMS, FUNCTION_DOMAIN, isAlrelu, isAlreluCall, isAlreluFunction, type EmittedForm, type Form } from './forms.js';
import { lookalike } from './lookalikes.js';
import { selection } from './select.js';

export const DEFAULT_ALPHA = 0.01;
export type TargetOp = 'relu' | 'leakyrelu';

export interface ConvertOptions {
  /** slope a for Relu nodes (LeakyRelu nodes keep their own alpha) */
  alpha?: number;
  form?: Form;
  ops?: TargetOp[];
  include?: string[];
  exclude?: string[];
  /** also rewrite Relus that look like shape arithmetic or act on scalars */
  allRelus?: boolean;
  /** names errors after this file */
  file?: string;
}

export interface NodeRecord {
  scope: string;
  node: string;
  op: string;
}

export interface ConvertReport {
  alpha: number;
  form: Form;
  replaced: number;
  byOp: Record<string, number>;
  byScope: Record<string, number>;
  nodes: (NodeRecord & { alpha: number; form: EmittedForm })[];
  alreadyAlrelu: (NodeRecord & { form: string })[];
  skipped: (NodeRecord & { reason: string })[];
  lookalikes: (NodeRecord & { domain: string; what: string })[];
  warnings: string[];
  opset: number;
  irVersion: { from: number; to: number };
}

const TARGETS: Record<string, TargetOp> = { Relu: 'relu', LeakyRelu: 'leakyrelu' };
const SHAPE_SOURCES = new Set(['Shape', 'Size']);

/** LeakyRelu takes bfloat16 only from opset 16; float16/float/double since opset 6. */
function leakyReluTakes(elemType: number | undefined, opset: number): boolean {
  return elemType !== DataType.BFLOAT16 || opset >= 16;
}

export function convert(model: ModelProto, opts: ConvertOptions = {}): ConvertReport {
  const file = opts.file ?? '';
  const alpha = opts.alpha ?? DEFAULT_ALPHA;
  const form = opts.form ?? 'subgraph';
  if (!Number.isFinite(alpha)) throw new UserError(file, `alpha must be a finite number, got ${alpha}`);
  const ops = new Set(opts.ops ?? ['relu', 'leakyrelu']);
  const selected = selection(opts.include, opts.exclude);
  const opset = opsetVersion(model);
  if (opset < 6) {
    throw new UserError(file, `opset ${opset} is older than LeakyRelu (opset 6): convert the model to opset 6 or newer first`);
  }
  // Rewriting an invalid graph would write it out as if it were fine.
  assertValidGraph(file, model);
  const irFrom = int(model.irVersion);
  const report: ConvertReport = {
    alpha,
    form,
    replaced: 0,
    byOp: {},
    byScope: {},
    nodes: [],
    alreadyAlrelu: [],
    skipped: [],
    lookalikes: [],
    warnings: [],
    opset,
    irVersion: { from: irFrom, to: irFrom },
  };
  const fresh = nameFactory(allNames(model));
  const infoOf = new Map<Scope, StaticInfo>();
  const functionScopesUsingForm: Scope[] = [];

  for (const scope of scopes(model)) {
    // The ALReLU function's own body is the definition, not a model activation.
    if (scope.kind === 'function' && isAlreluFunction(scope.fn)) continue;
    const parentInfo = scope.kind === 'graph' && scope.parent ? infoOf.get(scope.parent) : undefined;
    const scopeOpset = scope.kind === 'function' ? opsetOf(scope.fn.opsetImport, opset) : opset;
    const info = inferScope(scope, scopeOpset, parentInfo);
    infoOf.set(scope, info);
    const nodes = scopeNodes(scope);
    const g = new Graph(scope, fresh);
    const constant = constantLookup(g);
    const out: NodeProto[] = [];

    const ctx: NodeContext = { g, constant, info, opset: scopeOpset, opts, ops, selected, alpha, form };

    nodes.forEach((n, i) => {
      const label = nodeLabel(n, i);
      const record = { scope: scope.path, node: label, op: n.opType ?? '' };
      const d = decide(n, label, ctx);
      if (d.kind !== 'replace') {
        if (d.kind === 'keep' && d.lookalike) report.lookalikes.push({ ...record, domain: n.domain ?? '', what: d.lookalike });
        else if (d.kind === 'already') report.alreadyAlrelu.push({ ...record, form: d.form });
        else if (d.kind === 'skip') report.skipped.push({ ...record, reason: d.reason });
        out.push(n);
        return;
      }
      if (d.warning) warnOnce(report, d.warning);
      const b = new Builder(fresh, { opset: scopeOpset, info });
      const intermediates = FORMS[d.form]({ x: d.x, y: d.y, alpha: d.alpha, elemType: d.elemType, name: n.name || undefined }, b);
      if (n.docString) b.nodes[b.nodes.length - 1]!.docString = n.docString;
      out.push(...b.nodes);
      if (scope.kind === 'graph') addValueInfo((scope.graph.valueInfo ??= []), scope.graph, d.y, intermediates);
      if (d.form === 'function') functionScopesUsingForm.push(scope);
      report.replaced++;
      report.byOp[n.opType!] = (report.byOp[n.opType!] ?? 0) + 1;
      report.byScope[scope.path] = (report.byScope[scope.path] ?? 0) + 1;
      report.nodes.push({ ...record, alpha: d.alpha, form: d.form });
    });
    if (scope.kind === 'graph') scope.graph.node = out;
    else scope.fn.node = out;
  }

  if (functionScopesUsingForm.length) installFunction(model, opset, functionScopesUsingForm, report);
  if (report.replaced > 0) recordProvenance(model, report);
  report.irVersion.to = int(model.irVersion);
  return report;
}

function opsetOf(imports: { domain?: string; version?: number | { toNumber(): number } }[] | undefined, dflt: number): number {
  const o = (imports ?? []).find((i) => isDefaultDomain(i.domain));
  return o ? int(o.version as number) : dflt;
}

/** What one scope's nodes are decided against. */
interface NodeContext {
  g: Graph;
  constant: (name: string) => TensorProto | undefined;
  info: StaticInfo;
  opset: number;
  opts: ConvertOptions;
  ops: Set<string>;
  selected: (names: string[]) => boolean;
  alpha: number;
  form: Form;
}

/** What convert does with one node, and why. */
type Decision =
  /** not a Relu/LeakyRelu: kept as it is; a look-alike is reported */
  | { kind: 'keep'; lookalike?: string }
  | { kind: 'already'; form: string }
  | { kind: 'skip'; reason: string }
  | { kind: 'replace'; x: string; y: string; alpha: number; elemType: number | undefined; form: EmittedForm; warning?: string };

/** The one decision per node: keep, already ALReLU, skip (with the reason), or replace (with what). */
function decide(n: NodeProto, label: string, c: NodeContext): Decision {
  const target = isDefaultDomain(n.domain) ? TARGETS[n.opType ?? ''] : undefined;
  if (!target) return isAlreluCall(n) ? { kind: 'already', form: 'function' } : { kind: 'keep', lookalike: lookalike(n, c.constant) };
  const x = n.input?.[0] ?? '';
  const y = n.output?.[0] ?? '';
  const already = alreadyAlrelu(c.g, n);
  if (already) return { kind: 'already', form: already };
  const skip = (reason: string): Decision => ({ kind: 'skip', reason });
  if (!c.ops.has(target)) return skip(`${n.opType} not selected (--ops)`);
  if (!c.selected([n.name ?? '', y, label])) return skip('not selected (--include/--exclude)');
  if (!x || !y) return skip('node has no input or output');
  const elemType = c.info.types.get(x);
  if (elemType !== undefined && !isFloatType(elemType)) return skip(`input is ${dtypeName(elemType)}: integer arithmetic, not an activation`);
  if (!c.opts.allRelus) {
    if (c.info.shapes.get(x)?.length === 0) return skip('scalar (rank-0) input: not an activation (use --all-relus to rewrite)');
    if (computesOnShapes(x, c.g, c.constant))
      return skip('input is computed from a Shape/Size: shape arithmetic, not an activation (use --all-relus to rewrite)');
  }
  const alpha = target === 'relu' ? c.alpha : attrFloat(n, 'alpha', DEFAULT_ALPHA);
  if (leakyReluTakes(elemType, c.opset)) return { kind: 'replace', x, y, alpha, elemType, form: c.form };
  return {
    kind: 'replace',
    x,
    y,
    alpha,
    elemType,
    form: 'max',
    warning: `LeakyRelu takes bfloat16 only from opset 16 (model: ${c.opset}): bfloat16 activations written as Max(x, -a*x), the same function`,
  };
}

function warnOnce(report: ConvertReport, w: string): void {
  if (!report.warnings.includes(w)) report.warnings.push(w);
}

/** A Relu-family node that already computes ALReLU: the fused form, or the LeakyRelu of a subgraph form. */
function alreadyAlrelu(g: Graph, n: NodeProto): Form | undefined {
  const self = isAlrelu(g, n);
  if (self) return self.form;
  const [reader] = g.consumers(n.output?.[0] ?? '');
  return reader && isAlrelu(g, reader)?.leaky === n ? 'subgraph' : undefined;
}

/** Follows producers back from x: true when a Shape/Size feeds it and no graph input does (constants are neutral). */
function computesOnShapes(x: string, g: Graph, constant: (name: string) => TensorProto | undefined): boolean {
  let sawShape = false;
  const seen = new Set<string>();
  const stack = [x];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    const p = g.producer(v);
    if (!p) {
      if (constant(v)) continue;
      return false; // a graph input or an outer-scope value: real data
    }
    if (SHAPE_SOURCES.has(p.opType ?? '')) {
      sawShape = true;
      continue;
    }
    if (p.opType === 'Constant') continue;
    for (const i of p.input ?? []) if (i) stack.push(i);
    if (seen.size > 64) return false;
  }
  return sawShape;
}

function constantLookup(g: Graph): (name: string) => TensorProto | undefined {
  const inits = new Map<string, TensorProto>();
  for (let s: Scope | undefined = g.scope; s; s = s.parent) {
    if (s.kind === 'graph') for (const t of s.graph.initializer ?? []) if (t.name && !inits.has(t.name)) inits.set(t.name, t);
  }
  return (name) => {
    const c = g.producer(name);
    if (c?.opType === 'Constant') return c.attribute?.find((a) => a.name === 'value')?.t;
    return inits.get(name);
  };
}

/** Declares new intermediates with the type of the value they stand beside, when that type is known. */
function addValueInfo(valueInfo: ValueInfo[], graph: { input?: ValueInfo[]; output?: ValueInfo[] }, y: string, intermediates: string[]): void {
  const known = [...valueInfo, ...(graph.output ?? [])].find((v) => v.name === y);
  if (!known?.type) return;
  for (const t of intermediates) valueInfo.push({ name: t, type: known.type });
}

function installFunction(model: ModelProto, opset: number, users: Scope[], report: ConvertReport): void {
  const fns = (model.functions ??= []);
  if (!fns.some(isAlreluFunction)) fns.push(alreluFunction(opset));
  const importDomain = (imports: { domain?: string; version?: number | object }[]) => {
    if (!imports.some((o) => o.domain === FUNCTION_DOMAIN)) imports.push({ domain: FUNCTION_DOMAIN, version: 1 });
  };
  importDomain((model.opsetImport ??= []));
  for (const s of users) if (s.kind === 'function') importDomain((s.fn.opsetImport ??= []));
  // Model-local functions exist from IR version 8.
  if (int(model.irVersion) < 8) {
    report.warnings.push(`IR version raised from ${int(model.irVersion)} to 8: model-local functions need it`);
    model.irVersion = 8;
  }
}

function recordProvenance(model: ModelProto, report: ConvertReport): void {
  const props = (model.metadataProps ??= []);
  const set = (key: string, value: string) => {
    const e = props.find((p) => p.key === key);
    if (e) e.value = value;
    else props.push({ key, value });
  };
  const previous = Number(props.find((p) => p.key === 'alrelu.count')?.value ?? 0);
  set('alrelu.alpha', String(report.alpha));
  set('alrelu.form', report.form);
  set('alrelu.count', String(previous + report.replaced));
  set('alrelu.version', VERSION);
}
