/**
 * The Relu self-test of one onnxruntime-node EP, run in a child process: an EP that crashes or hangs on
 * this machine (a broken Vulkan or CUDA driver) takes the child down, never the command. doctor and the
 * WebGPU adapter choice (vulkan.ts) both ask it.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { messageOf } from '../errors.js';
import { PROBE_EXPECTED, PROBE_INPUT, probeModel } from './models.js';

/** What one child probe saw. */
export interface ProbeResult {
  ok: boolean;
  error?: string;
  version?: string;
  /** the native library's own warnings (Dawn explains rejected Vulkan drivers there) */
  stderr: string;
}

// Plain JavaScript so it runs under bare `node` whether alrelu runs from dist/ or from sources under tsx.
const PROBE_JS = String.raw`
import { readFileSync } from 'node:fs';
const a = JSON.parse(readFileSync(0, 'utf8'));
const mod = await import(a.ort);
const ort = mod.default ?? mod;
const out = { ok: false, version: ort.env?.versions?.node ?? ort.env?.versions?.common };
try {
  const ep = a.ep === 'cuda' ? { name: 'cuda', deviceId: 0 } : a.ep;
  const s = await ort.InferenceSession.create(Buffer.from(a.model, 'base64'), { executionProviders: [ep], logSeverityLevel: 3 });
  const r = await s.run({ x: new ort.Tensor('float32', Float32Array.from(a.input), a.dims) });
  const y = Array.from(r.y.data);
  out.ok = y.length === a.expected.length && y.every((v, i) => Math.abs(v - a.expected[i]) < 1e-6);
  if (!out.ok) out.error = 'a Relu self-test gave wrong results (' + y.join(', ') + ')';
  await s.release();
} catch (e) {
  out.error = String(e && e.message ? e.message : e);
}
process.stdout.write(JSON.stringify(out));
`;

function ortNodeUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('onnxruntime-node')).href;
}

/** Runs the Relu self-test on one onnxruntime-node EP in a child process. */
export function probeNodeEp(ep: 'cpu' | 'cuda' | 'webgpu', env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<ProbeResult> {
  const args = JSON.stringify({
    ort: ortNodeUrl(),
    ep,
    model: Buffer.from(probeModel()).toString('base64'),
    input: Array.from(PROBE_INPUT.data as Float32Array),
    dims: PROBE_INPUT.dims,
    expected: Array.from(PROBE_EXPECTED),
  });
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', PROBE_JS], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, error: messageOf(e), stderr });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      try {
        resolve({ ...(JSON.parse(stdout) as Omit<ProbeResult, 'stderr'>), stderr });
      } catch {
        const why = signal === 'SIGKILL' ? `the probe did not finish within ${timeoutMs / 1000} s` : `the probe crashed (${signal ?? `exit code ${code}`})`;
        resolve({ ok: false, error: `${why}${stderr.trim() ? `: ${lastLines(stderr, 1)}` : ''}`, stderr });
      }
    });
    child.stdin.end(args);
  });
}

function lastLines(s: string, n: number): string {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-n)
    .join(' ');
}
