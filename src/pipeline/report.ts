/**
 * The pipeline's record as one report document (src/eval/document.ts): the conversion, the providers
 * (usable or not, and why), accuracy before and after per provider, the learning curves, agreement
 * between providers, and latency. renderText prints its tables; renderHtml writes report.html.
 */
import { basename } from 'node:path';
import { cell, renderText, type Block, type Cell, type ReportDocument, type Section } from '../eval/document.js';
import { fmt, pct, sci } from '../eval/table.js';
import type { RunOk } from '../eval/types.js';
import type { PipelineReport, ProviderSummary } from './types.js';

const MODELS = ['original', 'converted', 'fine-tuned'] as const;

const scoreCell = (metric: 'top1' | 'mse', v: number | null): Cell => cell(fmtScore(metric, v), v);

/** Change in points (accuracy) or in value (mse), against the original. */
function changeCell(metric: 'top1' | 'mse', v: number | null, base: number | null): Cell {
  if (v === null || base === null) return cell('-', null);
  const d = v - base;
  return cell(metric === 'top1' ? `${d >= 0 ? '+' : ''}${(d * 100).toFixed(2)} pt` : `${d >= 0 ? '+' : ''}${d.toPrecision(3)}`, d);
}

function agreementText(s: ProviderSummary): Cell {
  if (!s.agreement) return cell(s.ep === 'cpu' || s.errors.length ? '-' : 'reference', null);
  const a = s.agreement.argmaxAgreementPct;
  return cell(a === null ? '-' : `${a.toFixed(2)}%`, a);
}

/** The summary table: one row per provider the models ran on. */
function summaryTable(r: PipelineReport): Block {
  const metric = r.summary[0]?.metric ?? 'top1';
  const name = metric === 'top1' ? 'top-1' : 'mse';
  return {
    kind: 'table',
    id: 'summary',
    headers: [
      'ep',
      'samples',
      `original ${name}`,
      `converted ${name}`,
      `fine-tuned ${name}`,
      'change',
      `agrees with ${r.summary.find((s) => s.agreement)?.agreement?.referenceEp ?? 'cpu'}`,
      'max abs diff',
      'p50 ms',
      'batch',
    ],
    align: ['left'],
    rows: r.summary.map((s) => [
      cell(s.ep + (s.software ? ' *' : '')),
      cell(String(s.samples), s.samples),
      scoreCell(s.metric, s.original),
      scoreCell(s.metric, s.converted),
      scoreCell(s.metric, s.finetuned),
      changeCell(s.metric, s.finetuned, s.original),
      agreementText(s),
      cell(s.agreement ? sci(s.agreement.maxAbsDiff) : '-', s.agreement?.maxAbsDiff ?? null),
      cell(fmt(s.p50Ms, 2), s.p50Ms),
      cell(s.batchSize === null ? '-' : String(s.batchSize), s.batchSize),
    ]),
  };
}

function providersTable(r: PipelineReport): Block {
  return {
    kind: 'table',
    id: 'providers',
    headers: ['ep', 'usable', 'details'],
    align: ['left', 'left', 'left'],
    rows: r.providers.checked.map((s) => [
      cell(s.ep),
      cell(s.usable ? (r.providers.used.includes(s.ep) ? 'yes' : 'yes (not asked for)') : 'NO'),
      cell(s.usable ? (s.detail ?? '') : `${s.reason ?? 'unknown reason'}${s.fix ? `; fix: ${s.fix}` : ''}`),
    ]),
  };
}

/** Every run the summary stands on, for the latency section. */
function runsOf(r: PipelineReport): { run: RunOk; label: string }[] {
  const names = new Map([
    [r.model, 'original'],
    [r.files.converted, 'converted'],
    [r.files.finetuned, 'fine-tuned'],
  ]);
  return r.summary.flatMap((s) => {
    const report = s.software && r.evaluations.software ? r.evaluations.software : r.evaluations.full;
    return (report?.results ?? []).filter((x): x is RunOk => x.ok && x.ep === s.ep).map((run) => ({ run, label: names.get(run.model) ?? basename(run.model) }));
  });
}

function accuracySection(r: PipelineReport): Section {
  const metric = r.summary[0]?.metric ?? 'top1';
  const values = r.summary.flatMap((s) => [s.original, s.converted, s.finetuned]).filter((v): v is number => v !== null);
  // accuracies sit close together: the axis starts a little below the lowest, and says so
  const lo = metric === 'top1' && values.length ? Math.max(0, Math.floor(Math.min(...values) * 100 - 2) / 100) : 0;
  const c = r.conversionCheck;
  const notes = [
    `Test split of ${r.data.spec} (${r.data.test} samples, which the fine-tuning never saw)${r.summary.some((s) => s.samples < r.data.test) ? `; the samples column says how many of them each provider ran, spread evenly over the split` : ''}.`,
    `Before fine-tuning, on ${c.ep}: original ${fmtScore(c.metric, c.original)}, converted ${fmtScore(c.metric, c.converted)} (${c.samples} samples).`,
  ];
  const unusable = r.providers.checked.filter((s) => !s.usable).map((s) => s.ep);
  if (unusable.length) notes.push(`Not usable here: ${unusable.join(', ')} (why, and the fix: Execution providers, below).`);
  if (r.providers.softwareSamples !== null)
    notes.push(
      `* software WebGPU adapter (SwiftShader, on the CPU): evaluated on ${r.providers.softwareSamples} samples spread over the test split, with cpu on the same samples as its reference; its latency is not a GPU's.`,
    );
  return {
    id: 'accuracy',
    title: metric === 'top1' ? 'Accuracy per provider' : 'Error per provider',
    notes,
    blocks: [
      summaryTable(r),
      {
        kind: 'bars',
        id: 'accuracy',
        title: metric === 'top1' ? 'top-1 accuracy: original, converted, fine-tuned' : 'mean squared error (lower is better)',
        series: [...MODELS],
        groups: r.summary.map((s) => ({
          label: s.ep + (s.software ? ' *' : ''),
          bars: MODELS.map((m, i) => {
            const v = [s.original, s.converted, s.finetuned][i]!;
            return { series: m, value: v ?? NaN, text: fmtScore(s.metric, v) };
          }),
        })),
        scale: metric === 'top1' ? { type: 'linear', min: lo, max: 1 } : { type: 'linear' },
        unit: metric === 'top1' ? 'fraction' : 'plain',
      },
    ],
  };
}

function curvesSection(r: PipelineReport): Section {
  const t = r.training;
  const steps = t.stepLosses.map((l, i): [number, number] => [i + 1, l]);
  // a trailing mean over 20 steps shows the trend through the per-batch noise
  const k = 20;
  const smooth = t.stepLosses.map((_, i): [number, number] => {
    const w = t.stepLosses.slice(Math.max(0, i - k + 1), i + 1);
    return [i + 1, w.reduce((a, b) => a + b, 0) / w.length];
  });
  const val = t.validation.filter((v) => v.value !== null).map((v): [number, number] => [v.epoch, v.value!]);
  const metric = t.validation[0]?.metric ?? 'accuracy';
  const best = !t.best
    ? 'no best epoch'
    : `best epoch ${t.best.epoch} (${t.best.metric} ${t.best.metric === 'accuracy' ? pct(t.best.value) : fmt(t.best.value)})${t.best.epoch === 0 ? ': no epoch beat the converted model on the validation split, so the fine-tuned model keeps its weights' : ', whose weights the fine-tuned model has'}`;
  return {
    id: 'curves',
    title: 'Fine-tuning',
    notes: [
      `${t.epochs} epoch(s) × ${t.stepsPerEpoch} steps of ${t.batchSize} samples on ${t.ep}, ${t.optimizer} lr ${t.lr}, ${t.seconds.toFixed(1)} s; ${r.data.train} training and ${r.data.val} validation samples; ${best}.`,
      ...(t.test
        ? [
            `Test split with the best epoch's weights: ${t.test.accuracy !== undefined && t.test.accuracy !== null ? `accuracy ${pct(t.test.accuracy)}` : `mse ${fmt(t.test.mse ?? null)}`}.`,
          ]
        : []),
    ],
    blocks: [
      {
        kind: 'lines',
        id: 'loss',
        title: 'training loss per step',
        xLabel: 'step',
        yLabel: 'loss',
        series: [
          { name: 'loss of each step', points: steps },
          { name: `mean of the last ${k} steps`, points: smooth },
        ],
      },
      {
        kind: 'lines',
        id: 'validation',
        title: `validation ${metric} after each epoch (epoch 0: the converted model before fine-tuning)`,
        xLabel: 'epoch',
        yLabel: metric,
        series: [{ name: `validation ${metric}`, points: val }],
        yUnit: metric === 'accuracy' ? 'fraction' : 'plain',
      },
      {
        kind: 'table',
        id: 'epochs',
        headers: ['epoch', 'train loss', `validation ${metric}`, 'validation loss'],
        rows: t.validation.map((v) => [
          cell(String(v.epoch), v.epoch),
          cell(fmt(v.trainLoss), v.trainLoss),
          cell(metric === 'accuracy' ? pct(v.value) : fmt(v.value, 6), v.value),
          cell(fmt(v.loss), v.loss),
        ]),
      },
    ],
  };
}

function agreementSection(r: PipelineReport): Section {
  const names = new Map([
    [r.model, 'original'],
    [r.files.converted, 'converted'],
    [r.files.finetuned, 'fine-tuned'],
  ]);
  const rows = [r.evaluations.full, r.evaluations.software]
    .flatMap((e) => e?.agreement ?? [])
    // cpu appears in both evaluations only as the reference; each provider once, from its own evaluation
    .filter((a) => r.summary.some((s) => s.ep === a.ep && (s.software ? r.evaluations.software : r.evaluations.full)?.agreement.includes(a)))
    .flatMap((a) =>
      a.outputs.map((d) => [
        cell(names.get(a.model) ?? basename(a.model)),
        cell(a.ep),
        cell(a.referenceEp),
        cell(d.output),
        cell(String(d.samples), d.samples),
        cell(sci(d.maxAbsDiff), d.maxAbsDiff),
        cell(sci(d.maxRelDiff), d.maxRelDiff),
        cell(d.argmaxAgreementPct === null ? '-' : `${d.argmaxAgreementPct.toFixed(2)}%`, d.argmaxAgreementPct),
      ]),
    );
  return {
    id: 'agreement',
    title: 'Agreement between providers',
    notes: [
      rows.length
        ? "Each provider's outputs against the reference provider's, on the same samples: the largest absolute and relative difference, and how often the predicted class is the same."
        : 'Only one provider ran: nothing to compare.',
    ],
    blocks: [
      {
        kind: 'table',
        id: 'agreement',
        headers: ['model', 'ep', 'reference', 'output', 'samples', 'max abs diff', 'max rel diff', 'argmax agreement'],
        align: ['left', 'left', 'left', 'left'],
        rows,
      },
    ],
  };
}

function latencySection(r: PipelineReport): Section {
  const runs = runsOf(r);
  const eps = [...new Set(runs.map((x) => x.run.ep))];
  const ms = runs.map((x) => x.run.latency.p50Ms).filter((v) => v > 0);
  const log = ms.length > 1 && Math.max(...ms) / Math.min(...ms) > 50;
  return {
    id: 'latency',
    title: 'Latency',
    notes: [
      'Median (p50) time per run of one batch, after warm-up runs. Timings on a shared CPU are noisy; a software WebGPU adapter (*) shows correctness, not GPU speed.',
    ],
    blocks: [
      {
        kind: 'bars',
        id: 'latency',
        title: 'p50 ms per batch',
        series: [...MODELS],
        groups: eps.map((ep) => ({
          label: ep + (r.summary.find((s) => s.ep === ep)?.software ? ' *' : ''),
          bars: runs.filter((x) => x.run.ep === ep).map((x) => ({ series: x.label, value: x.run.latency.p50Ms, text: `${fmt(x.run.latency.p50Ms, 2)} ms` })),
        })),
        scale: log ? { type: 'log' } : { type: 'linear' },
        unit: 'ms',
      },
      {
        kind: 'table',
        id: 'latency',
        headers: ['model', 'ep', 'threads', 'batch', 'timed runs', 'p50 ms', 'p95 ms', 'samples/s'],
        align: ['left', 'left'],
        rows: runs.map(({ run, label }) => [
          cell(label),
          cell(run.ep),
          cell(String(run.threads), run.threads),
          cell(String(run.latency.batchSize), run.latency.batchSize),
          cell(String(run.latency.runs), run.latency.runs),
          cell(fmt(run.latency.p50Ms, 3), run.latency.p50Ms),
          cell(fmt(run.latency.p95Ms, 3), run.latency.p95Ms),
          cell(fmt(run.latency.samplesPerSecond, 0), run.latency.samplesPerSecond),
        ]),
      },
    ],
  };
}

function conversionSection(r: PipelineReport): Section {
  const c = r.conversion;
  return {
    id: 'conversion',
    title: 'Conversion',
    notes: [
      `${c.replaced} activation(s) rewritten as ALReLU (${Object.entries(c.byOp)
        .map(([op, n]) => `${op} ${n}`)
        .join(', ')}), form ${c.form}, a = ${c.alpha} for Relu.`,
      ...(c.skipped ? [`${c.skipped} Relu(s) left as they are (shape arithmetic or scalars).`] : []),
      ...(c.lookalikes ? [`${c.lookalikes} look-alike activation(s) reported and not touched (see \`alrelu-convert inspect\`).`] : []),
      ...c.warnings,
    ],
    blocks: [],
  };
}

function failuresSection(r: PipelineReport): Section | undefined {
  const rows = r.summary.flatMap((s) => s.errors.map((e) => [cell(s.ep), cell(e)]));
  return rows.length
    ? { id: 'failures', title: 'Failed runs', warn: true, blocks: [{ kind: 'table', id: 'failures', headers: ['ep', 'error'], align: ['left', 'left'], rows }] }
    : undefined;
}

const stagesText = (r: PipelineReport) => r.stages.map((s) => `${s.stage} ${s.seconds.toFixed(s.seconds < 10 ? 1 : 0)} s`).join(', ');

export function pipelineDocument(r: PipelineReport): ReportDocument {
  const unusable = r.providers.checked.filter((s) => !s.usable);
  return {
    title: `alrelu pipeline: ${basename(r.model)}`,
    facts: [
      ['model', r.model],
      [
        'data',
        `${r.data.spec}: ${r.data.train} train / ${r.data.val} validation / ${r.data.test} test samples${r.data.classes ? `, ${r.data.classes} classes` : ''}`,
      ],
      ['outputs', r.files.outDir],
      ['created', `${r.createdAt}`],
      ['time', `${r.seconds.toFixed(0)} s: ${stagesText(r)}`],
    ],
    sections: [
      conversionSection(r),
      accuracySection(r),
      curvesSection(r),
      agreementSection(r),
      latencySection(r),
      ...[failuresSection(r)].filter((s): s is Section => !!s),
      {
        id: 'providers',
        title: 'Execution providers',
        warn: false,
        notes: [unusable.length ? `Not usable here: ${unusable.map((s) => s.ep).join(', ')} (reasons and fixes below).` : 'Every provider is usable here.'],
        blocks: [providersTable(r)],
      },
    ],
  };
}

/** What the terminal shows at the end: the summary table, the providers that could not run, where the files are. */
export function formatPipelineSummary(r: PipelineReport): string {
  const doc = pipelineDocument(r);
  const accuracy = doc.sections.find((s) => s.id === 'accuracy')!;
  const table = accuracy.blocks.find((b) => b.kind === 'table')!;
  // the providers that cannot run get their own lines below, with the fix
  const notes = (accuracy.notes ?? []).filter((n) => !n.startsWith('Not usable here'));
  const lines = [renderText({ ...doc, sections: [{ ...accuracy, notes, blocks: [table] }] })];
  const unusable = r.providers.checked.filter((s) => !s.usable);
  for (const s of unusable) lines.push(`not usable here: ${s.ep}: ${s.reason ?? 'unknown reason'}${s.fix ? `\n  fix: ${s.fix}` : ''}`);
  const t = r.training;
  lines.push(
    `fine-tuned ${t.epochs} epoch(s) × ${t.stepsPerEpoch} steps on ${t.ep} in ${t.seconds.toFixed(1)} s; whole run ${r.seconds.toFixed(0)} s (${stagesText(r)})`,
  );
  lines.push(`models: ${r.files.converted}\n        ${r.files.finetuned}`);
  lines.push(`report: ${r.files.report}`);
  return lines.join('\n');
}

export function fmtScore(metric: 'top1' | 'mse', v: number | null | undefined): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '-';
  return metric === 'top1' ? `${(v * 100).toFixed(2)}%` : v.toPrecision(4);
}
