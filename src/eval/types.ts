/** The shape of an evaluation: what goes in, and the report (also the --json output) that comes out. */
import type { AdapterInfo, EpName, Runtime, WebGpuAdapterChoice } from '../runtime/types.js';
import type { Batching } from '../runtime/feed.js';
import type { LoadDataOptions } from '../data/index.js';
import type { PreprocessOptions } from '../data/preprocess.js';
import type { Split } from '../data/types.js';
import type { ImageSizeChoice } from '../data/imageSize.js';
import type { EpAgreement, ModelComparison } from './compare.js';
import type { LatencyStats } from './latency.js';
import type { ClassificationMetrics, RegressionMetrics } from './metrics.js';

export type { PreprocessOptions };

export interface EvalProgress {
  model: string;
  ep: EpName;
  /** samples done for this model x provider */
  done: number;
  total: number;
}

export interface EvaluateOptions {
  models: string[];
  /** a built-in data set name, a data file, or a folder of test_data_set_N references */
  data: string;
  eps: EpName[];
  /** samples per run where the model's batch dimension allows it; default 32 */
  batchSize?: number;
  preprocess?: PreprocessOptions;
  /** model input that receives the data; default: the only input, or the one whose shape fits */
  input?: string;
  /** model output that is scored; default: the first output whose size fits the task */
  output?: string;
  /** evaluate N samples spread evenly over the split (or the first N reference cases) */
  maxSamples?: number;
  split?: Split;
  seed?: number;
  /** how user files are read: CSV label column, image size, task, ... */
  dataOptions?: Omit<LoadDataOptions, 'split' | 'seed'>;
  /** untimed runs before timing starts; default 2 */
  warmup?: number;
  /** threads per provider (onnxruntime intra-op, wasm workers); default all cores */
  threads?: number;
  /** webgpu and browser-webgpu: which adapter to ask for (default 'auto': the GPU, else SwiftShader) */
  webgpuAdapter?: WebGpuAdapterChoice;
  /** absolute and relative tolerance for reference data; default 1e-4 */
  tolerance?: number;
  onProgress?: (p: EvalProgress) => void;
  /**
   * Runtimes already open, by EP, used instead of opening new ones (and left open): lets a caller
   * evaluate many models or data sets without relaunching a browser each time.
   */
  runtimes?: Partial<Record<EpName, Runtime>>;
}

/** How the data was fed: which input, in what shape, how many samples per run. */
export interface FeedInfo {
  input: string;
  /** the input's declared shape (strings are symbolic dimensions) */
  declaredShape: (number | string)[];
  /** shape of a full run's tensor */
  feedShape: number[];
  output: string;
  batching: Batching;
  batchSize: number;
}

export interface ReferenceOutputResult {
  case: string;
  output: string;
  maxAbs: number;
  maxRel: number;
  withinTolerance: boolean;
  shape: number[];
}

export interface ReferenceMetrics {
  cases: number;
  outputs: ReferenceOutputResult[];
  maxAbs: number;
  maxRel: number;
  tolerance: number;
  /** every output of every case within tolerance */
  pass: boolean;
}

export type RunMetrics =
  | ({ task: 'classification' } & ClassificationMetrics)
  | ({ task: 'regression' } & RegressionMetrics)
  | ({ task: 'reference' } & ReferenceMetrics);

export interface RunOk {
  model: string;
  ep: EpName;
  ok: true;
  /** threads the provider computed with (onnxruntime's intra-op pool, or wasm threads) */
  threads: number;
  /** webgpu and browser-webgpu: the adapter the run computed on, and whether it is a software (CPU) one */
  adapter?: AdapterInfo;
  feed: FeedInfo;
  metrics: RunMetrics;
  latency: LatencyStats;
}

export interface RunFailed {
  model: string;
  ep: EpName;
  ok: false;
  /**
   * where it broke: getting the provider, loading the model, fitting the data to the model (the same
   * on every provider, so the model's other providers are skipped), or running it
   */
  stage: 'open' | 'load' | 'data' | 'run';
  error: string;
}

export type RunResult = RunOk | RunFailed;

export interface DataInfo {
  spec: string;
  name: string;
  task: 'classification' | 'regression' | 'reference';
  split: Split;
  /** samples (or reference cases) evaluated */
  count: number;
  classes?: string[];
  /** image folders: the size the images were resized to, and why */
  imageSize?: ImageSizeChoice;
  preprocess: PreprocessOptions;
}

export interface EvalReport {
  createdAt: string;
  data: DataInfo;
  requestedBatchSize: number;
  models: string[];
  eps: EpName[];
  results: RunResult[];
  /** per model: each provider's outputs against the first provider that succeeded */
  agreement: EpAgreement[];
  /** per provider: each further model against the first (original vs converted) */
  comparison: ModelComparison[];
}
