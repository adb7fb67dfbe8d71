"""ffnn.save / ffnn.load in-process: round trips, namespaces, custom activations, and hostile files."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ffnn
from ffnn.data import Scaler

from .conftest import NAMESPACES, to_np
from .hostile import edit_meta, json_paths, json_values, raw_safetensors, snapshot, split

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


def _net(dtype="float64", output="softmax"):
    return ffnn.Network([3, 4, 2], "tanh", output, seed=3, dtype=dtype)


def test_float32_round_trip_is_exact(tmp_path):
    net = _net("float32")
    ffnn.save(net, tmp_path / "m.safetensors")
    back = ffnn.load(tmp_path / "m.safetensors")
    assert back.dtype == "float32" and back.sizes == net.sizes
    for a, b in zip(net.parameters(), back.parameters()):
        assert b.dtype == np.float32 and b.flags.writeable
        np.testing.assert_array_equal(a, b)


def test_metadata_round_trip(tmp_path):
    h = ffnn.History(epoch=[1, 2], loss=[0.5, 0.25], val_loss=[None, None], val_metric=[None, None], lr=[0.1, 0.1],
                     time=[0.01, 0.02], metric="r2", best_epoch=2)
    meta = dict(classes=["a", "b"], task="classify", history=h, scaler=Scaler("standard", np.zeros(3), np.ones(3)),
                weights=np.arange(4, dtype=np.int32), nested={"k": [1, None, True, {"z": np.float64(2.5)}]})
    ffnn.save(_net(), tmp_path / "m.safetensors", **meta)
    got = ffnn.load(tmp_path / "m.safetensors").metadata
    assert got["classes"] == ["a", "b"] and got["task"] == "classify"
    assert got["history"] == h and got["nested"] == {"k": [1, None, True, {"z": 2.5}]}
    np.testing.assert_array_equal(got["weights"], np.arange(4)) and got["weights"].dtype == np.int32
    np.testing.assert_array_equal(got["scaler"].scale, np.ones(3))


def test_classes_given_as_an_array_are_stored_as_a_list(tmp_path):
    ffnn.save(_net(), tmp_path / "m.safetensors", task="classify", classes=np.array([3, 7]),
              feature_names=np.array(["a", "b", "c"]))
    meta = ffnn.load(tmp_path / "m.safetensors").metadata
    assert meta["classes"] == [3, 7] and meta["feature_names"] == ["a", "b", "c"]


def test_custom_activations_load_by_name(tmp_path):
    mine = ffnn.Activation("cube", lambda x: x ** 3, lambda x: 3 * x ** 2)
    net = ffnn.Network([2, 3, 1], mine, "identity", seed=1)
    ffnn.save(net, tmp_path / "m.safetensors")
    with pytest.raises(ffnn.FileFormatError, match="custom_activations="):
        ffnn.load(tmp_path / "m.safetensors")
    back = ffnn.load(tmp_path / "m.safetensors", custom_activations={"cube": mine})
    X = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_array_equal(back.predict(X), net.predict(X))


@pytest.mark.parametrize("xp", NAMESPACES)
def test_load_into_another_namespace(tmp_path, xp):
    net = _net()
    ffnn.save(net, tmp_path / "m.safetensors")
    back = ffnn.load(tmp_path / "m.safetensors", xp=xp)
    assert back.xp is xp
    X = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_allclose(to_np(back.predict(xp.asarray(X))), net.predict(X), rtol=1e-12)


@pytest.mark.parametrize("meta,error,fragment", [
    ({"__x": 1}, ValueError, "cannot be stored"),
    ({"a.b": 1}, ValueError, "cannot be stored"),
    ({"d": {"x.y": 1}}, ValueError, "cannot be stored"),
    ({"d": {1: 1}}, ValueError, "cannot be stored"),
    ({"d": {"__array__": True}}, ValueError, "cannot be stored"),
    ({"score": float("nan")}, ValueError, "finite numbers only"),
    ({"task": "classify", "classes": ["a", "b", "c"]}, ValueError, "needs 2 classes"),
    ({"task": "guess"}, ValueError, "field 'metadata.task' must be"),
    ({"scaler": Scaler("standard", np.zeros(3), np.zeros(3))}, ValueError, "positive finite scales"),
    ({"scaler": Scaler("standard", np.zeros(2), np.ones(2))}, ValueError, "shape"),
    ({"raw": b"bytes"}, TypeError, "cannot be stored"),
])
def test_save_refuses_what_load_would_refuse(tmp_path, meta, error, fragment):
    with pytest.raises(error, match=fragment):
        ffnn.save(_net(), tmp_path / "m.safetensors", **meta)
    assert not os.listdir(tmp_path)


def test_save_refuses_non_finite_weights(tmp_path):
    net = _net()
    net.weights[1][0, 0] = np.inf
    with pytest.raises(ValueError, match="W.1 holds NaN or infinite"):
        ffnn.save(net, tmp_path / "m.safetensors")


def test_a_changed_byte_in_the_weights_or_the_metadata_is_an_error(tmp_path):
    ffnn.save(_net(), tmp_path / "m.safetensors", classes=["cat", "dog"], note="kept")
    blob = (tmp_path / "m.safetensors").read_bytes()
    flipped = bytearray(blob)
    flipped[-3] ^= 0x10
    (tmp_path / "bad.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(ffnn.FileFormatError, match="bad.safetensors.*checksum"):
        ffnn.load(tmp_path / "bad.safetensors")
    at = blob.index(b"dog")  # one letter of a class label, inside the metadata's JSON
    (tmp_path / "label.safetensors").write_bytes(blob[:at] + b"d0g" + blob[at + 3:])
    with pytest.raises(ffnn.FileFormatError, match="label.safetensors' is corrupted: its arrays or metadata"):
        ffnn.load(tmp_path / "label.safetensors")
    edited = edit_meta(blob, "ffnn", lambda m: m["metadata"].update(note="changed"), keep_checksum=True)
    (tmp_path / "edited.safetensors").write_bytes(edited)
    with pytest.raises(ffnn.FileFormatError, match="checksum"):
        ffnn.load(tmp_path / "edited.safetensors")


def test_a_flipped_bit_in_the_checksums_name_is_an_error_not_an_unverified_file(tmp_path):
    ffnn.save(_net(), tmp_path / "m.safetensors")
    blob = bytearray((tmp_path / "m.safetensors").read_bytes())
    at = blob.index(b'"ffnn.sha256"')
    blob[at + 11] ^= 1  # "ffnn.sha257"
    blob[-3] ^= 0x10  # and a weight
    (tmp_path / "bad.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ffnn.FileFormatError, match="corrupted: its header holds a metadata entry ffnn does not write"):
        ffnn.load(tmp_path / "bad.safetensors")


def test_a_missing_file_is_a_file_format_error_and_a_file_not_found_error(tmp_path):
    for path in (tmp_path / "absent.safetensors", ""):
        with pytest.raises(ffnn.FileFormatError, match="does not exist") as info:
            ffnn.load(path)
        assert isinstance(info.value, FileNotFoundError)


def test_files_without_a_checksum_or_with_the_tensors_only_checksum_of_earlier_versions_load(tmp_path):
    from ffnn._files import SafetensorsFile, tensor_digest

    net = _net()
    ffnn.save(net, tmp_path / "m.safetensors")
    blob = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "none.safetensors").write_bytes(edit_meta(blob, "ffnn", lambda m: None))
    assert ffnn.load(tmp_path / "none.safetensors").sizes == (3, 4, 2)
    arrays = {f"{k}.{l}": p[l] for k, p in (("W", net.weights), ("b", net.biases)) for l in range(1, net.n_layers + 1)}
    old = edit_meta(blob, "ffnn", lambda m: m.update(sha256=tensor_digest(arrays)))
    (tmp_path / "old.safetensors").write_bytes(old)
    with SafetensorsFile(tmp_path / "old.safetensors", "ffnn", "model file") as f:
        assert f.verify() == "tensors"
    flipped = bytearray(old)
    flipped[-3] ^= 0x10
    (tmp_path / "oldbad.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(ffnn.FileFormatError, match="oldbad.safetensors' is corrupted: its arrays do not match"):
        ffnn.load(tmp_path / "oldbad.safetensors")
    with SafetensorsFile(tmp_path / "m.safetensors", "ffnn", "model file") as f:
        assert f.verify() == "tensors and metadata"
    with SafetensorsFile(tmp_path / "none.safetensors", "ffnn", "model file") as f:
        assert f.verify() is None


GOOD = {"format_version": 1, "sizes": [3, 2], "activations": ["softmax"], "dtype": "float64", "metadata": {}}
WB = {"W.1": ("F64", [3, 2], 48), "b.1": ("F64", [2], 16)}


@pytest.mark.parametrize("change,tensors,fragment", [
    ({"sizes": [4, 100_000_000, 3], "activations": ["relu", "softmax"]}, WB, "W.1 has shape (3, 2), expected (4, 100000000)"),
    ({"sizes": [1_000_000, 1_000_000]}, {}, "lacks the array W.1"),
    ({"sizes": "3,2"}, WB, "'sizes' must be"),
    ({"sizes": [3, 0]}, WB, "field 'sizes.1' must be a positive integer"),
    ({"sizes": [3, 2.5]}, WB, "field 'sizes.1' must be"),
    ({"activations": ["softmax", "relu"]}, WB, "2 activations for 1 layers"),
    ({"activations": [7]}, WB, "field 'activations.0' must be an activation name"),
    ({"activations": ["\x1b[2Jevil"]}, WB, "\\\\x1b"),
    ({"dtype": "float16"}, WB, "'dtype' must be"),
    ({"metadata": [1]}, WB, "'metadata' must be"),
    ({"metadata": {"classes": "ab", "task": "classify"}}, WB, "field 'metadata.classes' must be"),
    ({"metadata": {"classes": ["a", "a"]}}, WB, "field 'metadata.classes' must be a list of distinct"),
    ({"metadata": {"classes": ["a"], "task": "classify"}}, WB, "needs 2 classes"),
    ({"metadata": {"feature_names": ["a"]}}, WB, "1 feature names for 3 inputs"),
    ({"metadata": {"summary": {"x": [1]}}}, WB, "field 'metadata.summary.x' must be"),
    ({"metadata": {"history": {"__history__": {"loss": "x"}}}}, WB, "field 'metadata.history.__history__.loss' must be a list"),
    ({"metadata": {"history": {"__history__": {"epoch": [1], "loss": []}}}}, WB, "history is malformed"),
    ({"metadata": {"x": {"__evil__": 1}}}, WB, "reserved keys"),
    ({"metadata": {"x": {"__array__": 5}}}, WB, "malformed"),
    ({"metadata": {"x": {"__array__": True}}}, WB, "lacks the array meta.x"),
    ({"metadata": {"scaler": {"__scaler__": "standard"}}}, WB, "lacks the array meta.scaler.shift"),
    ({"format_version": 99}, WB, "newer ffnn"),
    ({"format_version": "1"}, WB, "'format_version' must be"),
    ({"sha256": 5}, WB, "'sha256' must be"),
    ({}, {**WB, "extra": ("F64", [1], 8)}, "holds arrays a model file does not: extra"),
    ({}, {"W.1": ("F32", [3, 2], 24), "b.1": ("F64", [2], 16)}, "W.1 is float32, expected float64"),
    ({}, {"W.1": ("F64", [2, 3], 48), "b.1": ("F64", [2], 16)}, "W.1 has shape (2, 3)"),
])
def test_malformed_model_files_are_one_clear_error(tmp_path, change, tensors, fragment):
    path = raw_safetensors(tmp_path / "m.safetensors", tensors, {**GOOD, **change})
    with pytest.raises(ffnn.FileFormatError) as info:
        ffnn.load(path)
    assert str(path) in str(info.value) and fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("name,shift,scale,fragment", [
    ("scaler", [np.nan, 0, 0], [1, 1, 1], "positive finite scales"),
    ("scaler", [0, 0, 0], [1, 0, 1], "positive finite scales"),
    ("scaler", [0, 0], [1, 1], "has shape (2,), expected (3,)"),
    ("target_scaler", [0, 0, 0], [1, 1, 1], "has shape (3,), expected (2,)"),
])
def test_malformed_scalers(tmp_path, name, shift, scale, fragment):
    shift, scale = np.asarray(shift, float), np.asarray(scale, float)
    tensors = {**WB, f"meta.{name}.shift": ("F64", [len(shift)], shift.nbytes),
               f"meta.{name}.scale": ("F64", [len(scale)], scale.nbytes)}
    data = np.zeros(6).tobytes() + np.zeros(2).tobytes() + shift.tobytes() + scale.tobytes()
    meta = {**GOOD, "metadata": {name: {"__scaler__": "standard"}}}
    path = raw_safetensors(tmp_path / "m.safetensors", tensors, meta, data=data)
    with pytest.raises(ffnn.FileFormatError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        ffnn.load(path)


def test_special_and_empty_model_files(tmp_path):
    os.mkfifo(tmp_path / "fifo.safetensors")
    (tmp_path / "empty.safetensors").write_bytes(b"")
    for name, fragment in (("fifo", "special file"), ("empty", "is empty")):
        with pytest.raises(ffnn.FileFormatError, match=fragment):
            ffnn.load(tmp_path / f"{name}.safetensors")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ffnn.load(tmp_path / "absent.safetensors")


def test_nan_weights_are_refused(tmp_path):
    data = np.array([np.nan] * 6 + [0, 0]).tobytes()
    path = raw_safetensors(tmp_path / "m.safetensors", WB, GOOD, data=data)
    with pytest.raises(ffnn.FileFormatError, match="invalid network: W"):
        ffnn.load(path)


# --- the loader's memory, under a limit ----------------------------------------------------------

_LOADER = textwrap.dedent("""
    import os, resource, sys, time
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import numpy, ffnn
    status = lambda key: int(open("/proc/self/status").read().split(key + ":")[1].split()[0]) * 1024
    vm = status("VmSize")
    limit = vm + int(sys.argv[1]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for path in sys.argv[2:]:
        before = status("VmHWM")
        t = time.perf_counter()
        try:
            ffnn.load(path)
            outcome = "loaded"
        except ffnn.FileFormatError as exc:
            outcome = "refused" if path in str(exc) else "unnamed"
        grew = (status("VmHWM") - before) / 2**20
        print(os.path.basename(path), outcome, f"{grew:.0f}MiB", f"{time.perf_counter() - t:.2f}s")
""")


def test_hostile_files_cost_little_memory(tmp_path):
    big = dict(GOOD, sizes=[4, 100_000_000, 3], activations=["relu", "softmax"])
    raw_safetensors(tmp_path / "wide.safetensors", {"W.1": ("F64", [4, 3], 96)}, big)
    raw_safetensors(tmp_path / "square.safetensors", {}, dict(GOOD, sizes=[1_000_000, 1_000_000]))
    raw_safetensors(tmp_path / "sparse.safetensors", WB, GOOD)
    with open(tmp_path / "sparse.safetensors", "r+b") as f:
        f.truncate(3 * 2**30)
    many = {f"t{i}": ("F64", [0], 0) for i in range(200_000)}  # a 14 MB header of empty tensors
    raw_safetensors(tmp_path / "many.safetensors", many, GOOD)
    nested = [[[[[[[[]]]]]]]] * 400_000  # 3.2 million lists in 7 MB: gigabytes of Python objects if parsed
    raw_safetensors(tmp_path / "nested.safetensors", WB, dict(GOOD, metadata={"x": nested}))
    raw_safetensors(tmp_path / "list.safetensors", WB, dict(GOOD, metadata={"x": list(range(500_000))}))
    names = ["wide", "square", "sparse", "many", "nested", "list"]  # the last is valid, with 4 MB of metadata
    proc = subprocess.run([sys.executable, "-c", _LOADER, "400", *(str(tmp_path / f"{n}.safetensors") for n in names)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    for name, line in zip(names, lines):
        assert line.startswith(f"{name}.safetensors {'loaded' if name == 'list' else 'refused'}"), proc.stdout
    print(proc.stdout)


# --- fuzzing ---------------------------------------------------------------------------------------

def _check_load(path, original):
    """ffnn.load returns a network whose weights are the original's, or a FileFormatError naming the file."""
    try:
        net = ffnn.load(path)
    except ffnn.FileFormatError as exc:
        assert str(path) in str(exc)
        return None
    for a, b in zip(net.parameters(), original.parameters()):
        np.testing.assert_array_equal(a, b)
    return net


@FUZZ
@given(data=st.data())
def test_fuzz_byte_mutations_and_truncations(real_files, tmp_path_factory, data):
    blob = real_files["clf"].read_bytes()
    original = ffnn.load(real_files["clf"])
    d = tmp_path_factory.mktemp("fuzz")
    mutated = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        at = data.draw(st.integers(0, max(len(mutated) - 1, 0)))
        if kind == "flip" and mutated:
            mutated[at] ^= data.draw(st.integers(1, 255))
        elif kind == "truncate":
            del mutated[at:]
        elif kind == "insert":
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif mutated:
            del mutated[at:at + data.draw(st.integers(1, 16))]
    (d / "m.safetensors").write_bytes(bytes(mutated))
    before = snapshot(d)
    _check_load(d / "m.safetensors", original)
    assert snapshot(d) == before


_JSON = json_values(int_bits=70, text_size=8, max_leaves=6)


@FUZZ
@given(data=st.data())
def test_fuzz_metadata_values(real_files, tmp_path_factory, data):
    """Any field of the JSON replaced or deleted: a network or one FileFormatError, and the command
    line's info, predict, evaluate and gradcheck then exit 0, 1 or 2 with one line, never a traceback."""
    from .conftest import cli

    blob = real_files["clf"].read_bytes()
    header, _ = split(blob)
    meta = json.loads(header["__metadata__"]["ffnn"])
    paths = [p for p in json_paths(meta) if p]
    target = data.draw(st.sampled_from(paths))
    delete = data.draw(st.booleans()) and not isinstance(target[-1], int)
    value = None if delete else data.draw(_JSON)

    def change(m):
        node = m
        for k in target[:-1]:
            node = node[k]
        if delete:
            del node[target[-1]]
        else:
            node[target[-1]] = value

    d = tmp_path_factory.mktemp("fuzz")
    path = d / "m.safetensors"
    path.write_bytes(edit_meta(blob, "ffnn", change))
    before = snapshot(d)
    try:
        ffnn.load(path)
    except ffnn.FileFormatError as exc:
        assert str(path) in str(exc)
    for args in (["info", path], ["predict", path, real_files["csv"]], ["evaluate", path, real_files["csv"]],
                 ["gradcheck", path]):
        code, _, err = cli(*args)
        assert code in (0, 1, 2), err
        assert code == 0 or (len(err.strip().splitlines()) == 1 and "Traceback" not in err), err
    assert snapshot(d) == before


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=6)
    | st.binary(max_size=3) | st.builds(np.arange, st.integers(0, 4)),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4) | st.integers(0, 3), c, max_size=3),
    max_leaves=6)


@FUZZ
@given(meta=st.dictionaries(st.sampled_from(["task", "classes", "loss", "notes", "a.b", "__x", "summary", "target"]),
                            _VALUES, max_size=3))
def test_fuzz_save_refuses_or_round_trips(tmp_path_factory, meta):
    """Whatever metadata ``ffnn.save`` accepts, ``ffnn.load`` reads back; anything else is refused at save."""
    path = tmp_path_factory.mktemp("save") / "m.safetensors"
    try:
        ffnn.save(_net(), path, **meta)
    except (TypeError, ValueError):
        assert not path.exists()
        return
    back = ffnn.load(path).metadata
    assert set(back) == set(meta)


@pytest.mark.parametrize("change, fragment", [
    (lambda m: m["metadata"].update(scaler="standard"), "field 'metadata.scaler' must be a scaling or null"),
    (lambda m: m["metadata"].update(scaler=5), "field 'metadata.scaler' must be a scaling or null"),
    (lambda m: m["metadata"].update(summary={"test_accuracy": 10**400}), "integer of 401 digits is beyond the float range"),
])
def test_malformed_metadata_is_a_file_format_error(tmp_path, change, fragment):
    from ffnn.data import Scaler

    path = tmp_path / "m.safetensors"
    net = ffnn.Network([3, 4, 2], "relu", "softmax", seed=0)
    ffnn.save(net, path, scaler=Scaler("standard").fit(np.arange(30.0).reshape(10, 3)), summary={"a": 1})
    path.write_bytes(edit_meta(path.read_bytes(), "ffnn", change))
    with pytest.raises(ffnn.FileFormatError, match=fragment):
        ffnn.load(path)


def test_an_empty_tensor_of_an_absurd_shape_is_refused(tmp_path):
    path = raw_safetensors(tmp_path / "m.safetensors", {"W.1": ("F64", [0, 10**30], 0)},
                           {"format_version": 1, "sizes": [3, 2], "activations": ["softmax"], "dtype": "float64",
                            "metadata": {}})
    with pytest.raises(ffnn.FileFormatError, match="invalid shape"):
        ffnn.load(path)
