"""Each optimiser's update against its formula, with injected state."""

import math

import numpy as np
import pytest

import ffnn
from ffnn.optim import get_optimizer

from .conftest import to_np

rng = np.random.default_rng(0)
P = [rng.normal(size=(3, 2)), rng.normal(size=(2,))]
G = [rng.normal(size=(3, 2)), rng.normal(size=(2,))]


def _run(opt, xp, steps=3, lr=0.1):
    params = [xp.asarray(p.copy()) for p in P]
    state = opt.init(params)
    out = []
    for _ in range(steps):
        grads = [xp.asarray(g) for g in G]
        updates, state = opt.update(grads, state, params, lr)
        for p, u in zip(params, updates):
            p += u
        out.append([to_np(p).copy() for p in params])
    return out, state


def test_plain_sgd_is_xing_chaos_rule(xp):
    out, state = _run(ffnn.SGD(0.1), xp, steps=1, lr=0.25)
    for p, p0, g in zip(out[0], P, G):
        np.testing.assert_allclose(p, p0 - 0.25 * g, rtol=1e-15)  # Δw = −η ∂e/∂w
    assert state["step"] == 1


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_formulas(nesterov, xp):
    mu, lr = 0.9, 0.1
    out, _ = _run(ffnn.SGD(0.1, momentum=mu, nesterov=nesterov), xp, steps=3, lr=lr)
    theta = [p.copy() for p in P]
    v = [np.zeros_like(p) for p in P]
    for step in range(3):
        for i in range(2):
            v[i] = mu * v[i] - lr * G[i]
            theta[i] = theta[i] + (mu * v[i] - lr * G[i] if nesterov else v[i])
            np.testing.assert_allclose(out[step][i], theta[i], rtol=1e-14)


def test_nesterov_matches_pytorch_form_at_constant_rate():
    """Sutskever's and PyTorch's Nesterov take the same steps when η is constant."""
    mu, lr = 0.8, 0.05
    out, _ = _run(ffnn.SGD(lr, momentum=mu, nesterov=True), np, steps=4, lr=lr)
    theta, b = P[0].copy(), np.zeros_like(P[0])
    for step in range(4):
        b = mu * b + G[0]
        theta = theta - lr * (G[0] + mu * b)
        np.testing.assert_allclose(out[step][0], theta, rtol=1e-13)


def _adam_reference(steps, lr, b1, b2, eps, wd=0.0):
    theta = [p.copy() for p in P]
    m = [np.zeros_like(p) for p in P]
    s = [np.zeros_like(p) for p in P]
    history = []
    for t in range(1, steps + 1):
        for i in range(2):
            m[i] = b1 * m[i] + (1 - b1) * G[i]
            s[i] = b2 * s[i] + (1 - b2) * G[i] ** 2
            step = m[i] / (1 - b1**t) / (np.sqrt(s[i] / (1 - b2**t)) + eps)
            decay = wd * theta[i] if i == 0 else 0.0
            theta[i] = theta[i] - lr * (step + decay)
        history.append([t.copy() for t in theta])
    return history


def test_adam_formula(xp):
    out, state = _run(ffnn.Adam(0.1, beta1=0.8, beta2=0.9, eps=1e-6), xp, steps=3, lr=0.1)
    ref = _adam_reference(3, 0.1, 0.8, 0.9, 1e-6)
    for a, r in zip(out, ref):
        for x, y in zip(a, r):
            np.testing.assert_allclose(x, y, rtol=1e-13)
    assert state["step"] == 3


def test_adamw_decays_weights_not_biases(xp):
    out, _ = _run(ffnn.AdamW(0.1, weight_decay=0.3), xp, steps=3, lr=0.1)
    ref = _adam_reference(3, 0.1, 0.9, 0.999, 1e-8, wd=0.3)
    for a, r in zip(out, ref):
        for x, y in zip(a, r):
            np.testing.assert_allclose(x, y, rtol=1e-13)


def test_adamw_decays_what_its_mask_selects_not_what_a_list_position_says():
    # the parameters in another order ([b, W]): the default mask still decays the matrix only
    order = [1, 0]
    params = [P[i].copy() for i in order]
    opt = ffnn.AdamW(0.1, weight_decay=0.3)
    assert opt.decays(params) == [False, True]
    state = opt.init(params)
    updates, _ = opt.update([G[i].copy() for i in order], state, params, 0.1)
    plain, _ = ffnn.Adam(0.1).update([G[i].copy() for i in order], ffnn.Adam(0.1).init(params), params, 0.1)
    np.testing.assert_array_equal(updates[0], plain[0])
    np.testing.assert_allclose(updates[1], plain[1] - 0.1 * 0.3 * params[1], rtol=1e-15)
    # an explicit mask: decay everything, or nothing
    assert ffnn.AdamW(mask=[True, True]).decays(params) == [True, True]
    assert ffnn.AdamW(mask=lambda ps: [False] * len(ps)).decays(params) == [False, False]
    with pytest.raises(ValueError, match="mask has 1 entries for 2 parameters"):
        ffnn.AdamW(mask=[True]).decays(params)


def test_rmsprop_formula(xp):
    out, _ = _run(ffnn.RMSprop(0.1, rho=0.7, eps=1e-7), xp, steps=3, lr=0.1)
    theta = [p.copy() for p in P]
    s = [np.zeros_like(p) for p in P]
    for step in range(3):
        for i in range(2):
            s[i] = 0.7 * s[i] + 0.3 * G[i] ** 2
            theta[i] = theta[i] - 0.1 * G[i] / (np.sqrt(s[i]) + 1e-7)
            np.testing.assert_allclose(out[step][i], theta[i], rtol=1e-13)


def test_injected_state_is_used():
    opt = ffnn.SGD(0.1, momentum=0.5)
    params = [p.copy() for p in P]
    state = {"step": 7, "velocity": [np.ones_like(p) for p in P]}
    updates, state = opt.update(G, state, params, 0.1)
    np.testing.assert_allclose(updates[0], 0.5 * 1 - 0.1 * G[0], rtol=1e-15)
    assert state["step"] == 8
    adam = ffnn.Adam(0.1)
    st = {"step": 1, "m": [np.full_like(p, 0.2) for p in P], "s": [np.full_like(p, 0.3) for p in P]}
    up, st = adam.update(G, st, params, 0.1)
    m = 0.9 * 0.2 + 0.1 * G[1]
    s = 0.999 * 0.3 + 0.001 * G[1] ** 2
    np.testing.assert_allclose(up[1], -0.1 * (m / (1 - 0.81)) / (np.sqrt(s / (1 - 0.999**2)) + 1e-8), rtol=1e-13)


@pytest.mark.parametrize("make,match", [
    (lambda: ffnn.SGD(0), "learning rate must be a positive number"),
    (lambda: ffnn.SGD(-1), "learning rate must be a positive number"),
    (lambda: ffnn.Adam(float("nan")), "learning rate"),
    (lambda: ffnn.SGD(0.1, momentum=1.0), r"momentum must be a number in \[0, 1\)"),
    (lambda: ffnn.SGD(0.1, nesterov=True), "nesterov=True needs a momentum"),
    (lambda: ffnn.Adam(beta1=1.2), "beta1"),
    (lambda: ffnn.RMSprop(eps=0), "eps"),
    (lambda: ffnn.AdamW(weight_decay=-1), "weight_decay"),
    (lambda: get_optimizer("lbfgs"), "unknown optimizer 'lbfgs'; known optimizers: sgd, adam, adamw, rmsprop"),
])
def test_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_names_and_pickle():
    import pickle

    assert isinstance(get_optimizer("adam"), ffnn.Adam) and get_optimizer("sgd").lr == 0.01
    opt = ffnn.SGD(0.2, momentum=0.9, nesterov=True)
    opt.state = opt.init(P)
    back = pickle.loads(pickle.dumps(opt))
    assert back.config() == opt.config() and back.state is None
    assert "momentum=0.9" in repr(opt)
    assert math.isclose(back.lr, 0.2)



def test_adam_step_size_correction_is_the_default_form_with_a_scaled_epsilon():
    rng = np.random.default_rng(0)
    params = [rng.normal(size=(3, 2)), rng.normal(size=2)]
    grads = [rng.normal(size=(3, 2)), rng.normal(size=2)]
    state = {"step": 4, "m": [rng.normal(size=(3, 2)), rng.normal(size=2)],
             "s": [rng.uniform(size=(3, 2)), rng.uniform(size=2)]}
    t = state["step"] + 1
    folded = ffnn.Adam(0.01, eps=1e-3, step_size_correction=True)
    default = ffnn.Adam(0.01, eps=1e-3 / math.sqrt(1 - 0.999 ** t))
    results = []
    for opt in (folded, default):
        p = [x.copy() for x in params]
        st = {"step": state["step"], "m": [m.copy() for m in state["m"]], "s": [v.copy() for v in state["s"]]}
        opt.apply([g.copy() for g in grads], st, p, 0.01)
        results.append(p)
    for x, y in zip(*results):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)
    assert folded.config()["step_size_correction"] is True and ffnn.Adam().step_size_correction is False
