/** `alrelu-convert experiment`: does ALReLU help? Trained across seeds, with paired tests, resumable. */
import { createRequire } from 'node:module';
import { cpus, totalmem, platform, arch } from 'node:os';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { checkOutputs, writeFileAtomic, type OutputPath } from '../atomic.js';
import { DEFAULT_ALPHA } from '../convert/convert.js';
import { UserError } from '../errors.js';
import { analyze } from '../experiment/analysis.js';
import { ACTIVATIONS, ARCHITECTURES, type Activation, type Architecture } from '../experiment/build.js';
import { formatMarkdown, formatText, renderExperimentHtml, type Provenance } from '../experiment/report.js';
import { loadSets, runScratch, runSwap, type ExperimentHooks, type ExperimentResult, type TrainingSettings } from '../experiment/run.js';
import { readModel } from '../onnx/read.js';
import { printable, printableLines } from '../printable.js';
import { isEpName, openRuntime } from '../runtime/index.js';
import { EP_NAMES, type EpName } from '../runtime/types.js';
import { TrainingStopped } from '../train/loop.js';
import {
  addPreprocessOptions,
  dataInputs,
  dataOptions,
  modelInputs,
  parseInteger,
  parseNumber,
  parseThreads,
  preprocessOptions,
  threadsOption,
  type PreprocessCliOptions,
} from './options.js';
import { action, printJson, progressBar, say, type GlobalOptions } from './run.js';

export interface ExperimentCliOptions extends GlobalOptions, PreprocessCliOptions {
  data?: string;
  model?: string;
  arch: string;
  hidden: string;
  convChannels: string;
  variants: string;
  seeds: string;
  epochs: string;
  batchSize: string;
  lr?: string;
  limit?: string;
  alpha: string;
  input?: string;
  output?: string;
  outDir: string;
  resume?: boolean;
  force?: boolean;
  markdown?: boolean;
  ep: string;
  threads?: string;
}

const DEFAULT_DATA = 'iris,penguins,spam,mnist';
/** Adam from scratch trains these small networks in a few epochs at 1e-2; a pretrained model is only nudged. */
const DEFAULT_SCRATCH_LR = 0.01;
const DEFAULT_SWAP_LR = 0.0001;
export const RESULTS_FILE = 'results.jsonl';

function sizes(flag: string, s: string, allowEmpty: boolean): number[] {
  if (allowEmpty && (s.trim() === '' || s.trim() === 'none')) return [];
  return s.split(',').map((x) => parseInteger(flag, x.trim(), 1));
}

function list<T extends string>(flag: string, s: string, known: readonly T[]): T[] {
  const out = s.split(',').map((x) => x.trim().toLowerCase());
  for (const x of out) if (!(known as readonly string[]).includes(x)) throw new UserError(flag, `unknown '${x}'; expected ${known.join(', ')}`);
  if (new Set(out).size !== out.length) throw new UserError(flag, `names a value twice: ${s}`);
  return out as T[];
}

/** The command line as typed (after the program name), quoted where a shell would need it. */
function commandLine(): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ['alrelu-convert', ...process.argv.slice(2).map(q)].join(' ');
}

function machine(o: { threads: number }): string {
  const c = cpus();
  let ort = '?';
  try {
    ort = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    // the version line is informative only
  }
  return `${c[0]?.model.trim() ?? 'unknown CPU'} (${c.length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB), ${platform()} ${arch()}, Node ${process.version}, onnxruntime-node ${ort}, ${o.threads} thread(s)`;
}

async function runExperiment(o: ExperimentCliOptions): Promise<void> {
  if (!isEpName(o.ep)) throw new UserError('--ep', `unknown execution provider '${o.ep}' (known: ${EP_NAMES.join(', ')})`);
  const swap = o.model !== undefined;
  const dataSpecs = (o.data ?? (swap ? '' : DEFAULT_DATA))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!dataSpecs.length) throw new UserError('--data', swap ? 'needs the labelled data the model was trained for (e.g. --data mnist)' : 'names no data set');
  if (swap && dataSpecs.length > 1) throw new UserError('--data', 'takes one data set with --model');
  if (new Set(dataSpecs).size !== dataSpecs.length) throw new UserError('--data', `names a data set twice: ${o.data}`);
  const nSeeds = parseInteger('--seeds', o.seeds, 1);
  if (nSeeds > 1000) throw new UserError('--seeds', `${nSeeds} is more than 1000`);
  const seeds = Array.from({ length: nSeeds }, (_, i) => i);
  const training: TrainingSettings = {
    epochs: parseInteger('--epochs', o.epochs, 1),
    batchSize: parseInteger('--batch-size', o.batchSize, 1),
    lr: o.lr === undefined ? (swap ? DEFAULT_SWAP_LR : DEFAULT_SCRATCH_LR) : parseNumber('--lr', o.lr),
    limit: o.limit === undefined || o.limit === 'all' ? null : parseInteger('--limit', o.limit, 10),
  };
  if (!(training.lr > 0)) throw new UserError('--lr', `must be above 0, found ${training.lr}`);
  const arch = list('--arch', o.arch, ARCHITECTURES)[0] as Architecture;
  const archSpec = {
    arch,
    hidden: sizes('--hidden', o.hidden, arch === 'cnn'),
    channels: arch === 'cnn' ? sizes('--conv-channels', o.convChannels, false) : [],
  };
  const variants = list('--variants', o.variants, ACTIVATIONS) as Activation[];
  const alpha = parseNumber('--alpha', o.alpha);

  // Every file is checked before any work: the results file may exist only when resumed.
  const dir = resolve(o.outDir);
  const files = { results: join(dir, RESULTS_FILE), html: join(dir, 'report.html'), json: join(dir, 'summary.json'), md: join(dir, 'results.md') };
  const outputs: OutputPath[] = [
    {
      path: files.results,
      mayExist: o.resume,
      createFolders: true,
      existsCause: 'an experiment was recorded here: --resume to continue it, or --force to start over',
    },
    ...[files.html, files.json, files.md].map((path) => ({ path, mayExist: o.resume, createFolders: true })),
  ];
  await checkOutputs(outputs, { force: o.force, inputs: [...(swap ? modelInputs([o.model!]) : []), ...dataSpecs.flatMap((s) => dataInputs(s, o.labels))] });

  const loadOpts = { limit: training.limit, preprocess: preprocessOptions(o), data: dataOptions(o), standardize: !swap };
  const sets = [];
  for (const spec of dataSpecs) sets.push(await loadSets(spec, loadOpts));

  const rt = await openRuntime(o.ep as EpName, { ...parseThreads(o.threads), spinning: false });
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    if (++interrupts > 1) process.exit(130);
    controller.abort();
    if (!o.quiet) process.stderr.write('\ninterrupt: stopping; finished runs are kept (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);
  const chatty = !o.quiet && !o.json && !o.markdown;
  const bar = process.stderr.isTTY && chatty ? progressBar() : undefined;
  let current = '';
  const hooks: ExperimentHooks = {
    runtime: rt,
    signal: controller.signal,
    onStart: (label, i, n) => {
      current = `run ${i}/${n} ${label}`;
    },
    onStep: bar ? (b, n) => bar.update(b, n, current) : undefined,
    onRun: (r, skipped, i, n) => {
      bar?.clear();
      if (!chatty) return;
      const what = `${r.data} ${r.variant}${r.seed === null ? '' : ` seed ${r.seed}`}`;
      say(
        o,
        skipped
          ? `run ${i}/${n} ${what}: recorded earlier, not run again`
          : `run ${i}/${n} ${what}: test accuracy ${(100 * r.test.accuracy).toFixed(2)}% (${r.seconds.toFixed(1)} s)`,
      );
    },
  };
  let result: ExperimentResult;
  try {
    if (swap) {
      const mf = await readModel(o.model!);
      result = await runSwap(
        {
          model: mf.model,
          sourceDir: mf.dir,
          file: o.model!,
          alpha,
          seeds,
          data: sets[0]!,
          training,
          results: files.results,
          resume: !!o.resume,
          force: !!o.force,
          ...(o.input ? { input: o.input } : {}),
          ...(o.output ? { output: o.output } : {}),
        },
        hooks,
      );
    } else {
      result = await runScratch({ arch: archSpec, variants, seeds, data: sets, training, results: files.results, resume: !!o.resume, force: !!o.force }, hooks);
    }
  } catch (e) {
    bar?.clear();
    if (e instanceof TrainingStopped && e.reason === 'interrupted') {
      throw new UserError('experiment', `interrupted; every finished run is in ${files.results}: continue with --resume`, 130);
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    await rt.close();
  }

  const analysis = analyze(result);
  const provenance: Provenance = { command: commandLine(), machine: machine({ threads: rt.threads }), date: new Date().toISOString().slice(0, 10) };
  const summary = { provenance, settings: result.settings, analysis, runs: result.runs, skipped: result.skipped };
  const md = formatMarkdown(result, analysis, provenance);
  // the results file is the record; these three are renderings of it, replaced on every completed run
  await writeFileAtomic(files.json, JSON.stringify(summary, null, 2) + '\n', { replace: true });
  await writeFileAtomic(files.md, md, { replace: true });
  await writeFileAtomic(files.html, renderExperimentHtml(result, analysis, provenance), { replace: true });
  if (o.json) printJson(summary);
  else if (o.markdown) process.stdout.write(printableLines(md));
  else {
    say(o, formatText(result, analysis));
    say(
      o,
      `wrote ${printable(files.html)}, ${printable(files.json)}, ${printable(files.md)}${result.skipped ? ` (${result.skipped} run(s) recorded earlier were not run again)` : ''}`,
    );
  }
}

export function register(program: Command): void {
  addPreprocessOptions(
    program
      .command('experiment')
      .description(
        'does ALReLU help? Train the same network with ReLU, LeakyReLU(0.01) and ALReLU(0.01) from the same seeded weights (or, with --model, swap a pretrained ReLU model and fine-tune it against a ReLU control) across seeds; report mean ± std of accuracy, macro-F1 and AUC with paired Wilcoxon and t tests',
      )
      .option(
        '--data <specs>',
        `comma-separated data sets: built-in mnist, iris, penguins, spam, or your own labelled files (.npz, .npy, .csv, image folder); split 80/10/10 with seed 0 (default ${DEFAULT_DATA}; with --model: one, required)`,
      )
      .option(
        '--model <file>',
        'swap and fine-tune: a pretrained ReLU model; compares it as is, converted, converted + --epochs of fine-tuning, and ReLU + the same fine-tuning (the control)',
      )
      .addOption(new Option('--arch <arch>', 'from scratch: network').choices([...ARCHITECTURES]).default('mlp'))
      .option('--hidden <sizes>', 'from scratch: hidden fully connected widths, comma-separated (cnn: after the convolutions; "none" for none)', '64')
      .option('--conv-channels <sizes>', 'from scratch, cnn: channels of each 3×3 convolution (each followed by the activation and 2×2 max pooling)', '8,16')
      .option('--variants <list>', 'from scratch: activations to compare', ACTIVATIONS.join(','))
      .option('--seeds <n>', 'seeds 0..n-1: each sets the initial weights and the batch order', '5')
      .option('--epochs <n>', 'epochs of training per run (the best validation epoch is kept)', '3')
      .option('--batch-size <n>', 'samples per step', '32')
      .option('--lr <x>', `Adam's learning rate (default ${DEFAULT_SCRATCH_LR} from scratch, ${DEFAULT_SWAP_LR} with --model)`)
      .option('--limit <n>', 'at most n samples of each data set, spread evenly, before the split ("all": no limit; default all)')
      .option('--alpha <a>', 'with --model: the ALReLU slope for Relu nodes', String(DEFAULT_ALPHA))
      .option('--input <name>', 'with --model: the input that receives the data')
      .option('--output <name>', 'with --model: the output that is trained and scored')
      .option('-o, --out-dir <folder>', 'where results.jsonl, summary.json, results.md and report.html go', 'experiment')
      .option('--resume', 'continue the experiment recorded in the folder: finished runs are not run again; other settings are refused')
      .option('--force', 'start over: replace an experiment recorded in the folder'),
  )
    .addOption(new Option('--ep <ep>', 'execution provider to train on').choices([...EP_NAMES]).default('cpu'))
    .addOption(threadsOption())
    .option('--json', 'print the summary (settings, per-seed runs, statistics) as JSON on stdout')
    .option('--markdown', "print the results as Markdown on stdout (the README's results section)")
    .option('--quiet', 'print nothing but errors')
    .option('--verbose', 'print stack traces on errors')
    .action(
      action(async (o: ExperimentCliOptions) => {
        await runExperiment(o);
      }),
    );
}
