/** The one ALReLU matcher that convert (already converted) and train (fuse, backward) share. */
import { describe, expect, it } from 'vitest';
import { floatAttr, graphAttr, makeNode } from '../../src/onnx/attrs.js';
import { DataType } from '../../src/onnx/dtype.js';
import { Graph } from '../../src/onnx/graph.js';
import type { NodeProto } from '../../src/onnx/types.js';
import { FUNCTION_DOMAIN, FUNCTION_NAME, isAlrelu } from '../../src/convert/forms.js';
import { tensorInfo } from './build.js';

const f32 = (name: string) => tensorInfo(name, DataType.FLOAT, [2]);
const leaky = (alpha: number, domain?: string) => makeNode('LeakyRelu', ['x'], ['t'], 'leaky', [floatAttr('alpha', alpha)], domain);
const abs = (domain?: string) => makeNode('Abs', ['t'], ['y'], 'abs', [], domain);

/** The match at the last node of `nodes`, with extra readers/outputs around it. */
function matchAt(nodes: NodeProto[], outputs = ['y']) {
  const g = Graph.of({ node: nodes, input: [f32('x')], output: outputs.map(f32) });
  return isAlrelu(g, nodes[nodes.length - 1]!);
}

describe('isAlrelu', () => {
  it('the subgraph form: Abs of a LeakyRelu that nothing else reads, found at the Abs', () => {
    const l = leaky(0.2);
    expect(matchAt([l, abs()])).toEqual({ form: 'subgraph', x: 'x', alpha: 0.2, leaky: l });
    expect(matchAt([leaky(0.2, 'ai.onnx'), abs('ai.onnx')])?.form).toBe('subgraph');
    // the LeakyRelu itself is not the match (its alpha is positive)
    expect(isAlrelu(Graph.of({ node: [l, abs()], output: [f32('y')] }), l)).toBeUndefined();
    // default alpha
    expect(matchAt([makeNode('LeakyRelu', ['x'], ['t'], 'l'), abs()])?.alpha).toBe(0.01);
  });

  it('not when the LeakyRelu output has another reader: a node, a subgraph capture, or a graph output', () => {
    expect(matchAt([leaky(0.2), makeNode('Neg', ['t'], ['n'], 'neg'), abs()], ['y', 'n'])).toBeUndefined();
    const capture = makeNode('If', ['c'], ['i'], 'if', [
      graphAttr('then_branch', { node: [makeNode('Neg', ['t'], ['k'], 'k')], output: [f32('k')] }),
      graphAttr('else_branch', { node: [], output: [f32('x')] }),
    ]);
    expect(matchAt([leaky(0.2), capture, abs()], ['y', 'i'])).toBeUndefined();
    expect(matchAt([leaky(0.2), abs()], ['y', 't'])).toBeUndefined();
  });

  it('not for other domains or other producers', () => {
    expect(matchAt([leaky(0.2, 'com.example'), abs()])).toBeUndefined();
    expect(matchAt([leaky(0.2), abs('com.example')])).toBeUndefined();
    expect(matchAt([makeNode('Relu', ['x'], ['t'], 'relu'), abs()])).toBeUndefined();
    expect(matchAt([abs()])).toBeUndefined(); // t is not produced here
    expect(matchAt([makeNode('Abs', [], ['y'], 'abs')])).toBeUndefined();
  });

  it('the fused form (LeakyRelu with alpha < 0) and the function form', () => {
    expect(matchAt([leaky(-0.1)])).toEqual({ form: 'fused', x: 'x', alpha: 0.1 });
    expect(matchAt([leaky(0.1)])).toBeUndefined();
    expect(matchAt([leaky(-0.1, 'com.example')])).toBeUndefined();
    expect(matchAt([makeNode(FUNCTION_NAME, ['x'], ['y'], 'f', [], FUNCTION_DOMAIN)])).toEqual({ form: 'function', x: 'x', alpha: 0.01 });
    expect(matchAt([makeNode(FUNCTION_NAME, ['x'], ['y'], 'f', [floatAttr('alpha', 0.3)], FUNCTION_DOMAIN)])?.alpha).toBeCloseTo(0.3);
    expect(matchAt([makeNode(FUNCTION_NAME, ['x'], ['y'], 'f', [], 'other.domain')])).toBeUndefined();
  });
});
