import numpy as np
import pytest
from sklearn import metrics as skm

from ffnn import metrics

rng = np.random.default_rng(0)


def test_accuracy_multiclass_binary_multilabel(xp):
    y = rng.integers(0, 4, size=50)
    P = rng.uniform(size=(50, 4))
    assert metrics.accuracy(xp.asarray(np.eye(4)[y]), xp.asarray(P)) == pytest.approx(
        skm.accuracy_score(y, P.argmax(1)))
    yb = rng.integers(0, 2, size=50).astype(float)
    pb = rng.uniform(size=50)
    assert metrics.accuracy(xp.asarray(yb), xp.asarray(pb)) == pytest.approx(skm.accuracy_score(yb, pb >= 0.5))
    Y = rng.integers(0, 2, size=(50, 3)).astype(float)
    assert metrics.accuracy(xp.asarray(Y), xp.asarray(P[:, :3]), multilabel=True) == pytest.approx(
        skm.accuracy_score(Y, P[:, :3] >= 0.5))


def test_regression_metrics_match_scikit_learn(xp):
    T = rng.normal(size=(40, 2))
    A = T + 0.3 * rng.normal(size=(40, 2))
    assert metrics.mse(xp.asarray(T), xp.asarray(A)) == pytest.approx(skm.mean_squared_error(T, A))
    assert metrics.mae(xp.asarray(T), xp.asarray(A)) == pytest.approx(skm.mean_absolute_error(T, A))
    assert metrics.r2(xp.asarray(T), xp.asarray(A)) == pytest.approx(skm.r2_score(T, A))
    assert metrics.r2(xp.asarray(T[:, 0]), xp.asarray(A[:, 0])) == pytest.approx(skm.r2_score(T[:, 0], A[:, 0]))


def test_r2_of_targets_near_the_float_range():
    """R² is scale-free; squares of 1e300 overflow and of 1e-300 underflow unless each column is scaled."""
    rng = np.random.default_rng(0)
    T, A = rng.normal(size=(50, 2)), rng.normal(size=(50, 2))
    scale = np.array([1e300, 1e-300])
    assert metrics.r2(T * scale, A * scale) == pytest.approx(skm.r2_score(T, A), rel=1e-12)
    top = 1.7e308 / np.abs(T).max()  # the largest |t| at the top of the float range
    assert metrics.r2(T * top, A * top) == pytest.approx(skm.r2_score(T, A), rel=1e-12)


def test_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        metrics.get_metric("auc")


def test_confusion_matrix_and_report_equal_scikit_learns():
    """Against scikit-learn's confusion_matrix and classification_report(output_dict=True), including
    a class never predicted (precision 0/0 = 0) and one that never occurs."""
    from sklearn.metrics import classification_report as sk_report
    from sklearn.metrics import confusion_matrix as sk_confusion

    from ffnn.metrics import classification_report, confusion_matrix, predicted_classes

    rng = np.random.default_rng(0)
    for k in (2, 3, 6):
        true, pred = rng.integers(0, k - 1, 80), rng.integers(1, k, 80)
        C = confusion_matrix(true, pred, k)
        np.testing.assert_array_equal(C, sk_confusion(true, pred, labels=range(k)))
        names = [f"c{i}" for i in range(k)]
        ours = classification_report(C, names)
        theirs = sk_report(true, pred, labels=range(k), target_names=names, output_dict=True, zero_division=0)
        assert ours.keys() == theirs.keys()
        for key, value in theirs.items():
            if key == "accuracy":
                assert ours[key] == pytest.approx(value, abs=1e-15)
            else:
                assert ours[key] == pytest.approx(value, abs=1e-15), key
    assert predicted_classes(np.array([[0.2], [0.5], [0.7]])).tolist() == [0, 1, 1]
    assert predicted_classes(np.array([[0.2, 0.8], [0.6, 0.4]])).tolist() == [1, 0]
    with pytest.raises(ValueError, match="class indices must lie in 0 … 1"):
        confusion_matrix([0, 2], [0, 1], 2)


def test_margin_accuracy_counts_the_sign_of_a_score():
    """The hinge losses' accuracy: a score's sign against the target's (±1, or 0 read as −1), checked
    against scikit-learn's accuracy_score on the signs; several columns by argmax, as accuracy."""
    rng = np.random.default_rng(0)
    T = rng.choice([-1.0, 1.0], size=(50, 1))
    A = rng.normal(size=(50, 1))
    assert metrics.margin_accuracy(T, A) == skm.accuracy_score(T[:, 0] > 0, A[:, 0] > 0)
    assert metrics.margin_accuracy((T + 1) / 2, A) == metrics.margin_accuracy(T, A)  # 0/1 labels
    T3, A3 = np.eye(3)[rng.integers(0, 3, 40)], rng.normal(size=(40, 3))
    assert metrics.margin_accuracy(T3, A3) == metrics.accuracy(T3, A3)
    assert metrics.get_metric("margin_accuracy") is metrics.margin_accuracy


def test_a_hinge_loss_validates_by_margin_accuracy():
    import ffnn

    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 2))
    t = np.where(X[:, 0] > 0, 1.0, -1.0)[:, None]
    h = ffnn.train(ffnn.Network([2, 4, 1], "tanh", "identity", seed=0), X, t, loss="hinge", epochs=2,
                   validation=(X[:20], t[:20]))
    assert h.metric == "margin_accuracy" and 0 <= h.val_metric[-1] <= 1
    assert [n for n, loss in ffnn.losses.LOSSES.items() if loss.margin] == ["hinge", "squared_hinge"]
    assert ffnn.losses.poisson.positive_outputs == ("softplus", "sigmoid")
