"""C export: each header is compiled with the system's C compiler (strict C99, warnings as errors), run,
and its outputs compared with ffnn's to 1e-5, relative to each output's largest magnitude."""

import shutil
import subprocess

import numpy as np
import pytest

import ffnn
from ffnn.activations import Activation

GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="no gcc on this machine")
pytestmark = pytest.mark.filterwarnings("ignore:Stochastic Optimizer:UserWarning")

FLAGS = ["-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-O2"]


def _driver(name, n_in, n_out, label):
    """A C program that reads rows of n_in numbers from stdin and prints the outputs (and the label)."""
    body = [f'#include "{name}.h"', "#include <stdio.h>", "int main(void)", "{",
            f"    float x[{n_in}], y[{n_out}];", "    int i;",
            "    while (scanf(\"%f\", &x[0]) == 1) {",
            f"        for (i = 1; i < {n_in}; ++i) if (scanf(\"%f\", &x[i]) != 1) return 1;",
            f"        {name}_predict(x, y);",
            f"        for (i = 0; i < {n_out}; ++i) printf(\"%.9g \", y[i]);"]
    if label:
        body.append(f"        printf(\"%d\", {name}_predict_label(x));")
    body += ["        printf(\"\\n\");", "    }", "    return 0;", "}"]
    return "\n".join(body) + "\n"


def compile_and_run(header, X, tmp_path, *, name="model", n_out, label=False):
    """The header's outputs for the rows of X: (outputs (N, n_out), labels or None)."""
    (tmp_path / f"{name}.h").write_text(header)
    (tmp_path / "main.c").write_text(_driver(name, X.shape[1], n_out, label))
    exe = tmp_path / "predict"
    build = subprocess.run([GCC, *FLAGS, "-o", str(exe), str(tmp_path / "main.c"), "-lm"],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    text = "\n".join(" ".join(repr(float(v)) for v in row) for row in X) + "\n"
    proc = subprocess.run([str(exe)], input=text, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert len(rows) == len(X)
    Y = np.array([[float(v) for v in r[:n_out]] for r in rows])
    labels = np.array([int(r[n_out]) for r in rows]) if label else None
    return Y, labels


def rel_err(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def inputs(d, n=50, seed=0):
    return 2.0 * np.random.default_rng(seed).normal(size=(n, d))


@needs_gcc
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_activation_compiled(tmp_path, dtype):
    hidden = ["sigmoid", "tanh", "relu", "leaky_relu(slope=0.2)", "elu(alpha=0.5)", "softplus", "gelu", "identity"]
    net = ffnn.Network([5, 8, 8, 7, 7, 6, 6, 5, 5, 3], hidden, "softmax", seed=4, dtype=dtype)
    for b in net.biases:
        b += 0.2
    X = inputs(5)
    Y, labels = compile_and_run(ffnn.export_c(net), X, tmp_path, n_out=3, label=True)
    want = net.predict(X)
    assert rel_err(Y, want) <= 1e-5
    clear = np.sort(want, axis=1)[:, -1] - np.sort(want, axis=1)[:, -2] > 1e-4
    np.testing.assert_array_equal(labels[clear], np.argmax(want, axis=1)[clear])


@needs_gcc
@pytest.mark.parametrize("output", ["identity", "sigmoid", "tanh", "softplus", "gelu", "elu", "leaky_relu"])
def test_output_activations_compiled(tmp_path, output):
    net = ffnn.Network([4, 6, 2], "tanh", output, seed=5)
    X = inputs(4)
    Y, _ = compile_and_run(ffnn.export_c(net, name="net_1"), X, tmp_path, name="net_1", n_out=2)
    assert rel_err(Y, net.predict(X)) <= 1e-5


@needs_gcc
def test_cli_models_compiled_with_scaling_and_class_names(tmp_path):
    from ffnn.cli import main
    from ffnn.cli.shared import outputs_to_predictions as _outputs_to_predictions

    rng = np.random.default_rng(0)
    X = rng.normal(loc=[5.0, 100.0], scale=[1.0, 20.0], size=(90, 2))
    z = (X - [5.0, 100.0]) / [1.0, 20.0]
    labels = np.array(['say "hi"', "b\\c", "é"])[np.argmax(np.c_[z, -z.sum(axis=1)], axis=1)]
    y = z @ [1.0, -2.0] + 50.0
    (tmp_path / "c.csv").write_text("p,q,label\n" + "".join(f'{a},{b},"{l.replace(chr(34), 2 * chr(34))}"\n'
                                                             for (a, b), l in zip(X, labels)))
    (tmp_path / "r.csv").write_text("p,q,y\n" + "".join(f"{a},{b},{t}\n" for (a, b), t in zip(X, y)))
    for data, n_out in (("c", 3), ("r", 1)):
        model, header = tmp_path / f"{data}.safetensors", tmp_path / f"{data}.h"
        assert main(["train", str(tmp_path / f"{data}.csv"), "--hidden", "5", "--epochs", "30", "--quiet",
                     "--out", str(model)]) == 0
        assert main(["export", str(model), str(header), "--format", "c", "--name", "clf" if n_out > 1 else "reg"]) == 0
        net = ffnn.load(model)
        pred, proba = _outputs_to_predictions(net, net.predict(net.metadata["scaler"].transform(X)))
        name = "clf" if n_out > 1 else "reg"
        run_dir = tmp_path / data
        run_dir.mkdir()
        Y, idx = compile_and_run(header.read_text(), X, run_dir, name=name, n_out=n_out, label=n_out > 1)
        if n_out > 1:
            assert rel_err(Y, proba) <= 1e-5
            assert np.mean(np.array(net.metadata["classes"])[idx] == pred) > 0.95
            text = header.read_text()
            assert 'static const char *const clf_classes[3] = {"b\\\\c", "say \\"hi\\"", "\\303\\251"};' in text
            assert 'clf_features[2] = {"p", "q"}' in text
        else:
            assert rel_err(Y[:, 0], pred) <= 1e-5


@needs_gcc
def test_two_headers_in_one_program_and_estimators(tmp_path):
    pytest.importorskip("sklearn")
    from ffnn.sklearn import MLPClassifier, MLPRegressor

    X = inputs(3, n=60)
    clf = MLPClassifier((6,), max_iter=30, random_state=0).fit(X, X[:, 0] > 0)  # one logistic unit
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=30, random_state=0).fit(X, X[:, :2])
    (tmp_path / "first.h").write_text(ffnn.export_c(clf, name="first"))
    (tmp_path / "second.h").write_text(ffnn.export_c(reg, name="second"))
    (tmp_path / "main.c").write_text(
        '#include "first.h"\n#include "second.h"\n#include "first.h"\n#include <stdio.h>\n'
        "int main(void) { float x[3] = {0.5f, -1.0f, 2.0f}, p[2], y[2];\n"
        "  first_predict(x, p); second_predict(x, y);\n"
        '  printf("%.9g %.9g %d %.9g %.9g\\n", p[0], p[1], first_predict_label(x), y[0], y[1]);\n'
        "  return FIRST_N_OUTPUTS + SECOND_N_INPUTS == 5 ? 0 : 1; }\n")
    exe = tmp_path / "both"
    build = subprocess.run([GCC, *FLAGS, "-o", str(exe), str(tmp_path / "main.c"), "-lm"], capture_output=True,
                           text=True)
    assert build.returncode == 0, build.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    x = np.array([[0.5, -1.0, 2.0]])
    assert rel_err(np.array([float(v) for v in out[:2]]), clf.predict_proba(x)[0]) <= 1e-5
    assert int(out[2]) == int(clf.predict(x)[0])
    assert rel_err(np.array([float(v) for v in out[3:]]), reg.predict(x)[0]) <= 1e-5


def test_header_is_plain_c_without_allocation():
    net = ffnn.Network([3, 4, 2], "relu", "softmax", seed=0)
    text = ffnn.export_c(net, classes=["a", "b"])
    assert "malloc" not in text and "#include <math.h>" in text
    assert [l for l in text.splitlines() if l.startswith("#include")] == ["#include <math.h>"]
    assert "static inline void model_predict(const float *x, float *y)" in text
    assert "static const float model_W1[4][3]" in text


def test_c_errors():
    from ffnn.export import ConversionError

    net = ffnn.Network([2, 3, 1], [Activation("cube", lambda z: z ** 3, lambda z: 3 * z ** 2)], "identity", seed=0)
    with pytest.raises(ConversionError, match=r"activation 'cube' \(layer 1\)"):
        ffnn.export_c(net)
    with pytest.raises(ValueError, match="C identifier"):
        ffnn.export_c(ffnn.Network([2, 1], output="identity", seed=0), name="int")


def test_weights_beyond_float32_are_refused_not_written_as_infinity():
    from ffnn.export import ConversionError

    net = ffnn.Network([2, 3, 2], "tanh", "softmax", seed=0)
    net.biases[2][1] = -1e300
    with pytest.raises(ConversionError, match=r"b\[2\] holds -1e\+300, beyond the range of float32 .*C header is float32"):
        ffnn.export_c(net)
    with pytest.raises(ConversionError, match="export with dtype float64"):
        ffnn.export_onnx(net, dtype="float32")
    assert ffnn.export_onnx(net, dtype="float64") is not None


def test_cli_export_c_refuses_existing_output(tmp_path, capsys):
    from ffnn.cli import main

    model = tmp_path / "m.safetensors"
    ffnn.save(ffnn.Network([2, 3, 1], "tanh", "identity", seed=0), model)
    out = tmp_path / "m.h"
    out.write_text("/* mine */")
    assert main(["export", str(model), str(out), "--format", "c"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists; pass --force" in err
    assert out.read_text() == "/* mine */"
    assert main(["export", str(model), str(out), "--force"]) == 0  # the format follows the .h extension
    assert "static inline void model_predict" in out.read_text()
    assert main(["export", str(model), str(tmp_path / "x.h"), "--name", "3d"]) == 2
    assert "--name must be a C identifier" in capsys.readouterr().err
