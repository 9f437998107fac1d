/**
 * Which Vulkan driver node `webgpu` (Dawn inside onnxruntime-node) runs on, and what to call it.
 *
 * Dawn reads VK_ICD_FILENAMES once, at the first adapter request of the process, and never retries; so
 * 'auto' asks a child process whether the system's drivers give an adapter before this process commits
 * to them, and otherwise points Dawn at SwiftShader. onnxruntime-node does not say which adapter Dawn
 * took, so the name comes from the driver chosen: its manifest, or the devices the system shows.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { UserError } from '../errors.js';
import { probeNodeEp } from './probe.js';
import type { AdapterInfo, WebGpuAdapterChoice } from './types.js';

/** Debian's chromium ships SwiftShader, a CPU Vulkan driver: WebGPU without a GPU (slow, correct). */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** The user's own driver list, by the variable that names it (VK_DRIVER_FILES is the loader's newer name, and wins). */
function exportedDrivers(env: NodeJS.ProcessEnv): { name: string; list: string } | undefined {
  for (const name of ['VK_DRIVER_FILES', 'VK_ICD_FILENAMES']) if (env[name]) return { name, list: env[name] };
  return undefined;
}

/** Where the Vulkan loader looks for driver manifests when VK_ICD_FILENAMES is unset (Linux). */
const ICD_DIRS = ['/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d', '/usr/share/vulkan/icd.d'];

/** A driver manifest by its file name: the CPU ones are SwiftShader and Mesa's lavapipe. */
export function describeIcd(path: string): { name: string; software: boolean } {
  const file = basename(path).toLowerCase();
  if (file.includes('swiftshader')) return { name: 'SwiftShader (Vulkan on the CPU)', software: true };
  if (file.startsWith('lvp_') || file.includes('lavapipe')) return { name: "lavapipe (Mesa's Vulkan on the CPU)", software: true };
  if (file.startsWith('nvidia')) return { name: 'NVIDIA Vulkan driver', software: false };
  if (file.startsWith('radeon')) return { name: 'Mesa RADV (AMD)', software: false };
  if (file.startsWith('intel')) return { name: 'Mesa ANV (Intel)', software: false };
  return { name: basename(path), software: false };
}

/** The NVIDIA kernel driver's version line, or undefined when no driver is loaded. */
export function nvidiaDriver(): string | undefined {
  try {
    return readFileSync('/proc/driver/nvidia/version', 'utf8').split('\n')[0]?.trim() || 'present';
  } catch {
    return undefined;
  }
}

/** Whether the kernel shows any GPU: the NVIDIA driver, or a DRM card. */
function gpuDevicePresent(): boolean {
  if (nvidiaDriver()) return true;
  try {
    return readdirSync('/sys/class/drm').some((n) => /^card\d+$/.test(n));
  } catch {
    return false;
  }
}

function manifests(): string[] {
  const out: string[] = [];
  for (const dir of ICD_DIRS) {
    try {
      for (const f of readdirSync(dir)) if (f.endsWith('.json')) out.push(`${dir}/${f}`);
    } catch {
      // a missing folder is the usual case
    }
  }
  return out;
}

/**
 * The system's drivers as Dawn would see them. Dawn prefers a discrete, then an integrated GPU over a CPU
 * driver, so with a GPU device present the adapter is taken to be hardware; without one, whatever works
 * is a CPU driver (lavapipe).
 */
export function systemDriver(env: NodeJS.ProcessEnv = process.env): { name: string; software: boolean } {
  const listed = exportedDrivers(env);
  if (listed) {
    const parts = listed.list.split(':').filter(Boolean).map(describeIcd);
    return { name: `${listed.name}=${listed.list}: ${parts.map((p) => p.name).join(', ')}`, software: parts.length > 0 && parts.every((p) => p.software) };
  }
  const drivers = manifests().map(describeIcd);
  const hardware = drivers.filter((d) => !d.software);
  const nvidia = nvidiaDriver();
  if (nvidia && hardware.some((d) => d.name.startsWith('NVIDIA'))) return { name: `NVIDIA (${nvidia})`, software: false };
  if (!gpuDevicePresent() || hardware.length === 0) {
    return { name: `the system's Vulkan drivers without a GPU device (${drivers.map((d) => d.name).join(', ') || 'none listed'})`, software: true };
  }
  return { name: `the system's Vulkan drivers (${hardware.map((d) => d.name).join(', ')})`, software: false };
}

/**
 * Where NVIDIA's container runtime mounts the driver's Vulkan manifest: outside the loader's default search
 * path, so the system's drivers alone show no GPU there (so on the lent H200 machines). With the NVIDIA
 * driver loaded, the first of these that exists.
 */
const NVIDIA_CONTAINER_ICDS = ['/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json', '/usr/local/nvidia/icd.d/nvidia_icd.json'];

export function nvidiaContainerIcd(): string | undefined {
  return nvidiaDriver() ? NVIDIA_CONTAINER_ICDS.find((f) => existsSync(f)) : undefined;
}

let systemProbe: Promise<{ ok: boolean; error?: string }> | undefined;

/** Whether the system's drivers (VK_ICD_FILENAMES unset) give Dawn an adapter, asked once per process, in a child. */
function probeSystemDrivers(env: NodeJS.ProcessEnv): Promise<{ ok: boolean; error?: string }> {
  if (!systemProbe) {
    const clean = { ...env };
    delete clean.VK_ICD_FILENAMES;
    systemProbe = probeNodeEp('webgpu', clean);
  }
  return systemProbe;
}

/**
 * The driver a node webgpu runtime uses: `icd` is what VK_ICD_FILENAMES must be set to (undefined: leave
 * the environment as it is); `unavailable`, the probe's error when the system's drivers give no adapter and
 * there is nothing to fall back to (the caller words it; Dawn in this process was never asked, so its
 * warnings stay in the child). A VK_ICD_FILENAMES the user exported is theirs and stands; `vulkanIcd`
 * (library callers) overrides everything. `started`: Dawn already chose in this process; nothing can change.
 */
export async function chooseVulkanDriver(
  choice: WebGpuAdapterChoice,
  vulkanIcd: string | undefined,
  started: boolean,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ icd?: string; adapter: AdapterInfo; unavailable?: string }> {
  if (vulkanIcd !== undefined) return { icd: vulkanIcd, adapter: { ...describeIcd(vulkanIcd), choice } };
  const system = (): AdapterInfo => ({ ...systemDriver(env), choice });
  if (started) {
    const current = system();
    if (choice === 'gpu' && current.software)
      throw new UserError('webgpu', `WebGPU already started in this process on ${current.name}, a software driver; it cannot switch to a GPU`);
    return { adapter: current };
  }
  if (choice === 'swiftshader') {
    if (!existsSync(SWIFTSHADER_ICD))
      throw new UserError('webgpu', `SwiftShader's Vulkan driver not found at ${SWIFTSHADER_ICD}; fix: apt-get install -y chromium libvulkan1`);
    return { icd: SWIFTSHADER_ICD, adapter: { ...describeIcd(SWIFTSHADER_ICD), choice } };
  }
  // A driver list the user exported is theirs: no probe, no fallback (the loader would ignore ours under VK_DRIVER_FILES).
  const exported = exportedDrivers(env);
  if (exported) {
    const mine = system();
    if (choice === 'gpu' && mine.software) {
      throw new UserError(
        'webgpu',
        `no hardware WebGPU adapter: ${mine.name} is a software driver; fix: unset ${exported.name} to use the system's Vulkan drivers`,
      );
    }
    return { adapter: mine };
  }
  const probe = await probeSystemDrivers(env);
  if (probe.ok) return { adapter: system() };
  const nvidia = nvidiaContainerIcd();
  if (nvidia) {
    if ((await probeNodeEp('webgpu', { ...env, VK_ICD_FILENAMES: nvidia })).ok)
      return { icd: nvidia, adapter: { name: `NVIDIA (${nvidiaDriver()}, ${nvidia})`, software: false, choice } };
  }
  if (choice === 'gpu' || !existsSync(SWIFTSHADER_ICD)) return { adapter: system(), unavailable: probe.error ?? 'no adapter' };
  return { icd: SWIFTSHADER_ICD, adapter: { ...describeIcd(SWIFTSHADER_ICD), choice, fallback: "no WebGPU adapter with the system's Vulkan drivers" } };
}
