"""The ``ffnn`` command, run as a user runs it: in a subprocess, on small files."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import ffnn


def run(*args, cwd=None, timeout=120, loop="interpreted"):
    """``ffnn ARGS`` in a fresh process. These tests are about the command; the training loop they run is
    the interpreted one (``FFNN_LOOP``), so that each process skips numba's start (about 1.2 s); the
    ``trained`` fixture runs the compiled one (``loop=None``), which tests/test_compiled_loop.py checks."""
    env = dict(os.environ, FFNN_LOOP=loop) if loop else None
    return subprocess.run([sys.executable, "-m", "ffnn", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


def _one_clean_line(proc, code, *fragments):
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory):
    from sklearn.datasets import load_iris

    d = load_iris()
    path = tmp_path_factory.mktemp("data") / "iris.csv"
    names = [n.replace(" (cm)", "").replace(" ", "_") for n in d.feature_names]
    with open(path, "w") as f:
        f.write(",".join(names) + ",species\n")
        for x, y in zip(d.data, d.target):
            f.write(",".join(map(str, x)) + "," + d.target_names[y] + "\n")
    return path


@pytest.fixture(scope="module")
def trained(iris_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    proc = run("train", iris_csv, "--hidden", "16", "--epochs", "150", "--lr", "0.01", "--quiet",
               "--out", out / "m.safetensors", "--plot", out / "c.png", "--metrics", out / "m.json", loop=None)
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_train_on_csv_with_string_labels(trained):
    out, proc = trained
    assert "task: classify (the target holds text labels)" in proc.stdout
    assert "test accuracy" in proc.stdout and "model saved to" in proc.stdout
    metrics = json.loads((out / "m.json").read_text())
    assert metrics["test_accuracy"] >= 0.85 and metrics["n_test"] == 30
    assert (out / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    net = ffnn.load(out / "m.safetensors")
    assert net.metadata["classes"] == ["setosa", "versicolor", "virginica"]
    assert net.metadata["scaler"].kind == "standard"


def test_predict_evaluate_info(trained, iris_csv, tmp_path):
    out, _ = trained
    model = out / "m.safetensors"
    p = run("predict", model, iris_csv)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert lines[0] == "prediction" and len(lines) == 151 and set(lines[1:]) <= {"setosa", "versicolor", "virginica"}
    features_only = tmp_path / "x.csv"
    rows = iris_csv.read_text().splitlines()
    features_only.write_text("\n".join(",".join(r.split(",")[:4]) for r in rows) + "\n")
    p = run("predict", model, features_only, "--proba", "--out", tmp_path / "p.csv")
    assert p.returncode == 0, p.stderr
    probs = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    assert (tmp_path / "p.csv").read_text().startswith("p_setosa,p_versicolor,p_virginica")
    e = run("evaluate", model, iris_csv, "--json")
    assert e.returncode == 0, e.stderr
    assert json.loads(e.stdout)["accuracy"] > 0.85
    i = run("info", model)
    assert i.returncode == 0 and "4 -> 16 -> 3" in i.stdout and "parameters: 131" in i.stdout
    assert "classes: setosa, versicolor, virginica" in i.stdout and "training:" in i.stdout


def test_regression_on_npz_and_parquet(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = 50 + 10 * (X @ np.array([1.0, -2.0, 0.5])) + rng.normal(size=300)
    np.savez(tmp_path / "r.npz", X=X, y=y)
    p = run("train", tmp_path / "r.npz", "--quiet", "--out", tmp_path / "r.safetensors", "--metrics",
            tmp_path / "r.json", "--lr", "0.01")
    assert p.returncode == 0, p.stderr
    assert "task: regress" in p.stdout
    assert json.loads((tmp_path / "r.json").read_text())["test_r2"] > 0.95
    pred = run("predict", tmp_path / "r.safetensors", tmp_path / "r.npz")
    values = np.array(pred.stdout.split()[1:], dtype=float)
    assert np.corrcoef(values, y)[0, 1] > 0.97 and abs(values.mean() - y.mean()) < 3  # in the target's units
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "target": y})
    pq.write_table(table, tmp_path / "r.parquet")
    p = run("train", tmp_path / "r.parquet", "--quiet", "--epochs", "5", "--out", tmp_path / "q.safetensors")
    assert p.returncode == 0, p.stderr


def test_train_reports_the_loop_it_ran(trained, iris_csv, tmp_path):
    out, proc = trained
    summary = json.loads((out / "m.json").read_text())
    assert summary["loop"] == "compiled" and "compiled loop" in proc.stdout
    p = run("train", iris_csv, "--epochs", "2", "--quiet", "--loop", "interpreted", "--metrics", tmp_path / "i.json",
            "--out", tmp_path / "i.safetensors")
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "i.json").read_text())["loop"] == "numpy" and "numpy loop" in p.stdout


def test_gradcheck_command(trained):
    p = run("gradcheck", "--sizes", "4,8,3", "--activation", "tanh", "--loss", "mse")
    assert p.returncode == 0 and "PASSED" in p.stdout and "W[2]" in p.stdout
    out, _ = trained
    p = run("gradcheck", out / "m.safetensors")
    assert p.returncode == 0 and "PASSED" in p.stdout


def test_help_everywhere():
    for cmd in ([], ["train"], ["predict"], ["evaluate"], ["info"], ["gradcheck"], ["bench"]):
        p = run(*cmd, "--help")
        assert p.returncode == 0 and "usage: ffnn" in p.stdout


@pytest.mark.parametrize("args,fragment", [
    (["train", "--lr", "-1"], "--lr: must be a positive number, got -1"),
    (["train", "--hidden", "0"], "--hidden: every width must be a positive integer, got 0"),
    (["train", "--epochs", "0"], "--epochs: must be a positive integer, got 0"),
    (["train", "--validation", "1.5"], "--validation: must be a fraction in (0, 1)"),
    (["train", "--activation", "swish"], "unknown activation 'swish'"),
    (["train", "--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "--loop", "fast"], "invalid choice: 'fast'"),
    (["train", "--dropout-masks", "gpu"], "invalid choice: 'gpu'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["gradcheck"], "give a MODEL file or --sizes"),
])
def test_usage_errors_exit_2_with_one_line(args, fragment):
    _one_clean_line(run(*args), 2, fragment)


def test_data_problems_exit_1_with_one_line(tmp_path):
    cases = {
        "missing.csv": (None, "does not exist"),
        "empty.csv": ("", "is empty"),
        "nohead.csv": ("\n\n", "has no header row"),
        "ragged.csv": ("a,b,y\n1,2,0\n3,4\n", "line 3: 2 cells where the header has 3"),
        "text.csv": ("a,b,y\n1,red,0\n2,blue,1\n", "column 'b' is not numeric ('red')"),
        "nan.csv": ("a,b,y\n1,2,0\n1,,1\n", "line 3: column 'b' has a missing, NaN or infinite value"),
        "nan2.csv": ("a,b,y\n1,nan,0\n1,2,1\n", "line 2: column 'b' has a missing"),
        "binary.csv": (b"\xff\xfe\x00bin\x00", "not a text CSV file"),
    }
    for name, (content, fragment) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
        _one_clean_line(run("train", path, "--quiet", "--out", tmp_path / "m.safetensors"), 1, fragment)
    good = tmp_path / "good.csv"
    good.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    _one_clean_line(run("train", good, "--target", "label", "--quiet"), 1, "has no column 'label' (columns: a, b, y)")
    assert not (tmp_path / "m.safetensors").exists()


def test_bad_output_paths_and_no_overwrite(tmp_path, trained):
    good = tmp_path / "good.csv"
    good.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    _one_clean_line(run("train", good, "--quiet", "--out", tmp_path / "nope" / "m.safetensors"), 1,
                    "--out", "does not exist")
    _one_clean_line(run("train", good, "--quiet", "--plot", tmp_path / "nope" / "c.png"), 1, "--plot")
    existing = tmp_path / "keep.safetensors"
    existing.write_bytes(b"precious")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,y\n1,x,0\n")
    run("train", bad, "--quiet", "--out", existing)
    assert existing.read_bytes() == b"precious"
    out, _ = trained
    preds = tmp_path / "preds.csv"
    preds.write_text("old")
    _one_clean_line(run("predict", out / "m.safetensors", bad, "--out", preds), 1, "--out", "exists; pass --force")
    _one_clean_line(run("predict", out / "m.safetensors", bad, "--out", preds, "--force"), 1,
                    "has 3 feature columns; the model expects 4")
    assert preds.read_text() == "old"


def test_bad_model_files_and_feature_count(tmp_path, trained, iris_csv):
    out, _ = trained
    model = (out / "m.safetensors").read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(model[: len(model) // 2])
    _one_clean_line(run("info", tmp_path / "trunc.safetensors"), 1, "truncated")
    (tmp_path / "junk.safetensors").write_text("hello, I am not a model")
    _one_clean_line(run("predict", tmp_path / "junk.safetensors", iris_csv), 1, "not a safetensors file")
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(3)}, str(tmp_path / "foreign.safetensors"))
    _one_clean_line(run("info", tmp_path / "foreign.safetensors"), 1, "not an ffnn model")
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("a,b\n1,2\n3,4\n")
    _one_clean_line(run("predict", out / "m.safetensors", narrow), 1, "has 2 feature columns; the model expects 4")
    _one_clean_line(run("info", tmp_path / "absent.safetensors"), 1, "does not exist")


def test_ctrl_c_stops_cleanly_and_saves(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 20))
    np.savez(tmp_path / "big.npz", X=X, y=(X[:, 0] > 0).astype(int))
    proc = subprocess.Popen([sys.executable, "-m", "ffnn", "train", str(tmp_path / "big.npz"), "--epochs", "100000",
                             "--early-stopping", "0", "--batch-size", "4", "--out", str(tmp_path / "m.safetensors")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    line = ""
    while time.time() < deadline and "epoch 1 " not in line:
        line = proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted after" in err and "Traceback" not in err
    assert "model saved to" in out
    assert ffnn.load(tmp_path / "m.safetensors").metadata["summary"]["interrupted"] is True


def test_default_job_runs_on_embedded_digits(tmp_path):
    p = run("train", "--epochs", "3", "--quiet", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "digits (embedded default)" in p.stdout and "task: classify" in p.stdout
    assert (tmp_path / "model.safetensors").exists()
