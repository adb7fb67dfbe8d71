"""Training on a file larger than the memory the process may allocate, and its peak resident memory.

    python benchmarks/out_of_core.py [--limit-mb 256] [--factor 4.2] [--format npy|parquet|both]
                                     [--dir DIR] [--json results.json]

Writes a data set of ``factor × limit`` bytes (784 float64 features, 10 classes) as a ``.npy`` pair
and as Parquet (row groups of 8,192 rows), then trains 784-256-256-10 with Adam, batch 1,024, for one
epoch on each, in a child process whose data segment is limited to ``limit`` MiB
(``RLIMIT_DATA``: every allocation — NumPy arrays, Arrow buffers, the heap — counts; the file's
read-only shared mapping does not, so the limit is on what the process holds, not on the file).

Reported per format and file: the file size, the limit, the child's resident memory before training
(Python, NumPy, pyarrow, ffnn and the network), its peak resident memory (``VmHWM``, which counts the
file's pages while they are mapped), the growth from one to the other and a nominal budget: model +
optimiser state + four batches' activations + one row group. The same training on a file of 16
batches is the control: what the large file adds to its peak is what grows with the file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

SIZES = [784, 256, 256, 10]
BATCH = 1024
ROW_GROUP = 8192


def write_data(folder, nbytes, fmt):
    n = int(nbytes // (SIZES[0] * 8))
    paths = {}
    rng = np.random.default_rng(0)
    chunk = 16384
    if fmt in ("npy", "both"):
        X = np.lib.format.open_memmap(os.path.join(folder, "X.npy"), mode="w+", dtype=np.float64, shape=(n, SIZES[0]))
        y = np.lib.format.open_memmap(os.path.join(folder, "y.npy"), mode="w+", dtype=np.int64, shape=(n,))
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            X[s:e] = rng.standard_normal((e - s, SIZES[0]))
            y[s:e] = rng.integers(0, 10, e - s)
        X.flush(), y.flush()
        del X, y
        paths["npy"] = (os.path.join(folder, "X.npy"), os.path.join(folder, "y.npy"))
    if fmt in ("parquet", "both"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        names = [f"x{j}" for j in range(SIZES[0])] + ["y"]
        schema = pa.schema([(c, pa.float64()) for c in names[:-1]] + [("y", pa.int64())])
        path = os.path.join(folder, "d.parquet")
        with pq.ParquetWriter(path, schema, compression="none") as w:
            for s in range(0, n, ROW_GROUP):
                e = min(n, s + ROW_GROUP)
                Xc = rng.standard_normal((e - s, SIZES[0]))
                cols = [pa.array(Xc[:, j]) for j in range(SIZES[0])] + [pa.array(rng.integers(0, 10, e - s))]
                w.write_table(pa.table(cols, schema=schema), row_group_size=ROW_GROUP)
        paths["parquet"] = (path,)
    return n, paths


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def child(fmt, paths, limit_mb, kind):
    """Train one epoch under the limit; print JSON."""
    which = resource.RLIMIT_DATA if kind == "data" else resource.RLIMIT_AS
    resource.setrlimit(which, (limit_mb << 20, limit_mb << 20))
    from threadpoolctl import threadpool_limits

    import ffnn
    from ffnn.datasets import NpyPair, ParquetRows

    source = (ParquetRows(paths[0], target="y") if fmt == "parquet" else NpyPair(*paths, mmap=fmt == "npy_mmap"))
    net = ffnn.Network(SIZES, "relu", "softmax", seed=0)
    rss0 = _status("VmRSS")
    t0 = time.perf_counter()
    with threadpool_limits(1):
        h = ffnn.train(net, source, None, loss="cross_entropy", optimizer="adam", epochs=1, batch_size=BATCH, seed=0)
    seconds = time.perf_counter() - t0
    print(json.dumps({"rss_before": rss0, "peak_rss": _status("VmHWM"), "seconds": seconds,
                      "loss": h.loss[-1], "n": len(source)}))


def measure(limit_mb, factor, fmt, folder, kind="data"):
    params = sum(a * b + b for a, b in zip(SIZES[:-1], SIZES[1:])) * 8
    batch = BATCH * sum(SIZES) * 8  # one batch through the network (inputs, activations, targets)
    row_group = ROW_GROUP * (SIZES[0] + 1) * 8
    rows = []
    # The control: the same training on a file of 16 batches, whose peak shows what does not grow with the file.
    for label, nbytes in (("16 batches", 16 * BATCH * SIZES[0] * 8), ("large", int(factor * (limit_mb << 20)))):
        sub = os.path.join(folder, label.replace(" ", "_"))
        os.makedirs(sub)
        n, paths = write_data(sub, nbytes, fmt)
        if "npy" in paths:
            paths["npy_mmap"] = paths["npy"]
        for name, p in paths.items():
            size = sum(os.path.getsize(q) for q in p)
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1", ARROW_DEFAULT_MEMORY_POOL="system")
            r = subprocess.run([sys.executable, __file__, "--child", name, *p, "--limit-mb", str(limit_mb),
                                "--limit-kind", kind],
                               capture_output=True, text=True, env=env)
            if r.returncode != 0:
                rows.append({"format": name, "file": label, "file_bytes": size, "limit_bytes": limit_mb << 20,
                             "failed": r.stderr.strip().splitlines()[-1:]})
                continue
            res = json.loads(r.stdout.strip().splitlines()[-1])
            budget = params * 3 + 4 * batch + (row_group if name == "parquet" else 0)
            rows.append({"format": name, "file": label, "file_bytes": size, "limit_bytes": limit_mb << 20, **res,
                         "model_bytes": params, "optimizer_bytes": 2 * params, "batch_bytes": batch,
                         "row_group_bytes": row_group if name == "parquet" else 0,
                         "peak_minus_before": res["peak_rss"] - res["rss_before"], "budget": budget})
        for p in set(paths.values()):
            for q in p:
                os.remove(q)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit-mb", type=int, default=256)
    ap.add_argument("--factor", type=float, default=4.2)
    ap.add_argument("--limit-kind", choices=["data", "as"], default="data",
                    help="RLIMIT_DATA (default) or RLIMIT_AS (address space: the memory map counts)")
    ap.add_argument("--format", choices=["npy", "parquet", "both"], default="both")
    ap.add_argument("--dir", help="where to write the data (default: a temporary folder, removed after)")
    ap.add_argument("--json")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child(a.child[0], a.child[1:], a.limit_mb, a.limit_kind)
    with tempfile.TemporaryDirectory(dir=a.dir) as folder:
        rows = measure(a.limit_mb, a.factor, a.format, folder, a.limit_kind)
    mib = 1 << 20
    print(f"{'format':8} {'file':10} {'file MiB':>9} {'limit MiB':>9} {'RSS before':>10} {'peak RSS':>9} "
          f"{'peak-before':>11} "
          f"{'budget':>7} {'s':>6}")
    for r in rows:
        if "failed" in r:
            print(f"{r['format']:8} {r['file']:10} {r['file_bytes'] / mib:9.0f} {r['limit_bytes'] / mib:9.0f} "
                  f"failed: {r['failed']}")
            continue
        print(f"{r['format']:8} {r['file']:10} {r['file_bytes'] / mib:9.0f} {r['limit_bytes'] / mib:9.0f} "
              f"{r['rss_before'] / mib:10.1f} {r['peak_rss'] / mib:9.1f} {r['peak_minus_before'] / mib:11.1f} "
              f"{r['budget'] / mib:7.1f} {r['seconds']:6.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
