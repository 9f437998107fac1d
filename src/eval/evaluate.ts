/**
 * Evaluation driver: every model on every execution provider over the same data, with metrics,
 * latency and cross-provider agreement. One provider failing (not installed, an op it lacks) is
 * recorded and the rest still run. Data that does not fit a model (a DataMismatchError) would fail the
 * same way on every provider, so it is recorded once per provider and the model's runs stop there;
 * other models still run. Problems with the data itself or the options throw before anything runs.
 */
import { existsSync, statSync } from 'node:fs';
import { hasPreprocessing, isReference, loadData, parseSpec, preprocess } from '../data/index.js';
import { imageSizeChoice, modelImageSize, withSizeOrigin, type ImageSizeChoice, type ModelImageSize } from '../data/imageSize.js';
import { select } from '../data/split.js';
import type { Dataset, ReferenceCase, Split } from '../data/types.js';
import { messageOf, UserError } from '../errors.js';
import { openRuntime } from '../runtime/index.js';
import type { EpName, HostTensor, IoMeta, Runtime, Session } from '../runtime/types.js';
import { compareModels, epAgreement, type CollectedOutput, type CollectedOutputs, type Score } from './compare.js';
import { castSamples, checkOtherInputs, DataMismatchError, pickInput, planFeed, type FeedPlan } from '../runtime/feed.js';
import { LatencyRecorder, timed } from './latency.js';
import { classificationMetrics, errorStats, regressionMetrics } from './metrics.js';
import { shapeText, toFloat64 } from '../runtime/tensor.js';
import type { EvalReport, EvaluateOptions, FeedInfo, ReferenceMetrics, ReferenceOutputResult, RunMetrics, RunResult } from './types.js';
import { elementCount } from '../onnx/tensor.js';
import { readModel } from '../onnx/read.js';

const DEFAULT_BATCH_SIZE = 32;
const DEFAULT_WARMUP = 2;
const DEFAULT_TOLERANCE = 1e-4;

/** The data as evaluate() runs it: subset, preprocessed and checked (see prepareData). */
export type PreparedData = { kind: 'dataset'; ds: Dataset; imageSize?: ImageSizeChoice } | { kind: 'reference'; cases: ReferenceCase[] };

/** What the data is loaded from: the options, and the models (the first one's input sizes image folders). */
type LoadOptions = Omit<EvaluateOptions, 'models' | 'eps'> & { models?: string[] };

/**
 * An image folder's default size: the first (baseline) model's static input height and width. Read only
 * where the data is a folder and no size was asked for.
 */
async function sizeFromModel(opts: LoadOptions): Promise<ModelImageSize | undefined> {
  const model = opts.models?.[0];
  if (opts.dataOptions?.imageSize !== undefined || model === undefined) return undefined;
  if (!statSync(parseSpec(opts.data).name, { throwIfNoEntry: false })?.isDirectory()) return undefined;
  return modelImageSize((await readModel(model)).model, { input: opts.input, layout: opts.preprocess?.layout });
}

function checkPositiveInt(flag: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new UserError(flag, `expected a positive integer, found ${v}`);
}

/** `n` rows spread evenly over the set: the built-in sets are ordered by class, so "the first n" would be one class. */
function evenSubset(ds: Dataset, n: number): Dataset {
  if (n >= ds.count) return ds;
  return select(
    ds,
    Array.from({ length: n }, (_, i) => Math.floor((i * ds.count) / n)),
  );
}

async function load(opts: LoadOptions): Promise<PreparedData> {
  const fromModel = await sizeFromModel(opts);
  const loaded = await loadData(opts.data, {
    ...opts.dataOptions,
    ...(fromModel?.size ? { imageSize: fromModel.size } : {}),
    split: opts.split,
    seed: opts.seed,
  }).catch((e: unknown) => {
    throw withSizeOrigin(e, fromModel);
  });
  if (isReference(loaded)) {
    if (hasPreprocessing(opts.preprocess ?? {})) {
      throw new UserError('preprocess', 'do not apply to test_data_set reference data, which is fed to the model exactly as stored');
    }
    const cases = opts.maxSamples !== undefined ? loaded.slice(0, opts.maxSamples) : loaded;
    if (cases.length === 0) throw new DataMismatchError(opts.data, 'expected at least one test_data_set_N reference case, found none');
    return { kind: 'reference', cases };
  }
  // Subset first: preprocessing 10,000 digits to evaluate 100 of them is wasted work.
  let ds = opts.maxSamples !== undefined ? evenSubset(loaded, opts.maxSamples) : loaded;
  ds = preprocess(ds, opts.preprocess ?? {});
  if (ds.count === 0) throw new DataMismatchError(opts.data, `expected at least one sample, found 0 rows${opts.split ? ` in split '${opts.split}'` : ''}`);
  if (ds.task === 'classification') {
    for (let i = 0; i < ds.count; i++) {
      const v = ds.y[i]!;
      if (!Number.isInteger(v) || v < 0) throw new DataMismatchError(opts.data, `expected class indices >= 0, found label ${v} at row ${i}`);
    }
  }
  const asked = opts.dataOptions?.imageSize;
  const imageSize = ds.resizedTo ? imageSizeChoice(ds.resizedTo, typeof asked === 'number' ? [asked, asked] : asked, fromModel) : undefined;
  return { kind: 'dataset', ds, ...(imageSize ? { imageSize } : {}) };
}

/** A run's output tensors, split per sample and appended to the collected outputs. */
function collect(
  into: Map<string, { rowSize: number; parts: Float64Array[]; rows: number }>,
  outputs: Record<string, HostTensor>,
  samples: number,
  keep: number,
): void {
  for (const [name, t] of Object.entries(outputs)) {
    const values = toFloat64(t);
    if (values.length % samples !== 0) {
      throw new DataMismatchError(`output ${name}`, `expected a multiple of ${samples} values (one row per sample), found shape ${shapeText(t.dims)}`);
    }
    const rowSize = values.length / samples;
    let c = into.get(name);
    if (!c) into.set(name, (c = { rowSize, parts: [], rows: 0 }));
    if (c.rowSize !== rowSize) throw new DataMismatchError(`output ${name}`, `row size changed from ${c.rowSize} to ${rowSize} between runs`);
    c.parts.push(keep === samples ? values : values.subarray(0, keep * rowSize));
    c.rows += keep;
  }
}

function finish(into: Map<string, { rowSize: number; parts: Float64Array[]; rows: number }>): CollectedOutputs {
  const out: CollectedOutputs = {};
  for (const [name, c] of into) {
    const data = new Float64Array(c.rows * c.rowSize);
    let o = 0;
    for (const p of c.parts) {
      data.set(p, o);
      o += p.length;
    }
    out[name] = { rowSize: c.rowSize, data } satisfies CollectedOutput;
  }
  return out;
}

/** The output that is scored: the named one, or the first whose per-sample size fits the task. */
function pickOutput(outputs: CollectedOutputs, ds: Dataset, wanted: string | undefined, order: string[], model: string): string {
  const names = order.filter((n) => outputs[n]);
  const list = names.map((n) => `${n} (${outputs[n]!.rowSize} per sample)`).join(', ');
  if (wanted !== undefined) {
    if (!outputs[wanted]) throw new DataMismatchError(`output=${wanted}`, `no such output in ${model}; expected one of: ${list}`);
    return wanted;
  }
  if (ds.task === 'regression') {
    const size = ds.targetSize ?? ds.y.length / ds.count;
    const fit = names.find((n) => outputs[n]!.rowSize === size);
    if (!fit) throw new DataMismatchError(model, `expected an output with ${size} value(s) per sample for the regression targets, found ${list}`);
    return fit;
  }
  const classes = ds.classes?.length;
  const fit = names.find((n) => outputs[n]!.rowSize === classes) ?? names.find((n) => outputs[n]!.rowSize > 1) ?? names[0];
  if (!fit) throw new DataMismatchError(model, 'the model produced no outputs');
  return fit;
}

/** Classification scores as rows x classes; a single sigmoid/logit column becomes two classes. */
function classScores(out: CollectedOutput, ds: Dataset, outputName: string, labelMax: number): { scores: Float64Array; classes: number } {
  if (out.rowSize === 1) {
    if (labelMax > 1)
      throw new DataMismatchError(`output ${outputName}`, `expected one score per class (labels go up to ${labelMax}), found 1 value per sample`);
    const rows = out.data.length;
    const probs = out.data.every((v) => v >= 0 && v <= 1);
    const scores = new Float64Array(rows * 2);
    for (let r = 0; r < rows; r++) {
      const v = out.data[r]!;
      // Probability p -> [1-p, p]; logit z -> [0, z] (softmax of which is [1-sigmoid(z), sigmoid(z)]).
      scores[2 * r] = probs ? 1 - v : 0;
      scores[2 * r + 1] = v;
    }
    return { scores, classes: 2 };
  }
  if (labelMax >= out.rowSize) {
    throw new DataMismatchError(
      `output ${outputName}`,
      `expected at least ${labelMax + 1} classes (the data's labels go up to ${labelMax}${ds.classes ? `, ${ds.classes.length} classes` : ''}), found ${out.rowSize} values per sample`,
    );
  }
  return { scores: out.data, classes: out.rowSize };
}

interface ModelEpRun {
  feed: FeedInfo;
  metrics: RunMetrics;
  latency: ReturnType<LatencyRecorder['summary']>;
  outputs: CollectedOutputs;
  score: Score;
}

/** Labels' largest class index (classification only). */
function labelMax(ds: Dataset): number {
  let m = 0;
  for (let i = 0; i < ds.count; i++) m = Math.max(m, ds.y[i]!);
  return m;
}

async function runDataset(session: Session, ds: Dataset, opts: EvaluateOptions, model: string, ep: EpName, plan: FeedPlan): Promise<ModelEpRun> {
  const size = elementCount(ds.sampleShape);
  const B = plan.batchSize;
  const lat = new LatencyRecorder(B, opts.warmup ?? DEFAULT_WARMUP);
  const collected = new Map<string, { rowSize: number; parts: Float64Array[]; rows: number }>();
  const feedDims = (n: number) => (plan.hasBatchDim ? [n, ...plan.sampleDims] : [...plan.sampleDims]);
  const tensorFor = (start: number, n: number): HostTensor => {
    // Fixed batch > 1: the last run is zero-padded up to the model's batch, and the padding's outputs dropped.
    const rows = plan.batching === 'fixed' ? B : n;
    let x = ds.x.subarray(start * size, (start + n) * size);
    if (rows !== n) {
      const padded = new Float32Array(rows * size);
      padded.set(x);
      x = padded;
    }
    return { type: plan.type, data: castSamples(x, plan.type), dims: feedDims(rows) };
  };
  const runOnce = async (start: number, n: number) => {
    const t = tensorFor(start, n);
    return timed(() => session.run({ [plan.input]: t }));
  };
  // Warm-up on the first batch: untimed, outputs discarded.
  while (lat.warming) {
    await runOnce(0, Math.min(B, ds.count));
    lat.warm();
  }
  let done = 0;
  opts.onProgress?.({ model, ep, done, total: ds.count });
  for (let start = 0; start < ds.count; start += B) {
    const n = Math.min(B, ds.count - start);
    const { value, ms } = await runOnce(start, n);
    lat.record(ms, n);
    collect(collected, value, plan.batching === 'fixed' ? B : n, n);
    done += n;
    opts.onProgress?.({ model, ep, done, total: ds.count });
  }
  const outputs = finish(collected);
  const outputName = pickOutput(
    outputs,
    ds,
    opts.output,
    session.outputs.map((o) => o.name),
    model,
  );
  const out = outputs[outputName]!;
  const feed: FeedInfo = {
    input: plan.input,
    declaredShape: plan.declaredShape,
    feedShape: feedDims(B),
    output: outputName,
    batching: plan.batching,
    batchSize: B,
  };
  if (ds.task === 'regression') {
    const m = regressionMetrics(out.data, ds.y, ds.count);
    return { feed, metrics: { task: 'regression', ...m }, latency: lat.summary(), outputs, score: { metric: 'mse', value: m.mse, higherIsBetter: false } };
  }
  const { scores, classes } = classScores(out, ds, outputName, labelMax(ds));
  const m = classificationMetrics(scores, ds.y.subarray(0, ds.count), classes);
  return {
    feed,
    metrics: { task: 'classification', ...m },
    latency: lat.summary(),
    outputs,
    score: { metric: 'top1', value: m.top1, higherIsBetter: true, loss: m.loss },
  };
}

/** Case tensors matched to model inputs: by name when they carry the model's names, else by position. */
function matchByNameOrPosition(given: Record<string, HostTensor>, wanted: IoMeta[], what: string, caseName: string): Record<string, HostTensor> {
  const keys = Object.keys(given);
  if (wanted.every((w) => keys.includes(w.name))) return Object.fromEntries(wanted.map((w) => [w.name, given[w.name]!]));
  if (keys.length !== wanted.length) {
    throw new DataMismatchError(
      caseName,
      `expected ${wanted.length} ${what} (${wanted.map((w) => w.name).join(', ')}), found ${keys.length} (${keys.join(', ')})`,
    );
  }
  return Object.fromEntries(wanted.map((w, i) => [w.name, given[keys[i]!]!]));
}

async function runReference(session: Session, cases: ReferenceCase[], opts: EvaluateOptions, model: string, ep: EpName): Promise<ModelEpRun> {
  const tol = opts.tolerance ?? DEFAULT_TOLERANCE;
  const feeds = cases.map((c) => matchByNameOrPosition(c.inputs, session.inputs, 'inputs', c.name));
  const lat = new LatencyRecorder(1, Math.min(opts.warmup ?? DEFAULT_WARMUP, 1));
  while (lat.warming) {
    await session.run(feeds[0]!);
    lat.warm();
  }
  const results: ReferenceOutputResult[] = [];
  const collected = new Map<string, { rowSize: number; parts: Float64Array[]; rows: number }>();
  opts.onProgress?.({ model, ep, done: 0, total: cases.length });
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i]!;
    const { value, ms } = await timed(() => session.run(feeds[i]!));
    lat.record(ms, 1);
    const order = session.outputs.filter((o) => value[o.name]);
    const expected = matchByNameOrPosition(c.outputs, order.slice(0, Object.keys(c.outputs).length), 'outputs', c.name);
    for (const [name, exp] of Object.entries(expected)) {
      const got = value[name]!;
      // Same element count in another shape ([10] vs [1,10]) is compared; a different count cannot be.
      if (got.data.length !== exp.data.length) {
        throw new DataMismatchError(`${c.name} output ${name}`, `expected shape ${shapeText(exp.dims)}, found ${shapeText(got.dims)}`);
      }
      const e = errorStats(toFloat64(got), toFloat64(exp), tol, tol);
      results.push({ case: c.name, output: name, maxAbs: e.maxAbs, maxRel: e.maxRel, withinTolerance: e.withinTolerance, shape: got.dims });
    }
    // Outputs of every case, concatenated, so providers can be compared on reference data too.
    try {
      collect(collected, value, 1, 1);
    } catch {
      // Cases of different shapes cannot be concatenated; agreement is then simply not reported.
    }
    opts.onProgress?.({ model, ep, done: i + 1, total: cases.length });
  }
  const maxAbs = Math.max(0, ...results.map((r) => r.maxAbs));
  const metrics: ReferenceMetrics = {
    cases: cases.length,
    outputs: results,
    maxAbs,
    maxRel: Math.max(0, ...results.map((r) => r.maxRel)),
    tolerance: tol,
    pass: results.every((r) => r.withinTolerance),
  };
  const firstOut = results[0]?.output ?? '';
  const feed: FeedInfo = {
    input: session.inputs.map((i) => i.name).join(','),
    declaredShape: session.inputs[0]?.shape ?? [],
    feedShape: feeds[0]?.[session.inputs[0]?.name ?? '']?.dims ?? [],
    output: firstOut,
    batching: 'single',
    batchSize: 1,
  };
  return {
    feed,
    metrics: { task: 'reference', ...metrics },
    latency: lat.summary(),
    outputs: finish(collected),
    score: { metric: 'maxAbs', value: maxAbs, higherIsBetter: false },
  };
}

/** First line of an error, so one failure is one table row and one `error:` line. */
function oneLine(e: unknown): string {
  return (
    messageOf(e)
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean)[0] ?? 'unknown error'
  );
}

/** Every model path names a file; `command` (eval, serve) is the subject when there are none. */
export function checkModels(models: string[], command = 'eval'): void {
  if (models.length === 0) throw new UserError(command, 'expected at least one model file');
  for (const m of models) {
    if (!existsSync(m)) throw new UserError(m, 'model file not found');
    if (!statSync(m).isFile()) throw new UserError(m, 'expected an .onnx file, found a directory');
  }
}

/**
 * The option checks and the data loading that evaluate() does before running anything. A caller that
 * wants them done early (serve, before it hands out a URL) calls this and passes the result to
 * evaluate(), which then does not load the data a second time.
 */
export async function prepareData(opts: LoadOptions): Promise<PreparedData> {
  checkPositiveInt('batchSize', opts.batchSize);
  checkPositiveInt('maxSamples', opts.maxSamples);
  return load(opts);
}

/**
 * Runs every model on every provider and gathers metrics, latency and agreement into one report.
 * `prepared`: prepareData(opts) already done by the caller, with the same options.
 */
export async function evaluate(opts: EvaluateOptions, prepared?: PreparedData): Promise<EvalReport> {
  checkModels(opts.models);
  // Read as every command reads a model (tensor sizes, external data inside the model's folder), before a
  // runtime that opens the path itself sees it.
  for (const m of opts.models) await readModel(m);
  if (opts.eps.length === 0) throw new UserError('eps', 'expected at least one execution provider');
  const data = prepared ?? (await prepareData(opts));
  const requestedBatch = opts.batchSize ?? DEFAULT_BATCH_SIZE;

  const runtimes = new Runtimes(opts);
  const results: RunResult[] = [];
  const done: Done[] = [];
  try {
    for (const model of opts.models) {
      for (const ep of opts.eps) {
        const outcome = await runModelOn(runtimes, data, opts, model, ep, requestedBatch);
        if ('mismatch' in outcome) {
          // The data does not fit this model: every provider would say the same, so say it once per
          // provider and go on to the next model.
          for (const other of opts.eps.slice(opts.eps.indexOf(ep))) results.push({ model, ep: other, ok: false, stage: 'data', error: outcome.mismatch });
          break;
        }
        results.push(outcome.result);
        if (outcome.done) done.push(outcome.done);
      }
    }
  } finally {
    await runtimes.close();
  }
  return reportOf(opts, data, requestedBatch, results, done);
}

/** A run's outputs and score, kept for the agreement between providers and the comparison of models. */
type Done = { model: string; ep: EpName; outputs: CollectedOutputs; score: Score };

/**
 * The runtimes of one evaluation, each opened on first use; `close` closes those it opened (a runtime
 * the caller passed in `runtimes` is the caller's to close).
 */
class Runtimes {
  private readonly opened = new Map<EpName, Promise<Runtime>>();
  constructor(private readonly opts: EvaluateOptions) {}
  get(ep: EpName): Promise<Runtime> {
    let p = this.opened.get(ep);
    if (!p) {
      const { opts } = this;
      const given = opts.runtimes?.[ep];
      p = given
        ? Promise.resolve(given)
        : openRuntime(ep, {
            ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
            ...(opts.webgpuAdapter ? { webgpuAdapter: opts.webgpuAdapter } : {}),
          });
      p.catch(() => undefined); // awaited by the caller; keeps an early failure from being "unhandled"
      this.opened.set(ep, p);
    }
    return p;
  }
  async close(): Promise<void> {
    for (const [ep, p] of this.opened) {
      if (this.opts.runtimes?.[ep]) continue;
      const rt = await p.catch(() => undefined);
      await rt?.close().catch(() => undefined);
    }
  }
}

/**
 * One model on one provider: a result (a failure names its stage: open, load or run), or the data
 * not fitting the model, which holds for every provider.
 */
async function runModelOn(
  runtimes: Runtimes,
  data: PreparedData,
  opts: EvaluateOptions,
  model: string,
  ep: EpName,
  requestedBatch: number,
): Promise<{ result: RunResult; done?: Done } | { mismatch: string }> {
  let rt: Runtime;
  try {
    rt = await runtimes.get(ep);
  } catch (e) {
    return { result: { model, ep, ok: false, stage: 'open', error: oneLine(e) } };
  }
  let session: Session;
  try {
    session = await rt.load(model);
  } catch (e) {
    return { result: { model, ep, ok: false, stage: 'load', error: oneLine(e) } };
  }
  try {
    let run: ModelEpRun;
    if (data.kind === 'dataset') {
      const input = pickInput(session.inputs, data.ds.sampleShape, opts.input, model);
      checkOtherInputs(session.inputs, input.name, model);
      const plan = planFeed(input, data.ds.sampleShape, requestedBatch);
      run = await runDataset(session, data.ds, opts, model, ep, plan);
    } else {
      run = await runReference(session, data.cases, opts, model, ep);
    }
    return {
      result: {
        model,
        ep,
        ok: true,
        threads: rt.threads,
        ...(rt.adapter ? { adapter: rt.adapter } : {}),
        feed: run.feed,
        metrics: run.metrics,
        latency: run.latency,
      },
      done: { model, ep, outputs: run.outputs, score: run.score },
    };
  } catch (e) {
    if (e instanceof DataMismatchError) return { mismatch: oneLine(e) };
    return { result: { model, ep, ok: false, stage: 'run', error: oneLine(e) } };
  } finally {
    await session.release().catch(() => undefined);
  }
}

/** The report: what was evaluated on what, each run's result, and the agreements and comparisons between them. */
function reportOf(opts: EvaluateOptions, data: PreparedData, requestedBatch: number, results: RunResult[], done: Done[]): EvalReport {
  const agreement = opts.models.flatMap((m) =>
    epAgreement(
      m,
      done.filter((d) => d.model === m),
    ),
  );
  const comparison = compareModels(done, opts.models);
  const ds = data.kind === 'dataset' ? data.ds : undefined;
  const split: Split = ds?.split ?? opts.split ?? 'all';
  return {
    createdAt: new Date().toISOString(),
    data: {
      spec: opts.data,
      name: ds?.name ?? opts.data,
      task: ds ? ds.task : 'reference',
      split,
      count: ds ? ds.count : data.kind === 'reference' ? data.cases.length : 0,
      ...(ds?.classes ? { classes: ds.classes } : {}),
      ...(data.kind === 'dataset' && data.imageSize ? { imageSize: data.imageSize } : {}),
      preprocess: opts.preprocess ?? {},
    },
    requestedBatchSize: requestedBatch,
    models: opts.models,
    eps: opts.eps,
    results,
    agreement,
    comparison,
  };
}

/** Failed runs of a report, for the caller's exit status. */
export function failuresOf(report: EvalReport): Extract<RunResult, { ok: false }>[] {
  return report.results.filter((r): r is Extract<RunResult, { ok: false }> => !r.ok);
}
