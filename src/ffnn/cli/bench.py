"""``ffnn bench``: training speed against PyTorch eager, scikit-learn's MLPClassifier and a plain NumPy
loop, measured side by side, interleaved, in one run.

The network is the MNIST-shaped 784-256-256-10 (relu, softmax, cross-entropy, plain SGD η = 0.01)
on synthetic data (60,000 × 784, 10 classes). For each batch size, dtype and thread count every
contender trains on the same samples in turn, round after round, and the best round counts
(the least disturbed by the machine). Efficiency is ffnn's training FLOP/s over the FLOP/s of the
same matrix products alone, timed in the same run:

    forward   2 N Σ_l S_{l−1} S_l
    backward  2 × forward − 2 N S_0 S_1      (no gradient for the inputs)
"""

from __future__ import annotations

import json
import platform
import time
import tracemalloc
import warnings

import numpy as np

SIZES = (784, 256, 256, 10)
LR = 0.01


def training_flops(n, sizes=SIZES):
    """FLOPs of one training pass over n samples: forward, backward, minus the input gradient."""
    fwd = 2 * n * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 3 * fwd - 2 * n * sizes[0] * sizes[1]


def synthetic(n, dtype, seed=0):
    """MNIST-shaped data: 10 Gaussian classes in 784 dimensions, features in [0, 1]-ish."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    centers = rng.uniform(0, 1, size=(10, SIZES[0]))
    X = (centers[y] + 0.3 * rng.normal(size=(n, SIZES[0]))).astype(dtype)
    return X, y, np.eye(10, dtype=dtype)[y]


# --- contenders: each returns seconds to train one pass over X[:n] with batch size b ---------------

def run_ffnn(X, y, T, b, dtype, seed=0, diagnostics=True):
    import ffnn

    net = ffnn.Network(SIZES, "relu", "softmax", dtype=np.dtype(dtype).name, seed=seed)
    t0 = time.perf_counter()
    ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(LR), epochs=1, batch_size=b, seed=seed,
               diagnostics=diagnostics)
    return time.perf_counter() - t0


def run_ffnn_without_diagnostics(X, y, T, b, dtype, seed=0):
    """ffnn with ``diagnostics=False``: the column that prices the gradient-flow diagnostics."""
    return run_ffnn(X, y, T, b, dtype, seed, diagnostics=False)


def run_numpy(X, y, T, b, dtype, seed=0):
    """The plain NumPy loop a user writes in a few minutes."""
    rng = np.random.default_rng(seed)
    Ws = [(rng.normal(size=(i, o)) * np.sqrt(2 / i)).astype(dtype) for i, o in zip(SIZES[:-1], SIZES[1:])]
    bs = [np.zeros(o, dtype) for o in SIZES[1:]]
    t0 = time.perf_counter()
    order = rng.permutation(len(X))
    for s in range(0, len(X), b):
        idx = order[s:s + b]
        a = [X[idx]]
        for l, (W, bb) in enumerate(zip(Ws, bs)):
            z = a[-1] @ W + bb
            a.append(np.maximum(z, 0) if l < len(Ws) - 1 else z)
        z = a[-1] - a[-1].max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        d = (p - T[idx]) / len(idx)
        for l in range(len(Ws) - 1, -1, -1):
            gW, gb = a[l].T @ d, d.sum(axis=0)
            if l > 0:
                d = (d @ Ws[l].T) * (a[l] > 0)
            Ws[l] -= LR * gW
            bs[l] -= LR * gb
    return time.perf_counter() - t0


def run_torch(X, y, T, b, dtype, seed=0):
    import torch

    torch.manual_seed(seed)
    tdt = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(torch.nn.Linear(n_in, n_out, dtype=tdt))
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    lossf = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    order = torch.randperm(len(X), generator=g)
    for s in range(0, len(X), b):
        idx = order[s:s + b]
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(Xt[idx]), yt[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def run_sklearn(X, y, T, b, dtype, seed=0):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(SIZES[1:-1], solver="sgd", momentum=0.0, learning_rate_init=LR, batch_size=b,
                        max_iter=1, shuffle=True, random_state=seed, tol=0.0, n_iter_no_change=10**9)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return time.perf_counter() - t0


def gemm_seconds(b, dtype, reps):
    """Seconds for the matrix products of one training step at batch size b, alone (best of reps)."""
    rng = np.random.default_rng(1)
    Ws = [rng.normal(size=(i, o)).astype(dtype) for i, o in zip(SIZES[:-1], SIZES[1:])]
    hs = [rng.normal(size=(b, s)).astype(dtype) for s in SIZES]
    outs_f = [np.empty((b, s), dtype) for s in SIZES[1:]]
    outs_g = [np.empty_like(W) for W in Ws]
    outs_d = [np.empty((b, s), dtype) for s in SIZES[:-1]]
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        for l, W in enumerate(Ws):
            np.matmul(hs[l], W, out=outs_f[l])
        for l in range(len(Ws) - 1, -1, -1):
            np.matmul(hs[l].T, hs[l + 1], out=outs_g[l])
            if l > 0:
                np.matmul(hs[l + 1], Ws[l].T, out=outs_d[l])
        best = min(best, time.perf_counter() - t0)
    return best


def square_gemm_flops(dtype, n=2048, reps=3):
    rng = np.random.default_rng(2)
    A = rng.normal(size=(n, n)).astype(dtype)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        A @ A
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def peak_memory(X, T, dtype, b=128, epochs=2):
    """ffnn's peak traced memory per epoch during training, and the budget it is held to."""
    import ffnn

    net = ffnn.Network(SIZES, "relu", "softmax", dtype=np.dtype(dtype).name, seed=0)
    opt = ffnn.SGD(LR)
    peaks = []
    for _ in range(epochs):
        tracemalloc.start()
        ffnn.train(net, X, T, loss="cross_entropy", optimizer=opt, epochs=1, batch_size=b, seed=0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    item = np.dtype(dtype).itemsize
    params = sum(p.size for p in net.parameters()) * item
    acts = b * sum(SIZES) * item
    data = X.nbytes + T.nbytes
    budget = data + params + params + 0 + acts  # data + parameters + gradients + SGD state (none) + activations
    return [data + p for p in peaks], budget


CONTENDERS = {"ffnn": run_ffnn, "ffnn no-diag": run_ffnn_without_diagnostics, "numpy loop": run_numpy,
              "pytorch": run_torch, "scikit-learn": run_sklearn}


def main(quick=False, json_path=None, n_samples=60000):
    """Run the comparison and print one row per setting; with ``json_path``, also write the numbers."""
    names, torch = _contenders()
    plan = _plan(quick)
    print(f"ffnn bench: {'-'.join(map(str, SIZES))} relu/softmax, cross-entropy, plain SGD; synthetic "
          f"{n_samples} x {SIZES[0]}; {platform.processor() or platform.machine()}; best of {plan['rounds']} "
          f"interleaved rounds")
    if torch is None:
        print("(PyTorch is not installed: its column is left out; pip install torch to include it)")
    results = _run_grid(plan, names, torch, n_samples, quick)
    square = {np.dtype(d).name: square_gemm_flops(d) / 1e9 for d in plan["dtypes"]}
    print("square 2048 matrix multiply, GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in square.items())
          + " (the machine's peak, for reference; efficiency uses the training step's own shapes)")
    peaks, budget = _report_memory(n_samples)
    if json_path:
        _write_json(json_path, {"network": SIZES, "results": results, "square_gemm_gflops": square,
                                "memory": {"peaks_bytes": peaks, "budget_bytes": budget}})
    return 0


def _contenders():
    """The contenders that can run here, and the torch module (None when it is not installed)."""
    try:
        import torch
    except ImportError:
        torch = None
    return [c for c in CONTENDERS if c != "pytorch" or torch is not None], torch


def _plan(quick):
    """Batch sizes, dtypes, thread counts and rounds: a short plan with ``quick``."""
    return {"batches": (1, 128) if quick else (1, 32, 128, 1024),
            "dtypes": (np.float32,) if quick else (np.float32, np.float64),
            "threads": (2,) if quick else (1, 2), "rounds": 2 if quick else 3}


def _run_grid(plan, names, torch, n_samples, quick):
    """Every (dtype, threads, batch) setting, each printed as it finishes; returns the rows."""
    from threadpoolctl import threadpool_limits

    results = []
    for dtype in plan["dtypes"]:
        Xall, yall, Tall = synthetic(n_samples, dtype)
        for nthreads in plan["threads"]:
            with threadpool_limits(nthreads):
                if torch is not None:
                    torch.set_num_threads(nthreads)
                for b in plan["batches"]:
                    # enough samples for a steady rate, capped so that batch 1 stays short
                    n = min(n_samples, {1: 3000, 32: 20000}.get(b, n_samples))
                    if quick:
                        n = min(n, 3000 if b == 1 else 20000)
                    row = _bench_row(Xall[:n], yall[:n], Tall[:n], b, dtype, nthreads, names, plan["rounds"])
                    results.append(row)
                    _print_row(row, names)
    return results


def _bench_row(X, y, T, b, dtype, nthreads, names, rounds):
    """One setting: every contender's best of ``rounds``, and ffnn's efficiency."""
    n = len(X)
    best = {c: float("inf") for c in names}
    for r in range(rounds):
        for c in names:
            if c == "scikit-learn" and b == 1 and r > 0:
                continue  # one round is enough at its speed
            best[c] = min(best[c], CONTENDERS[c](X, y, T, b, dtype, seed=r))
    rate = {c: n / best[c] for c in names}
    if b > 8:
        gemm = gemm_seconds(b, dtype, reps=20) * (n / b)
        eff = gemm / best["ffnn"]  # (training FLOP/s) / (the same products' FLOP/s alone)
    else:  # one sample's products are matrix-vector ones: no matrix-multiply rate to compare
        gemm, eff = None, None
    return {"dtype": np.dtype(dtype).name, "threads": nthreads, "batch": b, "samples": n,
            "samples_per_s": rate, "efficiency": eff,
            "gemm_gflops": None if gemm is None else training_flops(n) / gemm / 1e9,
            "ffnn_gflops": training_flops(n) / best["ffnn"] / 1e9}


def _report_memory(n_samples):
    """Print and return ffnn's peak memory per epoch against its budget."""
    Xm, _, Tm = synthetic(min(n_samples, 20000), np.float32)
    peaks, budget = peak_memory(Xm, Tm, np.float32)
    print(f"memory, float32 batch 128 on {len(Xm)} samples: peak per epoch "
          + ", ".join(f"{p / 2**20:.1f} MiB" for p in peaks)
          + f"; budget (data + params + grads + one batch of activations) {budget / 2**20:.1f} MiB; "
          f"ratio {max(peaks) / budget:.2f}")
    return peaks, budget


def _write_json(path, doc):
    from .._files import atomic_write
    from .errors import CommandError

    try:
        atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode(), "--json")
    except OSError as exc:
        raise CommandError(str(exc)) from None
    print(f"numbers written to {path}")


def _print_row(row, names):
    r = row["samples_per_s"]
    head = f"{row['dtype']:>7} {row['threads']}t b={row['batch']:<5}"
    cols = "  ".join(f"{c} {r[c]:>9,.0f}/s" for c in names)
    ratios = "  ".join(f"x{r['ffnn'] / r[c]:.2f} vs {c}" for c in names if c != "ffnn")
    if row["efficiency"] is None:
        eff = f"efficiency n/a ({row['ffnn_gflops']:.1f} GFLOP/s; matrix-vector products, bound by memory)"
    else:
        eff = f"efficiency {row['efficiency']:.2f} ({row['ffnn_gflops']:.0f} of {row['gemm_gflops']:.0f} GFLOP/s)"
    print(f"{head} {cols}  | {ratios} | {eff}", flush=True)
