"""ffnn.training.stopping: early stopping's count against a hand-kept record, Ctrl-C held until
between steps, and the two exceptions that end a run."""

import os
import signal

import numpy as np
import pytest

import ffnn
from ffnn.training.stopping import EarlyStopping, TrainingDiverged, TrainingInterrupted, DeferredInterrupt

from .conftest import blobs as _blobs
from .conftest import same_weights as _same


def test_early_stopping_counts_epochs_without_an_improvement_of_more_than_min_delta():
    stopper = EarlyStopping(patience=2, min_delta=0.1)
    values = [1.0, 0.95, 0.85, 0.8, 0.79, 0.5, 0.45, 0.41]
    # Written out: an epoch improves when value < best − 0.1.
    best, best_epoch, wait, expected = np.inf, None, 0, []
    for epoch, v in enumerate(values, start=1):
        improved = v < best - 0.1
        if improved:
            best, best_epoch, wait = v, epoch, 0
        else:
            wait += 1
        expected.append((improved, best, best_epoch, wait, wait >= 2))
    got = []
    for epoch, v in enumerate(values, start=1):
        improved = stopper.update(epoch, v)
        got.append((improved, stopper.best, stopper.best_epoch, stopper.wait, stopper.should_stop))
    assert got == expected
    assert [e for e, (*_, stop) in enumerate(got, start=1) if stop] == [5, 8]


def test_early_stopping_state_round_trips():
    a = EarlyStopping(patience=3, min_delta=0.0)
    assert a.state() == {"best": None, "best_epoch": None, "wait": 0}  # JSON has no infinity
    for epoch, v in enumerate([3.0, 2.0, 2.5], start=1):
        a.update(epoch, v)
    b = EarlyStopping(patience=3)
    b.load_state(a.state())
    assert (b.best, b.best_epoch, b.wait) == (2.0, 2, 1)
    fresh = EarlyStopping(3)
    fresh.load_state({"best": None, "best_epoch": None, "wait": 0})
    assert fresh.best == np.inf


@pytest.mark.parametrize("kwargs,match", [
    (dict(patience=0), "early_stopping patience must be a positive integer"),
    (dict(patience=2.5), "early_stopping patience must be a positive integer"),
    (dict(min_delta=-1), "early_stopping min_delta must be a non-negative number"),
])
def test_early_stopping_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EarlyStopping(**kwargs)


def test_the_exceptions():
    assert issubclass(TrainingDiverged, FloatingPointError)
    h = ffnn.History()
    exc = TrainingInterrupted(h)
    assert isinstance(exc, KeyboardInterrupt) and exc.history is h and str(exc) == "training interrupted"


def test_first_ctrl_c_waits_for_check_second_interrupts_at_once():
    before = signal.getsignal(signal.SIGINT)
    ctrl_c = DeferredInterrupt()
    try:
        ctrl_c.check()  # nothing pending
        os.kill(os.getpid(), signal.SIGINT)  # held
        assert ctrl_c.pending
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)  # the second one at once
        with pytest.raises(KeyboardInterrupt):
            ctrl_c.check()
    finally:
        ctrl_c.restore()
    assert signal.getsignal(signal.SIGINT) is before
    ctrl_c.restore()  # a second restore changes nothing
    assert signal.getsignal(signal.SIGINT) is before


def test_early_stopping_restores_best_epoch():
    X, T, _ = _blobs(200, d=2, seed=1)
    T = T.copy()
    T[::3] = np.roll(T[::3], 1, axis=1)  # label noise so that the network overfits
    net = ffnn.Network([2, 64, 64, 3], "relu", "softmax", seed=0)
    seen = {}
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.Adam(0.01), epochs=200, batch_size=16,
                   validation=0.3, early_stopping=5, seed=0,
                   callbacks=[lambda n, hist: seen.setdefault(hist.epoch[-1], n.copy()) and None])
    assert h.stopped_early and len(h) < 200
    best = int(np.argmin(h.val_loss)) + 1
    assert h.best_epoch == best and len(h) == best + 5
    assert _same(net, seen[best])


def test_ctrl_c_takes_effect_between_steps_only():
    """SIGINT mid-training stops after a complete update: weights equal a run of exactly that many steps."""
    X, T, _ = _blobs(200)
    net = ffnn.Network([4, 8, 3], "relu", "softmax", seed=0)
    steps = []

    def schedule(t):  # called once per step, before it; the signal arrives during step 5
        steps.append(t)
        if t == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return 1.0

    opt = ffnn.SGD(0.1)
    with pytest.raises(ffnn.TrainingInterrupted) as info:
        ffnn.train(net, X, T, loss="cross_entropy", optimizer=opt, epochs=5, batch_size=10, seed=0,
                   schedule=schedule)
    assert info.value.history.interrupted and opt.state["step"] == 6
    ref = ffnn.Network([4, 8, 3], "relu", "softmax", seed=0)
    order = np.random.default_rng(0).permutation(200)
    for k in range(6):
        idx = order[10 * k:10 * (k + 1)]
        _, g = ref.loss_and_gradients(X[idx], T[idx], "cross_entropy")
        for p, gp in zip(ref.parameters(), [a for pair in zip(g.weights, g.biases) for a in pair]):
            p -= 0.1 * gp
    for a, b in zip(net.parameters(), ref.parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
