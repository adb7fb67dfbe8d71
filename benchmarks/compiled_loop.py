"""Where the time of a training step goes, interpreted and compiled, per network size.

    taskset -c 1 python benchmarks/compiled_loop.py            # one core, one BLAS thread
    taskset -c 1 python benchmarks/compiled_loop.py --quick

For each network (30-16-2, 64-100-10, 784-256-256-10; relu hidden, softmax + cross-entropy, plain
SGD η = 0.01, float32) and batch size, one epoch of synthetic data is trained by ffnn's interpreted
loop (``train(loop="interpreted")``, the NumPy fast path) and by the compiled loop
(``loop="compiled"``), each with and without the gradient-flow diagnostics, interleaved, best of
``--rounds`` rounds. Per step it prints:

    products   the step's matrix products alone (np.matmul on the step's shapes: forward, δ, ∂J/∂W),
               timed in the same run — what a step cannot go below with this BLAS
    interpreted, compiled   the whole step, and what is left once the products are taken away
    diag       the diagnostics' share of a compiled step
    flops      the compiled step's time over the time its FLOPs take at the products' measured rate

and then the first-fit latency: a fresh process that imports ffnn and trains one epoch of a network
of a new shape, with an empty compiled-code cache (numba compiles) and with a warm one. The machine's
load average is printed at the start and the end: compare only runs made on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

NETWORKS = {"30-16-2": (30, 16, 2), "64-100-10": (64, 100, 10), "784-256-256-10": (784, 256, 256, 10)}
BATCHES = {"30-16-2": (1, 32, 200, 1024), "64-100-10": (1, 32, 200, 1024), "784-256-256-10": (1, 32, 128, 1024)}


def _data(sizes, n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0])).astype(np.float32)
    T = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], n)]
    return X, T


def _epoch(sizes, X, T, b, loop, diagnostics):
    import ffnn

    net = ffnn.Network(sizes, "relu", "softmax", seed=0, dtype="float32")
    t0 = time.perf_counter()
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.01), epochs=1, batch_size=b, seed=0,
                   loop=loop, diagnostics=diagnostics)
    return time.perf_counter() - t0, h.loop


def _products(sizes, b, reps):
    """Seconds of one step's matrix products alone: a[l−1] @ W[l], δ[l+1] @ W[l+1]ᵀ, a[l−1]ᵀ @ δ[l]."""
    rng = np.random.default_rng(1)
    Ws = [rng.normal(size=(p, q)).astype(np.float32) for p, q in zip(sizes[:-1], sizes[1:])]
    As = [rng.normal(size=(b, s)).astype(np.float32) for s in sizes]
    outs = [np.empty((b, s), np.float32) for s in sizes]
    grads = [np.empty_like(W) for W in Ws]
    best = np.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        for l, W in enumerate(Ws):
            np.matmul(As[l], W, out=outs[l + 1])
            np.matmul(As[l].T, As[l + 1], out=grads[l])
            if l > 0:
                np.matmul(As[l + 1], W.T, out=outs[l])
        best = min(best, time.perf_counter() - t0)
    return best


def _flops(sizes, b):
    fwd = 2 * b * sum(p * q for p, q in zip(sizes[:-1], sizes[1:]))
    return 3 * fwd - 2 * b * sizes[0] * sizes[1]


def step_table(names, rounds, quick):
    rows = []
    print(f"{'network':<15} {'batch':>5} {'products':>9} {'interpreted':>12} {'  (rest)':>9} {'compiled':>9} "
          f"{'  (rest)':>9} {'speed-up':>8} {'diag':>6} {'flops':>6}   (µs per step)")
    for name in names:
        sizes = NETWORKS[name]
        for b in BATCHES[name][:2] if quick else BATCHES[name]:
            n = 8192 if sizes[0] < 700 else min(4096, max(16 * b, 512))
            X, T = _data(sizes, n)
            steps = -(-n // b)
            _epoch(sizes, X, T, b, "compiled", True)  # compile/load once, outside the timing
            best = {}
            for _ in range(rounds):  # interleaved: each round runs every variant once
                for key in (("interpreted", True), ("compiled", True), ("compiled", False)):
                    sec, loop = _epoch(sizes, X, T, b, *key)
                    best[key] = min(best.get(key, np.inf), sec)
            prod = _products(sizes, b, 20) * 1e6
            it, co, co_nd = (best[k] / steps * 1e6 for k in (("interpreted", True), ("compiled", True),
                                                             ("compiled", False)))
            rate = _flops(sizes, b) / (prod * 1e-6)
            row = dict(network=name, batch=b, products_us=prod, interpreted_us=it, compiled_us=co,
                       compiled_no_diagnostics_us=co_nd, speedup=it / co, diagnostics_share=(co - co_nd) / co,
                       flops_ratio=co * 1e-6 / (_flops(sizes, b) / rate))
            rows.append(row)
            print(f"{name:<15} {b:>5} {prod:>9.1f} {it:>12.1f} {it - prod:>9.1f} {co:>9.1f} {co - prod:>9.1f} "
                  f"{it / co:>7.2f}x {100 * row['diagnostics_share']:>5.1f}% {row['flops_ratio']:>5.2f}x",
                  flush=True)
    return rows


_FIRST_FIT = """
import time
t0 = time.perf_counter()
import numpy as np, ffnn
rng = np.random.default_rng(0)
X = rng.normal(size=(512, {n_in})).astype("{dtype}"); T = np.eye(3, dtype="{dtype}")[rng.integers(0, 3, 512)]
net = ffnn.Network([{n_in}, 17, 3], "relu", "softmax", seed=0, dtype="{dtype}")
h = ffnn.train(net, X, T, loss="cross_entropy", epochs=1, batch_size=32, seed=0)
print(time.perf_counter() - t0, h.loop)
"""


def first_fit(dtype="float32"):
    """Seconds from a fresh interpreter's ``import ffnn`` to the end of its first epoch: with an empty
    cache of compiled code, then with the cache that run left, then on a new shape."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label, n_in in (("cold cache", 11), ("warm cache", 11), ("warm cache, new shape", 23)):
            r = subprocess.run([sys.executable, "-c", _FIRST_FIT.format(n_in=n_in, dtype=dtype)], env=env,
                               capture_output=True, text=True, check=True)
            sec, loop = r.stdout.split()
            out[label] = float(sec)
            print(f"first fit, {label:<22} {float(sec):6.2f} s  ({loop} loop, {dtype})", flush=True)
        env = dict(env, FFNN_LOOP="interpreted")
        r = subprocess.run([sys.executable, "-c", _FIRST_FIT.format(n_in=11, dtype=dtype)], env=env,
                           capture_output=True, text=True, check=True)
        out["interpreted"] = float(r.stdout.split()[0])
        print(f"first fit, {'interpreted loop':<22} {out['interpreted']:6.2f} s", flush=True)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="two batch sizes per network, two rounds")
    p.add_argument("--network", action="append", choices=list(NETWORKS), help="repeatable; default all three")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--no-first-fit", dest="first_fit", action="store_false")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    print(f"load average at start: {os.getloadavg()[0]:.2f}; CPUs: {sorted(os.sched_getaffinity(0))}")
    with threadpool_limits(1):
        step_table(args.network or list(NETWORKS), 2 if args.quick else args.rounds, args.quick)
    if args.first_fit:
        first_fit()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
