/** `alrelu-convert <model.onnx>`: the rewrite, with --dry-run, --verify and --json. */
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { convert, type ConvertReport } from '../convert/convert.js';
import { verify, type VerifyResult } from '../convert/verify.js';
import { UserError } from '../errors.js';
import { readModel } from '../onnx/read.js';
import { checkModelOutput, encodeInline, writeModel, type WriteOptions, type WriteResult } from '../onnx/write.js';
import { addConvertThenFinetuneOptions, convertThenFinetune, type ConvertThenFinetuneOptions } from './finetune.js';
import { checkSelection, defaultOutput, parseOps, type ConvertCliOptions } from './convertOptions.js';
import { collect, parseInteger, parseNumber, parseThreads, threadsOption } from './options.js';
import { action, printJson, say } from './run.js';
import { table } from '../eval/table.js';

function parseDims(specs: string[]): Record<string, number> {
  const dims: Record<string, number> = {};
  for (const s of specs) {
    const m = /^([^=]+)=(\d+)$/.exec(s);
    if (!m) throw new UserError('--dim', `expected name=value, got '${s}'`);
    dims[m[1]!] = Number(m[2]);
  }
  return dims;
}

function addConvertOptions(cmd: Command): Command {
  return cmd
    .option('-o, --output <file>', 'output model (default: <name>.alrelu.onnx beside the input)')
    .option('--alpha <a>', 'negative-side slope a for Relu nodes (LeakyRelu keeps its own alpha)', '0.01')
    .addOption(new Option('--form <form>', 'how each activation is written').choices(['subgraph', 'fused', 'function']).default('subgraph'))
    .option('--ops <list>', 'which ops to rewrite: relu,leakyrelu', 'relu,leakyrelu')
    .option('--include <pattern>', 'only nodes whose name matches (glob or /regex/; repeatable)', collect, [])
    .option('--exclude <pattern>', 'skip nodes whose name matches (glob or /regex/; repeatable)', collect, [])
    .option('--all-relus', 'also rewrite Relus that act on scalars or shape arithmetic')
    .option('--dry-run', 'report what would change; write nothing')
    .option('--force', 'overwrite an existing output file')
    .option('--verify', 'check the result on onnxruntime-node CPU with seeded random inputs')
    .option('--dim <name=value>', 'value of a symbolic input dimension for --verify (repeatable)', collect, [])
    .option('--seed <n>', 'seed for --verify inputs', '0')
    .addOption(threadsOption('with --verify or --finetune: '))
    .option('--external-data', 'store all weights in <output>.data beside the model')
    .option('--inline-data', 'store all weights inside the .onnx file')
    .option('--json', 'print a machine-readable report on stdout')
    .option('--quiet', 'print nothing but errors')
    .option('--verbose', 'print stack traces on errors');
}

export interface ConvertOutcome {
  input: string;
  output: string | null;
  dryRun: boolean;
  report: ConvertReport;
  verify?: VerifyResult;
  written?: WriteResult;
}

async function runConvert(input: string, o: ConvertCliOptions): Promise<ConvertOutcome> {
  const alpha = parseNumber('--alpha', o.alpha);
  if (o.externalData && o.inlineData) throw new UserError('--external-data', 'cannot be combined with --inline-data');
  const ops = parseOps(input, o.ops);
  const dims = parseDims(o.dim);
  const seed = parseInteger('--seed', o.seed, 0);
  checkSelection(o);
  const out = o.output ?? defaultOutput(input);
  const mf = await readModel(input);
  const writeOptions: WriteOptions = {
    sourceDir: mf.dir,
    force: o.force,
    externalData: o.externalData ? 'all' : o.inlineData ? 'inline' : 'keep',
    inputs: [{ path: input, what: 'the input model' }],
  };
  // Every file written is checked before converting and verifying.
  if (!o.dryRun) await checkModelOutput(mf.model, out, writeOptions);
  const options = { alpha, form: o.form, ops, include: o.include, exclude: o.exclude, allRelus: o.allRelus, file: input };

  let verified: VerifyResult | undefined;
  if (o.verify) {
    // Three independent copies: the original, alpha = 0 on Relu nodes only, and the real conversion.
    const original = encodeInline(mf.model, mf.dir);
    const zero = await readModel(input);
    const zeroReport = convert(zero.model, { ...options, alpha: 0, ops: ops.filter((x) => x === 'relu') });
    const zeroBytes = encodeInline(zero.model, mf.dir);
    const converted = await readModel(input);
    convert(converted.model, options);
    verified = await verify({
      original,
      zeroAlpha: zeroBytes,
      zeroAlphaRelus: zeroReport.replaced,
      converted: encodeInline(converted.model, mf.dir),
      model: mf.model,
      dims,
      seed,
      file: input,
      ...parseThreads(o.threads),
    });
  }
  const report = convert(mf.model, options);
  const outcome: ConvertOutcome = { input: mf.path, output: o.dryRun ? null : resolve(out), dryRun: !!o.dryRun, report, verify: verified };
  if (verified && !verified.ok) return outcome;
  if (!o.dryRun) {
    outcome.written = await writeModel(mf.model, out, writeOptions);
    report.warnings.push(...outcome.written.warnings);
  }
  return outcome;
}

function printConvert(o: ConvertCliOptions, r: ConvertOutcome): void {
  if (o.json) {
    printJson({
      input: r.input,
      output: r.output,
      dryRun: r.dryRun,
      form: r.report.form,
      alpha: r.report.alpha,
      replaced: { total: r.report.replaced, byOp: r.report.byOp, byGraph: r.report.byScope },
      nodes: r.report.nodes,
      alreadyAlrelu: r.report.alreadyAlrelu,
      skipped: r.report.skipped,
      lookalikes: r.report.lookalikes,
      warnings: r.report.warnings,
      irVersion: r.report.irVersion,
      opset: r.report.opset,
      verify: r.verify ?? null,
      dataFiles: r.written?.dataFiles ?? [],
    });
    return;
  }
  const rep = r.report;
  const rows: string[][] = [
    ['input', r.input],
    ['output', r.output ?? '(dry run: nothing written)'],
    ['form', `${rep.form}, alpha ${rep.alpha} for Relu`],
    [
      'replaced',
      `${rep.replaced}` +
        (rep.replaced
          ? ` (${Object.entries(rep.byOp)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')})`
          : ''),
    ],
  ];
  const graphs = Object.entries(rep.byScope);
  if (graphs.length > 1 || (graphs.length === 1 && graphs[0]![0] !== 'main')) rows.push(['graphs', graphs.map(([k, v]) => `${k}: ${v}`).join('; ')]);
  if (rep.alreadyAlrelu.length) rows.push(['already ALReLU', String(rep.alreadyAlrelu.length)]);
  for (const s of rep.skipped) rows.push(['skipped', `${s.scope} ${s.node} (${s.op}): ${s.reason}`]);
  for (const l of rep.lookalikes) rows.push(['look-alike', `${l.scope} ${l.node}: ${l.what}`]);
  for (const w of rep.warnings) rows.push(['warning', w]);
  if (r.verify) rows.push(['verify', verdict(r.verify)]);
  say(o, table(rows, ''));
}

export function verdict(v: VerifyResult): string {
  const eq =
    v.equivalence === 'identical'
      ? `alpha=0 identical to the original on ${v.checkedRelus} Relu`
      : v.equivalence === 'not-run'
        ? 'no Relu to check at alpha=0'
        : 'alpha=0 DIFFERS from the original';
  return `${v.ok ? 'ok' : 'FAILED'}: ${eq}; converted model ${v.runs ? 'runs' : 'does NOT run'} on onnxruntime-node CPU${v.detail ? ` (${v.detail})` : ''}`;
}

export function register(program: Command): void {
  addConvertThenFinetuneOptions(
    addConvertOptions(
      program.command('convert', { isDefault: true }).argument('<model>', 'ONNX model to convert').description('rewrite every Relu/LeakyRelu as ALReLU'),
    ),
  ).action(
    action(async (model: string, o: ConvertThenFinetuneOptions) => {
      if (o.finetune) return convertThenFinetune(model, o);
      const r = await runConvert(model, o);
      printConvert(o, r);
      if (r.verify && !r.verify.ok) throw new UserError(model, `verification failed: ${verdict(r.verify)}`);
    }),
  );
}
