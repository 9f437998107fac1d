/**
 * The Python peers (onnx, torch) are optional: found at /usr/bin/python3 (Debian's python3-onnx and
 * python3-torch) or $ALRELU_BENCH_PYTHON; a section that needs one says so and skips that part.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Python {
  bin: string;
  /** module -> version */
  versions: Record<string, string>;
}

/** The interpreter with every module in `modules`, or the reason there is none. */
export async function findPython(modules: string[]): Promise<Python | string> {
  const bin = process.env.ALRELU_BENCH_PYTHON ?? '/usr/bin/python3';
  if (!existsSync(bin)) return `${bin} not found`;
  const code = `import importlib, json\nout = {}\nfor m in ${JSON.stringify(modules)}:\n    try:\n        out[m] = importlib.import_module(m).__version__\n    except Exception as e:\n        out[m] = None\nprint(json.dumps(out))`;
  try {
    const { stdout } = await run(bin, ['-c', code], { timeout: 60_000 });
    const versions = JSON.parse(stdout) as Record<string, string | null>;
    const missing = modules.filter((m) => !versions[m]);
    if (missing.length) return `${bin} has no ${missing.join(', ')} (Debian: apt-get install ${missing.map((m) => `python3-${m}`).join(' ')})`;
    return { bin, versions: versions as Record<string, string> };
  } catch (e) {
    return `${bin} failed: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** Runs a Python script and parses the last stdout line as JSON. */
export async function runPythonJson<T>(py: Python, script: string, args: string[], env: Record<string, string> = {}): Promise<T> {
  const { stdout } = await run(py.bin, ['-c', script, ...args], { timeout: 600_000, maxBuffer: 16 << 20, env: { ...process.env, ...env } });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

/**
 * A Python process driven line by line: it prints one JSON line when ready, then answers each
 * command line with one JSON line. Lets a peer take turns with us in interleaved timing.
 */
export class PythonWorker {
  private lines: string[] = [];
  private waiting: ((line: string) => void)[] = [];
  private stderr = '';
  private exited: Error | undefined;

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const w = this.waiting.shift();
      if (w) w(line);
      else this.lines.push(line);
    });
    child.stderr.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    child.on('exit', (code) => {
      this.exited = new Error(`python peer exited (${code}): ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      for (const w of this.waiting.splice(0)) w('');
    });
  }

  static async start<T>(py: Python, script: string, args: string[], env: Record<string, string> = {}): Promise<{ worker: PythonWorker; ready: T }> {
    const worker = new PythonWorker(spawn(py.bin, ['-c', script, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
    return { worker, ready: await worker.next<T>() };
  }

  private async next<T>(): Promise<T> {
    const line = this.lines.shift() ?? (this.exited ? '' : await new Promise<string>((r) => this.waiting.push(r)));
    if (!line) throw this.exited ?? new Error('python peer closed its output');
    return JSON.parse(line) as T;
  }

  async call<T>(cmd: string): Promise<T> {
    if (this.exited) throw this.exited;
    this.child.stdin.write(`${cmd}\n`);
    return this.next<T>();
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.stdin.end();
    await done;
  }
}
