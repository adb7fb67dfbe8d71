"""``ffnn bench --gpu``: ffnn's PyTorch fast path against PyTorch written by hand, on one device, in one run.

Contenders, each training relu networks with a softmax/cross-entropy output by plain SGD (η = 0.01) on
data already on the device, the same samples in the same order:

* ``ffnn``: ``ffnn.train`` on a network made with ``device=…`` (on CUDA: its CUDA graphs), and
  ``ffnn no-diag``, the same with ``diagnostics=False`` (the price of the gradient-flow diagnostics);
* ``pytorch eager``: ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU``, ``nn.CrossEntropyLoss``,
  ``optim.SGD``, autograd;
* ``pytorch manual``: the same step written by hand without autograd (addmm, in-place updates);
* ``pytorch cuda graph`` (CUDA only): the eager step — forward, backward, optimiser step — captured
  in one CUDA graph per batch shape and replayed, as PyTorch's documentation shows;
* ``torch.compile`` (CUDA only): the eager model compiled (``dynamic=False``: one graph per batch shape).

What makes the comparison fair:

* the same work: every contender is timed over one whole epoch — the same n samples, the same batch
  size, the same steps, the partial last batch included when b does not divide n. ffnn's time is its
  own second epoch (``History.time[1]``: the first builds the workspaces and captures the graphs); the
  peers' epoch is every batch of ``_batches(n, b)``, the CUDA-graph loop's including the copy of each
  batch's rows into the graph's static inputs. Each row records, per contender, the steps and samples
  of the timed epoch and whether it saw a partial batch (``steps``, ``samples_timed``, ``partial_batch``);
* the same precision: every contender runs inside :func:`~ffnn.training.torch_engine.tf32_matmul` —
  on for "tf32", off for float32 ("highest") and "bf16". For "bf16" ffnn computes in bfloat16 with
  float32 master weights (``precision="bf16"``), the autograd contenders run their forward and loss
  under ``torch.autocast(device, torch.bfloat16, cache_enabled=False)`` each step (float32 weights
  and optimiser, the standard mixed precision; no autocast weight cache, which CUDA graphs need),
  and the manual step casts its weights to bfloat16 once per step itself, as ffnn does (products
  in bfloat16, softmax and update in float32). The precision each contender ran at is recorded
  (``precision_by_contender``: the TF32 flag as read during its run, or "bf16");
* no compilation or capture while timed: before its timed epoch each peer is warmed on every batch
  shape it will see (three full batches, then the partial one) — torch.compile compiles both shapes
  there, and runs the timed epoch with recompilation made an error; the CUDA-graph loop captures one
  graph per shape before it, then replays each in the warm-up;
* the same conditions: the contenders are interleaved within each round, and the best round is kept.

Shapes: 784-256-256-10 at batches 128, 1,024 and 8,192; four hidden layers of 64 at batch 2^18; three
layers of 4,096 at batch 4,096. Reported: samples/s (best of the rounds), training TFLOP/s, the ratio
to the hand-written CUDA-graph loop and to eager, and the peak device memory of each contender.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time

from ..training.torch_engine import tf32_matmul
from .bench import training_flops

LR = 0.01
SHAPES = [  # (name, sizes, batch, samples per epoch)
    ("mnist b128", (784, 256, 256, 10), 128, 60_000),
    ("mnist b1024", (784, 256, 256, 10), 1024, 60_000),
    ("mnist b8192", (784, 256, 256, 10), 8192, 65_536),
    ("64-wide b2^18", (64, 64, 64, 64, 64, 10), 2 ** 18, 2 ** 21),
    ("4096-wide b4096", (4096, 4096, 4096, 4096, 10), 4096, 65_536),
]
QUICK_SHAPES = [("mnist b128", (784, 256, 256, 10), 128, 20_000), ("mnist b8192", (784, 256, 256, 10), 8192, 65_536)]
PRECISIONS = ("highest", "tf32", "bf16")


def _data(torch, sizes, n, device, dtype, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    y = torch.randint(0, sizes[-1], (n,), generator=g)
    X = torch.randn(n, sizes[0], generator=g, dtype=torch.float32)
    X += torch.nn.functional.one_hot(y, max(sizes[0], sizes[-1]))[:, :sizes[0]].float()
    T = torch.nn.functional.one_hot(y, sizes[-1]).to(dtype)
    return X.to(device=device, dtype=dtype), y.to(device), T.to(device)


def _sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batches(n, b):
    """An epoch's steps as (start, stop): the full batches, then the partial last one when b ∤ n."""
    return [(s, min(s + b, n)) for s in range(0, n, b)]


def _shapes(n, b):
    """The batch sizes an epoch sees: b, and n mod b when that is not 0."""
    return sorted({stop - start for start, stop in _batches(n, b)}, reverse=True)


def _matmul_precision(torch):
    """"tf32" or "highest": what CUDA float32 matrix products are set to use now."""
    m = torch.backends.cuda.matmul
    on = m.fp32_precision == "tf32" if hasattr(m, "fp32_precision") else m.allow_tf32
    return "tf32" if on else "highest"


def _amp(torch, device, precision):
    """The context of an autograd contender's forward and loss: bf16 autocast for "bf16", else none."""
    if precision != "bf16":
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


def _result(torch, seconds, steps, samples, b, precision):
    return {"seconds": seconds, "steps": steps, "samples": samples, "partial": steps * b > samples,
            "precision": "bf16" if precision == "bf16" else _matmul_precision(torch)}


def _timed_epoch(torch, device, step, b, n, precision, timed=contextlib.nullcontext):
    """One whole epoch of ``step(start, stop)`` (which returns its batch's rows), timed with the device
    synchronised around it, after a warm-up on every batch shape: three full batches, then the
    partial last one. ``timed``: a context around the timed epoch (torch.compile: no recompiling)."""
    batches = _batches(n, b)
    for start, stop in batches[:3] + (batches[-1:] if n % b else []):
        step(start, stop)
    _sync(torch, device)
    with timed():
        t0 = time.perf_counter()
        samples = sum(step(start, stop) for start, stop in batches)
        _sync(torch, device)
        seconds = time.perf_counter() - t0
    return _result(torch, seconds, len(batches), samples, b, precision)


def _model(torch, sizes, device, dtype):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b, device=device, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def run_ffnn(torch, sizes, b, X, y, T, device, precision="highest", diagnostics=True):
    """ffnn's second epoch (the first builds the workspaces and captures the graphs); its steps from
    the optimiser's count (two epochs of equal steps)."""
    import ffnn

    net = ffnn.Network(sizes, "relu", "softmax", dtype=str(X.dtype).rsplit(".", 1)[-1], seed=0, device=device)
    opt = ffnn.SGD(LR)
    history = ffnn.train(net, X, T, loss="cross_entropy", optimizer=opt, epochs=2, batch_size=b,
                         seed=0, precision=precision, diagnostics=diagnostics)
    steps = opt.state["step"] // 2
    return _result(torch, history.time[1], steps, len(X), b, precision)


def run_eager(torch, sizes, b, X, y, T, device, precision="highest", compile_model=False):
    model = _model(torch, sizes, device, X.dtype)
    timed = contextlib.nullcontext
    if compile_model:
        torch._dynamo.reset()  # a fresh cache: this model compiles its own graphs, one per batch shape
        model = torch.compile(model, dynamic=False)
        timed = functools.partial(torch._dynamo.config.patch, error_on_recompile=True)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    lossf = torch.nn.CrossEntropyLoss()
    amp = _amp(torch, device, precision)
    order = torch.randperm(len(X), device=device)

    def step(start, stop):
        idx = order[start:stop]
        opt.zero_grad(set_to_none=True)
        with amp():
            loss = lossf(model(X[idx]), y[idx])
        loss.backward()
        opt.step()
        return stop - start

    return _timed_epoch(torch, device, step, b, len(X), precision, timed)


def run_manual(torch, sizes, b, X, y, T, device, precision="highest"):
    """The step written by hand: addmm forward, fused softmax error, in-place SGD, no autograd. In bf16
    the weights are cast once per step, the products and activations are bfloat16, the softmax error
    and the float32 weights' update float32."""
    g = torch.Generator(device="cpu").manual_seed(0)
    Ws = [(torch.randn(i, o, generator=g) * (2 / i) ** 0.5).to(device=device, dtype=X.dtype)
          for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [torch.zeros(o, device=device, dtype=X.dtype) for o in sizes[1:]]
    cast = torch.bfloat16 if precision == "bf16" else None
    order = torch.randperm(len(X), device=device)

    def step(start, stop):
        idx = order[start:stop]
        Wc = [W.to(cast) for W in Ws] if cast else Ws
        bc = [bb.to(cast) for bb in bs] if cast else bs
        a = [X[idx].to(cast) if cast else X[idx]]
        for l, (W, bb) in enumerate(zip(Wc, bc)):
            z = torch.addmm(bb, a[-1], W)
            a.append(z.relu_() if l < len(Ws) - 1 else z)
        d = torch.softmax(a[-1].float() if cast else a[-1], dim=1).sub_(T[idx]).div_(stop - start)
        d = d.to(cast) if cast else d
        for l in range(len(Ws) - 1, -1, -1):
            d_prev = torch.mm(d, Wc[l].T).mul_(a[l] > 0) if l > 0 else None
            if cast:
                Ws[l].add_(torch.mm(a[l].T, d), alpha=-LR)
            else:
                Ws[l].addmm_(a[l].T, d, alpha=-LR)
            bs[l].sub_(d.sum(0), alpha=LR)
            d = d_prev
        return stop - start

    with torch.no_grad():
        return _timed_epoch(torch, device, step, b, len(X), precision)


def run_cuda_graph(torch, sizes, b, X, y, T, device, precision="highest"):
    """PyTorch's whole-network capture: the eager step captured once per batch shape (full and partial,
    each graph with its own static inputs), replayed per batch after its rows are copied in."""
    model = _model(torch, sizes, device, X.dtype)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    lossf = torch.nn.CrossEntropyLoss()
    amp = _amp(torch, device, precision)
    static = {m: (X[:m].clone(), y[:m].clone()) for m in _shapes(len(X), b)}

    def body(sx, sy):
        with amp():
            loss = lossf(model(sx), sy)
        loss.backward()
        opt.step()

    side = torch.cuda.Stream(device=device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for sx, sy in static.values():
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                body(sx, sy)
    torch.cuda.current_stream(device).wait_stream(side)
    graphs = {}
    for m, (sx, sy) in static.items():
        graphs[m] = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)  # each graph's backward writes gradients of its own
        with torch.cuda.graph(graphs[m]):
            body(sx, sy)
    order = torch.randperm(len(X), device=device)

    def step(start, stop):
        sx, sy = static[stop - start]
        idx = order[start:stop]
        torch.index_select(X, 0, idx, out=sx)
        torch.index_select(y, 0, idx, out=sy)
        graphs[stop - start].replay()
        return stop - start

    return _timed_epoch(torch, device, step, b, len(X), precision)


def contenders(device):
    out = {"ffnn": run_ffnn, "ffnn no-diag": lambda *a, **k: run_ffnn(*a, diagnostics=False, **k),
           "pytorch eager": run_eager, "pytorch manual": run_manual}
    if device.type == "cuda":
        out["pytorch cuda graph"] = run_cuda_graph
        out["torch.compile"] = lambda *a, **k: run_eager(*a, compile_model=True, **k)
    return out


def measure(device="cuda", dtype="float32", shapes=None, rounds=3, quick=False, precision=None, log=print):
    """Rows of {shape, batch, samples, precision, samples_per_s, tflops, peak_mib, and per contender the
    timed epoch's steps, samples_timed, partial_batch and precision_by_contender}. ``precision``:
    None or "highest" (float32, TF32 off), "tf32" or "bf16", for every contender alike."""
    import torch

    from .._array import resolve_device

    device = resolve_device(device)
    precision = precision or "highest"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    tdt = getattr(torch, dtype)
    shapes = shapes or (QUICK_SHAPES if quick else SHAPES)
    rows = []
    for name, sizes, b, n in shapes:
        X, y, T = _data(torch, sizes, n, device, tdt)
        best, peak, errors = {}, {}, {}
        for r in range(rounds):
            for c, fn in contenders(device).items():
                if c in errors:
                    continue
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                try:
                    with tf32_matmul(precision == "tf32"):
                        res = fn(torch, sizes, b, X, y, T, device, precision=precision)
                except Exception as exc:  # torch.compile needs a compiler toolchain; report, go on
                    errors[c] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"
                    continue
                if c not in best or res["seconds"] < best[c]["seconds"]:
                    best[c] = res
                if device.type == "cuda":
                    peak[c] = max(peak.get(c, 0), torch.cuda.max_memory_allocated(device) / 2 ** 20)
        flops = training_flops(n, sizes)
        row = {"shape": name, "sizes": list(sizes), "batch": b, "samples": n, "dtype": dtype,
               "precision": precision, "device": str(device),
               "samples_per_s": {c: v["samples"] / v["seconds"] for c, v in best.items()},
               "tflops": {c: flops / v["seconds"] / 1e12 for c, v in best.items()},
               "steps": {c: v["steps"] for c, v in best.items()},
               "samples_timed": {c: v["samples"] for c, v in best.items()},
               "partial_batch": {c: v["partial"] for c, v in best.items()},
               "precision_by_contender": {c: v["precision"] for c, v in best.items()},
               "peak_mib": peak, "errors": errors}
        rows.append(row)
        log(_format(row))
        del X, y, T
    return rows


def _format(row):
    r = row["samples_per_s"]
    cols = "  ".join(f"{c} {v:,.0f}/s" for c, v in r.items())
    ref = [k for k in ("pytorch cuda graph", "pytorch eager") if k in r and "ffnn" in r]
    ratios = "  ".join(f"x{r['ffnn'] / r[k]:.2f} vs {k}" for k in ref)
    tf = row["tflops"].get("ffnn")
    mem = "  ".join(f"{c} {m:,.0f} MiB" for c, m in row["peak_mib"].items())
    err = "  ".join(f"{c}: {e}" for c, e in row["errors"].items())
    out = f"{row['shape']:<16} {row['precision']:<7} {cols} | {ratios}" + (f" | ffnn {tf:.2f} TFLOP/s" if tf else "")
    same = (len(_batches(row["samples"], row["batch"])), row["samples"], row["precision"])
    unequal = {c for c in r if (row["steps"][c], row["samples_timed"][c], row["precision_by_contender"][c]) != same}
    if unequal:
        out += f" | NOT COMPARABLE (steps, samples or precision differ): {', '.join(sorted(unequal))}"
    if mem:
        out += f" | peak {mem}"
    if err:
        out += f" | failed: {err}"
    return out


def gemm_peak_tflops(device, dtype, n=8192, reps=10):
    """The device's square matrix-product rate in TFLOP/s for ``dtype`` (e.g. float32, tf32, bf16)."""
    import torch

    tdt = torch.bfloat16 if dtype == "bf16" else torch.float32
    A = torch.randn(n, n, device=device, dtype=tdt)
    with tf32_matmul(dtype == "tf32"):
        A @ A
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            A @ A
        torch.cuda.synchronize(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e12


def main(quick=False, json_path=None, device="cuda"):
    """The GPU table: every shape in float32, the 4096-wide net also in tf32 and bf16; the GEMM peaks.
    ``quick``: two shapes, two rounds, and tf32 and bf16 once on the first (which has a partial batch)."""
    from .errors import CommandError

    try:
        import torch
    except ImportError:
        raise CommandError("bench --gpu needs PyTorch: pip install 'ffnn[torch]'") from None
    if device == "cuda" and not torch.cuda.is_available():
        raise CommandError("bench --gpu: PyTorch sees no CUDA device; nothing measured")
    print(f"ffnn bench --gpu: {torch.cuda.get_device_name() if device == 'cuda' else device}; torch "
          f"{torch.__version__}; plain SGD, relu/softmax; samples/s, best of the rounds")
    rows = measure(device, quick=quick, rounds=2 if quick else 3)
    doc = {"rows": rows}
    if quick and device == "cuda":
        for precision in ("tf32", "bf16"):
            rows += measure(device, shapes=QUICK_SHAPES[:1], precision=precision, rounds=1)
    if not quick and device == "cuda":
        wide = [s for s in SHAPES if s[0].startswith("4096")]
        for precision in ("tf32", "bf16"):
            rows += measure(device, shapes=wide, precision=precision, rounds=2)
        peaks = {p: gemm_peak_tflops(device, p) for p in ("float32", "tf32", "bf16")}
        print("GEMM peaks, TFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in peaks.items()))
        doc["gemm_peak_tflops"] = peaks
    if json_path:
        from .._files import atomic_write

        atomic_write(json_path, (json.dumps(doc, indent=2) + "\n").encode())
        print(f"numbers written to {json_path}")
    return 0
