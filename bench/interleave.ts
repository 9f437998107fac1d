/**
 * Interleaved timing: contenders take turns in short blocks (rotating who goes first), so drift on a
 * shared machine (other processes, thermal, page cache) hits them all alike. Each block is summarised
 * by its fastest run (interference only ever adds time, so the minimum of a few runs is the least
 * disturbed estimate of the cost itself); ratios are taken per round between those and their median
 * reported: a paired comparison, much steadier than two separately collected medians.
 *
 * Two clocks are recorded per run: wall time, and this process's CPU time (user + system, all
 * threads). With single-threaded sessions CPU time is the work itself, nearly unaffected by other
 * processes competing for the cores, and on an idle machine it equals the wall-clock latency.
 */
import { median, rotate } from './stats.js';

export type Clock = 'cpu' | 'wall';

/** A run's own measurement, for contenders timed elsewhere (a Python peer times itself). */
export interface Timing {
  wall: number;
  cpu: number;
}

export interface Contender {
  name: string;
  /** resolves to a Timing when the contender measures itself; anything else is timed here */
  run: () => Promise<unknown>;
}

const isTiming = (v: unknown): v is Timing =>
  typeof v === 'object' && v !== null && typeof (v as Timing).wall === 'number' && typeof (v as Timing).cpu === 'number';

export interface Interleaved {
  clock: Clock;
  /** every timed run, per contender, wall-clock ms */
  wall: Record<string, number[]>;
  /** every timed run, per contender, process CPU ms */
  cpu: Record<string, number[]>;
  /** per round, the fastest run of each contender's block on `clock` */
  blocks: Record<string, number[]>;
}

async function timeBoth(f: () => Promise<unknown>): Promise<Timing> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const own = await f();
  if (isTiming(own)) return own;
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

export async function interleave(
  cs: Contender[],
  o: { clock: Clock; warmup: number; rounds: number; perRound: number; onRound?: (r: number) => void },
): Promise<Interleaved> {
  for (const c of cs) for (let i = 0; i < o.warmup; i++) await c.run();
  const init = () => Object.fromEntries(cs.map((c) => [c.name, [] as number[]]));
  const res: Interleaved = { clock: o.clock, wall: init(), cpu: init(), blocks: init() };
  for (let r = 0; r < o.rounds; r++) {
    for (const c of rotate(cs, r)) {
      const block: number[] = [];
      for (let i = 0; i < o.perRound; i++) {
        const t = await timeBoth(c.run);
        res.wall[c.name]!.push(t.wall);
        res.cpu[c.name]!.push(t.cpu);
        block.push(t[o.clock]);
      }
      res.blocks[c.name]!.push(Math.min(...block));
    }
    o.onRound?.(r);
  }
  return res;
}

/** Median over rounds of (a's block minimum / b's block minimum). */
export function pairedRatio(res: Interleaved, a: string, b: string): number {
  const x = res.blocks[a]!;
  const y = res.blocks[b]!;
  return median(x.map((v, i) => v / y[i]!));
}
