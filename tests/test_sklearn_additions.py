"""What ffnn.sklearn adds for scikit-learn's MLP users, all keyword-only and off by default: own
validation data and its loss curve, callbacks, multi-epoch partial_fit, resumable warm starts, and
saving to one safetensors file."""

import warnings

import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ffnn._files import FileFormatError
from ffnn.sklearn import MLPClassifier, MLPRegressor, load

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    return X[order], y[order]


def _same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))


@pytest.mark.parametrize("params", [
    dict(),
    dict(solver="sgd", learning_rate="invscaling", batch_size=16),
    dict(early_stopping=True, batch_size=32),
    dict(dropout=0.2, batch_size=40),
    dict(solver="sgd", learning_rate="adaptive", tol=0.5, n_iter_no_change=1, batch_size=50),
])
def test_keep_optimizer_two_fits_are_one_long_fit(iris, params):
    X, y = iris
    common = dict(hidden_layer_sizes=(8,), random_state=0, learning_rate_init=0.01, **params)
    twice = MLPClassifier(max_iter=6, warm_start="keep_optimizer", **common).fit(X, y).fit(X, y)
    once = MLPClassifier(max_iter=12, **common).fit(X, y)
    assert _same(twice, once) and twice.loss_curve_ == once.loss_curve_
    assert twice._optimizer.state["step"] == once._optimizer.state["step"]
    assert twice._optimizer.learning_rate == once._optimizer.learning_rate
    # scikit-learn's warm_start=True starts a new optimizer on every fit: not the same steps
    fresh = MLPClassifier(max_iter=6, warm_start=True, **common).fit(X, y).fit(X, y)
    assert not _same(fresh, once)


def test_own_validation_data_and_validation_loss(iris):
    X, y = iris
    Xt, yt, Xv, yv = X[:100], y[:100], X[100:], y[100:]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=40, random_state=0, learning_rate_init=0.01,
                        early_stopping=True, n_iter_no_change=3)
    clf.fit(Xt, yt, X_val=Xv, y_val=yv)
    assert clf.t_ == 100 * clf.n_iter_  # nothing of X was held out
    assert len(clf.validation_scores_) == len(clf.validation_loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.score(Xv, yv) == clf.best_validation_score_  # the best epoch's weights are kept
    plain = MLPRegressor(hidden_layer_sizes=(8,), max_iter=15, random_state=0)
    plain.fit(Xt, yt.astype(float), X_val=Xv, y_val=yv.astype(float))
    assert plain.n_iter_ == 15 and len(plain.validation_loss_curve_) == 15  # recorded, no early stopping
    assert plain.validation_scores_[-1] == pytest.approx(plain.score(Xv, yv.astype(float)))
    half_mse = 0.5 * np.mean((plain.predict(Xv) - yv) ** 2)
    assert plain.validation_loss_curve_[-1] == pytest.approx(half_mse)
    assert MLPRegressor(max_iter=2).fit(Xt, yt).validation_loss_curve_ is None
    with pytest.raises(ValueError, match="X_val and y_val must be given together"):
        plain.fit(Xt, yt, X_val=Xv)


def test_validation_data_through_a_pipeline_with_metadata_routing(iris):
    X, y = iris
    with sklearn.config_context(enable_metadata_routing=True):
        mlp = MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0, learning_rate_init=0.01)
        mlp.set_fit_request(X_val=True, y_val=True)
        pipe = Pipeline([("scale", StandardScaler()), ("mlp", mlp)], transform_input=["X_val"])
        pipe.fit(X[:100] * 10 + 3, y[:100], X_val=X[100:] * 10 + 3, y_val=y[100:])
    fitted = pipe.named_steps["mlp"]
    scaled = pipe.named_steps["scale"].transform(X[100:] * 10 + 3)
    assert fitted.validation_scores_[-1] == pytest.approx(fitted.score(scaled, y[100:]))


def test_callbacks_watch_and_stop(iris):
    X, y = iris
    seen = []

    def watch(net, history):
        seen.append((len(history), history.loss[-1], net.sizes))
        return len(history) == 4

    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=50, random_state=0, callbacks=[watch])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # stopped by a callback: no warning
        clf.fit(X, y)
    assert clf.n_iter_ == 4 and [s[0] for s in seen] == [1, 2, 3, 4]
    assert [s[1] for s in seen] == clf.loss_curve_ and seen[0][2] == (4, 5, 3)
    assert clone(clf).get_params()["callbacks"] == [watch]


def test_partial_fit_epochs(iris):
    X, y = iris
    common = dict(hidden_layer_sizes=(6,), random_state=0, shuffle=False, batch_size=30)
    a = MLPClassifier(**common).partial_fit(X, y, classes=[0, 1, 2], epochs=3)
    b = MLPClassifier(**common)
    for _ in range(3):
        b.partial_fit(X, y, classes=[0, 1, 2])
    assert _same(a, b) and a.loss_curve_ == b.loss_curve_ and a.n_iter_ == 3 and b.n_iter_ == 1
    r = MLPRegressor(**common).partial_fit(X, y.astype(float), epochs=2)
    assert r.n_iter_ == 2 and len(r.loss_curve_) == 2
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        r.partial_fit(X, y, epochs=0)


@pytest.mark.parametrize("params", [dict(), dict(early_stopping=True, warm_start="keep_optimizer"),
                                    dict(solver="sgd", dropout=0.1, warm_start="keep_optimizer"),
                                    dict(solver="lbfgs")])
def test_save_and_load(iris, tmp_path, params):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=5, random_state=0, class_weight={"setosa": 2.0},
                        **params).fit(X, labels)
    path = tmp_path / "clf.safetensors"
    clf.save(path)
    back = load(path)
    assert type(back) is MLPClassifier and back.get_params() == clf.get_params()
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert list(back.classes_) == list(clf.classes_) and back.n_iter_ == clf.n_iter_
    if params.get("solver") != "lbfgs":
        assert back.loss_curve_ == clf.loss_curve_
        clf.fit(X, labels) if params.get("warm_start") else clf.partial_fit(X, labels)
        back.fit(X, labels) if params.get("warm_start") else back.partial_fit(X, labels)
        assert _same(back, clf)  # it goes on training from the same state
    reg = MLPRegressor(hidden_layer_sizes=(3,), max_iter=3, random_state=0, loss="poisson").fit(X, y)
    reg.save(tmp_path / "reg.safetensors")
    np.testing.assert_array_equal(load(tmp_path / "reg.safetensors").predict(X), reg.predict(X))


def test_load_refuses_other_files(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(FileFormatError):
        load(tmp_path / "bad.safetensors")


def test_verbose_prints_scikit_learns_lines_and_progress_draws_a_bar(iris, capsys):
    X, y = iris
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, verbose=True).fit(X, y)
    out = capsys.readouterr().out
    assert [line.split(",")[0] for line in out.splitlines()] == ["Iteration 1", "Iteration 2", "Iteration 3"]
    pytest.importorskip("tqdm")
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, verbose="progress").fit(X, y)
    out, err = capsys.readouterr()
    assert "Iteration" not in out and "3/3" in err and "epoch" in err
    with pytest.raises(ValueError, match="verbose"):
        MLPClassifier(verbose="loud").fit(X, y)


def test_scikit_learn_callbacks(iris):
    callback = pytest.importorskip("sklearn.callback")
    X, y = iris
    monitor = callback.ScoringMonitor(scoring="accuracy")
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, random_state=0).set_callbacks(monitor).fit(X, y)
    epochs = [row for row in monitor.get_logs().data if row["task_name"] == "epoch"]
    assert len(epochs) == clf.n_iter_ == 4
    assert epochs[-1]["accuracy"] == pytest.approx(clf.score(X, y))
