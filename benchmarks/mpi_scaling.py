"""Data-parallel training speed on 1 and 2 processes, the Allreduce's share, and the numbers for the
latency–bandwidth model of docs/scaling.md.

    python benchmarks/mpi_scaling.py [--steps 6] [--procs 1,2] [--json results.json]

For each process count P it starts ``mpiexec -n P python -m mpi4py`` on this file, each process
limited to one BLAS thread (threadpoolctl). Each job trains 784-256-256-10 (ReLU, softmax,
cross-entropy, Adam, float64) for one epoch of ``steps`` global batches at batch 1,024 and 8,192
(after one warm-up epoch) and reports samples/s and the seconds spent in the Allreduce (rank 0's;
the Allreduce includes waiting for the slower rank). P = 1 also trains without MPI (the ordinary
single-process path), the baseline of the speed-up. Each job then times ``Allreduce`` of
8 KiB … 8 MiB float64 buffers (median of 30) for the fit t(m) = a + b·m.
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
                t0 = time.perf_counter()
                ffnn.train(net, X, T, epochs=1, **kw)
                seconds = time.perf_counter() - t0
                out["runs"].append({"mode": mode, "batch": batch, "steps": steps, "seconds": seconds,
                                    "samples_per_s": n / seconds,
                                    "allreduce_s": None if timed is None else timed.seconds})
            del X, T
        for m in [1 << k for k in range(10, 21)]:  # 8 KiB … 8 MiB of float64
            buf = np.ones(m)
            times = []
            for _ in range(30):
                comm.Barrier()
                t0 = time.perf_counter()
                comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
                times.append(time.perf_counter() - t0)
            out["allreduce"].append({"bytes": m * 8, "seconds": float(np.median(times))})
    if comm.rank == 0:
        print("RESULT " + json.dumps(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--procs", default="1,2")
    ap.add_argument("--json")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a.steps)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    results = []
    for p in map(int, a.procs.split(",")):
        r = subprocess.run([mpiexec, "-n", str(p), sys.executable, "-m", "mpi4py", __file__, "--worker",
                            "--steps", str(a.steps)], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SystemExit(f"P={p}: {r.stderr.strip()}")
        results.append(json.loads(next(l for l in r.stdout.splitlines() if l.startswith("RESULT "))[7:]))
    base = {run["batch"]: run["samples_per_s"] for res in results for run in res["runs"] if run["mode"] == "single"}
    print(f"{'P':>2} {'path':7} {'batch':>6} {'samples/s':>10} {'speed-up':>8} {'Allreduce share':>15}")
    for res in results:
        for run in res["runs"]:
            share = "" if run["allreduce_s"] is None else f"{100 * run['allreduce_s'] / run['seconds']:.2f} %"
            print(f"{res['P']:>2} {run['mode']:7} {run['batch']:>6} {run['samples_per_s']:>10.0f} "
                  f"{run['samples_per_s'] / base[run['batch']]:>7.2f}x {share:>15}")
    for res in results:
        if res["P"] > 1:
            m = np.array([r["bytes"] for r in res["allreduce"]], float)
            t = np.array([r["seconds"] for r in res["allreduce"]])
            b, a0 = np.polyfit(m, t, 1)
            print(f"P={res['P']} Allreduce fit: t(m) = {a0 * 1e6:.1f} us + m / {1 / b / 1e9:.2f} GB/s")
            res["fit"] = {"a_s": a0, "b_s_per_byte": b}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
