"""ffnn.sklearn takes scikit-learn's own steps: in float64 without shuffling, both libraries reach the
same coefs_, intercepts_, loss_curve_ and n_iter_ (to 1e-10) after several epochs."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor

from ffnn.sklearn import MLPClassifier, MLPRegressor

TOL = 1e-10
N = 23  # batch_size 5: four full batches and a partial one of 3

SOLVERS = {
    "sgd": dict(solver="sgd", momentum=0.0, learning_rate_init=0.05),
    "sgd-momentum": dict(solver="sgd", momentum=0.9, nesterovs_momentum=False, learning_rate_init=0.02),
    "sgd-nesterov": dict(solver="sgd", momentum=0.9, learning_rate_init=0.02, learning_rate="invscaling",
                         power_t=0.3),
    "adam": dict(solver="adam", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs"),
}


def _data(kind, rng):
    X = rng.normal(size=(N, 4))
    if kind == "binary":
        return X, (X[:, 0] + 0.5 * rng.normal(size=N) > 0).astype(int)
    if kind == "multiclass":
        return X, np.digitize(X[:, 0] + X[:, 1], [-0.7, 0.7])
    if kind == "multilabel":
        return X, (X[:, :3] + 0.3 * rng.normal(size=(N, 3)) > 0).astype(int)
    if kind == "regression":
        return X, X @ rng.normal(size=4) + 0.1 * rng.normal(size=N)
    return X, X @ rng.normal(size=(4, 3)) + 0.1 * rng.normal(size=(N, 3))  # several outputs


def max_difference(ours, theirs):
    """The largest absolute difference over coefs_, intercepts_ and loss_curve_ (or loss_)."""
    assert ours.n_iter_ == theirs.n_iter_
    pairs = list(zip(ours.coefs_, theirs.coefs_)) + list(zip(ours.intercepts_, theirs.intercepts_))
    if hasattr(theirs, "loss_curve_"):
        assert len(ours.loss_curve_) == len(theirs.loss_curve_)
        pairs.append((np.array(ours.loss_curve_), np.array(theirs.loss_curve_)))
    else:
        pairs.append((np.array(ours.loss_), np.array(theirs.loss_)))
    return max(float(np.max(np.abs(a - b))) for a, b in pairs)


def _both(kind, params, fits, sample_weight):
    rng = np.random.default_rng(0)
    X, y = _data(kind, rng)
    w = rng.uniform(0.2, 2.0, size=N) if sample_weight else None
    ours_cls, theirs_cls = (MLPRegressor, SkRegressor) if kind.startswith(("regression", "outputs")) else \
        (MLPClassifier, SkClassifier)
    common = dict(hidden_layer_sizes=(6, 5), activation="tanh", alpha=0.3, batch_size=5, max_iter=6,
                  shuffle=False, random_state=3, **params)
    ours, theirs = ours_cls(**common), theirs_cls(**common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(fits):
            ours.fit(X, y, sample_weight=w)
            theirs.fit(X, y, sample_weight=w)
    return ours, theirs


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression", "outputs"])
def test_same_steps_as_scikit_learn(kind, solver):
    ours, theirs = _both(kind, SOLVERS[solver], fits=1, sample_weight=False)
    assert max_difference(ours, theirs) < TOL


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("kind", ["multiclass", "outputs"])
def test_same_steps_with_sample_weights_and_warm_starts(kind, solver):
    ours, theirs = _both(kind, dict(SOLVERS[solver], warm_start=True), fits=2, sample_weight=True)
    assert max_difference(ours, theirs) < TOL


def test_same_steps_with_relu_adam_early_stopping_and_partial_fit():
    rng = np.random.default_rng(1)
    X, y = _data("multiclass", rng)
    X = np.r_[X, X + 0.01]
    y = np.r_[y, y]
    common = dict(hidden_layer_sizes=(7,), batch_size=8, max_iter=8, shuffle=False, random_state=0,
                  learning_rate_init=0.01, alpha=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(early_stopping=True, validation_fraction=0.2, **common).fit(X, y)
        theirs = SkClassifier(early_stopping=True, validation_fraction=0.2, **common).fit(X, y)
    assert max_difference(ours, theirs) < TOL
    assert np.allclose(ours.validation_scores_, theirs.validation_scores_, rtol=0, atol=TOL)
    ours, theirs = MLPClassifier(**common), SkClassifier(**common)
    for _ in range(3):
        ours.partial_fit(X, y, classes=[0, 1, 2])
        theirs.partial_fit(X, y, classes=[0, 1, 2])
    assert max_difference(ours, theirs) < TOL


def test_poisson_regressor_matches():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(N, 3))
    y = rng.poisson(np.exp(0.3 * X[:, 0]))
    common = dict(loss="poisson", hidden_layer_sizes=(4,), batch_size=5, max_iter=5, shuffle=False,
                  random_state=0, learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, theirs = MLPRegressor(**common).fit(X, y), SkRegressor(**common).fit(X, y)
    assert ours.out_activation_ == "exp" and max_difference(ours, theirs) < TOL
