export { convert, DEFAULT_ALPHA, type ConvertOptions, type ConvertReport, type TargetOp } from './convert.js';
export { FUNCTION_DOMAIN, FUNCTION_NAME, type Form } from './forms.js';
