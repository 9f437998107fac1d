/**
 * Models built from scratch, as ONNX, with PyTorch's default initialisation: the experiment's networks.
 *
 * Every nn.Linear(fan_in, out) and nn.Conv2d(cin, cout, k) gets weight and bias ~ U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) (kaiming_uniform_ with a = sqrt(5) gives exactly that bound for the weight; fan_in =
 * cin·k·k for a convolution). Values come from one mulberry32(seed) stream, layer by layer, the weight
 * first (PyTorch's [out, in, kh, kw] order), then the bias. The activation does not touch the stream, so
 * the ReLU, LeakyReLU and ALReLU variants built from one seed hold byte-identical initializers; ALReLU is
 * the ReLU model put through the converter (convert(), form `subgraph`), as a user would get it.
 */
import { convert, DEFAULT_ALPHA } from '../convert/convert.js';
import { mulberry32 } from '../data/prng.js';
import { UserError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import { floatAttr, intAttr, intsAttr, makeNode } from '../onnx/attrs.js';
import type { AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfo } from '../onnx/types.js';

export const ACTIVATIONS = ['relu', 'leakyrelu', 'alrelu'] as const;
export type Activation = (typeof ACTIVATIONS)[number];
export const ARCHITECTURES = ['mlp', 'cnn'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];

/** The slope of LeakyReLU and ALReLU: the paper's a = 0.01, also PyTorch's LeakyReLU default. */
export const SLOPE = DEFAULT_ALPHA;

export interface ArchSpec {
  arch: Architecture;
  /** widths of the hidden fully connected layers (MLP: all of them; CNN: after the convolutions) */
  hidden: number[];
  /** CNN: output channels of each 3×3 convolution, each followed by the activation and a 2×2 max pool */
  channels: number[];
}

export interface BuildOptions extends ArchSpec {
  activation: Activation;
  /** shape of one sample: [features] or [C, H, W] (any rank for the MLP, which flattens it) */
  sampleShape: number[];
  classes: number;
  seed: number;
}

export const INPUT = 'input';
export const OUTPUT = 'logits';
const OPSET = 17;
/** The model and its parameters stay small: a budget, not a limit anyone should reach by accident. */
const MAX_PARAMETERS = 50_000_000;

class Net {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  private readonly rand: () => number;
  parameters = 0;
  constructor(
    seed: number,
    private readonly act: Activation,
  ) {
    this.rand = mulberry32(seed);
  }

  private uniform(name: string, dims: number[], bound: number): string {
    const n = dims.reduce((a, b) => a * b, 1);
    // counted before allocating: a typo in a size must not take the machine's memory
    if (this.parameters + n > MAX_PARAMETERS)
      throw new UserError('model size', `more than ${MAX_PARAMETERS} parameters (at ${name} [${dims.join(', ')}]); use smaller sizes`);
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = (this.rand() * 2 - 1) * bound;
    this.inits.push({ name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(v.buffer) });
    this.parameters += n;
    return name;
  }

  private node(op: string, inputs: string[], name: string, attrs: AttributeProto[] = []): string {
    const out = `${name}_out`;
    this.nodes.push(makeNode(op, inputs, [out], name, attrs));
    return out;
  }

  linear(x: string, fanIn: number, out: number, name: string): string {
    const bound = 1 / Math.sqrt(fanIn);
    const w = this.uniform(`${name}.weight`, [out, fanIn], bound);
    const b = this.uniform(`${name}.bias`, [out], bound);
    return this.node('Gemm', [x, w, b], name, [intAttr('transB', 1)]);
  }

  conv(x: string, cin: number, cout: number, name: string): string {
    const bound = 1 / Math.sqrt(cin * 9);
    const w = this.uniform(`${name}.weight`, [cout, cin, 3, 3], bound);
    const b = this.uniform(`${name}.bias`, [cout], bound);
    return this.node('Conv', [x, w, b], name, [intsAttr('kernel_shape', [3, 3]), intsAttr('pads', [1, 1, 1, 1])]);
  }

  activation(x: string, name: string): string {
    // alrelu is built as relu and converted afterwards (see buildModel)
    return this.act === 'leakyrelu' ? this.node('LeakyRelu', [x], name, [floatAttr('alpha', SLOPE)]) : this.node('Relu', [x], name);
  }

  pool(x: string, name: string): string {
    return this.node('MaxPool', [x], name, [intsAttr('kernel_shape', [2, 2]), intsAttr('strides', [2, 2])]);
  }

  flatten(x: string, name: string): string {
    return this.node('Flatten', [x], name, [intAttr('axis', 1)]);
  }
}

const info = (name: string, dims: (number | string)[]): ValueInfo => ({
  name,
  type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});

function checkSizes(what: string, sizes: number[], allowEmpty: boolean): void {
  if (!allowEmpty && sizes.length === 0) throw new UserError(what, 'needs at least one size');
  for (const s of sizes) if (!Number.isInteger(s) || s < 1 || s > 65536) throw new UserError(what, `sizes must be whole numbers from 1 to 65536, found ${s}`);
}

/** A from-scratch classifier: input `input` [N, ...sampleShape], output `logits` [N, classes]. */
export function buildModel(o: BuildOptions): ModelProto {
  if (!Number.isInteger(o.classes) || o.classes < 2) throw new UserError('number of classes', `must be 2 or more, found ${o.classes}`);
  if (!Number.isInteger(o.seed) || o.seed < 0 || o.seed > 0xffffffff) throw new UserError('seed', `expected an integer from 0 to 4294967295, found ${o.seed}`);
  if (!o.sampleShape.length || o.sampleShape.some((d) => !Number.isInteger(d) || d < 1))
    throw new UserError('sample shape', `[${o.sampleShape.join(', ')}] is not a fixed shape`);
  checkSizes('hidden layer', o.hidden, o.arch === 'cnn');
  const net = new Net(o.seed, o.activation);
  let x = INPUT;
  let width: number;
  if (o.arch === 'mlp') {
    if (o.sampleShape.length > 1) x = net.flatten(x, 'flatten');
    width = o.sampleShape.reduce((a, b) => a * b, 1);
  } else {
    checkSizes('convolution channels', o.channels, false);
    if (o.sampleShape.length !== 3)
      throw new UserError('cnn', `needs image samples [channels, height, width], the data's samples are [${o.sampleShape.join(', ')}]; use the mlp`);
    let [c, h, w] = o.sampleShape as [number, number, number];
    o.channels.forEach((cout, i) => {
      if (h < 2 || w < 2)
        throw new UserError(
          'cnn',
          `${o.channels.length} convolution blocks pool [${o.sampleShape.slice(1).join('×')}] images below 1 pixel; use fewer channels entries`,
        );
      x = net.pool(net.activation(net.conv(x, c, cout, `conv${i + 1}`), `act_conv${i + 1}`), `pool${i + 1}`);
      c = cout;
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
    });
    x = net.flatten(x, 'flatten');
    width = c * h * w;
  }
  o.hidden.forEach((n, i) => {
    x = net.activation(net.linear(x, width, n, `fc${i + 1}`), `act_fc${i + 1}`);
    width = n;
  });
  net.linear(x, width, o.classes, `fc${o.hidden.length + 1}`);
  net.nodes[net.nodes.length - 1]!.output = [OUTPUT];
  const model: ModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: 'alrelu-experiment',
    docString: `${describeArch(o)}, ${o.activation}, PyTorch default initialisation from seed ${o.seed}`,
    graph: {
      name: `${o.arch}_${o.activation}`,
      node: net.nodes,
      initializer: net.inits,
      input: [info(INPUT, ['N', ...o.sampleShape])],
      output: [info(OUTPUT, ['N', o.classes])],
    },
  };
  if (o.activation === 'alrelu') convert(model, { alpha: SLOPE, form: 'subgraph' });
  return model;
}

/** e.g. `mlp 64` or `cnn 8-16 / 64`. */
export function describeArch(a: ArchSpec): string {
  return a.arch === 'mlp' ? `mlp ${a.hidden.join('-')}` : `cnn ${a.channels.join('-')}${a.hidden.length ? ` / ${a.hidden.join('-')}` : ''}`;
}
