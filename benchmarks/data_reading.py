"""Reading a data file: ffnn's reader (``ffnn.data.read_dataset``) against pandas, the same files in the
same run.

    taskset -c 0,1 python benchmarks/data_reading.py [--rows 20000,200000,2000000] [--rounds 3]
                                                     [--train-rows 2000000] [--json FILE]

Files: 20 float columns and an integer label, as CSV and as Parquet (pyarrow, snappy). Each reader
runs in a fresh process per round (rounds interleaved), with numpy, pandas or ffnn.data, and
pyarrow's modules imported before timing. It first reads a 100-row file of the same kind: its peak
memory after that is the reader's fixed cost (thread pools, allocator arenas, first-use set-up),
reported in MiB. Then it reads the file twice (the best time of all rounds and reads counts) and
reports the peak resident memory (VmHWM) of the first read above that, against the arrays the file
declares (rows × 21 × 8 bytes). pandas reads into a DataFrame and takes its features as one
C-ordered float64 array (what a training loop needs: a DataFrame's ``.to_numpy()`` is column-major)
and the label column; ffnn reads into the same. A third reader, pyarrow's own ``read_csv`` /
``ParquetFile.read`` into a Table with nothing converted, shows the floor of any reader built on
pyarrow. ffnn and pyarrow parse on both cores; pandas' C parser is its own. The time reported is the
best of a process's first read and a second one in the same process; the first read alone (what one
``ffnn`` command pays) is reported beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import sys, time
kind, path, reader, small = sys.argv[1:5]
import numpy as np
if reader == "pandas":
    import pandas as pd
else:
    from ffnn.data import read_dataset
import pyarrow, pyarrow.compute, pyarrow.csv, pyarrow.parquet  # both readers' libraries, loaded before timing
def hwm():  # this process's peak resident size in kB (VmHWM: ru_maxrss keeps the forking parent's peak across exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
def read(path):
    if reader == "pandas":
        df = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
        return np.ascontiguousarray(df.iloc[:, :-1].to_numpy(np.float64)), df.iloc[:, -1].to_numpy()
    if reader == "pyarrow":  # pyarrow's own reader into a Table, nothing converted: the floor of a reader built on it
        table = pyarrow.csv.read_csv(path) if kind == "csv" else pyarrow.parquet.ParquetFile(path).read()
        return table, None
    ds = read_dataset(path)
    return ds.X, ds.y
start = hwm()
read(small)  # the reader's fixed cost (thread pools, allocator arenas, first-use set-up), measured apart
base = hwm()
t0 = time.perf_counter()
X, y = read(path)
sec = time.perf_counter() - t0
peak = hwm() - base
del X, y
t0 = time.perf_counter()
X, y = read(path)  # the same read again in the warm process
print(sec, peak * 1024, (base - start) * 1024, len(X), time.perf_counter() - t0)
"""


def make(directory, rows, seed=0):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 20))
    y = rng.integers(0, 10, size=rows)
    names = [f"x{i}" for i in range(20)]
    table = pa.table({**{n: X[:, i] for i, n in enumerate(names)}, "label": y})
    os.makedirs(directory, exist_ok=True)
    csv_path = os.path.join(directory, f"d{rows}.csv")
    pq_path = os.path.join(directory, f"d{rows}.parquet")
    import pyarrow.csv as pcsv

    pcsv.write_csv(table, csv_path)
    pq.write_table(table, pq_path)
    return {"csv": csv_path, "parquet": pq_path}


def run(kind, path, reader, small):
    """(the best of the first and the warm read's seconds, the first read's, peak bytes, fixed bytes, rows)."""
    out = subprocess.run([sys.executable, "-c", CHILD, kind, path, reader, small], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{reader} on {path} exited with {out.returncode}:\n{out.stderr}")
    sec, peak, fixed, n, warm = out.stdout.split()
    return min(float(sec), float(warm)), float(sec), int(peak), int(fixed), int(n)


READERS = ("ffnn", "pandas", "pyarrow")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="20000,200000,2000000")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json")
    p.add_argument("--train-rows", type=int, default=0, help="also time ffnn train on a CSV of this many rows")
    args = p.parse_args()
    load = os.getloadavg()[0]
    print(f"reading 20 float columns + an integer label; best of {args.rounds} interleaved rounds, a fresh "
          f"process each; load average {load:.2f}")
    print("memory: the peak above the reader's fixed cost (its peak after reading a 100-row file first), "
          "÷ the arrays (rows × 21 × 8 bytes); the fixed cost in MiB beside it")
    results = []
    with tempfile.TemporaryDirectory() as d:
        small = make(os.path.join(d, "small"), 100)
        for rows in (int(r) for r in args.rows.split(",")):
            t0 = time.perf_counter()
            files = make(d, rows)
            made = time.perf_counter() - t0
            arrays = rows * 21 * 8
            for kind, path in files.items():
                best = {}
                for _ in range(args.rounds):
                    for reader in READERS:
                        sec, first, peak, fixed, n = run(kind, path, reader, small[kind])
                        assert n == rows
                        old = best.get(reader, (sec, peak, fixed, first))
                        best[reader] = (min(sec, old[0]), max(peak, old[1]), max(fixed, old[2]), min(first, old[3]))
                ff, pd_, pa_ = (best[r] for r in READERS)
                mb = os.path.getsize(path) / 2**20
                print(f"{kind:<8} {rows:>9,} rows ({mb:7.1f} MB): ffnn {ff[0]:.3f} s, pandas {pd_[0]:.3f} s, "
                      f"ffnn/pandas {ff[0] / pd_[0]:.2f} (pyarrow's Table alone {pa_[0] / pd_[0]:.2f}); peak memory "
                      f"ffnn {ff[1] / arrays:.2f}× + {ff[2] / 2**20:.0f} MiB, pandas {pd_[1] / arrays:.2f}× + "
                      f"{pd_[2] / 2**20:.0f} MiB (arrays {arrays / 2**20:.0f} MiB); a process's first read: ffnn/pandas "
                      f"{ff[3] / pd_[3]:.2f} [files made in {made:.1f} s]")
                results.append({"kind": kind, "rows": rows, "megabytes": mb, "ffnn_s": ff[0], "pandas_s": pd_[0],
                                "pyarrow_table_s": pa_[0], "ratio": ff[0] / pd_[0],
                                "ffnn_peak_over_arrays": ff[1] / arrays, "pandas_peak_over_arrays": pd_[1] / arrays,
                                "pyarrow_table_peak_over_arrays": pa_[1] / arrays,
                                "ffnn_fixed_mib": ff[2] / 2**20, "pandas_fixed_mib": pd_[2] / 2**20,
                                "ffnn_first_read_s": ff[3], "pandas_first_read_s": pd_[3]})
    train = train_phases(args.train_rows) if args.train_rows else None
    end = os.getloadavg()[0]
    print(f"load average at the end {end:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_average": load, "load_average_at_end": end, "rows": results, "train": train}, f,
                      indent=2)


def train_phases(rows=2_000_000, epochs=1):
    """``ffnn train`` on a CSV of ``rows`` rows (20 float features, a 10-class label): the command's
    wall time, and its phases measured in this process with the same functions (reading, scaling,
    training one epoch, writing the model)."""
    import numpy as np

    import ffnn
    from ffnn.data import Scaler, read_dataset

    with tempfile.TemporaryDirectory() as d:
        path = make(d, rows)["csv"]
        out = os.path.join(d, "m.safetensors")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ffnn", "train", path, "--epochs", str(epochs), "--quiet",
                        "--out", out], check=True, capture_output=True)
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = read_dataset(path)
        read = time.perf_counter() - t0
        t0 = time.perf_counter()
        X = Scaler("standard").fit(ds.X).transform(ds.X)
        scale = time.perf_counter() - t0
        T = np.eye(10)[ds.y]
        net = ffnn.Network([20, 64, 32, 10], "relu", "softmax", seed=0)
        h = ffnn.train(net, X, T, loss="cross_entropy", optimizer="adam", epochs=epochs, batch_size=32, seed=0)
        t0 = time.perf_counter()
        ffnn.save(net, out)
        write = time.perf_counter() - t0
        print(f"ffnn train on {rows:,} CSV rows ({os.path.getsize(path) / 2**20:.0f} MB), {epochs} epoch: the command "
              f"{wall:.1f} s; reading {read:.2f} s, scaling {scale:.2f} s, training {sum(h.time):.1f} s "
              f"(batch 32, Adam, 64-32 relu), writing the model {write:.3f} s")
        return {"rows": rows, "command_s": wall, "read_s": read, "scale_s": scale, "train_s": sum(h.time),
                "write_s": write}


if __name__ == "__main__":
    main()
