"""The losses Keras and PyTorch users reach for — Huber, log-cosh, hinge, squared hinge, Poisson —
value and gradient against PyTorch's own functions and autograd (float64), their conventions
(Huber's δ and its name, {0, 1} labels for the hinges), and training with them by name."""

import pickle
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ffnn
from ffnn.losses import Huber, get_loss

from .conftest import to_np

rng = np.random.default_rng(7)
N, K = 8, 3
A_ = rng.normal(scale=2.0, size=(N, K))        # residuals on both sides of δ = 0.5, 1, 2
T_ = rng.normal(size=(N, K))
LABELS = rng.choice([-1.0, 1.0], size=(N, K))
COUNTS = rng.poisson(2.0, size=(N, K)).astype(float)  # zeros among them: 0 log 0 = 0
RATES = rng.uniform(0.2, 4.0, size=(N, K))


def _torch_reference(name):
    """(A, T, J(A, T) as PyTorch computes it): each J = 1/N Σ_n Σ_k ℓ, the per-element sum of PyTorch's
    reduction='sum' (or the formula in torch operations where PyTorch has no such loss) over N."""
    if name.startswith("huber"):
        delta = Huber(1.0 if name == "huber" else float(name[len("huber(delta="):-1])).delta
        return A_, T_, lambda A, T: F.huber_loss(A, T, reduction="sum", delta=delta) / N
    if name == "log_cosh":
        return A_, T_, lambda A, T: torch.log(torch.cosh(A - T)).sum() / N  # Keras' definition, unreduced
    if name in ("hinge", "squared_hinge"):
        power = 1 if name == "hinge" else 2
        return 0.5 * A_, LABELS, lambda A, T: (torch.clamp(1 - T * A, min=0) ** power).sum() / N
    if name == "poisson":  # PyTorch's Poisson NLL A − T log A plus the constant T log T − T: the half deviance
        return RATES, COUNTS, lambda A, T: (F.poisson_nll_loss(A, T, log_input=False, full=False, eps=0.0,
                                                               reduction="sum")
                                            + (torch.special.xlogy(T, T) - T).sum()) / N
    raise AssertionError(name)


NAMES = ["huber", "huber(delta=0.5)", "huber(delta=2.0)", "log_cosh", "hinge", "squared_hinge", "poisson"]


@pytest.mark.parametrize("name", NAMES)
def test_value_and_gradient_match_pytorch_autograd(name, xp):
    A, T, reference = _torch_reference(name)
    At = torch.tensor(A, requires_grad=True)
    J = reference(At, torch.tensor(T))
    (G,) = torch.autograd.grad(J, At)
    loss = get_loss(name)
    assert float(loss.value(xp.asarray(A), xp.asarray(T))) == pytest.approx(J.item(), rel=1e-13)
    np.testing.assert_allclose(to_np(loss.gradient(xp.asarray(A), xp.asarray(T))), G.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["hinge", "squared_hinge"])
def test_hinge_reads_zero_labels_as_minus_one_as_keras_does(name):
    loss, A = get_loss(name), 0.5 * A_
    zero_one = (LABELS + 1) / 2
    assert float(loss.value(A, zero_one)) == float(loss.value(A, LABELS))
    np.testing.assert_array_equal(loss.gradient(A, zero_one), loss.gradient(A, LABELS))


def test_log_cosh_stays_finite_where_cosh_overflows():
    A, T = np.array([[800.0, -800.0, 1e-9]]), np.zeros((1, 3))
    J = get_loss("log_cosh").value(A, T)
    assert float(J) == pytest.approx(1600 - 2 * np.log(2) + 0.5e-18, rel=1e-15)
    np.testing.assert_array_equal(get_loss("log_cosh").gradient(A, T), [[1.0, -1.0, np.tanh(1e-9)]])


def test_huber_delta_is_in_its_name_and_comes_back():
    assert get_loss("huber") is ffnn.losses.huber and get_loss("huber").delta == 1.0
    for spec in ("huber(delta=0.5)", "HUBER(0.5)", " huber( delta = 0.5 ) "):
        assert get_loss(spec) == Huber(0.5) and get_loss(spec).name == "huber(delta=0.5)"
    assert Huber(1) == ffnn.losses.huber and Huber(0.5) != Huber(0.25)
    assert pickle.loads(pickle.dumps(Huber(0.5))) == Huber(0.5)
    assert repr(Huber(2)) == "Huber(delta=2.0)"


@pytest.mark.parametrize("spec,error,fragment", [
    (lambda: Huber(-1), ValueError, "Huber loss delta must be a positive number, got -1"),
    (lambda: Huber(0), ValueError, "Huber loss delta must be a positive number, got 0"),
    (lambda: Huber(float("nan")), ValueError, "Huber loss delta"),
    (lambda: Huber("1"), TypeError, "Huber loss delta"),
    (lambda: get_loss("huber(delta=abc)"), ValueError, "the Huber loss's delta must be a number, got 'abc'"),
    (lambda: get_loss("huber(delta=-2)"), ValueError, "Huber loss delta must be a positive number"),
    (lambda: get_loss("logcosh"), ValueError, "unknown loss 'logcosh'; known losses:"),
])
def test_bad_losses_are_named(spec, error, fragment):
    with pytest.raises(error) as info:
        spec()
    assert fragment in str(info.value)


@pytest.mark.parametrize("name,output", [("huber(delta=0.5)", "identity"), ("log_cosh", "identity"),
                                         ("hinge", "tanh"), ("squared_hinge", "identity"), ("poisson", "softplus")])
def test_train_by_name_on_numpy_and_pytorch(name, output):
    """ffnn.train takes each by name; the interpreted loop computes it (no compiled form: loop='auto'
    falls back, loop='compiled' says why), and NumPy and PyTorch networks take the same steps."""
    X = rng.normal(size=(40, 3))
    T = {"hinge": np.sign(X[:, :1]), "squared_hinge": (X[:, :1] > 0).astype(float),
         "poisson": rng.poisson(np.exp(0.5 * X[:, :1])).astype(float)}.get(name, X[:, :1] ** 2)
    runs = []
    for xp in (None, torch):
        net = ffnn.Network([3, 6, 1], "tanh", output, seed=0, xp=xp)
        h = ffnn.train(net, X, T, loss=name, optimizer="adam", epochs=5, batch_size=8, seed=0,
                       sample_weight=np.linspace(0.5, 1.5, 40))
        assert h.loss[-1] < h.loss[0] and h.loop == "core"
        runs.append([to_np(p) for p in net.parameters()])
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match=re.escape(f"loss {name!r} has no compiled form")):
        ffnn.train(ffnn.Network([3, 6, 1], "tanh", output), X, T, loss=name, loop="compiled")


def test_regressor_takes_huber_and_log_cosh():
    from ffnn.sklearn import MLPRegressor

    X = rng.normal(size=(50, 2))
    y = X[:, 0] + np.where(np.arange(50) % 10 == 0, 20.0, 0.0)  # outliers
    for loss in ("huber", "log_cosh"):
        est = MLPRegressor(loss=loss, hidden_layer_sizes=(4,), solver="rprop", max_iter=30, random_state=0)
        with pytest.warns(Warning, match="Maximum iterations"):
            est.fit(X, y)
        assert est.loss_curve_[-1] < est.loss_curve_[0]
        J = float(get_loss(loss).value(est.predict(X)[:, None], y[:, None]))
        assert 0 < J < est.loss_curve_[0]


def test_command_line_losses(tmp_path):
    """--loss takes every name (Huber's δ in it, back from the model file); outputs and tasks that
    cannot fit a loss are usage errors: one line, exit 2."""
    from .conftest import cli

    X = rng.normal(size=(60, 2))
    data = tmp_path / "d.csv"
    np.savetxt(data, np.c_[X, rng.poisson(np.exp(0.5 * X[:, 0]))], delimiter=",", header="a,b,y", comments="",
               fmt="%.5f")
    fast = ["--task", "regress", "--epochs", "2", "--hidden", "3", "--quiet", "--early-stopping", "0"]
    for loss, output in [("huber(delta=0.5)", "identity"), ("poisson", "softplus")]:
        out = tmp_path / f"{loss}.safetensors"
        code, stdout, err = cli("train", data, *fast, "--loss", loss, "--out", out)
        assert code == 0, err
        net = ffnn.load(out)
        assert net.metadata["loss"] == loss and net.activations[-1].name == output
        code, _, err = cli("evaluate", out, data)
        assert code == 0, err
    for args, fragment in [(["--loss", "huber(delta=-1)"], "Huber loss delta must be a positive number"),
                           (["--loss", "poisson", "--output", "identity"], "--loss poisson needs positive outputs"),
                           (["--loss", "hinge"], "--loss hinge is for classification")]:
        code, _, err = cli("train", data, *fast, "--out", tmp_path / "x.safetensors", *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
