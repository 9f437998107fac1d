/** alrelu as a library: every command is a function first. */
export { convert, DEFAULT_ALPHA, type ConvertOptions, type ConvertReport } from './convert/convert.js';
export { FUNCTION_DOMAIN, FUNCTION_NAME, type Form } from './convert/forms.js';
export { inspect, type Inspection } from './convert/inspect.js';
export { verify, type VerifyResult } from './convert/verify.js';
export { readModel, decodeModelBytes, opsetVersion, MAX_IR_VERSION, MAX_OPSET, type ModelFile } from './onnx/read.js';
export { writeModel, encodeInline, type WriteOptions, type WriteResult } from './onnx/write.js';
export { decodeModel, encodeModel, decodeTensor, encodeTensor } from './onnx/schema.js';
export type * from './onnx/types.js';
export { UserError } from './errors.js';

// Runtimes: one interface over every execution provider, and what works here.
export { openRuntime, parseEpList, EP_NAMES, type EpName, type Runtime, type Session, type HostTensor, type EpStatus } from './runtime/index.js';
export { checkEps, type DoctorOptions } from './runtime/doctor.js';
export { serve, type ServeOptions, type ServeReport } from './serve/serve.js';

// Data and evaluation.
export { loadData, preprocess, type LoadDataOptions, type PreprocessOptions, type Dataset, type ReferenceCase, type Split } from './data/index.js';
export { loadTrainingSets, alignSplit, type TrainingSets, type TrainingSetSpecs, type SplitSources } from './data/ownSplits.js';
export { modelImageSize, type ImageSizeChoice } from './data/imageSize.js';
export { evaluate } from './eval/evaluate.js';
export type { EvalReport, EvaluateOptions } from './eval/types.js';

// Fine-tuning: the training-step model, gradients for inspection, the loop.
export { backward, type BackwardOptions, type BackwardResult } from './train/backward.js';
export { buildTrainingModel, type TrainingModel, type StepOptions } from './train/step.js';
export { computeGradients, firstBatchGradients, type GradientResult } from './train/gradients.js';
export { finetune, type FinetuneOptions, type FinetuneResult, type FinetuneLog } from './train/loop.js';
export { chooseParameters, type ParameterOptions } from './train/params.js';
export { replaceHead, type HeadOptions, type HeadReplacement } from './train/head.js';
export { trainability, type Trainability } from './train/trainability.js';

// Experiments: from-scratch networks, ReLU vs LeakyReLU vs ALReLU across seeds, paired tests.
export { buildModel as buildExperimentModel, ACTIVATIONS, type Activation, type ArchSpec, type BuildOptions } from './experiment/build.js';
export { runScratch, runSwap, loadSets, type ExperimentResult, type ExperimentSettings, type ScratchOptions, type SwapOptions } from './experiment/run.js';
export { analyze, type Analysis } from './experiment/analysis.js';
export { pairedTests, summarize, type PairedTest, type Summary } from './experiment/stats.js';

// The whole job in one call (`alrelu-convert pipeline`), and reports as data rendered to text or HTML.
export { runPipeline, pipelineFiles, type PipelineOptions, type PipelineReport, type ProviderSummary } from './pipeline/pipeline.js';
export { pipelineDocument, formatPipelineSummary } from './pipeline/report.js';
export { renderHtml as renderDocumentHtml, renderText as renderDocumentText, type ReportDocument, type Section, type Block } from './eval/document.js';
