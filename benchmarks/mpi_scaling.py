"""Data-parallel training speed on 1 and 2 processes, the Allreduce's share, and the numbers for the
latency–bandwidth model of docs/scaling.md.

    python benchmarks/mpi_scaling.py [--steps 6] [--procs 1,2] [--json results.json]

For each process count P it starts ``mpiexec -n P python -m mpi4py`` on this file, each process
limited to one BLAS thread (threadpoolctl). Each job trains 784-256-256-10 (ReLU, softmax,
cross-entropy, Adam, float64) for one epoch of ``steps`` global batches at batch 1,024 and 8,192
(after one warm-up epoch) and reports samples/s, the seconds spent in the Allreduce (rank 0's;
the Allreduce includes waiting for the slower rank) and the busy seconds: CPU time outside the
Allreduce, the slowest rank's, i.e. about the epoch's time if every process had a core to itself
(on a machine shared with other jobs, the wall-clock speed-up measures the neighbours as much as
ffnn). P = 1 also trains without MPI (the ordinary single-process path), the baseline of the
speed-ups. Each job then times ``Allreduce`` of
8 KiB … 8 MiB float64 buffers, 30 times each; the fit t(m) = a + b·m uses the fastest of the 30
(on a shared machine the others measure the neighbours more than MPI; the medians are kept too).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

SIZES = [784, 256, 256, 10]
BATCHES = (1024, 8192)


class _TimedComm:
    """A communicator that adds up the time spent in Allreduce."""

    def __init__(self, comm):
        self.comm, self.rank, self.size, self.seconds = comm, comm.rank, comm.size, 0.0

    def Allreduce(self, *a, **kw):  # noqa: N802
        t0 = time.perf_counter()
        self.comm.Allreduce(*a, **kw)
        self.seconds += time.perf_counter() - t0

    def bcast(self, obj, root=0):
        return self.comm.bcast(obj, root=root)


def worker(steps):
    from mpi4py import MPI
    from threadpoolctl import threadpool_limits

    import ffnn

    comm = MPI.COMM_WORLD
    out = {"P": comm.size, "runs": [], "allreduce": []}
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        for batch in BATCHES:
            n = batch * steps
            X = rng.standard_normal((n, SIZES[0]))
            T = np.eye(SIZES[-1])[rng.integers(0, SIZES[-1], n)]
            modes = [("mpi", comm)] + ([("single", None)] if comm.size == 1 else [])
            for mode, c in modes:
                net = ffnn.Network(SIZES, "relu", "softmax", seed=0)
                timed = _TimedComm(c) if c is not None else None
                kw = dict(loss="cross_entropy", optimizer=ffnn.Adam(1e-3), batch_size=batch, seed=0, comm=timed)
                ffnn.train(net, X[:2 * batch], T[:2 * batch], epochs=1, **kw)  # warm-up: buffers, BLAS
                if timed is not None:
                    comm.Barrier()
                    timed.seconds = 0.0
                t0, cpu0 = time.perf_counter(), time.process_time()
                ffnn.train(net, X, T, epochs=1, **kw)
                seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                # CPU seconds outside the Allreduce (which spins while it waits), the slowest rank's:
                # what the epoch would take if every process had a core of its own
                work = cpu - (timed.seconds if timed is not None else 0.0)
                work = max(comm.allgather(work)) if c is not None else work
                out["runs"].append({"mode": mode, "batch": batch, "steps": steps, "seconds": seconds,
                                    "samples_per_s": n / seconds, "busy_s": work,
                                    "allreduce_s": None if timed is None else timed.seconds})
            del X, T
        net = ffnn.Network(SIZES, "relu", "softmax", seed=0)  # the replicated part of a step: the update
        opt, params = ffnn.Adam(1e-3), net.parameters()
        state, grads = opt.init(params), [np.full_like(p, 1e-3) for p in params]
        times = []
        for _ in range(20):
            t0 = time.perf_counter()
            opt.apply(grads, state, params, 1e-3)
            times.append(time.perf_counter() - t0)
        out["update_s"] = float(np.median(times))
        for m in [1 << k for k in range(10, 21)]:  # 8 KiB … 8 MiB of float64
            buf = np.ones(m)
            times = []
            for _ in range(30):
                comm.Barrier()
                t0 = time.perf_counter()
                comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
                times.append(time.perf_counter() - t0)
            out["allreduce"].append({"bytes": m * 8, "seconds": float(np.min(times)),
                                     "median_seconds": float(np.median(times))})
    if comm.rank == 0:
        print("RESULT " + json.dumps(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--procs", default="1,2")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of every job; each number is the best round's")
    ap.add_argument("--json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a.steps)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    rounds = {}
    for _ in range(a.repeat):  # rounds interleave the process counts, so that a busy spell hits both
        for p in map(int, a.procs.split(",")):
            r = subprocess.run([mpiexec, "-n", str(p), sys.executable, "-m", "mpi4py", __file__, "--worker",
                                "--steps", str(a.steps)], capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise SystemExit(f"P={p}: {r.stderr.strip()}")
            rounds.setdefault(p, []).append(
                json.loads(next(l for l in r.stdout.splitlines() if l.startswith("RESULT "))[7:]))
    results = [_best(rs) for rs in rounds.values()]
    base = {run["batch"]: run["samples_per_s"] for res in results for run in res["runs"] if run["mode"] == "single"}
    busy = {run["batch"]: run["busy_s"] for res in results for run in res["runs"] if run["mode"] == "single"}
    print(f"{'P':>2} {'path':7} {'batch':>6} {'samples/s':>10} {'speed-up':>8} {'Allreduce share':>15} "
          f"{'busy s':>7} {'speed-up, own cores':>19}")
    for res in results:
        for run in res["runs"]:
            share = "" if run["allreduce_s"] is None else f"{100 * run['allreduce_s'] / run['seconds']:.2f} %"
            own = busy[run["batch"]] / run["busy_s"]  # leaves out the Allreduce's own 0.2–0.4 ms per step
            print(f"{res['P']:>2} {run['mode']:7} {run['batch']:>6} {run['samples_per_s']:>10.0f} "
                  f"{run['samples_per_s'] / base[run['batch']]:>7.2f}x {share:>15} {run['busy_s']:>7.3f} {own:>18.2f}x")
    for res in results:
        if res["P"] > 1:
            m = np.array([r["bytes"] for r in res["allreduce"]], float)
            t = np.array([r["seconds"] for r in res["allreduce"]])
            big = m >= (1 << 20)
            b = max(np.polyfit(m[big], t[big], 1)[0], 1e-12)  # bandwidth from 1–8 MiB, latency from 8 KiB
            a0 = max(t[0] - b * m[0], 0.0)
            print(f"P={res['P']} Allreduce fit: t(m) = {a0 * 1e6:.1f} us + m / {1 / b / 1e9:.2f} GB/s "
                  f"(2.1 MB gradient: {1e3 * (a0 + b * GRAD_BYTES):.2f} ms)")
            res["fit"] = {"a_s": a0, "b_s_per_byte": b}
    model = fit_model(results)
    if model is not None:
        print(f"model: compute per sample {', '.join(f'{v * 1e6:.1f} us (B={k})' for k, v in model['t_c'].items())}, "
              f"update {model['t_u'] * 1e3:.2f} ms, "
              f"Allreduce a = {model['a'] * 1e6:.1f} us, 1/b = {1 / model['b'] / 1e9:.2f} GB/s")
        heads = [f"B={bt} {net}" for bt in BATCHES for net in ("fitted", "network")]
        print(f"{'P':>4} " + " ".join(f"{h:>16}" for h in heads))
        for p in (2, 4, 8, 16, 32, 64, 128, 256):
            cells = [efficiency(model, p, bt, net) for bt in BATCHES for net in ("fitted", "network")]
            print(f"{p:>4} " + " ".join(f"{c:>16.2f}" for c in cells))
        results.append({"model": model})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


GRAD_BYTES = 8 * (sum(a * b + b for a, b in zip(SIZES[:-1], SIZES[1:])) + 2)  # the flat buffer, float64
NETWORK = {"a": 2 * 5e-6, "b": 1 / 12.5e9}  # assumed between nodes: 5 us per message, 100 Gb/s


def _best(rounds):
    """Per configuration, the round with the most samples/s; per Allreduce size, the fastest time."""
    best = dict(rounds[0])
    best["runs"] = [max((r for rs in rounds for r in rs["runs"] if (r["mode"], r["batch"]) == key),
                        key=lambda r: r["samples_per_s"])
                    for key in [(r["mode"], r["batch"]) for r in rounds[0]["runs"]]]
    best["allreduce"] = [min((rs["allreduce"][i] for rs in rounds), key=lambda r: r["seconds"])
                         for i in range(len(rounds[0]["allreduce"]))]
    best["update_s"] = min(rs["update_s"] for rs in rounds)
    return best


def fit_model(results):
    """The replicated update t_u (timed alone), the compute per sample t_c(B) = (step − t_u)/B from
    P = 1 at each batch size, and the Allreduce's a, b from P = 2."""
    one = [res for res in results if res["P"] == 1]
    two = [res for res in results if res["P"] == 2 and "fit" in res]
    if not one or not two:
        return None
    t_u = one[0]["update_s"]
    t_c = {r["batch"]: max(r["seconds"] / r["steps"] - t_u, 0.0) / r["batch"] for r in one[0]["runs"]
           if r["mode"] == "mpi"}
    return {"t_c": t_c, "t_u": t_u, "a": two[0]["fit"]["a_s"], "b": two[0]["fit"]["b_s_per_byte"]}


def allreduce_seconds(model, p, nbytes, net="fitted"):
    """Reduce-scatter + allgather (MPICH's algorithm for large buffers): 2·log2(P) messages of
    latency α = a/2 and 2(P−1)/P of the buffer through each process at b per byte."""
    a, b = (model["a"], model["b"]) if net == "fitted" else (NETWORK["a"], NETWORK["b"])
    return a * np.log2(p) + 2 * (p - 1) / p * nbytes * b


def efficiency(model, p, batch, net="fitted"):
    """Strong scaling at a fixed global batch: T(1) / (P · T(P)), T(P) = t_c·B/P + t_u + t_allreduce(P)."""
    t_c = model["t_c"][batch]
    t1 = t_c * batch + model["t_u"]
    tp = t_c * batch / p + model["t_u"] + allreduce_seconds(model, p, GRAD_BYTES, net)
    return t1 / (p * tp)


if __name__ == "__main__":
    sys.exit(main())
