"""The networks ``ffnn bench`` trains and their synthetic data, shared by the bench and its peers'
worker processes (:mod:`ffnn.cli.bench_peers`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SIZES", "LR", "Net", "NETWORKS", "training_flops", "synthetic"]

SIZES = (784, 256, 256, 10)
LR = 0.01


@dataclass(frozen=True)
class Net:
    sizes: tuple
    data: str            # what the synthetic data imitates
    batches: tuple
    quick_batches: tuple
    samples: dict        # batch size → samples per epoch; None: every other batch size
    quick_samples: dict


NETWORKS = {
    "784-256-256-10": Net(SIZES, "MNIST-shaped", (1, 32, 128, 1024), (1, 128),
                          {1: 3000, 32: 20000, None: 60000}, {1: 500, None: 10240}),
    "64-100-10": Net((64, 100, 10), "digits-shaped", (1, 32, 200, 1024), (1, 200),
                     {None: 8192}, {1: 1024, None: 8000}),
    "30-16-2": Net((30, 16, 2), "breast-cancer-shaped, standardised", (1, 32, 200, 1024), (1, 200),
                   {None: 8192}, {1: 1024, None: 8000}),
}

def training_flops(n, sizes=SIZES):
    """FLOPs of one training pass over n samples: forward, backward, minus the input gradient."""
    fwd = 2 * n * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 3 * fwd - 2 * n * sizes[0] * sizes[1]


def synthetic(n, dtype, seed=0, network="784-256-256-10"):
    """(X, y, T) shaped like ``network``'s data set: Gaussian classes around random centres."""
    sizes = NETWORKS[network].sizes
    d, k = sizes[0], sizes[-1]
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    if network == "784-256-256-10":  # features in [0, 1]-ish
        centers = rng.uniform(0, 1, size=(k, d))
        X = centers[y] + 0.3 * rng.normal(size=(n, d))
    elif network == "64-100-10":  # 8 × 8 intensities 0..16, scaled by 16 as load_digits users do
        centers = rng.uniform(0, 16, size=(k, d))
        X = np.clip(np.rint(centers[y] + 4 * rng.normal(size=(n, d))), 0, 16) / 16
    else:  # 30 positive measurements on scales from 0.01 to 1000, standardised
        scale = 10 ** rng.uniform(-2, 3, size=d)
        centers = scale * (1 + rng.uniform(0, 1, size=(k, d)))
        X = np.abs(centers[y] + 0.5 * scale * rng.normal(size=(n, d)))
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(dtype), y, np.eye(k, dtype=dtype)[y]
