"""Gradient-flow diagnostics in History, checked against the gradients computed independently
(Network.loss_and_gradients on the same batch and weights) and never changing the trained weights."""

import numpy as np
import pytest

import ffnn
from ffnn.training import numpy_workspace


def _data(n=24, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, np.eye(k)[rng.integers(0, k, n)]


@pytest.mark.parametrize("hidden,optimizer,batch", [
    ("relu", lambda: ffnn.SGD(0.1), 24),                       # fast path, fused SGD (update in the products)
    ("relu", lambda: ffnn.SGD(0.1), 6),                        # fused SGD, BLAS gemm update (small batch)
    ("tanh", lambda: ffnn.SGD(0.1, momentum=0.9), 24),         # fast path, then the optimiser
    ("gelu", lambda: ffnn.Adam(0.01), 24),                     # the array-namespace core
])
def test_last_batch_diagnostics_equal_the_independent_gradient(hidden, optimizer, batch):
    X, T = _data(n=batch)
    net = ffnn.Network([5, 8, 6, 3], hidden, "softmax", seed=1)
    start = net.copy()
    J, g = start.loss_and_gradients(X, T, "cross_entropy")  # one batch = the whole epoch: same weights
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=optimizer(), epochs=1, batch_size=batch,
                   shuffle=False)
    for l in (1, 2, 3):
        assert h.grad_norm[0][l - 1] == pytest.approx(np.linalg.norm(g.weights[l]), rel=1e-10)
        assert h.delta_mean[0][l - 1] == pytest.approx(np.mean(np.abs(g.deltas[l])), rel=1e-10)
        step = np.linalg.norm(net.weights[l] - start.weights[l]) / np.linalg.norm(start.weights[l])
        assert h.update_ratio[0][l - 1] == pytest.approx(step, rel=1e-12)
    assert len(h.dead_fraction[0]) == 2


def test_dead_relu_units_are_counted_over_the_whole_epoch():
    X, T = _data(n=40)
    X = np.abs(X)  # non-negative inputs: a unit with negative weights and bias can never activate
    net = ffnn.Network([5, 4, 4, 3], ["relu", "tanh"], "softmax", seed=0)
    net.weights[1][...] = 0.5
    net.biases[1][...] = 0.1
    net.weights[1][:, 1] = -1.0  # unit 2 of layer 1 is dead; units 1, 3, 4 are positive for every sample
    net.biases[1][1] = -1.0
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.01), epochs=2, batch_size=8, seed=0)
    assert h.dead_fraction == [[0.25, None], [0.25, None]]  # one of four relu units; tanh is never "dead"


def test_diagnostics_never_change_the_weights_and_can_be_turned_off():
    X, T = _data(n=50)
    for opt in (lambda: ffnn.SGD(0.1), lambda: ffnn.Adam(0.01)):
        a = ffnn.Network([5, 8, 3], "relu", "softmax", seed=2)
        b = a.copy()
        ha = ffnn.train(a, X, T, loss="cross_entropy", optimizer=opt(), epochs=3, batch_size=16, seed=0)
        hb = ffnn.train(b, X, T, loss="cross_entropy", optimizer=opt(), epochs=3, batch_size=16, seed=0,
                        diagnostics=False)
        for p, q in zip(a.parameters(), b.parameters()):
            np.testing.assert_array_equal(p, q)
        assert ha.loss == hb.loss and len(ha.grad_norm) == 3 and hb.grad_norm == [] and not hb.has_diagnostics


def test_diagnostics_survive_a_checkpoint_and_plot(tmp_path):
    X, T = _data(n=30)
    net = ffnn.Network([5, 6, 3], "relu", "softmax", seed=3)
    h = ffnn.train(net, X, T, loss="cross_entropy", epochs=2, batch_size=10, seed=0,
                   checkpoint=tmp_path / "c.safetensors")
    back = ffnn.History.from_dict(h.to_dict())
    assert back.grad_norm == h.grad_norm and back.dead_fraction == h.dead_fraction
    fig = h.plot(tmp_path / "h.png")
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 6
    net2 = ffnn.Network([5, 6, 3], "relu", "softmax", seed=3)
    h2 = ffnn.train(net2, X, T, loss="cross_entropy", epochs=3, batch_size=10, seed=0,
                    resume=tmp_path / "c.safetensors")
    assert h2.grad_norm[:2] == h.grad_norm and len(h2.grad_norm) == 3


def test_fast_path_still_taken_with_diagnostics(monkeypatch):
    X, T = _data(n=20)
    net = ffnn.Network([5, 6, 3], "relu", "softmax", seed=0)
    calls = []
    real = numpy_workspace.Workspace.step
    monkeypatch.setattr(numpy_workspace.Workspace, "step", lambda self, n: calls.append(1) or real(self, n))
    ffnn.train(net, X, T, loss="cross_entropy", optimizer="adam", epochs=1, batch_size=10, loop="interpreted")
    assert len(calls) == 2
