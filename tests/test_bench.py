"""The benchmark's arithmetic and plumbing (never its timings)."""

import importlib.util

import numpy as np

from ffnn.cli import bench


def test_training_flops_counts_forward_backward_minus_input_gradient():
    n = 128
    fwd = 2 * n * (784 * 256 + 256 * 256 + 256 * 10)
    assert bench.training_flops(n) == fwd + 2 * fwd - 2 * n * 784 * 256
    assert bench.training_flops(1, (3, 2)) == 3 * 12 - 12  # one layer: forward + weight gradient only


def test_contenders_train_the_same_data(tmp_path):
    X, y, T = bench.synthetic(256, np.float32)
    assert X.shape == (256, 784) and T.shape == (256, 10) and X.dtype == np.float32
    for name, run in bench.CONTENDERS.items():
        if name == "pytorch" and importlib.util.find_spec("torch") is None:
            continue
        assert run(X, y, T, 64, np.float32) > 0
    assert bench.gemm_seconds(32, np.float32, reps=2) > 0
    peaks, budget = bench.peak_memory(X, T, np.float32, b=64, epochs=2)
    assert len(peaks) == 2 and budget > X.nbytes
