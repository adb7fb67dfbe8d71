"""Where a predicted probability saturates, ffnn.sklearn still takes scikit-learn's steps: the loss the
estimators report and decide with (loss_curve_, loss_, best_loss_, the tol/n_iter_no_change rule,
L-BFGS-B's line search) is scikit-learn's clipped log-loss, while the gradient stays the unclipped
error scikit-learn differentiates. Checked against the installed scikit-learn."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.preprocessing import StandardScaler

import ffnn
from ffnn.sklearn import MLPClassifier

TOL = 1e-10


def _standardised(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _fit_both(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return MLPClassifier(**params).fit(X, y), SkClassifier(**params).fit(X, y)


def _assert_same(ours, theirs):
    assert ours.n_iter_ == theirs.n_iter_
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=TOL, abs=TOL)
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=TOL, atol=TOL)
    if getattr(theirs, "best_loss_", None) is not None:
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=TOL, abs=TOL)


def _true_probability(est, X, y):
    """The smallest probability the fitted estimator gives a sample's true label (or labels)."""
    P = est.predict_proba(X)
    if y.ndim == 2:
        return float(np.where(y == 1, P, 1 - P).min())
    return float(P[np.arange(len(y)), np.searchsorted(est.classes_, y)].min())


def test_lbfgs_follows_scikit_learn_through_a_saturated_evaluation():
    """iris: L-BFGS-B evaluates points where a true class's probability is ~1e-46 (its 7th evaluation).
    Before, the runs parted there (coefficients 0.83 apart at 50 iterations); now they agree to
    rounding, which L-BFGS amplifies past 20 iterations (8.5e-7 at 50: not a difference of the loss)."""
    X, y = _standardised(load_iris)
    ours, theirs = _fit_both(X, y, hidden_layer_sizes=(8, 5), solver="lbfgs", random_state=0, max_iter=20)
    _assert_same(ours, theirs)


def test_adam_stops_when_scikit_learn_stops():
    """wine, a huge learning rate: the probabilities saturate and the clipped loss plateaus; the tol
    rule stops both at the same epoch (the exact loss would keep falling and train on)."""
    X, y = _standardised(load_wine)
    ours, theirs = _fit_both(X, y, hidden_layer_sizes=(16,), solver="adam", learning_rate_init=5.0, shuffle=False,
                             max_iter=30, random_state=0)
    assert theirs.n_iter_ < 30
    _assert_same(ours, theirs)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["binary", "multilabel"])
def test_saturated_logistic_outputs_report_scikit_learn_s_loss(solver, kind):
    """Logistic outputs (binary and multilabel): scikit-learn's binary_log_loss, clipped, at a learning
    rate that saturates them."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4)) * 5
    y = (X[:, 0] > 0).astype(int) if kind == "binary" else (X[:, :3] > 0).astype(int)
    ours, theirs = _fit_both(X, y, hidden_layer_sizes=(12,), solver=solver, learning_rate_init=3.0, shuffle=False,
                             batch_size=20, max_iter=15, random_state=1, momentum=0.0)
    assert _true_probability(theirs, X, y) < np.finfo(np.float64).eps  # saturated
    _assert_same(ours, theirs)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sample_weights_and_saturation(solver):
    X, y = _standardised(load_iris)
    w = np.random.default_rng(0).uniform(0, 2, size=len(y))
    w[::7] = 0.0  # zero weights: scikit-learn's average ignores those rows
    params = dict(hidden_layer_sizes=(8,), solver=solver, random_state=0, max_iter=15 if solver == "adam" else 20,
                  shuffle=False, learning_rate_init=5.0, batch_size=25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**params).fit(X, y, sample_weight=w)
        theirs = SkClassifier(**params).fit(X, y, sample_weight=w)
    assert _true_probability(theirs, X, y) < 1e-20  # saturated
    _assert_same(ours, theirs)


def test_train_keeps_the_exact_fused_loss():
    """ffnn.train reports the exact cross-entropy: where a probability saturates it exceeds the clipped one."""
    net = ffnn.Network([2, 3], "relu", "softmax", seed=0)
    X = np.array([[0.0, 0.0]])
    net.biases[1][...] = [0.0, 200.0, -200.0]
    T = np.array([[1.0, 0.0, 0.0]])
    exact = float(ffnn.losses.cross_entropy.fused(net.activations[-1]).value(net.weights[1][:0].sum() + X @ net.weights[1]
                                                                              + net.biases[1], T))
    assert exact == pytest.approx(200.0, rel=1e-12)
    clipped = ffnn.losses.sklearn_log_loss.fused(net.activations[-1]).value(X @ net.weights[1] + net.biases[1], T)
    assert float(clipped) == pytest.approx(-np.log(np.finfo(np.float64).eps), rel=1e-12)
