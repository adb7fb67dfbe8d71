"""Checkpoints (ffnn.training.state): every field and array checked before a run resumes."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ffnn
from ffnn._files import read_arrays, write_arrays

from .hostile import edit_meta, snapshot, split

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
    a, m = read_arrays(src, KEY, "checkpoint file")
    a, m = arrays(a) or a if arrays else a, meta(m) or m if meta else m
    m.pop("sha256", None)
    write_arrays(dst, a, m, KEY)
    return dst


def _set(path, value):
    def change(m):
        node = m
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value
    return change


@pytest.mark.parametrize("arrays,meta,fragment", [
    (lambda a: a.pop("opt.m.3") is None, None, "lacks the array opt.m.3"),
    (lambda a: a.update({"opt.m.3": np.zeros(7)}), None, "opt.m.3 is float64 of shape (7,)"),
    (lambda a: a.update({"W.1": np.full((4, 6), np.nan)}), None, "W.1 holds NaN or infinite"),
    (lambda a: a.update({"extra": np.zeros(1)}), None, "holds arrays a checkpoint does not: extra"),
    (None, _set(("optimizer", "slots"), ["m"]), "holds arrays a checkpoint does not: opt.s.0"),
    (None, _set(("optimizer", "slots"), ["m", "s", "z"]), "lacks the array opt.z.0"),
    (lambda a: a.update({"opt.z.0": np.zeros(1)}), _set(("optimizer", "slots"), ["m", "s", "z"]),
     "opt.z.0 is float64 of shape (1,)"),
    (lambda a: a.update({k.replace("opt.s.", "opt.z."): a.pop(k) for k in list(a) if k.startswith("opt.s.")}),
     _set(("optimizer", "slots"), ["m", "z"]), "optimizer 'adam' keeps state ['m', 's']"),
    (None, _set(("epoch",), "3"), "'epoch' must be"),
    (None, _set(("optimizer", "step"), -1), "'optimizer' must be"),
    (None, lambda m: m.pop("rng") and None, "lacks 'rng'"),
    (None, _set(("rng", "state"), "x"), "random generator state"),
    (None, _set(("rng", "bit_generator"), "MT19937"), "random generator state"),
    (None, _set(("schedule",), {"scale": 1.0, "evil": 2}), "schedule state"),
    (None, _set(("stopper",), {"best": "x", "best_epoch": 1, "wait": 0}), "early stopping state"),
    (None, _set(("history", "loss"), "x"), "history is malformed"),
    (None, _set(("format",), 99), "newer ffnn"),
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
    old.write_bytes(edit_meta(ckpt.read_bytes(), KEY, lambda m: m.pop("sha256") and None))
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


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**65, 2**65) | st.floats(allow_nan=False)
                     | st.text(max_size=6), lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
                     max_leaves=5)


def _paths(v, prefix=()):
    yield prefix
    items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
    for k, c in items:
        yield from _paths(c, prefix + (k,))


@FUZZ
@given(data=st.data())
def test_fuzz_checkpoint_fields(ckpt, tmp_path_factory, data):
    blob = ckpt.read_bytes()
    meta = json.loads(split(blob)[0]["__metadata__"][KEY])
    target = data.draw(st.sampled_from([p for p in _paths(meta) if p and p[0] != "sha256"]))
    d = tmp_path_factory.mktemp("ckpt")
    path = d / "c.ckpt"
    path.write_bytes(edit_meta(blob, KEY, _set(target, data.draw(_JSON))))
    _resume_or_error(path)
