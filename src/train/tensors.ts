/** Small constant tensors, made by src/onnx/tensor.ts (kept here for the train modules that import it). */
export { makeTensor } from '../onnx/tensor.js';
