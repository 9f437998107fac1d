#!/usr/bin/env python3
"""PyTorch oracle for `finetune --bn train` (test/train/bn.test.ts reads what this writes).

Small networks with BatchNorm are exported to ONNX in eval mode (so each BN is an inference-mode
BatchNormalization node with its running statistics as initializers), then trained K steps in PyTorch in
train mode on fixed batches. Recorded per scenario: the loss before each step, and every parameter and
running statistic after each step, and eval-mode logits on a held-out batch after the last step.

Run with Debian's PyTorch 1.13 (apt-get install python3-torch) from the repository root:
    /usr/bin/python3 test/train/oracles/bn_train.py
It rewrites test/train/oracles/bn_train/*.{onnx,npz,json}; the output is deterministic (seeded, CPU, 1 thread).
"""
import json
import os

import numpy as np
import torch
from torch import nn

torch.manual_seed(0)
torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'bn_train')
STEPS = 3


def cnn(conv_bias=False):
    # BatchNorm2d after bias-free convs (the usual ResNet pattern), one with its own momentum (0.2: exported as 0.8).
    # A bias right before a train-mode BN has a true gradient of 0 (the batch mean takes it out), so Adam, which
    # divides by the gradient's own size, turns both sides' rounding noise into steps of random sign: only the
    # scenario whose second BN is frozen has that bias.
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=conv_bias), nn.BatchNorm2d(6, momentum=0.2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))


def mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def perturb_bn(model):
    """Running statistics and affine parameters away from their 0/1 defaults, so each one matters."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.5)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
                m.weight.copy_(torch.rand_like(m.weight) + 0.5)
                m.bias.copy_(torch.randn_like(m.bias) * 0.2)


SCENARIOS = [
    # name, seed, network, input shape per sample, batch size, optimizer, lr, BN modules frozen (eval mode, no grad)
    ('cnn_adam', 1, cnn, (2, 6, 6), 8, 'adam', 0.01, []),
    ('cnn_momentum_frozen4', 2, lambda: cnn(conv_bias=True), (2, 6, 6), 8, 'momentum', 0.05, ['4']),
    ('mlp_sgd', 3, mlp, (4,), 6, 'sgd', 0.1, []),
]


def run(name, seed, make, sample, batch, opt_name, lr, frozen):
    torch.manual_seed(seed)
    model = make()
    perturb_bn(model)
    model.eval()
    x0 = torch.randn(batch, *sample)
    onnx_path = os.path.join(OUT, f'{name}.onnx')
    # PRESERVE with the model in eval mode: inference BatchNormalization nodes, not folded into the Conv
    torch.onnx.export(model, x0, onnx_path, opset_version=13, input_names=['x'], output_names=['logits'],
                      dynamic_axes={'x': {0: 'batch'}, 'logits': {0: 'batch'}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    xs = torch.randn(STEPS, batch, *sample) * 1.5 + 0.3
    ys = torch.randint(0, 3, (STEPS, batch))
    xval = torch.randn(batch, *sample)
    arrays = {'x': xs.numpy(), 'y': ys.numpy(), 'x_val': xval.numpy()}
    for k, v in model.state_dict().items():
        if not k.endswith('num_batches_tracked'):
            arrays[f'initial/{k}'] = v.numpy().copy()

    frozen_names = {f'{m}.{p}' for m in frozen for p in ('weight', 'bias')}
    params = [(k, p) for k, p in model.named_parameters() if k not in frozen_names]
    for k, p in model.named_parameters():
        p.requires_grad_(k not in frozen_names)
    ps = [p for _, p in params]
    if opt_name == 'adam':
        opt = torch.optim.Adam(ps, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    elif opt_name == 'momentum':
        opt = torch.optim.SGD(ps, lr=lr, momentum=0.9)
    else:
        opt = torch.optim.SGD(ps, lr=lr)
    model.train()
    for m in frozen:
        model.get_submodule(m).eval()
    losses = []
    for t in range(STEPS):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xs[t]), ys[t])
        loss.backward()
        opt.step()
        losses.append(loss.item())
        for k, v in model.state_dict().items():
            if not k.endswith('num_batches_tracked'):
                arrays[f'step{t + 1}/{k}'] = v.detach().numpy().copy()
    model.eval()
    with torch.no_grad():
        arrays['logits_val'] = model(xval).numpy()
    np.savez(os.path.join(OUT, f'{name}.npz'), **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    bn_stats = [k for k in model.state_dict() if k.endswith('running_mean') or k.endswith('running_var')]
    return {
        'optimizer': opt_name, 'lr': lr, 'steps': STEPS, 'batch': batch, 'losses': losses,
        'parameters': [k for k, _ in params], 'frozen': sorted(frozen_names), 'running': bn_stats,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    meta = {'torch': torch.__version__, 'scenarios': {}}
    for s in SCENARIOS:
        meta['scenarios'][s[0]] = run(*s)
    with open(os.path.join(OUT, 'expected.json'), 'w') as f:
        json.dump(meta, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
