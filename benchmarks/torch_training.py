"""Training speed on PyTorch tensors: ffnn's PyTorch fast path against PyTorch loops written by hand.

    python benchmarks/torch_training.py [--device cpu|cuda] [--samples 20000] [--threads 2] [--rounds 3]

784-256-256-10 relu/softmax, cross-entropy, plain SGD η = 0.01, float32, batch 128 (and 1,024), data
already on the device, one epoch per contender per round, interleaved; the best round counts.
Contenders: ffnn on the device (its PyTorch fast path), ffnn on the same tensors through the
array-namespace core (how PyTorch tensors trained before the fast path), ffnn on NumPy arrays (its
NumPy fast path), PyTorch eager (nn.Linear, autograd, optim.SGD) and the same step written by hand
without autograd. On CUDA, ``ffnn bench --gpu`` adds the CUDA-graph and torch.compile loops.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import ffnn
from ffnn.cli import bench_gpu
from ffnn.training import torch_engine

SIZES = (784, 256, 256, 10)


def ffnn_seconds(X, T, b, device, core=False):
    """Seconds of one epoch of ffnn on tensors X, T (the second of two: workspaces are built in the first)."""
    saved = torch_engine.supports
    if core:
        torch_engine.supports = lambda *a, **k: False
    try:
        net = ffnn.Network(SIZES, "relu", "softmax", dtype="float32", seed=0, device=device)
        h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.01), epochs=2, batch_size=b, seed=0)
    finally:
        torch_engine.supports = saved
    return h.time[1]


def numpy_seconds(X, T, b):
    net = ffnn.Network(SIZES, "relu", "softmax", dtype="float32", seed=0)
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.01), epochs=2, batch_size=b, seed=0)
    return h.time[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--samples", type=int, default=20000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batches", default="128,1024")
    args = p.parse_args()
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    X, y, T = bench_gpu._data(torch, SIZES, args.samples, device, torch.float32)
    Xn, Tn = X.cpu().numpy(), T.cpu().numpy()
    print(f"{'-'.join(map(str, SIZES))} float32, {args.samples} samples, device {device}, {args.threads} threads, "
          f"torch {torch.__version__}; samples/s, best of {args.rounds} interleaved rounds")
    with threadpool_limits(args.threads):
        for b in (int(v) for v in args.batches.split(",")):
            contenders = {
                "ffnn (torch fast path)": lambda: ffnn_seconds(X, T, b, device),
                "ffnn (torch, core path)": lambda: ffnn_seconds(X, T, b, device, core=True),
                "ffnn (NumPy)": lambda: numpy_seconds(Xn, Tn, b),
                "pytorch eager": lambda: bench_gpu.run_eager(torch, SIZES, b, X, y, T, device),
                "pytorch manual": lambda: bench_gpu.run_manual(torch, SIZES, b, X, y, T, device),
            }
            best = {c: float("inf") for c in contenders}
            for _ in range(args.rounds):
                for c, fn in contenders.items():
                    t0 = time.perf_counter()
                    sec = fn()
                    sec = sec["seconds"] if isinstance(sec, dict) else sec  # bench_gpu's contenders: a record
                    best[c] = min(best[c], sec if sec > 0 else time.perf_counter() - t0)
            rate = {c: args.samples / s for c, s in best.items()}
            print(f"batch {b}: " + "  ".join(f"{c} {r:,.0f}/s" for c, r in rate.items()))
            f = rate["ffnn (torch fast path)"]
            print(f"  ffnn torch fast path: x{f / rate['pytorch eager']:.2f} PyTorch eager, "
                  f"x{f / rate['pytorch manual']:.2f} hand-written, x{f / rate['ffnn (torch, core path)']:.2f} "
                  f"the core path, x{f / rate['ffnn (NumPy)']:.2f} ffnn on NumPy")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
