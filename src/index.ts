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
