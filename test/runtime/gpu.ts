/** Whether this machine has a GPU at all, decided without asking any runtime (tests of the no-GPU paths run only without one). */
import { existsSync, readdirSync } from 'node:fs';

export function hasGpuDevice(): boolean {
  if (existsSync('/proc/driver/nvidia/version')) return true;
  try {
    return readdirSync('/sys/class/drm').some((n) => /^card\d+$/.test(n));
  } catch {
    return false;
  }
}
