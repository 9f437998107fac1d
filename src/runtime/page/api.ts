/**
 * The runner's API as the page exposes it (window.__alrelu, and the module's own exports for the serve
 * page): runner.ts implements it, BrowserRuntime and serve/remote.ts call it. Types only.
 */
import type { IoMeta } from '../types.js';

export interface PageInfo {
  crossOriginIsolated: boolean;
  threads: number;
  gpu: boolean;
  /** WebGPU adapter as vendor/architecture/description, null when none */
  adapter: string | null;
  /** the adapter is a fallback (CPU) one such as SwiftShader */
  software?: boolean;
}

/** An external data file of a model: the name the model gives it and the URL that serves it. */
export interface ExternalFile {
  path: string;
  url: string;
}

export interface PageApi {
  init(threads: number): Promise<PageInfo>;
  load(modelUrl: string, external: ExternalFile[], ep: string, optimization: string): Promise<{ id: number; inputs: IoMeta[]; outputs: IoMeta[] }>;
  /** resolves to the milliseconds session.run took inside the page (no HTTP transfer) */
  run(id: number, feedsUrl: string, resultUrl: string): Promise<number>;
  release(id: number): Promise<void>;
}
