/**
 * Optimizer updates, as ONNX nodes (emitUpdates) and on the host (hostUpdate), with PyTorch's formulas
 * (torch.optim, 1.13) so results can be checked against it step for step:
 *
 *   sgd       g' = g + wd·p;                         p ← p − lr·g'
 *   momentum  g' = g + wd·p;  b ← μ·b + g';          p ← p − lr·b          (dampening 0, no Nesterov;
 *             b starts at 0, which equals torch's b = g' on the first step)
 *   adam      g' = g + wd·p;  m ← β1·m + (1−β1)·g';  v ← β2·v + (1−β2)·g'²
 *             p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)        (ε outside the root, as torch)
 *   adamw     p ← p·(1 − lr·wd), then adam with wd = 0                       (decoupled weight decay)
 *
 * The step count t (1-based) and the learning rate are scalar model inputs, so one training-step model
 * serves every step and every schedule.
 */
import { UserError } from '../errors.js';
import { DataType } from '../onnx/dtype.js';
import type { Builder } from '../onnx/builder.js';

export const OPTIMIZERS = ['sgd', 'momentum', 'adam', 'adamw'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

export interface OptimizerConfig {
  name: OptimizerName;
  weightDecay?: number;
  /** momentum, default 0.9 */
  momentum?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** State tensors each parameter carries, in order; each starts at zeros shaped like the parameter. */
export function stateSlots(name: OptimizerName): string[] {
  return name === 'momentum' ? ['momentum'] : name === 'adam' || name === 'adamw' ? ['m', 'v'] : [];
}

export function checkOptimizer(c: OptimizerConfig): Required<OptimizerConfig> {
  if (!(OPTIMIZERS as readonly string[]).includes(c.name)) throw new UserError('optimizer', `unknown optimizer '${c.name}' (known: ${OPTIMIZERS.join(', ')})`);
  const full: Required<OptimizerConfig> = {
    name: c.name,
    weightDecay: c.weightDecay ?? 0,
    momentum: c.momentum ?? 0.9,
    beta1: c.beta1 ?? 0.9,
    beta2: c.beta2 ?? 0.999,
    eps: c.eps ?? 1e-8,
  };
  if (!(full.weightDecay >= 0) || !Number.isFinite(full.weightDecay))
    throw new UserError('optimizer.weightDecay', `must be a number ≥ 0, got ${c.weightDecay}`);
  if (!(full.momentum >= 0 && full.momentum < 1)) throw new UserError('optimizer.momentum', `must be in [0, 1), got ${c.momentum}`);
  for (const [k, v] of [
    ['beta1', full.beta1],
    ['beta2', full.beta2],
  ] as const) {
    if (!(v >= 0 && v < 1)) throw new UserError(`optimizer.${k}`, `must be in [0, 1), got ${v}`);
  }
  if (!(full.eps > 0)) throw new UserError('optimizer.eps', `must be > 0, got ${c.eps}`);
  return full;
}

export interface UpdateInput {
  param: string;
  grad: string;
  /** names of the current state tensors, one per stateSlots() entry */
  state: string[];
  dataType: number;
}

export interface UpdateOutput {
  param: string;
  state: string[];
}

/**
 * Emits the update of every parameter. `lr` and `step` are float32 scalar inputs; parameters of another
 * float type get them through CastLike.
 */
export function emitUpdates(em: Builder, cfg: Required<OptimizerConfig>, lr: string, step: string, items: UpdateInput[]): UpdateOutput[] {
  const F = DataType.FLOAT;
  const c = (v: number) => em.scalar(v, F);
  // Shared scalars, computed once per step.
  let adamStep = '';
  let bc2Sqrt = '';
  if (cfg.name === 'adam' || cfg.name === 'adamw') {
    const bc1 = em.op('Sub', [c(1), em.op('Pow', [c(cfg.beta1), step])], [], { base: 'bias_correction1' });
    bc2Sqrt = em.op('Sqrt', [em.op('Sub', [c(1), em.op('Pow', [c(cfg.beta2), step])])], [], { base: 'bias_correction2_sqrt' });
    adamStep = em.op('Div', [lr, bc1], [], { base: 'step_size' });
  }
  const decayFactor = cfg.name === 'adamw' && cfg.weightDecay > 0 ? em.op('Sub', [c(1), em.op('Mul', [lr, c(cfg.weightDecay)])], [], { base: 'decay' }) : '';

  return items.map((it) => {
    // Scalars in the parameter's own element type.
    const like = (s: string) => (it.dataType === F ? s : em.op('CastLike', [s, it.param]));
    const k = (v: number) => like(c(v));
    let g = it.grad;
    if (cfg.weightDecay > 0 && cfg.name !== 'adamw') g = em.op('Add', [g, em.op('Mul', [it.param, k(cfg.weightDecay)])], [], { base: 'grad_l2' });
    switch (cfg.name) {
      case 'sgd':
        return { param: em.op('Sub', [it.param, em.op('Mul', [g, like(lr)])], [], { base: 'updated' }), state: [] };
      case 'momentum': {
        const buf = em.op('Add', [em.op('Mul', [it.state[0]!, k(cfg.momentum)]), g], [], { base: 'momentum' });
        return { param: em.op('Sub', [it.param, em.op('Mul', [buf, like(lr)])], [], { base: 'updated' }), state: [buf] };
      }
      case 'adam':
      case 'adamw': {
        const m = em.op('Add', [em.op('Mul', [it.state[0]!, k(cfg.beta1)]), em.op('Mul', [g, k(1 - cfg.beta1)])], [], { base: 'exp_avg' });
        const v = em.op('Add', [em.op('Mul', [it.state[1]!, k(cfg.beta2)]), em.op('Mul', [em.op('Mul', [g, g]), k(1 - cfg.beta2)])], [], {
          base: 'exp_avg_sq',
        });
        const denom = em.op('Add', [em.op('Div', [em.op('Sqrt', [v]), like(bc2Sqrt)]), k(cfg.eps)], [], { base: 'denom' });
        const p0 = decayFactor ? em.op('Mul', [it.param, like(decayFactor)], [], { base: 'decayed' }) : it.param;
        const p = em.op('Sub', [p0, em.op('Mul', [em.op('Div', [m, denom]), like(adamStep)])], [], { base: 'updated' });
        return { param: p, state: [m, v] };
      }
    }
  });
}

/**
 * The same updates on the host, in place, for runtimes whose parameters live in host memory anyway (cpu,
 * wasm, the browser EPs; chosen by size in loop.ts): the step graph then computes gradients only, and the
 * parameters and optimizer state stay one set of arrays instead of crossing into onnxruntime and back as
 * new copies every step (ResNet-18 with Adam: 141 MB in and out a step, against its 47 MB of gradients).
 * float32 arrays, each element's update computed in double and stored rounded (the graph rounds every
 * operation to float32: the two differ by an ulp or so; rounding each operation here too, with
 * Math.fround, made the update 2-3x slower).
 */
export function hostUpdate(cfg: Required<OptimizerConfig>, t: number, lr: number, p: Float32Array, g: Float32Array, state: Float32Array[]): void {
  const wd = cfg.weightDecay;
  const l2 = wd > 0 && cfg.name !== 'adamw';
  const n = p.length;
  switch (cfg.name) {
    case 'sgd':
      for (let i = 0; i < n; i++) p[i] = p[i]! - (l2 ? g[i]! + p[i]! * wd : g[i]!) * lr;
      return;
    case 'momentum': {
      const b = state[0]!;
      const mu = cfg.momentum;
      for (let i = 0; i < n; i++) {
        const bi = b[i]! * mu + (l2 ? g[i]! + p[i]! * wd : g[i]!);
        b[i] = bi;
        p[i] = p[i]! - bi * lr;
      }
      return;
    }
    case 'adam':
    case 'adamw': {
      const [m, v] = [state[0]!, state[1]!];
      const [b1, b2, c1, c2, eps] = [cfg.beta1, cfg.beta2, 1 - cfg.beta1, 1 - cfg.beta2, cfg.eps];
      const bc2Sqrt = Math.sqrt(1 - b2 ** t);
      const stepSize = lr / (1 - b1 ** t);
      const decay = cfg.name === 'adamw' ? 1 - lr * wd : 1;
      for (let i = 0; i < n; i++) {
        const gi = l2 ? g[i]! + p[i]! * wd : g[i]!;
        const mi = m[i]! * b1 + gi * c1;
        const vi = v[i]! * b2 + gi * gi * c2;
        m[i] = mi;
        v[i] = vi;
        // m and v as stored (float32), as the next step and a checkpoint see them
        p[i] = p[i]! * decay - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2Sqrt + eps);
      }
      return;
    }
  }
}
