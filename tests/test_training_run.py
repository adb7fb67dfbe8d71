"""ffnn.training.run: the step's formula — penalty, clipping, the optimiser's update — and divergence
caught before anything changes, on each of the three paths (the array-namespace core, the NumPy
fast path and the fused SGD step), against the formulas written out with NumPy."""

import math

import numpy as np
import pytest

import ffnn
from ffnn.history import History
from ffnn.training.api import settings_for
from ffnn.training.engines import CoreEngine, NumpyEngine
from ffnn.training.run import Data, Run
from ffnn.training.stopping import DeferredInterrupt

from .conftest import blobs as _blobs
from .conftest import to_np


def _reference_steps(Ws, bs, X, T, batches, output, lr, l1=0.0, l2=0.0, clip=None):
    """Plain SGD on a 1-hidden-layer tanh network, written out: returns (W, b, [J_B], [‖g‖])."""
    W1, W2 = (W.copy() for W in Ws)
    b1, b2 = (b.copy() for b in bs)
    losses, norms = [], []
    for idx in batches:
        x, t = X[idx], T[idx]
        n = len(idx)
        h = np.tanh(x @ W1 + b1)
        z = h @ W2 + b2
        if output == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
            J = -np.sum(t * np.log(a)) / n
        else:  # identity with mse = 1/(2N) Σ (a − t)²
            a = z
            J = np.sum((a - t) ** 2) / (2 * n)
        J += sum(l1 * np.abs(W).sum() + 0.5 * l2 * np.sum(W * W) for W in (W1, W2))
        d2 = (a - t) / n                                  # δ[2] for both pairs
        d1 = (d2 @ W2.T) * (1 - h**2)                     # δ[1] = δ[2] W[2]ᵀ ⊙ tanh′
        g = [x.T @ d1 + l1 * np.sign(W1) + l2 * W1, d1.sum(axis=0),
             h.T @ d2 + l1 * np.sign(W2) + l2 * W2, d2.sum(axis=0)]
        norm = math.sqrt(sum(np.sum(gi * gi) for gi in g))
        if clip is not None and norm > clip:
            g = [gi * (clip / norm) for gi in g]
        W1, b1, W2, b2 = W1 - lr * g[0], b1 - lr * g[1], W2 - lr * g[2], b2 - lr * g[3]
        losses.append(J)
        norms.append(norm)
    return [W1, W2], [b1, b2], losses, norms


def _run(net, X, T, w=None, **kwargs):
    settings = settings_for(net, **{**dict(loss="cross_entropy", shuffle=False, epochs=1, loop="interpreted"), **kwargs})
    data = Data(net.check_inputs(X), net.check_targets(T, X.shape[0]),
                None if w is None else net.check_sample_weight(w, X.shape[0]))
    return Run(net, data, settings, np.random.default_rng(0), History())


def _path(run):
    """Which engine trains: "fused" (NumPy fast path, SGD folded into the products), "fast" or "core"."""
    engine = run.engine
    if isinstance(engine, NumpyEngine):
        return "fused" if engine.fused else "fast"
    return "core" if isinstance(engine, CoreEngine) else engine.name


# (path, namespace, l1, l2, clip_norm, diagnostics): fused needs plain SGD without L1 or clipping;
# sample weights (all ones: the same objective) and array-api-strict arrays take the core path.
CASES = [
    ("fused", "numpy", 0.0, 0.03, None, True),
    ("fused", "numpy", 0.0, 0.03, None, False),
    ("fast", "numpy", 0.01, 0.03, None, True),
    ("fast", "numpy", 0.01, 0.03, 0.05, True),
    ("fast", "numpy", 0.01, 0.03, 0.05, False),
    ("core", "numpy", 0.01, 0.03, 0.05, True),
    ("core", "array_api_strict", 0.01, 0.03, 0.05, True),
]


@pytest.mark.parametrize("path,ns,l1,l2,clip,diagnostics", CASES)
def test_steps_follow_the_formula_on_every_path(path, ns, l1, l2, clip, diagnostics):
    xp = np if ns == "numpy" else pytest.importorskip("array_api_strict")
    X, T, _ = _blobs(20)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0, xp=xp)
    Ws, bs = [to_np(W).copy() for W in net.weights], [to_np(b) + 0.1 for b in net.biases]
    for l in (1, 2):
        net.biases[l] = xp.asarray(bs[l - 1].copy())  # the reference keeps its own copy
    w = np.ones(20) if path == "core" and ns == "numpy" else None
    run = _run(net, xp.asarray(X), xp.asarray(T), w=w, optimizer=ffnn.SGD(0.1), epochs=2, batch_size=10,
               l1=l1, l2=l2, clip_norm=clip, diagnostics=diagnostics)
    assert _path(run) == path
    h = run.fit()
    batches = [np.arange(0, 10), np.arange(10, 20)] * 2
    W_ref, b_ref, J_ref, norms = _reference_steps(Ws, bs, X, T, batches, "softmax", 0.1, l1, l2, clip)
    if clip is not None:
        assert min(norms) > clip  # the clipping was active on every step
    for l in (1, 2):
        np.testing.assert_allclose(to_np(net.weights[l]), W_ref[l - 1], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(to_np(net.biases[l]), b_ref[l - 1], rtol=1e-12, atol=1e-14)
    assert h.loss == pytest.approx([np.mean(J_ref[:2]), np.mean(J_ref[2:])], rel=1e-12)
    assert run.state["step"] == 4


@pytest.mark.parametrize("path", ["fused", "fast", "core"])
def test_divergence_leaves_the_last_good_weights(path):
    """A non-finite J on the second step: the first step's weights stay, bit for bit; no step is counted."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 3))
    T = rng.normal(size=(4, 2))
    T[3, 0] = 1e200  # (a − t)² overflows to inf in the second batch
    net = ffnn.Network([3, 4, 2], "tanh", "identity", seed=0)
    Ws, bs = [W.copy() for W in net.weights], [b.copy() for b in net.biases]
    opt = ffnn.SGD(0.1) if path == "fused" else ffnn.SGD(0.1, momentum=0.5)
    w = np.ones(4) if path == "core" else None
    run = _run(net, X, T, w=w, loss="mse", optimizer=opt, batch_size=2)
    assert _path(run) == path
    with pytest.raises(ffnn.TrainingDiverged, match="training diverged: the loss.* became NaN or infinite"):
        run.epoch(1, DeferredInterrupt())
    assert run.state["step"] == 1
    if path == "fused":  # momentum 0.5 changes the update; plain SGD is the reference's
        W_ref, b_ref, _, _ = _reference_steps(Ws, bs, X, T, [np.arange(2)], "identity", 0.1)
        for l in (1, 2):
            np.testing.assert_allclose(net.weights[l], W_ref[l - 1], rtol=1e-13)
            np.testing.assert_allclose(net.biases[l], b_ref[l - 1], rtol=1e-13)
    after_one = [p.copy() for p in net.parameters()]
    with pytest.raises(ffnn.TrainingDiverged):
        with np.errstate(all="ignore"):
            run.engine.step(np.array([2, 3]), 0.1, run.state, False)
    assert all(np.array_equal(a, b) for a, b in zip(net.parameters(), after_one))
    assert run.state["step"] == 1


def test_one_epoch_full_batch_is_one_sgd_step_with_penalties():
    """θ₁ = θ₀ − η ∇(J + λ₁Σ|W| + λ₂/2 ΣW²): the L1/L2 gradient against finite differences."""
    X, T, _ = _blobs(20)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    for b in net.biases:
        b[...] = 0.1
    l1, l2, lr = 0.01, 0.03, 0.1
    before = net.copy()

    def penalised(n):
        J = n.loss(X, T, "cross_entropy")
        return J + sum(l1 * np.abs(W).sum() + 0.5 * l2 * (W**2).sum() for W in n.weights)

    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(lr), epochs=1, batch_size=20,
                   shuffle=False, l1=l1, l2=l2)
    assert h.loss[0] == pytest.approx(penalised(before), rel=1e-12)
    assert h.loss_includes_penalty
    eps = 1e-6
    for p0, p1 in zip(before.parameters(), net.parameters()):
        grad = (p0 - p1) / lr
        for idx in [(0, 0), (1, 2)] if p0.ndim == 2 else [(0,), (2,)]:
            old = p0[idx]
            p0[idx] = old + eps
            jp = penalised(before)
            p0[idx] = old - eps
            jm = penalised(before)
            p0[idx] = old
            assert grad[idx] == pytest.approx((jp - jm) / (2 * eps), rel=1e-6)


def test_divergence_stops_with_clear_error_and_finite_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)) * 1e3
    T = rng.normal(size=(64, 1)) * 1e3
    net = ffnn.Network([3, 8, 1], "relu", "identity", seed=0)
    with pytest.raises(ffnn.TrainingDiverged, match="smaller learning rate.*scaled inputs"):
        ffnn.train(net, X, T, loss="sse", optimizer=ffnn.SGD(10.0), epochs=50, batch_size=8)
    assert all(np.all(np.isfinite(p)) for p in net.parameters())


def test_clip_norm_bounds_the_step():
    X, T, _ = _blobs(20)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    before = net.copy()
    ffnn.train(net, X * 100, T, loss="cross_entropy", optimizer=ffnn.SGD(1.0), epochs=1, batch_size=20,
               shuffle=False, clip_norm=0.5)
    step = math.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(before.parameters(), net.parameters())))
    assert step == pytest.approx(0.5, rel=1e-9)


# --- divergence from an update that overflows, and schedules out of range ---------------------------

@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_divergence_leaves_finite_weights(batch_size):
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(64, 3)), rng.normal(size=(64, 1)) * 1e3
    for opt in (ffnn.SGD(1e308), ffnn.SGD(1e308, momentum=0.5), ffnn.RMSprop(1e308)):
        net = ffnn.Network([3, 4, 1], "identity", "identity", seed=0)
        with np.errstate(all="ignore"), pytest.raises(ffnn.TrainingDiverged):
            ffnn.train(net, X, T, loss="mse", optimizer=opt, epochs=5, batch_size=batch_size, seed=0)
        assert all(np.all(np.isfinite(p)) for p in net.parameters())


@pytest.mark.parametrize("factor", [-1.0, float("nan")])
def test_a_schedule_factor_that_is_negative_or_nan_is_a_clear_error(factor):
    rng = np.random.default_rng(0)
    net = ffnn.Network([3, 4, 1], "tanh", "identity", seed=0)
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(ValueError, match=f"schedule returned {factor}"):
        ffnn.train(net, rng.normal(size=(20, 3)), rng.normal(size=(20, 1)), loss="mse", epochs=2,
                   schedule=lambda t: factor)
    assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))


@pytest.mark.parametrize("per_call", [2, 3, 100])
@pytest.mark.parametrize("engine_class,kw", [(NumpyEngine, dict(optimizer="sgd")),
                                            (NumpyEngine, dict(optimizer="adam", l1=1e-3, clip_norm=0.5)),
                                            (CoreEngine, dict(optimizer="rmsprop", dropout=0.2))])
def test_an_engine_that_runs_many_steps_per_call_trains_the_same(monkeypatch, per_call, engine_class, kw):
    """The driver hands an engine ``steps_per_call`` steps at once (the interface a compiled inner loop
    uses): the same weights bit for bit, the same schedule factors, and the loss to rounding."""
    X, T, _ = _blobs(50)
    runs = []
    for n in (1, per_call):
        monkeypatch.setattr(engine_class, "steps_per_call", n)
        net = ffnn.Network([4, 6, 3], "relu", "softmax", seed=0)
        factors = []
        run = _run(net, X, T, epochs=3, batch_size=8, shuffle=True, schedule=lambda t: factors.append(t) or 0.9 ** t,
                   **kw)
        assert type(run.engine) is engine_class
        runs.append((run.fit(), net.parameters(), factors))
    (h1, p1, f1), (h2, p2, f2) = runs
    assert f1 == f2 == list(range(21))  # 7 steps an epoch
    assert all(np.array_equal(a, b) for a, b in zip(p1, p2))
    assert h2.loss == pytest.approx(h1.loss, rel=1e-14)


@pytest.mark.parametrize("per_call", [3, 100])
def test_a_bad_schedule_factor_inside_a_chunk_of_steps_stops_where_one_by_one_stops(monkeypatch, per_call):
    """The steps before the bad factor are taken, the ones after are not, whatever the chunk size."""
    X, T, _ = _blobs(50)
    weights = []
    for n in (1, per_call):
        monkeypatch.setattr(NumpyEngine, "steps_per_call", n)
        net = ffnn.Network([4, 6, 3], "relu", "softmax", seed=0)
        run = _run(net, X, T, epochs=3, batch_size=8, optimizer="adam", schedule=lambda t: -1.0 if t == 9 else 1.0)
        with pytest.raises(ValueError, match="returned -1.0 at step 9"):
            run.fit()
        assert run.state["step"] == 9
        weights.append(net.parameters())
    assert all(np.array_equal(a, b) for a, b in zip(*weights))


def test_the_optimizer_holds_the_runs_state_however_training_ends():
    """One state, the run's: after TrainingDiverged (and any other exception) the optimiser object
    holds the state of the weights the network kept, for a later call to continue."""
    X, T, _ = _blobs(20)
    net = ffnn.Network([4, 6, 3], "relu", "softmax", seed=0)
    opt = ffnn.Adam(0.01)

    def stop(net, history):
        raise RuntimeError("a callback's own error")

    with pytest.raises(RuntimeError, match="a callback's own error"):
        ffnn.train(net, X, T, loss="cross_entropy", optimizer=opt, epochs=3, batch_size=5, callbacks=[stop])
    assert opt.state is not None and opt.state["step"] == 4
