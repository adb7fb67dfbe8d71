import math

import numpy as np
import pytest

import ffnn
from ffnn import activations as A
from ffnn.activations import get_activation

from .conftest import to_np

ELEMENTWISE = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu"]


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_derivative_matches_central_difference(name, xp):
    act = get_activation(name)
    z = np.linspace(-4, 4, 81) + 0.0123  # keep off the kinks at 0
    h = 1e-5
    fd = (to_np(act(xp.asarray(z + h))) - to_np(act(xp.asarray(z - h)))) / (2 * h)
    np.testing.assert_allclose(to_np(act.derivative(xp.asarray(z))), fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_derivative_from_output_equals_derivative(name, xp):
    act = get_activation(name)
    z = xp.asarray(np.linspace(-6, 6, 25))
    np.testing.assert_allclose(to_np(act.derivative_from_output(act(z))), to_np(act.derivative(z)), rtol=1e-14)


def test_values_from_their_definitions():
    z = np.array([-3.0, -0.5, 0.0, 0.7, 2.5])
    np.testing.assert_allclose(A.sigmoid(z), 1 / (1 + np.exp(-z)), rtol=1e-15)  # Sheptunov's φ
    np.testing.assert_allclose(A.relu(z), np.maximum(z, 0))
    np.testing.assert_allclose(A.leaky_relu(0.2)(z), np.where(z > 0, z, 0.2 * z))
    np.testing.assert_allclose(A.elu(1.5)(z), np.where(z > 0, z, 1.5 * (np.exp(z) - 1)))
    np.testing.assert_allclose(A.softplus(z), np.log1p(np.exp(z)), rtol=1e-15)
    # gelu is the tanh form: 0.5 z (1 + tanh(√(2/π)(z + 0.044715 z³)))
    np.testing.assert_allclose(A.gelu(z), 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3))))


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "elu", "gelu", "tanh", "softmax"])
def test_no_overflow_for_large_inputs(name, xp):
    act = get_activation(name)
    z = xp.asarray(np.array([[-1e4, -800.0, 0.0, 800.0, 1e4]]))
    a = to_np(act(z))  # the autouse fixture turns any overflow warning into an error
    assert np.all(np.isfinite(a))
    if act.elementwise:
        assert np.all(np.isfinite(to_np(act.derivative(z))))
    if name == "sigmoid":
        assert a[0, 0] == 0.0 and a[0, -1] == 1.0


def test_softmax_vjp_is_the_full_jacobian(xp):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 4))
    g = rng.normal(size=(3, 4))
    a = to_np(A.softmax(xp.asarray(z)))
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-15)
    vjp = to_np(A.softmax.vjp(xp.asarray(z), xp.asarray(a), xp.asarray(g)))
    for n in range(3):
        jac = np.diag(a[n]) - np.outer(a[n], a[n])  # ∂a_k/∂z_j = a_k(δ_kj − a_j)
        np.testing.assert_allclose(vjp[n], g[n] @ jac, rtol=1e-13, atol=1e-15)


def test_user_activation_and_lookup_errors():
    cube = ffnn.Activation("cube", lambda z: z**3, lambda z: 3 * z**2)
    z = np.array([1.0, 2.0])
    np.testing.assert_allclose(cube(z), [1, 8])
    assert get_activation(cube) is cube
    assert get_activation("leaky_relu(slope=0.3)")(np.array([-1.0]))[0] == pytest.approx(-0.3)
    with pytest.raises(ValueError, match="unknown activation 'swish'.*known activations: .*sigmoid"):
        get_activation("swish")
    with pytest.raises(TypeError, match="name or an ffnn.Activation"):
        get_activation(3)
    with pytest.raises(TypeError, match="callables"):
        ffnn.Activation("bad", 1, 2)
    with pytest.raises(ValueError, match="slope"):
        A.leaky_relu(float("nan"))
    with pytest.raises(ValueError, match="alpha"):
        A.elu(-1)


def test_builtins_pickle_by_name():
    import pickle

    for act in (A.sigmoid, A.softmax, A.leaky_relu(0.25), A.elu(2.0)):
        back = pickle.loads(pickle.dumps(act))
        assert back == act and back.name == act.name
    assert pickle.loads(pickle.dumps(A.softmax)) is A.softmax
