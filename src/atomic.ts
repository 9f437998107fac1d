/**
 * Every file the tool writes goes through here, under one set of rules:
 *
 * - checkOutputs, before any work: an output is never one of the command's inputs (compared by real path
 *   and by device + inode, so symlinks, hard links and `..` segments do not hide it), never an existing file
 *   unless forced, never a folder, a device, a FIFO or a symbolic link, and no two outputs of one command are
 *   the same file;
 * - commitFiles / writeFileAtomic, when writing: a temporary file beside the target, renamed into place (or
 *   hard-linked, which fails instead of clobbering a file that appeared meanwhile), removed on any failure
 *   and on SIGINT/SIGTERM.
 *
 * A symbolic link at an output path is refused rather than replaced or written through: writing through it
 * would change a file elsewhere, and replacing it would silently turn the link the user made into a file.
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fs, rmSync, type Stats } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { UserError } from './errors.js';

/** A file or folder the command reads; `what` completes "<output>: is ..." (e.g. "the input model"). */
export interface InputPath {
  path: string;
  what: string;
  /** for a folder: which files under it are read (default: all) */
  contents?: RegExp;
}

/** Inputs known up front, or found by reading a file (external data): only looked up when an output already exists. */
export type InputSource = InputPath | (() => Promise<InputPath[]>);

export interface OutputPath {
  path: string;
  /** an existing file here is this run's own (a checkpoint being continued): replaced without force */
  mayExist?: boolean;
  /** the cause when the file exists and may not be replaced (default: "already exists (use --force to overwrite)") */
  existsCause?: string;
  /** missing folders on the way are created when writing (external data at `weights/w.bin`) */
  createFolders?: boolean;
}

export interface CheckOutputsOptions {
  /** replace existing files (never inputs, folders, links or devices) */
  force?: boolean;
  inputs?: InputSource[];
}

export const EXISTS_CAUSE = 'already exists (use --force to overwrite)';

/** How many entries of an input folder are looked at for hard links to an output (bounded: folders can be huge). */
const FOLDER_SCAN_LIMIT = 200_000;

interface Planned {
  out: OutputPath;
  /** real parent folder + name: the same for every spelling of the path */
  key: string;
  stat?: Stats;
}

const sameInode = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino;

/** Whether two paths name one file: the same path, or the same device and inode. */
export async function sameFile(a: string, b: string): Promise<boolean> {
  if (resolve(a) === resolve(b)) return true;
  const [sa, sb] = await Promise.all([fs.stat(a).catch(() => undefined), fs.stat(b).catch(() => undefined)]);
  return !!sa && !!sb && sameInode(sa, sb);
}

function errnoOf(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

/** Resolves the output's folder and looks at what is there now; refuses what can never be written. */
async function plan(out: OutputPath): Promise<Planned> {
  // `out/` names a folder even where none exists yet: writing a file called `out` would surprise.
  if (out.path === '' || out.path.endsWith('/') || out.path.endsWith(sep)) throw new UserError(out.path, 'is a folder path; expected a file path');
  const abs = resolve(out.path);
  const dir = dirname(abs);
  // The nearest folder that exists (the parent itself, unless folders are to be created on the way).
  let existing = dir;
  let realDir: string | undefined;
  for (;;) {
    try {
      realDir = await fs.realpath(existing);
      break;
    } catch (e) {
      const up = dirname(existing);
      if (!out.createFolders || errnoOf(e) !== 'ENOENT' || up === existing) {
        throw new UserError(out.path, errnoOf(e) === 'ENOTDIR' ? `cannot write: '${dir}' is not a folder` : `cannot write: folder '${dir}' does not exist`);
      }
      existing = up;
    }
  }
  const dirStat = await fs.stat(realDir);
  if (!dirStat.isDirectory()) throw new UserError(out.path, `cannot write: '${existing}' is not a folder`);
  try {
    await fs.access(realDir, constants.W_OK);
  } catch {
    throw new UserError(out.path, `cannot write: folder '${existing}' is not writable`);
  }
  const key = join(realDir, relative(existing, abs));
  const stat = await fs.lstat(key).catch((e: unknown) => {
    if (errnoOf(e) === 'ENOENT') return undefined;
    throw new UserError(out.path, `cannot write: ${(e as Error).message}`);
  });
  return { out, key, ...(stat ? { stat } : {}) };
}

function refuseKind(p: Planned): void {
  const s = p.stat;
  if (!s) return;
  if (s.isSymbolicLink()) throw new UserError(p.out.path, 'is a symbolic link; give the path of a file, not a link (nothing is written through links)');
  if (s.isDirectory()) throw new UserError(p.out.path, 'is a folder; expected a file path');
  if (!s.isFile()) throw new UserError(p.out.path, 'is not a regular file (a device, FIFO or socket); expected a file path');
}

/** Where an existing output is one of the inputs: the input it is, or undefined. */
async function matchInput(p: Planned, inputs: InputPath[], scanned: Map<string, Stats[]>): Promise<InputPath | undefined> {
  // A link's target counts: `-o link` where link -> model.onnx names the model.
  const target = await fs.stat(p.key).catch(() => undefined);
  const real = await fs.realpath(p.key).catch(() => p.key);
  for (const input of inputs) {
    const st = await fs.stat(input.path).catch(() => undefined);
    if (!st) continue;
    const inputReal = await fs.realpath(input.path).catch(() => resolve(input.path));
    if (real === inputReal || (target && sameInode(st, target)) || sameInode(st, p.stat!)) return input;
    if (st.isDirectory()) {
      // Files under a data folder are read: an existing one there is an input.
      const rel = relative(inputReal, real);
      const read = (name: string) => !input.contents || input.contents.test(name);
      if (rel && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel) && read(rel)) return { path: input.path, what: `a file of ${input.what}` };
      if (target && target.nlink > 1) {
        const k = `${inputReal}\0${input.contents?.source ?? ''}`;
        let files = scanned.get(k);
        if (!files) scanned.set(k, (files = await filesUnder(inputReal, read)));
        if (files.some((f) => sameInode(f, target))) return { path: input.path, what: `a hard link to a file of ${input.what}` };
      }
    }
  }
  return undefined;
}

async function filesUnder(dir: string, read: (name: string) => boolean): Promise<Stats[]> {
  const out: Stats[] = [];
  const queue = [dir];
  let seen = 0;
  while (queue.length && seen < FOLDER_SCAN_LIMIT) {
    const d = queue.pop()!;
    const entries = await fs.readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (++seen > FOLDER_SCAN_LIMIT) break;
      const p = join(d, e.name);
      if (e.isDirectory()) queue.push(p);
      else if (e.isFile() && read(e.name)) {
        const st = await fs.stat(p).catch(() => undefined);
        if (st) out.push(st);
      }
    }
  }
  return out;
}

function describeInput(out: string, input: InputPath): string {
  const same = resolve(out) === resolve(input.path);
  return `is ${input.what}${same ? '' : ` (${input.path})`}; choose another path`;
}

/**
 * Refuses, before any work, every output that could not be written under the rules above. Throws a
 * UserError naming the output path.
 */
export async function checkOutputs(outputs: (string | OutputPath)[], o: CheckOutputsOptions = {}): Promise<void> {
  const planned: Planned[] = [];
  for (const out of outputs) planned.push(await plan(typeof out === 'string' ? { path: out } : out));

  for (let i = 0; i < planned.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = planned[j]!;
      const b = planned[i]!;
      if (a.key === b.key || (a.stat && b.stat && sameInode(a.stat, b.stat))) {
        throw new UserError(b.out.path, `is the same file as the output ${a.out.path}; give each output its own path`);
      }
    }
  }

  // Inputs exist, so only an output that exists can be one; inputs found by reading are only looked up then.
  const existing = planned.filter((p) => p.stat);
  if (existing.length) {
    const inputs: InputPath[] = [];
    for (const s of o.inputs ?? []) inputs.push(...(typeof s === 'function' ? await s() : [s]));
    const scanned = new Map<string, Stats[]>();
    for (const p of existing) {
      const input = await matchInput(p, inputs, scanned);
      if (input) throw new UserError(p.out.path, describeInput(p.out.path, input));
    }
  }
  for (const p of existing) {
    refuseKind(p);
    if (!o.force && !p.out.mayExist) throw new UserError(p.out.path, p.out.existsCause ?? EXISTS_CAUSE);
  }
}

// ---- writing ----------------------------------------------------------------------------------------

/** Temporaries not yet committed or removed: removed at exit and on SIGINT/SIGTERM. */
const live = new Set<string>();

function removeLive(): void {
  for (const t of live) {
    try {
      rmSync(t, { force: true });
    } catch {
      /* nothing more to do at exit */
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  // Where the program has its own handler (finetune stops after the step), the write in progress goes on;
  // its temporaries go when it fails or at exit.
  if (process.listenerCount(signal) > 1) return;
  removeLive();
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

function track(temps: string[]): void {
  if (live.size === 0) {
    process.on('exit', removeLive);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  for (const t of temps) live.add(t);
}

function untrack(temps: string[]): void {
  for (const t of temps) live.delete(t);
  if (live.size === 0) {
    process.off('exit', removeLive);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function tempPathFor(target: string): string {
  // The name's start only: a target near the 255-byte name limit must not push its temporary over it.
  return join(dirname(target), `.${basename(target).slice(0, 64)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

export interface CommitOptions {
  /** replace existing targets (checked with checkOutputs first); otherwise a target that exists now is refused */
  replace?: boolean;
}

/** Link errors where the filesystem has no hard links: fall back to checking, then renaming. */
const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EMLINK', 'ENOSYS', 'EACCES']);

/** Puts the temporaries in place without replacing anything; all or none. */
async function commitNew(temps: string[], targets: string[]): Promise<void> {
  const linked: string[] = [];
  try {
    for (let i = 0; i < targets.length; i++) {
      try {
        await fs.link(temps[i]!, targets[i]!);
        linked.push(targets[i]!);
      } catch (e) {
        if (errnoOf(e) === 'EEXIST') throw new UserError(targets[i]!, EXISTS_CAUSE);
        if (!NO_LINKS.has(errnoOf(e) ?? '')) throw e;
        if (
          await fs.lstat(targets[i]!).then(
            () => true,
            () => false,
          )
        )
          throw new UserError(targets[i]!, EXISTS_CAUSE);
        await fs.rename(temps[i]!, targets[i]!);
        linked.push(targets[i]!);
      }
    }
  } catch (e) {
    // Only files this call created are removed.
    await Promise.all(linked.map((t) => fs.rm(t, { force: true })));
    throw e;
  }
}

/**
 * Runs `fill(tempPaths)` (each temporary beside its target, not yet created), then puts every temporary in
 * place. If anything fails, every temporary is removed and no target is touched.
 */
export async function commitFiles(targets: string[], fill: (temps: string[]) => Promise<void>, o: CommitOptions = {}): Promise<void> {
  const temps = targets.map((t) => tempPathFor(resolve(t)));
  track(temps);
  try {
    await fill(temps);
    if (o.replace) for (let i = 0; i < targets.length; i++) await fs.rename(temps[i]!, targets[i]!);
    else await commitNew(temps, targets);
  } finally {
    await Promise.all(temps.map((t) => fs.rm(t, { force: true })));
    untrack(temps);
  }
}

/** `data` as one array or string, or as pieces written in turn (never joined in memory). */
export async function writeFileAtomic(target: string, data: Uint8Array | string | Iterable<Uint8Array>, o: CommitOptions = {}): Promise<void> {
  try {
    // 'wx': a temporary name that exists (planted, or a collision) is never written through.
    await commitFiles([target], async ([tmp]) => fs.writeFile(tmp!, data, { flag: 'wx' }), o);
  } catch (e) {
    throw writeFailure(e, target);
  }
}

/** Why a write can fail that the user can act on: permissions, a read-only, full or failing disk, a folder gone. */
const WRITE_CAUSES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOENT', 'ENOTDIR', 'ENOSPC', 'EDQUOT', 'EFBIG', 'EIO']);

/** A failed write of `path` as a one-line refusal naming it, where the cause is the user's to act on; anything else as it is. */
export function writeFailure(e: unknown, path: string): unknown {
  if (e instanceof UserError) return e;
  const code = errnoOf(e);
  if (!code || !WRITE_CAUSES.has(code)) return e;
  return new UserError(path, `cannot write: ${code === 'ENOENT' ? 'folder does not exist' : (e as Error).message}`);
}
