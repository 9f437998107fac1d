/**
 * Training checkpoints: everything a run needs to continue exactly where an epoch ended (parameters,
 * optimizer state, the best parameters so far, counters and history), in one file written atomically.
 *
 * Format: the 8 bytes `ALRCKPT1`, a u32 LE length, that many bytes of JSON metadata, then a tensor
 * bundle (src/runtime/tensor.ts packTensors) holding `param/<name>`, `state/<name>` and `best/<name>`.
 */
import { promises as fs } from 'node:fs';
import { writeFileAtomic } from '../atomic.js';
import { UserError } from '../errors.js';
import { packTensors, unpackTensors } from '../runtime/tensor.js';
import type { HostTensor } from '../runtime/types.js';

const MAGIC = 'ALRCKPT1';

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  /** validation score used to pick the best epoch (accuracy, or mse for regression) */
  valMetric: number;
  val: Record<string, number | null>;
  lr: number;
  seconds: number;
  steps: number;
}

export interface CheckpointMeta {
  version: 1;
  /** sha256 of the model being fine-tuned, so a checkpoint is never resumed onto another model */
  modelHash: string;
  optimizer: string;
  params: string[];
  /** epochs completed (1-based count) */
  epoch: number;
  globalStep: number;
  /** best validation score so far (accuracy or mse) and, for classification, its loss (the tie-breaker) */
  best: { epoch: number; value: number; loss?: number } | null;
  sinceBest: number;
  history: EpochRecord[];
}

export interface Checkpoint {
  meta: CheckpointMeta;
  params: Record<string, HostTensor>;
  state: Record<string, HostTensor>;
  best: Record<string, HostTensor>;
}

export async function writeCheckpoint(path: string, c: Checkpoint): Promise<void> {
  const tensors: Record<string, HostTensor> = {};
  for (const [k, v] of Object.entries(c.params)) tensors[`param/${k}`] = v;
  for (const [k, v] of Object.entries(c.state)) tensors[`state/${k}`] = v;
  for (const [k, v] of Object.entries(c.best)) tensors[`best/${k}`] = v;
  const meta = new TextEncoder().encode(JSON.stringify(c.meta));
  const bundle = packTensors(tensors);
  const out = new Uint8Array(MAGIC.length + 4 + meta.length + bundle.length);
  out.set(new TextEncoder().encode(MAGIC), 0);
  new DataView(out.buffer).setUint32(MAGIC.length, meta.length, true);
  out.set(meta, MAGIC.length + 4);
  out.set(bundle, MAGIC.length + 4 + meta.length);
  await writeFileAtomic(path, out);
}

export async function readCheckpoint(path: string): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(path, code === 'ENOENT' ? 'no such checkpoint (nothing to --resume)' : `cannot read: ${(e as Error).message}`);
  }
  const magic = new TextDecoder().decode(bytes.subarray(0, MAGIC.length));
  if (magic !== MAGIC || bytes.length < MAGIC.length + 4) throw new UserError(path, 'not an alrelu checkpoint');
  try {
    const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(MAGIC.length, true);
    const meta = JSON.parse(new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, MAGIC.length + 4 + len))) as CheckpointMeta;
    const tensors = unpackTensors(bytes.subarray(MAGIC.length + 4 + len));
    const c: Checkpoint = { meta, params: {}, state: {}, best: {} };
    for (const [k, v] of Object.entries(tensors)) {
      const i = k.indexOf('/');
      const part = k.slice(0, i) as 'param' | 'state' | 'best';
      const name = k.slice(i + 1);
      if (part === 'param') c.params[name] = v;
      else if (part === 'state') c.state[name] = v;
      else if (part === 'best') c.best[name] = v;
    }
    return c;
  } catch (e) {
    throw new UserError(path, `corrupt checkpoint (${(e as Error).message})`);
  }
}
