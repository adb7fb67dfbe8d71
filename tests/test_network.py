"""The core math, proved three ways: Gashler's per-weight path sum, independent autodiff packages,
and the derivations' hand-worked cases — plus finite differences in test_gradcheck.py."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ffnn

from .conftest import to_np
from .reference import autodiff, gashler

RTOL = 1e-9


def _data(net, n, loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, net.sizes[0]))
    k = net.sizes[-1]
    if loss == "cross_entropy":
        T = np.eye(k)[rng.integers(0, k, size=n)]
    elif loss == "binary_cross_entropy":
        T = rng.integers(0, 2, size=(n, k)).astype(float)
    else:
        T = rng.normal(size=(n, k))
    return X, T


# --- Gashler's explicit formula (step 19) ---------------------------------------------------------

@pytest.mark.parametrize("acts_, loss", [
    (["sigmoid", "sigmoid", "sigmoid"], "half_sse"),
    (["tanh", "elu", "identity"], "sse"),
    (["softplus", "tanh", "sigmoid"], "mse"),
])
def test_against_gashlers_path_sum(acts_, loss, xp):
    sizes = [3, 3, 2, 2]
    net = ffnn.Network(sizes, acts_[:-1], acts_[-1], seed=7, xp=xp)
    net.biases[1][...] = xp.asarray([0.1, -0.2, 0.3])  # non-zero biases exercise ∂J/∂b too
    X, T = _data(net, 3, loss)
    J, g = net.loss_and_gradients(xp.asarray(X), xp.asarray(T), loss)
    w, b = gashler.from_network(net)
    names = [None] + list(acts_)
    for l, W in net.weights.items():
        for k in range(W.shape[0]):
            for j in range(W.shape[1]):
                ref = gashler.weight_gradient(w, b, names, X, T, loss, l, j, k)
                assert float(g.weights[l][k, j]) == pytest.approx(ref, rel=RTOL, abs=1e-15)
        for j in range(W.shape[1]):
            assert float(g.biases[l][j]) == pytest.approx(gashler.bias_gradient(w, b, names, X, T, loss, l, j),
                                                          rel=RTOL, abs=1e-15)
    for n in range(X.shape[0]):
        for k in range(X.shape[1]):
            ref = gashler.input_gradient(w, b, names, X[n], T[n], loss, X.shape[0], k)
            assert float(g.inputs[n, k]) == pytest.approx(ref, rel=RTOL, abs=1e-15)


def test_gashlers_five_layer_network_weight_173():
    """Gashler's own example: 5 layers, the weight into layer 1, node 7, from input node 3."""
    net = ffnn.Network([4, 8, 3, 3, 2, 2], "sigmoid", "sigmoid", seed=2)
    X, T = _data(net, 2, "half_sse")
    _, g = net.loss_and_gradients(X, T, "half_sse")
    w, b = gashler.from_network(net)
    names = [None] + ["sigmoid"] * 5
    ref = gashler.weight_gradient(w, b, names, X, T, "half_sse", 1, 7, 3)
    assert g.weights[1][3, 7] == pytest.approx(ref, rel=RTOL)
    # and Gashler's step 24: the gradient is −e_17 y_03, with e = −δ
    assert g.weights[1][3, 7] == pytest.approx(float(np.sum(g.deltas[1][:, 7] * X[:, 3])), rel=1e-14)


# --- independent automatic differentiation ---------------------------------------------------------

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu", "identity"]
PAIRS = [("identity", "half_sse"), ("identity", "sse"), ("identity", "mse"), ("sigmoid", "mse"),
         ("tanh", "sse"), ("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"),
         ("softmax", "mse"), ("softplus", "half_sse")]


def _compare(net, X, T, loss, reference, xp=np):
    J, g = net.loss_and_gradients(xp.asarray(X), xp.asarray(T), loss)
    Ws = [to_np(W) for W in net.weights]
    bs = [to_np(b) for b in net.biases]
    names = [a.name for a in net.activations]
    J_ref, dW, db, dX = reference(Ws, bs, names, loss, X, T)
    assert J == pytest.approx(float(J_ref), rel=RTOL)
    for l in range(1, net.n_layers + 1):
        np.testing.assert_allclose(to_np(g.weights[l]), dW[l - 1], rtol=RTOL, atol=1e-13)
        np.testing.assert_allclose(to_np(g.biases[l]), db[l - 1], rtol=RTOL, atol=1e-13)
    np.testing.assert_allclose(to_np(g.inputs), dX, rtol=RTOL, atol=1e-13)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 6), min_size=2, max_size=5),
       hidden=st.data(), pair=st.sampled_from(PAIRS), n=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_against_autograd_on_random_architectures(sizes, hidden, pair, n, seed):
    out, loss = pair
    if out == "softmax" and sizes[-1] == 1:
        sizes = sizes[:-1] + [2]
    h = [hidden.draw(st.sampled_from(HIDDEN)) for _ in sizes[1:-1]]
    net = ffnn.Network(sizes, h, out, seed=seed)
    for b in net.biases:
        b[...] = np.random.default_rng(seed).normal(size=b.shape) * 0.3
    X, T = _data(net, n, loss, seed)
    X += 0.01  # keeps relu's net inputs off the kink at exactly 0
    _compare(net, X, T, loss, autodiff.autograd_gradients)


@pytest.mark.parametrize("out,loss", PAIRS)
def test_against_torch(out, loss):
    pytest.importorskip("torch")
    net = ffnn.Network([5, 7, 4, 3], ["tanh", "gelu"], out, seed=11)
    X, T = _data(net, 9, loss)
    _compare(net, X, T, loss, autodiff.torch_gradients)


@pytest.mark.parametrize("out,loss", PAIRS)
def test_array_api_strict_matches_numpy(out, loss, xp):
    """The same code on another namespace gives the same numbers (CI runs every xp test on both)."""
    net = ffnn.Network([4, 6, 3], ["elu"], out, seed=5, xp=xp)
    X, T = _data(net, 5, loss)
    _compare(net, X, T, loss, autodiff.autograd_gradients, xp)


# --- the derivations' hand-worked cases ------------------------------------------------------------------

def test_kolar_mcculloch_one_input_two_hidden_one_output():
    """Kolar and McCulloch: x → (Z₁⁽²⁾, Z₂⁽²⁾) → Z₁⁽³⁾ = f, L = (y − f)², g^L the identity."""
    w1 = np.array([[0.4, -0.7]])     # their w_11^(1), w_21^(1): input → hidden
    b1 = np.array([0.1, 0.2])
    w2 = np.array([[0.3], [-0.5]])   # their w_11^(2), w_12^(2): hidden → output
    b2 = np.array([0.05])
    x, y = 1.5, 0.8
    g = math.tanh
    net = ffnn.Network([1, 2, 1], "tanh", "identity", seed=0)
    net.weights[1][...] = w1
    net.biases[1][...] = b1
    net.weights[2][...] = w2
    net.biases[2][...] = b2
    _, grads = net.loss_and_gradients(np.array([[x]]), np.array([[y]]), "sse")
    z2 = [b1[0] + w1[0, 0] * x, b1[1] + w1[0, 1] * x]
    a2 = [g(v) for v in z2]
    f = b2[0] + w2[0, 0] * a2[0] + w2[1, 0] * a2[1]
    d3 = -2 * (y - f) * 1.0                                  # δ₁⁽³⁾ = [−2(y − f)][(g^L)′]
    assert grads.deltas[2][0, 0] == pytest.approx(d3, rel=1e-14)
    assert grads.weights[2][0, 0] == pytest.approx(d3 * a2[0], rel=1e-14)   # ∂L/∂w₁₁⁽²⁾ = δ₁⁽³⁾a₁⁽²⁾
    assert grads.weights[2][1, 0] == pytest.approx(d3 * a2[1], rel=1e-14)   # ∂L/∂w₁₂⁽²⁾ = δ₁⁽³⁾a₂⁽²⁾
    assert grads.biases[2][0] == pytest.approx(d3, rel=1e-14)               # ∂L/∂b₁⁽²⁾ = δ₁⁽³⁾
    d22 = d3 * w2[1, 0] * (1 - math.tanh(z2[1]) ** 2)        # δ₂⁽²⁾ = δ₁⁽³⁾w₁₂⁽²⁾g′(Z₂⁽²⁾)
    assert grads.deltas[1][0, 1] == pytest.approx(d22, rel=1e-14)
    assert grads.weights[1][0, 1] == pytest.approx(d22 * x, rel=1e-14)      # ∂L/∂w₂₁⁽¹⁾ = δ₂⁽²⁾a₁⁽¹⁾
    assert grads.biases[1][1] == pytest.approx(d22, rel=1e-14)


def test_xing_chaos_single_layer_update():
    """Xing Chao: o = f(wx − b), e = (t − o)², Δw = −2η(o − t)f′x (their b is minus ours)."""
    w, b_theirs, x, t, eta = 0.7, 0.2, 1.3, 0.1, 0.5
    net = ffnn.Network([1, 1], output="sigmoid", seed=0)
    net.weights[1][...] = w
    net.biases[1][...] = -b_theirs
    _, g = net.loss_and_gradients(np.array([[x]]), np.array([[t]]), "sse")
    o = 1 / (1 + math.exp(-(w * x - b_theirs)))
    fprime = o * (1 - o)
    assert -eta * g.weights[1][0, 0] == pytest.approx(-2 * eta * (o - t) * fprime * x, rel=1e-14)


def test_sheptunovs_output_and_inner_deltas():
    """Sheptunov: δ_j = (o_j − t_j)o_j(1 − o_j) at the output, (Σ_ℓ w_jℓ δ_ℓ)o_j(1 − o_j) inside."""
    net = ffnn.Network([3, 4, 2], "sigmoid", "sigmoid", seed=4)
    X, T = _data(net, 5, "half_sse")
    tr = net.forward(X)
    g = net.backward(tr, T, "half_sse")
    o = tr.a[2]
    np.testing.assert_allclose(g.deltas[2], (o - T) * o * (1 - o), rtol=1e-14)
    h = tr.a[1]
    np.testing.assert_allclose(g.deltas[1], (g.deltas[2] @ net.weights[2].T) * h * (1 - h), rtol=1e-14)
    np.testing.assert_allclose(g.weights[2], np.einsum("ni,nj->ij", h, g.deltas[2]), rtol=1e-14)  # δ_j o_i


# --- the API ---------------------------------------------------------------------------------------

def test_shapes_trace_and_predict(xp):
    net = ffnn.Network([4, 5, 3, 2], ["relu", "tanh"], "softmax", seed=0, xp=xp)
    assert [tuple(W.shape) for W in net.weights] == [(4, 5), (5, 3), (3, 2)]
    assert [tuple(b.shape) for b in net.biases] == [(5,), (3,), (2,)]
    assert net.weights[-1] is net.weights[3]
    X = xp.asarray(np.random.default_rng(0).normal(size=(6, 4)))
    tr = net.forward(X)
    assert len(tr.a) == 4 and len(tr.z) == 3 and tr.a[0] is not None
    np.testing.assert_allclose(to_np(tr.a[1]), np.maximum(to_np(tr.z[1]), 0))
    np.testing.assert_allclose(to_np(net.predict(X)), to_np(tr.output), rtol=1e-15)
    g = net.backward(tr, xp.asarray(np.eye(2)[[0, 1, 0, 1, 0, 1]]), "cross_entropy")
    assert [tuple(d.shape) for d in g.deltas] == [(6, 5), (6, 3), (6, 2)]
    assert tuple(g.inputs.shape) == (6, 4)
    with pytest.raises(IndexError, match="layer 0 is the input"):
        net.weights[0]
    with pytest.raises(IndexError, match="numbered 1..3"):
        net.weights[4]


def test_weights_assignable_in_place_and_checked():
    net = ffnn.Network([2, 3, 1], seed=0)
    net.weights[1][0, 0] = 5.0
    assert net.predict(np.array([[1.0, 0.0]])).shape == (1, 1)
    assert net.weights[1][0, 0] == 5.0
    net.weights[2] = np.ones((3, 1))
    with pytest.raises(ValueError, match=r"weights\[2\] must have shape \(3, 1\)"):
        net.weights[2] = np.ones((2, 1))
    with pytest.raises(TypeError, match="dtype"):
        net.weights[2] = np.ones((3, 1), dtype=np.float32)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_kept_end_to_end(dtype, xp):
    net = ffnn.Network([3, 4, 2], "tanh", "softmax", dtype=dtype, seed=0, xp=xp)
    X = xp.asarray(np.random.default_rng(0).normal(size=(5, 3)))   # float64 data
    T = xp.asarray(np.eye(2)[[0, 1, 1, 0, 1]])
    J, g = net.loss_and_gradients(X, T, "cross_entropy")
    want = getattr(xp, dtype)
    assert all(p.dtype == want for p in net.parameters())
    assert all(d.dtype == want for d in list(g.weights) + list(g.biases) + list(g.deltas) + [g.inputs])
    assert net.predict(X).dtype == want


def test_output_delta_of_custom_loss_goes_through_general_path():
    cube = ffnn.Loss("quartic", lambda A, T: np.sum((A - T) ** 4), lambda A, T: 4 * (A - T) ** 3)
    net = ffnn.Network([3, 4, 2], "tanh", "sigmoid", seed=0)
    X, T = _data(net, 4, "mse")
    assert ffnn.gradcheck(net, X, T, cube).passed


def test_user_activation_in_a_network():
    cube = ffnn.Activation("softsign", lambda z: z / (1 + np.abs(z)), lambda z: 1 / (1 + np.abs(z)) ** 2)
    net = ffnn.Network([3, 4, 2], [cube], "identity", seed=0)
    X, T = _data(net, 4, "mse")
    assert ffnn.gradcheck(net, X, T, "mse").passed


def test_copy_and_to_are_independent(xp):
    net = ffnn.Network([2, 3, 1], seed=0)
    c = net.copy()
    c.weights[1][0, 0] += 1
    assert net.weights[1][0, 0] != c.weights[1][0, 0]
    moved = net.to(xp, "float32")
    assert moved.weights[1].dtype == xp.float32 and net.weights[1].dtype == np.float64


def test_pickle_roundtrip():
    import pickle

    net = ffnn.Network([2, 3, 2], ["leaky_relu(slope=0.2)"], "softmax", seed=0)
    back = pickle.loads(pickle.dumps(net))
    X = np.array([[0.5, -1.0]])
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert back.activations == net.activations


# --- bad input -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(sizes=[3, 0, 1]), ValueError, r"sizes\[1\] must be a positive integer, got 0"),
    (dict(sizes=[3, -2, 1]), ValueError, "positive integer"),
    (dict(sizes=[3]), ValueError, "at least an input and an output"),
    (dict(sizes=[3, 2.5, 1]), ValueError, r"sizes\[1\] must be a positive integer, got 2.5"),
    (dict(sizes=[3, 4, 1], activation="swish"), ValueError, "unknown activation 'swish'; known activations:"),
    (dict(sizes=[3, 4, 1], output="nope"), ValueError, "unknown activation 'nope'"),
    (dict(sizes=[3, 4, 1], activation="softmax"), ValueError, "softmax cannot be used on hidden layer 1"),
    (dict(sizes=[3, 4, 4, 1], activation=["relu"]), ValueError, "1 entries; the network has 2 hidden layers"),
    (dict(sizes=[3, 4, 1], dtype="float16"), TypeError, "dtype must be float32 or float64"),
    (dict(sizes=[3, 4, 1], dtype="int32"), TypeError, "dtype must be float32 or float64"),
    (dict(sizes=[3, 4, 1], init="xavier"), ValueError, "unknown init 'xavier'"),
])
def test_bad_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ffnn.Network(**kwargs)


def test_bad_data_is_named_and_changes_nothing(xp):
    net = ffnn.Network([4, 3, 2], "tanh", "softmax", seed=0, xp=xp)
    before = [to_np(p).copy() for p in net.parameters()]
    good_X = np.zeros((3, 4))
    T = np.eye(2)[[0, 1, 0]]
    cases = [
        (np.zeros((3, 5)), T, ValueError, "X has 5 features; the network expects 4"),
        (np.zeros(4), T, ValueError, "X must be 2-D"),
        (np.array([[0, 1, np.nan, 0]] * 3, dtype=float), T, ValueError, "X contains NaN or infinite"),
        (np.array([[0, 1, np.inf, 0]] * 3, dtype=float), T, ValueError, "X contains NaN or infinite"),
        (good_X, np.zeros((3, 3)), ValueError, "T has 3 columns; the output layer has 2"),
        (good_X, np.eye(2)[[0, 1]], ValueError, "X has 3 samples but T has 2"),
        (good_X, np.array([[np.nan, 1]] * 3), ValueError, "T contains NaN"),
        (np.array([["a"] * 4] * 3), T, TypeError, "X must hold numbers"),
    ]
    for X, TT, exc, match in cases:
        with pytest.raises(exc, match=match):
            net.loss_and_gradients(X, TT, "cross_entropy")
    with pytest.raises(ValueError, match="unknown loss"):
        net.loss_and_gradients(good_X, T, "focal")
    with pytest.raises(ValueError, match="X has 5 features"):
        net.predict(np.zeros((1, 5)))
    assert all(np.array_equal(a, to_np(b)) for a, b in zip(before, net.parameters()))


def test_one_dimensional_target_for_single_output():
    net = ffnn.Network([2, 3, 1], seed=0)
    J1, _ = net.loss_and_gradients(np.ones((4, 2)), np.arange(4.0), "mse")
    J2, _ = net.loss_and_gradients(np.ones((4, 2)), np.arange(4.0)[:, None], "mse")
    assert J1 == J2


def test_sample_weight_equals_repetition():
    net = ffnn.Network([3, 4, 2], "tanh", "softmax", seed=1)
    X, T = _data(net, 4, "cross_entropy")
    w = np.array([1, 3, 0, 2])
    J1, g1 = net.loss_and_gradients(X, T, "cross_entropy", sample_weight=w)
    rep = np.repeat(np.arange(4), w)
    J2, g2 = net.loss_and_gradients(X[rep], T[rep], "cross_entropy")
    assert J1 == pytest.approx(J2, rel=1e-13)
    for l in (1, 2):
        np.testing.assert_allclose(g1.weights[l], g2.weights[l], rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="non-negative"):
        net.loss_and_gradients(X, T, "cross_entropy", sample_weight=-np.ones(4))
    with pytest.raises(ValueError, match="sample_weight has 3 entries for 4 samples"):
        net.loss_and_gradients(X, T, "cross_entropy", sample_weight=np.ones(3))


def test_import_ffnn_needs_only_numpy_and_array_api_compat():
    import subprocess
    import sys

    code = ("import sys, ffnn; heavy = [m for m in ('sklearn', 'scipy', 'matplotlib', 'safetensors', 'tqdm', "
            "'torch', 'autograd') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the public core: checks, then forward/backward on checked arrays; a network from arrays ---------

def test_check_then_run_on_checked_arrays_gives_the_public_results():
    net = ffnn.Network([3, 5, 2], "tanh", "softmax", seed=0)
    rng = np.random.default_rng(0)
    X, T = rng.normal(size=(6, 3)), np.eye(2)[rng.integers(0, 2, 6)]
    w = rng.uniform(0.5, 2, 6)
    Xc, Tc, wc = net.check_inputs(X.tolist()), net.check_targets(T, 6), net.check_sample_weight(w, 6)
    trace = net.forward(Xc, checked=True)
    g = net.backward(trace, Tc, "cross_entropy", sample_weight=wc, checked=True)
    J, g2 = net.loss_and_gradients(X, T, "cross_entropy", sample_weight=w)
    assert float(net.trace_loss(trace, Tc, ffnn.losses.get_loss("cross_entropy"), wc)) == J
    for l in (1, 2):
        np.testing.assert_array_equal(g.weights[l], g2.weights[l])
    np.testing.assert_array_equal(net.predict(Xc, checked=True), net.predict(X))
    with pytest.raises(ValueError, match="X has 6 samples but T has 5"):
        net.check_targets(T[:5], 6)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        net.check_sample_weight(-w, 6)


def test_from_parameters_builds_without_a_random_draw():
    rng = np.random.default_rng(1)
    Ws = [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)]
    bs = [rng.normal(size=4).astype(np.float32), rng.normal(size=2).astype(np.float32)]
    net = ffnn.Network.from_parameters(Ws, bs, ["relu", "softmax"])
    assert net.sizes == (3, 4, 2) and net.dtype == "float32" and net.weights[1].dtype == np.float32
    np.testing.assert_array_equal(net.weights[2], Ws[1])
    X = rng.normal(size=(5, 3)).astype(np.float32)
    z = np.maximum(X @ Ws[0] + bs[0], 0) @ Ws[1] + bs[1]
    e = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(net.predict(X), e / e.sum(1, keepdims=True), rtol=1e-6)
    Ws[0][0, 0] = 99.0  # copied, not shared
    assert net.weights[1][0, 0] != 99.0
    assert ffnn.Network.from_parameters(Ws, bs, ["relu", "softmax"], dtype="float64").dtype == "float64"


@pytest.mark.parametrize("weights,biases,acts,match", [
    ([np.zeros((3, 4)), np.zeros((5, 2))], [np.zeros(4), np.zeros(2)], ["relu", "identity"], r"W\[2\] has 5 rows; layer 1 has 4"),
    ([np.zeros((3, 4))], [np.zeros(3)], ["identity"], r"b\[1\] must have shape \(4,\)"),
    ([np.zeros((3, 4))], [np.zeros(4)], ["identity", "relu"], "one per layer"),
    ([np.full((3, 4), np.nan)], [np.zeros(4)], ["identity"], r"W\[1\] must hold finite numbers"),
    ([np.zeros(3)], [np.zeros(3)], ["identity"], r"W\[1\] must be 2-D"),
    ([np.zeros((3, 4)), np.zeros((4, 2))], [np.zeros(4), np.zeros(2)], ["softmax", "identity"], "output layer only"),
    ([np.zeros((3, 4))], [np.zeros(4)], ["swish"], "unknown activation 'swish'"),
])
def test_from_parameters_names_what_is_wrong(weights, biases, acts, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ffnn.Network.from_parameters(weights, biases, acts)
