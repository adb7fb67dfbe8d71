"""The guarantee matrix of :func:`ffnn.train`: each guarantee that its docstring and the README give,
on every path that trains, as one parametrised table.

Rows are :data:`GUARANTEES` (name → how to measure it, how to verify the measurement); columns are
:data:`PATHS` (name → how to make a network and data that train on that path). Every (row, column)
pair is one test, ``test_guarantee[<row>|<column>]``: the measurement runs on the path — in this
process, or for a column with ``ranks`` in one ``mpiexec`` job that measures every row at once
(``tests/guarantee_job.py``) — and is verified here. A pair where the guarantee does not apply is
an entry of :data:`NOT_APPLICABLE` with the reason, and shows up as a skip: a new row or column
adds cells to fill, never a silent gap.

References are independent of the behaviour under test: the weights after m steps are those of a
run whose schedule is 1 for m steps and 0 afterwards (a zero learning rate leaves every weight as
it is), or of a run on the first batches only, or of a shorter run.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest

import ffnn
from ffnn.datasets import NpyPair
from ffnn.losses import get_loss
from ffnn.training import numpy_workspace

from .conftest import network_data, to_np

JOB = pathlib.Path(__file__).with_name("guarantee_job.py")
SIZES = [5, 8, 3]
LOSS = "cross_entropy"
N, BATCH, SEED = 64, 16, 3
STEPS = N // BATCH  # steps per epoch
DATA = network_data(SIZES, "softmax", N, seed=0)
VALIDATION = network_data(SIZES, "softmax", 32, seed=1)  # labels unrelated to X: the network overfits
REL = 1e-12  # "the same numbers" across paths, float64


# --- the columns: how each path gets its network and data ------------------------------------------

@dataclasses.dataclass
class Case:
    """A network and data that train on one path, and the keywords that path needs."""

    net: object
    X: object
    T: object
    kw: dict


@dataclasses.dataclass
class Ctx:
    """Where a guarantee is measured: the path, a folder, and how to get a SIGKILLed run of
    :func:`kill_scenario` on this path (→ its exit status; it leaves ``tmp/resume.ckpt``)."""

    path: str
    tmp: pathlib.Path
    killed: Callable[[], int]
    files: itertools.count = dataclasses.field(default_factory=itertools.count)

    def case(self, X, T, net_seed=0):
        return PATHS[self.path].build(self, np.asarray(X), np.asarray(T), net_seed)


def _net(seed):
    return ffnn.Network(SIZES, "relu", "softmax", seed=seed, dtype="float64")


# relu again, as a user's activation in array-API operations (NumPy or PyTorch): no in-place
# kernels, so the array-namespace core trains it
RELU_CLONE = ffnn.Activation("relu_clone", lambda z: z * (z > 0), lambda z: z * 0 + (z > 0))


def _memory_fast(ctx, X, T, seed):
    net = _net(seed)
    assert numpy_workspace.supports(net, get_loss(LOSS))
    return Case(net, X, T, {"loop": "interpreted"})


def _memory_compiled(ctx, X, T, seed):
    return Case(_net(seed), X, T, {"loop": "compiled"})


def _no_numba():
    from ffnn.training import compiled_engine

    return None if compiled_engine.available() else "needs numba"


def _memory_core(ctx, X, T, seed):
    base = _net(seed)  # the same initial weights as the other paths
    net = ffnn.Network.from_parameters(base.weights, base.biases, [RELU_CLONE, "softmax"])
    assert not numpy_workspace.supports(net, get_loss(LOSS))
    return Case(net, X, T, {})


def _rows_on_disk(ctx, X, T, seed):
    i = next(ctx.files)
    xs, ts = ctx.tmp / f"X.{os.getpid()}.{i}.npy", ctx.tmp / f"T.{os.getpid()}.{i}.npy"
    np.save(xs, X)
    np.save(ts, T)
    return Case(_net(seed), NpyPair(xs, ts), None, {})


def _torch_cpu(ctx, X, T, seed):
    import torch

    from ffnn.training import torch_engine

    net = _net(seed).to(device="cpu")
    assert isinstance(net.weights[1], torch.Tensor) and torch_engine.supports(net, get_loss(LOSS))
    return Case(net, X, T, {})


def _torch_core(ctx, X, T, seed):
    import torch

    from ffnn.training import torch_engine

    base = _net(seed)
    net = ffnn.Network.from_parameters(base.weights, base.biases, [RELU_CLONE, "softmax"]).to(device="cpu")
    assert isinstance(net.weights[1], torch.Tensor) and not torch_engine.supports(net, get_loss(LOSS))
    return Case(net, X, T, {})


def _mpi(ctx, X, T, seed):
    from mpi4py import MPI

    return Case(_net(seed), X, T, {"comm": MPI.COMM_WORLD})


def _no_torch():
    try:
        import torch  # noqa: F401
    except ImportError:  # pragma: no cover - the torch extra
        return "needs PyTorch (ffnn[torch])"
    return None


MPIEXEC = shutil.which("mpiexec") or shutil.which(os.path.join(os.path.dirname(sys.executable), "mpiexec"))


def _no_mpi():
    try:
        import mpi4py  # noqa: F401
    except ImportError:  # pragma: no cover - the mpi extra
        return "needs mpi4py (ffnn[mpi])"
    return None if MPIEXEC else "needs mpiexec"


@dataclasses.dataclass
class Path:
    build: Callable      # (ctx, X, T, net_seed) -> Case, in the process that trains
    same_as: str         # the path whose numbers "same-numbers" compares with
    ranks: int = 0       # > 0: measured in one mpiexec job of this many processes
    missing: Callable = lambda: None  # -> why the path cannot run here, or None


PATHS = {
    "memory-fast": Path(_memory_fast, same_as="memory-core"),
    "memory-core": Path(_memory_core, same_as="memory-fast"),
    "memory-compiled": Path(_memory_compiled, same_as="memory-fast", missing=_no_numba),
    "rows-on-disk": Path(_rows_on_disk, same_as="memory-fast"),
    "torch-cpu": Path(_torch_cpu, same_as="memory-fast", missing=_no_torch),
    "torch-core": Path(_torch_core, same_as="memory-core", missing=_no_torch),
    "mpi-2": Path(_mpi, same_as="memory-fast", ranks=2, missing=_no_mpi),
}


# --- helpers of the measurements -------------------------------------------------------------------

def _train(case, **kw):
    kw = {"loss": LOSS, "batch_size": BATCH, "seed": SEED, "epochs": 3, **case.kw, **kw}
    return ffnn.train(case.net, case.X, case.T, **kw)


def _flat(net):
    return np.concatenate([to_np(p).ravel() for p in net.parameters()])


def _attempt(case, **kw):
    """Train; {"raised": the exception's class name or None, "message": its text, "weights": afterwards}."""
    try:
        _train(case, **kw)
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the measurement reports any
        return {"raised": type(exc).__name__, "message": str(exc), "weights": _flat(case.net)}
    return {"raised": None, "message": "", "weights": _flat(case.net)}


def _until(m):
    """Factor 1 for steps 0..m−1 and 0 afterwards: the run ends with the weights of m steps."""
    return lambda t: 1.0 if t < m else 0.0


def _signal_at(step, signum):
    """Factor 1; sends this process ``signum`` just before step ``step``."""
    def schedule(t):
        if t == step:
            os.kill(os.getpid(), signum)
        return 1.0
    return schedule


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.inf
    with np.errstate(all="ignore"):
        return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _same(got, expected, what):
    """'' when bitwise equal, else a line saying how far apart."""
    got, expected = np.asarray(got, float), np.asarray(expected, float)
    if np.array_equal(got, expected):
        return ""
    bad = int(np.size(got) - np.isfinite(got).sum())
    return f"{what}: not equal ({bad} non-finite of {np.size(got)}, max relative difference {_rel(got, expected):.3g})"


def _finite(weights, what):
    bad = int(np.size(weights) - np.isfinite(np.asarray(weights, float)).sum())
    return f"{what}: {bad} of {np.size(weights)} weights/biases are non-finite" if bad else ""


def _check(problems):
    problems = [p for p in problems if p]
    assert not problems, "\n".join(problems)


# --- the rows: each guarantee's measurement (on the path) and verification (here) -------------------

def measure_diverged(ctx):
    X, T = DATA
    out = {}
    # 1. the first update overflows (η = 1e308): the last good weights are the initial ones
    case = ctx.case(X, T)
    initial = _flat(case.net)
    out["rmsprop-1e308"] = {**_attempt(case, optimizer=ffnn.RMSprop(1e308), epochs=2), "expected": initial}
    # 2. two good epochs (η ≈ 0.1), then η = inf at the first step of epoch 3
    schedule = lambda t: 1e-301 if t < 2 * STEPS else 1e10
    case = ctx.case(X, T)
    got = _attempt(case, optimizer=ffnn.SGD(1e300), schedule=schedule, epochs=4)
    ref = ctx.case(X, T)
    _train(ref, optimizer=ffnn.SGD(1e300), schedule=schedule, epochs=2)
    out["sgd-inf-lr-in-epoch-3"] = {**got, "expected": _flat(ref.net)}
    # 3. the loss itself turns non-finite at step 3 (a row of 1e308 in the third batch, no shuffle)
    Xp = X.copy()
    Xp[2 * BATCH] = 1e308
    case = ctx.case(Xp, T)
    got = _attempt(case, optimizer=ffnn.Adam(0.01), shuffle=False, epochs=2)
    ref = ctx.case(X[:2 * BATCH], T[:2 * BATCH])  # the two good batches alone
    _train(ref, optimizer=ffnn.Adam(0.01), shuffle=False, epochs=1)
    out["loss-nonfinite-at-step-3"] = {**got, "expected": _flat(ref.net)}
    return out


def verify_diverged(result, ctx, measured):
    problems = []
    for name, r in result.items():
        if r["raised"] != "TrainingDiverged":
            problems.append(f"{name}: raised {r['raised']} ({r['message'][:120]!r}), not TrainingDiverged")
        problems.append(_finite(r["weights"], name) or _same(r["weights"], r["expected"],
                                                             f"{name}: the weights of the last good step"))
    _check(problems)


def measure_schedule_check(ctx):
    X, T = DATA
    out = {}
    for name, factor in (("negative", -1.0), ("nan", math.nan)):
        case = ctx.case(X, T)
        before = _flat(case.net)
        out[name] = {**_attempt(case, optimizer=ffnn.SGD(0.1), schedule=lambda t, f=factor: f), "before": before}
    return out


def verify_schedule_check(result, ctx, measured):
    problems = []
    for name, r in result.items():
        if r["raised"] != "ValueError" or "schedule" not in r["message"]:
            problems.append(f"schedule returning {name}: raised {r['raised']} ({r['message'][:100]!r}), "
                            f"not a ValueError naming the schedule")
        problems.append(_same(r["weights"], r["before"], f"schedule returning {name}: the weights before the call"))
    _check(problems)


def measure_early_stopping(ctx):
    X, T = DATA
    case = ctx.case(X, T)
    seen = {}

    def snapshot(net, history):
        seen[history.epoch[-1]] = _flat(net)

    h = _train(case, optimizer=ffnn.Adam(0.05), epochs=30, validation=VALIDATION, early_stopping=2,
               callbacks=[snapshot])
    return {"best_epoch": h.best_epoch, "epochs": list(h.epoch), "val_loss": list(h.val_loss),
            "stopped_early": bool(h.stopped_early), "weights": _flat(case.net),
            "snapshots": {str(k): v for k, v in seen.items()}}


def verify_early_stopping(result, ctx, measured):
    best, epochs = result["best_epoch"], result["epochs"]
    assert result["stopped_early"] and best is not None, "early stopping never triggered (a test set-up problem)"
    assert best < epochs[-1], "the best epoch is the last one: nothing to restore (a test set-up problem)"
    first_min = epochs[int(np.argmin(result["val_loss"]))]
    _check([f"history.best_epoch is {best}, the lowest validation loss is at epoch {first_min}"
            if best != first_min else "",
            _same(result["weights"], result["snapshots"][str(best)], f"the weights of best epoch {best}")])


def kill_scenario(ctx):
    """Train 4 epochs with a checkpoint at each; SIGKILL this process at the second step of epoch 3."""
    X, T = DATA
    _train(ctx.case(X, T), optimizer=ffnn.Adam(0.01), epochs=4, checkpoint=ctx.tmp / "resume.ckpt",
           schedule=_signal_at(2 * STEPS + 1, signal.SIGKILL))


def measure_resume(ctx):
    X, T = DATA
    status = ctx.killed()
    ckpt = ctx.tmp / "resume.ckpt"
    written = ckpt.exists()
    case = ctx.case(X, T, net_seed=1)  # other initial weights: the checkpoint must put its own back
    if written:
        _train(case, optimizer=ffnn.Adam(0.01), epochs=4, resume=ckpt)
    ref = ctx.case(X, T)
    _train(ref, optimizer=ffnn.Adam(0.01), epochs=4)
    return {"status": status, "written": written, "weights": _flat(case.net), "expected": _flat(ref.net)}


def verify_resume(result, ctx, measured):
    # -9: killed by the signal; 9: mpiexec's report of a process killed by it
    assert result["status"] in (-signal.SIGKILL, signal.SIGKILL), \
        f"the run to kill ended with status {result['status']}, not by SIGKILL (a test set-up problem)"
    assert result["written"], f"no checkpoint from the killed run (exit status {result['status']})"
    _check([_same(result["weights"], result["expected"], "resumed after SIGKILL vs uninterrupted")])


def _same_numbers_configs():
    return {"sgd": lambda: {"optimizer": ffnn.SGD(0.1)},
            "adam-l2-clip": lambda: {"optimizer": ffnn.Adam(0.01), "l2": 1e-3, "clip_norm": 0.5}}


def measure_same_numbers(ctx):
    X, T = DATA
    out = {}
    for name, kw in _same_numbers_configs().items():
        case = ctx.case(X, T)
        initial = _flat(case.net)
        _train(case, **kw())
        out[name] = {"weights": _flat(case.net), "initial": initial}
    return out


def verify_same_numbers(result, ctx, measured):
    other = PATHS[ctx.path].same_as
    if PATHS[other].missing():
        pytest.skip(f"{other} (the reference): {PATHS[other].missing()}")
    ref = measured("same-numbers", other)
    problems = []
    for name, r in result.items():
        if np.array_equal(r["weights"], r["initial"]):
            problems.append(f"{name}: training did not change the weights")
        rel = _rel(r["weights"], ref[name]["weights"])
        if rel > REL:
            problems.append(f"{name}: max relative difference {rel:.3g} from {other} (> {REL:g})")
    _check(problems)


def measure_repeatable(ctx):
    X, T = DATA
    runs = []
    for _ in range(2):
        case = ctx.case(X, T)
        _train(case, optimizer=ffnn.Adam(0.01), schedule="cosine")
        runs.append(_flat(case.net))
    return {"first": runs[0], "second": runs[1]}


def verify_repeatable(result, ctx, measured):
    _check([_same(result["second"], result["first"], "two runs with the same seed")])


def measure_interrupted(ctx):
    X, T = DATA
    m = STEPS + 1  # Ctrl-C arrives during the second step of epoch 2: steps 0..m complete
    case = ctx.case(X, T)
    got = _attempt(case, optimizer=ffnn.Adam(0.01), schedule=_signal_at(m, signal.SIGINT))
    ref = ctx.case(X, T)
    _train(ref, optimizer=ffnn.Adam(0.01), schedule=_until(m + 1))
    return {**got, "expected": _flat(ref.net)}


def verify_interrupted(result, ctx, measured):
    _check([f"raised {result['raised']} ({result['message'][:100]!r}), not TrainingInterrupted"
            if result["raised"] != "TrainingInterrupted" else "",
            _same(result["weights"], result["expected"], "the weights of every completed step")])


@dataclasses.dataclass
class Guarantee:
    text: str
    measure: Callable   # (ctx) -> dict of numbers and arrays (JSON-able through _jsonable)
    verify: Callable    # (result, ctx, measured) -> None, asserting; measured(row, column) for references


GUARANTEES = {
    "diverged-finite-last-good": Guarantee(
        "TrainingDiverged leaves finite weights: those of the last good step", measure_diverged, verify_diverged),
    "schedule-checked-first": Guarantee(
        "a negative or NaN schedule factor is a ValueError naming the schedule, before any weight changes",
        measure_schedule_check, verify_schedule_check),
    "early-stopping-best-weights": Guarantee(
        "early stopping restores the weights of history.best_epoch", measure_early_stopping, verify_early_stopping),
    "resume-after-sigkill-exact": Guarantee(
        "a run killed with SIGKILL and resumed ends with exactly the uninterrupted run's weights",
        measure_resume, verify_resume),
    "same-numbers": Guarantee(
        "float64, same seed and data: the same weights on every path (1e-12 relative)",
        measure_same_numbers, verify_same_numbers),
    "repeatable-bit-for-bit": Guarantee(
        "same seed, data and machine: the same weights bit for bit", measure_repeatable, verify_repeatable),
    "ctrl-c-keeps-completed-steps": Guarantee(
        "Ctrl-C: TrainingInterrupted after the current step, keeping every completed update",
        measure_interrupted, verify_interrupted),
}

# (guarantee, path) -> why it does not apply; the cell is an explicit skip. Empty today: the docstring
# of ffnn.train and the README give every row above for every column (e.g. a ParquetRows column would
# add ("same-numbers", "rows-parquet"): "a two-level shuffle, not the in-memory permutation").
NOT_APPLICABLE: dict = {}


# --- running the table ---------------------------------------------------------------------------------

def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def _job(path, *args, timeout=60):
    ranks = PATHS[path].ranks
    head = [MPIEXEC, "-n", str(ranks), sys.executable, "-m", "mpi4py"] if ranks else [sys.executable]
    cmd = [*head, str(JOB), *map(str, args)]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout,
                          env=_env())


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


def _measure_remote(path, folder):
    """Every row on ``path`` in one mpiexec job (after the job that is killed): {row: result}."""
    try:
        killed = _job(path, "kill", path, folder)
        out = folder / "results.json"
        r = _job(path, "measure", path, folder, killed.returncode, out)
    except subprocess.TimeoutExpired as exc:
        return {g: {"error": f"{exc}"} for g in GUARANTEES}
    if r.returncode != 0 or not out.exists():
        return {g: {"error": f"the mpiexec job failed ({r.returncode}):\n{r.stderr[-3000:]}"} for g in GUARANTEES}
    return json.loads(out.read_text())


@pytest.fixture(scope="session")
def measured(tmp_path_factory):
    """(row, column) -> the row's measurement on that column, measured once per session."""
    cache = {}

    def get(g, p):
        if (g, p) not in cache:
            if PATHS[p].ranks:
                for row, result in _measure_remote(p, tmp_path_factory.mktemp(p)).items():
                    cache[row, p] = result
            else:
                folder = tmp_path_factory.mktemp(f"{g}.{p}")
                ctx = Ctx(p, folder, killed=lambda: _job(p, "kill", p, folder).returncode)
                cache[g, p] = GUARANTEES[g].measure(ctx)
        return cache[g, p]

    return get


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread for the tiny PyTorch networks (a thread pool only adds waiting)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("guarantee,path", [pytest.param(g, p, id=f"{g}|{p}")
                                            for g in GUARANTEES for p in PATHS])
def test_guarantee(guarantee, path, measured, tmp_path):
    if (guarantee, path) in NOT_APPLICABLE:
        pytest.skip(NOT_APPLICABLE[guarantee, path])
    if PATHS[path].missing():
        pytest.skip(PATHS[path].missing())
    result = measured(guarantee, path)
    if isinstance(result, dict) and "error" in result and len(result) == 1:
        pytest.fail(f"measuring on {path} failed:\n{result['error']}")
    ctx = Ctx(path, tmp_path, killed=lambda: 0)
    GUARANTEES[guarantee].verify(result, ctx, measured)


def test_every_cell_is_in_the_table():
    """Every NOT_APPLICABLE entry names a real cell (a renamed row or column cannot leave a stale skip)."""
    for g, p in NOT_APPLICABLE:
        assert g in GUARANTEES and p in PATHS, (g, p)
