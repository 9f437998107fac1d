/**
 * The cpu step graph's blocked-layout convs (src/train/nchwc.ts): the block size is read off onnxruntime
 * itself, the pass moves the forward and input-gradient convs it should (and no others), and a step graph
 * with them trains like the standard one: same losses and parameters after Adam steps.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { buildMobilenet, buildResnet } from '../../bench/model.js';
import { attrInt } from '../../src/onnx/attrs.js';
import { convert } from '../../src/convert/convert.js';
import { openRuntime } from '../../src/runtime/index.js';
import type { HostTensor, Runtime } from '../../src/runtime/types.js';
import { labelsFeed } from '../../src/train/gradients.js';
import { NCHWC_DOMAIN, nchwcBlock } from '../../src/train/nchwc.js';
import { chooseParameters } from '../../src/train/params.js';
import { freshStart, StepRunner } from '../../src/train/runner.js';
import { buildTrainingModel, type TrainingModel } from '../../src/train/step.js';

const opened: Runtime[] = [];
afterAll(async () => {
  for (const rt of opened) await rt.close();
});
async function open(ep: 'cpu' | 'wasm'): Promise<Runtime> {
  const rt = await openRuntime(ep, { threads: 2 });
  opened.push(rt);
  return rt;
}

/**
 * The step graph of the bench's small ResNet (32 channels at 64x64, 64 at 32x32, 128 at 16x16) or of the tiny
 * MobileNet (32-channel depthwise convs at 32x32, stride 1 and 2), at batch 4 (pinned where `batch`)
 */
function stepModel(block: number, optimizer = true, linear = false, net: 'resnet' | 'mobilenet' = 'resnet', batch?: number): TrainingModel {
  const model = net === 'resnet' ? buildResnet() : buildMobilenet();
  // without activations nothing has a kink: the last bits a blocked conv rounds differently cannot flip
  // an activation's slope (one such flip, of 131072 pre-activations, moved the gradients below it by 3e-4)
  if (linear) {
    for (const n of model.graph!.node!) if (n.opType === 'Relu') n.opType = 'Identity';
  } else convert(model);
  const params = chooseParameters(model.graph!).trainable;
  return buildTrainingModel(model, {
    sourceDir: '.',
    file: 'resnet_small',
    dynamicBatch: true,
    ...(batch ? { batch } : {}),
    params,
    task: 'classification',
    ...(optimizer ? { optimizer: { name: 'adam' as const } } : {}),
    nchwcBlock: block,
  });
}

function batch(n: number, size = 64): { x: HostTensor; y: HostTensor } {
  const x = new Float32Array(n * 3 * size * size);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.731) * 0.5 + (((i * 7919) % 1000) / 1000 - 0.5);
  return {
    x: { type: 'float32', data: x, dims: [n, 3, size, size] },
    y: labelsFeed({ type: 'int32', data: Int32Array.from({ length: n }, (_, i) => (i * 3) % 10), dims: [n] }, 'classification'),
  };
}

async function train(rt: Runtime, tm: TrainingModel, steps: number, size = 64) {
  const b = batch(4, size);
  const runner = await StepRunner.open(rt, tm, freshStart(tm));
  try {
    const losses: number[] = [];
    for (let t = 1; t <= steps; t++) losses.push((await runner.step(b.x, b.y, t, 1e-4)).loss);
    return { losses, params: (await runner.snapshot()).params };
  } finally {
    await runner.close();
  }
}

/** every parameter's gradient from one batch of 4 */
async function gradients(rt: Runtime, tm: TrainingModel, size = 64): Promise<Record<string, Float32Array>> {
  const s = await rt.load(tm.bytes());
  try {
    const { x, y } = batch(4, size);
    const feeds: Record<string, HostTensor> = { [tm.input]: x, [tm.labels]: y, ...freshStart(tm).params };
    const out = await s.run(feeds);
    return Object.fromEntries(tm.params.map((p) => [p.name, out[p.grad]!.data as Float32Array]));
  } finally {
    await s.release();
  }
}

/** the largest ||b - a|| / ||a|| over the parameters (each gradient nonzero) */
function worstGradient(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let worst = 0;
  for (const [name, g] of Object.entries(a)) {
    let [d, n] = [0, 0];
    for (let i = 0; i < g.length; i++) {
      d += (b[name]![i]! - g[i]!) ** 2;
      n += g[i]! ** 2;
    }
    expect(n).toBeGreaterThan(0);
    worst = Math.max(worst, Math.sqrt(d / n));
  }
  return worst;
}

describe('NCHWc convs in the cpu step graph', () => {
  it('the block size is what onnxruntime pads channels to on cpu (8 with AVX2, 16 with AVX-512), 0 elsewhere', async () => {
    const block = await nchwcBlock(await open('cpu'));
    if (process.arch === 'x64') expect([8, 16]).toContain(block);
    expect(await nchwcBlock(await open('wasm'))).toBe(0);
  });

  it('moves the computed-weight 3x3 convs with channels in blocks and 14x14+ outputs, and no others', () => {
    const tm = stepModel(16);
    const nodes = tm.model.graph!.node!;
    const blocked = nodes.filter((n) => n.domain === NCHWC_DOMAIN && n.opType === 'Conv');
    expect(blocked.length).toBe(tm.blockedConvs);
    // forward (with their biases): the 3x3 convs of the three stages, all with 16x16+ outputs, and the stem;
    // the 1x1 downsamples stay. Input gradients by Conv: the 10 stride-1 3x3 ones.
    expect(blocked.filter((n) => n.input!.length === 3).length).toBe(13);
    expect(blocked.filter((n) => n.input!.length === 2).length).toBe(10);
    // the stem (3 input channels, fewer than a block) reads the NCHW input as it is, with no ReorderInput
    expect(blocked.filter((n) => n.input![0] === 'input').length).toBe(1);
    expect(nodes.some((n) => n.opType === 'ReorderInput' && n.input![0] === 'input')).toBe(false);
    expect(nodes.some((n) => n.opType === 'Conv' && (n.domain ?? '') === '' && n.input![0] === 'input')).toBe(false);
    // nothing reads the nchwc layout but each conv's ReorderOutput
    for (const c of blocked) {
      const readers = nodes.filter((n) => n.input!.includes(c.output![0]!));
      expect(readers.map((n) => n.opType)).toEqual(['ReorderOutput']);
    }
    expect(stepModel(0).blockedConvs).toBe(0);
    // no channel count of this net (32, 64, 128) is a multiple of 48: nothing moves
    expect(stepModel(48).blockedConvs).toBe(0);
  });

  it('trains like the standard step graph: the same losses over 3 Adam steps on cpu', async () => {
    const rt = await open('cpu');
    const block = await nchwcBlock(rt);
    if (!block) return; // no such kernels on this CPU: nothing to compare
    const [std, blk] = [stepModel(0), stepModel(block)];
    expect(blk.blockedConvs).toBeGreaterThan(0);
    const a = await train(rt, std, 3);
    const b = await train(rt, blk, 3);
    expect(a.losses[2]!).toBeLessThan(a.losses[0]!);
    for (let i = 0; i < 3; i++) expect(Math.abs(b.losses[i]! - a.losses[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(a.losses[i]!)));
    // (parameters: Adam's first steps move each by about lr whatever its gradient's size, so rounding
    // decides the direction of near-zero ones; the gradients below are the element-wise check)
  });

  it("gives the standard graph's gradients (without activations), every parameter's to 1e-5 of its norm", async () => {
    const rt = await open('cpu');
    const block = await nchwcBlock(rt);
    if (!block) return;
    const [std, blk] = [stepModel(0, false, true), stepModel(block, false, true)];
    expect(blk.blockedConvs).toBe(23);
    expect(worstGradient(await gradients(rt, std), await gradients(rt, blk))).toBeLessThan(1e-5);
  });
});

describe('NCHWc depthwise convs and weight-gradient correlations in the cpu step graph', () => {
  const blockedIn = (tm: TrainingModel) => tm.model.graph!.node!.filter((n) => n.domain === NCHWC_DOMAIN && n.opType === 'Conv');
  const correlations = (tm: TrainingModel) => tm.model.graph!.node!.filter((n) => n.opType === 'Conv' && attrInt(n, 'group', 1) === 4 * 32);

  it('moves the depthwise convs, and with a static batch takes their weight gradients as blocked correlations', () => {
    const tm = stepModel(16, true, false, 'mobilenet', 4);
    const blocked = blockedIn(tm);
    expect(blocked.length).toBe(tm.blockedConvs);
    // forward: the stem (3 input channels, read as NCHW) and both depthwise convs (32 channels; the rest are
    // 1x1); input gradient by Conv: the stride-1 one (stride 2 takes ConvTranspose); weight gradients: both,
    // one depthwise Conv over batch x channels each (group 4*32)
    expect(blocked.filter((n) => n.input!.length === 3).length).toBe(3);
    expect(correlations(tm).length).toBe(2);
    expect(correlations(tm).every((n) => n.domain === NCHWC_DOMAIN)).toBe(true);
    expect(tm.blockedConvs).toBe(6);
    // without the blocked kernels the weight gradients keep their patches; with a symbolic batch there is
    // no static group for a correlation
    expect(correlations(stepModel(0, true, false, 'mobilenet', 4)).length).toBe(0);
    // nor where batch x channels (4 x 32) is no whole number of blocks: unblocked, a correlation is slow
    expect(correlations(stepModel(48, true, false, 'mobilenet', 4)).length).toBe(0);
    const symbolic = stepModel(16, true, false, 'mobilenet');
    expect(correlations(symbolic).length).toBe(0);
    expect(symbolic.blockedConvs).toBe(4);
  });

  it("gives the standard graph's gradients (without activations), every parameter's to 1e-5 of its norm", async () => {
    const rt = await open('cpu');
    const block = await nchwcBlock(rt);
    if (!block) return;
    const [std, blk] = [stepModel(0, false, true, 'mobilenet', 4), stepModel(block, false, true, 'mobilenet', 4)];
    expect(correlations(blk).length).toBe(2);
    expect(worstGradient(await gradients(rt, std, 32), await gradients(rt, blk, 32))).toBeLessThan(1e-5);
  });

  it('trains like the standard step graph: the same losses over 3 Adam steps on cpu', async () => {
    const rt = await open('cpu');
    const block = await nchwcBlock(rt);
    if (!block) return;
    const a = await train(rt, stepModel(0, true, false, 'mobilenet', 4), 3, 32);
    const b = await train(rt, stepModel(block, true, false, 'mobilenet', 4), 3, 32);
    expect(a.losses[2]!).toBeLessThan(a.losses[0]!);
    for (let i = 0; i < 3; i++) expect(Math.abs(b.losses[i]! - a.losses[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(a.losses[i]!)));
  });
});
