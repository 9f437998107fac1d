/** `alrelu-convert inspect <model.onnx>`: what a model holds and where its activations live. */
import type { Command } from 'commander';
import { inspect } from '../convert/inspect.js';
import { readModel } from '../onnx/read.js';
import { trainability, type Trainability } from '../train/trainability.js';
import { action, printJson, say, type GlobalOptions } from './run.js';
import { table } from '../eval/table.js';

const shape = (s: (number | string | null)[] | null) => (s ? `[${s.map((d) => d ?? '?').join(', ')}]` : '?');

export function register(program: Command): void {
  program
    .command('inspect')
    .argument('<model>', 'ONNX model')
    .description('show IR/opsets, inputs and outputs, op histogram, activations, look-alikes, and whether finetune can train it')
    .option('--no-training', 'skip the fine-tuning check (it builds the training graph: about one more copy of the weights in memory)')
    .option('--json', 'machine-readable output on stdout')
    .option('--verbose', 'print stack traces on errors')
    .action(
      action(async (model: string, o: GlobalOptions & { training: boolean }) => {
        const mf = await readModel(model);
        const r = inspect(mf);
        const valid = r.problems.length === 0;
        // finetune refuses an invalid graph too; the problems say why.
        const training = o.training && valid ? trainability(mf) : null;
        if (o.json) return printJson({ ...r, training });
        const rows = [
          ['file', `${r.file} (${r.bytes} bytes)`],
          [
            'ir / opsets',
            `IR ${r.irVersion}; ${Object.entries(r.opsets)
              .map(([d, v]) => `${d} ${v}`)
              .join(', ')}`,
          ],
          ['producer', r.producer || '-'],
          ...r.inputs.map((i) => ['input', `${i.name}: ${i.type} ${shape(i.shape)}`]),
          ...r.outputs.map((i) => ['output', `${i.name}: ${i.type} ${shape(i.shape)}`]),
          ['weights', `${r.initializers} initializers, ${r.parameters} values`],
          [
            'ops',
            Object.entries(r.ops)
              .map(([k, v]) => `${k} ${v}`)
              .join(', '),
          ],
          ...r.activations.map((a) => ['activation', `${a.scope} ${a.node} (${a.op}, alpha after conversion ${a.alpha})`]),
          ...r.alreadyAlrelu.map((a) => ['ALReLU', `${a.scope} ${a.node} (${a.form} form)`]),
          ...r.skipped.map((s) => ['not converted', `${s.scope} ${s.node} (${s.op}): ${s.reason}`]),
          ...r.lookalikes.map((l) => ['look-alike', `${l.scope} ${l.node}: ${l.what}`]),
          ...(training ? [['fine-tuning', trainingLine(training)]] : []),
          ...r.problems.map((p) => ['problem', p]),
          ...(r.notConvertible ? [['convertible', `no: ${r.notConvertible}`]] : []),
        ];
        say(o, table(rows, ''));
      }),
    );
}

function trainingLine(t: Trainability): string {
  if (!t.ok) return `no: ${t.reason}`;
  const notes = [`${t.parameters} parameter tensors (${t.values} values)`, `${t.loss} loss`];
  if (t.opset !== t.modelOpset)
    notes.push(`training graph at opset ${t.opset}${t.rewritten ? ` (${t.rewritten} node(s) rewritten from opset ${t.modelOpset})` : ''}`);
  if (t.float32Master) notes.push('float32 master weights');
  return `yes: ${notes.join('; ')}`;
}
