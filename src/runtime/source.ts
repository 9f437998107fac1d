/**
 * Model bytes plus external data files, for backends that cannot open files themselves (onnxruntime-web
 * in Node or in a page). Native onnxruntime-node opens paths directly and never needs this.
 */
import { readFileSync } from 'node:fs';
import { externalRef, isExternal, resolveLocation } from '../onnx/external.js';
import { readModel } from '../onnx/read.js';
import { allTensors } from '../onnx/walk.js';

export interface ModelSource {
  /** for messages */
  label: string;
  bytes: Uint8Array;
  /** external data files by their location as written in the model */
  external: { path: string; data: Uint8Array }[];
}

export async function modelSource(model: string | Uint8Array): Promise<ModelSource> {
  if (typeof model !== 'string') return { label: '<model bytes>', bytes: model, external: [] };
  const file = await readModel(model); // UserErrors for missing, corrupt and unsupported files
  const locations = new Set(
    allTensors(file.model)
      .filter(isExternal)
      .map((t) => externalRef(t).location),
  );
  const external = [...locations].map((path) => ({ path, data: readFileSync(resolveLocation(file.dir, path)) }));
  return { label: model, bytes: file.bytes, external };
}
