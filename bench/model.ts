/**
 * Benchmark models, built in code (no downloads) and cached under the bench cache folder:
 *  - cnn100: a ~100 MB plain ReLU CNN (24 wide 3x3 Conv + Relu, then Gemm + Relu + Gemm) for conversion speed;
 *  - resnet: a small ResNet-style net (Conv with folded BatchNorm as bias, Relu, residual Add) for latency.
 * Weights are seeded pseudo-random float32 stored as raw_data, He-uniform scaled so activations stay finite.
 * Both are valid models that onnxruntime runs.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/atomic.js';
import { mulberry32 } from '../src/data/prng.js';
import { floatAttr, intAttr, intsAttr, makeNode } from '../src/onnx/attrs.js';
import { encodeModel } from '../src/onnx/schema.js';
import type { GraphProto, ModelProto, NodeProto, TensorProto, ValueInfo } from '../src/onnx/types.js';
import { elementCount } from '../src/onnx/tensor.js';

const FLOAT = 1;
/** bump when a generator changes so stale cached files are not reused */
const GEN_VERSION = 2;

class Builder {
  nodes: NodeProto[] = [];
  inits: TensorProto[] = [];
  private rand: () => number;
  private n = 0;
  constructor(seed: number) {
    this.rand = mulberry32(seed);
  }
  /** He-uniform weights (bound sqrt(6 / fanIn)) as raw float32 bytes. */
  weight(name: string, dims: number[], fanIn: number): string {
    const count = elementCount(dims);
    const a = new Float32Array(count);
    const bound = Math.sqrt(6 / fanIn);
    for (let i = 0; i < count; i++) a[i] = (this.rand() * 2 - 1) * bound;
    this.inits.push({ name, dataType: FLOAT, dims, rawData: new Uint8Array(a.buffer) });
    return name;
  }
  bias(name: string, n: number, scale = 0.05): string {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (this.rand() * 2 - 1) * scale;
    this.inits.push({ name, dataType: FLOAT, dims: [n], rawData: new Uint8Array(a.buffer) });
    return name;
  }
  fresh(base: string): string {
    return `${base}_${this.n++}`;
  }
  conv(x: string, cin: number, cout: number, k: number, stride: number, name: string, group = 1): string {
    const w = this.weight(`${name}.weight`, [cout, cin / group, k, k], (cin / group) * k * k);
    // BatchNorm folded into the conv: only a per-channel bias remains.
    const b = this.bias(`${name}.bias`, cout);
    const y = this.fresh(`${name}_out`);
    const pad = (k - 1) >> 1;
    this.nodes.push(
      makeNode('Conv', [x, w, b], [y], name, [
        intsAttr('kernel_shape', [k, k]),
        intsAttr('strides', [stride, stride]),
        intsAttr('pads', [pad, pad, pad, pad]),
        ...(group > 1 ? [intAttr('group', group)] : []),
      ]),
    );
    return y;
  }
  op(op: string, inputs: string[], name: string, attrs = [] as ReturnType<typeof intAttr>[]): string {
    const y = this.fresh(`${name}_out`);
    this.nodes.push(makeNode(op, inputs, [y], name, attrs));
    return y;
  }
  relu(x: string, name: string): string {
    return this.op('Relu', [x], name);
  }
  gemm(x: string, nin: number, nout: number, name: string): string {
    const w = this.weight(`${name}.weight`, [nout, nin], nin);
    const b = this.bias(`${name}.bias`, nout);
    return this.op('Gemm', [x, w, b], name, [floatAttr('alpha', 1), floatAttr('beta', 1), intAttr('transB', 1)]);
  }
  model(name: string, input: ValueInfo, outputName: string, outputDims: number[]): ModelProto {
    // The last node writes the graph output under its public name.
    this.nodes[this.nodes.length - 1]!.output = [outputName];
    const graph: GraphProto = {
      name,
      node: this.nodes,
      initializer: this.inits,
      input: [input],
      output: [tensorInfo(outputName, outputDims)],
    };
    return {
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      producerName: 'alrelu-bench',
      producerVersion: String(GEN_VERSION),
      graph,
    };
  }
}

function tensorInfo(name: string, dims: number[]): ValueInfo {
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

export const CNN100 = { channels: 320, convs: 24, hidden: 9000, classes: 10, input: [1, 3, 16, 16] };

/** ~100 MB of float32 weights: 24 x Conv 320x320x3x3 (3.7 MB each) + Gemm 320->9000 (11.5 MB) ... 25 Relus. */
export function buildCnn100(): ModelProto {
  const { channels: c, convs, hidden, classes, input } = CNN100;
  const b = new Builder(0x5eed100);
  let x = 'input';
  for (let i = 0; i < convs; i++) {
    x = b.conv(x, i === 0 ? input[1]! : c, c, 3, 1, `conv${i}`);
    x = b.relu(x, `relu${i}`);
  }
  x = b.op('GlobalAveragePool', [x], 'gap');
  x = b.op('Flatten', [x], 'flatten', [intAttr('axis', 1)]);
  x = b.gemm(x, c, hidden, 'fc1');
  x = b.relu(x, `relu${convs}`);
  b.gemm(x, hidden, classes, 'fc2');
  return b.model('cnn100', tensorInfo('input', input), 'logits', [input[0]!, classes]);
}

export const RESNET = { input: [1, 3, 64, 64], stem: 32, stages: [32, 64, 128], blocks: 2, classes: 10 };

/**
 * ResNet-18-style but narrower: stem Conv3x3+Relu, three stages of two BasicBlocks
 * (Conv-Relu-Conv, + shortcut (1x1 Conv when shape changes), Relu), GlobalAveragePool, Gemm. 13 Relus.
 */
export function buildResnet(): ModelProto {
  const { input, stem, stages, blocks, classes } = RESNET;
  const b = new Builder(0x5eed0123);
  let x = b.relu(b.conv('input', input[1]!, stem, 3, 1, 'stem.conv'), 'stem.relu');
  let cin = stem;
  stages.forEach((cout, s) => {
    for (let k = 0; k < blocks; k++) {
      const stride = s > 0 && k === 0 ? 2 : 1;
      const p = `layer${s + 1}.${k}`;
      let y = b.relu(b.conv(x, cin, cout, 3, stride, `${p}.conv1`), `${p}.relu1`);
      y = b.conv(y, cout, cout, 3, 1, `${p}.conv2`);
      const shortcut = stride !== 1 || cin !== cout ? b.conv(x, cin, cout, 1, stride, `${p}.downsample`) : x;
      x = b.relu(b.op('Add', [y, shortcut], `${p}.add`), `${p}.relu2`);
      cin = cout;
    }
  });
  x = b.op('GlobalAveragePool', [x], 'gap');
  x = b.op('Flatten', [x], 'flatten', [intAttr('axis', 1)]);
  b.gemm(x, cin, classes, 'fc');
  return b.model('resnet_small', tensorInfo('input', input), 'logits', [input[0]!, classes]);
}

export const MOBILENET = {
  input: [1, 3, 32, 32],
  stem: 16,
  blocks: [
    [32, 16, 1],
    [32, 32, 2],
  ],
  classes: 10,
};

/**
 * MobileNetV2-style and tiny, for tests of depthwise convs: stem Conv3x3+Relu, two inverted residuals
 * (1x1 expand + Relu, depthwise 3x3 + Relu, 1x1 project; [expanded, out, stride], the stride-1 one with a
 * residual Add), GlobalAveragePool, Gemm.
 */
export function buildMobilenet(): ModelProto {
  const { input, stem, blocks, classes } = MOBILENET;
  const b = new Builder(0x5eed0456);
  let x = b.relu(b.conv('input', input[1]!, stem, 3, 1, 'stem.conv'), 'stem.relu');
  let cin = stem;
  blocks.forEach(([hidden, cout, stride], i) => {
    const p = `block${i + 1}`;
    let y = b.relu(b.conv(x, cin, hidden!, 1, 1, `${p}.expand`), `${p}.relu1`);
    y = b.relu(b.conv(y, hidden!, hidden!, 3, stride!, `${p}.depthwise`, hidden), `${p}.relu2`);
    y = b.conv(y, hidden!, cout!, 1, 1, `${p}.project`);
    x = stride === 1 && cin === cout ? b.op('Add', [y, x], `${p}.add`) : y;
    cin = cout!;
  });
  x = b.op('GlobalAveragePool', [x], 'gap');
  x = b.op('Flatten', [x], 'flatten', [intAttr('axis', 1)]);
  b.gemm(x, cin, classes, 'fc');
  return b.model('mobilenet_small', tensorInfo('input', input), 'logits', [input[0]!, classes]);
}

export interface CachedModel {
  path: string;
  bytes: number;
  /** true when this call wrote the file */
  built: boolean;
}

/** Returns the cached model file, building and writing it (atomically) when absent. */
export async function cachedModel(cacheDir: string, name: string, build: () => ModelProto): Promise<CachedModel> {
  const path = join(cacheDir, `${name}.v${GEN_VERSION}.onnx`);
  const st = await fs.stat(path).catch(() => undefined);
  if (st?.isFile() && st.size > 0) return { path, bytes: st.size, built: false };
  await fs.mkdir(cacheDir, { recursive: true });
  const bytes = encodeModel(build());
  // Two benches building the same model at once both write it: the later replaces the identical earlier one.
  await writeFileAtomic(path, bytes, { replace: true });
  return { path, bytes: bytes.length, built: true };
}

export const cnn100 = (cacheDir: string) => cachedModel(cacheDir, 'cnn100', buildCnn100);
export const resnet = (cacheDir: string) => cachedModel(cacheDir, 'resnet_small', buildResnet);
