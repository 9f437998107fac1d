/**
 * Every file the tool writes follows one set of rules (src/atomic.ts), whatever the flag: through the
 * real CLI, each output flag of each command is pointed at the input model (by its path, a symlink, a
 * hard link and a `..` path), at an existing file without and with --force, at a folder and at a
 * symlink; two outputs of one command at one file; outputs at the data files read. Each refusal is one
 * error line naming the output, exit 2, every file byte for byte as before and no temporary left behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkOutputs, commitFiles, writeFileAtomic } from '../src/atomic.js';
import { encodeNpy } from '../src/data/npy.js';
import { UserError } from '../src/errors.js';
import { decodeModel, encodeModel } from '../src/onnx/schema.js';
import { allTensors } from '../src/onnx/walk.js';
import { errorLine, runCli, type CliResult } from './cli.js';
import { fixture, ROOT } from './helpers.js';

const IRIS_MLP = join(ROOT, 'models/iris-mlp.onnx');

interface Dir {
  dir: string;
  model: string;
}

function workdir(): Dir {
  const dir = mkdtempSync(join(tmpdir(), 'alrelu-out-'));
  const model = join(dir, 'model.onnx');
  copyFileSync(IRIS_MLP, model);
  return { dir, model };
}

/** Every file under `dir` with its bytes (links as their target text), to compare before and after. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out.set(p, 'dir');
        walk(p);
      } else if (e.isSymbolicLink()) out.set(p, `link`);
      else out.set(p, readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

const FT = ['--data', 'iris', '--epochs', '1', '--max-steps', '2', '--batch-size', '16'];
const EVAL = ['--data', 'iris', '--limit', '8', '--warmup', '0'];

/** Each output flag of each command: the arguments that send that output to `out`. */
interface OutputFlag {
  name: string;
  args: (d: Dir, out: string) => string[];
  /** serve waits for a browser: a forced write gets past the checks, then times out without one */
  noBrowser?: boolean;
}

const FLAGS: OutputFlag[] = [
  { name: 'convert -o', args: (d, out) => [d.model, '-o', out, '--quiet'] },
  { name: 'convert --finetune -o', args: (d, out) => [d.model, '--finetune', ...FT.filter((a) => a !== '--max-steps' && a !== '2'), '-o', out, '--quiet'] },
  { name: 'eval --report', args: (d, out) => ['eval', d.model, ...EVAL, '--report', out, '--quiet'] },
  { name: 'serve --save', args: (d, out) => ['serve', d.model, ...EVAL, '--compare', 'none', '--timeout', '1', '--save', out, '--quiet'], noBrowser: true },
  { name: 'serve --report', args: (d, out) => ['serve', d.model, ...EVAL, '--compare', 'none', '--timeout', '1', '--report', out, '--quiet'], noBrowser: true },
  { name: 'finetune -o', args: (d, out) => ['finetune', d.model, ...FT, '-o', out, '--quiet'] },
  { name: 'finetune --log', args: (d, out) => ['finetune', d.model, ...FT, '-o', join(d.dir, 'ft.onnx'), '--log', out, '--quiet'] },
  { name: 'finetune --checkpoint', args: (d, out) => ['finetune', d.model, ...FT, '-o', join(d.dir, 'ft.onnx'), '--checkpoint', out, '--quiet'] },
  {
    name: 'finetune --dump-gradients',
    args: (d, out) => ['finetune', d.model, '--data', 'iris', '-o', join(d.dir, 'ft.onnx'), '--dump-gradients', out, '--quiet'],
  },
];

/** Runs a command that must be refused: exit 2, one `error: <out>: <cause>` line, nothing in `dir` changed. */
async function expectRefused(args: string[], dir: string, subject: string, cause: RegExp): Promise<CliResult> {
  const before = snapshot(dir);
  const r = await runCli(args);
  expect(r.code, r.stderr).toBe(2);
  const line = errorLine(r);
  expect(line.startsWith(`error: ${subject}: `), line).toBe(true);
  expect(line).toMatch(cause);
  expect(snapshot(dir)).toEqual(before);
  return r;
}

/** Cases every output flag must meet; each gets a fresh folder and returns where its output goes. */
const CASES: { name: string; force: boolean; cause: RegExp; target: (d: Dir) => string }[] = [
  { name: 'the input model by its path', force: true, cause: /is the input model; choose another path$/, target: (d) => d.model },
  {
    name: 'the input model through a symlink',
    force: true,
    cause: /is the input model \(.*model\.onnx\); choose another path$/,
    target: (d) => {
      symlinkSync(d.model, join(d.dir, 'link.onnx'));
      return join(d.dir, 'link.onnx');
    },
  },
  {
    name: 'the input model through a hard link',
    force: true,
    cause: /is the input model \(.*model\.onnx\); choose another path$/,
    target: (d) => {
      linkSync(d.model, join(d.dir, 'hard.onnx'));
      return join(d.dir, 'hard.onnx');
    },
  },
  {
    name: 'the input model through `..`',
    force: true,
    cause: /is the input model; choose another path$/,
    target: (d) => {
      mkdirSync(join(d.dir, 'sub'));
      return `${d.dir}/sub/../model.onnx`;
    },
  },
  {
    name: 'an existing file without --force',
    force: false,
    cause: /: already exists \(use --force to overwrite\)$|: a checkpoint of an earlier run is here: --resume to continue it, or --force to start over$/,
    target: (d) => {
      writeFileSync(join(d.dir, 'keep.out'), 'keep me');
      return join(d.dir, 'keep.out');
    },
  },
  {
    name: 'a folder',
    force: true,
    cause: /is a folder; expected a file path$/,
    target: (d) => {
      mkdirSync(join(d.dir, 'folder.out'));
      return join(d.dir, 'folder.out');
    },
  },
  {
    name: 'a symlink to another file (never written through)',
    force: true,
    cause: /is a symbolic link; give the path of a file/,
    target: (d) => {
      writeFileSync(join(d.dir, 'other.txt'), 'other');
      symlinkSync(join(d.dir, 'other.txt'), join(d.dir, 'ln.out'));
      return join(d.dir, 'ln.out');
    },
  },
  {
    name: 'a device',
    force: true,
    cause: /is not a regular file/,
    target: () => '/dev/null',
  },
  {
    name: 'a folder that does not exist',
    force: true,
    cause: /cannot write: folder '.*nowhere' does not exist$/,
    target: (d) => join(d.dir, 'nowhere', 'x.out'),
  },
];

describe('every output flag of every command follows the rules of -o', () => {
  for (const flag of FLAGS) {
    describe(flag.name, () => {
      for (const c of CASES) {
        it(`refuses ${c.name}`, async () => {
          const d = workdir();
          const out = c.target(d);
          await expectRefused([...flag.args(d, out), ...(c.force ? ['--force'] : [])], d.dir, out, c.cause);
        });
      }

      it('replaces an existing file with --force, atomically, leaving no temporary', async () => {
        const d = workdir();
        const out = join(d.dir, 'keep.out');
        writeFileSync(out, 'keep me');
        const r = await runCli([...flag.args(d, out), '--force']);
        if (flag.noBrowser) {
          // Past every check of the outputs: it waited for a browser, and wrote nothing without results.
          expect(r.code).toBe(2);
          expect(r.stderr).toMatch(/error: serve: no browser opened .* within 1 s/);
          expect(r.stderr).not.toContain(out);
          expect(readFileSync(out, 'utf8')).toBe('keep me');
        } else {
          expect(r.code, r.stderr).toBe(0);
          expect(readFileSync(out, 'utf8')).not.toBe('keep me');
          expect(statSync(out).size).toBeGreaterThan(0);
        }
        expect(readdirSync(d.dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
        expect(readFileSync(d.model).equals(readFileSync(IRIS_MLP))).toBe(true);
      });
    });
  }
});

describe('two outputs of one command are never one file', () => {
  const cases: [string, (d: Dir) => string[], string][] = [
    ['finetune --log = -o', (d) => ['finetune', d.model, ...FT, '-o', join(d.dir, 'a.out'), '--log', join(d.dir, 'a.out')], 'a.out'],
    [
      'finetune --checkpoint = --log',
      (d) => ['finetune', d.model, ...FT, '-o', join(d.dir, 'ft.onnx'), '--checkpoint', join(d.dir, 'a.out'), '--log', `${d.dir}/sub/../a.out`],
      'sub/../a.out',
    ],
    [
      'finetune --log = the default checkpoint',
      (d) => ['finetune', d.model, ...FT, '-o', join(d.dir, 'ft.onnx'), '--log', join(d.dir, 'ft.onnx.ckpt')],
      'ft.onnx.ckpt',
    ],
    [
      'serve --save = --report',
      (d) => ['serve', d.model, ...EVAL, '--timeout', '1', '--save', join(d.dir, 'a.out'), '--report', join(d.dir, 'a.out')],
      'a.out',
    ],
  ];
  for (const [what, args, second] of cases) {
    it(what, async () => {
      const d = workdir();
      mkdirSync(join(d.dir, 'sub'));
      await expectRefused(
        [...args(d), '--force'],
        d.dir,
        `${d.dir}/${second}`,
        /is the same file as the output .*a\.out|is the same file as the output .*ckpt; give each output its own path/,
      );
    });
  }

  it('an existing file reached by two names (a hard link) counts once', async () => {
    const d = workdir();
    writeFileSync(join(d.dir, 'a.out'), 'x');
    linkSync(join(d.dir, 'a.out'), join(d.dir, 'b.out'));
    await expectRefused(
      ['finetune', d.model, ...FT, '-o', join(d.dir, 'ft.onnx'), '--log', join(d.dir, 'a.out'), '--checkpoint', join(d.dir, 'b.out'), '--force'],
      d.dir,
      join(d.dir, 'a.out'),
      /is the same file as the output .*b\.out/,
    );
  });
});

describe('outputs never replace the data, the labels, external data or a resumed checkpoint', () => {
  function npyData(d: Dir): { x: string; y: string; labels: string } {
    mkdirSync(join(d.dir, 'd'));
    const x = Float32Array.from({ length: 60 * 4 }, (_, i) => (i % 7) / 7);
    const y = Int32Array.from({ length: 60 }, (_, i) => i % 3);
    writeFileSync(join(d.dir, 'd', 'x.npy'), encodeNpy('<f4', [60, 4], x));
    writeFileSync(join(d.dir, 'd', 'y.npy'), encodeNpy('<i4', [60], y));
    writeFileSync(join(d.dir, 'd', 'other.npy'), encodeNpy('<i4', [60], y));
    return { x: join(d.dir, 'd', 'x.npy'), y: join(d.dir, 'd', 'y.npy'), labels: join(d.dir, 'd', 'other.npy') };
  }

  it('eval --report at the data file, at y.npy beside x.npy, at a --labels file, through a hard link', async () => {
    const d = workdir();
    const f = npyData(d);
    const ev = (data: string, out: string, extra: string[] = []) => ['eval', d.model, '--data', data, '--warmup', '0', '--report', out, '--force', ...extra];
    await expectRefused(ev(f.x, f.x), d.dir, f.x, /is the data file; choose another path/);
    await expectRefused(ev(f.x, f.y), d.dir, f.y, /is the labels file; choose another path/);
    await expectRefused(ev(f.x, f.labels, ['--labels', f.labels]), d.dir, f.labels, /is the labels file; choose another path/);
    linkSync(f.y, join(d.dir, 'y-link.npy'));
    await expectRefused(ev(f.x, join(d.dir, 'y-link.npy')), d.dir, join(d.dir, 'y-link.npy'), /is the labels file \(.*y\.npy\)/);
  });

  it('finetune --log at a file of a data folder, directly and through a hard link; a new report there is fine', async () => {
    const d = workdir();
    const folder = join(d.dir, 'imgs');
    mkdirSync(join(folder, 'a'), { recursive: true });
    // never decoded: the outputs are refused before any data is read
    writeFileSync(join(folder, 'a', '0.png'), 'an image');
    const img = join(folder, 'a', '0.png');
    await expectRefused(
      ['finetune', d.model, '--data', folder, '-o', join(d.dir, 'ft.onnx'), '--log', img, '--force'],
      d.dir,
      img,
      /is a file of the data folder \(.*imgs\); choose another path/,
    );
    linkSync(img, join(d.dir, 'outside.png'));
    await expectRefused(
      ['finetune', d.model, '--data', folder, '-o', join(d.dir, 'ft.onnx'), '--log', join(d.dir, 'outside.png'), '--force'],
      d.dir,
      join(d.dir, 'outside.png'),
      /is a hard link to a file of the data folder \(.*imgs\); choose another path$/,
    );
  });

  it("convert --external-data at the input model's own data file", async () => {
    const { dir, model } = (() => {
      const d = mkdtempSync(join(tmpdir(), 'alrelu-out-'));
      const m = decodeModel(readFileSync(fixture('onnx-onnx/examples-simple_cnn/simple_cnn.onnx')));
      for (const t of allTensors(m)) for (const kv of t.externalData ?? []) if (kv.key === 'location') kv.value = 'weights.data';
      writeFileSync(join(d, 'model.onnx'), encodeModel(m));
      copyFileSync(fixture('onnx-onnx/examples-simple_cnn/simple_cnn.onnx.data'), join(d, 'weights.data'));
      return { dir: d, model: join(d, 'model.onnx') };
    })();
    // -o <dir>/weights writes its data to <dir>/weights.data: the input's external data.
    await expectRefused(
      [model, '-o', join(dir, 'weights'), '--external-data', '--force'],
      dir,
      join(dir, 'weights.data'),
      /is external data of the input model; choose another path/,
    );
    // and keeping the data external into another folder that is the same folder by a symlink is no copy at all
    const link = join(mkdtempSync(join(tmpdir(), 'alrelu-out-')), 'link');
    symlinkSync(dir, link);
    const r = await runCli([model, '-o', join(link, 'conv.onnx'), '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'weights.data')).equals(readFileSync(fixture('onnx-onnx/examples-simple_cnn/simple_cnn.onnx.data')))).toBe(true);
  });

  it('finetune --checkpoint at the checkpoint resumed from another path is the same run; another file is an input', async () => {
    const d = workdir();
    const ckpt = join(d.dir, 'run.ckpt');
    const first = await runCli(['finetune', d.model, ...FT, '-o', join(d.dir, 'a.onnx'), '--checkpoint', ckpt, '--quiet']);
    expect(first.code, first.stderr).toBe(0);
    // Resuming from a hard link of the checkpoint and writing to the checkpoint: one file, the same run.
    linkSync(ckpt, join(d.dir, 'run-link.ckpt'));
    const cont = await runCli([
      'finetune',
      d.model,
      ...FT.map((a) => (a === '1' ? '2' : a)),
      '-o',
      join(d.dir, 'b.onnx'),
      '--resume',
      join(d.dir, 'run-link.ckpt'),
      '--checkpoint',
      ckpt,
      '--quiet',
    ]);
    expect(cont.code, cont.stderr).toBe(0);
    // Resuming from one checkpoint while writing the log over it is refused.
    await expectRefused(
      ['finetune', d.model, ...FT, '-o', join(d.dir, 'c.onnx'), '--resume', ckpt, '--checkpoint', join(d.dir, 'new.ckpt'), '--log', ckpt, '--force'],
      d.dir,
      ckpt,
      /is the checkpoint resumed from; choose another path/,
    );
  });
});

describe('writing', () => {
  it('a failed write leaves neither the target nor a temporary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alrelu-out-'));
    await expect(
      commitFiles([join(dir, 'a'), join(dir, 'b')], async ([a]) => {
        writeFileSync(a!, 'half');
        throw new Error('disk full');
      }),
    ).rejects.toThrow(/disk full/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a file that appears while writing is not clobbered without force, and nothing is half-committed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alrelu-out-'));
    await expect(
      commitFiles([join(dir, 'a'), join(dir, 'b')], async (temps) => {
        for (const t of temps) writeFileSync(t, 'new', { flag: 'wx' });
        writeFileSync(join(dir, 'b'), 'theirs');
      }),
    ).rejects.toThrow(/b: already exists/);
    expect(readdirSync(dir)).toEqual(['b']);
    expect(readFileSync(join(dir, 'b'), 'utf8')).toBe('theirs');
    await writeFileAtomic(join(dir, 'b'), 'mine', { replace: true });
    expect(readFileSync(join(dir, 'b'), 'utf8')).toBe('mine');
  });

  it('Ctrl-C during a write removes the temporary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alrelu-out-'));
    const script = `
      import { commitFiles } from ${JSON.stringify(join(ROOT, 'dist/src/atomic.js'))};
      import { writeFileSync } from 'node:fs';
      await commitFiles([${JSON.stringify(join(dir, 'big.out'))}], async ([t]) => {
        writeFileSync(t, 'partial');
        process.stdout.write('ready\\n');
        await new Promise(() => setInterval(() => {}, 1000));
      });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const code = await new Promise<number | null>((done) => {
      child.stdout.on('data', (b: Buffer) => {
        if (b.toString().includes('ready')) child.kill('SIGINT');
      });
      child.on('close', (c) => done(c));
    });
    expect(code).toBe(130);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('checkOutputs as a library call: subjects are the paths as given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alrelu-out-'));
    writeFileSync(join(dir, 'in.onnx'), 'model');
    const e = await checkOutputs([join(dir, '.', 'in.onnx')], { inputs: [{ path: join(dir, 'in.onnx'), what: 'the input model' }] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).subject).toBe(join(dir, '.', 'in.onnx'));
    // Outputs that do not exist yet are fine, and nothing is created by checking.
    await checkOutputs([join(dir, 'new.onnx'), join(dir, 'new.log')]);
    expect(existsSync(join(dir, 'new.onnx'))).toBe(false);
    // A path ending in a slash names a folder, existing or not.
    await expect(checkOutputs([`${join(dir, 'newdir')}/`])).rejects.toThrow(/newdir\/: is a folder path; expected a file path/);
    await expect(checkOutputs([''])).rejects.toThrow(/is a folder path/);
  });

  it('a name at the file-system limit still gets a temporary beside it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'alrelu-out-'));
    const long = join(dir, `${'é'.repeat(120)}.json`);
    await writeFileAtomic(long, 'ok');
    expect(readFileSync(long, 'utf8')).toBe('ok');
    expect(readdirSync(dir)).toHaveLength(1);
  });
});

describe('a full disk', () => {
  // a 64 KiB file system of its own (needs root, as in CI; skipped, and said so, where mounting is not allowed)
  const dir = mkdtempSync(join(tmpdir(), 'alrelu-full-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]).status === 0;
  afterAll(() => {
    if (mounted) spawnSync('umount', [dir]);
  });
  const MNIST_CNN = join(ROOT, 'models/mnist-cnn.onnx');

  it.skipIf(!mounted)('convert -o and finetune --checkpoint: one error line naming the file and the cause, exit 2, nothing left there', async () => {
    const out = join(dir, 'm.onnx');
    const r = await runCli(['convert', MNIST_CNN, '-o', out]);
    expect(r.code).toBe(2);
    expect(errorLine(r)).toBe(`error: ${out}: cannot write: ENOSPC: no space left on device, write`);
    expect(readdirSync(dir)).toEqual([]);
    // the checkpoint (three copies of the parameters, about 600 KB) is written piece by piece
    const ckpt = join(dir, 'run.ckpt');
    const model = join(mkdtempSync(join(tmpdir(), 'alrelu-out-')), 'm.onnx');
    const f = await runCli(['finetune', MNIST_CNN, '--data', 'mnist', '--epochs', '1', '--max-steps', '2', '--checkpoint', ckpt, '-o', model, '--json']);
    expect(f.code).toBe(2);
    expect(errorLine(f)).toBe(`error: ${ckpt}: cannot write: ENOSPC: no space left on device, write`);
    expect(readdirSync(dir)).toEqual([]);
    expect(existsSync(model)).toBe(false);
  });
});
