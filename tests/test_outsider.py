"""What an outside test broke: save refusing exactly what load refuses, and the API's exception kinds
(TypeError or ValueError naming the argument, before any allocation)."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ffnn
from ffnn.io import FileFormatError

LEAVES = st.one_of(st.integers(-(10**420), 10**420), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=5), st.booleans(), st.none())


def _nested(depth):
    value = 1
    for _ in range(depth):
        value = {"a": [value]}
    return value


METADATA = st.one_of(st.recursive(LEAVES, lambda c: st.one_of(st.lists(c, max_size=3),
                                                               st.dictionaries(st.text("abc", min_size=1, max_size=3), c,
                                                                               max_size=3)), max_leaves=12),
                     st.integers(20, 40).map(_nested))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=METADATA)
def test_save_refuses_exactly_what_load_refuses(value, tmp_path):
    """Whatever save writes, load reads back (the same metadata); whatever it refuses leaves no file."""
    path = tmp_path / "m.safetensors"
    if path.exists():
        path.unlink()
    net = ffnn.Network([2, 3, 1], seed=0)
    try:
        ffnn.save(net, path, note=value)
    except (ValueError, TypeError) as exc:
        assert not path.exists()
        assert "\n" not in str(exc)
        return
    assert ffnn.load(path).metadata["note"] == value


def test_a_circular_or_too_deep_metadata_is_refused_with_no_file(tmp_path):
    cyclic = {}
    cyclic["self"] = cyclic
    net = ffnn.Network([2, 3, 1], seed=0)
    for value, fragment in ((cyclic, "refers to itself"), (_nested(40), "nested more than 64 levels"),
                            (10**400, "beyond the float range")):
        with pytest.raises(ValueError, match=fragment):
            ffnn.save(net, tmp_path / "m.safetensors", note=value)
        assert not os.path.exists(tmp_path / "m.safetensors")
    with pytest.raises(FileFormatError):  # load refuses the same: a file written around save
        from ffnn._files import parse_json

        parse_json('{"a": ' + "1" * 400 + "}", "the metadata")


@pytest.mark.parametrize("call, kind, fragment", [
    (lambda: ffnn.train(None, np.zeros((2, 2)), np.zeros((2, 1)), loss="mse"), TypeError, "ffnn.Network as net"),
    (lambda: ffnn.save(None, "never-written.safetensors"), TypeError, "needs an ffnn.Network"),
    (lambda: ffnn.Network([4, 10**12, 3]), ValueError, r"8,000,000,000,003 parameters: about .* GiB"),
])
def test_the_api_raises_type_or_value_errors_naming_the_problem(call, kind, fragment):
    with pytest.raises(kind, match=fragment):
        call()
    assert not os.path.exists("never-written.safetensors")


def test_an_estimator_too_large_to_allocate_is_refused_before_allocating():
    pytest.importorskip("sklearn")
    from ffnn.sklearn import MLPClassifier

    with pytest.raises(ValueError, match=r"widths \[2, 1000000000, 1\] has 4,000,000,001 parameters"):
        MLPClassifier(hidden_layer_sizes=(10**9,)).fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_an_unknown_device_is_a_value_error():
    pytest.importorskip("torch")
    for device in ("tpu9", 3.5):
        with pytest.raises(ValueError, match=r"is not a PyTorch device"):
            ffnn.Network([4, 3], device=device)


def test_the_memory_budget_reads_its_variable(monkeypatch):
    from ffnn._checks import memory_budget

    monkeypatch.setenv("FFNN_MEMORY_BUDGET", "3G")
    assert memory_budget() == 3 * 2**30
    monkeypatch.setenv("FFNN_MEMORY_BUDGET", "1000")
    assert memory_budget() == 1000
    with pytest.raises(ValueError, match="over the memory budget"):
        ffnn.Network([30, 30, 2])


def _cli(*args, stdout=None, shell_pipe=None):
    import subprocess
    import sys

    env = dict(os.environ, FFNN_LOOP="interpreted")
    if shell_pipe:
        cmd = " ".join([sys.executable, "-m", "ffnn", *map(str, args)]) + " | " + shell_pipe
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, env=env, executable="/bin/bash")
    return subprocess.run([sys.executable, "-m", "ffnn", *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, env=env)


@pytest.fixture
def model_and_data(tmp_path):
    net = ffnn.Network([2, 4, 2], "relu", "softmax", seed=0)
    ffnn.save(net, tmp_path / "m.safetensors", task="classify", loss="cross_entropy", classes=[0, 1],
              feature_names=["a", "b"], target="y")
    rows = np.random.default_rng(0).normal(size=(5000, 2))
    (tmp_path / "d.csv").write_text("a,b\n" + "\n".join(f"{a},{b}" for a, b in rows) + "\n")
    return tmp_path / "m.safetensors", tmp_path / "d.csv"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("command", ["predict", "info"])
def test_a_full_standard_output_is_one_line(command, model_and_data):
    model, data = model_and_data
    args = (command, model, data) if command == "predict" else (command, model)
    with open("/dev/full", "w") as full:
        p = _cli(*args, stdout=full)
    assert p.returncode == 1
    assert p.stderr == "ffnn: error: could not write standard output: No space left on device\n"


def test_a_closed_pipe_is_not_an_error(model_and_data):
    model, data = model_and_data
    p = _cli("predict", model, data, shell_pipe="head -1; exit ${PIPESTATUS[0]}")
    assert p.returncode == 0 and p.stdout == "prediction\n" and p.stderr == ""


def test_an_empty_width_is_a_usage_error():
    p = _cli("train", "--hidden", "8,,8")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "got an empty one in '8,,8'" in p.stderr


def test_one_dimensional_class_labels_train_as_their_one_hot_rows():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    a = ffnn.Network([3, 5, 3], "relu", "softmax", seed=0)
    b = a.copy()
    h1 = ffnn.train(a, X, y, loss="cross_entropy", epochs=3, seed=0, validation=(X[:10], y[:10]))
    h2 = ffnn.train(b, X, np.eye(3)[y], loss="cross_entropy", epochs=3, seed=0, validation=(X[:10], np.eye(3)[y[:10]]))
    assert h1.loss == h2.loss and h1.val_loss == h2.val_loss
    c = ffnn.Network([3, 5, 1], "relu", "sigmoid", seed=0)
    ffnn.train(c, X, (y > 0).astype(float), loss="binary_cross_entropy", epochs=1)  # 0/1 labels, one output
    with pytest.raises(ValueError, match=r"whole numbers 0 … 2 \(the output layer has 3 units\), got 5 at row"):
        ffnn.train(a, X, np.where(y == 2, 5, y), loss="cross_entropy", epochs=1)
    with pytest.raises(ValueError, match=r"use T.reshape\(-1, 1\) for a single column"):
        ffnn.train(ffnn.Network([3, 2]), X, y.astype(float), loss="mse", epochs=1)


def test_train_help_states_every_default():
    from ffnn.cli.parser import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        flag = action.nargs == 0  # a switch (--quiet, --no-diagnostics): its help says what it turns on or off
        if action.option_strings and not flag and action.default not in (None, "==SUPPRESS=="):
            assert "default" in (action.help or ""), action.option_strings


def test_smaller_things_an_outsider_found():
    with pytest.raises(ValueError, match="a softmax over one output is always 1"):
        ffnn.train(ffnn.Network([2, 1], output="softmax"), np.zeros((4, 2)), np.ones((4, 1)), loss="cross_entropy")
    for loss in ("mse", "half_sse"):  # the same answer for every loss: no samples is an error
        with pytest.raises(ValueError, match="X has no samples"):
            ffnn.Network([2, 1]).loss_and_gradients(np.zeros((0, 2)), np.zeros((0, 1)), loss)
    with pytest.raises(ValueError, match=r"row 1, column 0\) \(a value beyond the float32 range"):
        with np.errstate(over="ignore"):
            ffnn.Network([2, 1], dtype="float32").predict(np.array([[0.0, 0.0], [1e300, 0.0]]))
    assert "clipped to [eps, 1 − eps]" in ffnn.losses.cross_entropy.__doc__


def test_no_command_replaces_a_file_without_force(tmp_path, model_and_data):
    """One policy for every command that writes: an existing file is refused before any work, in one
    line naming the flag and the file, and left as it was; --force replaces it (atomically); the
    checkpoint a run resumes from is its own to write."""
    model, data = model_and_data
    train = tmp_path / "t.csv"
    train.write_text("a,b,y\n" + "".join(f"{i % 7},{i % 3},{i % 2}\n" for i in range(40)))
    fast = ("--epochs", "1", "--hidden", "3", "--quiet")
    for name in ("m2.safetensors", "c.png", "m.json", "ck.safetensors", "p.csv", "x.onnx", "b.json"):
        (tmp_path / name).write_bytes(b"keep")
    cases = [
        (("train", train, *fast, "--out", tmp_path / "m2.safetensors"), "--out"),
        (("train", train, *fast, "--out", tmp_path / "new.safetensors", "--plot", tmp_path / "c.png"), "--plot"),
        (("train", train, *fast, "--out", tmp_path / "new.safetensors", "--metrics", tmp_path / "m.json"), "--metrics"),
        (("train", train, *fast, "--out", tmp_path / "new.safetensors", "--checkpoint", tmp_path / "ck.safetensors"),
         "--checkpoint"),
        (("predict", model, data, "--out", tmp_path / "p.csv"), "--out"),
        (("export", model, tmp_path / "x.onnx"), "OUT"),
        (("bench", "--quick", "--json", tmp_path / "b.json"), "--json"),
    ]
    for args, flag in cases:
        p = _cli(*args)
        assert p.returncode == 1 and p.stderr.count("\n") == 1, p.stderr
        assert f"{flag} " in p.stderr and "exists; pass --force to replace it" in p.stderr, p.stderr
    assert all((tmp_path / n).read_bytes() == b"keep" for n in ("m2.safetensors", "c.png", "m.json", "ck.safetensors",
                                                                 "p.csv", "x.onnx", "b.json"))
    assert not (tmp_path / "new.safetensors").exists()
    p = _cli("train", train, *fast, "--out", tmp_path / "m2.safetensors", "--force")
    assert p.returncode == 0, p.stderr
    assert ffnn.load(tmp_path / "m2.safetensors").sizes == (2, 3, 2)
    p = _cli("predict", model, data, "--out", tmp_path / "p.csv", "--force")
    assert p.returncode == 0 and (tmp_path / "p.csv").read_text().startswith("prediction\n")
    ck = tmp_path / "ck2.safetensors"  # a run writes its checkpoint, a second one resumes from it
    assert _cli("train", train, *fast, "--out", tmp_path / "r1.safetensors", "--checkpoint", ck).returncode == 0
    p = _cli("train", train, "--epochs", "2", "--hidden", "3", "--quiet", "--out", tmp_path / "r2.safetensors",
             "--checkpoint", ck, "--resume", ck)
    assert p.returncode == 0, p.stderr


def test_a_missing_input_column_is_named(tmp_path):
    from ffnn.data import DataError, read_dataset

    path = tmp_path / "a.csv"
    path.write_text("a,c,y\n1,2,0\n")
    with pytest.raises(DataError, match=r"has no column 'b': the model was trained on 2 named features and finds 1"):
        read_dataset(path, require_target=False, expected_features=["a", "b"])
    names = [f"f{i}" for i in range(30)] + ["a"]
    with pytest.raises(DataError, match=r"has no columns 'f0', 'f1', 'f2', 'f3', 'f4' and 25 more: .* 31 named"):
        read_dataset(path, require_target=False, expected_features=names)
    assert read_dataset(path, require_target=False, expected_features=["c", "a"]).feature_names == ["c", "a"]


def test_a_loaded_models_metadata_prints_short(tmp_path):
    """print(net.metadata) after load: the History and the Scaler are one short line each, not every
    epoch's diagnostics; str(history) is still the per-epoch table."""
    from ffnn.data import Scaler

    X = np.random.default_rng(0).normal(size=(40, 3))
    net = ffnn.Network([3, 8, 1], seed=0)
    h = ffnn.train(net, X, X[:, :1], loss="mse", epochs=200, validation=(X[:8], X[:8, :1]))
    ffnn.save(net, tmp_path / "m.safetensors", history=h, loss="mse", scaler=Scaler().fit(X))
    meta = ffnn.load(tmp_path / "m.safetensors").metadata
    text = repr(meta)
    assert len(text) < 400, text
    assert f"History(200 epochs, loss {h.loss[0]:.4g} → {h.loss[-1]:.4g}, val_loss" in text
    assert "Scaler('standard', 3 features)" in text
    assert str(meta["history"]).count("\n") == 200 and meta["history"].loss == h.loss


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_evaluate_reports_per_class_scores_and_the_confusion_matrix(tmp_path, suffix):
    """``ffnn evaluate`` prints scikit-learn's classification report and the confusion matrix (in
    chunks for a CSV, whole for .npz), the same numbers as scikit-learn computes from the predictions."""
    import json

    from sklearn.metrics import classification_report, confusion_matrix

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    y = np.array(["cat", "dog", "emu"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    net = ffnn.Network([3, 6, 3], "tanh", "softmax", seed=0)
    ffnn.train(net, X, np.eye(3)[np.searchsorted(["cat", "dog", "emu"], y)], loss="cross_entropy", epochs=5)
    ffnn.save(net, tmp_path / "m.safetensors", task="classify", loss="cross_entropy", classes=["cat", "dog", "emu"],
              feature_names=["a", "b", "c"], target="y")
    data = tmp_path / f"d{suffix}"
    if suffix == ".csv":
        data.write_text("a,b,c,y\n" + "".join(f"{r[0]},{r[1]},{r[2]},{t}\n" for r, t in zip(X.tolist(), y)))
    else:
        np.savez(data, X=X, y=y)
    pred = np.array(["cat", "dog", "emu"])[net.predict(X).argmax(axis=1)]
    p = _cli("evaluate", tmp_path / "m.safetensors", data, "--json", stdout=-1)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["confusion_matrix"] == confusion_matrix(y, pred, labels=["cat", "dog", "emu"]).tolist()
    theirs = classification_report(y, pred, output_dict=True, zero_division=0)
    for key, value in theirs.items():
        assert out["report"][key] == (pytest.approx(value, abs=1e-12) if key == "accuracy" else
                                      {m: pytest.approx(v, abs=1e-12) for m, v in value.items()})
    text = _cli("evaluate", tmp_path / "m.safetensors", data, stdout=-1).stdout.splitlines()
    assert text[0].startswith("model ") and "accuracy" in text[0]
    assert text[2].split() == ["precision", "recall", "f1-score", "support"] and text[3].split()[0] == "cat"
    assert "true \\ predicted" in text[-4] and text[-3].split()[0] == "cat"


def test_gradcheck_has_a_time_limit_and_reports_progress():
    net = ffnn.Network([4, 8, 3], "tanh", seed=0)
    X, T = np.random.default_rng(0).normal(size=(5, 4)), np.random.default_rng(1).normal(size=(5, 3))
    seen = []
    full = ffnn.gradcheck(net, X, T, "mse", progress=lambda done, total: seen.append((done, total)))
    assert full.complete and full.passed and seen[-1] == (87, 87)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and len(seen) == 87
    cut = ffnn.gradcheck(net, X, T, "mse", max_seconds=1e-9)
    assert not cut.complete and not cut.passed and "NOT CHECKED" in str(cut)
    with pytest.raises(ValueError, match="max_seconds"):
        ffnn.gradcheck(net, X, T, "mse", max_seconds=0)


def test_gradcheck_on_the_command_line_stops_at_its_time_limit():
    import time

    t0 = time.perf_counter()
    p = _cli("gradcheck", "--sizes", "4,8,3", "--max-entries", "0", "--samples", "10000", "--max-seconds", "1",
             stdout=-1)
    assert time.perf_counter() - t0 < 60
    assert p.returncode == 0, p.stderr
    assert "four evaluations of J each" in p.stdout and "--max-seconds S stops after S" in p.stdout
    assert "by the time limit" in p.stdout and "stopped at the time limit" in p.stdout
    p = _cli("gradcheck", "--sizes", "4,3", "--max-seconds", "0")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--max-seconds" in p.stderr


def test_a_status_line_for_a_terminal_and_for_a_log():
    import io

    from ffnn.cli.terminal import Status

    log = io.StringIO()
    status = Status(after=0.0, every=0.0, stream=log)
    status.show(lambda left: f"checked entries: 5 of 20, about {left(0.25):.0f} s left")
    status.show("second")
    status.close()
    assert log.getvalue().startswith("checked entries: 5 of 20, about 0 s left\n") and log.getvalue().endswith("second\n")

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    tty = Terminal()
    status = Status(after=0.0, stream=tty)
    status.show("a long line")
    status.close()
    assert tty.getvalue() == "\ra long line" + "\r" + " " * 11 + "\r" and "\x1b" not in tty.getvalue()
    quiet = io.StringIO()
    Status(after=60.0, stream=quiet).show("too early")
    assert quiet.getvalue() == ""


KEYS = st.one_of(st.sampled_from(["", ".", "a.b", "__x", "_ok", "__", "ok"]), st.text("ab._", max_size=3))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.recursive(st.integers(0, 3), lambda c: st.one_of(st.lists(c, max_size=2),
                                                                 st.dictionaries(KEYS, c, max_size=2)), max_leaves=6),
       top=KEYS)
def test_load_refuses_exactly_what_save_refuses_in_a_file_without_a_checksum(value, top, tmp_path):
    """A file whose metadata was edited by hand (its checksum removed): load takes exactly the keys save
    writes, at every depth."""
    from .hostile import edit_meta

    net = ffnn.Network([2, 2], seed=0)
    path = tmp_path / "m.safetensors"
    ffnn.save(net, path)

    def change(meta):
        meta["metadata"] = {top: value}

    path.write_bytes(edit_meta(path.read_bytes(), "ffnn", change))
    try:
        ffnn.save(net, tmp_path / "again.safetensors", **{top: value})
        saves = True
    except ValueError:
        saves = False
    try:
        loaded = ffnn.load(path).metadata
        loads = True
    except FileFormatError:
        loads = False
    assert saves == loads, (top, value)
    if loads:
        assert loaded == {top: value}
