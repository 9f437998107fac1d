/**
 * Inference latency of each conversion form relative to the original model, on onnxruntime-node CPU
 * with full graph optimization (what users run; --threads intra-op threads, default 1): a ResNet-style network built in code and, when the
 * shared fixtures are present, ONNX's ResNet-50 (light_resnet50: real architecture, constant weights).
 * `fused` is one LeakyRelu, which ORT fuses into the preceding Conv just like Relu; `subgraph` adds
 * an Abs per activation; `function` is inlined by ORT into the subgraph.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convert } from '../src/convert/convert.js';
import { mulberry32 } from '../src/data/prng.js';
import type { Form } from '../src/convert/forms.js';
import { decodeModel, encodeModel } from '../src/onnx/schema.js';
import { int } from '../src/onnx/types.js';
import type { HostTensor } from '../src/runtime/types.js';
import { interleave, pairedRatio } from './interleave.js';
import { cpuSession } from './ort.js';
import { resnet } from './model.js';
import { fmt, median } from './stats.js';
import { ratioRow, type BenchOptions, type Goal, type Row, type Section, type SectionResult } from './types.js';
import { elementCount } from '../src/onnx/tensor.js';

export const FORM_GOALS: Record<Form, Goal | undefined> = { fused: { max: 1.03 }, subgraph: { max: 1.15 }, function: undefined };
const FORMS: Form[] = ['fused', 'subgraph', 'function'];

/** ONNX's light ResNet-50 (onnx/onnx backend test data), from the shared fixtures beside this checkout. */
export const LIGHT_RESNET50 = (() => {
  // bench/ under tsx, dist/bench/ when built: the package root is one or two levels up.
  for (const up of ['../..', '../../..']) {
    const p = resolve(fileURLToPath(new URL('.', import.meta.url)), up, 'shared/fixtures/models/onnx-onnx/light/light_resnet50.onnx');
    if (existsSync(p)) return p;
  }
  return resolve('../shared/fixtures/models/onnx-onnx/light/light_resnet50.onnx');
})();

/** Seeded uniform [-1, 1) input for the model's single float input (fixed dims; symbolic ones = 1). */
export function randomInput(bytes: Uint8Array, seed = 1): Record<string, HostTensor> {
  const m = decodeModel(bytes);
  const inits = new Set((m.graph?.initializer ?? []).map((t) => t.name));
  const inp = (m.graph?.input ?? []).find((i) => !inits.has(i.name))!;
  const dims = (inp.type?.tensorType?.shape?.dim ?? []).map((d) =>
    d.dimValue !== undefined && d.dimValue !== null && int(d.dimValue) > 0 ? int(d.dimValue) : 1,
  );
  const n = elementCount(dims);
  const data = new Float32Array(n);
  const rand = mulberry32(seed);
  for (let i = 0; i < n; i++) data[i] = rand() * 2 - 1;
  return { [inp.name!]: { type: 'float32', data, dims } };
}

/**
 * As deployed: initializers that old exporters also list as graph inputs are constants again, and
 * unused ones (and unused inputs) are dropped, so ORT folds and fuses as it would for a current export (and stays quiet).
 */
export function asDeployed(bytes: Uint8Array): Uint8Array {
  const m = decodeModel(bytes);
  const g = m.graph!;
  const used = new Set((g.node ?? []).flatMap((n) => n.input ?? []));
  g.initializer = (g.initializer ?? []).filter((t) => used.has(t.name!));
  const inits = new Set(g.initializer.map((t) => t.name));
  g.input = (g.input ?? []).filter((i) => !inits.has(i.name) && used.has(i.name!));
  return encodeModel(m);
}

async function formsOf(name: string, bytes: Uint8Array, opts: BenchOptions, rounds: number, perRound: number): Promise<{ rows: Row[]; details: unknown }> {
  const variants: Record<string, Uint8Array> = { original: bytes };
  for (const form of FORMS) {
    const m = decodeModel(bytes);
    convert(m, { form });
    variants[form] = encodeModel(m);
  }
  const feeds = randomInput(bytes);
  const sessions = await Promise.all(Object.entries(variants).map(async ([k, b]) => [k, await cpuSession(b, feeds, opts.threads)] as const));
  try {
    const res = await interleave(
      sessions.map(([k, s]) => ({ name: k, run: s.run })),
      {
        clock: opts.clock,
        warmup: 5,
        rounds,
        perRound,
        onRound: (r) => {
          if ((r + 1) % 5 === 0 || r + 1 === rounds) opts.log(`forms: ${name} round ${r + 1}/${rounds}`);
        },
      },
    );
    const base = median(res.blocks.original!);
    const rows = FORMS.map((form) => {
      const row = ratioRow(
        `${name}: ${form}, ms`,
        median(res.blocks[form]!),
        'ms',
        { name: 'original', value: base, unit: 'ms' },
        FORM_GOALS[form],
        `${opts.clock} time, best of ${perRound} per round, ${rounds} interleaved rounds, ratio paired per round; wall p50 of all runs: ${form} ${fmt(median(res.wall[form]!))}, original ${fmt(median(res.wall.original!))}`,
      );
      row.ratio = pairedRatio(res, form, 'original');
      return row;
    });
    opts.log(`forms: ${name}: original ${fmt(base)} ms; ${rows.map((r, i) => `${FORMS[i]} ${r.ratio!.toFixed(3)}x`).join(', ')}`);
    return { rows, details: { clock: opts.clock, wallMs: res.wall, cpuMs: res.cpu, blockMinMs: res.blocks } };
  } finally {
    for (const [, s] of sessions) await s.release();
  }
}

export const formsSection: Section = {
  name: 'forms',
  description: 'CPU latency of each conversion form / the original model (ResNet-style networks)',
  async run(opts: BenchOptions): Promise<SectionResult> {
    const rows: Row[] = [];
    const details: Record<string, unknown> = {};
    const skipped: string[] = [];
    const small = await resnet(opts.cacheDir);
    const a = await formsOf('resnet-small 1x3x64x64', readFileSync(small.path), opts, opts.quick ? 6 : 20, 5);
    rows.push(...a.rows);
    details.resnetSmall = a.details;
    if (existsSync(LIGHT_RESNET50)) {
      const b = await formsOf('resnet50 1x3x224x224', asDeployed(readFileSync(LIGHT_RESNET50)), opts, opts.quick ? 3 : 8, 3);
      rows.push(...b.rows);
      details.resnet50 = b.details;
    } else {
      skipped.push(`resnet50: ${LIGHT_RESNET50} not found (shared fixtures)`);
    }
    return { rows, details, skipped };
  },
};
