"""Data-parallel training in real ``mpiexec`` jobs of 1–4 processes (skipped without mpiexec/mpi4py)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ffnn

JOB = Path(__file__).with_name("mpi_job.py")
MPIEXEC = shutil.which("mpiexec") or shutil.which(os.path.join(os.path.dirname(sys.executable), "mpiexec"))
try:
    import mpi4py  # noqa: F401
except ImportError:  # pragma: no cover - the mpi extra
    mpi4py = None

pytestmark = pytest.mark.skipif(MPIEXEC is None or mpi4py is None, reason="needs mpiexec and mpi4py (ffnn[mpi])")


def mpiexec(n, *args, timeout=60, **kw):
    cmd = [MPIEXEC, "-n", str(n), sys.executable, "-m", "mpi4py", *map(str, args)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_every_process_count_gives_the_single_process_weights(tmp_path, n):
    # 203 samples in batches of 50: the last batch has 3 rows, so with 4 processes one rank has none.
    out = tmp_path / "result.json"
    r = mpiexec(n, JOB, "equal", out, tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert len(result) == 9
    for name, res in result.items():
        assert res["rel"] <= 1e-12, (name, res)
        assert res["same_on_every_rank"], name
        assert res["history_rel"] <= 1e-9 and res["dead_same"] and res["n_diagnostics"] > 0, (name, res)


def test_resume_with_another_process_count_ends_where_an_uninterrupted_run_ends(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    r = mpiexec(3, JOB, "resume", tmp_path / "half.npz", 2, ckpt)
    assert r.returncode == 0, r.stderr
    r = mpiexec(2, JOB, "resume", tmp_path / "resumed.npz", 4, ckpt, ckpt)
    assert r.returncode == 0, r.stderr
    resumed = np.load(tmp_path / "resumed.npz")["params"]

    sys.path.insert(0, str(JOB.parent))
    try:
        from mpi_job import data, flat
    finally:
        sys.path.pop(0)
    X, y, T, w = data()
    net = ffnn.Network([5, 8, 7, 3], "tanh", "softmax", seed=0)
    ffnn.train(net, X, T, loss="cross_entropy", optimizer="adam", epochs=4, batch_size=30, seed=3, dropout=0.2)
    ref = flat(net)
    assert np.max(np.abs(resumed - ref)) <= 1e-12 * np.max(np.abs(ref))


def test_a_rank_that_raises_ends_the_job_quickly(tmp_path):
    t0 = time.perf_counter()
    r = mpiexec(3, JOB, "raise", tmp_path, timeout=30)
    assert r.returncode != 0
    assert time.perf_counter() - t0 < 20
    assert "rank 1 fails on purpose" in r.stderr
    assert r.stderr.count("Traceback") == 1  # from the failing rank only


def _signal_rank_1(folder, signum, after):
    """Wait until rank 1 has written its pid (at most 30 s), let it run ``after`` seconds more, then
    send it ``signum``."""
    deadline = time.time() + 30
    while not (folder / "pid.1").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(after)
    os.kill(int((folder / "pid.1").read_text()), signum)


def test_a_killed_rank_ends_the_job_quickly(tmp_path):
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "mpi4py", str(JOB), "kill", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _signal_rank_1(tmp_path, signal.SIGKILL, after=0.5)
        t0 = time.perf_counter()
        proc.communicate(timeout=20)
        assert time.perf_counter() - t0 < 10
        assert proc.returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_ctrl_c_on_one_rank_stops_every_rank_after_the_same_step(tmp_path):
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "mpi4py", str(JOB), "interrupt", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _signal_rank_1(tmp_path, signal.SIGINT, after=1.0)  # rank 1 alone
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    steps = {(tmp_path / f"steps.{r}").read_text() for r in (0, 1)}
    assert len(steps) == 1 and int(steps.pop()) > 0


def test_a_second_ctrl_c_on_one_rank_ends_the_job(tmp_path):
    # Steps of a few tenths of a second: the second Ctrl-C, 0.3 s after the first, usually lands in the
    # same step and stops rank 1 alone, halfway; it must then end the job rather than leave rank 0
    # waiting. (When the step is over first, both ranks stop together, as in the test above.)
    cmd = [MPIEXEC, "-n", "2", sys.executable, "-m", "mpi4py", str(JOB), "interrupt", str(tmp_path), "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 30
        while not (tmp_path / "pid.1").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        pid = int((tmp_path / "pid.1").read_text())
        os.kill(pid, signal.SIGINT)
        time.sleep(0.3)
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:  # the first Ctrl-C already ended the job (a busy machine's timing)
            pass
        t0 = time.perf_counter()
        out, err = proc.communicate(timeout=30)
        assert time.perf_counter() - t0 < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # Whatever the timing: the job ended (no rank left waiting), with at most one line and no traceback.
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    if proc.returncode == 0:  # the step was over first: both ranks stopped together
        assert (tmp_path / "steps.0").read_text() == (tmp_path / "steps.1").read_text()
    elif "rank 1 interrupted during a step; ending the job" in err:  # it landed inside a step: MPI_Abort(130)
        assert proc.returncode == 130 and not (tmp_path / "steps.1").exists(), (proc.returncode, err)
    else:  # it landed after training, while rank 1 was ending: a quiet non-zero exit
        assert err.strip() == "", err


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    lines = ["a,b,c,d,label"] + [",".join(repr(float(v)) for v in row) + f",{c}" for row, c in zip(X, y)]
    (d / "data.csv").write_text("\n".join(lines) + "\n")
    return d


def test_cli_under_mpiexec_writes_the_single_process_model_once(table, tmp_path):
    common = ["train", table / "data.csv", "--epochs", "4", "--quiet", "--hidden", "6", "--optimizer", "sgd",
              "--momentum", "0.9", "--checkpoint"]
    r = mpiexec(3, "-m", "ffnn", *common, tmp_path / "p.ckpt", "--out", tmp_path / "p.safetensors")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("model saved to") == 1  # rank 0 only
    one = subprocess.run([sys.executable, "-m", "ffnn", *map(str, common), str(tmp_path / "s.ckpt"), "--out",
                          str(tmp_path / "s.safetensors")], capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    a, b = ffnn.load(tmp_path / "p.safetensors"), ffnn.load(tmp_path / "s.safetensors")
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    assert sorted(os.listdir(tmp_path)) == ["p.ckpt", "p.safetensors", "s.ckpt", "s.safetensors"]


def test_cli_error_under_mpiexec_is_one_line_and_ends_the_job(tmp_path):
    t0 = time.perf_counter()
    r = mpiexec(3, "-m", "ffnn", "train", tmp_path / "missing.csv", "--out", tmp_path / "m.safetensors")
    assert r.returncode == 1
    assert time.perf_counter() - t0 < 20
    assert r.stderr.strip().splitlines() == [f"ffnn: error: data file {str(tmp_path / 'missing.csv')!r} does not exist"]


def test_an_error_on_one_rank_of_the_command_line_is_one_line(tmp_path):
    t0 = time.perf_counter()
    r = mpiexec(3, JOB, "clifail")
    assert r.returncode == 1
    assert time.perf_counter() - t0 < 20
    assert r.stderr.strip().splitlines() == ["ffnn: rank 1: error: rank 1 cannot go on"]


def test_each_rank_decodes_only_the_parquet_row_groups_of_its_shares(tmp_path):
    # Row groups of 64 rows, batches of 1,024 on 4 ranks: a rank's share of a batch is 256 rows, i.e.
    # 4 whole row groups of the two-level order, so each rank decodes a quarter of the file per epoch.
    r = mpiexec(4, JOB, "pqreads", tmp_path / "reads.json", tmp_path)
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "reads.json").read_text())
    assert res["decoded"] == [res["epochs"] * res["row_groups"] // 4] * 4
