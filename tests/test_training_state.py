"""ffnn.training.state: a run written to a checkpoint and restored from it — the resumed run equals the
uninterrupted one bit for bit, for every optimiser's state — and checkpoints that do not fit, or are malformed, refused before anything changes."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ffnn
from ffnn._files import read_arrays

from .conftest import blobs as _blobs
from .conftest import optimizer_factories
from .conftest import same_weights as _same
from .hostile import edit_meta, json_paths, json_values, snapshot, split

SLOTS = {"sgd": [], "momentum": ["velocity"], "nesterov": ["velocity"], "adam": ["m", "s"], "adamw": ["m", "s"],
         "rmsprop": ["s"]}
OPTIMIZERS = optimizer_factories(weight_decay=0.1)


def _short_run(make_opt, epochs, **kwargs):
    X, T, _ = _blobs(40)
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    opt = make_opt()
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=opt, epochs=epochs, batch_size=16, seed=3, **kwargs)
    return net, opt, h


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizers_state_round_trips(tmp_path, name):
    from safetensors.numpy import load_file

    path = tmp_path / "c.ckpt"
    _, opt, _ = _short_run(OPTIMIZERS[name], 2, checkpoint=path)
    stored = load_file(str(path))
    slots = [s for s in opt.state if s != "step"]
    assert slots == SLOTS[name]
    assert sorted(k for k in stored if k.startswith("opt.")) == sorted(
        f"opt.{s}.{k}.{l}" for s in slots for k in "Wb" for l in (1, 2))  # by layer, as W.1 and b.1
    for s in slots:
        for array, v in zip(["W.1", "b.1", "W.2", "b.2"], opt.state[s]):
            np.testing.assert_array_equal(stored[f"opt.{s}.{array}"], v)
    resumed, opt_r, h_r = _short_run(OPTIMIZERS[name], 4, resume=path)
    straight, opt_s, h_s = _short_run(OPTIMIZERS[name], 4)
    assert _same(resumed, straight)
    assert opt_r.state["step"] == opt_s.state["step"] == 4 * 3
    for s in slots:
        assert all(np.array_equal(a, b) for a, b in zip(opt_r.state[s], opt_s.state[s]))
    assert h_r.loss == h_s.loss and h_r.epoch == [1, 2, 3, 4]


def test_resume_with_another_loss_or_optimizer_is_refused(tmp_path):
    path = tmp_path / "c.ckpt"
    _short_run(OPTIMIZERS["adam"], 1, checkpoint=path)
    X, T, _ = _blobs(40)
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    before = net.copy()
    with pytest.raises(ValueError, match="was trained with loss 'cross_entropy', not 'mse'"):
        ffnn.train(net, X, T, loss="mse", optimizer="adam", resume=path)
    with pytest.raises(ValueError, match="was trained with optimizer 'adam', not 'rmsprop'"):
        ffnn.train(net, X, T, loss="cross_entropy", optimizer="rmsprop", resume=path)
    other = ffnn.Network([4, 6, 3], "relu", "softmax", seed=0)
    with pytest.raises(ValueError, match=r"has activations \['tanh', 'softmax'\]; this network has \['relu'"):
        ffnn.train(other, X, T, loss="cross_entropy", optimizer="adam", resume=path)
    assert _same(net, before)


def test_a_checkpoint_from_a_newer_format_is_refused(tmp_path):
    import json

    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open

    path = tmp_path / "c.ckpt"
    _short_run(OPTIMIZERS["sgd"], 1, checkpoint=path)
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    inner = json.loads(meta["ffnn_checkpoint"])
    inner["format"] += 1
    save_file(load_file(str(path)), str(path), metadata={**meta, "ffnn_checkpoint": json.dumps(inner)})
    X, T, _ = _blobs(40)
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    with pytest.raises(ValueError, match="written by a newer ffnn"):
        ffnn.train(net, X, T, loss="cross_entropy", optimizer="sgd", resume=path)


# --- a run with validation, dropout, early stopping and a plateau schedule -------------------------

def _ckpt_run(tmp_path, epochs, resume=None, checkpoint=None):
    X, T, _ = _blobs(150)
    net = ffnn.Network([4, 8, 3], "relu", "softmax", seed=0)
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.05, momentum=0.9, nesterov=True),
                   epochs=epochs, batch_size=16, seed=7, dropout=0.1, validation=0.2, early_stopping=50,
                   schedule="plateau", checkpoint=checkpoint, resume=resume)
    return net, h


def test_checkpoint_written_exactly_at_path_and_resume_is_exact(tmp_path):
    path = tmp_path / "run.ckpt"
    _ckpt_run(tmp_path, 3, checkpoint=path)
    assert path.exists() and sorted(os.listdir(tmp_path)) == ["run.ckpt"]
    resumed, h = _ckpt_run(tmp_path, 6, resume=path)
    straight, h2 = _ckpt_run(tmp_path, 6)
    assert _same(resumed, straight)
    assert h.loss == h2.loss and h.epoch == [1, 2, 3, 4, 5, 6]


def test_checkpoint_has_no_pickle_and_other_tools_read_it(tmp_path):
    from safetensors.numpy import load_file

    path = tmp_path / "c.safetensors"
    net, _ = _ckpt_run(tmp_path, 2, checkpoint=path)
    arrays = load_file(str(path))
    np.testing.assert_array_equal(arrays["W.1"], net.weights[1])
    assert b"pickle" not in path.read_bytes()


KILL_SCRIPT = textwrap.dedent("""
    import sys, time, numpy as np, ffnn
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=150)
    X = rng.normal(scale=3, size=(3, 4))[y] + rng.normal(size=(150, 4))
    net = ffnn.Network([4, 8, 3], "relu", "softmax", seed=0)
    def slow(n, h):
        print("epoch", h.epoch[-1], flush=True)
        time.sleep(0.3)
    ffnn.train(net, X, np.eye(3)[y], loss="cross_entropy", optimizer=ffnn.Adam(0.01), epochs=int(sys.argv[2]),
               batch_size=8, seed=3, dropout=0.2, checkpoint=sys.argv[1], callbacks=[slow],
               resume=sys.argv[3] if len(sys.argv) > 3 else None)
    np.save(sys.argv[1] + ".final.npy", net.weights[1])
""")


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    ckpt = tmp_path / "killed.ckpt"
    proc = subprocess.Popen([sys.executable, str(script), str(ckpt), "12"], stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("epoch 4"):
                break
        time.sleep(0.15)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert ckpt.exists() and not (tmp_path / "killed.ckpt.final.npy").exists()
    subprocess.run([sys.executable, str(script), str(ckpt), "12", str(ckpt)], check=True, capture_output=True)
    clean = tmp_path / "clean.ckpt"
    subprocess.run([sys.executable, str(script), str(clean), "12"], check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(str(ckpt) + ".final.npy"), np.load(str(clean) + ".final.npy"))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_resume_from_a_different_network_is_refused(tmp_path):
    path = tmp_path / "c.ckpt"
    _ckpt_run(tmp_path, 1, checkpoint=path)
    other = ffnn.Network([4, 9, 3], "relu", "softmax", seed=0)
    before = other.copy()
    X, T, _ = _blobs(30)
    with pytest.raises(ValueError, match=r"network of sizes \[4, 8, 3\]; this network has sizes \[4, 9, 3\]"):
        ffnn.train(other, X, T, loss="cross_entropy", resume=path)
    assert _same(other, before)
    path2 = tmp_path / "junk.ckpt"
    path2.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a safetensors file"):
        ffnn.train(other, X, T, loss="cross_entropy", resume=path2)


# --- malformed checkpoints: every field and array checked before a run resumes ------------------------

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
KEY = "ffnn_checkpoint"


def _data(n=120):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4))
    return X, np.eye(3)[np.argmax(X[:, :3], axis=1)]


def _run(path=None, resume=None, epochs=3, early_stopping=None, optimizer="adam"):
    X, T = _data()
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=optimizer, epochs=epochs, batch_size=16, seed=1,
                   validation=0.25, early_stopping=early_stopping, schedule="plateau", checkpoint=path, resume=resume)
    return net, h


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "run.ckpt"
    _run(path, early_stopping=5)
    return path


def _rewrite(src, dst, arrays=None, meta=None):
    """A checkpoint with changed arrays or metadata, written as a hostile tool would: with a valid
    checksum but without the writer's own checks (which refuse what the reader refuses)."""
    import json

    from safetensors.numpy import save

    from ffnn._files import digest_key, tensor_digest

    a, m = read_arrays(src, KEY, "checkpoint file")
    a, m = arrays(a) or a if arrays else a, meta(m) or m if meta else m
    m.pop("sha256", None)
    tensors = {name: np.ascontiguousarray(v) for name, v in a.items()}
    text = json.dumps(m, allow_nan=True)
    with open(dst, "wb") as f:
        f.write(save(tensors, metadata={KEY: text, digest_key(KEY): tensor_digest(tensors, text)}))
    return dst


def _set(path, value):
    def change(m):
        node = m
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return change


@pytest.mark.parametrize("arrays,meta,fragment", [
    (lambda a: a.pop("opt.m.b.2") is None, None, "lacks the array opt.m.b.2"),
    (lambda a: a.update({"opt.m.b.2": np.zeros(7)}), None, "opt.m.b.2 has shape (7,), expected (3,)"),
    (lambda a: a.update({"opt.m.b.2": np.zeros(3, dtype=np.int64)}), None, "opt.m.b.2 is int64, expected floats"),
    (lambda a: a.update({"W.1": np.full((4, 6), np.nan)}), None, "W.1 holds NaN or infinite"),
    (lambda a: a.update({"extra": np.zeros(1)}), None, "holds arrays a checkpoint does not: extra"),
    (None, _set(("optimizer", "slots"), ["m"]), "holds arrays a checkpoint does not: opt.s.W.1"),
    (None, _set(("optimizer", "slots"), ["m", "s", "z"]), "lacks the array opt.z.W.1"),
    (lambda a: a.update({"opt.z.W.1": np.zeros(1)}), _set(("optimizer", "slots"), ["m", "s", "z"]),
     "opt.z.W.1 has shape (1,), expected (4, 6)"),
    (lambda a: a.update({"opt.m.0": a.pop("opt.m.W.1")}), None, "lacks the array opt.m.W.1"),  # format 2: no old names
    (lambda a: a.update({k.replace("opt.s.", "opt.z."): a.pop(k) for k in list(a) if k.startswith("opt.s.")}),
     _set(("optimizer", "slots"), ["m", "z"]), "optimizer 'adam' keeps state ['m', 's']"),
    (None, _set(("epoch",), "3"), "'epoch' must be"),
    (None, _set(("optimizer", "step"), -1), "field 'optimizer.step' must be a non-negative integer"),
    (None, lambda m: m.pop("rng") and None, "lacks the field 'rng'"),
    (None, _set(("rng", "state"), "x"), "field 'rng' must be the state of a NumPy random generator"),
    (None, _set(("rng", "bit_generator"), "MT19937"), "field 'rng' must be the state of a NumPy random generator"),
    (None, _set(("schedule",), {"scale": 1.0, "evil": 2}),
     "lacks the field 'schedule.best' (the schedule state does not match this run's schedule)"),
    (None, lambda m: m["schedule"].update(evil=2), "has a field ffnn does not know: 'schedule.evil' (the schedule"),
    (None, lambda m: m["schedule"].update(scale=-1.0), "schedule or early-stopping state is not this run's: scale"),
    (None, lambda m: m["schedule"].update(scale=2.0), "schedule or early-stopping state is not this run's: scale"),
    (None, _set(("stopper",), {"best": "x", "best_epoch": 1, "wait": 0}),
     "field 'stopper.best' must be a finite number or null (the early stopping state does not match"),
    (None, _set(("stopper",), {"best": 1.0, "wait": 0}), "lacks the field 'stopper.best_epoch'"),
    (None, _set(("history", "loss"), "x"), "field 'history.loss' must be a list"),
    (None, _set(("history", "loss"), [1.0]), "history is malformed: field 'history.loss' has 1 entries for 3 epochs"),
    (None, _set(("format",), 99), "newer ffnn"),
    (None, _set(("stopper", "best"), 10**400), "integer of 401 digits is beyond the float range"),
    (None, _set(("epoch",), 99), "its history records 3 epochs, but it was written after epoch 99"),
    (None, _set(("history",), {}), "its history records 0 epochs"),
])
def test_malformed_checkpoints_are_one_clear_error(ckpt, tmp_path, arrays, meta, fragment):
    bad = _rewrite(ckpt, tmp_path / "bad.ckpt", arrays, meta)
    X, T = _data()
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(ffnn.FileFormatError) as info:
        ffnn.train(net, X, T, loss="cross_entropy", optimizer="adam", epochs=4, validation=0.25, early_stopping=5,
                   schedule="plateau", resume=bad)
    assert str(bad) in str(info.value) and fragment in str(info.value), str(info.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))


def test_another_network_or_optimizer_is_a_value_error(ckpt):
    X, T = _data()
    with pytest.raises(ValueError, match="optimizer 'adam', not 'sgd'"):
        ffnn.train(ffnn.Network([4, 6, 3], "tanh", "softmax"), X, T, loss="cross_entropy", optimizer="sgd",
                   epochs=4, resume=ckpt)
    with pytest.raises(ValueError, match="sizes"):
        ffnn.train(ffnn.Network([4, 5, 3], "tanh", "softmax"), X, T, loss="cross_entropy", epochs=4, resume=ckpt)


def test_resuming_a_run_early_stopping_finished_does_not_train_on(tmp_path):
    path = tmp_path / "run.ckpt"
    X, T = _data()
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.Adam(0.3), epochs=200, seed=1, validation=0.25,
                   early_stopping=1, checkpoint=path)
    assert h.stopped_early and len(h) < 200
    again = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=5)
    h2 = ffnn.train(again, X, T, loss="cross_entropy", optimizer=ffnn.Adam(0.3), epochs=200, seed=1, validation=0.25,
                    early_stopping=1, resume=path)
    assert h2.epoch == h.epoch and h2.best_epoch == h.best_epoch
    assert all(np.array_equal(a, b) for a, b in zip(net.parameters(), again.parameters()))


def test_checkpoints_written_before_the_checksum_still_resume(ckpt, tmp_path):
    old = tmp_path / "old.ckpt"
    old.write_bytes(edit_meta(ckpt.read_bytes(), KEY, lambda m: None))
    _run(resume=old, epochs=4, early_stopping=5)


# --- fuzzing ---------------------------------------------------------------------------------------

def _resume_or_error(path):
    try:
        _run(resume=path, epochs=4, early_stopping=5)
    except (ffnn.FileFormatError, ValueError) as exc:
        assert str(path) in str(exc), str(exc)


@FUZZ
@given(data=st.data())
def test_fuzz_checkpoint_bytes(ckpt, tmp_path_factory, data):
    b = bytearray(ckpt.read_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(b) - 1))
        if data.draw(st.booleans()):
            b[at] ^= data.draw(st.integers(1, 255))
        else:
            del b[at:]
            if not b:
                b = bytearray(b"x")
    d = tmp_path_factory.mktemp("ckpt")
    (d / "c.ckpt").write_bytes(bytes(b))
    before = snapshot(d)
    _resume_or_error(d / "c.ckpt")
    assert snapshot(d) == before


_JSON = json_values(int_bits=65, text_size=6, max_leaves=5)


@FUZZ
@given(data=st.data())
def test_fuzz_checkpoint_fields(ckpt, tmp_path_factory, data):
    blob = ckpt.read_bytes()
    meta = json.loads(split(blob)[0]["__metadata__"][KEY])
    target = data.draw(st.sampled_from([p for p in json_paths(meta) if p]))
    d = tmp_path_factory.mktemp("ckpt")
    path = d / "c.ckpt"
    path.write_bytes(edit_meta(blob, KEY, _set(target, data.draw(_JSON))))
    _resume_or_error(path)
