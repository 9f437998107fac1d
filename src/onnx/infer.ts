/**
 * Element types and shapes of values in one scope, as far as the model declares them (inputs, outputs,
 * value_info, initializers) plus a light forward pass for element types (most ops keep their input's type).
 */
import { DataType } from './dtype.js';
import { attrInt, isDefaultDomain } from './attrs.js';
import { int, type TypeProto, type ValueInfo } from './types.js';
import { scopeNodes, type Scope } from './walk.js';

export interface ValueType {
  elemType: number;
  /** undefined: rank unknown; numbers are fixed dims, strings symbolic, null unknown */
  shape?: (number | string | null)[];
}

export function valueTypeOf(t: TypeProto | undefined): ValueType | undefined {
  const tt = t?.tensorType;
  if (!tt) return undefined;
  const shape = tt.shape ? (tt.shape.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? int(d.dimValue) : null)) : undefined;
  return { elemType: tt.elemType ?? 0, shape };
}

/** Ops whose output type is fixed whatever their input. */
const FIXED_OUT: Record<string, number> = {
  Shape: DataType.INT64, Size: DataType.INT64, NonZero: DataType.INT64, ArgMax: DataType.INT64, ArgMin: DataType.INT64,
  Equal: DataType.BOOL, Less: DataType.BOOL, Greater: DataType.BOOL, LessOrEqual: DataType.BOOL,
  GreaterOrEqual: DataType.BOOL, Not: DataType.BOOL, And: DataType.BOOL, Or: DataType.BOOL, Xor: DataType.BOOL,
  IsNaN: DataType.BOOL, IsInf: DataType.BOOL,
};

/** Name -> declared or inferred type, for the scope and (for subgraphs) the scopes around it. */
export function scopeTypes(scope: Scope, outer?: Map<string, ValueType>): Map<string, ValueType> {
  const types = new Map<string, ValueType>(outer ?? []);
  const declare = (vs: ValueInfo[] | undefined) => {
    for (const v of vs ?? []) {
      const t = valueTypeOf(v.type);
      if (v.name && t) types.set(v.name, t);
    }
  };
  if (scope.kind === 'graph') {
    const g = scope.graph;
    for (const t of g.initializer ?? []) if (t.name) types.set(t.name, { elemType: t.dataType ?? 0, shape: (t.dims ?? []).map(int) });
    declare(g.input);
    declare(g.valueInfo);
    declare(g.output);
  } else {
    declare(scope.fn.valueInfo);
  }
  for (const n of scopeNodes(scope)) {
    const op = n.opType ?? '';
    const first = (n.input ?? []).map((x) => types.get(x)).find((t) => t !== undefined);
    let elem: number | undefined;
    if (isDefaultDomain(n.domain)) {
      if (op in FIXED_OUT) elem = FIXED_OUT[op];
      else if (op === 'Cast') elem = attrInt(n, 'to', 0);
      else if (op === 'Constant') elem = n.attribute?.[0]?.t?.dataType;
      else elem = first?.elemType;
    }
    (n.output ?? []).forEach((o, i) => {
      if (!o || types.has(o)) return;
      if (elem !== undefined && i === 0) types.set(o, { elemType: elem });
    });
  }
  return types;
}
