"""Rprop (iRPROP−) and Quickprop, ffnn's full-batch optimisers: Rprop's trajectory against
``torch.optim.Rprop`` and a hand-worked example, Quickprop's against a reference written from
Fahlman's description, on every path that trains (NumPy, the PyTorch fast path, the estimators),
their state through checkpoints, and the errors that keep them full-batch."""

import numpy as np
import pytest
import torch

import ffnn
from ffnn.optim import Quickprop, Rprop

from .conftest import to_np

SIZES, ACTS = [3, 5, 2], ("tanh", "identity")


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, SIZES[0]))
    T = np.c_[np.sin(X[:, 0]) + X[:, 1] * X[:, 2], X[:, 0] - 0.5 * X[:, 2] ** 2]
    return X, T


def _torch_loss(params, X, T):
    """J = 1/(2N) Σ_n ‖a_n − t_n‖² (ffnn's mse) of a tanh–identity network, by PyTorch's autograd."""
    W1, b1, W2, b2 = params
    A = torch.tanh(X @ W1 + b1) @ W2 + b2
    return ((A - T) ** 2).sum() / (2 * X.shape[0])


def _torch_trajectory(start, X, T, steps, **rprop):
    """The parameters after each full-batch step of torch.optim.Rprop, from ``start``."""
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in start]
    opt = torch.optim.Rprop(params, **rprop)
    Xt, Tt = torch.tensor(X), torch.tensor(T)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        _torch_loss(params, Xt, Tt).backward()
        opt.step()
        out.append([p.detach().numpy().copy() for p in params])
    return out


def _ffnn_trajectory(opt, X, T, epochs, xp=None):
    net = ffnn.Network(SIZES, *ACTS, seed=1, xp=xp)
    start = [to_np(p).copy() for p in net.parameters()]
    seen = []
    h = ffnn.train(net, X, T, loss="mse", optimizer=opt, epochs=epochs, batch_size=len(X), seed=0,
                   callbacks=[lambda n, _: seen.append([to_np(p).copy() for p in n.parameters()])])
    return start, seen, h


@pytest.mark.parametrize("settings", [{}, {"lr": 0.1, "step_sizes": (0.0, 50.0)}], ids=["torch", "fann"])
@pytest.mark.parametrize("where", ["numpy", "torch"])
def test_rprop_takes_torch_optim_rprops_steps(settings, where):
    """Every full-batch step of ffnn.train equals torch.optim.Rprop's to 1e-12 (float64), with
    PyTorch's defaults and with FANN's (Δ₀ = 0.1, Δ_min = 0): the NumPy loop and the PyTorch fast path."""
    X, T = _data()
    start, seen, h = _ffnn_trajectory(Rprop(**settings), X, T, 12, xp=torch if where == "torch" else None)
    assert h.loop == ("numpy" if where == "numpy" else "torch")
    expected = _torch_trajectory(start, X, T, 12, **settings)
    for ours, theirs in zip(seen, expected, strict=True):
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert not np.allclose(seen[-1][0], start[0])  # it moved


def test_irprop_minus_by_hand(xp):
    """iRPROP− (Igel & Hüsken 2000) on four weights, worked out by hand with Δ₀ = 0.1, η = (0.5, 1.2):

    step 1: g⁻ = 0, so every product g⁻g is 0 and Δ stays 0.1; θ = 1 − sign(g)·0.1
            g = (0.5, −2, 3, 0)  →  θ = (0.9, 1.1, 0.9, 1.0);  g⁻ = (0.5, −2, 3, 0)
    step 2: g = (0.25, 1, 0, −1): products (0.125, −2, 0, 0) → Δ = (0.12, 0.05, 0.1, 0.1);
            the second changed sign, so its g becomes 0 (no step); the third's g is 0 (no step)
            θ = (0.9 − 0.12, 1.1, 0.9, 1.0 + 0.1) = (0.78, 1.1, 0.9, 1.1);  g⁻ = (0.25, 0, 0, −1)
    step 3: g = (1, −1, 1, −1): products (0.25, 0, 0, 1): Δ = (0.144, 0.05, 0.1, 0.12) — after a sign
            change no sign test (the second's Δ stays 0.05, it steps again)
            θ = (0.78 − 0.144, 1.1 + 0.05, 0.9 − 0.1, 1.1 + 0.12) = (0.636, 1.15, 0.8, 1.22)
    """
    opt = Rprop(lr=0.1)
    theta = [xp.ones(4, dtype=xp.float64)]
    state = opt.init(theta)
    expected = [((0.9, 1.1, 0.9, 1.0), (0.1, 0.1, 0.1, 0.1)),
                ((0.78, 1.1, 0.9, 1.1), (0.12, 0.05, 0.1, 0.1)),
                ((0.636, 1.15, 0.8, 1.22), (0.144, 0.05, 0.1, 0.12))]
    grads = [(0.5, -2.0, 3.0, 0.0), (0.25, 1.0, 0.0, -1.0), (1.0, -1.0, 1.0, -1.0)]
    for g, (th, delta) in zip(grads, expected):
        state = opt.apply([xp.asarray(g, dtype=xp.float64)], state, theta, 0.1)
        np.testing.assert_allclose(to_np(theta[0]), th, rtol=1e-15, atol=1e-15)
        np.testing.assert_allclose(to_np(state["step_size"][0]), delta, rtol=1e-15)
    np.testing.assert_array_equal(to_np(state["prev"][0]), (1.0, -1.0, 1.0, -1.0))
    assert state["step"] == 3


def test_rprop_step_sizes_stay_within_their_bounds():
    opt = Rprop(lr=0.1, step_sizes=(0.04, 0.15))
    theta = [np.zeros(2)]
    state = opt.init(theta)
    for g in [(1.0, 1.0)] * 4 + [(1.0, -1.0), (1.0, 1.0), (1.0, -1.0), (1.0, 1.0)] * 3:
        state = opt.apply([np.array(g)], state, theta, 0.1)
    assert state["step_size"][0][0] == 0.15  # grown 0.1 → 0.12 → 0.144 → capped
    assert state["step_size"][0][1] == 0.04  # shrunk at every sign change down to Δ_min


def _fahlman_reference(theta, gradient, steps, eps, mu=1.75, decay=1e-4, threshold=0.001):
    """Quickprop written from Fahlman (1988), weight by weight in plain Python: the slope
    S = ∂E/∂w + decay·w; after a step Δw(t−1) of size above the threshold, the next step is the jump
    to the minimum of the parabola through the last two slopes, Δw(t) = S(t)/(S(t−1) − S(t))·Δw(t−1),
    but at most μ times the last step (taken whenever S(t) is at least μ/(1 + μ) of S(t−1) in the
    direction of the last step), plus −ε S(t) while the slope still points the way the last step went;
    after a step of size at most the threshold, gradient descent −ε S(t). Returns the weights after
    each step and which rules fired."""
    w = [float(x) for x in theta]
    prev_step, prev_slope = [0.0] * len(w), [0.0] * len(w)
    fired, out = set(), []
    for _ in range(steps):
        g = gradient(w)
        for i in range(len(w)):
            S = g[i] + decay * w[i]
            if abs(prev_step[i]) <= threshold:
                step = -eps * S
                fired.add("descent")
            else:
                step = 0.0
                downhill_same_way = S < 0 if prev_step[i] > 0 else S > 0
                if downhill_same_way:
                    step -= eps * S
                    fired.add("plus descent")
                shrink = mu / (1 + mu)
                limited = S < shrink * prev_slope[i] if prev_step[i] > 0 else S > shrink * prev_slope[i]
                if limited:
                    step += mu * prev_step[i]
                    fired.add("mu")
                else:
                    step += prev_step[i] * S / (prev_slope[i] - S)
                    fired.add("quadratic")
            w[i] += step
            prev_step[i], prev_slope[i] = step, S
        out.append(list(w))
    return out, fired


@pytest.mark.parametrize("where", ["numpy", "torch"])
def test_quickprop_follows_fahlmans_rule(where):
    """ffnn.train with Quickprop against the reference loop above driven by PyTorch's gradients of the
    same network: the same weights after every step (float64, to 1e-10 — the quadratic step divides by
    a difference of slopes), and every one of the rule's cases taken."""
    X, T = _data(seed=2)
    opt = Quickprop(lr=0.5, mu=1.75, decay=1e-3)
    start, seen, _ = _ffnn_trajectory(opt, X, T, 15, xp=torch if where == "torch" else None)
    shapes = [p.shape for p in start]
    cuts = np.cumsum([0] + [p.size for p in start])
    Xt, Tt = torch.tensor(X), torch.tensor(T)

    def gradient(w):
        params = [torch.tensor(np.reshape(w[a:b], s), requires_grad=True) for a, b, s in zip(cuts, cuts[1:], shapes)]
        _torch_loss(params, Xt, Tt).backward()
        return np.concatenate([p.grad.numpy().ravel() for p in params]).tolist()

    expected, fired = _fahlman_reference(np.concatenate([p.ravel() for p in start]), gradient, 15,
                                         eps=0.5, mu=1.75, decay=1e-3)
    assert fired == {"descent", "plus descent", "mu", "quadratic"}
    for ours, theirs in zip(seen, expected, strict=True):
        np.testing.assert_allclose(np.concatenate([p.ravel() for p in ours]), theirs, rtol=0, atol=1e-10)


def test_quickprop_in_any_array_namespace(xp):
    """The same rule on array-api-strict arrays, on E(w) = Σ cosh(w − c) (gradient sinh(w − c)), with
    Fahlman's own threshold τ = 0."""
    c = np.array([0.5, -1.0, 2.0])
    opt = Quickprop(lr=0.2, step_threshold=0.0)
    theta = [xp.asarray(np.zeros(3))]
    state = opt.init(theta)
    expected, _ = _fahlman_reference(np.zeros(3), lambda w: np.sinh(np.array(w) - c).tolist(), 8, eps=0.2,
                                     threshold=0.0)
    for w in expected:
        state = opt.apply([xp.sinh(theta[0] - xp.asarray(c))], state, theta, 0.2)
        np.testing.assert_allclose(to_np(theta[0]), w, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("make", [lambda: Rprop(0.05), lambda: Quickprop(0.3)], ids=["rprop", "quickprop"])
def test_state_round_trips_through_a_checkpoint(tmp_path, make):
    """2 epochs, a checkpoint, 2 more from it: the weights and state of 4 straight epochs, bit for bit."""
    X, T = _data()

    def run(epochs, **kw):
        net = ffnn.Network(SIZES, *ACTS, seed=1)
        opt = make()
        ffnn.train(net, X, T, loss="mse", optimizer=opt, epochs=epochs, batch_size=len(X), seed=0, **kw)
        return net, opt

    path = tmp_path / "run.ckpt"
    run(2, checkpoint=path)
    resumed, opt_r = run(4, resume=path)
    straight, opt_s = run(4)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.parameters(), straight.parameters()))
    assert opt_r.state["step"] == opt_s.state["step"] == 4
    for slot in make().slots:
        assert all(np.array_equal(a, b) for a, b in zip(opt_r.state[slot], opt_s.state[slot]))


def test_full_batch_only_and_no_schedule():
    X, T = _data()
    net = ffnn.Network(SIZES, *ACTS, seed=1)
    with pytest.raises(ValueError, match=r"optimizer 'rprop' takes full-batch steps .*batch_size=8 would take "
                                         r"minibatches: pass batch_size=24"):
        ffnn.train(net, X, T, loss="mse", optimizer="rprop", batch_size=8)
    with pytest.raises(ValueError, match=r"'quickprop' takes full-batch steps \(the gradient of all 18 training rows"):
        ffnn.train(net, X, T, loss="mse", optimizer="quickprop", validation=0.25, batch_size=17)
    with pytest.raises(ValueError, match="a schedule would change nothing"):
        ffnn.train(net, X, T, loss="mse", optimizer="rprop", batch_size=24, schedule="cosine")
    with pytest.raises(ValueError, match="loop='compiled' cannot run here: optimizer Rprop has no compiled form"):
        ffnn.train(net, X, T, loss="mse", optimizer="rprop", batch_size=24, loop="compiled")
    assert ffnn.train(net, X, T, loss="mse", optimizer="quickprop", batch_size=99, epochs=1).loop == "numpy"


@pytest.mark.parametrize("make,fragment", [
    (lambda: Rprop(etas=(1.5, 1.2)), "etas[0]"),
    (lambda: Rprop(etas=(0.5, 1.0)), "etas[1]"),
    (lambda: Rprop(etas=0.5), "etas must be a pair of numbers"),
    (lambda: Rprop(lr=0.1, step_sizes=(0.2, 50)), "step_sizes[0] ≤ lr ≤ step_sizes[1]"),
    (lambda: Rprop(step_sizes=(-1, 50)), "step_sizes[0]"),
    (lambda: Quickprop(mu=0), "mu"),
    (lambda: Quickprop(decay=-1e-4), "decay"),
    (lambda: Quickprop(step_threshold=-1), "step_threshold"),
    (lambda: ffnn.optim.get_optimizer("irprop"), "unknown optimizer 'irprop'"),
])
def test_bad_hyperparameters_name_themselves(make, fragment):
    with pytest.raises(ValueError) as info:
        make()
    assert fragment in str(info.value)


def test_estimators_solver_rprop_is_full_batch_rprop():
    """MLPRegressor(solver='rprop') from given weights takes torch.optim.Rprop's steps (alpha = 0, so
    the objective is ½ mean squared error, whose gradient has the signs of ffnn's mse), one per epoch."""
    from ffnn.sklearn import MLPRegressor

    X, T = _data()
    est = MLPRegressor(hidden_layer_sizes=(5,), activation="tanh", solver="rprop", alpha=0.0, learning_rate_init=0.02,
                       max_iter=1, tol=0.0, n_iter_no_change=100, random_state=0)
    with pytest.warns(Warning, match="^Rprop: Maximum iterations"):
        est.fit(X, T)
    start = [c.copy() for pair in zip(est.coefs_, est.intercepts_) for c in pair]
    est.set_params(warm_start=True, max_iter=6)
    with pytest.warns(Warning, match="Maximum iterations"):
        est.fit(X, T)
    expected = _torch_trajectory(start, X, T, 6, lr=0.02)[-1]
    for a, b in zip([c for pair in zip(est.coefs_, est.intercepts_) for c in pair], expected):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert est._optimizer.state["step"] == est.n_iter_ == 6
    assert not hasattr(est, "partial_fit")
    with pytest.raises(ValueError, match="solver='quickprop' takes full-batch steps; batch_size=10"):
        MLPRegressor(hidden_layer_sizes=(5,), solver="quickprop", batch_size=10).fit(X, T)


def test_estimator_with_rprop_saves_and_continues(tmp_path):
    from ffnn.sklearn import MLPRegressor, load

    X, T = _data()
    est = MLPRegressor(hidden_layer_sizes=(4,), solver="rprop", max_iter=3, random_state=0, warm_start="keep_optimizer")
    with pytest.warns(Warning, match="Maximum iterations"):
        est.fit(X, T)
    est.save(tmp_path / "e.safetensors")
    back = load(tmp_path / "e.safetensors")
    for slot in ("prev", "step_size"):
        assert all(np.array_equal(a, b) for a, b in zip(back._optimizer.state[slot], est._optimizer.state[slot]))
    with pytest.warns(Warning, match="Maximum iterations"):
        est.fit(X, T)
        back.fit(X, T)
    assert all(np.array_equal(a, b) for a, b in zip(back.coefs_, est.coefs_))


def _csv(tmp_path, n=60):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2))
    path = tmp_path / "d.csv"
    np.savetxt(path, np.c_[X, X[:, 0] - X[:, 1]], delimiter=",", header="a,b,y", comments="", fmt="%.5f")
    return path


def test_command_line_trains_full_batch_and_refuses_minibatches(tmp_path):
    from .conftest import cli

    data, out = _csv(tmp_path), tmp_path / "m.safetensors"
    code, stdout, err = cli("train", data, "--task", "regress", "--optimizer", "rprop", "--epochs", "3", "--hidden",
                            "4", "--quiet", "--early-stopping", "0", "--out", out)
    assert code == 0, err
    assert "rprop lr 0.01" in stdout and ffnn.load(out).metadata["loss"] == "mse"
    for args, fragment in [(["--optimizer", "rprop", "--batch-size", "8"], "--optimizer rprop takes full-batch steps"),
                           (["--optimizer", "rprop", "--schedule", "cosine"], "--schedule would change nothing"),
                           (["--optimizer", "irprop"], "invalid choice: 'irprop'")]:
        code, _, err = cli("train", data, "--out", tmp_path / "x.safetensors", *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "x.safetensors").exists()
