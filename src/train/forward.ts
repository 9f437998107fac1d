/**
 * The forward graph as the training models use it: a standalone copy of the model whose trainable
 * initializers have become graph inputs (so each step feeds the current values, from the host or from
 * device memory), at an opset the gradient rules can emit (13 or newer), optionally with a fixed batch
 * dimension made symbolic so training can use batches larger than the model was exported for.
 * The opset is raised to the gradient rules' (rules/opset.ts raiseOpset) where every forward op keeps its
 * meaning there or can be rewritten to; otherwise it stays and a rule that needs more says so.
 */
import { UserError } from '../errors.js';
import { isDefaultDomain } from '../onnx/attrs.js';
import { DataType, dtypeName } from '../onnx/dtype.js';
import { opsetVersion } from '../onnx/read.js';
import { decodeModel, encodeModel } from '../onnx/schema.js';
import { int, type GraphProto, type ModelProto, type TensorProto, type ValueInfo } from '../onnx/types.js';
import { assertValidGraph } from '../onnx/validate.js';
import { allNames, nameFactory } from '../onnx/walk.js';
import { encodeInline } from '../onnx/write.js';
import { raiseOpset } from './rules/opset.js';
import { fuseAlrelu } from './fuse.js';
import { makeTensor } from '../onnx/tensor.js';
import { constValues } from '../onnx/shapes.js';
import { isHalf, promoteGraph } from './precision.js';

export interface ForwardOptions {
  /** folder of the model file, to read external data */
  sourceDir: string;
  /** names errors after this file */
  file: string;
  /** trainable parameters (become graph inputs) */
  params: string[];
  /** model input that receives the data; default: the only non-initializer input */
  input?: string;
  /** model output to train; default: the first */
  output?: string;
  /** make a fixed batch dimension symbolic (and Reshape targets that hard-code it) */
  dynamicBatch?: boolean;
  /**
   * the data's per-sample dims: symbolic dims of the data input after the batch take these values, so
   * shape-dependent gradients (Conv, pooling) work on models exported with dynamic image sizes
   */
  sampleDims?: number[];
  /**
   * the data input's batch dim fixed at this size (after any relaxing): the fine-tune steps on whole
   * batches only, and static shapes let the cpu step take forms that need them (depthwise weight gradients)
   */
  batch?: number;
  /**
   * buildEvalModel: ALReLU as one LeakyRelu (fuse.ts), for validation; off, the forward keeps the
   * user's activation forms (an inference baseline). Training models always fuse.
   */
  fuseActivations?: boolean;
}

export interface ForwardGraph {
  model: ModelProto;
  graph: GraphProto;
  /** the default-domain opset of the graph as built, and of the model it came from */
  opset: number;
  sourceOpset: number;
  /** forward nodes rewritten into the newer opset's form (same outputs) */
  rewritten: number;
  /** float16/bfloat16 parameters: the forward was promoted to float32 for training */
  promoted: boolean;
  input: string;
  output: string;
  /** the data input's batch dimension in the original model (a number when fixed) */
  originalBatch: number | string | null;
  /** whether a fixed batch dimension was made symbolic */
  relaxedBatch: boolean;
  /** parameter name -> its initial value, as in the model */
  initial: Map<string, TensorProto>;
  fresh: (base: string) => string;
}

export function valueInfoOf(t: TensorProto): ValueInfo {
  return {
    name: t.name,
    type: { tensorType: { elemType: t.dataType, shape: { dim: (t.dims ?? []).map((d) => ({ dimValue: int(d) })) } } },
  };
}

export function prepareForward(source: ModelProto, opts: ForwardOptions): ForwardGraph {
  // Differentiating an invalid graph fails somewhere deep inside with a message about no file.
  assertValidGraph(opts.file, source);
  // A private copy with external data read in: the caller's model is never touched.
  const model = decodeModel(encodeInline(source, opts.sourceDir));
  const graph = model.graph!;
  const fresh = nameFactory(allNames(model));
  const opset = opsetVersion(model);
  // The gradient rules' opset, when every forward node keeps its meaning there or has an upgrade.
  const { opset: trainOpset, rewritten } = raiseOpset(graph, opset, fresh);
  if (trainOpset !== opset) {
    model.opsetImport = (model.opsetImport ?? []).filter((o) => !isDefaultDomain(o.domain));
    model.opsetImport.push({ domain: '', version: trainOpset });
  }
  // Opset 17 needs IR 8; IR 4+ also lets initializers stay out of the input list.
  if (int(model.irVersion) < 8) model.irVersion = 8;

  let inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const params = new Set(opts.params);
  for (const p of params) {
    const t = inits.get(p);
    if (!t) throw new Error(`parameter '${p}' is not an initializer`);
    if (t.dataType !== DataType.FLOAT && t.dataType !== DataType.DOUBLE && !isHalf(t.dataType)) {
      throw new UserError(
        opts.file,
        `parameter '${p}' is ${dtypeName(t.dataType)}; fine-tuning supports float, double, float16 and bfloat16 parameters (freeze it with --freeze '${p}')`,
      );
    }
  }
  // half-precision parameters train in float32: the whole forward is promoted (see precision.ts)
  const promoted = opts.params.some((p) => isHalf(inits.get(p)!.dataType));
  if (promoted) {
    promoteGraph(graph);
    inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  }
  const data = (graph.input ?? []).filter((i) => !inits.has(i.name ?? ''));
  let input: ValueInfo | undefined;
  if (opts.input !== undefined) {
    input = data.find((i) => i.name === opts.input);
    if (!input) throw new UserError(`input=${opts.input}`, `no such data input in ${opts.file} (inputs: ${data.map((i) => i.name).join(', ') || 'none'})`);
  } else if (data.length === 1) {
    input = data[0];
  } else {
    throw new UserError(
      opts.file,
      data.length === 0
        ? 'has no data input to train on'
        : `has ${data.length} data inputs (${data.map((i) => i.name).join(', ')}); choose one with --input NAME`,
    );
  }
  const others = data.filter((i) => i !== input);
  if (others.length) throw new UserError(opts.file, `also requires input(s) ${others.map((i) => i.name).join(', ')}, which the data does not provide`);
  const outputs = graph.output ?? [];
  const output = opts.output ?? outputs[0]?.name;
  if (!output || !outputs.some((o) => o.name === output)) {
    throw new UserError(`output=${opts.output ?? ''}`, `no such output in ${opts.file} (outputs: ${outputs.map((o) => o.name).join(', ')})`);
  }

  const initial = new Map<string, TensorProto>();
  for (const p of params) initial.set(p, inits.get(p)!);
  graph.initializer = (graph.initializer ?? []).filter((t) => !params.has(t.name!));
  graph.input = [input!, ...opts.params.map((p) => valueInfoOf(inits.get(p)!))];
  graph.output = outputs.filter((o) => o.name === output);

  const dim0 = input!.type?.tensorType?.shape?.dim?.[0];
  const originalBatch = dim0 ? (dim0.dimParam ? dim0.dimParam : dim0.dimValue !== undefined && dim0.dimValue !== null ? int(dim0.dimValue) : null) : null;
  if (opts.sampleDims) pinSampleDims(input!, opts.sampleDims);
  let relaxedBatch = false;
  if (opts.dynamicBatch && typeof originalBatch === 'number') {
    relaxBatch(graph, input!, originalBatch, fresh);
    relaxedBatch = true;
  }
  const dim = input!.type?.tensorType?.shape?.dim;
  if (opts.batch && dim?.length) dim[0] = { dimValue: opts.batch };
  return { model, graph, opset: trainOpset, sourceOpset: opset, rewritten, promoted, input: input!.name!, output, originalBatch, relaxedBatch, initial, fresh };
}

/** Symbolic dims of the data input after the batch set to the data's sample dims (the rank must match). */
function pinSampleDims(input: ValueInfo, sampleDims: number[]): void {
  const dims = input.type?.tensorType?.shape?.dim;
  if (!dims || dims.length !== sampleDims.length + 1) return;
  for (let i = 1; i < dims.length; i++)
    if (dims[i]!.dimValue === undefined || dims[i]!.dimValue === null || dims[i]!.dimParam) dims[i] = { dimValue: sampleDims[i - 1]! };
}

/**
 * Makes a fixed batch dimension N symbolic: the data input's first dim, the outputs' first dims, and
 * every Reshape whose constant target starts with N (exporters bake the batch into Flatten-like
 * Reshapes: [1, 256] becomes [-1, 256]). Declared intermediate shapes are dropped, as they may say N.
 * The loop checks the result against the original model before training on it.
 */
function relaxBatch(graph: GraphProto, input: ValueInfo, n: number, fresh: (b: string) => string): void {
  const setBatch = (v: ValueInfo) => {
    const d = v.type?.tensorType?.shape?.dim?.[0];
    if (d && !d.dimParam && int(d.dimValue) === n) v.type!.tensorType!.shape!.dim![0] = { dimParam: 'batch' };
  };
  setBatch(input);
  for (const o of graph.output ?? []) setBatch(o);
  graph.valueInfo = [];
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  for (const node of graph.node ?? []) {
    if (node.opType !== 'Reshape' || !node.input?.[1]) continue;
    const t = inits.get(node.input[1]);
    const v = t && t.dataType === DataType.INT64 ? constValues(t) : undefined;
    if (!v || v.length < 2 || v[0] !== n) continue;
    const target = [v.includes(-1) ? 0 : -1, ...v.slice(1)];
    const name = fresh(`${node.input[1]}/batch`);
    graph.initializer!.push(makeTensor(name, DataType.INT64, [v.length], target));
    node.input[1] = name;
  }
}

/** The forward graph alone with parameters as inputs: validation runs on the current values. */
export function buildEvalModel(source: ModelProto, opts: ForwardOptions): { model: ModelProto; input: string; output: string; bytes: Uint8Array } {
  const fwd = prepareForward(source, opts);
  if (opts.fuseActivations) fuseAlrelu(fwd.graph);
  return { model: fwd.model, input: fwd.input, output: fwd.output, bytes: encodeModel(fwd.model) };
}
