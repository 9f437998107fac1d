/**
 * The size image-folder images are resized to: the one asked for, else the height and width the model's
 * input declares (a pretrained ImageNet model takes 224x224 whatever the photos are), else the first
 * image's. Pure over the model, so eval, serve and finetune pick it the same way and say why.
 */
import { UserError } from '../errors.js';
import type { ModelProto, ValueInfo } from '../onnx/types.js';
import { int } from '../onnx/types.js';

export type Layout = 'nchw' | 'nhwc';

export interface ImageSizeChoice {
  height: number;
  width: number;
  /** asked for, the model input's static dims, or the first image's size */
  from: 'option' | 'model' | 'first image';
  /** why, for people: which input declares what, or why the model could not say */
  why: string;
}

/** What the model says about the image size: a [height, width], or why it says nothing. */
export interface ModelImageSize {
  size?: [number, number];
  why: string;
}

function declaredDims(v: ValueInfo): (number | string)[] | undefined {
  const dims = v.type?.tensorType?.shape?.dim;
  if (!dims) return undefined;
  return dims.map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && int(d.dimValue) > 0 ? int(d.dimValue) : '?'));
}

const shapeText = (dims: (number | string)[]) => `[${dims.join(',')}]`;

/**
 * The static [height, width] of the model input that takes the data (`input`, else the only graph input
 * that is not an initializer), read as `layout` (nchw: [N,C,H,W], nhwc: [N,H,W,C]); undefined with the
 * reason where the input is not a 4-d image batch or its height or width is symbolic.
 */
export function modelImageSize(model: ModelProto, o: { input?: string; layout?: Layout } = {}): ModelImageSize {
  const g = model.graph;
  const inits = new Set((g?.initializer ?? []).map((t) => t.name));
  const inputs = (g?.input ?? []).filter((v) => v.name && !inits.has(v.name));
  const named = o.input !== undefined ? inputs.find((v) => v.name === o.input) : inputs.length === 1 ? inputs[0] : undefined;
  if (!named) {
    return {
      why: o.input !== undefined ? `the model has no input '${o.input}'` : `the model has ${inputs.length} inputs, so none is known to take the images`,
    };
  }
  const dims = declaredDims(named);
  const layout = o.layout ?? 'nchw';
  if (!dims) return { why: `the model's input '${named.name}' declares no shape` };
  if (dims.length !== 4) return { why: `the model's input '${named.name}' is ${shapeText(dims)}, not a 4-d image batch` };
  const [h, w] = layout === 'nhwc' ? [dims[1], dims[2]] : [dims[2], dims[3]];
  if (typeof h !== 'number' || typeof w !== 'number') {
    return { why: `the model's input '${named.name}' is ${shapeText(dims)}: its height and width are not both fixed (${layout})` };
  }
  return { size: [h, w], why: `the model's input '${named.name}' is ${shapeText(dims)} (${layout})` };
}

/** The choice, once the loader has said what size it used: `given` is what was asked for, if anything. */
export function imageSizeChoice(resizedTo: [number, number], asked: [number, number] | undefined, model: ModelImageSize | undefined): ImageSizeChoice {
  const [height, width] = resizedTo;
  if (asked) return { height, width, from: 'option', why: 'the size asked for' };
  if (model?.size) return { height, width, from: 'model', why: model.why };
  return { height, width, from: 'first image', why: `the first image's size${model ? `; ${model.why}` : ''}` };
}

/**
 * A loading error about images of the model's size (a data size limit refusing 100000x100000 images) says
 * where that size came from; any other error is returned as it is.
 */
export function withSizeOrigin(e: unknown, m: ModelImageSize | undefined): unknown {
  if (!(e instanceof UserError) || !m?.size || !e.cause_.includes(`x${m.size[0]}x${m.size[1]}`)) return e;
  return new UserError(e.subject, `${e.cause_}; images are resized to ${m.size[0]}x${m.size[1]} because ${m.why}`, e.exitCode);
}

/** One line: "images resized to 224x224 (HxW): the model's input 'x' is [N,3,224,224] (nchw)". */
export function describeImageSize(c: ImageSizeChoice, option = 'the size asked for'): string {
  return `images resized to ${c.height}x${c.width} (HxW): ${c.from === 'option' ? option : c.why}`;
}
