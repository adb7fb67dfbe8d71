"""The NumPy fast path computes exactly what the array-namespace core computes."""

import numpy as np
import pytest

import ffnn
from ffnn.training import fastpath
from ffnn.losses import get_loss

CONFIGS = [("relu", "softmax", "cross_entropy"), ("tanh", "sigmoid", "binary_cross_entropy"),
           ("sigmoid", "identity", "mse"), ("identity", "identity", "half_sse"), ("relu", "identity", "sse")]


def _data(sizes, out, n=16, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0]))
    if out == "softmax":
        T = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=n)]
    elif out == "sigmoid":
        T = rng.integers(0, 2, size=(n, sizes[-1])).astype(float)
    else:
        T = rng.normal(size=(n, sizes[-1]))
    return X, T


@pytest.mark.parametrize("hidden,out,loss", CONFIGS)
def test_step_gradients_equal_the_core(hidden, out, loss):
    sizes = [6, 7, 5, 3]
    net = ffnn.Network(sizes, hidden, out, seed=1)
    for b in net.biases:
        b[...] = 0.1
    X, T = _data(sizes, out)
    assert fastpath.supports(net, get_loss(loss))
    ws = fastpath.Workspace(net, len(X))
    ws.load(X, T, np.arange(len(X)))
    J_fast = ws.step(net, get_loss(loss))
    J, g = net.loss_and_gradients(X, T, loss)
    assert J_fast == pytest.approx(J, rel=1e-13)
    for l in range(1, 4):
        np.testing.assert_allclose(ws.gW[l - 1], g.weights[l], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ws.gb[l - 1], g.biases[l], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("batch", [1, 5, 16])
@pytest.mark.parametrize("hidden,out,loss", CONFIGS)
def test_fused_sgd_step_equals_the_sgd_formula(hidden, out, loss, batch):
    sizes = [6, 7, 5, 3]
    net = ffnn.Network(sizes, hidden, out, seed=2)
    X, T = _data(sizes, out, n=batch)
    lr, l2 = 0.05, 0.01
    J, g = net.loss_and_gradients(X, T, loss)
    expected = [(1 - lr * l2) * W - lr * gW for W, gW in zip(net.weights, g.weights)]
    expected_b = [b - lr * gb for b, gb in zip(net.biases, g.biases)]
    ws = fastpath.Workspace(net, batch)
    ws.load(X, T, np.arange(batch))
    assert ws.sgd_step(net, get_loss(loss), lr, l2) == pytest.approx(J, rel=1e-13)
    for W, e in zip(net.weights, expected):
        np.testing.assert_allclose(W, e, rtol=1e-12, atol=1e-15)
    for b, e in zip(net.biases, expected_b):
        np.testing.assert_allclose(b, e, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("optimizer", [lambda: ffnn.SGD(0.05), lambda: ffnn.SGD(0.05, momentum=0.9, nesterov=True),
                                       lambda: ffnn.Adam(0.01)])
def test_training_through_either_path_gives_the_same_weights(optimizer, monkeypatch):
    sizes = [6, 16, 8, 3]
    X, T = _data(sizes, "softmax", n=100)
    fast = ffnn.Network(sizes, "relu", "softmax", seed=3)
    slow = fast.copy()
    ffnn.train(fast, X, T, loss="cross_entropy", optimizer=optimizer(), epochs=3, batch_size=16, seed=0, l2=1e-3)
    monkeypatch.setattr(fastpath, "supports", lambda *a, **k: False)
    ffnn.train(slow, X, T, loss="cross_entropy", optimizer=optimizer(), epochs=3, batch_size=16, seed=0, l2=1e-3)
    for a, b in zip(fast.parameters(), slow.parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_unsupported_configurations_use_the_core():
    net = ffnn.Network([3, 4, 2], "gelu", "softmax", seed=0)
    assert not fastpath.supports(net, get_loss("cross_entropy"))
    net = ffnn.Network([3, 4, 2], "relu", "softmax", seed=0)
    assert not fastpath.supports(net, get_loss("mse"))
    assert not fastpath.supports(net, get_loss("cross_entropy"), dropout=[0.5])
    import array_api_strict

    assert not fastpath.supports(net.to(array_api_strict), get_loss("cross_entropy"))


def test_fused_step_refuses_to_change_anything_on_divergence():
    net = ffnn.Network([2, 3, 1], "relu", "identity", seed=0)
    before = [p.copy() for p in net.parameters()]
    ws = fastpath.Workspace(net, 2)
    ws.load(np.array([[1e200, 1e200], [1.0, 2.0]]), np.array([[0.0], [1.0]]), np.arange(2))
    with np.errstate(all="ignore"):
        assert ws.sgd_step(net, get_loss("sse"), 0.1, 0.0) is None
    assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))
