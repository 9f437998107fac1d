/**
 * The whole job in one call: check which execution providers work, convert the model, evaluate the
 * original against the converted one, fine-tune the converted one, evaluate all three on every usable
 * provider, and write the models, the fine-tuning log, a JSON record and an HTML report into one folder.
 * Composed from the library's own steps (convert, evaluate, finetune, checkEps); it adds the order, the
 * file plan and the per-step training losses.
 *
 * Providers on a software WebGPU adapter (SwiftShader: seconds per batch) are evaluated on a few
 * samples, with the cpu beside them on the same samples for agreement; the report says how many.
 */
import { promises as fs } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { checkOutputs, writeFileAtomic, type InputSource } from '../atomic.js';
import { convert } from '../convert/convert.js';
import type { Form } from '../convert/forms.js';
import { isReference, loadData, parseSpec, type LoadDataOptions, type PreprocessOptions } from '../data/index.js';
import { modelImageSize } from '../data/imageSize.js';
import { loadTrainingSets } from '../data/ownSplits.js';
import { UserError } from '../errors.js';
import { evaluate } from '../eval/evaluate.js';
import { renderHtml } from '../eval/document.js';
import type { EvalProgress, EvalReport, RunOk } from '../eval/types.js';
import { readModel } from '../onnx/read.js';
import { writeModel } from '../onnx/write.js';
import { checkEps } from '../runtime/doctor.js';
import { openRuntime } from '../runtime/index.js';
import type { EpName, EpStatus, WebGpuAdapterChoice } from '../runtime/types.js';
import type { EpochRecord } from '../train/checkpoint.js';
import { finetune } from '../train/loop.js';
import type { OptimizerName } from '../train/optim.js';
import { printableJson } from '../printable.js';
import { fmtScore, pipelineDocument } from './report.js';
import type { PipelineFiles, PipelineProgress, PipelineReport, ProviderSummary } from './types.js';

export type * from './types.js';

/** Samples evaluated on a provider whose WebGPU adapter is software (SwiftShader takes seconds per batch of 32). */
export const SOFTWARE_SAMPLES = 64;
export const PIPELINE_DEFAULTS = { epochs: 2, batchSize: 32, optimizer: 'adam' as OptimizerName, lr: 1e-3, seed: 0, trainEp: 'cpu' as EpName };

export interface PipelineOptions {
  model: string;
  /** labelled data (built-in name or a path), split 80/10/10: train and validation for fine-tuning, test for evaluation */
  data: string;
  /** the folder every output goes to; created when missing, refused when it holds files unless `force` */
  outDir: string;
  /** providers to evaluate on (each must be usable); default every usable one */
  eps?: EpName[];
  /** provider to fine-tune on (default cpu) */
  trainEp?: EpName;
  epochs?: number;
  /** at most this many steps per epoch */
  maxSteps?: number;
  batchSize?: number;
  optimizer?: OptimizerName;
  lr?: number;
  seed?: number;
  alpha?: number;
  form?: Form;
  /** evaluate at most this many test samples (spread evenly) */
  limit?: number;
  /** samples on providers with a software WebGPU adapter (default SOFTWARE_SAMPLES; 0: as many as the others) */
  softwareLimit?: number;
  threads?: number;
  webgpuAdapter?: WebGpuAdapterChoice;
  chromium?: string;
  preprocess?: PreprocessOptions;
  dataOptions?: Omit<LoadDataOptions, 'split' | 'seed'>;
  /** replace files of an earlier run in outDir */
  force?: boolean;
  /** files the run reads besides the model (the user's data), which no output may replace */
  inputs?: InputSource[];
  say?: (line: string) => void;
  onProgress?: (p: PipelineProgress) => void;
  /** stops the run at the next step or batch; what it created is removed, and it throws (exit status 130) */
  signal?: AbortSignal;
}

/** Scores of a run: top-1 accuracy, or mse for regression. */
function scoreOf(r: RunOk | undefined): number | null {
  if (!r) return null;
  const m = r.metrics;
  return m.task === 'classification' ? m.top1 : m.task === 'regression' ? m.mse : null;
}

/** Samples a run scored (its metrics' count; the timing counts the same samples, warm-up runs aside). */
const samplesOf = (r: RunOk | undefined): number => (r && r.metrics.task !== 'reference' ? r.metrics.count : 0);

const okRun = (report: EvalReport | null, model: string, ep: string): RunOk | undefined =>
  report?.results.find((r): r is RunOk => r.ok && r.model === model && r.ep === ep);

/** Where each output goes: the model's name, converted and fine-tuned, beside the report and the record. */
export function pipelineFiles(model: string, outDir: string): PipelineFiles {
  const name = basename(model).replace(/\.onnx$/i, '') || 'model';
  const dir = resolve(outDir);
  return {
    outDir: dir,
    converted: join(dir, `${name}.alrelu.onnx`),
    finetuned: join(dir, `${name}.alrelu.finetuned.onnx`),
    log: join(dir, `${name}.alrelu.finetuned.log.json`),
    report: join(dir, 'report.html'),
    json: join(dir, 'pipeline.json'),
  };
}

/** The providers to run on: the ones asked for (each must work: one line naming it, why and the fix), or every usable one. */
async function chooseProviders(o: PipelineOptions): Promise<{ checked: EpStatus[]; used: EpStatus[] }> {
  const asked = o.eps ? [...new Set(o.eps)] : undefined;
  const trainEp = o.trainEp ?? PIPELINE_DEFAULTS.trainEp;
  const wanted = asked ? [...new Set([...asked, trainEp])] : undefined;
  const checked = await checkEps({
    ...(wanted ? { eps: wanted } : {}),
    ...(o.threads !== undefined ? { threads: o.threads } : {}),
    ...(o.webgpuAdapter ? { webgpuAdapter: o.webgpuAdapter } : {}),
    ...(o.chromium ? { chromium: o.chromium } : {}),
  });
  const bad = checked.find((s) => !s.usable && (asked?.includes(s.ep) || s.ep === trainEp));
  if (bad) throw new UserError(bad.ep, `is not usable here: ${bad.reason ?? 'unknown reason'}${bad.fix ? `; fix: ${bad.fix}` : ''}`);
  const used = checked.filter((s) => s.usable && (!asked || asked.includes(s.ep)));
  if (!used.length) throw new UserError('execution providers', 'none is usable here (see `alrelu-convert doctor`)');
  return { checked, used };
}

/**
 * The output folder's plan, checked before any work: one with files in it is another run's unless
 * forced. Returns whether it must be created, and the outputs that do not exist yet (what a failed run
 * removes again).
 */
async function checkOutDir(files: PipelineFiles, o: PipelineOptions): Promise<{ makeDir: boolean; fresh: Set<string> }> {
  const st = await fs.lstat(files.outDir).catch(() => undefined);
  if (st && !st.isDirectory()) throw new UserError(files.outDir, 'is not a folder');
  if (st && !o.force && (await fs.readdir(files.outDir)).length > 0) {
    throw new UserError(files.outDir, "already exists and holds files (use --force to replace the pipeline's files in it, or choose another folder)");
  }
  const outputs = [files.converted, files.finetuned, files.log, files.report, files.json].map((path) => ({ path, createFolders: true }));
  await checkOutputs(outputs, { force: o.force, inputs: [{ path: o.model, what: 'the input model' }, ...(o.inputs ?? [])] });
  const fresh = new Set<string>();
  for (const { path } of outputs) if (!(await fs.lstat(path).catch(() => undefined))) fresh.add(path);
  return { makeDir: !st, fresh };
}

function summarize(
  models: { original: string; converted: string; finetuned: string },
  used: EpStatus[],
  full: EvalReport | null,
  software: EvalReport | null,
): ProviderSummary[] {
  return used.map((s) => {
    const report = s.adapter?.software && software ? software : full;
    const run = (m: string) => okRun(report, m, s.ep);
    const ft = run(models.finetuned);
    const agree = report?.agreement.find((a) => a.model === models.finetuned && a.ep === s.ep);
    const diff = agree?.outputs.find((d) => d.argmaxAgreementPct !== null) ?? agree?.outputs[0];
    const any = ft ?? run(models.original) ?? run(models.converted);
    return {
      ep: s.ep,
      samples: samplesOf(any),
      metric: any?.metrics.task === 'regression' ? 'mse' : 'top1',
      original: scoreOf(run(models.original)),
      converted: scoreOf(run(models.converted)),
      finetuned: scoreOf(ft),
      agreement: agree && diff ? { referenceEp: agree.referenceEp, maxAbsDiff: diff.maxAbsDiff, argmaxAgreementPct: diff.argmaxAgreementPct } : null,
      p50Ms: ft?.latency.p50Ms ?? null,
      batchSize: ft?.latency.batchSize ?? null,
      software: !!s.adapter?.software,
      errors: (report?.results ?? []).filter((r) => !r.ok && r.ep === s.ep).map((r) => (r.ok ? '' : `${basename(r.model)}: ${r.error}`)),
    };
  });
}

/** Removes what a failed run created, so it leaves the folder as it found it. */
async function undo(created: string[], dirCreated: string | undefined): Promise<void> {
  for (const f of created) await fs.rm(f, { force: true }).catch(() => undefined);
  if (dirCreated) await fs.rmdir(dirCreated).catch(() => undefined);
}

/**
 * Runs the pipeline, writes every output into `outDir` (the record as pipeline.json, the report as
 * report.html) and returns the record. A run that fails removes the files it had created.
 */
export async function runPipeline(o: PipelineOptions): Promise<PipelineReport> {
  const started = Date.now();
  const say = o.say ?? (() => undefined);
  const stages: PipelineReport['stages'] = [];
  let mark = started;
  const lap = (stage: PipelineReport['stages'][number]['stage']) => {
    const now = Date.now();
    stages.push({ stage, seconds: (now - mark) / 1000 });
    mark = now;
  };
  if (parseSpec(o.data).split)
    throw new UserError(o.data, 'the pipeline splits the data itself (80% train, 10% validation, 10% test); give the set without :split');
  const mf = await readModel(o.model);
  const files = pipelineFiles(o.model, o.outDir);
  const probe = await loadData(o.data, {
    ...o.dataOptions,
    split: 'test',
    ...(o.dataOptions?.imageSize === undefined ? { imageSize: modelImageSize(mf.model, { layout: o.preprocess?.layout }).size } : {}),
  });
  if (isReference(probe)) throw new UserError(o.data, 'holds reference outputs, not labels: the pipeline fine-tunes, so it needs labelled data');

  // Convert in memory first: a model with nothing to convert stops before anything is written.
  const conv = convert(mf.model, { ...(o.alpha !== undefined ? { alpha: o.alpha } : {}), ...(o.form ? { form: o.form } : {}), file: o.model });
  if (conv.replaced === 0) {
    throw new UserError(
      o.model,
      conv.alreadyAlrelu.length
        ? `is already ALReLU (${conv.alreadyAlrelu.length} activation(s)); nothing to convert`
        : 'has no Relu or LeakyRelu to convert; nothing for the pipeline to do',
    );
  }
  const { makeDir, fresh } = await checkOutDir(files, o);
  lap('prepare');
  o.onProgress?.({ stage: 'providers', eps: o.eps ?? null });
  const { checked, used } = await chooseProviders(o);
  lap('providers');
  const unusable = checked.filter((s) => !s.usable);
  say(
    `providers: ${used.map((s) => s.ep + (s.adapter?.software ? ' (software adapter)' : '')).join(', ')}${unusable.length ? `; not usable here: ${unusable.map((s) => s.ep).join(', ')}` : ''}`,
  );

  if (makeDir) await fs.mkdir(files.outDir, { recursive: true });
  // everything this run may create; a failure removes those of them that were not there before
  const created = [...fresh];
  try {
    await writeModel(mf.model, files.converted, { sourceDir: mf.dir, force: o.force, inputs: [{ path: o.model, what: 'the input model' }] });
    lap('convert');
    say(`converted ${conv.replaced} activation(s) to ALReLU (${conv.form}, a = ${conv.alpha}): ${files.converted}`);

    const evalBase = {
      data: o.data,
      split: 'test' as const,
      seed: 0,
      ...(o.limit !== undefined ? { maxSamples: o.limit } : {}),
      ...(o.preprocess ? { preprocess: o.preprocess } : {}),
      ...(o.dataOptions ? { dataOptions: o.dataOptions } : {}),
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
      ...(o.webgpuAdapter ? { webgpuAdapter: o.webgpuAdapter } : {}),
      // an interrupted evaluation fails its remaining runs at their first batch; stopIfAborted() then ends the run
      onProgress: (p: EvalProgress) => {
        if (o.signal?.aborted) throw new Error('interrupted');
        o.onProgress?.({ stage: 'evaluate', eval: p });
      },
    };
    const stopIfAborted = () => {
      if (o.signal?.aborted) throw new UserError(o.model, 'interrupted; the files this run had written were removed', 130);
    };
    // step 3: what conversion alone costs, on the first provider (cpu unless asked otherwise)
    const checkEp = used[0]!.ep;
    const check = await evaluate({ ...evalBase, models: [o.model, files.converted], eps: [checkEp] });
    stopIfAborted();
    const [co, cc] = [okRun(check, o.model, checkEp), okRun(check, files.converted, checkEp)];
    const conversionCheck = {
      ep: checkEp,
      metric: co?.metrics.task === 'regression' ? ('mse' as const) : ('top1' as const),
      original: scoreOf(co),
      converted: scoreOf(cc),
      samples: samplesOf(co),
    };
    const failedCheck = check.results.find((r) => !r.ok);
    if (failedCheck && !failedCheck.ok) throw new UserError(basename(failedCheck.model), failedCheck.error);
    lap('check');
    say(
      `before fine-tuning, on ${checkEp}: original ${fmtScore(conversionCheck.metric, conversionCheck.original)}, converted ${fmtScore(conversionCheck.metric, conversionCheck.converted)}`,
    );

    // step 4: fine-tune the converted model (as written), on the train/validation split; test stays for evaluation
    const converted = await readModel(files.converted);
    const sets = await loadTrainingSets(
      { data: o.data },
      { ...o.dataOptions, ...(o.dataOptions?.imageSize === undefined && probe.resizedTo ? { imageSize: probe.resizedTo } : {}) },
      o.preprocess ?? {},
    );
    const trainEp = o.trainEp ?? PIPELINE_DEFAULTS.trainEp;
    const rt = await openRuntime(trainEp, {
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
      ...(o.webgpuAdapter ? { webgpuAdapter: o.webgpuAdapter } : {}),
      spinning: false,
    });
    const stepLosses: number[] = [];
    let sum = 0;
    let ft;
    const optimizer = o.optimizer ?? PIPELINE_DEFAULTS.optimizer;
    const lr = o.lr ?? PIPELINE_DEFAULTS.lr;
    try {
      ft = await finetune({
        model: converted.model,
        sourceDir: converted.dir,
        file: files.converted,
        train: sets.train,
        val: sets.val,
        ...(sets.test ? { test: sets.test } : {}),
        runtime: rt,
        epochs: o.epochs ?? PIPELINE_DEFAULTS.epochs,
        batchSize: o.batchSize ?? PIPELINE_DEFAULTS.batchSize,
        optimizer: { name: optimizer },
        schedule: { name: 'constant', lr },
        seed: o.seed ?? PIPELINE_DEFAULTS.seed,
        ...(o.maxSteps !== undefined ? { maxSteps: o.maxSteps } : {}),
        sources: sets.sources,
        out: files.finetuned,
        log: files.log,
        force: o.force,
        inputs: [{ path: o.model, what: 'the input model' }, ...(o.inputs ?? [])],
        say,
        ...(o.signal ? { signal: o.signal } : {}),
        // the running mean of the epoch's losses, taken apart again into each step's loss
        onProgress: (p) => {
          if (p.batch === 1) sum = 0;
          const total = p.runningLoss * p.batch;
          stepLosses.push(total - sum);
          sum = total;
          o.onProgress?.({ stage: 'finetune', step: p });
        },
        onEpoch: (e: EpochRecord) =>
          say(
            `epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}, validation ${fmtScore(sets.train.task === 'classification' ? 'top1' : 'mse', e.valMetric)} (${e.seconds.toFixed(1)} s)`,
          ),
      });
    } finally {
      await rt.close();
    }
    const log = ft.log;
    lap('finetune');

    // step 5: all three models on every usable provider; software adapters on a few samples, cpu beside them
    const models = { original: o.model, converted: files.converted, finetuned: files.finetuned };
    const list = [models.original, models.converted, models.finetuned];
    const softCap = o.softwareLimit ?? SOFTWARE_SAMPLES;
    const slow = softCap > 0 ? used.filter((s) => s.adapter?.software) : [];
    const fast = used.filter((s) => !slow.includes(s));
    const full = fast.length ? await evaluate({ ...evalBase, models: list, eps: fast.map((s) => s.ep) }) : null;
    const softSamples = Math.min(softCap, o.limit ?? Infinity);
    const software = slow.length
      ? await evaluate({
          ...evalBase,
          maxSamples: softSamples,
          models: list,
          eps: [...(used.some((s) => s.ep === 'cpu') ? ['cpu' as const] : []), ...slow.map((s) => s.ep)],
        })
      : null;
    stopIfAborted();
    lap('evaluate');

    const cls = sets.train.task === 'classification';
    const validation = [
      {
        epoch: 0,
        metric: cls ? 'accuracy' : 'mse',
        value: numOrNull(cls ? log.initial.accuracy : log.initial.mse),
        loss: numOrNull(log.initial.loss),
        trainLoss: null,
      },
      ...log.epochs.map((e) => ({
        epoch: e.epoch,
        metric: cls ? 'accuracy' : 'mse',
        value: Number.isFinite(e.valMetric) ? e.valMetric : null,
        loss: numOrNull(e.val.loss),
        trainLoss: e.trainLoss,
      })),
    ];
    const report: PipelineReport = {
      version: 1,
      createdAt: new Date(started).toISOString(),
      seconds: 0,
      stages,
      model: o.model,
      data: {
        spec: o.data,
        name: sets.train.name,
        task: sets.train.task,
        classes: log.data.classes,
        train: sets.train.count,
        val: sets.val.count,
        test: sets.test?.count ?? 0,
      },
      files,
      conversion: {
        alpha: conv.alpha,
        form: conv.form,
        replaced: conv.replaced,
        byOp: conv.byOp,
        warnings: conv.warnings,
        skipped: conv.skipped.length,
        alreadyAlrelu: conv.alreadyAlrelu.length,
        lookalikes: conv.lookalikes.length,
      },
      providers: { checked, used: used.map((s) => s.ep), softwareSamples: slow.length ? Math.min(softSamples, software?.data.count ?? softSamples) : null },
      conversionCheck,
      training: {
        ep: trainEp,
        epochs: log.epochs.length,
        stepsPerEpoch: log.batch.stepsPerEpoch,
        batchSize: log.batch.size,
        optimizer,
        lr,
        seconds: log.seconds,
        stepLosses,
        validation,
        best: log.best,
        test: log.test,
      },
      summary: summarize(models, used, full, software),
      evaluations: { full, software },
    };
    // the report's own rendering is too quick to matter; its stage is counted before it is written
    lap('report');
    report.seconds = (Date.now() - started) / 1000;
    await writeFileAtomic(files.json, printableJson(JSON.stringify(report, null, 2)) + '\n', { replace: o.force });
    await writeFileAtomic(files.report, renderHtml(pipelineDocument(report)), { replace: o.force });
    return report;
  } catch (e) {
    await undo(created, makeDir ? files.outDir : undefined);
    if (o.signal?.aborted) throw new UserError(o.model, 'interrupted; the files this run had written were removed', 130);
    throw e;
  }
}

const numOrNull = (v: number | null | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
