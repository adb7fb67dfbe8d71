"""The command line in-process (ffnn.cli.main): outputs checked before work, contradictory flags,
write errors, escaped text, and fuzzed inputs; a few of the same cases as a user runs them."""

import os
import stat
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import ffnn

from .conftest import cli
from .hostile import snapshot

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
FAST = ["--quiet", "--epochs", "2", "--hidden", "3", "--early-stopping", "0"]


def _one_line(code, err, expected, *fragments):
    assert code == expected, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_outputs_are_checked_before_any_work(real_files, tmp_path):
    data = tmp_path / "d.csv"
    data.write_bytes(real_files["csv"].read_bytes())
    model = tmp_path / "m.safetensors"
    model.write_bytes(real_files["clf"].read_bytes())
    os.mkfifo(tmp_path / "fifo")
    before = snapshot(tmp_path)
    cases = [
        (["train", data, "--out", data], "is the same file as the input DATA"),
        (["train", data, "--out", tmp_path / "o", "--plot", tmp_path / "o"], "--plot"),
        (["train", data, "--out", tmp_path / "o", "--metrics", tmp_path / "o"], "--metrics"),
        (["train", data, "--out", tmp_path / "o", "--checkpoint", tmp_path / "o"], "--checkpoint"),
        (["train", data, "--out", tmp_path / "fifo"], "special file"),
        (["train", data, "--out", "/dev/null"], "special file"),
        (["train", data, "--out", ""], "empty"),
        (["train", data, "--out", str(tmp_path / "newdir") + "/"], "names a folder"),
        (["train", data, "--out", tmp_path / ("x" * 300)], "too long"),
        (["predict", model, data, "--out", model], "same file as the input MODEL"),
        (["predict", model, data, "--out", data], "same file as the input DATA"),
        (["bench", "--json", tmp_path / "nodir" / "b.json"], "does not exist"),
    ]
    for args, fragment in cases:
        code, out, err = cli(*args, *(FAST if args[0] == "train" else []))
        _one_line(code, err, 1, fragment)
        assert "task:" not in out  # refused before reading the data
    assert snapshot(tmp_path) == before and stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)


@pytest.mark.parametrize("flags,fragment", [
    (["--optimizer", "adam", "--momentum", "0.9"], "--momentum is for --optimizer sgd"),
    (["--task", "regress", "--loss", "cross_entropy"], "--loss cross_entropy is for classification"),
    (["--task", "regress", "--output", "softmax"], "--output softmax is for classification"),
    (["--optimizer", "sgd", "--nesterov"], "--nesterov needs"),
])
def test_contradictory_flags_are_usage_errors(real_files, tmp_path, flags, fragment):
    code, _, err = cli("train", real_files["npz"], *FAST, *flags, "--out", tmp_path / "m.safetensors")
    _one_line(code, err, 2, fragment)
    assert not os.listdir(tmp_path)


def test_write_errors_are_one_line_and_keep_the_old_file(real_files, tmp_path, monkeypatch):
    from ffnn import _files

    out = tmp_path / "m.safetensors"
    out.write_bytes(b"previous model")

    monkeypatch.setattr(_files.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    code, _, err = cli("train", real_files["csv"], *FAST, "--out", out, "--force")
    _one_line(code, err, 1, "could not write --out", "m.safetensors", "No space left on device")
    assert out.read_bytes() == b"previous model" and os.listdir(tmp_path) == ["m.safetensors"]


@pytest.mark.parametrize("failing", [1, 2, 3])
def test_the_results_are_written_all_or_none(real_files, tmp_path, monkeypatch, failing):
    """The disk fills while the model, the curves or the metrics are written: none of the three
    files changes and no temporary file stays."""
    from ffnn import _files

    for name in ("m.safetensors", "c.png", "m.json"):
        (tmp_path / name).write_bytes(b"previous " + name.encode())
    before = snapshot(tmp_path)
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == failing:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(_files.os, "fsync", fsync)
    code, out, err = cli("train", real_files["csv"], *FAST, "--out", tmp_path / "m.safetensors",
                         "--plot", tmp_path / "c.png", "--metrics", tmp_path / "m.json", "--force")
    flag = ["--out", "--plot", "--metrics"][failing - 1]
    _one_line(code, err, 1, f"could not write {flag}", "No space left on device")
    assert snapshot(tmp_path) == before and "saved to" not in out


def test_symlinked_outputs_are_written_through_with_their_mode(real_files, tmp_path):
    target = tmp_path / "real.safetensors"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    os.symlink(target.name, tmp_path / "link.safetensors")
    code, _, err = cli("train", real_files["csv"], *FAST, "--out", tmp_path / "link.safetensors")
    _one_line(code, err, 1, "--out", "link.safetensors", "exists; pass --force to replace it")
    assert target.read_bytes() == b"old"
    code, _, err = cli("train", real_files["csv"], *FAST, "--out", tmp_path / "link.safetensors", "--force")
    assert code == 0, err
    assert os.path.islink(tmp_path / "link.safetensors") and stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert ffnn.load(target).sizes == (3, 3, 3)


def test_info_escapes_the_files_text(tmp_path):
    net = ffnn.Network([2, 2], "identity", "softmax", seed=0)
    ffnn.save(net, tmp_path / "m.safetensors", task="classify", classes=["\x1b]0;pwned\x07", "b"], target="\x1b[2J")
    code, out, err = cli("info", tmp_path / "m.safetensors")
    assert code == 0, err
    assert "\x1b" not in out and "\\x1b]0;pwned\\x07" in out and "target: \\x1b[2J" in out


def test_labels_keep_their_text_and_predict_ignores_a_blank_target(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    labels = np.array(["01", "1", "002"])[np.argmax(X @ rng.normal(size=(2, 3)), axis=1)]
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(f"{x[0]},{x[1]},{l}\n" for x, l in zip(X, labels)))
    code, _, err = cli("train", tmp_path / "d.csv", *FAST, "--out", tmp_path / "m.safetensors")
    assert code == 0, err
    assert ffnn.load(tmp_path / "m.safetensors").metadata["classes"] == ["002", "01", "1"]
    (tmp_path / "x.csv").write_text("a,b,y\n" + "".join(f"{x[0]},{x[1]},\n" for x in X[:5]))
    code, out, err = cli("predict", tmp_path / "m.safetensors", tmp_path / "x.csv")
    assert code == 0, err
    assert set(out.split()[1:]) <= {"01", "1", "002"} and len(out.split()) == 6
    code, out, err = cli("evaluate", tmp_path / "m.safetensors", tmp_path / "d.csv")
    assert code == 0 and "accuracy" in out, err


def test_integer_labels_come_back_as_integers(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] > 0).astype(float) + 1)
    code, _, err = cli("train", tmp_path / "d.npz", *FAST, "--out", tmp_path / "m.safetensors")
    assert code == 0, err
    code, out, _ = cli("predict", tmp_path / "m.safetensors", tmp_path / "d.npz")
    assert set(out.split()[1:]) <= {"1", "2"}


# --- fuzzing ---------------------------------------------------------------------------------------

def _mutate(data, blob, alphabet=None):
    b = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, max(len(b) - 1, 0)))
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
        if kind == "flip" and b:
            b[at] = data.draw(st.sampled_from(alphabet)) if alphabet else b[at] ^ data.draw(st.integers(1, 255))
        elif kind == "truncate":
            del b[at:]
        else:
            b[at:at] = bytes(data.draw(st.lists(st.sampled_from(alphabet or b"\0\xff,\n"), min_size=1, max_size=5)))
    return bytes(b)


def _check(code, err, path, out=None):
    """Exit 0 (and then a loadable model at ``out``), or 1/2 with one line naming a file or flag."""
    assert code in (0, 1, 2), err
    event(f"exit {code}")
    if code == 0:
        if out is not None:
            ffnn.load(out)
        return
    _one_line(code, err, code)
    assert out is None or not os.path.exists(out)


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["csv", "npz", "parquet"]))
def test_fuzz_training_data(real_files, tmp_path_factory, data, kind):
    if kind not in real_files:
        return
    d = tmp_path_factory.mktemp("train")
    path = d / f"d.{kind}"
    alphabet = b'0123456789.,-+e\n"ainf \xff' if kind == "csv" else None
    path.write_bytes(_mutate(data, real_files[kind].read_bytes(), alphabet))
    before = snapshot(d)
    code, _, err = cli("train", path, *FAST, "--out", d / "m.safetensors")
    _check(code, err, path, d / "m.safetensors")
    if code != 0:
        assert str(path) in err or "--" in err or "target" in err, err
    after = snapshot(d)
    after.pop("m.safetensors", None)
    assert after == before


@FUZZ
@given(data=st.data(), command=st.sampled_from(["predict", "evaluate", "info", "gradcheck"]))
def test_fuzz_model_files_through_every_command(real_files, tmp_path_factory, data, command):
    d = tmp_path_factory.mktemp("model")
    model = d / "m.safetensors"
    model.write_bytes(_mutate(data, real_files["clf"].read_bytes()))
    before = snapshot(d)
    args = {"predict": [model, real_files["csv"]], "evaluate": [model, real_files["csv"]], "info": [model],
            "gradcheck": [model]}[command]
    code, _, err = cli(command, *args)
    _check(code, err, model)
    if code != 0:  # the model, or the data a changed model no longer fits
        assert str(model) in err or str(real_files["csv"]) in err, err
    assert snapshot(d) == before


@FUZZ
@given(data=st.data())
def test_fuzz_checkpoints_through_train_resume(real_files, tmp_path_factory, data):
    """A changed or cut checkpoint resumes (exit 0, a loadable model) or is one line naming it."""
    d = tmp_path_factory.mktemp("resume")
    ckpt = d / "c.ckpt"
    ckpt.write_bytes(_mutate(data, real_files["ckpt"].read_bytes()))
    before = snapshot(d)
    code, _, err = cli("train", real_files["csv"], "--quiet", "--epochs", "6", "--hidden", "5", "--seed", "1",
                       "--resume", ckpt, "--out", d / "m.safetensors")
    _check(code, err, ckpt, d / "m.safetensors")
    if code != 0:
        assert str(ckpt) in err, err
    after = snapshot(d)
    after.pop("m.safetensors", None)
    assert after == before


# --- a few of the same, as a user runs them ------------------------------------------------------------

def _run(*args):
    # the interpreted loop (FFNN_LOOP): each process skips numba's start; the loops are tested elsewhere
    return subprocess.run([sys.executable, "-m", "ffnn", *map(str, args)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, FFNN_LOOP="interpreted"))


def test_as_a_user_runs_it(real_files, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    model = tmp_path / "m.safetensors"
    model.write_bytes(real_files["clf"].read_bytes())
    blob = bytearray(model.read_bytes())
    blob[-2] ^= 0x40
    (tmp_path / "flipped.safetensors").write_bytes(bytes(blob))
    before = snapshot(tmp_path)
    for args, code, fragment in (
        (["train", real_files["csv"], "--out", tmp_path / "fifo"], 1, "special file"),
        (["predict", model, real_files["csv"], "--out", model], 1, "same file as the input MODEL"),
        (["info", tmp_path / "flipped.safetensors"], 1, "checksum"),
        (["train", real_files["npz"], "--optimizer", "adam", "--momentum", "0.5"], 2, "--momentum"),
    ):
        p = _run(*args)
        _one_line(p.returncode, p.stderr, code, fragment)
    assert snapshot(tmp_path) == before


def test_features_beyond_the_float_range_are_one_line_and_write_nothing(tmp_path):
    rows = "\n".join(f"{v},{i % 3}" for i, v in enumerate(["1.7e308", "-1.7e308", "1"] * 10))
    data = tmp_path / "d.csv"
    data.write_text("x,y\n" + rows + "\n")
    code, _, err = cli("train", data, *FAST, "--scale", "minmax", "--out", tmp_path / "m.safetensors")
    assert code == 1 and err.count("\n") <= 1 and "Traceback" not in err, err
    assert "--scale minmax: features: column 0 spans more than the float range" in err
    assert not (tmp_path / "m.safetensors").exists()
    code, _, err = cli("train", data, *FAST, "--out", tmp_path / "m.safetensors")  # standard scaling copes
    assert code == 0, err


def test_negative_seeds_and_impossible_sizes_are_one_line():
    code, _, err = cli("train", "--seed", "-1", *FAST)
    assert code == 2 and "--seed: must be a non-negative integer, got -1" in err and err.count("\n") <= 1, err
    code, _, err = cli("gradcheck", "--sizes", "1000000000000,2")  # refused before any allocation, with its size
    assert code == 2 and err.count("\n") == 1 and "has 2,000,000,000,002 parameters: about" in err \
        and "over the memory budget" in err, err


def test_predict_and_evaluate_refuse_features_beyond_what_the_model_can_compute(real_files, tmp_path):
    from ffnn.data import Scaler

    data = tmp_path / "d.csv"
    data.write_text("a,b,c,kind\n0.1,0.2,0.3,ant\n1.7e308,0.2,0.3,bee\n")
    fine = tmp_path / "fine.safetensors"  # trained on features of scale 1e-10: 1.7e308 overflows when scaled
    ffnn.save(ffnn.Network([3, 4, 2], "tanh", "softmax", seed=0), fine, task="classify", loss="cross_entropy",
              classes=["ant", "bee"], feature_names=["a", "b", "c"], target="kind",
              scaler=Scaler("standard").fit(np.random.default_rng(0).normal(size=(20, 3)) * 1e-10))
    for model, fragment in ((fine, "d.csv': row 2, feature 'a': 1.7e+308 is beyond the float range once scaled"),
                            (real_files["clf"], "d.csv': row 2: the model's outputs are not finite for its features")):
        for command in ("predict", "evaluate"):
            code, out, err = cli(command, model, data)
            _one_line(code, err, 1, fragment)
            assert out == ""


@pytest.mark.parametrize("value", ["1.5", "1e300", "-3"])
def test_evaluate_refuses_a_label_that_is_not_one_of_the_integer_classes(tmp_path, value):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] > 0).astype(int))
    code, _, err = cli("train", tmp_path / "d.npz", *FAST, "--out", tmp_path / "m.safetensors")
    assert code == 0, err
    (tmp_path / "e.csv").write_text(f"x0,x1,y\n0.1,0.2,1\n0.3,0.4,{value}\n")
    code, out, err = cli("evaluate", tmp_path / "m.safetensors", tmp_path / "e.csv", "--target", "y")
    _one_line(code, err, 1, "e.csv", f"label {float(value) if value != '-3' else -3!r} was not seen in training")


@pytest.mark.parametrize("values", [("1e300", "2e300", "-1e300"), ("1.7e308", "1e308", "-1.7e308")])
def test_targets_beyond_the_exact_integers_are_a_regression(tmp_path, values):
    """1e300, 2e300, −1e300 are whole floats but not countable labels: ffnn regresses on them (no
    int64 overflow, no warning; the suite runs with floating-point errors raised)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(f"{x[0]},{x[1]},{values[i % 3]}\n"
                                                         for i, x in enumerate(X)))
    code, out, err = cli("train", tmp_path / "d.csv", *FAST, "--out", tmp_path / "m.safetensors")
    assert code == 0 and err == "", err
    assert "task: regress (the target holds 3 distinct numeric values)" in out


@pytest.mark.parametrize("args,fragment", [
    (["train", "--loss", "cross_entropy", "--output", "identity"],
     "ffnn train: --loss cross_entropy needs outputs that are probabilities (--output softmax); --output identity"),
    (["train", "--loss", "binary_cross_entropy", "--output", "tanh"], "(--output sigmoid or softmax)"),
    (["gradcheck", "--sizes", "4,3", "--loss", "cross_entropy", "--output", "identity"],
     "ffnn gradcheck: --loss cross_entropy needs outputs that are probabilities"),
    (["gradcheck", "--sizes", "4,3", "--max-entries", "-1"], "--max-entries: must be a non-negative integer"),
])
def test_a_loss_on_outputs_it_is_not_defined_for_is_a_usage_error(args, fragment):
    code, out, err = cli(*args, *(FAST[:1] if args[0] == "train" else []))
    _one_line(code, err, 2, fragment)
    assert "data:" not in out  # found before the data are read


def test_gradcheck_samples_large_arrays_and_a_failure_is_one_line_on_stderr(tmp_path, monkeypatch):
    code, out, err = cli("gradcheck", "--sizes", "300,200,3", "--max-entries", "50", "--loss", "cross_entropy")
    assert code == 0 and err == "", err
    assert "(50 of 60000 entries, at random)" in out and "PASSED" in out
    code, out, _ = cli("gradcheck", "--sizes", "4,3", "--max-entries", "0")
    assert code == 0 and "at random" not in out
    monkeypatch.setattr(ffnn.activations.tanh, "derivative_from_output", lambda a: 1.01 * (1 - a * a))  # a wrong σ′
    code, out, err = cli("gradcheck", "--sizes", "4,5,2")
    _one_line(code, err, 1, "ffnn: error: gradient check failed: W[1] has relative error")
    assert "FAILED" in out


def test_gradcheck_of_a_model_whose_loss_overflows_is_one_line(tmp_path):
    net = ffnn.Network([3, 4, 2], "relu", "softmax", seed=0)
    net.weights[1][...] = 1e308
    ffnn.save(net, tmp_path / "m.safetensors", task="classify", loss="cross_entropy", classes=["a", "b"])
    code, _, err = cli("gradcheck", tmp_path / "m.safetensors")
    _one_line(code, err, 1, "m.safetensors': the loss is nan at this network's weights")


def test_bench_gpu_without_pytorch_is_one_line_on_stderr(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    code, out, err = cli("bench", "--gpu", "--quick")
    _one_line(code, err, 1, "ffnn: error: bench --gpu needs PyTorch: pip install 'ffnn[torch]'")
    assert out == ""


def test_a_csv_with_a_quote_never_closed_names_its_line(tmp_path):
    rows = [f"{i * 0.1},{i % 2}" for i in range(40)]
    rows[6] = '0.6,"1'
    (tmp_path / "d.csv").write_text("x,y\n" + "\n".join(rows) + "\n")
    code, _, err = cli("train", tmp_path / "d.csv", *FAST)
    _one_line(code, err, 1, "d.csv', line 8: a quoted cell that starts on this line is never closed")


def test_file_names_and_labels_reach_a_terminal_escaped(real_files, tmp_path):
    """On a terminal (a pseudo-terminal here), what a command prints cannot carry escape sequences:
    file names and labels arrive escaped on every path, the successful ones included."""
    import pty

    data = tmp_path / "e\x1b[2Jsc.csv"
    data.write_bytes(real_files["csv"].read_bytes().replace(b"ant", b"a\x1b]0;t\x07nt"))
    model, onnx = tmp_path / "o\x1b[31m.st", tmp_path / "x\x1b[2J.h"
    for args in (["train", data, "--epochs", "2", "--out", model], ["evaluate", model, data],
                 ["predict", model, data], ["info", model], ["export", model, onnx]):
        leader, follower = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "ffnn", *map(str, args)], stdout=follower, stderr=follower)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the pseudo-terminal closes with the process
                break
            if not chunk:
                break
            seen += chunk
        os.close(leader)
        assert proc.wait(timeout=120) == 0, seen
        assert b"\x1b" not in seen and b"\x07" not in seen, (args[0], seen)
        assert b"\\x1b" in seen, (args[0], seen)


def test_a_closed_stdout_is_no_traceback(real_files):
    proc = subprocess.run(f"{sys.executable} -m ffnn info {real_files['clf']} >&-", shell=True, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_integer_labels_beyond_2_53_stay_exact(tmp_path):
    big = 2**53
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 2))
    labels = np.array([big, big + 1, big + 2])[np.argmax(X @ rng.normal(size=(2, 3)), axis=1)]
    (tmp_path / "d.csv").write_text("a,b,y\n" + "".join(f"{x[0]},{x[1]},{l}\n" for x, l in zip(X, labels)))
    code, out, err = cli("train", tmp_path / "d.csv", *FAST, "--out", tmp_path / "m.safetensors")
    assert code == 0 and "3 distinct integer values" in out, err
    assert ffnn.load(tmp_path / "m.safetensors").metadata["classes"] == [big, big + 1, big + 2]
    code, out, err = cli("predict", tmp_path / "m.safetensors", tmp_path / "d.csv")
    assert code == 0 and set(out.split()[1:]) <= {str(big), str(big + 1), str(big + 2)}, err
    (tmp_path / "e.csv").write_text(f"a,b,y\n0.1,0.2,{big + 3}\n")
    code, _, err = cli("evaluate", tmp_path / "m.safetensors", tmp_path / "e.csv")
    _one_line(code, err, 1, f"label {big + 3} was not seen in training")


def test_text_that_is_not_unicode_or_not_in_the_streams_encoding(tmp_path, monkeypatch):
    np.savez(tmp_path / "s.npz", X=np.random.default_rng(0).normal(size=(60, 2)), y=np.array(["a\ud800", "b", "c"] * 20))
    code, _, err = cli("train", tmp_path / "s.npz", *FAST)
    _one_line(code, err, 1, "s.npz': y holds text that is not valid Unicode (row 0: a lone surrogate)")
    np.savez(tmp_path / "g.npz", X=np.random.default_rng(0).normal(size=(60, 2)), y=np.array(["α", "β", "γ"] * 20))
    code, _, err = cli("train", tmp_path / "g.npz", *FAST, "--out", tmp_path / "g.st")
    assert code == 0, err
    proc = subprocess.run([sys.executable, "-m", "ffnn", "predict", str(tmp_path / "g.st"), str(tmp_path / "g.npz")],
                          capture_output=True, timeout=120, env=dict(os.environ, PYTHONIOENCODING="ascii"))
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert set(proc.stdout.split()[1:]) <= {b"\\u03b1", b"\\u03b2", b"\\u03b3"}


def test_numeric_trouble_in_training_is_one_line_not_warnings(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3)) * 1e150
    (tmp_path / "d.csv").write_text("a,b,c,y\n" + "".join(f"{x[0]},{x[1]},{x[2]},{'pq'[i % 2]}\n"
                                                           for i, x in enumerate(X)))
    proc = _run("train", tmp_path / "d.csv", "--scale", "none", "--epochs", "3", "--quiet", "--optimizer", "sgd",
                "--lr", "1e10", "--out", tmp_path / "m.st")
    _one_line(proc.returncode, proc.stderr, 1, "training diverged")
    assert not (tmp_path / "m.st").exists()


def test_gradcheck_samples_are_bounded():
    code, _, err = cli("gradcheck", "--sizes", "4,3", "--samples", "100000000")
    _one_line(code, err, 2, "--samples: must be an integer in [1, 10000], got 100000000")
