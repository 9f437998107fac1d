/**
 * A model may read only files inside its own folder, by real path, and only regular files: links to the
 * outside (to a file, through a folder, in chains, through `..`), FIFOs, sockets, devices and procfs are
 * refused, at read time by every command and again when the writer copies or inlines. A secret with a
 * unique marker sits beside the model's folder; no output may ever hold it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadReferenceCases } from '../../src/data/reference.js';
import { UserError } from '../../src/errors.js';
import { readInside, RefusedFile, statInside } from '../../src/fsguard.js';
import { readExternalBytes } from '../../src/onnx/external.js';
import { readModel } from '../../src/onnx/read.js';
import { decodeModel, encodeTensor } from '../../src/onnx/schema.js';
import { writeModel } from '../../src/onnx/write.js';
import { errorLine, runCli } from '../cli.js';
import { filesUnder, holding, secret, tmp, weights, writeGemm } from './links.js';

async function rejection(p: Promise<unknown>): Promise<UserError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(UserError);
  return e as UserError;
}

/** A fresh `root` with `root/model/` (the model's folder) and `root/outside/secret.bin`. */
function scene() {
  const root = tmp();
  const model = join(root, 'model');
  mkdirSync(model);
  return { root, model, ...secret(root) };
}
type Scene = ReturnType<typeof scene>;

/** Hostile layouts: each builds its files in a scene and names the location the model will carry. */
const refused: { name: string; setup: (s: Scene) => string; cause: RegExp }[] = [
  {
    name: 'a link to a file outside, relative target',
    setup: (s) => (symlinkSync('../outside/secret.bin', join(s.model, 'w.bin')), 'w.bin'),
    cause: /external data 'w\.bin' for tensor 'w' resolves outside the model's folder \(through a symbolic link\)/,
  },
  {
    name: 'a link to a file outside, absolute target',
    setup: (s) => (symlinkSync(s.file, join(s.model, 'w.bin')), 'w.bin'),
    cause: /'w\.bin'.*resolves outside the model's folder/,
  },
  {
    name: 'a linked folder on the path',
    setup: (s) => (symlinkSync(s.dir, join(s.model, 'sub')), 'sub/secret.bin'),
    cause: /'sub\/secret\.bin'.*resolves outside/,
  },
  {
    name: 'a chain of links: inside -> outside -> the secret',
    setup: (s) => {
      symlinkSync('../outside/hop', join(s.model, 'w.bin'));
      symlinkSync('hop2', join(s.dir, 'hop'));
      symlinkSync(s.file, join(s.dir, 'hop2'));
      return 'w.bin';
    },
    cause: /resolves outside/,
  },
  {
    name: "'..' after a linked folder (the text stays inside, the OS does not)",
    setup: (s) => {
      mkdirSync(join(s.dir, 'deep'));
      symlinkSync(join(s.dir, 'deep'), join(s.model, 'sub'));
      // A decoy with the name the text points at: reading it would hide that the OS goes elsewhere.
      writeFileSync(join(s.model, 'secret.bin'), weights());
      return 'sub/../secret.bin';
    },
    cause: /'sub\/\.\.\/secret\.bin'.*resolves outside/,
  },
  {
    name: "a sibling folder whose name starts with the model folder's",
    setup: (s) => {
      mkdirSync(join(s.root, 'model-evil'));
      renameSync(s.file, join(s.root, 'model-evil', 'secret.bin'));
      symlinkSync('../model-evil/secret.bin', join(s.model, 'w.bin'));
      return 'w.bin';
    },
    cause: /resolves outside/,
  },
  {
    name: '/dev/zero through a link',
    setup: (s) => (symlinkSync('/dev/zero', join(s.model, 'w.bin')), 'w.bin'),
    cause: /resolves outside/,
  },
  {
    name: '/proc/self/environ through a link',
    setup: (s) => (symlinkSync('/proc/self/environ', join(s.model, 'w.bin')), 'w.bin'),
    cause: /resolves outside/,
  },
  {
    name: 'a loop of links',
    setup: (s) => (symlinkSync('b', join(s.model, 'a')), symlinkSync('a', join(s.model, 'b')), 'a'),
    cause: /'a'.*loop of symbolic links/,
  },
  {
    name: 'a FIFO inside the folder',
    setup: (s) => (execFileSync('mkfifo', [join(s.model, 'w.bin')]), 'w.bin'),
    cause: /'w\.bin'.*is a FIFO \(named pipe\), not a regular file/,
  },
  {
    name: 'a folder named like the data file',
    setup: (s) => (mkdirSync(join(s.model, 'w.bin')), 'w.bin'),
    cause: /is a folder, not a regular file/,
  },
  {
    name: 'the model folder itself',
    setup: () => '.',
    cause: /is the model's folder itself/,
  },
  {
    name: 'a folder link that leaves and comes back, then goes out again',
    setup: (s) => (symlinkSync('..', join(s.model, 'up')), 'up/outside/secret.bin'),
    cause: /resolves outside/,
  },
  {
    name: 'a trailing slash after a file',
    setup: (s) => (writeFileSync(join(s.model, 'w.bin'), weights()), 'w.bin/'),
    cause: /is missing \(a part of its path is not a folder\)/,
  },
  {
    name: 'a NUL byte in the location',
    setup: (s) => (writeFileSync(join(s.model, 'w.bin'), weights()), 'w.bin\0../../outside/secret.bin'),
    cause: /NUL byte/,
  },
];

describe('external data: reading refuses what leaves the model folder or is not a regular file', () => {
  for (const c of refused) {
    it(c.name, async () => {
      const s = scene();
      const file = writeGemm(s.model, c.setup(s));
      const e = await rejection(readModel(file));
      expect(e.subject).toBe(file);
      expect(e.cause_).toMatch(c.cause);
    });
  }

  it('a socket inside the folder', async () => {
    const s = scene();
    const server: Server = createServer();
    await new Promise<void>((r) => server.listen(join(s.model, 'w.sock'), r));
    try {
      const e = await rejection(readModel(writeGemm(s.model, 'w.sock')));
      expect(e.cause_).toMatch(/'w\.sock'.*is a socket, not a regular file/);
    } finally {
      server.close();
    }
  });

  it('a device node inside the folder (where this user may make one)', async () => {
    const s = scene();
    try {
      execFileSync('mknod', [join(s.model, 'w.bin'), 'c', '1', '5'], { stdio: 'ignore' }); // /dev/zero's numbers
    } catch {
      return; // not root: no device can be made, and none can be shipped inside a download either
    }
    const e = await rejection(readModel(writeGemm(s.model, 'w.bin')));
    expect(e.cause_).toMatch(/'w\.bin'.*is a device, not a regular file/);
  });

  it('procfs entries are refused even inside the folder that holds them', () => {
    // /proc/self/environ reports 0 bytes but reads the environment: its size says nothing.
    const ref = { what: 'the file', folder: 'the folder' };
    expect(() => readInside('/proc/self', 'environ', ref)).toThrow(RefusedFile);
    expect(() => readInside('/proc/self', 'environ', ref)).toThrow(/kernel pseudo-file/);
    expect(() => statInside('/proc/self', 'status', ref)).toThrow(/kernel pseudo-file/);
    expect(() => statInside('/sys/kernel', 'mm/transparent_hugepage/enabled', ref)).toThrow(/kernel pseudo-file|is missing/);
  });
});

describe('external data: links that stay inside still work', () => {
  /** Each layout holds the weights inside the model's folder by real path, reached in an unusual way. */
  const accepted: { name: string; setup: (s: Scene) => { location: string; modelDir?: string } }[] = [
    {
      name: 'a link to a file in a subfolder',
      setup: (s) => {
        mkdirSync(join(s.model, 'data'));
        writeFileSync(join(s.model, 'data', 'real.bin'), weights());
        symlinkSync('data/real.bin', join(s.model, 'w.bin'));
        return { location: 'w.bin' };
      },
    },
    {
      name: 'the model folder itself reached through a link',
      setup: (s) => {
        writeFileSync(join(s.model, 'w.bin'), weights());
        symlinkSync(s.model, join(s.root, 'via-link'));
        return { location: 'w.bin', modelDir: join(s.root, 'via-link') };
      },
    },
    {
      name: "'./' and doubled slashes",
      setup: (s) => {
        mkdirSync(join(s.model, 'a'));
        writeFileSync(join(s.model, 'a', 'w.bin'), weights());
        return { location: './a//w.bin' };
      },
    },
    {
      name: 'a link that leaves and comes back in',
      setup: (s) => {
        writeFileSync(join(s.model, 'w.bin'), weights());
        symlinkSync('..', join(s.model, 'up'));
        return { location: 'up/model/w.bin' };
      },
    },
    {
      name: "'..' after a real subfolder",
      setup: (s) => {
        mkdirSync(join(s.model, 'sub'));
        writeFileSync(join(s.model, 'w.bin'), weights());
        return { location: 'sub/../w.bin' };
      },
    },
  ];

  for (const c of accepted) {
    it(c.name, async () => {
      const s = scene();
      const { location, modelDir } = c.setup(s);
      writeGemm(s.model, location);
      const mf = await readModel(join(modelDir ?? s.model, 'model.onnx'));
      const w = mf.model.graph!.initializer!.find((t) => t.name === 'w')!;
      expect(Buffer.from(readExternalBytes(mf.dir, w)).equals(weights())).toBe(true);
      // Inlined and copied beside an output elsewhere, the weights are the file's bytes.
      const out = tmp();
      await writeModel(mf.model, join(out, 'inline.onnx'), { sourceDir: mf.dir, externalData: 'inline' });
      const inlined = decodeModel(readFileSync(join(out, 'inline.onnx'))).graph!.initializer!.find((t) => t.name === 'w')!;
      expect(Buffer.from(inlined.rawData!).equals(weights())).toBe(true);
      if (!location.includes('..') && !location.startsWith('up/')) {
        const res = await writeModel(mf.model, join(out, 'kept.onnx'), { sourceDir: mf.dir });
        expect(res.dataFiles).toHaveLength(1);
        expect(readFileSync(res.dataFiles[0]!).equals(weights())).toBe(true);
      }
    });
  }
});

describe('external data: the writer checks again when it reads', () => {
  // The model was fine when read; the data file became a link to the secret before writing.
  async function swapped() {
    const s = scene();
    writeFileSync(join(s.model, 'w.bin'), weights());
    const mf = await readModel(writeGemm(s.model, 'w.bin'));
    rmSync(join(s.model, 'w.bin'));
    symlinkSync(s.file, join(s.model, 'w.bin'));
    return { s, mf, out: tmp() };
  }

  for (const mode of ['keep', 'inline', 'all'] as const) {
    it(`externalData: ${mode}`, async () => {
      const { s, mf, out } = await swapped();
      const e = await rejection(writeModel(mf.model, join(out, 'o.onnx'), { sourceDir: mf.dir, externalData: mode, sizeThreshold: 0 }));
      expect(e.message).toMatch(/'w\.bin'.*resolves outside the model's folder/);
      expect(filesUnder(out)).toEqual([]);
      expect(holding(out, s.marker)).toEqual([]);
    });
  }
});

describe('CLI: a model whose external data leads to a secret', () => {
  /** Runs a command, then checks the contract: exit 2, one line naming the model and the location,
   * no output file, and the secret in no file of the output folder nor on the terminal. */
  async function refusedRun(args: (file: string, out: string) => string[], location: string, setup: (s: Scene) => void) {
    const s = scene();
    setup(s);
    const file = writeGemm(s.model, location);
    const out = tmp();
    const r = await runCli(args(file, out), { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(2);
    const line = errorLine(r);
    expect(line).toContain(file);
    expect(line).toContain(`'${location}'`);
    expect(filesUnder(out)).toEqual([]);
    expect(holding(out, s.marker)).toEqual([]);
    expect(holding(s.model, s.marker)).toEqual([]); // nothing written beside the model either
    expect(r.stdout.includes(s.marker.toString()) || r.stderr.includes(s.marker.toString())).toBe(false);
    return line;
  }

  const fileLink = (s: Scene) => symlinkSync(s.file, join(s.model, 'w.bin'));
  const folderLink = (s: Scene) => symlinkSync(s.dir, join(s.model, 'sub'));
  const chain = (s: Scene) => {
    symlinkSync('hop', join(s.model, 'w.bin'));
    symlinkSync('../outside/secret.bin', join(s.model, 'hop'));
  };
  const dotdot = (s: Scene) => {
    mkdirSync(join(s.dir, 'deep'));
    symlinkSync(join(s.dir, 'deep'), join(s.model, 'sub'));
  };
  const layouts: [string, string, (s: Scene) => void][] = [
    ['a file link', 'w.bin', fileLink],
    ['a folder link', 'sub/secret.bin', folderLink],
    ['a chain', 'w.bin', chain],
    ["'..' through a linked folder", 'sub/../secret.bin', dotdot],
  ];

  for (const [name, location, setup] of layouts) {
    it(`inspect and convert (kept, inlined, moved) refuse ${name}`, async () => {
      expect(await refusedRun((f) => ['inspect', f], location, setup)).toMatch(/resolves outside the model's folder/);
      await refusedRun((f, o) => ['convert', f, '-o', join(o, 'x.onnx')], location, setup);
      await refusedRun((f, o) => ['convert', f, '--inline-data', '-o', join(o, 'x.onnx')], location, setup);
      await refusedRun((f, o) => ['convert', f, '--external-data', '-o', join(o, 'x.onnx')], location, setup);
    });
  }

  it('finetune and eval refuse a file link', async () => {
    await refusedRun((f, o) => ['finetune', f, '--data', 'iris', '--epochs', '1', '-o', join(o, 'ft.onnx')], 'w.bin', fileLink);
    await refusedRun((f, o) => ['eval', f, '--data', 'iris', '--ep', 'cpu', '--report', join(o, 'r.html')], 'w.bin', fileLink);
    await refusedRun((f, o) => ['eval', f, '--data', 'iris', '--ep', 'wasm', '--report', join(o, 'r.html')], 'w.bin', fileLink);
  });

  it('a FIFO ends in a clean error, not a hang', async () => {
    const line = await refusedRun(
      (f) => ['inspect', f],
      'w.bin',
      (s) => execFileSync('mkfifo', [join(s.model, 'w.bin')]),
    );
    expect(line).toMatch(/FIFO/);
    await refusedRun(
      (f, o) => ['eval', f, '--data', 'iris', '--ep', 'cpu', '--report', join(o, 'r.html')],
      'w.bin',
      (s) => execFileSync('mkfifo', [join(s.model, 'w.bin')]),
    );
  });

  it('a link that stays inside converts, and the copy beside the output is the weights', async () => {
    const s = scene();
    mkdirSync(join(s.model, 'data'));
    writeFileSync(join(s.model, 'data', 'real.bin'), weights());
    symlinkSync('data/real.bin', join(s.model, 'w.bin'));
    const file = writeGemm(s.model, 'w.bin');
    const out = tmp();
    const r = await runCli(['convert', file, '-o', join(out, 'x.onnx'), '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(out, 'w.bin')).equals(weights())).toBe(true);
    const e = await runCli(['eval', file, join(out, 'x.onnx'), '--data', 'iris', '--ep', 'cpu', '--quiet']);
    expect(e.code, e.stderr).toBe(0);
  });
});

describe('reference .pb files stay inside the data folder', () => {
  let s: Scene;
  let set: string;
  const pb = (name: string, data: Buffer) => encodeTensor({ name, dims: [data.length / 4], dataType: 1, rawData: data });

  beforeAll(() => {
    s = scene();
    set = join(s.model, 'test_data_set_0');
    mkdirSync(set);
    writeFileSync(join(set, 'output_0.pb'), pb('y', Buffer.alloc(12)));
    // the secret as a well-formed tensor: if followed, its bytes would become an input the report shows
    writeFileSync(join(s.dir, 'input_0.pb'), pb('x', Buffer.concat([s.marker, s.marker]).subarray(0, 16)));
  });
  afterAll(() => rmSync(s.root, { recursive: true, force: true }));

  const place = (what: 'link' | 'fifo' | 'external' | 'file') => {
    rmSync(join(set, 'input_0.pb'), { force: true });
    if (what === 'link') symlinkSync(join(s.dir, 'input_0.pb'), join(set, 'input_0.pb'));
    if (what === 'fifo') execFileSync('mkfifo', [join(set, 'input_0.pb')]);
    if (what === 'file') writeFileSync(join(set, 'input_0.pb'), pb('x', Buffer.from(new Float32Array([1, 2, 3, 4]).buffer)));
    if (what === 'external') {
      writeFileSync(
        join(set, 'input_0.pb'),
        encodeTensor({ name: 'x', dims: [4], dataType: 1, dataLocation: 1, externalData: [{ key: 'location', value: '../../outside/secret.bin' }] }),
      );
    }
  };

  it('a linked .pb, a FIFO and a .pb with external data are refused, naming the file', async () => {
    for (const [what, cause] of [
      ['link', /resolves outside the reference data's folder/],
      ['fifo', /FIFO/],
      ['external', /external file, which is not supported/],
    ] as const) {
      place(what);
      const e = await rejection(loadReferenceCases(s.model));
      expect(e.subject).toBe(join(set, 'input_0.pb'));
      expect(e.cause_).toMatch(cause);
      // naming the set folder itself: the root is then the set
      expect((await rejection(loadReferenceCases(set))).cause_).toMatch(cause);
    }
  });

  it('a regular .pb loads, also through a linked data folder', async () => {
    place('file');
    symlinkSync(s.model, join(s.root, 'data-link'));
    for (const dir of [s.model, join(s.root, 'data-link')]) {
      const [c] = await loadReferenceCases(dir);
      expect([...(c!.inputs.x!.data as Float32Array)]).toEqual([1, 2, 3, 4]);
    }
  });

  it('eval on a linked .pb exits 2 and shows nothing of the target', async () => {
    place('link');
    const model = writeGemm(s.model, 'w.bin');
    writeFileSync(join(s.model, 'w.bin'), weights());
    const out = tmp();
    const r = await runCli(['eval', model, '--data', set, '--ep', 'cpu', '--report', join(out, 'r.html')]);
    expect(r.code, r.stderr).toBe(2);
    expect(errorLine(r)).toContain(join(set, 'input_0.pb'));
    expect(readdirSync(out)).toEqual([]);
    expect(r.stdout.includes(s.marker.toString())).toBe(false);
    expect(existsSync(join(out, 'r.html'))).toBe(false);
  });
});

describe('the model file itself', () => {
  it('a FIFO or a device named as the model is refused at once, not read forever', async () => {
    const dir = tmp();
    execFileSync('mkfifo', [join(dir, 'pipe.onnx')]);
    expect((await rejection(readModel(join(dir, 'pipe.onnx')))).cause_).toMatch(/is a FIFO \(named pipe\), not a regular file/);
    expect((await rejection(readModel('/dev/zero'))).cause_).toMatch(/is a device, not a regular file/);
  });
});
