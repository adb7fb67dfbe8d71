"""The compiled contenders of ``ffnn bench`` and the first-fit latency, each only where its package is installed.

* ``jax jit-epoch``: the whole epoch in one ``jax.jit`` — the parameters a pytree (a list of (W, b)
  pairs), ``jax.grad`` of the cross-entropy, ``jax.lax.scan`` of the SGD steps over the epoch's
  batches stacked into one array, the shuffle by ``jax.random.permutation`` inside the jit, the last
  partial batch one more step after the scan. It runs in a worker process per thread count
  (:class:`JaxWorker`): XLA sizes its thread pool once, at process start, so the worker is started
  pinned to that many CPUs (``os.sched_setaffinity`` before ``import jax``) and, for one thread, with
  ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``. It enables ``jax_enable_x64``, so float64 rows
  are float64 (float32 arrays stay float32). Compilation (``jit(...).lower(...).compile()``, once per
  shape) is outside the timed epoch and reported apart.
* ``torch.compile``: a training step written by hand in PyTorch — forward (``addmm``, relu), the
  softmax/cross-entropy loss, its backward (the fused output error ``(softmax − T)/N``, the weight
  and bias gradients, δ through relu′) and the in-place SGD update — wrapped in
  ``torch.compile(step, dynamic=False)`` (the inductor CPU backend). The backward is written out
  because autograd's ``loss.backward()`` would break the compiled graph in two. Each row starts from
  ``torch._dynamo.reset()`` (inductor's CPU kernels are specialised to the thread count) and compiles
  its batch shapes, the last partial batch's included, before the timed epoch.

First fit (:func:`first_fit`): the wall time of the first ``fit`` of a network shape in a fresh Python
process, compilation included, timed inside a child started by ``subprocess.run``: ffnn's
``ffnn.train`` of one epoch, JAX's first call of the jitted epoch, torch.compile's compile and first
epoch. Each child is run twice; the second run finds whatever the first left in on-disk caches
(torch.compile's inductor cache is a fresh temporary folder for the pair, so its first run is a shape
the machine never compiled).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

LR = 0.01
FIRST_FIT = {"samples": 512, "batch": 32}  # the small dataset of the first-fit children (float32)


class PeerFailed(Exception):
    """A compiled contender could not run here; the message says why (its column is then skipped)."""


def init_params(sizes, dtype, seed):
    """He-normal weights and zero biases, the same draws as the plain NumPy loop's."""
    rng = np.random.default_rng(seed)
    Ws = [(rng.normal(size=(i, o)) * np.sqrt(2 / i)).astype(dtype) for i, o in zip(sizes[:-1], sizes[1:])]
    return Ws, [np.zeros(o, dtype) for o in sizes[1:]]


def installed(name):
    """Whether ``name`` can be imported here, without importing it (a module set to None counts as absent)."""
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def short_reason(exc):
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__


# --- JAX ------------------------------------------------------------------------------------------

def jax_epoch(jax, sizes):
    """One epoch of minibatch SGD as a JAX user writes it: ``epoch(params, X, T, key, b=…)`` → params."""
    jnp = jax.numpy
    last = len(sizes) - 2

    def loss(params, x, t):
        a = x
        for i, (W, b) in enumerate(params):
            z = a @ W + b
            a = jax.nn.relu(z) if i < last else z
        return -jnp.mean(jnp.sum(t * jax.nn.log_softmax(a, axis=1), axis=1))

    def step(params, batch):
        grads = jax.grad(loss)(params, *batch)
        return jax.tree.map(lambda p, g: p - LR * g, params, grads), None

    def epoch(params, X, T, key, b):
        n = X.shape[0]
        full = n // b
        perm = jax.random.permutation(key, n)
        head = perm[:full * b]
        params, _ = jax.lax.scan(step, params, (X[head].reshape(full, b, -1), T[head].reshape(full, b, -1)))
        if n % b:
            params, _ = step(params, (X[perm[full * b:]], T[perm[full * b:]]))
        return params

    return jax.jit(epoch, static_argnames="b")


def _jax_params(jax, sizes, dtype, seed):
    Ws, bs = init_params(sizes, dtype, seed)
    return jax.block_until_ready([(jax.device_put(W), jax.device_put(b)) for W, b in zip(Ws, bs)])


def jax_worker(cpus):
    """The worker's main loop: one JSON request a line on stdin, one JSON reply a line on the original stdout."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)  # before jax is imported: XLA sizes its thread pool from it
    proto = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything else written to stdout goes to stderr, not into the replies

    def reply(msg):
        proto.write(json.dumps(msg) + "\n")
        proto.flush()

    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        jax.devices("cpu")
    except Exception as exc:  # noqa: BLE001 — reported to the parent, which skips the column
        reply({"error": short_reason(exc)})
        return
    from .bench_data import NETWORKS, synthetic

    reply({"ready": True, "version": jax.__version__})
    data_key, data, compiled, epochs = None, None, {}, {}
    for line in sys.stdin:
        req = json.loads(line)
        try:
            sizes = NETWORKS[req["network"]].sizes
            dtype = np.dtype(req["dtype"])
            key = (req["network"], req["dtype"], req["total"], req["n"])
            if key != data_key:
                X, _, T = synthetic(req["total"], dtype, network=req["network"])
                data, data_key, compiled = (jax.device_put(X[:req["n"]]), jax.device_put(T[:req["n"]])), key, {}
                data = jax.block_until_ready(data)
            if sizes not in epochs:
                epochs[sizes] = jax_epoch(jax, sizes)
            b, compile_s = req["b"], 0.0
            if b not in compiled:
                t0 = time.perf_counter()
                compiled[b] = epochs[sizes].lower(_jax_params(jax, sizes, dtype, 0), *data, jax.random.key(0),
                                                  b=b).compile()
                compile_s = time.perf_counter() - t0
            params = _jax_params(jax, sizes, dtype, req["seed"])
            rkey = jax.block_until_ready(jax.random.key(req["seed"]))
            t0 = time.perf_counter()
            jax.block_until_ready(compiled[b](params, *data, rkey))
            reply({"seconds": time.perf_counter() - t0, "compile_s": compile_s})
        except Exception as exc:  # noqa: BLE001
            reply({"error": short_reason(exc)})


def _child_env(extra=None):
    """The environment of a child process: this ffnn first on the path, plus ``extra``."""
    import ffnn

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(ffnn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.update(extra or {})
    return env


class JaxWorker:
    """A JAX process pinned to ``cpus`` that trains an epoch on request and says how long it took."""

    def __init__(self, cpus, threads):
        extra = {}
        if threads == 1:
            extra["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
        self.cpus = sorted(cpus)
        self._err = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            [sys.executable, "-c", f"from ffnn.cli.bench_peers import jax_worker; jax_worker({self.cpus!r})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, env=_child_env(extra), text=True)
        self.hello = self._read()

    def _read(self):
        line = self._proc.stdout.readline()
        if not line:
            self._err.seek(0)
            tail = [t for t in self._err.read().decode(errors="replace").splitlines() if t.strip()]
            raise PeerFailed(f"the JAX worker ended: {tail[-1][:160] if tail else 'no message'}")
        msg = json.loads(line)
        if "error" in msg:
            raise PeerFailed(msg["error"])
        return msg

    def run(self, network, total, n, b, dtype, seed):
        """(seconds of the epoch, seconds of its compilation — 0 when already compiled)."""
        req = {"network": network, "total": total, "n": n, "b": b, "dtype": np.dtype(dtype).name, "seed": seed}
        try:
            self._proc.stdin.write(json.dumps(req) + "\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            pass  # _read reports why it ended
        msg = self._read()
        return msg["seconds"], msg["compile_s"]

    def close(self):
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        self._err.close()


# --- torch.compile --------------------------------------------------------------------------------

def torch_step(torch, last):
    """The hand-written step: forward, softmax/cross-entropy, backward, SGD in place; returns the loss."""
    def step(x, t, Ws, bs):
        a = [x]
        for l, (W, b) in enumerate(zip(Ws, bs)):
            z = torch.addmm(b, a[-1], W)
            a.append(torch.relu(z) if l < last else z)
        logp = torch.log_softmax(a[-1], dim=1)
        loss = -(t * logp).sum(dim=1).mean()
        d = (logp.exp() - t) / x.shape[0]
        for l in range(len(Ws) - 1, -1, -1):
            gW, gb = a[l].T @ d, d.sum(dim=0)
            if l > 0:
                d = (d @ Ws[l].T) * (a[l] > 0)
            Ws[l].sub_(LR * gW)
            bs[l].sub_(LR * gb)
        return loss

    return step


_COMPILED = {"steps": {}, "warm": set()}


def torch_compile_reset():
    """Forget every compiled step (a row starts from here: the kernels are specialised to the threads).

    Inductor compiles in this process (``compile_threads = 1``), not in a pool of worker processes
    that would still be starting while the next contender is timed.
    """
    import torch
    import torch._inductor.config

    torch._inductor.config.compile_threads = 1
    torch._dynamo.reset()
    _COMPILED["steps"].clear()
    _COMPILED["warm"].clear()


def run_torch_compile(X, y, T, b, dtype, seed=0, sizes=None, info=None):
    """Seconds of one epoch of the compiled step; its batch shapes are compiled first, untimed (``info``)."""
    import torch

    sizes = tuple(sizes or (X.shape[1], T.shape[1]))
    key = (sizes, np.dtype(dtype).name)
    if key not in _COMPILED["steps"]:
        _COMPILED["steps"][key] = torch.compile(torch_step(torch, len(sizes) - 2), dynamic=False)
    step = _COMPILED["steps"][key]
    Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)
    b = min(b, len(X))
    compile_s = 0.0
    for m in {b, len(X) % b} - {0}:
        if (key, m) not in _COMPILED["warm"]:
            Ws, bs = (list(map(torch.from_numpy, p)) for p in init_params(sizes, dtype, 0))
            t0 = time.perf_counter()
            step(Xt[:m], Tt[:m], Ws, bs)
            compile_s += time.perf_counter() - t0
            _COMPILED["warm"].add((key, m))
    if info is not None:
        info["compile_s"] = info.get("compile_s", 0.0) + compile_s
    Ws, bs = (list(map(torch.from_numpy, p)) for p in init_params(sizes, dtype, seed))
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    order = torch.randperm(len(X), generator=g)
    for s in range(0, len(X), b):
        idx = order[s:s + b]
        step(Xt[idx], Tt[idx], Ws, bs)
    return time.perf_counter() - t0


# --- first fit, in a fresh process ------------------------------------------------------------------

FIRST_FIT_KINDS = {"ffnn": "ffnn", "jax jit-epoch": "jax", "torch.compile": "torch"}  # kind → module imported


def first_fit_child(kind, network, import_s):
    """In the child: train once on FIRST_FIT data, print one JSON line {import_s, fit_s, loop}."""
    from .bench_data import NETWORKS, synthetic

    sizes = NETWORKS[network].sizes
    n, b = FIRST_FIT["samples"], FIRST_FIT["batch"]
    X, y, T = synthetic(n, np.float32, network=network)
    loop = None
    if kind == "ffnn":
        import ffnn

        t0 = time.perf_counter()
        net = ffnn.Network(sizes, "relu", "softmax", dtype="float32", seed=0)
        h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(LR), epochs=1, batch_size=b, seed=0)
        fit_s = time.perf_counter() - t0
        loop = getattr(h, "loop", None)
    elif kind == "jax jit-epoch":
        import jax

        t0 = time.perf_counter()
        epoch = jax_epoch(jax, sizes)
        params = _jax_params(jax, sizes, np.float32, 0)
        jax.block_until_ready(epoch(params, X, T, jax.random.key(0), b=b))
        fit_s = time.perf_counter() - t0
    elif kind == "torch.compile":
        import torch

        t0 = time.perf_counter()
        step = torch.compile(torch_step(torch, len(sizes) - 2), dynamic=False)
        Ws, bs = (list(map(torch.from_numpy, p)) for p in init_params(sizes, np.float32, 0))
        Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
        for s in range(0, n, b):
            step(Xt[order[s:s + b]], Tt[order[s:s + b]], Ws, bs)
        fit_s = time.perf_counter() - t0
    else:
        raise ValueError(f"unknown first-fit kind {kind!r}")
    print(json.dumps({"import_s": import_s, "fit_s": fit_s, "loop": loop}), flush=True)


def first_fit(kind, network, runs=2, timeout=900):
    """Run the first-fit child ``runs`` times; a list of {import_s, fit_s, loop} or {error}."""
    module = FIRST_FIT_KINDS[kind]
    code = (f"import time; t0 = time.perf_counter(); import {module}; t = time.perf_counter() - t0; "
            f"from ffnn.cli.bench_peers import first_fit_child; first_fit_child({kind!r}, {network!r}, t)")
    with tempfile.TemporaryDirectory(prefix="ffnn-bench-") as tmp:
        extra = {"TORCHINDUCTOR_CACHE_DIR": os.path.join(tmp, "inductor")} if kind == "torch.compile" else {}
        out = []
        for _ in range(runs):
            try:
                p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                                   env=_child_env(extra))
            except subprocess.TimeoutExpired:
                out.append({"error": f"no answer within {timeout} s"})
                continue
            lines = p.stdout.strip().splitlines()
            if p.returncode == 0 and lines:
                out.append(json.loads(lines[-1]))
            else:
                tail = [t for t in p.stderr.splitlines() if t.strip()]
                out.append({"error": (tail[-1] if tail else f"exit status {p.returncode}")[:160]})
    return out
