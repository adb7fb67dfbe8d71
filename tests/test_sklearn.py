"""ffnn's scikit-learn estimators: scikit-learn's own estimator checks, parity and ffnn's additions."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import ffnn
from ffnn.sklearn import MLPClassifier, MLPRegressor

@parametrize_with_checks([MLPClassifier(max_iter=100, random_state=0), MLPRegressor(max_iter=100, random_state=0),
                          MLPClassifier(solver="lbfgs", random_state=0), MLPRegressor(solver="sgd", random_state=0)])
def test_scikit_learn_estimator_checks(estimator, check):
    """Every check passes; nothing is skipped or marked xfail.

    The checks' own code takes np.log of predicted probabilities, which are exactly 0 for confident
    predictions, so numpy's divide-by-zero is left at its default here (not ffnn's code).
    """
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", "divide by zero encountered in log", RuntimeWarning)
        check(estimator)


def _iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_one_import_switch_runs_scikit_learn_code_unchanged():
    X, y = _iris()
    params = dict(hidden_layer_sizes=(20,), max_iter=300, random_state=0, learning_rate_init=0.01)
    ours = cross_val_score(make_pipeline(StandardScaler(), MLPClassifier(**params)), X, y, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = cross_val_score(make_pipeline(StandardScaler(), SkMLPClassifier(**params)), X, y, cv=3)
    assert ours.mean() >= theirs.mean() - 0.03
    grid = GridSearchCV(MLPClassifier(max_iter=200, random_state=0, learning_rate_init=0.01),
                        {"alpha": [1e-4, 1e-2]}, cv=3).fit(X, y)
    assert grid.best_score_ > 0.9


def test_fitted_attributes_like_scikit_learn():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(8, 6), max_iter=50, random_state=0, early_stopping=True).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(4, 8), (8, 6), (6, 3)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (6,), (3,)]
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 3 and clf.out_activation_ == "softmax"
    assert clf.n_features_in_ == 4 and list(clf.classes_) == [0, 1, 2]
    assert len(clf.loss_curve_) == clf.n_iter_ and clf.loss_ == clf.loss_curve_[-1]
    assert len(clf.validation_scores_) == clf.n_iter_ and clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None and clf.t_ == clf.n_iter_ * (150 - 15)
    assert isinstance(clf.network_, ffnn.Network) and clf.coefs_[0] is clf.network_.weights[1]
    import pandas as pd

    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf2 = MLPClassifier(max_iter=20, random_state=0).fit(df, y)
    assert list(clf2.feature_names_in_) == ["a", "b", "c", "d"]


def test_binary_string_labels_proba_and_log_proba():
    X, y = _iris()
    labels = np.where(y == 0, "setosa", "other")
    clf = MLPClassifier(max_iter=200, random_state=0).fit(X, labels)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    P = clf.predict_proba(X)
    assert P.shape == (150, 2) and np.allclose(P.sum(axis=1), 1)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(P))
    assert set(clf.predict(X)) <= {"setosa", "other"} and clf.score(X, labels) > 0.95


def test_multilabel_indicator_targets():
    X, Y = make_multilabel_classification(n_samples=200, n_features=8, n_classes=3, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.predict(X).shape == (200, 3)
    assert clf.predict_proba(X).shape == (200, 3)
    assert clf.score(X, Y) > 0.5


def test_sample_weight_and_class_weight():
    X, y = _iris()
    w = np.r_[np.full(50, 3.0), np.ones(100)]
    a = MLPClassifier(solver="lbfgs", random_state=0).fit(X, y, sample_weight=w)
    b = MLPClassifier(solver="lbfgs", random_state=0, class_weight={0: 3.0, 1: 1.0, 2: 1.0}).fit(X, y)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-10)
    keep = np.r_[np.arange(0, 50, 5), np.arange(50, 150)]
    bal = MLPClassifier(max_iter=300, random_state=0, class_weight="balanced").fit(X[keep], y[keep])
    assert bal.score(X, y) > 0.9


def test_regressor_single_and_multi_output_and_losses():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    r = MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, random_state=0, early_stopping=True).fit(X, y)
    assert r.predict(X).shape == (442,) and r.score(X, y) > 0.4 and r.out_activation_ == "identity"
    Y = np.c_[y, -y]
    m = MLPRegressor(hidden_layer_sizes=(32,), max_iter=100, random_state=0, loss="half_sse",
                     learning_rate_init=1e-4).fit(X, Y)
    assert m.predict(X).shape == (442, 2) and m.n_outputs_ == 2


def test_partial_fit_keeps_optimizer_state_and_needs_classes():
    X, y = _iris()
    clf = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:75], y[:75], classes=[0, 1, 2])
    step = clf._optimizer.state["step"]
    clf.partial_fit(X[75:], y[75:])
    assert clf._optimizer.state["step"] == step + 1 and clf.n_iter_ == 1 and clf.t_ == 150
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        clf.partial_fit(X[:3], [0, 1, 7])
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
        MLPRegressor(solver="lbfgs").partial_fit(X, y)
    r = MLPRegressor(random_state=0)
    for _ in range(3):
        r.partial_fit(X, y.astype(float))
    assert r.n_iter_ == 1 and len(r.loss_curve_) == 3 and r.t_ == 3 * len(y)


def test_ffnn_additions():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), activation=["tanh", "gelu"], solver="adamw", l1=1e-4,
                        dropout=0.1, dtype="float32", max_iter=200, learning_rate_init=0.01,
                        random_state=0).fit(X, y)
    assert [a.name for a in clf.network_.activations] == ["tanh", "gelu", "softmax"]
    assert clf.coefs_[0].dtype == np.float32 and clf.score(X, y) > 0.9
    rms = MLPClassifier(solver="rmsprop", max_iter=100, learning_rate_init=0.01, random_state=0).fit(X, y)
    assert rms.score(X, y) > 0.9


def test_input_gradient_is_the_per_sample_loss_gradient():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(5,), activation="tanh", max_iter=50, random_state=0).fit(X, y)
    G = clf.input_gradient(X[:3], y[:3])
    assert G.shape == (3, 4)
    eps = 1e-6
    for n in range(3):
        for k in range(4):
            xp, xm = X[n:n + 1].copy(), X[n:n + 1].copy()
            xp[0, k] += eps
            xm[0, k] -= eps
            fd = (-np.log(clf.predict_proba(xp)[0, y[n]]) + np.log(clf.predict_proba(xm)[0, y[n]])) / (2 * eps)
            assert G[n, k] == pytest.approx(fd, rel=1e-5, abs=1e-8)
    r = MLPRegressor(hidden_layer_sizes=(5,), activation="tanh", max_iter=50, random_state=0).fit(X, y.astype(float))
    g = r.input_gradient(X[:1])
    xp = X[:1].copy()
    xp[0, 2] += eps
    xm = X[:1].copy()
    xm[0, 2] -= eps
    assert g[0, 2] == pytest.approx((r.predict(xp)[0] - r.predict(xm)[0]) / (2 * eps), rel=1e-5)


def test_pickle_and_clone():
    from sklearn.base import clone

    X, y = _iris()
    clf = MLPClassifier(max_iter=30, random_state=0).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    c = clone(clf)
    assert not hasattr(c, "network_") and c.get_params() == clf.get_params()


@pytest.mark.parametrize("params,match", [
    (dict(solver="newton"), "The 'solver' parameter of MLPClassifier must be a str among"),
    (dict(learning_rate_init=0), "The 'learning_rate_init' parameter"),
    (dict(hidden_layer_sizes=(10, 0)), "hidden_layer_sizes must be > 0"),
    (dict(activation="swish"), "The 'activation' parameter of MLPClassifier must be an activation name"),
    (dict(momentum=1.5), "The 'momentum' parameter"),
    (dict(dtype="float16"), "The 'dtype' parameter"),
])
def test_invalid_hyperparameters_at_fit(params, match):
    X, y = _iris()
    clf = MLPClassifier(**params)  # stored verbatim, checked at fit
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_scikit_learn_messages_for_bad_data():
    X, y = _iris()
    clf = MLPClassifier(max_iter=10, random_state=0)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        clf.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X, y[:-1])
    clf.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 4 features"):
        clf.predict(X[:, :3])


def test_coefs_and_intercepts_are_settable_and_persist():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y)
    W = np.zeros_like(clf.coefs_[1])
    clf.coefs_[1] = W
    assert clf.coefs_[1] is W and clf.network_.weights[2] is W
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P, np.broadcast_to(P[0], P.shape))  # the output no longer sees X
    clf.intercepts_ = [np.zeros_like(b) for b in clf.intercepts_]
    assert clf.network_.biases[2] is clf.intercepts_[1]
    clf.partial_fit(X, y)  # trains the arrays the user set, in place
    assert clf.coefs_[1] is W and np.any(W != 0)


def test_sparse_float32_and_single_class():
    import scipy.sparse as sp

    X, y = _iris()
    f32 = MLPClassifier(hidden_layer_sizes=(6,), max_iter=30, random_state=0, shuffle=False)
    sparse = MLPClassifier(hidden_layer_sizes=(6,), max_iter=30, random_state=0, dropout=0.2, learning_rate_init=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        f32.fit(sp.csr_matrix(X.astype(np.float32)), y)
        sparse.fit(sp.csr_array(X), y)
    assert f32.coefs_[0].dtype == np.float32 and f32.predict_proba(X.astype(np.float32)).dtype == np.float32
    assert sparse.score(sp.csr_array(X), y) > 0.6
    one = MLPRegressor(max_iter=5).fit(X, np.zeros(len(X)))
    assert one.predict(X).shape == (150,)
    single = MLPClassifier(max_iter=5).fit(X, np.ones(len(X), dtype=int))
    assert set(single.predict(X)) == {1}
