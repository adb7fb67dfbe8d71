"""The NumPy fast path computes exactly what the array-namespace core computes."""

import numpy as np
import pytest

import ffnn
from ffnn.training import numpy_workspace
from ffnn.losses import get_loss

CONFIGS = [("relu", "softmax", "cross_entropy"), ("tanh", "sigmoid", "binary_cross_entropy"),
           ("sigmoid", "identity", "mse"), ("identity", "identity", "half_sse"), ("relu", "identity", "sse")]

from .conftest import network_data


def _data(sizes, out, n=16, seed=0):
    return network_data(sizes, out, n, seed)


@pytest.mark.parametrize("hidden,out,loss", CONFIGS)
def test_step_gradients_equal_the_core(hidden, out, loss):
    sizes = [6, 7, 5, 3]
    net = ffnn.Network(sizes, hidden, out, seed=1)
    for b in net.biases:
        b[...] = 0.1
    X, T = _data(sizes, out)
    assert numpy_workspace.supports(net, get_loss(loss))
    ws = numpy_workspace.Workspace(net, len(X), get_loss(loss))
    ws.load(X, T, np.arange(len(X)))
    J_fast = ws.step(net)
    J, g = net.loss_and_gradients(X, T, loss)
    assert J_fast == pytest.approx(J, rel=1e-13)
    for l in range(1, 4):
        np.testing.assert_allclose(ws.gW[l], g.weights[l], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ws.gb[l], g.biases[l], rtol=1e-12, atol=1e-15)


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
    ws = numpy_workspace.Workspace(net, batch, get_loss(loss))
    ws.load(X, T, np.arange(batch))
    assert ws.sgd_step(net, lr, l2) == pytest.approx(J, rel=1e-13)
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
    monkeypatch.setattr(numpy_workspace, "supports", lambda *a, **k: False)
    ffnn.train(slow, X, T, loss="cross_entropy", optimizer=optimizer(), epochs=3, batch_size=16, seed=0, l2=1e-3)
    for a, b in zip(fast.parameters(), slow.parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_unsupported_configurations_use_the_core():
    net = ffnn.Network([3, 4, 2], "gelu", "softmax", seed=0)
    assert not numpy_workspace.supports(net, get_loss("cross_entropy"))
    net = ffnn.Network([3, 4, 2], "relu", "softmax", seed=0)
    assert not numpy_workspace.supports(net, get_loss("mse"))
    assert not numpy_workspace.supports(net, get_loss("cross_entropy"), dropout=[0.5])
    import array_api_strict

    assert not numpy_workspace.supports(net.to(array_api_strict), get_loss("cross_entropy"))


def test_fused_step_refuses_to_change_anything_on_divergence():
    net = ffnn.Network([2, 3, 1], "relu", "identity", seed=0)
    before = [p.copy() for p in net.parameters()]
    ws = numpy_workspace.Workspace(net, 2, get_loss("sse"))
    ws.load(np.array([[1e200, 1e200], [1.0, 2.0]]), np.array([[0.0], [1.0]]), np.arange(2))
    with np.errstate(all="ignore"):
        assert ws.sgd_step(net, 0.1, 0.0) is None
    assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))


# --- the fast path asks the objects: a name never decides the math ---------------------------------

def _abs(z):
    return np.abs(z)


def _sign(z):
    return np.sign(z)


def _cube(z):
    return z * z * z / 3.0 + z


def _dcube(z):
    return z * z + 1.0


def _train_sgd(act, out="identity", loss="mse", steps_epochs=2, seed=4):
    sizes = [4, 6, 5, 2]
    X, T = _data(sizes, "softmax" if loss == "cross_entropy" else out, n=24, seed=seed)
    net = ffnn.Network(sizes, act, out, seed=seed)
    ffnn.train(net, X, T, loss=loss, optimizer=ffnn.SGD(0.1), epochs=steps_epochs, batch_size=8, seed=0)
    return net


BUILTIN_HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"]


@pytest.mark.parametrize("name", BUILTIN_HIDDEN)
def test_a_users_activation_trains_with_its_own_math_whatever_its_name(name):
    mine = ffnn.Activation(name, _abs, _sign)
    renamed = ffnn.Activation("my_abs", _abs, _sign)
    builtin = ffnn.activations.get_activation(name)
    assert mine != builtin and mine.inplace is None
    a, b, c = _train_sgd(mine), _train_sgd(renamed), _train_sgd(builtin)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)  # the name changes nothing
    assert max(float(np.max(np.abs(p - q))) for p, q in zip(a.parameters(), c.parameters())) > 1e-3
    X = np.random.default_rng(0).normal(size=(3, 4))
    h = X
    for W, bias in zip(a.weights.to_list()[:-1], a.biases.to_list()[:-1]):
        h = np.abs(h @ W + bias)
    np.testing.assert_allclose(a.predict(X), h @ a.weights[-1] + a.biases[-1], rtol=1e-12)


def test_one_sgd_step_with_a_users_relu_named_activation_is_its_own_gradient_step():
    # Written out by hand (Wichmann's matrix form) for σ = |z|, identity output, J = 1/(2N) Σ‖a − t‖².
    mine = ffnn.Activation("relu", _abs, _sign)
    net = ffnn.Network([3, 4, 2], mine, "identity", seed=7)
    X, T = _data([3, 4, 2], "identity", n=5, seed=7)
    W1, b1, W2, b2 = (p.copy() for p in net.parameters())
    z1 = X @ W1 + b1
    a1 = np.abs(z1)
    d2 = (a1 @ W2 + b2 - T) / len(X)
    d1 = (d2 @ W2.T) * np.sign(z1)
    ffnn.train(net, X, T, loss="mse", optimizer=ffnn.SGD(0.1), epochs=1, batch_size=5, shuffle=False)
    np.testing.assert_allclose(net.weights[1], W1 - 0.1 * X.T @ d1, rtol=1e-12)
    np.testing.assert_allclose(net.weights[2], W2 - 0.1 * a1.T @ d2, rtol=1e-12)
    np.testing.assert_allclose(net.biases[1], b1 - 0.1 * d1.sum(0), rtol=1e-12)


@pytest.mark.parametrize("name", ["softmax", "sigmoid", "identity"])
def test_a_users_output_activation_named_like_a_canonical_partner_is_not_fused(name):
    mine = ffnn.Activation(name, _cube, _dcube)
    renamed = ffnn.Activation("cube", _cube, _dcube)
    loss = {"softmax": "cross_entropy", "sigmoid": "binary_cross_entropy", "identity": "mse"}[name]
    sizes = [4, 5, 3]
    X = np.random.default_rng(1).normal(size=(12, 4))
    T = np.random.default_rng(2).uniform(0.1, 0.9, size=(12, 3))
    nets = []
    for act in (mine, renamed):
        net = ffnn.Network(sizes, "tanh", act, seed=1)
        with np.errstate(all="ignore"):
            J, g = net.loss_and_gradients(X, T, loss)
        nets.append((J, g))
        assert not numpy_workspace.supports(net, get_loss(loss))
    assert nets[0][0] == nets[1][0]
    for l in (1, 2):
        np.testing.assert_array_equal(nets[0][1].weights[l], nets[1][1].weights[l])


@pytest.mark.parametrize("name", ["mse", "half_sse", "sse", "cross_entropy", "binary_cross_entropy"])
def test_a_users_loss_trains_with_its_own_math_whatever_its_name(name):
    def value(A, T):
        D = A - T
        return float(np.sum(D ** 4)) / len(A)

    def gradient(A, T):
        return 4 * (A - T) ** 3 / len(A)

    mine, renamed = ffnn.Loss(name, value, gradient), ffnn.Loss("quartic", value, gradient)
    assert mine != get_loss(name) and mine.fast_output(ffnn.activations.identity) is None
    out = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}.get(name, "identity")
    a, b = _train_sgd("relu", out, mine), _train_sgd("relu", out, renamed)
    c = _train_sgd("relu", out, name)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    assert max(float(np.max(np.abs(p - q))) for p, q in zip(a.parameters(), c.parameters())) > 1e-4


FAST_HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "leaky_relu(slope=0.2)", "leaky_relu(slope=0.0)"]
FAST_OUTPUTS = [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"), ("identity", "mse"),
                ("identity", "half_sse"), ("identity", "sse")]


@pytest.mark.parametrize("hidden", FAST_HIDDEN)
@pytest.mark.parametrize("out,loss", FAST_OUTPUTS)
def test_every_builtin_gives_the_same_numbers_on_both_paths(hidden, out, loss, monkeypatch):
    sizes = [5, 7, 6, 3]
    X, T = _data(sizes, out, n=40, seed=5)
    fast = ffnn.Network(sizes, hidden, out, seed=5)
    assert numpy_workspace.supports(fast, get_loss(loss))
    slow = fast.copy()
    lr = 0.002 if loss in ("half_sse", "sse") else 0.02  # the summed losses take larger steps
    opt = lambda: ffnn.SGD(lr, momentum=0.9, nesterov=True)  # noqa: E731
    ffnn.train(fast, X, T, loss=loss, optimizer=opt(), epochs=3, batch_size=16, seed=0)
    monkeypatch.setattr(numpy_workspace, "supports", lambda *a, **k: False)
    ffnn.train(slow, X, T, loss=loss, optimizer=opt(), epochs=3, batch_size=16, seed=0)
    for a, b in zip(fast.parameters(), slow.parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)


def test_a_users_activation_with_its_own_kernels_takes_the_fast_path():
    def fwd(z):
        np.abs(z, out=z)

    def bwd(g, a, mask):  # σ′ of |z| from a alone is not possible; use sign(a) = 1 where a > 0
        np.greater(a, 0, out=mask)
        np.multiply(g, mask, out=g)

    act = ffnn.Activation("relu", ffnn.activations.relu.fn, ffnn.activations.relu.derivative,
                          inplace=ffnn.activations.Kernels(ffnn.activations.relu.inplace.forward, bwd))
    net = ffnn.Network([3, 4, 2], act, "identity", seed=0)
    assert numpy_workspace.supports(net, get_loss("mse"))
    with pytest.raises(TypeError, match="Kernels"):
        ffnn.Activation("x", _abs, _sign, inplace=(fwd, bwd))


def test_user_activations_and_losses_pickle_as_themselves():
    import pickle

    mine = ffnn.Activation("relu", _abs, _sign)
    back = pickle.loads(pickle.dumps(mine))
    assert back.fn is _abs and back != ffnn.activations.relu
    assert pickle.loads(pickle.dumps(ffnn.activations.get_activation("leaky_relu(slope=0.2)"))) == \
        ffnn.activations.leaky_relu(0.2)
