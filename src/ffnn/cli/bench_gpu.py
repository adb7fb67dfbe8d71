"""``ffnn bench --gpu``: ffnn's PyTorch fast path against PyTorch written by hand, on one device, in one run.

Contenders, each training relu networks with a softmax/cross-entropy output by plain SGD (η = 0.01) on
data already on the device, the same samples in the same order:

* ``ffnn``: ``ffnn.train`` on a network made with ``device=…`` (on CUDA: its CUDA graphs), and
  ``ffnn no-diag``, the same with ``diagnostics=False`` (the price of the gradient-flow diagnostics);
* ``pytorch eager``: ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU``, ``nn.CrossEntropyLoss``,
  ``optim.SGD``, autograd;
* ``pytorch manual``: the same step written by hand without autograd (addmm, in-place updates);
* ``pytorch cuda graph`` (CUDA only): the eager step — zero_grad, forward, backward, optimiser step —
  captured once in a CUDA graph per batch size and replayed, as PyTorch's documentation shows;
* ``torch.compile`` (CUDA only): the eager model compiled.

Shapes: 784-256-256-10 at batches 128, 1,024 and 8,192; four hidden layers of 64 at batch 2^18; three
layers of 4,096 at batch 4,096. Reported: samples/s (best of the rounds), training TFLOP/s, the ratio
to the hand-written CUDA-graph loop and to eager, and the peak device memory of each contender.
"""

from __future__ import annotations

import json
import time

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


def _timed_epoch(torch, device, epoch, b, n):
    """Seconds for ``epoch(n)`` after a warm-up of five batches, the device synchronised around it."""
    epoch(b * 5)
    _sync(torch, device)
    t0 = time.perf_counter()
    epoch(n)
    _sync(torch, device)
    return time.perf_counter() - t0


def _model(torch, sizes, device, dtype):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b, device=device, dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def run_ffnn(torch, sizes, b, X, y, T, device, precision=None, diagnostics=True):
    """Seconds of ffnn's second epoch (the first builds the workspaces and captures the graphs)."""
    import ffnn

    net = ffnn.Network(sizes, "relu", "softmax", dtype=str(X.dtype).rsplit(".", 1)[-1], seed=0, device=device)
    history = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(LR), epochs=2, batch_size=b,
                         seed=0, precision=precision, diagnostics=diagnostics)
    return history.time[1]


def run_eager(torch, sizes, b, X, y, T, device, compile_model=False):
    model = _model(torch, sizes, device, X.dtype)
    if compile_model:
        model = torch.compile(model)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    lossf = torch.nn.CrossEntropyLoss()
    order = torch.randperm(len(X), device=device)

    def epoch(count):
        for s in range(0, count, b):
            idx = order[s:s + b]
            opt.zero_grad(set_to_none=True)
            lossf(model(X[idx]), y[idx]).backward()
            opt.step()

    return _timed_epoch(torch, device, epoch, b, len(X))


def run_manual(torch, sizes, b, X, y, T, device):
    """The step written by hand: addmm forward, fused softmax error, in-place SGD, no autograd."""
    g = torch.Generator(device="cpu").manual_seed(0)
    Ws = [(torch.randn(i, o, generator=g) * (2 / i) ** 0.5).to(device=device, dtype=X.dtype)
          for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [torch.zeros(o, device=device, dtype=X.dtype) for o in sizes[1:]]
    order = torch.randperm(len(X), device=device)

    def epoch(count):
        with torch.no_grad():
            for s in range(0, count, b):
                idx = order[s:s + b]
                a = [X[idx]]
                for l, (W, bb) in enumerate(zip(Ws, bs)):
                    z = torch.addmm(bb, a[-1], W)
                    a.append(z.relu_() if l < len(Ws) - 1 else z)
                d = torch.softmax(a[-1], dim=1).sub_(T[idx]).div_(len(idx))
                for l in range(len(Ws) - 1, -1, -1):
                    gb = d.sum(0)
                    d_prev = torch.mm(d, Ws[l].T).mul_(a[l] > 0) if l > 0 else None
                    Ws[l].addmm_(a[l].T, d, alpha=-LR)
                    bs[l].sub_(gb, alpha=LR)
                    d = d_prev

    return _timed_epoch(torch, device, epoch, b, len(X))


def run_cuda_graph(torch, sizes, b, X, y, T, device):
    """PyTorch's whole-network capture: the eager step captured once and replayed per batch."""
    model = _model(torch, sizes, device, X.dtype)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    lossf = torch.nn.CrossEntropyLoss()
    sx, sy = X[:b].clone(), y[:b].clone()
    side = torch.cuda.Stream(device=device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            lossf(model(sx), sy).backward()
            opt.step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss = lossf(model(sx), sy)
        loss.backward()
        opt.step()
    order = torch.randperm(len(X), device=device)
    n_full = len(X) - len(X) % b
    _sync(torch, device)
    t0 = time.perf_counter()
    for s in range(0, n_full, b):
        idx = order[s:s + b]
        torch.index_select(X, 0, idx, out=sx)
        torch.index_select(y, 0, idx, out=sy)
        graph.replay()
    _sync(torch, device)
    return (time.perf_counter() - t0) * len(X) / max(n_full, 1)


def contenders(device):
    out = {"ffnn": run_ffnn, "ffnn no-diag": lambda *a, **k: run_ffnn(*a, diagnostics=False, **k),
           "pytorch eager": run_eager, "pytorch manual": run_manual}
    if device.type == "cuda":
        out["pytorch cuda graph"] = run_cuda_graph
        out["torch.compile"] = lambda *a: run_eager(*a, compile_model=True)
    return out


def measure(device="cuda", dtype="float32", shapes=None, rounds=3, quick=False, precision=None, log=print):
    """Rows of {shape, batch, samples_per_s{contender}, tflops{contender}, peak_mib{contender}}."""
    import torch

    from .._array import resolve_device

    device = resolve_device(device)
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
                    args = (torch, sizes, b, X, y, T, device)
                    sec = fn(*args, precision=precision) if c.startswith("ffnn") else fn(*args)
                except Exception as exc:  # torch.compile needs a compiler toolchain; report, go on
                    errors[c] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"
                    continue
                best[c] = min(best.get(c, float("inf")), sec)
                if device.type == "cuda":
                    peak[c] = max(peak.get(c, 0), torch.cuda.max_memory_allocated(device) / 2 ** 20)
        flops = training_flops(n, sizes)
        row = {"shape": name, "sizes": list(sizes), "batch": b, "samples": n, "dtype": dtype,
               "precision": precision or "highest", "device": str(device),
               "samples_per_s": {c: n / s for c, s in best.items()},
               "tflops": {c: flops / s / 1e12 for c, s in best.items()},
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
    out = f"{row['shape']:<16} {cols} | {ratios}" + (f" | ffnn {tf:.2f} TFLOP/s" if tf else "")
    if mem:
        out += f" | peak {mem}"
    if err:
        out += f" | failed: {err}"
    return out


def gemm_peak_tflops(device, dtype, n=8192, reps=10):
    """The device's square matrix-product rate in TFLOP/s for ``dtype`` (e.g. float32, tf32, bfloat16)."""
    import torch

    tdt = torch.bfloat16 if dtype == "bf16" else torch.float32
    A = torch.randn(n, n, device=device, dtype=tdt)
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
    try:
        A @ A
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        for _ in range(reps):
            A @ A
        torch.cuda.synchronize(device)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e12


def main(quick=False, json_path=None, device="cuda"):
    """The GPU table: every shape in float32, the 4096-wide net also in tf32 and bf16; the GEMM peaks."""
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
