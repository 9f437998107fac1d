/**
 * The PyTorch peer's network, as Python source shared by the train and real sections: the very ONNX graph
 * we train, rebuilt node by node in torch (the ops our CNNs use), so both sides train the same network
 * with the same parameters. The script that includes it defines `path` and `trainable` first and gets
 * `params`, `forward(x)`, `input_shape(batch)` and `bench_batch(batch)`.
 */
export const TORCH_NET = String.raw`
import numpy as np, onnx, torch
import torch.nn.functional as F
from onnx import numpy_helper, helper
g = onnx.load(path).graph
params, consts = {}, {}
for t in g.initializer:
    a = torch.from_numpy(numpy_helper.to_array(t).copy())
    if t.name in trainable:
        params[t.name] = torch.nn.Parameter(a)
    else:
        consts[t.name] = a
inits = set(params) | set(consts)
inp = [i.name for i in g.input if i.name not in inits][0]
out = g.output[0].name
nodes = [(n.op_type, list(n.input), list(n.output), {a.name: helper.get_attribute_value(a) for a in n.attribute}) for n in g.node]
in_dims = [d.dim_value for d in g.input[[i.name for i in g.input].index(inp)].type.tensor_type.shape.dim]
del g

def sym(p):
    assert p[:len(p)//2] == p[len(p)//2:], 'asymmetric pads'
    return p[:len(p)//2]

def scalar(t, default):
    return default if t is None else float(t)

def forward(x):
    env = dict(consts); env.update(params); env[inp] = x
    for op, ins, outs, A in nodes:
        i = [env[k] if k else None for k in ins]
        if op == 'Conv':
            y = F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, stride=A.get('strides', 1), padding=sym(A.get('pads', [0, 0, 0, 0])), dilation=A.get('dilations', 1), groups=A.get('group', 1))
        elif op == 'Relu': y = F.relu(i[0])
        elif op == 'LeakyRelu': y = F.leaky_relu(i[0], A.get('alpha', 0.01))
        elif op == 'Abs': y = torch.abs(i[0])
        elif op == 'Identity': y = i[0]
        elif op == 'Constant': y = torch.from_numpy(numpy_helper.to_array(A['value']).copy())
        elif op == 'Clip':
            lo = A['min'] if 'min' in A else scalar(i[1] if len(i) > 1 else None, None)
            hi = A['max'] if 'max' in A else scalar(i[2] if len(i) > 2 else None, None)
            y = torch.clamp(i[0], lo, hi)
        elif op == 'MaxPool': y = F.max_pool2d(i[0], A['kernel_shape'], A.get('strides', 1), sym(A.get('pads', [0, 0, 0, 0])))
        elif op == 'Flatten': y = torch.flatten(i[0], A.get('axis', 1))
        elif op == 'Gemm':
            assert not A.get('transA', 0) and A.get('alpha', 1.0) == 1.0 and A.get('beta', 1.0) == 1.0
            y = F.linear(i[0], i[1] if A.get('transB', 0) else i[1].t(), i[2] if len(i) > 2 else None)
        elif op == 'Add': y = i[0] + i[1]
        elif op == 'GlobalAveragePool': y = i[0].mean((2, 3), keepdim=True)
        else: raise SystemExit('torch peer: no mapping for ' + op)
        env[outs[0]] = y
    return env[out]

def input_shape(batch):
    return [batch] + [d if d > 0 else 1 for d in in_dims[1:]]

def bench_batch(batch):
    # x[i] = ((i mod 1000) * 761 mod 1000) / 1000 (= i * 2654435761 mod 1000, exact at any size), y[b] = b mod 10
    shape = input_shape(batch)
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    x = torch.from_numpy((((i % 1000) * 761) % 1000).astype(np.float32) / np.float32(1000)).reshape(shape)
    return x, torch.arange(batch) % 10
`;
