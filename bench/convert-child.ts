/**
 * One end-to-end conversion in a fresh process, for peak memory: `node convert-child.js <in.onnx> <out.onnx> [form]`.
 * Prints JSON: RSS once the code is loaded (the process's floor), peak RSS (getrusage maxrss, which also
 * covers start-up, so peak - floor never understates what the conversion added) and timings.
 */
import { convert } from '../src/convert/convert.js';
import type { Form } from '../src/convert/forms.js';
import { readModel } from '../src/onnx/read.js';
import { messageType } from '../src/onnx/schema.js';
import { writeModel } from '../src/onnx/write.js';

const [input, output, form = 'subgraph'] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: convert-child <in.onnx> <out.onnx> [form]');
  process.exit(2);
}
messageType('ModelProto'); // load the schema before taking the floor
const floorBytes = process.memoryUsage.rss();
const t0 = performance.now();
const file = await readModel(input);
const t1 = performance.now();
const report = convert(file.model, { form: form as Form });
const t2 = performance.now();
await writeModel(file.model, output, { sourceDir: file.dir, force: true });
const t3 = performance.now();
console.log(
  JSON.stringify({
    floorBytes,
    peakBytes: process.resourceUsage().maxRSS * 1024,
    modelBytes: file.size,
    replaced: report.replaced,
    readMs: t1 - t0,
    convertMs: t2 - t1,
    writeMs: t3 - t2,
  }),
);
