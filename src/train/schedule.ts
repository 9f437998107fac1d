/**
 * Learning-rate schedules, evaluated on the host and fed to the training-step model as a scalar:
 *
 *   constant  lr
 *   step      lr · γ^floor(epoch / every)          per epoch, as torch.optim.lr_scheduler.StepLR
 *   cosine    lr · (1 + cos(π · s / S)) / 2       per step s of S in the whole run (CosineAnnealingLR
 *                                                  with T_max = S, eta_min = 0, stepped every batch)
 */
import { UserError } from '../errors.js';

export const SCHEDULES = ['constant', 'step', 'cosine'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

export interface ScheduleConfig {
  name: ScheduleName;
  lr: number;
  /** step: epochs between decays (default 1) */
  every?: number;
  /** step: factor per decay (default 0.1) */
  gamma?: number;
}

export function checkSchedule(c: ScheduleConfig): ScheduleConfig {
  if (!(SCHEDULES as readonly string[]).includes(c.name)) throw new UserError('schedule', `unknown schedule '${c.name}' (known: ${SCHEDULES.join(', ')})`);
  if (!(c.lr > 0) || !Number.isFinite(c.lr)) throw new UserError('schedule.lr', `must be a number > 0, got ${c.lr}`);
  if (c.every !== undefined && !(Number.isInteger(c.every) && c.every >= 1))
    throw new UserError('schedule.every', `must be a whole number of epochs ≥ 1, got ${c.every}`);
  if (c.gamma !== undefined && !(c.gamma > 0 && c.gamma <= 1)) throw new UserError('schedule.gamma', `must be in (0, 1], got ${c.gamma}`);
  return c;
}

/** Learning rate for global step `step` (0-based) of `totalSteps`, in epoch `epoch` (0-based). */
export function learningRate(c: ScheduleConfig, epoch: number, step: number, totalSteps: number): number {
  switch (c.name) {
    case 'constant':
      return c.lr;
    case 'step':
      return c.lr * (c.gamma ?? 0.1) ** Math.floor(epoch / (c.every ?? 1));
    case 'cosine':
      return totalSteps <= 1 ? c.lr : (c.lr * (1 + Math.cos((Math.PI * Math.min(step, totalSteps)) / totalSteps))) / 2;
  }
}
