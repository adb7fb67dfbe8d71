"""Models entering ffnn from scikit-learn and PyTorch, and going back: the round trips reproduce the
predictions exactly; ffnn's own predictions agree to rounding."""

import subprocess
import sys

import numpy as np
import pytest

import ffnn
from ffnn.export import ConversionError

pytestmark = pytest.mark.filterwarnings("ignore:Stochastic Optimizer:UserWarning")


def test_import_ffnn_loads_no_converter_dependency():
    code = ("import sys, ffnn; ffnn.export_onnx; ffnn.from_torch; ffnn.Network.to_torch; "
            "ffnn.export.register_skl2onnx; "
            "print([m for m in ('onnx', 'onnxruntime', 'skl2onnx', 'torch', 'sklearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- scikit-learn ---------------------------------------------------------------------------------------

def _fitted(kind, dtype=np.float64):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4)).astype(dtype)
    codes = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(90, 3)), axis=1)
    if kind == "regressor":
        sk = MLPRegressor(hidden_layer_sizes=(7, 5), activation="tanh", max_iter=30, random_state=0)
        return sk.fit(X, X[:, 0]), X
    if kind == "regressor2":
        return MLPRegressor(hidden_layer_sizes=(6,), activation="identity", max_iter=30, random_state=0).fit(
            X, X[:, :2]), X
    y = {"multiclass": np.array(["x", "y", "z"])[codes], "binary": codes == 0,
         "multilabel": np.c_[codes == 0, X[:, 3] > 0, codes == 2]}[kind]
    act = {"multiclass": "relu", "binary": "logistic", "multilabel": "tanh"}[kind]
    return MLPClassifier((6,), activation=act, max_iter=30, random_state=0).fit(X, y), X


KINDS = ["multiclass", "binary", "multilabel", "regressor", "regressor2"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", KINDS)
def test_sklearn_to_ffnn_to_sklearn(kind, dtype):
    sk, X = _fitted(kind, dtype)
    est = ffnn.from_sklearn(sk, estimator=True)
    assert type(est).__module__ == "ffnn.sklearn.estimators" and est.network_.dtype == np.dtype(dtype).name
    back = ffnn.to_sklearn(est)
    assert type(back) is type(sk)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    if hasattr(sk, "predict_proba"):
        np.testing.assert_array_equal(back.predict_proba(X), sk.predict_proba(X))  # the round trip: exact
        np.testing.assert_allclose(est.predict_proba(X), sk.predict_proba(X), rtol=tol, atol=tol)
        np.testing.assert_array_equal(est.classes_, sk.classes_)
    np.testing.assert_array_equal(back.predict(X), sk.predict(X))
    if kind.startswith("regressor"):
        np.testing.assert_allclose(est.predict(X), sk.predict(X), rtol=tol, atol=tol)
        assert est.predict(X).shape == sk.predict(X).shape
    else:
        assert np.mean(est.predict(X) == sk.predict(X)) > 0.98
    assert est.n_iter_ == sk.n_iter_ and est.loss_curve_ == sk.loss_curve_
    net = ffnn.from_sklearn(sk)
    for W, coef in zip(net.weights, sk.coefs_):
        np.testing.assert_array_equal(W, coef)


def test_ffnn_estimator_to_sklearn_and_back_keeps_the_network():
    from ffnn.sklearn import MLPClassifier

    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    est = MLPClassifier((5, 4), activation="logistic", solver="adamw", l1=1e-4, max_iter=20, random_state=0)
    y = np.array(["p", "q", "r"])[rng.integers(0, 3, 60)]
    est.fit(X, y)
    sk = ffnn.to_sklearn(est)
    assert sk.solver == "adam" and sk.activation == "logistic" and sk.hidden_layer_sizes == (5, 4)
    again = ffnn.from_sklearn(sk, estimator=True)
    for a, b in zip(again.network_.parameters(), est.network_.parameters()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(again.predict_proba(X), est.predict_proba(X))
    # the converted estimator is an ordinary estimator: it refits
    from sklearn.base import clone

    clone(again).set_params(max_iter=3).fit(X, y)


def test_network_to_sklearn_with_classes():
    net = ffnn.Network([3, 4, 3], "relu", "softmax", seed=0)
    X = np.random.default_rng(0).normal(size=(20, 3))
    sk = ffnn.to_sklearn(net, classes=["a", "b", "c"])
    np.testing.assert_allclose(sk.predict_proba(X), net.predict(X), rtol=1e-12)
    reg = ffnn.to_sklearn(ffnn.Network([3, 2, 1], "tanh", "identity", seed=0))
    assert reg.predict(X).shape == (20,)


def test_what_scikit_learn_cannot_represent_is_named():
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X = np.random.default_rng(0).normal(size=(30, 2))
    poisson = MLPRegressor(loss="poisson", hidden_layer_sizes=(3,), max_iter=5, random_state=0).fit(X, np.exp(X[:, 0]))
    with pytest.raises(ConversionError, match="out_activation_='exp' has no ffnn equivalent"):
        ffnn.from_sklearn(poisson)
    with pytest.raises(ConversionError, match="not fitted"):
        ffnn.from_sklearn(MLPClassifier())
    with pytest.raises(ConversionError, match="needs a fitted sklearn.neural_network"):
        ffnn.from_sklearn(ffnn.Network([2, 1], seed=0))
    with pytest.raises(ConversionError, match="one activation for all hidden layers; this network has relu, tanh"):
        ffnn.to_sklearn(ffnn.Network([2, 3, 3, 1], ["relu", "tanh"], "identity", seed=0))
    with pytest.raises(ConversionError, match="hidden activation 'gelu' has no scikit-learn equivalent"):
        ffnn.to_sklearn(ffnn.Network([2, 3, 1], "gelu", "identity", seed=0))
    with pytest.raises(ConversionError, match="for 2 classes has 1 logistic output unit; this network has 2 softmax"):
        ffnn.to_sklearn(ffnn.Network([2, 3, 2], "relu", "softmax", seed=0), classes=[0, 1])
    with pytest.raises(ConversionError, match="identity output; this network's is 'sigmoid'"):
        ffnn.to_sklearn(ffnn.Network([2, 3, 1], "relu", "sigmoid", seed=0))


# --- PyTorch --------------------------------------------------------------------------------------------

def _torch():
    """torch, or a skip: PyTorch is optional."""
    return pytest.importorskip("torch")


def _module(torch, dtype):
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 8), nn.LeakyReLU(0.2), nn.Linear(8, 8), nn.ELU(0.5), nn.Dropout(0.3),
        nn.Sequential(nn.Linear(8, 7), nn.GELU(approximate="tanh")), nn.Linear(7, 7), nn.Softplus(),
        nn.Linear(7, 6), nn.Sigmoid(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 5),
        nn.Identity(), nn.Linear(5, 4, bias=False), nn.Softmax(dim=-1)).to(dtype).eval()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_torch_to_ffnn_to_torch(dtype):
    torch = _torch()
    module = _module(torch, getattr(torch, dtype))
    net = ffnn.from_torch(module)
    assert [a.name for a in net.activations] == ["leaky_relu(slope=0.2)", "elu(alpha=0.5)", "gelu", "softplus",
                                                 "sigmoid", "tanh", "relu", "identity", "softmax"]
    assert net.dtype == dtype
    X = np.random.default_rng(0).normal(size=(40, 5)).astype(dtype) * 2
    with torch.no_grad():
        want = module(torch.from_numpy(X)).numpy()
        back = net.to_torch()
        again = back(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(again, want)  # the round trip: exact
    tol = 1e-6 if dtype == "float32" else 1e-12
    assert np.max(np.abs(net.predict(X) - want)) <= tol * np.max(np.abs(want))
    twice = ffnn.from_torch(back)
    for a, b in zip(twice.parameters(), net.parameters()):
        np.testing.assert_array_equal(a, b)


def test_to_torch_draws_no_random_numbers_and_converts_every_built_in():
    torch = _torch()
    state = torch.random.get_rng_state()
    net = ffnn.Network([3, 4, 4, 4, 2], ["elu", "leaky_relu", "identity"], "sigmoid", seed=0)
    module = net.to_torch()
    assert torch.equal(state, torch.random.get_rng_state())
    assert [type(m).__name__ for m in module] == ["Linear", "ELU", "Linear", "LeakyReLU", "Linear", "Linear",
                                                  "Sigmoid"]
    assert module[3].negative_slope == 0.01 and not module.training
    X = np.random.default_rng(0).normal(size=(10, 3))
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(X)).numpy(), net.predict(X), rtol=1e-12)


def test_what_torch_conversion_cannot_represent_is_named():
    _torch()
    from torch import nn

    from ffnn.activations import Activation

    cases = [
        (nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 1)), r"module 1 \(GELU\).*uses erf"),
        (nn.Sequential(nn.Linear(2, 3), nn.SiLU()), r"module 1 \(SiLU\): SiLU is not supported"),
        (nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Tanh()), r"module 2 \(Tanh\) follows another activation"),
        (nn.Sequential(nn.ReLU(), nn.Linear(2, 3)), "comes before the first nn.Linear"),
        (nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=-1), nn.Linear(3, 1)), "softmax on hidden layer 1"),
        (nn.Sequential(nn.Linear(2, 3), nn.Softplus(beta=2.0)), r"nn.Softplus\(beta=2.0"),
        (nn.Sequential(nn.Linear(2, 3).half()), "dtype torch.float16"),
        (nn.Sequential(nn.Conv1d(1, 1, 1)), r"Conv1d is not supported"),
        ("not a module", "needs a torch.nn.Sequential"),
    ]
    for module, message in cases:
        with pytest.raises(ConversionError, match=message):
            ffnn.from_torch(module)
    custom = ffnn.Network([2, 3, 1], [Activation("sq", lambda z: z * z, lambda z: 2 * z)], "identity", seed=0)
    with pytest.raises(ConversionError, match=r"activation 'sq' \(layer 1\)"):
        custom.to_torch()
