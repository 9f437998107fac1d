/**
 * Fitting a data set to a model's input: which input gets the samples, in what shape, and how many
 * samples per run the batch dimension allows. Pure, so every mismatch message can be tested alone.
 */
import { elementCount, floatToHalf } from '../onnx/tensor.js';
import { UserError } from '../errors.js';
import type { IoMeta, TensorType, TypedArray } from './types.js';
import { shapeText } from './tensor.js';

/**
 * A data set that does not fit the model (or the other way round). Thrown, never recorded per
 * provider: it is the same on every provider and the user has to change the command.
 */
export class DataMismatchError extends UserError {}

/** dynamic: batch dimension symbolic; fixed: fixed batch > 1 (last run zero-padded); single: one sample per run */
export type Batching = 'dynamic' | 'fixed' | 'single';

/** How samples go into a model input, known before any run, and how to build each run's tensor. */
export interface FeedPlan {
  /** the input that receives the samples */
  input: string;
  /** the input's declared shape (strings are symbolic dimensions) */
  declaredShape: (number | string)[];
  batching: Batching;
  batchSize: number;
  /** dims of one sample as fed (the data's sample shape, or the model's when only a reshape differs) */
  sampleDims: number[];
  /** whether the model input has a leading batch dimension at all */
  hasBatchDim: boolean;
  type: TensorType;
}

const isFixed = (d: number | string): d is number => typeof d === 'number' && d > 0;

function describeInputs(inputs: IoMeta[]): string {
  return inputs.map((i) => `${i.name} ${shapeText(i.shape)}`).join(', ');
}

/** Picks the input that receives the data: the named one, the only one, or the only one whose shape fits. */
export function pickInput(inputs: IoMeta[], sampleShape: number[], name: string | undefined, model: string): IoMeta {
  if (inputs.length === 0) throw new DataMismatchError(model, 'the model has no inputs to feed data to');
  if (name !== undefined) {
    const found = inputs.find((i) => i.name === name);
    if (!found) throw new DataMismatchError(`input=${name}`, `no such input in ${model}; expected one of: ${describeInputs(inputs)}`);
    return found;
  }
  if (inputs.length === 1) return inputs[0]!;
  const fitting = inputs.filter((i) => fitSample(i.shape, sampleShape) !== null);
  if (fitting.length === 1) return fitting[0]!;
  throw new DataMismatchError(
    model,
    `the model has ${inputs.length} inputs (${describeInputs(inputs)}) and ${fitting.length ? 'several' : 'none'} fit samples of shape ${shapeText(sampleShape)}; choose one with --input NAME`,
  );
}

/**
 * How one sample of `sampleShape` goes into an input declared as `declared`, or null if it cannot.
 * Tried in order: the input is exactly one sample (no batch axis); the input is a batch of samples of
 * the same rank (symbolic dims take the data's size); the input is a batch of a fixed shape with the
 * same number of elements (e.g. [N,784] fed from 28x28 images: a reshape, not a transpose).
 */
export function fitSample(declared: (number | string)[], sampleShape: number[]): { sampleDims: number[]; hasBatchDim: boolean } | null {
  if (declared.length === sampleShape.length && declared.every((d, i) => d === sampleShape[i])) {
    return { sampleDims: [...sampleShape], hasBatchDim: false };
  }
  if (declared.length === 0) return null;
  const rest = declared.slice(1);
  if (rest.length === sampleShape.length && rest.every((d, i) => !isFixed(d) || d === sampleShape[i])) {
    return { sampleDims: [...sampleShape], hasBatchDim: true };
  }
  if (rest.every(isFixed) && elementCount(rest as number[]) === elementCount(sampleShape) && reshapeKeepsOrder(rest as number[], sampleShape)) {
    return { sampleDims: rest as number[], hasBatchDim: true };
  }
  return null;
}

/**
 * A reshape that cannot scramble the data: flattening or unflattening (row-major), or adding/removing
 * axes of size 1. Anything else with the same element count ([3,32,32] as [32,32,3]) is a layout
 * change and must be asked for.
 */
function reshapeKeepsOrder(to: number[], from: number[]): boolean {
  if (to.length === 1 || from.length === 1) return true;
  const squeeze = (d: number[]) => d.filter((x) => x !== 1);
  const a = squeeze(to);
  const b = squeeze(from);
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Float32 samples as the typed array each feedable element type needs (integers rounded). Its keys are
 * the element types planFeed accepts.
 */
const CASTS: Partial<Record<TensorType, (x: Float32Array) => TypedArray>> = {
  float32: (x) => x,
  float64: (x) => Float64Array.from(x),
  float16: (x) => Uint16Array.from(x, floatToHalf),
  int8: (x) => Int8Array.from(x, Math.round),
  uint8: (x) => Uint8Array.from(x, Math.round),
  int16: (x) => Int16Array.from(x, Math.round),
  uint16: (x) => Uint16Array.from(x, Math.round),
  int32: (x) => Int32Array.from(x, Math.round),
  uint32: (x) => Uint32Array.from(x, Math.round),
};

/** The complete plan for feeding `sampleShape` samples to `input`, or a DataMismatchError saying why not. */
export function planFeed(input: IoMeta, sampleShape: number[], requestedBatch: number): FeedPlan {
  const fit = fitSample(input.shape, sampleShape);
  if (!fit) {
    const rest = input.shape.slice(1);
    // The commonest mismatch: channels-last model fed channels-first images (or the reverse).
    let hint = '';
    if (sampleShape.length === 3 && rest.length === 3 && rest.every(isFixed)) {
      const [s0, s1, s2] = sampleShape as [number, number, number];
      if (rest[0] === s1 && rest[1] === s2 && rest[2] === s0) hint = '; the model wants channels last: try --layout nhwc';
      if (rest[0] === s2 && rest[1] === s0 && rest[2] === s1) hint = '; the model wants channels first: try --layout nchw';
      // Image folders load as RGB unless told otherwise.
      if (rest[1] === s1 && rest[2] === s2 && rest[0] === 1 && s0 === 3) hint = '; the model wants one channel: for an image folder, try --channels gray';
      if (rest[1] === s1 && rest[2] === s2 && rest[0] === 3 && s0 === 1) hint = '; the model wants three channels: for an image folder, try --channels rgb';
    }
    throw new DataMismatchError(
      `input ${input.name}`,
      `expected samples of shape ${shapeText(input.shape.slice(1))} (input ${shapeText(input.shape)}), found ${shapeText(sampleShape)}${hint}`,
    );
  }
  if (input.type !== 'unknown' && !CASTS[input.type]) {
    throw new DataMismatchError(`input ${input.name}`, `expected numeric data, but the model input is ${input.type}`);
  }
  const type: TensorType = input.type === 'unknown' ? 'float32' : input.type;
  const base = { input: input.name, declaredShape: input.shape, sampleDims: fit.sampleDims, hasBatchDim: fit.hasBatchDim, type };
  if (!fit.hasBatchDim) return { ...base, batching: 'single', batchSize: 1 };
  const d0 = input.shape[0]!;
  if (!isFixed(d0)) return { ...base, batching: 'dynamic', batchSize: requestedBatch };
  return { ...base, batching: d0 === 1 ? 'single' : 'fixed', batchSize: d0 };
}

/** The data's model inputs other than the fed one must not be required. */
export function checkOtherInputs(inputs: IoMeta[], fed: string, model: string): void {
  const others = inputs.filter((i) => i.name !== fed);
  if (others.length) {
    throw new DataMismatchError(model, `the model also requires input(s) ${describeInputs(others)}, which the data does not provide (it feeds only ${fed})`);
  }
}

/** Float32 samples as the typed array the input's element type needs (integers rounded). */
export function castSamples(x: Float32Array, type: TensorType): TypedArray {
  const cast = CASTS[type];
  if (!cast) throw new DataMismatchError(`${type} input`, 'cannot feed float data to this element type');
  return cast(x);
}
