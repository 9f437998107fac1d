/**
 * Files that one file names inside another (a model's external weights, a test set's .pb tensors) are
 * opened only when their real path lies inside the folder they are relative to, and only when they are
 * regular files. A downloaded model can hold symbolic links: following one out of its folder would copy a
 * file of the user's into the output, and a FIFO or a device would hang the process or never end.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, promises as fsp, read, readSync, realpathSync, statfsSync, type Stats } from 'node:fs';
import { isAbsolute, normalize, sep } from 'node:path';
import { promisify } from 'node:util';

/** A refusal; the message is the cause only, the caller adds the subject (the file that named it). */
export class RefusedFile extends Error {}

/** How a refusal reads: `what` names the reference ("external data 'w.bin' for tensor 'fc.weight'"),
 * `folder` the folder it must stay in ("the model's folder"). */
export interface Reference {
  what: string;
  folder: string;
}

export interface Opened {
  fd: number;
  /** real path of the file */
  real: string;
  size: number;
}

/** Kernel-generated filesystems whose entries pass for regular files: procfs, sysfs, debugfs, tracefs,
 * securityfs, cgroup v1 and v2. Their "size" says nothing about what a read returns. */
const PSEUDO_FS = new Set([0x9fa0, 0x62656572, 0x64626720, 0x74726163, 0x73636673, 0x27e0eb, 0x63677270]);

const refuse = (ref: Reference, cause: string) => new RefusedFile(`${ref.what} ${cause}`);

/**
 * The real path of `location` taken relative to `base`, as the OS resolves it (so `link/..` goes where the
 * link goes, as onnxruntime would open it); refused when it leaves the real path of `base`.
 */
export function realInside(base: string, location: string, ref: Reference): string {
  if (!location) throw refuse(ref, 'has no location');
  if (location.includes('\0')) throw refuse(ref, 'has a NUL byte in its location');
  if (isAbsolute(location) || /^[a-zA-Z]:[\\/]/.test(location) || location.startsWith('\\')) {
    throw refuse(ref, `is absolute; only paths inside ${ref.folder} are allowed`);
  }
  const slashed = location.replace(/\\/g, '/');
  const norm = normalize(slashed);
  if (norm === '..' || norm.startsWith('..' + sep) || norm.startsWith('../')) throw refuse(ref, `escapes ${ref.folder}`);
  let realBase: string;
  let real: string;
  try {
    realBase = realpathSync.native(base);
    // Not path.join: that would fold `link/..` away by text, and read another file than the OS opens.
    real = realpathSync.native(`${base}/${slashed}`);
  } catch (e) {
    throw refuse(ref, errnoCause(e));
  }
  const prefix = realBase.endsWith(sep) ? realBase : realBase + sep;
  if (!real.startsWith(prefix)) {
    throw refuse(ref, real === realBase ? `is ${ref.folder} itself, not a file` : `resolves outside ${ref.folder} (through a symbolic link)`);
  }
  return real;
}

function errnoCause(e: unknown): string {
  switch ((e as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'is missing';
    case 'ENOTDIR':
      return 'is missing (a part of its path is not a folder)';
    case 'ELOOP':
      return 'is a loop of symbolic links';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read (permission denied)';
    case 'ENAMETOOLONG':
      return 'has a path that is too long';
    default:
      return `cannot be opened (${(e as Error).message})`;
  }
}

/** Why `st` is not a plain file of data; undefined when it is one. */
export function kindProblem(st: Stats): string | undefined {
  if (st.isFile()) return undefined;
  if (st.isDirectory()) return 'is a folder, not a regular file';
  if (st.isFIFO()) return 'is a FIFO (named pipe), not a regular file';
  if (st.isSocket()) return 'is a socket, not a regular file';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'is a device, not a regular file';
  return 'is not a regular file';
}

function checkKind(real: string, st: Stats, ref: Reference): void {
  const kind = kindProblem(st);
  if (kind) throw refuse(ref, kind);
  let fsType: number | bigint;
  try {
    fsType = statfsSync(real).type;
  } catch (e) {
    throw refuse(ref, errnoCause(e));
  }
  if (PSEUDO_FS.has(Number(fsType))) throw refuse(ref, 'is a kernel pseudo-file (procfs, sysfs), not a regular file');
}

/** The real path and lstat of a contained regular file. */
function checked(base: string, location: string, ref: Reference): { real: string; st: Stats } {
  const real = realInside(base, location, ref);
  let st: Stats;
  try {
    st = lstatSync(real);
  } catch (e) {
    throw refuse(ref, errnoCause(e));
  }
  checkKind(real, st, ref);
  return { real, st };
}

/** Real path and size of a contained regular file, without opening it (so a device is never opened). */
export function statInside(base: string, location: string, ref: Reference): { real: string; size: number } {
  const { real, st } = checked(base, location, ref);
  return { real, size: st.size };
}

/**
 * Opens a contained regular file for reading. O_NOFOLLOW and O_NONBLOCK keep a link or FIFO swapped in
 * after the check from being followed or from blocking the open; fstat on the open descriptor confirms it
 * is still the file that was checked.
 */
export function openInside(base: string, location: string, ref: Reference): Opened {
  const { real, st: before } = checked(base, location, ref);
  let fd: number;
  try {
    fd = openSync(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (e) {
    throw refuse(ref, errnoCause(e));
  }
  const st = fstatSync(fd);
  if (!st.isFile() || st.ino !== before.ino || st.dev !== before.dev) {
    closeSync(fd);
    throw refuse(ref, 'changed while being opened');
  }
  return { fd, real, size: st.size };
}

/** Bytes offset..offset+length (to the end when length is undefined) of a contained regular file. */
export function readInside(base: string, location: string, ref: Reference, offset = 0, length?: number): Uint8Array {
  const f = openInside(base, location, ref);
  try {
    const want = length ?? f.size - offset;
    if (offset > f.size || offset + want > f.size) throw refuse(ref, `needs bytes ${offset}..${offset + want} of a file of ${f.size}`);
    const buf = Buffer.allocUnsafe(want);
    let done = 0;
    while (done < want) {
      const n = readSync(f.fd, buf, done, want - done, offset + done);
      if (n === 0) throw refuse(ref, 'ends early (it shrank while being read)');
      done += n;
    }
    return buf;
  } finally {
    closeSync(f.fd);
  }
}

const readAsync = promisify(read);
const CHUNK = 8 << 20;

/** Copies a contained regular file to `dest`, a new file (never one that exists), through the checked descriptor. */
export async function copyInside(base: string, location: string, ref: Reference, dest: string): Promise<void> {
  const f = openInside(base, location, ref);
  try {
    const out = await fsp.open(dest, 'wx');
    try {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, Math.max(f.size, 1)));
      let done = 0;
      while (done < f.size) {
        const { bytesRead } = await readAsync(f.fd, buf, 0, Math.min(buf.length, f.size - done), done);
        if (bytesRead === 0) throw refuse(ref, 'ends early (it shrank while being copied)');
        await out.write(buf, 0, bytesRead);
        done += bytesRead;
      }
    } finally {
      await out.close();
    }
  } finally {
    closeSync(f.fd);
  }
}
