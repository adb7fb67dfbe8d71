"""int8 export: the header compiled with gcc (strict C99, and with general registers only: no float), its
outputs equal bit for bit to integer inference written out here independently of ffnn (NumPy int64,
the input's zero point subtracted rather than folded into the bias, floor division rather than shifts),
its held-out accuracy against the float model's, the quantization's numbers against their definitions
(Jacob et al.), the QDQ model in onnxruntime, and the bad input."""

import platform
import re
import shutil
import subprocess

import numpy as np
import pytest

import ffnn
from ffnn.activations import Activation
from ffnn.export import ConversionError, Int8Model, export_c_int8, export_onnx_qdq, quantize_int8

GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="no gcc on this machine")
FLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"]
INTEGER_ONLY = ["-mgeneral-regs-only"] if platform.machine() in ("x86_64", "AMD64", "i686") else []


# --- an independent integer reference --------------------------------------------------------------

def reference(q, Xq):
    """(q_z, y) of int8 inputs: acc = Σ (a − Z_in) w + b, ⌊(acc m + 2^(s−1)) / 2^s⌋ + Z clamped, then the
    table, or softmax from the exp table, as the header's comment states them."""
    a, zero = Xq.astype(np.int64), q.input_zero.astype(np.int64)
    for layer in q.layers:
        acc = (a - zero) @ layer.weights.astype(np.int64) + layer.bias_unfolded.astype(np.int64)
        m, s = (np.broadcast_to(np.asarray(v, np.int64), acc.shape[1:]) for v in (layer.multiplier, layer.shift))
        z = np.clip(np.floor_divide(acc * m + 2 ** (s - 1), 2 ** s) + layer.grid_zero, layer.lo, 127)
        if layer.kind == "fused":
            a = z
        elif layer.kind == "table":
            a = layer.table.astype(np.int64)[z + 128]
        else:
            e = layer.exp_table.astype(np.int64)[z.max(axis=1, keepdims=True) - z]
            total = e.sum(axis=1, keepdims=True)
            a = np.minimum(np.floor_divide(256 * e + np.floor_divide(total, 2), total) - 128, 127)
        zero = layer.out_zero
    return z, a


# --- compiling and running headers -------------------------------------------------------------------

def _build(tmp_path, headers, main, extra=()):
    for name, text in headers.items():
        (tmp_path / f"{name}.h").write_text(text)
    (tmp_path / "main.c").write_text(main)
    exe = tmp_path / "run"
    build = subprocess.run([GCC, *FLAGS, *extra, "-o", str(exe), str(tmp_path / "main.c")], capture_output=True,
                           text=True)
    assert build.returncode == 0, build.stderr
    return exe


def _run(exe, rows):
    text = "\n".join(" ".join(str(v) for v in row) for row in rows) + "\n"
    proc = subprocess.run([str(exe)], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line.split() for line in proc.stdout.splitlines()]


def _int_driver(names, n_in, n_out, labels):
    """Reads rows of n_in int8 values; prints each header's outputs (and label) in turn."""
    lines = [f'#include "{n}.h"' for n in names] + ["#include <stdio.h>", "int main(void)", "{",
             f"    int8_t x[{n_in}], y[{max(n_out.values())}];", "    int i, v;",
             "    while (scanf(\"%d\", &v) == 1) {", "        x[0] = (int8_t)v;",
             f"        for (i = 1; i < {n_in}; ++i) {{ if (scanf(\"%d\", &v) != 1) return 1; x[i] = (int8_t)v; }}"]
    for n in names:
        lines += [f"        {n}_predict(x, y);", f"        for (i = 0; i < {n_out[n]}; ++i) printf(\"%d \", y[i]);"]
        if labels[n]:
            lines.append(f"        printf(\"%d \", {n}_predict_label(x));")
    return "\n".join(lines + ["        printf(\"\\n\");", "    }", "    return 0;", "}"]) + "\n"


# --- models ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory):
    """A model file (standard input scaling, classes, feature names) trained on 3/4 of breast_cancer, and
    the held-out quarter."""
    datasets = pytest.importorskip("sklearn.datasets")
    from ffnn.data import Scaler

    data = datasets.load_breast_cancer()
    X, y = data.data, data.target
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:427], order[427:]
    scaler = Scaler("standard").fit(X[train])
    net = ffnn.Network([30, 16, 8, 2], ["relu", "sigmoid"], "softmax", seed=0)
    ffnn.train(net, scaler.transform(X[train]), np.eye(2)[y[train]], loss="cross_entropy", optimizer=ffnn.Adam(0.01),
               epochs=40, seed=0)
    path = tmp_path_factory.mktemp("bc") / "bc.safetensors"
    ffnn.save(net, path, task="classify", classes=["malignant", "benign"], scaler=scaler, target="target",
              feature_names=[str(f) for f in data.feature_names])
    return ffnn.load(path), X[train], X[test], y[test]


def _calibration(n, width, seed=0):
    return np.random.default_rng(seed).normal(size=(n, width)) * np.linspace(0.5, 3.0, width) + 0.3


# --- the header against the reference, and against the float model --------------------------------------

@needs_gcc
@pytest.mark.parametrize("per_channel", [False, True])
def test_breast_cancer_header_bit_exact_and_accurate(tmp_path, breast_cancer, per_channel):
    net, X_train, X_test, y_test = breast_cancer
    q = quantize_int8(net, X_train, per_channel=per_channel)
    text = export_c_int8(q, name="bc")
    exe = _build(tmp_path, {"bc": text}, _int_driver(["bc"], 30, {"bc": 2}, {"bc": True}), INTEGER_ONLY)
    Xq = q.quantize_input(X_test)
    out = np.array(_run(exe, Xq), dtype=np.int64)
    z, y = reference(q, Xq)
    np.testing.assert_array_equal(out[:, :2], y)
    np.testing.assert_array_equal(out[:, 2], np.argmax(z, axis=1))
    # accuracy on the 142 held-out rows: the int8 header misclassifies at most 2 rows more than the float model
    float_pred = np.argmax(net.predict(net.metadata["scaler"].transform(X_test)), axis=1)
    assert np.sum(out[:, 2] != y_test) <= np.sum(float_pred != y_test) + 2
    assert np.mean(float_pred == y_test) > 0.93
    # the probabilities p = (y + 128)/256 within 0.02 of the float model's on average (a row with a feature
    # beyond the calibration range saturates there and may differ more)
    p = (out[:, :2] + 128) / 256.0
    assert np.mean(np.abs(p - net.predict(net.metadata["scaler"].transform(X_test)))) < 0.02


@needs_gcc
def test_every_kind_of_layer_in_one_program(tmp_path):
    """A classifier (relu, tanh, softmax), a single-sigmoid-unit classifier (leaky_relu, elu, gelu, a user's
    activation), a regressor with target scaling (sigmoid, softplus, identity) and a one-layer softmax: four
    headers in one program, each equal to the reference on inputs that reach every clamp."""
    from ffnn.data import Scaler

    cube = Activation("cube", lambda z: z ** 3, lambda z: 3 * z ** 2)
    nets = {
        "clf": ffnn.Network([6, 9, 7, 4], ["relu", "tanh"], "softmax", seed=1),
        "bin": ffnn.Network([6, 8, 7, 6, 5, 1], ["leaky_relu(slope=0.2)", "elu", "gelu", cube], "sigmoid", seed=2),
        "reg": ffnn.Network([6, 8, 5, 2], ["sigmoid", "softplus"], "identity", seed=3),
        "one": ffnn.Network([6, 3], output="softmax", seed=4),  # one layer: no buffer between layers
    }
    for net in nets.values():
        for b in net.biases:
            b += 0.3
    X = _calibration(300, 6)
    models = {"clf": quantize_int8(nets["clf"], X, per_channel=True),
              "bin": quantize_int8(nets["bin"], X, classes=["no", "yes"]),
              "reg": None, "one": quantize_int8(nets["one"], X)}
    reg_file = tmp_path / "reg.safetensors"
    ffnn.save(nets["reg"], reg_file, task="regress", scaler=Scaler("minmax").fit(X), target="t",
              target_scaler=Scaler("standard", np.array([10.0, -2.0]), np.array([3.0, 0.5])))
    models["reg"] = quantize_int8(ffnn.load(reg_file), X, per_channel=True)
    n_out = {"clf": 4, "bin": 2, "reg": 2, "one": 3}
    labels = {"clf": True, "bin": True, "reg": False, "one": True}
    exe = _build(tmp_path, {n: export_c_int8(m, name=n) for n, m in models.items()},
                 _int_driver(list(models), 6, n_out, labels), INTEGER_ONLY)
    rng = np.random.default_rng(5)
    Xq = np.r_[rng.integers(-128, 128, size=(200, 6)), np.full((1, 6), -128), np.full((1, 6), 127)]
    out = np.array(_run(exe, Xq), dtype=np.int64)
    col = 0
    for n, m in models.items():
        z, y = reference(m, Xq)
        if n == "bin":  # [1 − p, p] on the grid 1/256, −128: 1 − p is −q (127 for q = −128)
            y = np.c_[np.minimum(-y, 127), y]
        np.testing.assert_array_equal(out[:, col:col + n_out[n]], y, err_msg=n)
        np.testing.assert_array_equal(m.predict_q(Xq), y, err_msg=n)  # the Python model computes the same
        col += n_out[n]
        if labels[n]:
            want = (z[:, 0] > m.layers[-1].grid_zero).astype(int) if n == "bin" else np.argmax(z, axis=1)
            np.testing.assert_array_equal(out[:, col], want, err_msg=n)
            col += 1
    # the regressor in the target's units, against the float model, within a few output steps
    float_reg = ffnn.load(reg_file)
    want = float_reg.metadata["target_scaler"].inverse(float_reg.predict(float_reg.metadata["scaler"].transform(X)))
    step = models["reg"].layers[-1].out_scale * np.array([3.0, 0.5])
    assert np.all(np.max(np.abs(models["reg"].predict(X) - want), axis=0) < 6 * step + 0.05 * np.ptp(want, axis=0))


@needs_gcc
def test_float_io_helpers(tmp_path, breast_cancer):
    """With <NAME>_FLOAT_IO: raw floats quantized as quantize_input does (bit for bit, NaN and far values
    included), and the outputs dequantized to probabilities."""
    net, X_train, X_test, _ = breast_cancer
    q = quantize_int8(net, X_train)
    main = "\n".join([
        "#define BC_FLOAT_IO", '#include "bc.h"', "#include <stdio.h>", "int main(void)", "{",
        "    float x[30], p[2];", "    int8_t xq[30], y[2];", "    int i;",
        '    while (scanf("%f", &x[0]) == 1) {',
        '        for (i = 1; i < 30; ++i) if (scanf("%f", &x[i]) != 1) return 1;',
        "        bc_quantize_input(x, xq);", "        bc_predict(xq, y);", "        bc_dequantize_output(y, p);",
        '        for (i = 0; i < 30; ++i) printf("%d ", xq[i]);', '        printf("%.9g %.9g\\n", p[0], p[1]);',
        "    }", "    return 0;", "}"]) + "\n"
    exe = _build(tmp_path, {"bc": export_c_int8(q, name="bc")}, main)
    X = np.r_[X_test[:40], X_test[:1] * 1e6, -X_test[:1] * 1e6]
    X[-3, 4] = np.nan
    rows = _run(exe, [[repr(float(np.float32(v))) for v in row] for row in X])
    got_q = np.array([[int(v) for v in r[:30]] for r in rows])
    np.testing.assert_array_equal(got_q, q.quantize_input(X))
    assert got_q[-3, 4] == -128 and np.all(got_q[-2][X[-2] > 0] == 127)
    np.testing.assert_allclose(np.array([[float(v) for v in r[30:]] for r in rows]),
                               q.dequantize(q.predict_q(got_q)), rtol=1e-6)


def test_integer_path_has_no_float_and_only_stdint():
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    text = export_c_int8(net, calibration=_calibration(50, 4), name="m", classes=["a", "b", "c"])
    integer_part = text.split("#ifdef M_FLOAT_IO")[0]
    code = re.sub(r"/\*.*?\*/", "", integer_part, flags=re.S)
    assert not re.search(r"\b(float|double|long double)\b", code)
    assert [line for line in text.splitlines() if line.startswith("#include")] == ["#include <stdint.h>"]
    assert "malloc" not in text and "static inline void m_predict(const int8_t *x, int8_t *y)" in text
    assert "static inline int m_predict_label(const int8_t *x)" in text and "m_class_name" in text


# --- the quantization's numbers against their definitions ---------------------------------------------

@pytest.mark.parametrize("per_channel", [False, True])
def test_quantization_follows_its_definitions(breast_cancer, per_channel):
    net, X_train, _, _ = breast_cancer
    q = quantize_int8(net, X_train, per_channel=per_channel)
    scaler = net.metadata["scaler"]
    Xs = (X_train - scaler.shift) / scaler.scale
    lo, hi = np.minimum(Xs.min(axis=0), 0), np.maximum(Xs.max(axis=0), 0)
    S_in = (hi - lo) / 255
    np.testing.assert_allclose(q.input_step, S_in * scaler.scale, rtol=1e-12)
    np.testing.assert_array_equal(q.input_zero, np.clip(np.floor(-128 - lo / S_in + 0.5), -128, 127))
    W1 = np.asarray(net.weights[1]) * S_in[:, None]  # the feature steps folded into layer 1
    for l, (layer, W) in enumerate(zip(q.layers, [W1] + [np.asarray(net.weights[k]) for k in range(2, len(q.layers) + 1)])):
        peak = np.abs(W).max(axis=0) if per_channel else np.full(W.shape[1], np.abs(W).max())
        np.testing.assert_allclose(layer.weight_scale, peak / 127, rtol=1e-12)
        assert np.all(np.abs(layer.weights * layer.weight_scale - W) <= layer.weight_scale / 2 * (1 + 1e-9))
        assert np.abs(layer.weights).max() == 127 and layer.weights.min() >= -127
        in_scale = 1.0 if l == 0 else q.layers[l - 1].out_scale
        M = in_scale * layer.weight_scale / layer.grid_scale
        M = M if per_channel else M[:1]
        assert np.all(np.abs(layer.multiplier * 2.0 ** -layer.shift.astype(float) / M - 1) < 2.0 ** -30)
        assert np.all((layer.multiplier >= 2 ** 30) & (layer.multiplier < 2 ** 31))
        b = np.asarray(net.biases[l + 1])
        assert np.all(np.abs(layer.bias_unfolded * in_scale * layer.weight_scale - b)
                      <= in_scale * layer.weight_scale / 2 * (1 + 1e-9))
    # layer 2's sigmoid on the fixed grid 1/256, −128; its table is σ within half a step
    sig = q.layers[1]
    assert (sig.kind, sig.out_scale, sig.out_zero) == ("table", 1 / 256, -128)
    z = sig.grid_scale * (np.arange(-128, 128) - sig.grid_zero)
    assert np.all(np.abs((sig.table.astype(float) + 128) / 256 - 1 / (1 + np.exp(-z))) <= 1 / 512 + 1e-12)
    soft = q.layers[2]
    np.testing.assert_array_equal(soft.exp_table, np.floor(2 ** 15 * np.exp(-soft.grid_scale * np.arange(256)) + 0.5))


def test_python_model_matches_reference_for_every_activation():
    for hidden in ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu(alpha=0.5)", "softplus", "gelu"]:
        for output in ["identity", "sigmoid", "tanh", "relu", "softmax"]:
            net = ffnn.Network([5, 7, 3], hidden, output, seed=4)
            net.biases[1] += 0.2
            q = quantize_int8(net, _calibration(100, 5), per_channel=hidden < output)
            Xq = np.random.default_rng(1).integers(-128, 128, size=(60, 5))
            np.testing.assert_array_equal(q.predict_q(Xq), reference(q, Xq)[1], err_msg=f"{hidden}, {output}")


# --- the QDQ model in onnxruntime ---------------------------------------------------------------------

@pytest.mark.parametrize("per_channel", [False, True])
def test_qdq_onnx_in_onnxruntime(breast_cancer, per_channel):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    net, X_train, X_test, y_test = breast_cancer
    q = quantize_int8(net, X_train, per_channel=per_channel)
    m = export_onnx_qdq(q)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("DequantizeLinear") >= 2 * len(q.layers) + 1 and "QuantizeLinear" in ops
    assert {i.name: i.data_type for i in m.graph.initializer}["W1_q"] == 3  # int8
    session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    proba, label = session.run(None, {"X": X_test.astype(np.float32)})
    # the same int8 grids as the header: outputs within one step (1/256) of the int8 model, labels agreeing
    assert np.max(np.abs(proba - q.predict(X_test))) <= 1 / 256 + 1e-6
    assert np.mean(label == q.label_q(q.quantize_input(X_test))) >= 0.98
    float_pred = np.argmax(net.predict(net.metadata["scaler"].transform(X_test)), axis=1)
    assert np.sum(label != y_test) <= np.sum(float_pred != y_test) + 2
    assert m.metadata_props and {p.key: p.value for p in m.metadata_props}["quantization"].startswith("int8 QDQ")


def test_qdq_regressor_and_binary():
    ort = pytest.importorskip("onnxruntime")
    X = _calibration(200, 4)
    for net, classes in ((ffnn.Network([4, 6, 1], "tanh", "sigmoid", seed=0), ["n", "y"]),
                         (ffnn.Network([4, 6, 2], "elu", "identity", seed=0), None)):
        q = quantize_int8(net, X, classes=classes)
        session = ort.InferenceSession(export_onnx_qdq(q).SerializeToString(), providers=["CPUExecutionProvider"])
        out = session.run(None, {"X": X.astype(np.float32)})
        step = q.layers[-1].out_scale
        assert np.max(np.abs(out[0] - q.predict(X))) <= 2 * step + 1e-6
        if classes:
            assert np.mean(out[1] == q.label_q(q.quantize_input(X))) > 0.97


# --- bad input ------------------------------------------------------------------------------------------

def test_python_errors():
    net = ffnn.Network([3, 4, 2], "tanh", "softmax", seed=0)
    X = _calibration(20, 3)
    with pytest.raises(ValueError, match="the calibration data has 4 columns; the network has 3 inputs"):
        quantize_int8(net, _calibration(20, 4))
    bad = X.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="holds nan at row 5, column 2"):
        quantize_int8(net, bad)
    with pytest.raises(ValueError, match="at least one row"):
        quantize_int8(net, np.zeros((0, 3)))
    with pytest.raises(ValueError, match="export_c_int8 needs calibration data"):
        export_c_int8(net)
    q = quantize_int8(net, X)
    assert isinstance(q, Int8Model)
    with pytest.raises(ValueError, match="already quantized"):
        export_c_int8(q, calibration=X)
    with pytest.raises(ValueError, match="C identifier"):
        export_c_int8(q, name="int")

    class Pairwise(Activation):
        elementwise = False

    odd = Pairwise("pairwise", lambda z: z - z.mean(axis=1, keepdims=True), lambda z: np.ones_like(z))
    with pytest.raises(ConversionError, match=r"activation 'pairwise' \(layer 1\) is not elementwise"):
        quantize_int8(ffnn.Network([3, 4, 2], [odd], "identity", seed=0), X)
    cube = Activation("cube", lambda z: z ** 3, lambda z: 3 * z ** 2)
    q = quantize_int8(ffnn.Network([3, 4, 2], [cube], "identity", seed=0), X)  # a table: fine in C
    with pytest.raises(ConversionError, match=r"activation 'cube' \(layer 1\) .* no ONNX form"):
        export_onnx_qdq(q)
    big = ffnn.Network([3, 4, 2], "tanh", "identity", seed=0)
    big.biases[1][1] = 1e12
    with pytest.raises(ConversionError, match="layer 1, unit 1: the int32 accumulator"):
        quantize_int8(big, X)
    nan_net = ffnn.Network([3, 4, 2], "tanh", "identity", seed=0)
    nan_net.weights[2][0, 0] = np.inf
    with pytest.raises(ConversionError, match="layer 2 has a weight or bias that is not finite"):
        quantize_int8(nan_net, X)


@pytest.fixture
def model_file(tmp_path):
    from ffnn.cli import main

    X = _calibration(60, 3)
    (tmp_path / "d.csv").write_text("a,b,c,label\n" + "".join(
        f"{a},{b},{c},{'yes' if a + b > 0.6 else 'no'}\n" for a, b, c in X))
    assert main(["train", str(tmp_path / "d.csv"), "--hidden", "5", "--epochs", "5", "--quiet",
                 "--out", str(tmp_path / "m.safetensors")]) == 0
    return tmp_path


def test_cli_export_int8(model_file, capsys, monkeypatch):
    from ffnn.cli import main

    d = model_file
    capsys.readouterr()
    assert main(["export", str(d / "m.safetensors"), str(d / "m.h"), "--quantize", "int8", "--per-channel",
                 "--calibration", str(d / "d.csv"), "--name", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "int8 C header written to" in out and "tiny_predict_label" in out
    assert re.search(r"per-channel weights\) on the 60 calibration rows: the same label as the float model for "
                     r"\d+\.\d%", out)
    assert "tiny_W1[5][3]" in (d / "m.h").read_text()
    pytest.importorskip("onnx")
    monkeypatch.chdir(d)  # the model's training data, by the path it was trained from
    assert main(["export", "m.safetensors", "m.onnx", "--quantize", "int8"]) == 0
    out = capsys.readouterr().out
    assert "calibrating on the model's training data" in out and "int8 QDQ ONNX model written to m.onnx" in out


@pytest.mark.parametrize("argv, code, message", [
    (["--quantize", "int4"], 2, "argument --quantize: invalid choice: 'int4'"),
    (["--per-channel"], 2, "--per-channel is for --quantize int8"),
    (["--calibration", "d.csv"], 2, "--calibration is for --quantize int8"),
    (["--quantize", "int8", "--format", "onnx", "--dtype", "float64"], 2, "--dtype float64 is for the float"),
    (["--quantize", "int8", "--calibration", "wide.npz"], 1, "'wide.npz' has 4 feature columns; the model expects 3"),
    (["--quantize", "int8", "--calibration", "narrow.csv"], 1, "'narrow.csv'"),
    (["--quantize", "int8", "--calibration", "nan.csv"], 1, "'nan.csv'"),
    (["--quantize", "int8", "--calibration", "missing.csv"], 1, "missing.csv"),
    (["--quantize", "int8", "--calibration", "d.csv", "--opset", "9", "--format", "onnx"], 2, "--opset"),
])
def test_cli_bad_input(model_file, capsys, monkeypatch, argv, code, message):
    from ffnn.cli import main

    d = model_file
    monkeypatch.chdir(d)
    np.savez(d / "wide.npz", X=np.ones((3, 4)), y=np.zeros(3))
    (d / "narrow.csv").write_text("a,b,label\n1,2,yes\n")
    (d / "nan.csv").write_text("a,b,c,label\n1,nan,3,yes\n")
    (d / "out.h").write_text("/* mine */")
    capsys.readouterr()
    assert main(["export", "m.safetensors", "out.h", "--force", *argv]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert (d / "out.h").read_text() == "/* mine */"


def test_cli_needs_calibration_and_keeps_existing_output(model_file, capsys, monkeypatch):
    from ffnn.cli import main

    d = model_file
    (d / "elsewhere").mkdir()
    monkeypatch.chdir(d / "elsewhere")
    (d / "d.csv").rename(d / "data.csv")  # the training data's path no longer leads to it
    capsys.readouterr()
    assert main(["export", "../m.safetensors", "x.h", "--quantize", "int8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--quantize int8 needs calibration data: --calibration DATA" in err
    assert not (d / "elsewhere" / "x.h").exists()
    (d / "elsewhere" / "x.h").write_text("keep")
    assert main(["export", "../m.safetensors", "x.h", "--quantize", "int8", "--calibration", "../data.csv"]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert (d / "elsewhere" / "x.h").read_text() == "keep"
