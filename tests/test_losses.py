import numpy as np
import pytest

import ffnn
from ffnn import activations as acts
from ffnn.losses import LOSSES, get_loss

from .conftest import to_np

rng = np.random.default_rng(3)
A_ = rng.uniform(0.05, 0.95, size=(6, 3))
T_ = rng.uniform(0, 1, size=(6, 3))
N = 6


@pytest.mark.parametrize("name,expected", [
    ("half_sse", 0.5 * np.sum((T_ - A_) ** 2)),                                     # Sheptunov, Gashler
    ("sse", np.sum((T_ - A_) ** 2)),                                                # Xing Chao, Kolar and McCulloch
    ("mse", np.sum(np.linalg.norm(A_ - T_, axis=1) ** 2) / (2 * N)),                # Wichmann eq. 2.16
    ("cross_entropy", -np.sum(T_ * np.log(A_)) / N),
    ("binary_cross_entropy", -np.sum(T_ * np.log(A_) + (1 - T_) * np.log(1 - A_)) / N),
])
def test_values_as_the_seeds_write_them(name, expected, xp):
    assert float(get_loss(name).value(xp.asarray(A_), xp.asarray(T_))) == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_matches_central_difference(name, xp):
    loss = get_loss(name)
    G = to_np(loss.gradient(xp.asarray(A_), xp.asarray(T_)))
    h = 1e-6
    for idx in np.ndindex(A_.shape):
        Ap, Am = A_.copy(), A_.copy()
        Ap[idx] += h
        Am[idx] -= h
        fd = (float(loss.value(xp.asarray(Ap), xp.asarray(T_))) - float(loss.value(xp.asarray(Am), xp.asarray(T_)))) / (2 * h)
        assert G[idx] == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_mse_gradient_is_wichmanns_eq_2_21():
    np.testing.assert_allclose(get_loss("mse").gradient(A_, T_), (A_ - T_) / N, rtol=1e-15)


@pytest.mark.parametrize("loss,out", [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid")])
def test_fused_and_general_paths_agree(loss, out, xp):
    """The canonical pairs' fused δ[L] equals ∂J/∂A ⊙ σ′ (through softmax's full Jacobian)."""
    z = rng.normal(size=(5, 4))
    T = np.eye(4)[[0, 3, 1, 2, 2]] if out == "softmax" else rng.integers(0, 2, size=(5, 4)).astype(float)
    act = acts.get_activation(out)
    L = get_loss(loss)
    zx, Tx = xp.asarray(z), xp.asarray(T)
    a = act(zx)
    fused = L.fused(act)
    assert fused is not None
    general = act.vjp(zx, a, L.gradient(a, Tx))
    np.testing.assert_allclose(to_np(fused.delta(zx, a, Tx)), to_np(general), rtol=1e-10, atol=1e-14)
    assert float(fused.value(zx, Tx)) == pytest.approx(float(L.value(a, Tx)), rel=1e-12)


def test_fused_softmax_exact_for_unnormalised_targets():
    z = rng.normal(size=(3, 4))
    T = rng.uniform(size=(3, 4))  # rows do not sum to 1
    a = acts.softmax(z)
    L = get_loss("cross_entropy")
    np.testing.assert_allclose(L.fused(acts.softmax).delta(z, a, T), acts.softmax.vjp(z, a, L.gradient(a, T)), rtol=1e-10)


def test_no_nan_or_overflow_at_extremes(xp):
    z = xp.asarray(np.array([[-800.0, 0.0, 800.0]]))
    T = xp.asarray(np.array([[1.0, 0.0, 0.0]]))
    for loss, out in (("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid")):
        act = acts.get_activation(out)
        L = get_loss(loss)
        a = act(z)
        for v in (L.fused(act).value(z, T), L.value(a, T)):
            assert np.isfinite(float(v))
        assert np.all(np.isfinite(to_np(L.gradient(a, T))))
        assert np.all(np.isfinite(to_np(L.fused(act).delta(z, a, T))))


def test_sample_weights():
    w = np.array([1.0, 2.0, 0.0, 1.0, 1.0, 3.0])
    L = get_loss("mse")
    expected = np.sum(w[:, None] * (A_ - T_) ** 2) / (2 * w.sum())
    assert float(L.value(A_, T_, w)) == pytest.approx(expected, rel=1e-13)
    np.testing.assert_allclose(L.gradient(A_, T_, w), w[:, None] * (A_ - T_) / w.sum(), rtol=1e-13)
    # integer weights are the same as repeating samples
    rep = np.repeat(np.arange(6), w.astype(int))
    assert float(L.value(A_, T_, w)) == pytest.approx(float(L.value(A_[rep], T_[rep])), rel=1e-13)


def test_user_loss_and_errors():
    l1 = ffnn.Loss("l1", lambda A, T: np.sum(np.abs(A - T)), lambda A, T: np.sign(A - T))
    assert get_loss(l1) is l1
    assert l1.value(A_, T_) == pytest.approx(np.abs(A_ - T_).sum())
    with pytest.raises(TypeError, match="does not take sample weights"):
        l1.value(A_, T_, np.ones(6))
    with pytest.raises(ValueError, match="unknown loss 'focal'; known losses: binary_cross_entropy, cross_entropy"):
        get_loss("focal")
    with pytest.raises(TypeError):
        get_loss(None)


def test_classification_losses_declare_the_outputs_they_are_defined_on():
    """The command line and the default metric ask the loss object, not a table of names."""
    from ffnn.losses import LOSSES

    assert {name: loss.probability_outputs for name, loss in LOSSES.items() if loss.classification} == {
        "cross_entropy": ("softmax",), "binary_cross_entropy": ("sigmoid", "softmax")}
    assert not ffnn.Loss("mine", lambda A, T: 0.0, lambda A, T: A).classification
