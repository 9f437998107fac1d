/** `alrelu-convert inspect <model.onnx>`: what a model holds and where its activations live. */
import type { Command } from 'commander';
import { inspect } from '../convert/inspect.js';
import { readModel } from '../onnx/read.js';
import { action, printJson, say, type GlobalOptions } from './run.js';
import { table } from './table.js';

const shape = (s: (number | string | null)[] | null) => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '?');

export function register(program: Command): void {
  program
    .command('inspect')
    .argument('<model>', 'ONNX model')
    .description('show IR/opsets, inputs and outputs, op histogram, activations and look-alikes')
    .option('--json', 'machine-readable output on stdout')
    .option('--verbose', 'print stack traces on errors')
    .action(action(async (model: string, o: GlobalOptions) => {
      const r = inspect(await readModel(model));
      if (o.json) return printJson(r);
      const rows = [
        ['file', `${r.file} (${r.bytes} bytes)`],
        ['ir / opsets', `IR ${r.irVersion}; ${Object.entries(r.opsets).map(([d, v]) => `${d} ${v}`).join(', ')}`],
        ['producer', r.producer || '-'],
        ...r.inputs.map((i) => ['input', `${i.name}: ${i.type} ${shape(i.shape)}`]),
        ...r.outputs.map((i) => ['output', `${i.name}: ${i.type} ${shape(i.shape)}`]),
        ['weights', `${r.initializers} initializers, ${r.parameters} values`],
        ['ops', Object.entries(r.ops).map(([k, v]) => `${k} ${v}`).join(', ')],
        ...r.activations.map((a) => ['activation', `${a.scope} ${a.node} (${a.op}, alpha after conversion ${a.alpha})`]),
        ...r.alreadyAlrelu.map((a) => ['ALReLU', `${a.scope} ${a.node} (${a.form} form)`]),
        ...r.skipped.map((s) => ['not converted', `${s.scope} ${s.node} (${s.op}): ${s.reason}`]),
        ...r.lookalikes.map((l) => ['look-alike', `${l.scope} ${l.node}: ${l.what}`]),
      ];
      say(o, table(rows, ''));
    }));
}
