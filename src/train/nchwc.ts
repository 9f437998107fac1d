/**
 * onnxruntime CPU's blocked-layout (NCHWc) convolutions for the training step's convs whose weights are
 * computed (trained parameters, the input gradient's flipped weights). onnxruntime's own optimizer moves
 * only constant-weight Convs onto these kernels, reordering the weights once; the training step's weights
 * change every step, so this pass reorders them inside the graph and calls the kernels by their contrib
 * domain, `com.microsoft.nchwc`, which only the CPU EP has: the step graph for `cpu` only, every other EP
 * keeps the standard one. Measured on ResNet-18's shapes at batch 8, one thread (onnxruntime 1.30,
 * AVX-512): 64x56x56 29.0 -> 19.6 ms a conv, 128x28x28 26.3 -> 18.2, 256x14x14 26.0 -> 19.0, reorders
 * included; at 512x7x7 the weight reorder (C^2, whatever the batch) cost more than the kernel saved
 * (29.0 -> 33.4), hence the floor on output positions. Depthwise convs have no such floor (their weight
 * reorder is C*k): in MobileNetV2's step at batch 8, two threads, the 112x112 ones took 9-18 ms blocked
 * against 45-50 plain, and the weight gradients' correlations (GradOptions.depthwiseWeight: kernels the
 * size of the image) 5-25x less than the one-hot patches they replace. A stem reading fewer channels than a
 * block (RGB) runs on them from its NCHW input: ResNet-18's 7x7/2 at batch 8, 48.9 -> 39.2 ms on one thread
 * and 32.5 -> 21.4 on two, its ReorderOutput included.
 *
 * A pass over the finished graph, after backward (like fuse.ts): gradients are built on standard Convs.
 */
import { attrInt, intAttr, intsAttr } from '../onnx/attrs.js';
import { Builder } from '../onnx/builder.js';
import { DataType } from '../onnx/dtype.js';
import { Graph } from '../onnx/graph.js';
import { inferGraph, factsOf } from '../onnx/shapes.js';
import type { ModelProto, NodeProto } from '../onnx/types.js';
import { NCHWC_DOMAIN, nchwcReorderModel } from '../runtime/models.js';
import type { Runtime } from '../runtime/types.js';

export { NCHWC_DOMAIN };

/** output positions per image below which a conv stays NCHW (ResNet-18: 14x14 gains, 7x7 loses) */
const MIN_POSITIONS = 14 * 14;
/**
 * kernel elements below which a conv stays NCHW: a 1x1 conv is one GEMM either way, and the activations'
 * reorders in and out cost about what the blocked kernel saves: MobileNetV2 (all its convs with 16n
 * channels and 14x14+ outputs are 1x1) stepped in 1.67-2.05 s with them blocked, 1.63-1.75 s without
 * (one thread, batch 8), and peaked up to 170 MB higher
 */
const MIN_KERNEL = 9;

/**
 * W (K, C, kh, kw) in the kernels' OIHWBiBo layout: D[ob, ib, kh, kw, bi, bo] = W[ob*B + bo, ib*B + bi, kh, kw]:
 * (K/B, Bo, C*k) -> (K/B, C*k, Bo) = (K/B * C/B, Bi, k, Bo) -> (K/B * C/B, k, Bi, Bo), read back as W's dims
 */
function filter(em: Builder, W: string, k: number, c: number, a: number, b: number, block: number): string {
  const w1 = em.transpose(em.reshape(W, em.ints([k / block, block, c * a * b])), [0, 2, 1]);
  const w2 = em.transpose(em.reshape(w1, em.ints([(k / block) * (c / block), block, a * b, block])), [0, 2, 1, 3]);
  return em.reshape(w2, em.ints([k, c, a, b]));
}

/**
 * W (K, C, kh, kw) in the kernels' OIHWBo layout, (K/B, C, kh, kw, Bo), for depthwise convs (C = 1) and convs
 * that read fewer channels than a block (a network's stem, from NCHW): what ReorderInput makes of it read as one
 * image (1, K, C*kh, kw), vectorized where a Transpose of the weight gradient's image-sized kernels copies
 * element by element
 */
function outputBlockedFilter(em: Builder, W: string, k: number, c: number, a: number, b: number): string {
  const img = em.op('ReorderInput', [em.reshape(W, em.ints([1, k, c * a, b]))], [], { domain: NCHWC_DOMAIN });
  return em.reshape(img, em.ints([k, c, a, b]));
}

/**
 * The NCHWc block size onnxruntime's CPU EP uses on this machine (8 with AVX2, 16 with AVX-512), read off
 * the channel padding of a ReorderInput (of 4 channels, its smallest); 0 where the runtime is not cpu or has no such kernels.
 */
export function nchwcBlock(rt: Runtime): Promise<number> {
  let b = probed.get(rt);
  if (b === undefined) probed.set(rt, (b = probeBlock(rt)));
  return b;
}

/** one probe per runtime (experiment fine-tunes many times on one) */
const probed = new WeakMap<Runtime, Promise<number>>();

async function probeBlock(rt: Runtime): Promise<number> {
  if (rt.ep !== 'cpu') return 0;
  try {
    const s = await rt.load(nchwcReorderModel());
    try {
      const y = (await s.run({ x: { type: 'float32', data: new Float32Array(4), dims: [1, 4, 1, 1] } })).y;
      const b = y?.dims[1] ?? 0;
      return b > 1 && Number.isInteger(b) ? b : 0;
    } finally {
      await s.release();
    }
  } catch {
    return 0;
  }
}

/**
 * Rewrites 2-D Convs with a computed weight into ReorderInput -> nchwc Conv -> ReorderOutput, the weight
 * reordered in the graph to the kernels' layout: ungrouped ones with channels in and out multiples of
 * `block`, a kernel of MIN_KERNEL elements or more and at least MIN_POSITIONS output positions; the same with
 * fewer input channels than a block, read without ReorderInput (as onnxruntime does for constant-weight stems);
 * and depthwise ones (one channel a group) with channels a multiple of `block`. Returns how many.
 */
export function blockedConvs(model: ModelProto, opset: number, block: number): number {
  const graph = model.graph!;
  const constant = new Set((graph.initializer ?? []).map((t) => t.name!));
  const g = Graph.of(graph);
  const em = new Builder(g.freshName, { opset, info: inferGraph(graph, opset) });
  const facts = (v: string) => factsOf(em.info, v);
  const out: NodeProto[] = [];
  let count = 0;
  for (const n of g.nodes) {
    out.push(n);
    if (n.opType !== 'Conv' || (n.domain ?? '') !== '') continue;
    const [X, W] = [n.input![0]!, n.input![1]!];
    if (constant.has(W)) continue; // onnxruntime's optimizer does these itself
    const [xs, ws, ys] = [facts(X).shape, facts(W).shape, facts(n.output![0]!).shape];
    if (facts(X).elemType !== DataType.FLOAT || ws?.length !== 4 || xs?.length !== 4 || ys?.length !== 4) continue;
    const dims = [...ws, xs[1], ys[2], ys[3]];
    if (!dims.every((d): d is number => typeof d === 'number')) continue;
    const [k, c, a, b, cIn, hOut, wOut] = dims as [number, number, number, number, number, number, number];
    const group = attrInt(n, 'group', 1);
    const depthwise = group > 1 && group === cIn && k === cIn && c === 1;
    // fewer input channels than a block (a stem reading RGB): the kernels read the NCHW input as it is
    const nchwInput = group === 1 && c === cIn && c < block;
    const large = hOut * wOut >= MIN_POSITIONS && a * b >= MIN_KERNEL;
    if (k % block !== 0 || (!depthwise && (group !== 1 || (c % block !== 0 && !nchwInput) || !large))) continue;
    // in the Conv's place (everything it reads is produced before it)
    out.pop();
    const first = em.nodes.length;
    em.prefix = `${n.name ?? 'Conv'}/nchwc`;
    const blocked = depthwise || nchwInput ? outputBlockedFilter(em, W, k, c, a, b) : filter(em, W, k, c, a, b, block);
    const x = nchwInput ? X : em.op('ReorderInput', [X], [], { domain: NCHWC_DOMAIN });
    // the Conv's own attributes (strides, pads, dilations, auto_pad, group), the kernel made explicit
    const attrs = [...(n.attribute ?? []).filter((at) => at.name !== 'kernel_shape'), intsAttr('kernel_shape', [a, b])];
    const y = em.op('Conv', [x, blocked, ...n.input!.slice(2).filter(Boolean)], attrs, { domain: NCHWC_DOMAIN });
    em.node('ReorderOutput', [y], [n.output![0]!], [intAttr('channels', k)], { name: g.freshName(`${em.prefix}/ReorderOutput`), domain: NCHWC_DOMAIN });
    out.push(...em.nodes.slice(first));
    count++;
  }
  if (!count) return 0;
  graph.node = out;
  graph.initializer = [...(graph.initializer ?? []), ...em.initializers];
  if (!(model.opsetImport ?? []).some((o) => o.domain === NCHWC_DOMAIN))
    model.opsetImport = [...(model.opsetImport ?? []), { domain: NCHWC_DOMAIN, version: 1 }];
  return count;
}
