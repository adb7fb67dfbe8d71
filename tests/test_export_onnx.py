"""ONNX export, verified in onnxruntime: every exported model is run and compared with ffnn's predictions.

Errors are relative to the largest magnitude of each output, max|onnx − ffnn| / max|ffnn|: at most 1e-6
in float32 and 1e-12 in float64.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

import ffnn
from ffnn.activations import Activation

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.filterwarnings("ignore:Stochastic Optimizer:UserWarning")

TOL = {"float32": 1e-6, "float64": 1e-12}
HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "leaky_relu(slope=0.2)", "elu", "elu(alpha=0.5)",
          "softplus", "gelu"]
OUTPUTS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu(slope=0.3)", "elu(alpha=2.0)", "softplus", "gelu",
           "softmax"]


def session(model):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(model, X):
    s = session(model)
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, {"X": X})))


def rel_err(got, want):
    return float(np.max(np.abs(np.asarray(got, np.float64) - want)) / np.max(np.abs(want)))


def inputs(n_features, dtype, n=64, seed=0):
    return (2.0 * np.random.default_rng(seed).normal(size=(n, n_features))).astype(dtype)


def check_labels(label, probabilities):
    """label is the argmax, wherever the two largest probabilities are not within rounding of each other."""
    top2 = np.sort(probabilities, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(label[clear], np.argmax(probabilities, axis=1)[clear])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_every_hidden_activation(hidden, dtype):
    net = ffnn.Network([5, 9, 7, 3], hidden, "identity", seed=1, dtype=dtype)
    for b in net.biases:  # nonzero biases, so that every branch of every activation is reached
        b += np.float32(0.3)
    X = inputs(5, dtype)
    out = run(ffnn.export_onnx(net), X)
    assert list(out) == ["prediction"] and out["prediction"].dtype == np.dtype(dtype)
    assert rel_err(out["prediction"], net.predict(X)) <= TOL[dtype]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", OUTPUTS)
def test_every_output_activation(output, dtype):
    net = ffnn.Network([4, 8, 6, 3], ["tanh", "elu(alpha=0.7)"], output, seed=2, dtype=dtype)
    X = inputs(4, dtype)
    want = net.predict(X)
    out = run(ffnn.export_onnx(net), X)
    if output == "softmax":  # a classifier: probabilities and the label index
        assert list(out) == ["probabilities", "label"] and out["label"].dtype == np.int64
        assert rel_err(out["probabilities"], want) <= TOL[dtype]
        check_labels(out["label"], want)
    else:
        assert rel_err(out["prediction"], want) <= TOL[dtype]


def test_graph_structure_versions_and_dynamic_batch(tmp_path):
    net = ffnn.Network([3, 5, 2], "leaky_relu(slope=0.2)", "softmax", seed=0)
    path = tmp_path / "m.onnx"
    m = ffnn.export_onnx(net, path, classes=["no", "yes"])
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded.ir_version == 8 and [(o.domain, o.version) for o in loaded.opset_import] == [("", 17)]
    ops = [n.op_type for n in loaded.graph.node]
    assert ops.count("Gemm") == 2 and "Softmax" in ops and "ArgMax" in ops
    assert all(n.domain in ("", "ai.onnx") for n in loaded.graph.node)  # no ONNX-ML operators
    x = loaded.graph.input[0].type.tensor_type
    assert x.shape.dim[0].dim_param == "N" and x.shape.dim[1].dim_value == 3
    props = {p.key: p.value for p in loaded.metadata_props}
    assert json.loads(props["classes"]) == ["no", "yes"] and props["task"] == "classify"
    for n in (1, 7, 300):
        X = inputs(3, "float64", n=n)
        out = run(m, X)
        assert out["probabilities"].shape == (n, 2) and out["label"].shape == (n,)
        assert rel_err(out["probabilities"], net.predict(X)) <= 1e-12


@pytest.mark.parametrize("opset", [13, 21])
def test_opset_option(opset):
    net = ffnn.Network([3, 4, 2], "gelu", "sigmoid", seed=0)
    m = ffnn.export_onnx(net, opset=opset)
    assert m.opset_import[0].version == opset
    assert m.ir_version == onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)])
    X = inputs(3, "float64")
    assert rel_err(run(m, X)["prediction"], net.predict(X)) <= 1e-12


def test_float32_graph_of_a_float64_network():
    net = ffnn.Network([4, 6, 3], "softplus", "identity", seed=3)
    X = inputs(4, "float32")
    out = run(ffnn.export_onnx(net, dtype="float32"), X)
    assert out["prediction"].dtype == np.float32
    assert rel_err(out["prediction"], net.to(dtype="float32").predict(X)) <= 1e-6


def test_network_on_another_array_namespace():
    xp = pytest.importorskip("array_api_strict")
    net = ffnn.Network([3, 5, 2], "gelu", "softmax", seed=0, xp=xp)
    X = inputs(3, "float64")
    want = np.asarray(ffnn._array.to_numpy(net.predict(xp.asarray(X))))
    assert rel_err(run(ffnn.export_onnx(net), X)["probabilities"], want) <= 1e-12


def test_bare_network_with_classes_and_a_single_sigmoid_unit():
    net = ffnn.Network([3, 4, 1], "relu", "sigmoid", seed=0)
    X = inputs(3, "float64")
    out = run(ffnn.export_onnx(net, classes=["neg", "pos"]), X)
    p = net.predict(X)
    assert rel_err(out["probabilities"], np.hstack([1 - p, p])) <= 1e-12
    np.testing.assert_array_equal(out["label"], (p[:, 0] > 0.5).astype(np.int64))


# --- models written by ``ffnn train`` ------------------------------------------------------------------

def _cli_predictions(net, X):
    """What ``ffnn predict`` computes from raw features X (ffnn.cli.shared)."""
    from ffnn.cli.shared import outputs_to_predictions as _outputs_to_predictions

    meta = net.metadata
    Xs = meta["scaler"].transform(X) if meta.get("scaler") is not None else X
    return _outputs_to_predictions(net, net.predict(Xs))


@pytest.fixture(scope="module")
def cli_models(tmp_path_factory):
    from ffnn.cli import main

    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[10.0, -3.0, 200.0], scale=[2.0, 0.5, 40.0], size=(120, 3))
    z = (X - [10.0, -3.0, 200.0]) / [2.0, 0.5, 40.0]
    labels = np.array(["cat", "dog", "emu"])[np.argmax(z + 0.5 * rng.normal(size=(120, 3)), axis=1)]
    y = X @ [0.5, -2.0, 0.01] + rng.normal(size=120)
    with open(folder / "cls.csv", "w") as f:
        f.write("height,weight,age,animal\n" + "".join(f"{a},{b},{c},{l}\n" for (a, b, c), l in zip(X, labels)))
    with open(folder / "reg.csv", "w") as f:
        f.write("u,v,w,target\n" + "".join(f"{a},{b},{c},{t}\n" for (a, b, c), t in zip(X, y)))
    models = {}
    for data, task, dtype, scale, extra in [
            ("cls", "classify", "float64", "standard", []), ("cls", "classify", "float32", "minmax", []),
            ("reg", "regress", "float64", "standard", ["--activation", "elu(alpha=0.5)"]),
            ("reg", "regress", "float32", "none", ["--activation", "tanh"])]:
        out = folder / f"{data}-{dtype}-{scale}.safetensors"
        code = main(["train", str(folder / f"{data}.csv"), "--hidden", "6,5", "--epochs", "5", "--quiet",
                     "--dtype", dtype, "--scale", scale, "--out", str(out), *extra])
        assert code == 0
        models[(task, dtype, scale)] = out
    return folder, X, models


@pytest.mark.parametrize("key", [("classify", "float64", "standard"), ("classify", "float32", "minmax"),
                                 ("regress", "float64", "standard"), ("regress", "float32", "none")])
def test_cli_models_scale_inputs_in_the_graph(cli_models, key, capsys):
    _, X, models = cli_models
    net = ffnn.load(models[key])
    task, dtype, scale = key
    m = ffnn.export_onnx(net)
    ops = [n.op_type for n in m.graph.node]
    assert ("Sub" in ops[:1] and "Div" in ops[:2]) == (scale != "none")
    props = {p.key: p.value for p in m.metadata_props}
    out = run(m, X.astype(dtype))
    pred, proba = _cli_predictions(net, X)
    if task == "classify":
        assert json.loads(props["feature_names"]) == ["height", "weight", "age"]
        classes = json.loads(props["classes"])
        assert classes == ["cat", "dog", "emu"]
        assert rel_err(out["probabilities"], proba) <= TOL[dtype]
        check_labels(out["label"], proba)
        assert np.mean(np.array(classes)[out["label"]] == pred) > 0.95
    else:
        assert out["prediction"].shape == (len(X), 1)
        assert rel_err(out["prediction"][:, 0], pred) <= TOL[dtype]


# --- ffnn's scikit-learn estimators -------------------------------------------------------------------

def _data(seed=0, n=80):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, rng


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel", "strings"])
def test_classifier_estimators(kind, dtype):
    from ffnn.sklearn import MLPClassifier

    X, rng = _data()
    codes = np.argmax(X[:, :3] + 0.3 * rng.normal(size=(80, 3)), axis=1)
    y = {"multiclass": codes, "binary": codes == 1, "multilabel": np.c_[codes == 0, X[:, 3] > 0],
         "strings": np.array(["a", "b", "c"])[codes]}[kind]
    est = MLPClassifier((7,), activation="tanh", max_iter=20, random_state=0, dtype=dtype).fit(X, y)
    Xd = X.astype(dtype)
    m = ffnn.export_onnx(est)
    out = run(m, Xd)
    proba = est.predict_proba(Xd)
    assert rel_err(out["probabilities"], proba) <= TOL[dtype]
    if kind == "multilabel":
        assert out["label"].shape == (80, 2)
        np.testing.assert_array_equal(out["label"], est.predict(Xd))
    else:
        check_labels(out["label"], proba)
        assert np.mean(est.classes_[out["label"]] == est.predict(Xd)) > 0.95
    props = {p.key: p.value for p in m.metadata_props}
    assert json.loads(props["classes"]) == est.classes_.tolist()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_targets", [1, 2])
def test_regressor_estimators(n_targets, dtype):
    import pandas as pd

    from ffnn.sklearn import MLPRegressor

    X, rng = _data(1)
    Y = X[:, :n_targets] * 2 + 0.1 * rng.normal(size=(80, n_targets))
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    est = MLPRegressor(hidden_layer_sizes=(6,), activation="gelu", max_iter=20, random_state=0, dtype=dtype)
    est.fit(frame, Y[:, 0] if n_targets == 1 else Y)
    m = ffnn.export_onnx(est)
    out = run(m, X.astype(dtype))
    want = est.predict(frame.astype(dtype)).reshape(80, -1)
    assert rel_err(out["prediction"], want) <= TOL[dtype]
    assert json.loads({p.key: p.value for p in m.metadata_props}["feature_names"]) == ["a", "b", "c", "d"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_skl2onnx_converts_ffnn_estimators_in_a_pipeline(dtype):
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ffnn.export import register_skl2onnx
    from ffnn.sklearn import MLPClassifier, MLPRegressor

    register_skl2onnx()
    X, rng = _data(2)
    X = X * 5 + 3
    y = np.array(["low", "mid", "high"])[np.argmax(X[:, :3] + rng.normal(size=(80, 3)), axis=1)]
    name = np.dtype(dtype).name
    pipe = make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=20, random_state=0, dtype=name)).fit(X, y)
    out = run(skl2onnx.to_onnx(pipe, X[:1].astype(dtype), options={"zipmap": False}), X.astype(dtype))
    assert rel_err(out["probabilities"], pipe.predict_proba(X.astype(dtype))) <= TOL[name]
    assert np.mean(out["label"] == pipe.predict(X.astype(dtype))) > 0.95
    reg = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0,
                                                       dtype=name)).fit(X, X[:, 0])
    out = run(skl2onnx.to_onnx(reg, X[:1].astype(dtype)), X.astype(dtype))
    assert rel_err(out["variable"][:, 0], reg.predict(X.astype(dtype))) <= TOL[name]


# --- errors ----------------------------------------------------------------------------------------------

def test_unrepresentable_models_are_named():
    from ffnn.export import ConversionError
    from ffnn.sklearn import MLPClassifier

    square = Activation("square", lambda z: z * z, lambda z: 2 * z)
    net = ffnn.Network([2, 3, 1], ["relu"], square, seed=0)
    with pytest.raises(ConversionError, match=r"activation 'square' \(layer 2\) is not one of ffnn's built-in"):
        ffnn.export_onnx(net)
    with pytest.raises(ConversionError, match="not fitted"):
        ffnn.export_onnx(MLPClassifier())
    with pytest.raises(ConversionError, match="got str"):
        ffnn.export_onnx("model.safetensors")
    from sklearn.neural_network import MLPRegressor

    with pytest.raises(ConversionError, match=r"ffnn.from_sklearn\(mlp\)"):
        ffnn.export_onnx(MLPRegressor())
    good = ffnn.Network([2, 3, 2], "relu", "identity", seed=0)
    with pytest.raises(ValueError, match="opset must be an integer from 13"):
        ffnn.export_onnx(good, opset=9)
    with pytest.raises(ValueError, match="dtype must be"):
        ffnn.export_onnx(good, dtype="float16")
    with pytest.raises(ConversionError, match="classes has 3 labels; the output layer has 2 units"):
        ffnn.export_onnx(good, classes=["a", "b", "c"])


def _one_line(err, *fragments):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_cli_export_onnx_and_its_errors(cli_models, tmp_path, capsys):
    from ffnn.cli import main

    _, X, models = cli_models
    model = models[("classify", "float64", "standard")]
    out = tmp_path / "m.onnx"
    assert main(["export", str(model), str(out), "--dtype", "float64"]) == 0
    assert "input X (N, 3) float64; outputs probabilities, label" in capsys.readouterr().out
    net = ffnn.load(model)
    assert rel_err(run(onnx.load(str(out)), X)["probabilities"], _cli_predictions(net, X)[1]) <= 1e-12
    before = out.read_bytes()
    # An existing output is refused and left as it was; --force replaces it; float32 is the default.
    assert main(["export", str(model), str(out)]) == 1
    _one_line(capsys.readouterr().err, "exists; pass --force to replace it")
    assert out.read_bytes() == before
    assert main(["export", str(model), str(out), "--force"]) == 0
    assert "float32" in capsys.readouterr().out
    assert onnx.load(str(out)).graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    # A file that is not a model, a custom activation, a bad flag: one line each, nothing written.
    junk = tmp_path / "junk.safetensors"
    junk.write_text("not a model")
    assert main(["export", str(junk), str(tmp_path / "a.onnx")]) == 1
    _one_line(capsys.readouterr().err, "not a safetensors file")
    custom = tmp_path / "custom.safetensors"
    ffnn.save(ffnn.Network([2, 3, 1], [Activation("square", lambda z: z * z, lambda z: 2 * z)], "identity",
                           seed=0), custom)
    assert main(["export", str(custom), str(tmp_path / "b.onnx")]) == 1
    _one_line(capsys.readouterr().err, "'square'", "not built in")
    for args, fragment in [(["--opset", "5"], "opset must be an integer from 13"),
                           (["--format", "c", "--dtype", "float64"], "the C header is float32"),
                           (["--format", "xml"], "invalid choice")]:
        assert main(["export", str(model), str(tmp_path / "c.onnx"), *args]) == 2
        _one_line(capsys.readouterr().err, fragment)
    assert main(["export", str(model), str(tmp_path / "missing" / "d.onnx")]) == 1
    _one_line(capsys.readouterr().err, "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["custom.safetensors", "junk.safetensors", "m.onnx"]


def test_cli_export_in_a_subprocess(cli_models, tmp_path):
    _, _, models = cli_models
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep")
    proc = subprocess.run([sys.executable, "-m", "ffnn", "export", str(models[("regress", "float64", "standard")]),
                           str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and out.read_bytes() == b"keep"
    _one_line(proc.stderr, "ffnn: error: OUT", "exists; pass --force")
