import math

import numpy as np
import pytest

import ffnn

from .conftest import blobs as _blobs
from .conftest import same_weights as _same
from .conftest import to_np

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_T = np.array([[0], [1], [1], [0]], dtype=float)


def test_sheptunovs_sigmoid_network_learns_xor_with_plain_sgd():
    net = ffnn.Network([2, 3, 1], "sigmoid", "sigmoid", seed=1)
    h = ffnn.train(net, XOR_X, XOR_T, loss="half_sse", optimizer=ffnn.SGD(2.0), epochs=3000, batch_size=4, seed=0)
    assert h.loss[-1] < 0.01
    np.testing.assert_array_equal(net.predict(XOR_X) > 0.5, XOR_T > 0.5)


def test_online_learning_batch_size_one(xp):
    net = ffnn.Network([2, 4, 1], "tanh", "sigmoid", seed=3, xp=xp)
    h = ffnn.train(net, xp.asarray(XOR_X), xp.asarray(XOR_T), loss="binary_cross_entropy",
                   optimizer=ffnn.SGD(0.5, momentum=0.9, nesterov=True), epochs=300, batch_size=1, seed=0)
    assert h.loss[-1] < h.loss[0]
    np.testing.assert_array_equal(to_np(net.predict(xp.asarray(XOR_X))) > 0.5, XOR_T > 0.5)


def test_same_seed_same_weights_bit_for_bit():
    X, T, _ = _blobs()
    nets = []
    for _ in range(2):
        net = ffnn.Network([4, 8, 3], "relu", "softmax", seed=5)
        ffnn.train(net, X, T, loss="cross_entropy", optimizer="adam", epochs=5, batch_size=16, seed=42,
                   dropout=0.2, validation=0.2)
        nets.append(net)
    assert _same(*nets)
    other = ffnn.Network([4, 8, 3], "relu", "softmax", seed=5)
    ffnn.train(other, X, T, loss="cross_entropy", optimizer="adam", epochs=5, batch_size=16, seed=43,
               dropout=0.2, validation=0.2)
    assert not _same(nets[0], other)


def test_callbacks_can_stop_and_see_history():
    X, T, _ = _blobs()
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    h = ffnn.train(net, X, T, loss="cross_entropy", epochs=50, callbacks=[lambda n, hist: len(hist) == 3])
    assert len(h) == 3 and h.stopped_early


def test_validation_history_is_complete():
    """A validation fraction fills every column of the History (the split: test_splits.py)."""
    X, T, _ = _blobs(300)
    net = ffnn.Network([4, 6, 3], "relu", "softmax", seed=0)
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer="adam", epochs=3, validation=0.2, seed=0)
    assert h.metric == "accuracy" and len(h.val_metric) == 3 and all(0 <= m <= 1 for m in h.val_metric)
    assert all(t > 0 for t in h.time) and h.lr == [0.001] * 3
    assert "val_loss" in str(h)
    d = h.to_dict()
    assert ffnn.History.from_dict(d).loss == h.loss


def test_explicit_validation_and_regression_metric():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    T = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.normal(size=(200, 1))
    net = ffnn.Network([3, 16, 1], "tanh", "identity", seed=0)
    h = ffnn.train(net, X[:150], T[:150], loss="mse", optimizer=ffnn.Adam(0.01), epochs=60,
                   validation=(X[150:], T[150:]), seed=0, schedule="cosine")
    assert h.metric == "r2" and h.val_metric[-1] > 0.95
    assert h.lr[-1] < 1e-5


def test_dropout_trains_but_never_drops_in_predict():
    X, T, _ = _blobs()
    net = ffnn.Network([4, 32, 3], "relu", "softmax", seed=0)
    ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.Adam(0.01), epochs=30, dropout=0.5, seed=0)
    assert np.array_equal(net.predict(X), net.predict(X))
    assert ffnn.metrics.accuracy(T, net.predict(X)) > 0.9
    tr = net.forward(X[:50], dropout=[0.5], rng=np.random.default_rng(0))
    dropped = np.mean(tr.masks[1] == 0)
    assert 0.4 < dropped < 0.6 and set(np.unique(tr.masks[1])) <= {0.0, 2.0}


def test_dropout_gradient_matches_finite_differences_for_a_fixed_mask():
    X, T, _ = _blobs(6)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    tr = net.forward(X, dropout=[0.4], rng=np.random.default_rng(1))
    g = net.backward(tr, T, "cross_entropy")
    mask = tr.masks[1]

    def J():
        h = np.tanh(X @ net.weights[1] + net.biases[1]) * mask
        z = h @ net.weights[2] + net.biases[2]
        z = z - z.max(axis=1, keepdims=True)
        return -np.sum(T * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))) / len(X)

    W = net.weights[1]
    for idx in [(0, 0), (2, 3), (3, 4)]:
        old = W[idx]
        W[idx] = old + 1e-6
        jp = J()
        W[idx] = old - 1e-6
        jm = J()
        W[idx] = old
        assert g.weights[1][idx] == pytest.approx((jp - jm) / 2e-6, rel=1e-6, abs=1e-10)


def test_second_call_continues_weights_and_optimizer_state():
    X, T, _ = _blobs()
    a = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    b = a.copy()
    opt_a = ffnn.Adam(0.01)
    ffnn.train(a, X, T, loss="cross_entropy", optimizer=opt_a, epochs=4, shuffle=False)
    opt_b = ffnn.Adam(0.01)
    ffnn.train(b, X, T, loss="cross_entropy", optimizer=opt_b, epochs=2, shuffle=False)
    assert opt_b.state["step"] == 2 * math.ceil(120 / 32)
    ffnn.train(b, X, T, loss="cross_entropy", optimizer=opt_b, epochs=2, shuffle=False)
    assert _same(a, b)


def test_schedule_drives_the_learning_rate():
    X, T, _ = _blobs()
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.1), epochs=4, batch_size=40,
                   schedule=lambda t: 0.5 ** t)
    assert h.lr == pytest.approx([0.1 * 0.5**2, 0.1 * 0.5**5, 0.1 * 0.5**8, 0.1 * 0.5**11])


def test_progress_bar_shows_batches_and_metrics(capsys):
    X, T, _ = _blobs()
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    ffnn.train(net, X, T, loss="cross_entropy", epochs=2, validation=0.25, progress=True, seed=0)
    err = capsys.readouterr()
    text = err.err + err.out
    assert "batch" in text and "epoch 2" in text and "val_accuracy" in text


def test_digits_64_32_10_reaches_97_percent():
    """The README's example: a 64-32-10 relu/softmax network on scikit-learn's digits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(digits.data / 16.0, digits.target, test_size=0.25,
                                                        random_state=0, stratify=digits.target)
    net = ffnn.Network([64, 64, 32, 10], "relu", "softmax", seed=0)
    ffnn.train(net, X_train, np.eye(10)[y_train], loss="cross_entropy", optimizer=ffnn.Adam(0.003),
               epochs=40, batch_size=32, validation=0.1, early_stopping=8, seed=0)
    assert np.mean(net.predict(X_test).argmax(axis=1) == y_test) >= 0.97
