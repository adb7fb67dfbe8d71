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
    code, _, err = cli("train", real_files["csv"], *FAST, "--out", out)
    _one_line(code, err, 1, "could not write model file", "m.safetensors", "No space left on device")
    assert out.read_bytes() == b"previous model" and os.listdir(tmp_path) == ["m.safetensors"]


def test_symlinked_outputs_are_written_through_with_their_mode(real_files, tmp_path):
    target = tmp_path / "real.safetensors"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    os.symlink(target.name, tmp_path / "link.safetensors")
    code, _, err = cli("train", real_files["csv"], *FAST, "--out", tmp_path / "link.safetensors")
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


# --- a few of the same, as a user runs them ------------------------------------------------------------

def _run(*args):
    return subprocess.run([sys.executable, "-m", "ffnn", *map(str, args)], capture_output=True, text=True, timeout=120)


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
    assert code == 2 and "--seed: must be 0 or a positive integer, got -1" in err and err.count("\n") <= 1, err
    code, _, err = cli("gradcheck", "--sizes", "1000000000000,2")  # 14.6 TiB: refused by the allocator at once
    assert code == 1 and err.strip() == "ffnn: error: not enough memory for what was asked (sizes, samples or " \
                                         "data too large)", err
