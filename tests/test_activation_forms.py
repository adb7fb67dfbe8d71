"""One definition per activation: every form an activation carries computes its formula, and an
activation defined in one place — here, in this test, with no other module edited — trains on the
NumPy fast path and exports to ONNX, C, PyTorch and (where it has a name there) scikit-learn.

Forms agree with the activation's array-API formula ``fn`` (and ``derivative``) on random z: NumPy and
PyTorch kernels and modules to 1e-12 in float64; onnxruntime to 1e-12 in float64 and 1e-6 in float32;
compiled C (float32) to 1e-6.
"""

import numpy as np
import pytest

import ffnn
from ffnn import activations as A
from ffnn.activations import Activation, Kernels
from ffnn.export import ConversionError
from ffnn.losses import get_loss
from ffnn.training import numpy_workspace

from .test_export_c import GCC, compile_and_run

BUILTINS = [A.identity, A.sigmoid, A.tanh, A.relu, A.leaky_relu(), A.leaky_relu(0.2), A.elu(), A.elu(0.5),
            A.softplus, A.gelu, A.softmax]
S = 6  # units per layer


def _z(dtype=np.float64, n=64, seed=0):
    """Random net inputs, with 0, tiny and moderately large ones (|z| ≤ 16: nothing saturates a form's
    own cut-offs, such as PyTorch's Softplus threshold of 20)."""
    z = 4.0 * np.random.default_rng(seed).normal(size=(n, S))
    z = np.clip(z, -16, 16)
    z[0] = [0.0, 1e-3, -1e-3, 16.0, -16.0, 0.5]
    return z.astype(dtype)


def _close(got, want, tol):
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol)


def _single_layer(act, dtype="float64"):
    """A one-layer network computing a = σ(z) with z = x (W = I, b = 0, both exact)."""
    return ffnn.Network.from_parameters([np.eye(S)], [np.zeros(S)], [act], dtype=dtype)


def _ids():
    return [a.name for a in BUILTINS]


@pytest.mark.parametrize("act", BUILTINS, ids=_ids())
def test_every_form_carried(act):
    assert act.export_form("onnx") is act.onnx_nodes is not None
    assert act.export_form("c") is act.c_code is not None
    assert act.export_form("torch") is act.torch_module is not None
    assert (act.sklearn_name is None) == (act.name not in ("identity", "sigmoid", "tanh", "relu", "softmax"))
    assert act.__doc__  # its formula
    want = {"slope"} if act.name.startswith("leaky") else {"alpha"} if act.name.startswith("elu") else set()
    assert set(act.params) == want


@pytest.mark.parametrize("act", BUILTINS, ids=_ids())
def test_numpy_kernels_agree_with_the_formula(act):
    z = _z()
    want = act.fn(z)
    if act.inplace is None:
        assert act in (A.softmax, A.softplus, A.gelu) or act.name.startswith("elu")
        return
    got = z.copy()
    act.inplace.forward(got)
    _close(got, want, 1e-12)
    g = np.ones_like(z)
    act.inplace.backward(g, want, np.empty(z.shape, dtype=bool))
    _close(g, act.derivative(z), 1e-12)


@pytest.mark.parametrize("act", BUILTINS, ids=_ids())
def test_torch_kernels_and_module_agree_with_the_formula(act):
    torch = pytest.importorskip("torch")
    z = _z()
    want = act.fn(z)
    module = act.torch_module()
    with torch.no_grad():
        got = z if module is None else module(torch.from_numpy(z)).numpy()
    _close(got, want, 1e-12)
    if act.torch_inplace is None:
        return
    t = torch.from_numpy(z.copy())
    act.torch_inplace.forward(t)
    _close(t.numpy(), want, 1e-12)
    g = torch.ones_like(t)
    act.torch_inplace.backward(g, torch.from_numpy(want), None)
    _close(g.numpy(), act.derivative(z), 1e-12)
    if module is not None:
        assert act.torch_match(module) == act  # and back


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("act", BUILTINS, ids=_ids())
def test_onnx_nodes_agree_with_the_formula(act, dtype):
    pytest.importorskip("onnx")
    from .test_export_onnx import run

    z = _z(dtype)
    out = run(ffnn.export_onnx(_single_layer(act), dtype=dtype), z)
    got = out["probabilities" if act is A.softmax else "prediction"]
    assert got.dtype == np.dtype(dtype)
    _close(got, act.fn(z.astype(np.float64)), 1e-12 if dtype == "float64" else 1e-6)


@pytest.mark.skipif(GCC is None, reason="no C compiler on this machine")
@pytest.mark.parametrize("act", BUILTINS, ids=_ids())
def test_c_expression_agrees_with_the_formula(act, tmp_path):
    z = _z(np.float32).astype(np.float64)  # the header reads float32
    got, _ = compile_and_run(ffnn.export_c(_single_layer(act)), z, tmp_path, n_out=S)
    _close(got, act.fn(z), 1e-6)


@pytest.mark.parametrize("act", [a for a in BUILTINS if a.sklearn_name is not None], ids=lambda a: a.name)
def test_sklearn_name_agrees_with_the_formula(act):
    pytest.importorskip("sklearn")
    z = _z()
    if act.hidden_ok:  # a hidden layer of scikit-learn's MLPRegressor, then the identity
        net = ffnn.Network.from_parameters([np.eye(S), np.eye(S)], [np.zeros(S), np.zeros(S)], [act, A.identity])
        got = ffnn.to_sklearn(net).predict(z)
    else:  # softmax: the output of scikit-learn's MLPClassifier
        got = ffnn.to_sklearn(_single_layer(act), classes=list(range(S))).predict_proba(z)
    _close(got, act.fn(z), 1e-12)


# --- adding an activation: one definition, here --------------------------------------------------------

def _softsign(z):
    return z / (1.0 + abs(z))


def _softsign_derivative(z):
    return 1.0 / ((1.0 + abs(z)) * (1.0 + abs(z)))


def _softsign_forward(z):  # z ← z/(1 + |z|), in place
    z /= 1.0 + np.abs(z)


def _softsign_backward(g, a, mask):  # σ′ = 1/(1 + |z|)² = (1 − |a|)²
    g *= np.square(1.0 - np.abs(a))


def _softsign_torch_forward(z):
    z.div_(z.abs().add_(1.0))


def _softsign_torch_backward(g, a, mask):
    g.mul_((1.0 - a.abs()).square_())


def _softsign_onnx(g, z):
    return g.node("Div", [z, g.node("Add", [g.const("one", 1.0), g.node("Abs", [z])])], "a")


def _softsign_c(v):
    return f"{v} / (1.0f + fabsf({v}))"


def _softsign_module():
    from torch import nn

    return nn.Softsign()


softsign = Activation(
    "softsign", _softsign, _softsign_derivative, doc="σ(z) = z/(1 + |z|); σ′(z) = 1/(1 + |z|)².",
    inplace=Kernels(_softsign_forward, _softsign_backward),
    torch_inplace=Kernels(_softsign_torch_forward, _softsign_torch_backward),
    onnx_nodes=_softsign_onnx, c_expr=_softsign_c, torch_module=_softsign_module)

# the same function without kernels: it trains through the array-namespace core
softsign_core = Activation("softsign", _softsign, _softsign_derivative)


@pytest.fixture
def registry(monkeypatch):
    """ffnn.activations.ACTIVATIONS as it was, after the test (register adds to it)."""
    monkeypatch.setattr(A, "ACTIVATIONS", dict(A.ACTIVATIONS))


def _trained(act, X, T):
    net = ffnn.Network([4, 7, 5, 2], act, "identity", seed=3)
    ffnn.train(net, X, T, loss="mse", optimizer=ffnn.SGD(0.1), epochs=3, batch_size=8, seed=0)
    return net


def test_an_activation_defined_in_one_place_trains_and_exports_everywhere(tmp_path, registry):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    T = np.c_[np.sin(X[:, 0]), X[:, 1] * X[:, 2]]

    # training: the NumPy fast path, with the activation's own kernels, gives the core's numbers
    fast = ffnn.Network([4, 7, 5, 2], softsign, "identity", seed=3)
    assert numpy_workspace.supports(fast, get_loss("mse"))
    assert not numpy_workspace.supports(ffnn.Network([4, 7, 5, 2], softsign_core, "identity"), get_loss("mse"))
    fast, core = _trained(softsign, X, T), _trained(softsign_core, X, T)
    for p, q in zip(fast.parameters(), core.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-14)
    assert not np.array_equal(fast.weights[1], ffnn.Network([4, 7, 5, 2], softsign, seed=3).weights[1])
    want = fast.predict(X)

    # ONNX, run in onnxruntime
    if _has("onnx") and _has("onnxruntime"):
        from .test_export_onnx import run

        _close(run(ffnn.export_onnx(fast), X)["prediction"], want, 1e-12)
        _close(run(ffnn.export_onnx(fast, dtype="float32"), X.astype(np.float32))["prediction"], want, 1e-5)

    # C, compiled
    if GCC is not None:
        got, _ = compile_and_run(ffnn.export_c(fast), X, tmp_path, n_out=2)
        _close(got, want, 1e-5)

    # PyTorch: the module it names; back, once ffnn knows the activation by name
    if _has("torch"):
        import torch

        module = fast.to_torch()
        assert [type(m).__name__ for m in module] == ["Linear", "Softsign", "Linear", "Softsign", "Linear"]
        with torch.no_grad():
            _close(module(torch.from_numpy(X)).numpy(), want, 1e-12)
        with pytest.raises(ConversionError, match=r"Softsign is not supported"):
            ffnn.from_torch(module)
        A.register(softsign)
        back = ffnn.from_torch(module)
        assert back.activations == (softsign, softsign, A.identity)
        _close(back.predict(X), want, 1e-12)

    # model files store it by name; registered, it loads without custom_activations
    A.register(softsign)
    ffnn.save(fast, tmp_path / "m.safetensors")
    loaded = ffnn.load(tmp_path / "m.safetensors")
    assert loaded.activations[0] is softsign
    np.testing.assert_array_equal(loaded.predict(X), want)

    # scikit-learn's MLP has no softsign: the bridge says so
    if _has("sklearn"):
        with pytest.raises(ConversionError, match="hidden activation 'softsign' has no scikit-learn equivalent"):
            ffnn.to_sklearn(fast)


def test_a_users_activation_with_a_scikit_learn_name_converts():
    pytest.importorskip("sklearn")
    mine = Activation("my_relu", lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype),
                      sklearn_name="relu")
    net = ffnn.Network([3, 5, 2], mine, "identity", seed=1)
    X = np.random.default_rng(1).normal(size=(20, 3))
    sk = ffnn.to_sklearn(net)
    assert sk.activation == "relu"
    _close(sk.predict(X), net.predict(X), 1e-12)


def test_what_an_activation_lacks_is_named():
    bare = Activation("bare", _softsign, _softsign_derivative)
    net = ffnn.Network([2, 3, 1], bare, "identity", seed=0)
    for fmt, what in (("onnx", "ONNX form"), ("c", "C form"), ("torch", "PyTorch module")):
        with pytest.raises(ConversionError, match=rf"activation 'bare' \(layer 1\) is not one of ffnn's built-in "
                                                  rf"activations \(identity, .*softmax\) and has no {what}"):
            bare.export_form(fmt, " (layer 1)")
    with pytest.raises(ConversionError, match=r"'bare' \(layer 1\)"):
        ffnn.export_c(net)
    with pytest.raises(TypeError, match="onnx_nodes must be a callable"):
        Activation("x", _softsign, _softsign_derivative, onnx_nodes="Softsign")


def test_register(registry):
    A.register(softsign, "Soft_Sign")
    assert A.get_activation("softsign") is softsign and A.get_activation("soft_sign") is softsign
    A.register(softsign)  # again: the same object, nothing changes
    with pytest.raises(ValueError, match="'relu' is already registered"):
        A.register(Activation("relu", _softsign, _softsign_derivative))
    with pytest.raises(TypeError, match="takes an ffnn.Activation"):
        A.register("softsign")


def test_losses_declare_their_output_forms():
    from ffnn import losses as L

    assert L.cross_entropy.outputs == (A.softmax,) and L.binary_cross_entropy.outputs == (A.sigmoid,)
    assert L.mse.outputs == L.sse.outputs == L.half_sse.outputs == (A.identity,)
    assert L.cross_entropy.fused(A.softmax) is not None and L.mse.fused(A.identity) is None
    assert L.mse.fast_output(A.identity) is not None and L.mse.fast_output(A.sigmoid) is None
    assert (L.mse.sklearn_name, L.cross_entropy.sklearn_name, L.sse.sklearn_name) == ("squared_error", "log_loss",
                                                                                       None)
    mine = ffnn.Loss("mine", lambda A_, T: 0.0, lambda A_, T: A_)
    assert mine.outputs == () and mine.output_form(A.identity) is None and mine.sklearn_name is None


def test_the_core_imports_no_exporter():
    import subprocess
    import sys

    code = "import sys, ffnn.network, ffnn.training; print('ffnn.export' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _has(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None
