"""Operations per training step on PyTorch CPU tensors: a proxy for kernel launches on a GPU.

Every ATen operation that reaches the dispatcher is counted, except views and the profiler's markers
(``_record_function_enter/exit``, which autograd records around a backward pass): they launch no kernel.
Per step = (operations of a 12-batch epoch − those of a 4-batch epoch) / 8, which cancels what runs
once per epoch. Used by the test suite (``tests/test_torch_ops.py``) and by
``benchmarks/torch_ops.py``, which prints the table.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

SIZES = (784, 256, 256, 10)
BATCH = 128


class Count(TorchDispatchMode):
    """Counts the non-view ATen operations run under it, by name."""

    def __init__(self):
        super().__init__()
        self.ops = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket.__name__)
        if not func.is_view and not name.startswith("_record_function"):
            self.ops[name] += 1
        return func(*args, **(kwargs or {}))


def data(n, sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    X = torch.from_numpy(rng.standard_normal((n, sizes[0])).astype(np.float32))
    T = torch.from_numpy(np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], n)])
    return X, T


def per_step(epoch, sizes=SIZES, batch=BATCH):
    """Operations per step of ``epoch(X, T)`` (one epoch over X, T) and the per-op Counter of one step."""
    counts = []
    for batches in (4, 12):
        X, T = data(batches * batch, sizes)
        epoch(X, T)  # warm: workspaces, state and graphs exist before counting
        with Count() as c:
            epoch(X, T)
        counts.append(c.ops)
    diff = counts[1].copy()
    diff.subtract(counts[0])
    return sum(diff.values()) / 8, Counter({k: v / 8 for k, v in diff.items() if v})


def ffnn_epoch(optimizer="sgd", diagnostics=True, sizes=SIZES, batch=BATCH, **train):
    """One epoch of ffnn.train on a float32 relu/softmax network of ``sizes`` (built once)."""
    import ffnn

    net = ffnn.Network(sizes, "relu", "softmax", dtype="float32", seed=0, device="cpu")
    opt = {"sgd": lambda: ffnn.SGD(0.01), "adam": lambda: ffnn.Adam(1e-3)}[optimizer]()

    def epoch(X, T):
        ffnn.train(net, X, T, loss="cross_entropy", optimizer=opt, epochs=1, batch_size=batch, seed=0,
                   diagnostics=diagnostics, progress=False, **train)

    return epoch


def handwritten_epoch(optimizer="sgd", sizes=SIZES, batch=BATCH, **opt_kw):
    """The loop a PyTorch user writes: nn.Sequential, CrossEntropyLoss, autograd, torch.optim."""
    torch.manual_seed(0)
    layers = []
    for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        layers.append(torch.nn.Linear(a, b))
        if l < len(sizes) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    loss_fn = torch.nn.CrossEntropyLoss()
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.01, **opt_kw)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, **opt_kw)
    gen = torch.Generator().manual_seed(0)

    def epoch(X, T):
        y = T.argmax(dim=1)
        perm = torch.randperm(X.shape[0], generator=gen)
        for k in range(0, X.shape[0], batch):
            idx = perm[k:k + batch]
            xb, yb = X[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()

    return epoch
