/** The pipeline's record (pipeline.json, and --json): what ran, on which providers, and what came out. */
import type { ConvertReport } from '../convert/convert.js';
import type { EvalProgress, EvalReport } from '../eval/types.js';
import type { EpName, EpStatus } from '../runtime/types.js';
import type { FinetuneLog, FinetuneProgress } from '../train/loop.js';

export type PipelineProgress =
  | { stage: 'providers'; eps: EpName[] | null }
  | { stage: 'evaluate'; eval: EvalProgress }
  | { stage: 'finetune'; step: FinetuneProgress };

export interface PipelineFiles {
  outDir: string;
  converted: string;
  finetuned: string;
  log: string;
  report: string;
  json: string;
}

/** One provider's line of the summary: the three models' scores on the same samples, agreement, latency. */
export interface ProviderSummary {
  ep: EpName;
  samples: number;
  metric: 'top1' | 'mse';
  original: number | null;
  converted: number | null;
  finetuned: number | null;
  /** the fine-tuned model's outputs against the reference provider's on the same samples (null for the reference) */
  agreement: { referenceEp: string; maxAbsDiff: number; argmaxAgreementPct: number | null } | null;
  /** the fine-tuned model's latency per run */
  p50Ms: number | null;
  batchSize: number | null;
  /** on a software WebGPU adapter: correct, but its latency is not a GPU's */
  software: boolean;
  /** runs of this provider that failed, one line each */
  errors: string[];
}

export interface PipelineReport {
  version: 1;
  createdAt: string;
  seconds: number;
  /** wall-clock seconds of each stage, in order */
  stages: { stage: 'prepare' | 'providers' | 'convert' | 'check' | 'finetune' | 'evaluate' | 'report'; seconds: number }[];
  model: string;
  data: { spec: string; name: string; task: 'classification' | 'regression'; classes: number | null; train: number; val: number; test: number };
  files: PipelineFiles;
  conversion: Pick<ConvertReport, 'alpha' | 'form' | 'replaced' | 'byOp' | 'warnings'> & { skipped: number; alreadyAlrelu: number; lookalikes: number };
  /** every provider checked (usable or not, with the reason and the fix), and those the models ran on */
  providers: { checked: EpStatus[]; used: EpName[]; softwareSamples: number | null };
  /** step 3: original against converted before fine-tuning, on the first provider */
  conversionCheck: { ep: EpName; metric: 'top1' | 'mse'; original: number | null; converted: number | null; samples: number };
  training: {
    ep: EpName;
    epochs: number;
    stepsPerEpoch: number;
    batchSize: number;
    optimizer: string;
    lr: number;
    seconds: number;
    /** training loss of every step, in order */
    stepLosses: number[];
    /** validation score before training (epoch 0) and after each epoch */
    validation: { epoch: number; metric: string; value: number | null; loss: number | null; trainLoss: number | null }[];
    best: FinetuneLog['best'];
    test: FinetuneLog['test'];
  };
  summary: ProviderSummary[];
  /** the evaluations behind the summary: every provider on the test samples, and (where any) the software adapters on fewer */
  evaluations: { full: EvalReport | null; software: EvalReport | null };
}
