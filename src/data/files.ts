/**
 * Opening user data files: regular files only (a FIFO or device named as data would block or never
 * end), opened without blocking, sized before anything is read, and read in full only after the
 * caller has charged their size to the data budget.
 */
import { constants, promises as fs, type Stats } from 'node:fs';
import { UserError, messageOf } from '../errors.js';
import { formatBytes, MAX_BUFFER, type DataBudget } from './limits.js';

export interface OpenedFile {
  handle: fs.FileHandle;
  size: number;
}

function cannotRead(file: string, e: unknown): UserError {
  const code = (e as NodeJS.ErrnoException).code;
  return new UserError(file, code === 'ENOENT' ? 'no such file' : `cannot read: ${messageOf(e)}`);
}

/** Opens `file` for reading if it is a regular file; the caller closes the handle. */
export async function openRegular(file: string): Promise<OpenedFile> {
  let handle: fs.FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw cannotRead(file, e);
  }
  let st: Stats;
  try {
    st = await handle.stat();
  } catch (e) {
    await handle.close();
    throw cannotRead(file, e);
  }
  if (!st.isFile()) {
    await handle.close();
    throw new UserError(file, 'is not a regular file (a folder, device, FIFO or socket); expected a data file');
  }
  return { handle, size: st.size };
}

/** Reads exactly `length` bytes at `position` into a new buffer, or fails naming the file. */
export async function readAt(file: string, f: OpenedFile, position: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  try {
    while (done < length) {
      const { bytesRead } = await f.handle.read(out, done, length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
  } catch (e) {
    throw cannotRead(file, e);
  }
  if (done < length) throw new UserError(file, `changed while being read (expected ${length} bytes at ${position}, found ${done})`);
  return out;
}

/** What holding a file of `size` bytes costs: the bytes to charge, and the sentence declaring them. */
export type FileCost = (size: number) => { bytes: number; declared: string };

const asIs: FileCost = (size) => ({ bytes: size, declared: `is ${formatBytes(size)}` });

/** The whole file; its cost (default: its size) is charged to `budget` before it is read. */
export async function readWhole(file: string, budget: DataBudget, cost: FileCost = asIs): Promise<Uint8Array> {
  const f = await openRegular(file);
  try {
    if (f.size > MAX_BUFFER) throw new UserError(file, `is ${formatBytes(f.size)}, more than one buffer can hold (${formatBytes(MAX_BUFFER)})`);
    const { bytes, declared } = cost(f.size);
    budget.take(file, bytes, declared);
    return await readAt(file, f, 0, f.size);
  } finally {
    await f.handle.close();
  }
}
