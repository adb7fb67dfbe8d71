"""Edge cases of the epoch driver found by an adversarial review of the one-engine restructuring (each
failed before its fix, for the reason in its docstring): however an epoch ends — Ctrl-C, a schedule's
bad factor, a divergence the PyTorch engine has not reported yet — the weights are finite and the
optimiser's state matches them; the fused SGD step checks the penalty before it changes anything;
and no MPI rank waits for a rank that stopped."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ffnn
from ffnn._array import to_numpy


def _net(path, sizes=(3, 4, 1), **kw):
    if path == "torch":
        pytest.importorskip("torch")
        kw["device"] = "cpu"
    return ffnn.Network(list(sizes), "tanh", seed=1, **kw)


def _params(net):
    return [to_numpy(p).copy() for p in net.parameters()]


def _finite(net):
    return all(np.isfinite(to_numpy(p)).all() for p in net.parameters())


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(12, 3)), 1000 * rng.normal(size=(12, 1))  # large targets: large gradients


@pytest.mark.parametrize("path", ["numpy", "torch"])
def test_ctrl_c_right_after_an_overflowing_update_keeps_finite_weights(path):
    """Ctrl-C during the step whose update overflows: TrainingInterrupted leaves inf/NaN weights.

    Run.epoch calls _keep_finite only on TrainingDiverged or at the end of the epoch; a
    KeyboardInterrupt from check_interrupt skips it (NumPy path: any step; PyTorch path: the epoch's
    last step, where the replay ends without raising and the KeyboardInterrupt is re-raised)."""
    X, Y = _data()
    net = _net(path)
    sent = []

    def schedule(t):
        if t == 2:  # the epoch's last step (3 steps of 4 rows)
            if not sent:
                sent.append(1)
                os.kill(os.getpid(), signal.SIGINT)
            return 1.7e308  # a finite factor whose update overflows
        return 1.0

    with pytest.raises((ffnn.TrainingInterrupted, ffnn.TrainingDiverged)):
        ffnn.train(net, X, Y, loss="mse", optimizer=ffnn.SGD(1.0), epochs=2, batch_size=4, schedule=schedule, seed=0)
    assert _finite(net)


@pytest.mark.parametrize("path", ["numpy", "torch"])
def test_schedule_error_after_an_overflowing_update_keeps_finite_weights(path):
    """Step 1's update overflows, step 2's schedule factor is NaN: ValueError with inf/NaN weights.

    The ValueError from Run._factor leaves Run.epoch without _keep_finite (any exception other than
    TrainingDiverged does), so the documented "net keeps finite weights" does not hold."""
    X, Y = _data()
    net = _net(path)

    def schedule(t):
        return {1: 1e308, 2: float("nan")}.get(t, 1.0)

    with pytest.raises((ValueError, ffnn.TrainingDiverged)):
        ffnn.train(net, X, Y, loss="mse", optimizer=ffnn.SGD(1.0), epochs=1, batch_size=3, schedule=schedule, seed=0)
    assert _finite(net)


def test_torch_deferred_divergence_is_not_lost_when_a_later_step_raises():
    """PyTorch path: step 1's loss overflows (deferred check), step 2's schedule returns NaN.

    The NumPy path (and the code before the restructuring, b4147cc) raises TrainingDiverged with the
    weights after step 0; the TorchEngine path raises the schedule's ValueError with NaN weights:
    Run.epoch reads the deferred flags and replays only on KeyboardInterrupt or a normal end."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(9, 3)), rng.normal(size=(9, 1))
    X[3:6] = 1e200  # the rows of step 1 (batches of 3, no shuffle): its loss is inf
    results = {}
    for path in ["numpy", "torch"]:
        if path == "torch":
            pytest.importorskip("torch")
        kw = {"device": "cpu"} if path == "torch" else {}
        net = ffnn.Network([3, 1], output="identity", seed=1, **kw)
        after_step0 = ffnn.Network([3, 1], output="identity", seed=1, **kw)
        ffnn.train(after_step0, X[:3], Y[:3], loss="mse", optimizer="sgd", epochs=1, batch_size=3, shuffle=False)

        def schedule(t):
            return float("nan") if t == 2 else 1.0

        with pytest.raises(Exception) as info:
            ffnn.train(net, X, Y, loss="mse", optimizer="sgd", epochs=1, batch_size=3, shuffle=False,
                       schedule=schedule)
        results[path] = (info.type, _params(net), _params(after_step0))
    for path in results:
        kind, params, expected = results[path]
        assert kind is ffnn.TrainingDiverged, path
        assert all(np.array_equal(a, b) for a, b in zip(params, expected)), path


def test_fused_sgd_step_with_a_non_finite_penalty_changes_nothing():
    """NumPy fast path, plain SGD + l2 (the fused step): when J is finite but the penalty λ₂/2 ΣW² is
    not, NumpyEngine.step applies the update (ws.sgd_step) and only then raises TrainingDiverged, so
    the weights are not those before the failing step. Adam, the core, PyTorch and array_api_strict
    all raise before changing anything (Engine.update adds the penalty before its check)."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 1))
    net = ffnn.Network([3, 4, 1], "tanh", seed=1)
    net.weights[1][0, 0] = 1e160  # tanh saturates: J and the gradients stay finite, ΣW² overflows
    before = _params(net)
    with pytest.raises(ffnn.TrainingDiverged):
        ffnn.train(net, X, Y, loss="mse", optimizer="sgd", epochs=1, batch_size=4, l2=0.1, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, _params(net)))


@pytest.mark.parametrize("path", ["numpy", "torch"])
def test_optimizer_state_matches_the_weights_kept_after_divergence(path):
    """An overflowing update puts the weights back to the epoch's start, but the optimiser object's
    state (mutated in place) keeps the failed steps: step count and a ~1e304 velocity. A further
    train() with the same optimiser (documented to continue its state) then diverges at once."""
    X, Y = _data()
    Y = Y * 1e5  # gradients large enough that η·g overflows: the update itself is infinite
    net = _net(path)
    opt = ffnn.SGD(1e-4, momentum=0.9)
    ffnn.train(net, X, Y, loss="mse", optimizer=opt, epochs=1, batch_size=4, seed=0)
    step0 = opt.state["step"]
    velocity0 = [to_numpy(v).copy() for v in opt.state["velocity"]]
    before = _params(net)
    with pytest.raises(ffnn.TrainingDiverged):
        ffnn.train(net, X, Y, loss="mse", optimizer=opt, epochs=1, batch_size=4, seed=0,
                   schedule=lambda t: 1.7e308 if t == step0 + 1 else 1.0)
    assert all(np.array_equal(a, b) for a, b in zip(before, _params(net)))  # back to the epoch's start
    assert opt.state["step"] == step0
    assert all(np.array_equal(to_numpy(v), v0) for v, v0 in zip(opt.state["velocity"], velocity0))


MPIEXEC = shutil.which("mpiexec")


@pytest.mark.skipif(MPIEXEC is None, reason="needs mpiexec")
def test_mpi_callback_error_on_rank_0_does_not_hang_the_other_ranks(tmp_path):
    """A callback that raises runs on rank 0 only (ShardedEngine.agree); rank 0 leaves with the error
    while rank 1 waits in comm.bcast forever: the job never ends."""
    pytest.importorskip("mpi4py")
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import numpy as np, ffnn
        from mpi4py import MPI
        rng = np.random.default_rng(0)
        X, Y = rng.normal(size=(13, 3)), rng.normal(size=(13, 1))
        net = ffnn.Network([3, 4, 1], "tanh", seed=1)
        def cb(net, history):
            raise RuntimeError("a bug in a callback")
        ffnn.train(net, X, Y, loss="mse", epochs=3, comm=MPI.COMM_WORLD, callbacks=[cb])
    """))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(os.path.dirname(os.path.dirname(ffnn.__file__)))] +
                                          [p for p in [os.environ.get("PYTHONPATH")] if p]))
    proc = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, str(script)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("mpiexec -n 2 still running 20 s after rank 0's callback raised (rank 1 hangs in bcast)")
    assert proc.returncode != 0
