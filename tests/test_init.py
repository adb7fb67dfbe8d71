"""ffnn.init: each initialiser's range or spread against its formula, and how a layer's name is chosen."""

import math

import numpy as np
import pytest

import ffnn
from ffnn.init import INITIALIZERS, draw_weights, resolve_init

# r of U(−r, r) and s of N(0, s²), written out for fan_in = 7, fan_out = 5.
FAN_IN, FAN_OUT = 7, 5
SCALES = {
    "glorot_uniform": math.sqrt(6 / 12), "glorot_normal": math.sqrt(2 / 12),
    "he_uniform": math.sqrt(6 / 7), "he_normal": math.sqrt(2 / 7),
    "lecun_uniform": math.sqrt(3 / 7), "lecun_normal": math.sqrt(1 / 7),
}


def test_the_six_names():
    assert sorted(INITIALIZERS) == sorted(SCALES)


@pytest.mark.parametrize("name", sorted(SCALES))
def test_draw_is_the_generators_draw_at_the_formulas_scale(name):
    W = draw_weights(np.random.default_rng(3), name, FAN_IN, FAN_OUT)
    rng, s = np.random.default_rng(3), SCALES[name]
    expected = rng.uniform(-s, s, size=(7, 5)) if name.endswith("uniform") else rng.normal(0.0, s, size=(7, 5))
    assert W.shape == (7, 5) and W.dtype == np.float64
    np.testing.assert_allclose(W, expected, rtol=1e-15)


@pytest.mark.parametrize("init", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal",
                                  "lecun_uniform", "lecun_normal"])
def test_initialisers_have_their_scale(init):
    net = ffnn.Network([400, 300, 10], "relu", init=init, seed=0)
    W = net.weights[1]
    fan_in, fan_out = 400, 300
    var = {"glorot": 2 / (fan_in + fan_out), "he": 2 / fan_in, "lecun": 1 / fan_in}[init.split("_")[0]]
    assert W.var() == pytest.approx(var, rel=0.03)
    if init.endswith("uniform"):
        assert np.abs(W).max() <= math.sqrt(3 * var)
    assert np.all(net.biases[1] == 0)


def test_auto_init_and_determinism():
    a = ffnn.Network([20, 30, 5], "relu", seed=42)
    b = ffnn.Network([20, 30, 5], "relu", seed=42)
    c = ffnn.Network([20, 30, 5], "relu", seed=43)
    assert all(np.array_equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not np.array_equal(a.weights[1], c.weights[1])
    assert np.abs(a.weights[1]).max() <= math.sqrt(6 / 20)          # He for relu
    s = ffnn.Network([20, 30, 5], "tanh", seed=42)
    assert np.abs(s.weights[1]).max() <= math.sqrt(6 / 50)          # Glorot otherwise
    g = np.random.default_rng(9)
    assert np.array_equal(ffnn.Network([3, 2], seed=np.random.default_rng(9)).weights[1],
                          ffnn.Network([3, 2], seed=g).weights[1])


def test_resolve_init():
    assert resolve_init("auto", ffnn.activations.get_activation("relu")) == "he_uniform"
    assert resolve_init("auto", ffnn.activations.get_activation("tanh")) == "glorot_uniform"
    mine = ffnn.Activation("mine", np.tanh, lambda z: 1 - np.tanh(z) ** 2, init="lecun_normal")
    assert resolve_init("auto", mine) == "lecun_normal"
    for family in ("glorot", "he", "lecun"):
        assert resolve_init(family, mine) == f"{family}_uniform"
    assert resolve_init("he_normal", mine) == "he_normal"
    with pytest.raises(ValueError, match="unknown init 'xavier'; known: auto, glorot_uniform"):
        resolve_init("xavier", mine)
