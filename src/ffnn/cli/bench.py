"""``ffnn bench``: ffnn's training speed on the CPU against its strongest peers, side by side, interleaved, in one run.

Contenders (a column is left out, with a note saying why, when its package is missing or it fails here):

* ``ffnn``: ``ffnn.train`` (the row names the training loop it ran, ``History.loop``, when recorded),
  and ``ffnn no-diag``, the same with ``diagnostics=False``;
* ``numpy loop``: the plain NumPy loop a user writes in a few minutes — a target;
* ``jax jit-epoch``: the whole epoch in one ``jax.jit`` over ``jax.lax.scan`` of SGD steps — a target
  (see :mod:`ffnn.cli.bench_peers`);
* ``pytorch``: PyTorch eager — ``nn.Sequential``, ``nn.CrossEntropyLoss``, ``optim.SGD``, autograd;
* ``torch.compile``: a hand-written PyTorch step compiled by inductor (see :mod:`ffnn.cli.bench_peers`);
* ``scikit-learn``: ``MLPClassifier(solver="sgd", momentum=0)`` (for two classes it has one logistic
  output unit where the others have a 2-way softmax).

Networks (relu hidden layers, softmax output, cross-entropy, plain SGD η = 0.01, one epoch, synthetic
data): 784-256-256-10 (MNIST-shaped) at batch sizes 1, 32, 128 and 1024; 64-100-10 (digits-shaped) and
30-16-2 (breast-cancer-shaped, standardised features) at 1, 32, 200 and 1024 (a batch is clipped to
the samples). float32 (float64 rows with ``--dtype``), 1 and 2 threads: threadpoolctl for the BLAS of
NumPy and SciPy, ``torch.set_num_threads`` for PyTorch. XLA fixes its threads when its process starts,
so JAX runs in a worker process per thread count, pinned to that many CPUs (one thread: also
``--xla_cpu_multi_thread_eigen=false``).

Method: every contender trains on the same samples in turn within a round, its order rotated from one
round to the next, and the best round counts (the least disturbed by the machine); an epoch longer
than 20 s (2 s with ``--quick``) is not repeated, nor scikit-learn's at batch 1. All run on the
same cores: the bench pins itself (every thread) to the first two CPUs it may use, and its children
inherit that; run it as ``taskset -c 0,1 ffnn bench`` to pin it from the start. The load average is
printed at the start and at the end. Compilation (JAX's jit, torch.compile) happens before the timed
epochs and is reported apart; the first fit of a network in a fresh process, compilation included, is
its own table. The ratios are ffnn's samples/s over each contender's.

Efficiency is ffnn's training FLOP/s over the FLOP/s of the same matrix products alone, timed in the
same run:

    forward   2 N Σ_l S_{l−1} S_l
    backward  2 × forward − 2 N S_0 S_1      (no gradient for the inputs)
"""

from __future__ import annotations

import json
import os
import platform
import time
import tracemalloc
import warnings

import numpy as np

from . import bench_peers
from .bench_peers import PeerFailed

from .bench_data import LR, NETWORKS, SIZES, Net, synthetic, training_flops  # noqa: F401 - the bench's names

ORDER = ("ffnn", "ffnn no-diag", "numpy loop", "jax jit-epoch", "pytorch", "torch.compile", "scikit-learn")
TARGETS = ("jax jit-epoch", "numpy loop")  # the two ratios asked for by name
SHORT = {"ffnn": "ffnn", "ffnn no-diag": "no-diag", "numpy loop": "numpy", "jax jit-epoch": "jax",
         "pytorch": "torch", "torch.compile": "t.compile", "scikit-learn": "sklearn"}


# --- contenders: each returns seconds to train one pass over X with batch size b --------------------

def run_ffnn(X, y, T, b, dtype, seed=0, diagnostics=True, sizes=SIZES, info=None):
    import ffnn

    net = ffnn.Network(sizes, "relu", "softmax", dtype=np.dtype(dtype).name, seed=seed)
    t0 = time.perf_counter()
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(LR), epochs=1, batch_size=b, seed=seed,
                   diagnostics=diagnostics)
    seconds = time.perf_counter() - t0
    if info is not None:
        info["loop"] = getattr(h, "loop", None)
    return seconds


def run_ffnn_without_diagnostics(X, y, T, b, dtype, seed=0, sizes=SIZES, info=None):
    """ffnn with ``diagnostics=False``: the column that prices the gradient-flow diagnostics."""
    return run_ffnn(X, y, T, b, dtype, seed, diagnostics=False, sizes=sizes, info=info)


def run_numpy(X, y, T, b, dtype, seed=0, sizes=SIZES, info=None):
    """The plain NumPy loop a user writes in a few minutes."""
    rng = np.random.default_rng(seed)
    Ws, bs = bench_peers.init_params(sizes, dtype, seed)
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


def run_torch(X, y, T, b, dtype, seed=0, sizes=SIZES, info=None):
    import torch

    torch.manual_seed(seed)
    tdt = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out, dtype=tdt))
        if i < len(sizes) - 2:
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


def run_sklearn(X, y, T, b, dtype, seed=0, sizes=SIZES, info=None):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(sizes[1:-1], solver="sgd", momentum=0.0, learning_rate_init=LR, batch_size=b,
                        max_iter=1, shuffle=True, random_state=seed, tol=0.0, n_iter_no_change=10**9)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return time.perf_counter() - t0


def gemm_seconds(b, dtype, reps, sizes=SIZES):
    """Seconds for the matrix products of one training step at batch size b, alone (best of reps)."""
    rng = np.random.default_rng(1)
    Ws = [rng.normal(size=(i, o)).astype(dtype) for i, o in zip(sizes[:-1], sizes[1:])]
    hs = [rng.normal(size=(b, s)).astype(dtype) for s in sizes]
    outs_f = [np.empty((b, s), dtype) for s in sizes[1:]]
    outs_g = [np.empty_like(W) for W in Ws]
    outs_d = [np.empty((b, s), dtype) for s in sizes[:-1]]
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


def peak_memory(X, T, dtype, b=128, epochs=2, sizes=SIZES):
    """ffnn's peak traced memory per epoch during training, and the budget it is held to."""
    import ffnn

    net = ffnn.Network(sizes, "relu", "softmax", dtype=np.dtype(dtype).name, seed=0)
    opt = ffnn.SGD(LR)
    peaks = []
    for _ in range(epochs):
        tracemalloc.start()
        ffnn.train(net, X, T, loss="cross_entropy", optimizer=opt, epochs=1, batch_size=b, seed=0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    item = np.dtype(dtype).itemsize
    params = sum(p.size for p in net.parameters()) * item
    acts = b * sum(sizes) * item
    data = X.nbytes + T.nbytes
    budget = data + params + params + 0 + acts  # data + parameters + gradients + SGD state (none) + activations
    return [data + p for p in peaks], budget


CONTENDERS = {"ffnn": run_ffnn, "ffnn no-diag": run_ffnn_without_diagnostics, "numpy loop": run_numpy,
              "pytorch": run_torch, "scikit-learn": run_sklearn}  # in this process, as plain functions
PEERS = ("jax jit-epoch", "torch.compile")  # compiled: bench_peers


# --- the plan -----------------------------------------------------------------------------------------

def plan(quick=False, networks=None, dtypes=None, n_samples=None, cpus=2):
    """Networks, dtypes, thread counts, rounds and the rows (network, dtype, threads, batch, samples)."""
    networks = list(networks or NETWORKS)
    dtypes = [np.dtype(d).name for d in (dtypes or ("float32",))]
    threads = [t for t in ((2,) if quick else (1, 2)) if t <= cpus] or [1]
    rows = []
    for name in networks:
        net = NETWORKS[name]
        table = net.quick_samples if quick else net.samples
        for dtype in dtypes:
            for t in threads:
                for b in (net.quick_batches if quick else net.batches):
                    n = min(table.get(b, table[None]), n_samples or float("inf"))
                    if (name, dtype, t, min(b, n), n) not in rows:  # batches clipped to the samples may meet
                        rows.append((name, dtype, t, min(b, n), n))
    return {"networks": networks, "dtypes": dtypes, "threads": threads, "rounds": 2 if quick else 3,
            "slow_s": 2.0 if quick else 20.0, "rows": rows}


def available():
    """(the contenders that can run here in ORDER, {left-out contender: why}, the torch module or None)."""
    skipped = {}
    try:
        import torch
    except ImportError:
        torch = None
        skipped["pytorch"] = skipped["torch.compile"] = "PyTorch is not installed (pip install torch)"
    if not bench_peers.installed("jax"):
        skipped["jax jit-epoch"] = "JAX is not installed (pip install jax jaxlib)"
    if not bench_peers.installed("sklearn"):
        skipped["scikit-learn"] = "scikit-learn is not installed (pip install scikit-learn)"
    return [c for c in ORDER if c not in skipped], skipped, torch


def pin_cpus(count=2):
    """Pin every thread of this process to the first ``count`` CPUs it may use; (those CPUs, the old set)."""
    if not hasattr(os, "sched_setaffinity"):  # not Linux: nothing to pin; say which CPUs are counted
        old = list(range(os.cpu_count() or 1))
        return old[:count], old[:count]
    old = sorted(os.sched_getaffinity(0))
    cpus = old[:count]
    if cpus != old:
        _set_affinity(cpus)
    return cpus, old


def _set_affinity(cpus):
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:
            pass  # a thread that just ended


class Runner:
    """Calls each contender; keeps the JAX workers (one per thread count) and what failed, and why."""

    def __init__(self, names, skipped, cpus, log=print):
        self.names, self.skipped, self.cpus, self.log = list(names), skipped, cpus, log
        self.workers = {}
        self.jax_version = None

    def active(self):
        return [c for c in self.names if c not in self.skipped]

    def fail(self, name, reason):
        self.skipped[name] = reason
        self.log(f"({name}: left out from here on: {reason})")

    def worker(self, threads):
        if threads not in self.workers:
            w = bench_peers.JaxWorker(self.cpus[:threads], threads)
            self.workers[threads] = w
            self.jax_version = w.hello.get("version")
        return self.workers[threads]

    def run(self, name, X, y, T, b, dtype, seed, ctx, info):
        if name == "jax jit-epoch":
            seconds, compile_s = self.worker(ctx["threads"]).run(ctx["network"], ctx["total"], len(X), b, dtype, seed)
            info["compile_s"] = info.get("compile_s", 0.0) + compile_s
            return seconds
        if name == "torch.compile":
            return bench_peers.run_torch_compile(X, y, T, b, dtype, seed, sizes=ctx["sizes"], info=info)
        return CONTENDERS[name](X, y, T, b, dtype, seed=seed, sizes=ctx["sizes"], info=info)

    def close(self):
        for w in self.workers.values():
            w.close()
        self.workers.clear()


def bench_row(runner, X, y, T, b, dtype, rounds, ctx, slow_s=None, status=None):
    """One setting: every contender's best of ``rounds`` (interleaved, the order rotated), ratios, efficiency.

    A contender whose epoch took over ``slow_s`` seconds runs no further rounds (the row says how many it ran).
    ``status(text)``, when given, hears which contender and round runs (a long row is not silence).
    """
    n, sizes = len(X), ctx["sizes"]
    if "torch.compile" in runner.active():
        try:
            bench_peers.torch_compile_reset()
        except Exception as exc:
            runner.fail("torch.compile", bench_peers.short_reason(exc))
    names = runner.active()
    best, info, ran = {c: float("inf") for c in names}, {c: {} for c in names}, {c: 0 for c in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for c in order:
            if c in runner.skipped or (r > 0 and ((c == "scikit-learn" and b == 1) or (slow_s and best[c] > slow_s))):
                continue  # one round is enough at scikit-learn's speed on single samples, or for a slow epoch
            if status is not None:
                status(f"{ctx['network']}, batch {b}: round {r + 1} of {rounds}, {c}")
            try:
                best[c] = min(best[c], runner.run(c, X, y, T, b, dtype, r, ctx, info[c]))
                ran[c] += 1
            except PeerFailed as exc:
                runner.fail(c, str(exc))
            except Exception as exc:
                if c not in PEERS:
                    raise
                runner.fail(c, bench_peers.short_reason(exc))  # e.g. torch.compile without a C++ compiler
    rate = {c: n / best[c] for c in names if c not in runner.skipped and best[c] < float("inf")}
    ratios = {c: rate["ffnn"] / rate[c] for c in rate if c != "ffnn"}
    if b > 8:
        gemm = gemm_seconds(b, dtype, reps=20, sizes=sizes) * (n / b)
        eff = gemm / best["ffnn"]  # (training FLOP/s) / (the same products' FLOP/s alone)
    else:  # one sample's products are matrix-vector ones: no matrix-multiply rate to compare
        gemm, eff = None, None
    return {"network": ctx["network"], "sizes": list(sizes), "dtype": np.dtype(dtype).name, "threads": ctx["threads"],
            "batch": b, "samples": n, "ffnn_loop": info["ffnn"].get("loop"), "samples_per_s": rate,
            "ratios": ratios, "ffnn_over_jax": ratios.get("jax jit-epoch"), "ffnn_over_numpy": ratios.get("numpy loop"),
            "compile_s": {c: info[c]["compile_s"] for c in rate if "compile_s" in info[c]},
            "rounds": {c: ran[c] for c in rate},
            "efficiency": eff, "gemm_gflops": None if gemm is None else training_flops(n, sizes) / gemm / 1e9,
            "ffnn_gflops": training_flops(n, sizes) / best["ffnn"] / 1e9}


def run_grid(the_plan, runner, log=print):
    """Every row of the plan, printed as it finishes (a header for each network, dtype and thread count)."""
    from threadpoolctl import threadpool_limits

    from .terminal import Status

    torch = None
    if "pytorch" in runner.names or "torch.compile" in runner.names:
        import torch
    results, data, block = [], None, None
    for network, dtype, threads, b, n in the_plan["rows"]:
        net = NETWORKS[network]
        if data is None or data[0] != (network, dtype):
            total = max(r[4] for r in the_plan["rows"] if r[:2] == (network, dtype))
            data = ((network, dtype), total, synthetic(total, dtype, network=network))
        total, (X, y, T) = data[1], data[2]
        if block != (network, dtype, threads):
            block = (network, dtype, threads)
            log(f"\n{network} ({net.data}), {dtype}, {threads} thread{'s' if threads > 1 else ''}: samples/s, best of "
                f"{the_plan['rounds']} interleaved rounds (one for an epoch over {the_plan['slow_s']:g} s); "
                "ratios ffnn / contender")
            log(_header(runner.names))
        ctx = {"network": network, "sizes": net.sizes, "threads": threads, "total": total}
        status = Status()
        with threadpool_limits(threads):
            if torch is not None:
                torch.set_num_threads(threads)
            try:
                row = bench_row(runner, X[:n], y[:n], T[:n], b, dtype, the_plan["rounds"], ctx, the_plan["slow_s"],
                                status=status.show)
            finally:
                status.close()
        results.append(row)
        log(_format_row(row, runner.names))
    return results


# --- the command ----------------------------------------------------------------------------------------

def main(quick=False, json_path=None, n_samples=None, networks=None, dtypes=None, first_fit=True, log=print):
    """Run the comparison and print it; with ``json_path``, also write the numbers. Returns the exit code."""
    cpus, old_cpus = pin_cpus(2)
    try:
        return _main(quick, json_path, n_samples, networks, dtypes, first_fit, cpus, old_cpus, log)
    finally:
        if cpus != old_cpus:
            _set_affinity(old_cpus)


def _main(quick, json_path, n_samples, networks, dtypes, first_fit, cpus, old_cpus, log):
    load_start = _loadavg()
    names, skipped, torch = available()
    the_plan = plan(quick, networks, dtypes, n_samples, cpus=len(cpus))
    pinned = (f"pinned to CPUs {','.join(map(str, cpus))} of {','.join(map(str, old_cpus))}" if cpus != old_cpus
              else f"on CPUs {','.join(map(str, cpus))}")
    log(f"ffnn bench: relu hidden layers, softmax + cross-entropy, plain SGD eta={LR}, one epoch, synthetic data; "
        f"{platform.processor() or platform.machine()}, {pinned}; load average {_load(load_start)} at the start")
    log(f"versions: {_versions(torch)}")
    log("contenders: " + ", ".join(names) + f"; threads {', '.join(map(str, the_plan['threads']))}"
        " (threadpoolctl, torch.set_num_threads; JAX in a worker process per thread count, pinned to that many CPUs)")
    for c, why in skipped.items():
        log(f"({c}: left out: {why})")
    runner = Runner(names, skipped, cpus, log)
    try:
        results = run_grid(the_plan, runner, log)
    finally:
        runner.close()
    fits = _first_fits(the_plan, runner, quick, log) if first_fit else []
    square = {d: square_gemm_flops(np.dtype(d)) / 1e9 for d in the_plan["dtypes"]}
    log("\nsquare 2048 matrix multiply, GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in square.items())
        + " (the machine's peak, for reference; efficiency uses the training step's own shapes)")
    memory = _report_memory(the_plan["networks"][0], n_samples, log)
    load_end = _loadavg()
    log(f"load average {_load(load_end)} at the end")
    if json_path:
        _write_json(json_path, {
            "networks": {k: list(NETWORKS[k].sizes) for k in the_plan["networks"]}, "cpus": cpus,
            "threads": the_plan["threads"], "rounds": the_plan["rounds"], "versions": _versions(torch, text=False),
            "load_average": {"start": load_start and list(load_start), "end": load_end and list(load_end)},
            "skipped": dict(runner.skipped), "results": results, "first_fit": fits,
            "square_gemm_gflops": square, "memory": memory}, log)
    return 0


def _loadavg():
    try:
        return os.getloadavg()
    except (AttributeError, OSError):  # not reported here
        return None


def _load(avg):
    if avg is None:
        return "unknown"
    return f"{avg[0]:.2f} / {avg[1]:.2f} / {avg[2]:.2f} (1 / 5 / 15 min)"


def _versions(torch, text=True):
    import importlib.metadata as md

    out = {"ffnn": None, "numpy": np.__version__, "torch": torch.__version__ if torch is not None else None}
    for k, dist in (("ffnn", "ffnn"), ("jax", "jax"), ("scikit-learn", "scikit-learn")):
        try:
            out[k] = md.version(dist)
        except md.PackageNotFoundError:
            out[k] = None
    return ", ".join(f"{k} {v}" for k, v in out.items() if v) if text else out


def _first_fits(the_plan, runner, quick, log):
    """The first fit of each network in fresh processes, each twice: ffnn, JAX, torch.compile.

    With ``quick``: the first network only, JAX once, and no torch.compile (its cold compile alone
    takes tens of seconds; the rows still show its compile time per shape).
    """
    kinds = [k for k in bench_peers.FIRST_FIT_KINDS if k == "ffnn" or k in runner.names]
    if quick and "torch.compile" in kinds:
        kinds.remove("torch.compile")
    log(f"\nfirst fit in a fresh process (float32, {bench_peers.FIRST_FIT['samples']} samples, batch "
        f"{bench_peers.FIRST_FIT['batch']}, one epoch; seconds: import + fit, compilation included; "
        "run 1, then run 2 with what run 1 left in on-disk caches)")
    if quick and "torch.compile" in runner.names:
        log("(quick: torch.compile's first fit is left out, as it takes tens of seconds cold)")
    out = []
    for network in the_plan["networks"][:1] if quick else the_plan["networks"]:
        cells = []
        for kind in kinds:
            runs = bench_peers.first_fit(kind, network, runs=1 if quick and kind != "ffnn" else 2)
            out.append({"network": network, "contender": kind, "runs": runs})
            cells.append(f"{kind} " + ", ".join(_fit_cell(r) for r in runs))
        log(f"{network:<15} " + " | ".join(cells))
    return out


def _fit_cell(r):
    if "error" in r:
        return f"failed ({r['error']})"
    return f"{r['import_s']:.2f} + {r['fit_s']:.2f} s" + (f" [{r['loop']}]" if r.get("loop") else "")


def _report_memory(network, n_samples, log):
    """Print and return ffnn's peak memory per epoch against its budget, on ``network``."""
    n = min(n_samples or 20000, 20000)
    Xm, _, Tm = synthetic(n, np.float32, network=network)
    peaks, budget = peak_memory(Xm, Tm, np.float32, sizes=NETWORKS[network].sizes)
    log(f"memory, {network} float32 batch 128 on {len(Xm)} samples: peak per epoch "
        + ", ".join(f"{p / 2**20:.1f} MiB" for p in peaks)
        + f"; budget (data + params + grads + one batch of activations) {budget / 2**20:.1f} MiB; "
        f"ratio {max(peaks) / budget:.2f}")
    return {"network": network, "peaks_bytes": peaks, "budget_bytes": budget}


def _write_json(path, doc, log=print):
    from .._files import atomic_write
    from .errors import CommandError

    try:
        atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode(), "--json")
    except OSError as exc:
        raise CommandError(str(exc)) from None
    log(f"numbers written to {path}")


def _ratio_names(names):
    """The contenders ffnn is divided by: the two targets first, then the others (not ffnn's own columns)."""
    return [c for c in dict.fromkeys((*TARGETS, *names)) if c in names and c not in ("ffnn", "ffnn no-diag")]


def _header(names):
    rates = "".join(f"{SHORT[c]:>10}" for c in names)
    ratios = "".join(f"{'ffnn/' + SHORT[c]:>15}" for c in _ratio_names(names))
    return f"{'batch':>5} {'samples':>7} {'loop':<8}|{rates} |{ratios} | efficiency"


def _format_row(row, names):
    r = row["samples_per_s"]
    rates = "".join(f"{r[c]:>10,.0f}" if c in r else f"{'-':>10}" for c in names)
    ratios = "".join(f"{row['ratios'][c]:>15.2f}" if c in row["ratios"] else f"{'-':>15}" for c in _ratio_names(names))
    if row["efficiency"] is None:
        eff = f"n/a ({row['ffnn_gflops']:.1f} GFLOP/s, matrix-vector)"
    else:
        eff = f"{row['efficiency']:.2f} ({row['ffnn_gflops']:.0f} of {row['gemm_gflops']:.0f} GFLOP/s)"
    compiled = ", ".join(f"{SHORT[c]} {s:.1f} s" for c, s in row["compile_s"].items())
    return (f"{row['batch']:>5} {row['samples']:>7} {row['ffnn_loop'] or '-':<8}|{rates} |{ratios} | {eff}"
            + (f" | compile {compiled}" if compiled else ""))
