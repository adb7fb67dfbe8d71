"""Jobs that tests/test_mpi.py starts with ``mpiexec -n P python -m mpi4py tests/mpi_job.py MODE …``.

equal OUT DIR     every configuration trained on COMM_WORLD and by one process; rank 0 writes, per
                  configuration, the largest relative difference of the weights and of the History's
                  losses and gradient diagnostics, and whether every rank ended with the same weights
resume OUT EPOCHS CKPT [FROM]   train to EPOCHS with a checkpoint (resuming from FROM); rank 0
                  writes the weights (.npz)
raise             rank 1 raises during the third step
kill DIR          each rank writes its pid to DIR and trains for a long time
interrupt DIR     the same; after a Ctrl-C (on any rank) each rank writes its optimiser step count
clifail           rank 1 reports an error the way the command line does; the others wait in a barrier
pqreads OUT DIR   2 epochs on Parquet row groups of 64 rows at batch 1,024; rank 0 writes how many row
                  groups each rank decoded (JSON)
"""

import json
import os
import sys
import time

import numpy as np
from mpi4py import MPI

import ffnn
from ffnn.datasets import NpyPair, ParquetRows

comm = MPI.COMM_WORLD


def data(n=203):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, 5))
    y = rng.integers(0, 3, n)
    return X, y, np.eye(3)[y], rng.uniform(0.5, 2.0, n)


def flat(net):
    return np.concatenate([np.ravel(p) for p in net.parameters()])


def fit(X, T, comm_, **kw):
    net = ffnn.Network([5, 8, 7, 3], "relu", "softmax", seed=0)
    kw.setdefault("optimizer", ffnn.SGD(0.05, momentum=0.9))
    kw.setdefault("epochs", 3)
    if kw.pop("diverge", False):  # every rank stops at the same step, with the same last finite weights
        net = ffnn.Network([5, 8, 7, 3], "identity", "identity", seed=0)
        try:
            ffnn.train(net, X * 1e3, T, loss="mse", batch_size=50, seed=3, comm=comm_, **kw)
        except ffnn.TrainingDiverged:
            return flat(net), np.array([1.0]), []  # the last finite weights tell the step it stopped at
        raise AssertionError("did not diverge")
    h = ffnn.train(net, X, T, loss="cross_entropy", batch_size=50, seed=3, comm=comm_, **kw)
    diag = [v for key in ("grad_norm", "delta_mean", "update_ratio") for row in getattr(h, key) for v in row]
    dead = [v for row in h.dead_fraction for v in row]
    return flat(net), np.array(diag + h.loss), dead


def _fresh(kw):
    """``kw`` with a fresh copy of its optimiser (an Optimizer object carries its state to the next call)."""
    kw = dict(kw)
    opt = kw.get("optimizer")
    if opt is not None and not isinstance(opt, str):
        kw["optimizer"] = type(opt)(**opt.config())
    return kw


def equal(out, folder):
    X, y, T, w = data()
    if comm.rank == 0:
        np.save(os.path.join(folder, "X.npy"), X)
        np.save(os.path.join(folder, "y.npy"), y)
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({**{f"f{j}": X[:, j] for j in range(5)}, "y": y})
        pq.write_table(table, os.path.join(folder, "d.parquet"), row_group_size=40)
    comm.Barrier()
    npy = NpyPair(os.path.join(folder, "X.npy"), os.path.join(folder, "y.npy"))
    configs = {
        "sgd_momentum": (dict(), None),
        "adam_l2": (dict(optimizer="adam", l2=1e-3), None),
        "sgd_momentum_dropout": (dict(dropout=0.3), None),
        "adam_dropout_l2": (dict(optimizer="adam", dropout=[0.2, 0.4], l2=1e-3), None),
        "weights_validation_plateau": (dict(optimizer="adam", sample_weight=w, validation=0.2, early_stopping=2,
                                            schedule="plateau"), None),
        "early_stopping_triggers": (dict(optimizer=ffnn.Adam(0.3), validation=0.25, early_stopping=1, epochs=12),
                                    None),
        "divergence": (dict(optimizer=ffnn.SGD(0.01), diverge=True), None),
        "npy_on_disk": (dict(optimizer="adam"), "npy"),
        "parquet_two_level": (dict(optimizer="adam"), "parquet"),
    }
    result = {}
    for name, (kw, source) in configs.items():
        if source is None:
            ref = fit(X, T, None, **_fresh(kw))
            got = fit(X, T, comm, **_fresh(kw))
        elif source == "npy":
            ref = fit(X, T, None, **kw)  # in memory, one process
            got = fit(npy, None, comm, **kw)
        else:
            ref = fit(ParquetRows(os.path.join(folder, "d.parquet")), None, None, **kw)
            got = fit(ParquetRows(os.path.join(folder, "d.parquet")), None, comm, **kw)
        (ref, ref_diag, ref_dead), (got, got_diag, got_dead) = ref, got
        rel = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        same = comm.allreduce(bool(np.array_equal(got, comm.bcast(got))), op=MPI.LAND)
        if len(ref_diag) == len(got_diag):  # the same number of epochs (and a relative difference, 0/0 = 0)
            diag = float(np.max(np.abs(got_diag - ref_diag) / np.maximum(np.abs(ref_diag), 1e-300)))
        else:
            diag = 1.0
        result[name] = {"rel": rel, "same_on_every_rank": same, "history_rel": diag, "dead_same": got_dead == ref_dead,
                        "n_diagnostics": len(ref_diag)}
    if comm.rank == 0:
        with open(out, "w") as f:
            json.dump(result, f)


def resume(out, epochs, ckpt, start=None):
    X, y, T, w = data()
    net = ffnn.Network([5, 8, 7, 3], "tanh", "softmax", seed=0)
    ffnn.train(net, X, T, loss="cross_entropy", optimizer="adam", epochs=int(epochs), batch_size=30, seed=3,
               dropout=0.2, comm=comm, checkpoint=ckpt, resume=start)
    if comm.rank == 0:
        np.savez(out, params=flat(net))


class Failing(NpyPair):
    calls = 0

    def gather(self, idx, X_out, T_out):
        Failing.calls += 1
        if comm.rank == 1 and Failing.calls == 3:
            raise RuntimeError("rank 1 fails on purpose")
        super().gather(idx, X_out, T_out)


def fail(folder):
    X, y, T, w = data()
    if comm.rank == 0:
        np.save(os.path.join(folder, "X.npy"), X)
        np.save(os.path.join(folder, "y.npy"), y)
    comm.Barrier()
    net = ffnn.Network([5, 8, 7, 3], "tanh", "softmax", seed=0)
    ffnn.train(net, Failing(os.path.join(folder, "X.npy"), os.path.join(folder, "y.npy")), None,
               loss="cross_entropy", epochs=1000, batch_size=20, seed=3, comm=comm)


def kill(folder):
    with open(os.path.join(folder, f"pid.{comm.rank}"), "w") as f:
        f.write(str(os.getpid()))
    X, y, T, w = data(2000)
    net = ffnn.Network([5, 8, 7, 3], "tanh", "softmax", seed=0)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 60:
        ffnn.train(net, X, T, loss="cross_entropy", epochs=5, batch_size=20, seed=3, comm=comm)


def interrupt(folder, slow="0"):
    X, y, T, w = data(2000)
    net = ffnn.Network([5, 8, 7, 3], "tanh", "softmax", seed=0)
    batch = 20
    if slow == "1":  # steps of a good fraction of a second, so that a second Ctrl-C lands inside one
        rng = np.random.default_rng(0)
        X, T = rng.normal(size=(8000, 300)), np.eye(3)[rng.integers(0, 3, 8000)]
        net, batch = ffnn.Network([300, 1024, 1024, 3], "tanh", "softmax", seed=0), 8000
    opt = ffnn.Adam()
    ffnn.train(net, X, T, loss="cross_entropy", optimizer=opt, epochs=1, batch_size=batch, seed=3, comm=comm)
    with open(os.path.join(folder, f"pid.{comm.rank}"), "w") as f:
        f.write(str(os.getpid()))
    try:
        ffnn.train(net, X, T, loss="cross_entropy", optimizer=opt, epochs=100000, batch_size=batch, seed=3,
                   comm=comm)
    except ffnn.TrainingInterrupted:
        with open(os.path.join(folder, f"steps.{comm.rank}"), "w") as f:
            f.write(str(opt.state["step"]))


def clifail():
    from ffnn.cli import parallel

    world = parallel.world()
    if world.rank == 1:
        sys.exit(parallel.fail("ffnn: error: rank 1 cannot go on", 1))
    world.Barrier()


def pqreads(out, folder):
    path = os.path.join(folder, "groups.parquet")
    if comm.rank == 0:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(4096, 5)), rng.integers(0, 3, 4096)
        pq.write_table(pa.table({**{f"f{j}": X[:, j] for j in range(5)}, "y": y}), path, row_group_size=64)
    comm.Barrier()
    src = ParquetRows(path)
    decoded = [0]
    load = src._load

    def counting(g):
        decoded[0] += g != src._group
        load(g)

    src._load = counting
    net = ffnn.Network([5, 8, 3], "relu", "softmax", seed=0)
    ffnn.train(net, src, None, loss="cross_entropy", epochs=2, batch_size=1024, seed=0, comm=comm)
    counts = comm.gather(decoded[0])
    if comm.rank == 0:
        with open(out, "w") as f:
            json.dump({"decoded": counts, "row_groups": src.n_row_groups, "epochs": 2}, f)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"equal": equal, "resume": resume, "raise": fail, "kill": kill, "interrupt": interrupt, "clifail": clifail, "pqreads": pqreads}[mode](*args)
