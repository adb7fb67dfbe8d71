"""ffnn._schema: one check of the metadata of every kind of file ffnn writes — model files, checkpoints
and estimator files. Each missing, mistyped or unknown field is one FileFormatError naming the file and
the field; whatever a hand or a tool does to the metadata, nothing else comes out; and files of the
earlier formats (per-parameter arrays named by flat index, the checksum inside the metadata) still load."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ffnn
from ffnn import _schema
from ffnn._files import tensor_digest
from ffnn._schema import FileFormatError, validate
from ffnn.data import Scaler
from ffnn.training import state as checkpoint_state

from .hostile import edit_meta, json_values, mutate_json, split

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# --- the mechanism -----------------------------------------------------------------------------------

DOC_SCHEMA = {
    "n": _schema.integer(1),
    "name": _schema.text("a name").optional(),
    "inner": _schema.obj({"x": _schema.number(), "tags": _schema.list_of(_schema.one_of("a", "b"))}),
    "free": _schema.obj({}, others=_schema.ANY).or_null(),
}
GOOD_DOC = {"n": 1, "inner": {"x": 0.5, "tags": ["a"]}, "free": {"anything": [1, {"2": None}]}}


@pytest.mark.parametrize("change,message", [
    (lambda d: d.pop("n"), "f lacks the field 'n'"),
    (lambda d: d["inner"].pop("x"), "f lacks the field 'inner.x'"),
    (lambda d: d.update(n=True), "f: field 'n' must be a positive integer"),
    (lambda d: d.update(n=0), "f: field 'n' must be a positive integer"),
    (lambda d: d.update(name=3), "f: field 'name' must be a name"),
    (lambda d: d["inner"].update(x=float("inf")), "f: field 'inner.x' must be a finite number"),
    (lambda d: d["inner"].update(tags="a"), "f: field 'inner.tags' must be a list (\"a\" or \"b\" each)"),
    (lambda d: d["inner"].update(tags=["a", "c"]), "f: field 'inner.tags.1' must be \"a\" or \"b\""),
    (lambda d: d.update(free=[]), "f: field 'free' must be an object or null"),
    (lambda d: d.update(extra=1), "f has a field ffnn does not know: 'extra'"),
    (lambda d: d["inner"].update({"\x1b[2J": 1}), "f has a field ffnn does not know: 'inner.\\\\x1b[2J'"),
])
def test_validate_names_the_file_and_the_field(change, message):
    doc = json.loads(json.dumps(GOOD_DOC))
    validate(doc, DOC_SCHEMA, "f")
    validate(dict(doc, free=None, name="x"), DOC_SCHEMA, "f")
    change(doc)
    with pytest.raises(FileFormatError) as info:
        validate(doc, DOC_SCHEMA, "f")
    assert str(info.value) == message


def test_the_history_schema_is_historys_fields():
    assert set(_schema.HISTORY.fields) == set(ffnn.History.__dataclass_fields__)


def test_arrays_by_layer_and_by_their_earlier_names():
    assert _schema.layer_names(2, "opt.m.") == ["opt.m.W.1", "opt.m.b.1", "opt.m.W.2", "opt.m.b.2"]
    names = ["W.1", "b.1", "best.0", "best.3", "opt.m.2", "resume.1", "opt.m.4", "best.W.1", "best.1", "x.0"]
    assert _schema.legacy_names(names, 2) == {"best.3": "best.b.2", "opt.m.2": "opt.m.W.2", "resume.1": "resume.b.1",
                                                   "best.1": "best.b.1"}  # best.0's name is taken
    found = {"W.1": (np.dtype("<f8"), (2, 3)), "s": (np.dtype("<i8"), (5,))}
    expected = {"W.1": _schema.Array(_schema.FLOAT, (2, None)), "s": _schema.Array(np.int64, (None,)),
                "c": _schema.Array(required=False)}
    _schema.check_arrays(found, expected, "f", "test file")
    for bad, fragment in (({**found, "z": found["s"]}, "f holds arrays a test file does not: z"),
                          ({"W.1": found["W.1"]}, "f lacks the array s"),
                          ({**found, "W.1": (np.dtype("<i4"), (2, 3))}, "f: W.1 is int32, expected floats"),
                          ({**found, "W.1": (np.dtype("<f4"), (3, 3))}, "f: W.1 has shape (3, 3), expected (2, n)"),
                          ({**found, "s": (np.dtype("<i4"), (5,))}, "f: s is int32, expected int64")):
        with pytest.raises(FileFormatError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            _schema.check_arrays(bad, expected, "f", "test file")


# --- the three kinds of file -------------------------------------------------------------------------

def _data(n=120):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4))
    return X, np.eye(3)[np.argmax(X[:, :3], axis=1)]


def _train(checkpoint=None, resume=None, epochs=3):
    X, T = _data()
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    ffnn.train(net, X, T, loss="cross_entropy", optimizer="adam", epochs=epochs, batch_size=16, seed=1,
               validation=0.25, early_stopping=5, schedule="plateau", checkpoint=checkpoint, resume=resume)
    return net


def _iris():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return (X - X.mean()) / X.std(), np.array(["setosa", "versicolor", "virginica"])[y]


def _estimator(**params):
    from ffnn.sklearn import MLPClassifier

    X, y = _iris()
    params = dict(hidden_layer_sizes=(5,), max_iter=3, random_state=0, early_stopping=True, dropout=0.1,
                  warm_start="keep_optimizer", class_weight={"setosa": 2.0}, **params)
    return MLPClassifier(**params).fit(X, y)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One file of each kind with every optional field filled in."""
    d = tmp_path_factory.mktemp("kinds")
    X, T = _data()
    net = _train(d / "run.ckpt")
    history = ffnn.train(ffnn.Network([4, 3, 3], "relu", "softmax", seed=0), X, T, loss="cross_entropy", epochs=2)
    ffnn.save(net, d / "model.safetensors", task="classify", loss="cross_entropy", target="y", classes=["a", "b", "c"],
              feature_names=["p", "q", "r", "s"], summary={"accuracy": 0.5}, history=history,
              scaler=Scaler("standard", np.zeros(4), np.ones(4)),
              target_scaler=Scaler("standard", np.zeros(3), np.ones(3)), notes={"k": [1]})
    _estimator().save(d / "estimator.safetensors")
    return {"model": d / "model.safetensors", "checkpoint": d / "run.ckpt", "estimator": d / "estimator.safetensors"}


def _load(kind, path):
    if kind == "model":
        return ffnn.load(path)
    if kind == "checkpoint":
        return _train(resume=path, epochs=4)
    from ffnn.sklearn import load

    return load(path)


KEYS = {"model": "ffnn", "checkpoint": "ffnn_checkpoint", "estimator": "ffnn_sklearn"}


def _schema_of(kind):
    from ffnn.sklearn import MLPClassifier, _persist

    if kind == "model":
        return ffnn.io.SCHEMA
    if kind == "checkpoint":
        return checkpoint_state.SCHEMA
    params = [p for p in MLPClassifier._get_param_names() if p != "callbacks"]  # checked once the class is known
    return dict(_persist.SCHEMA, params=_schema.obj({p: _persist._PARAM for p in params}))


def _cases(fields, prefix=()):
    """(what, path) for each field a schema declares: "delete" it when it is required, "retype" it
    (present or not), and "extra", a field added to each object that takes no other."""
    for name, field in fields.items():
        path = prefix + (name,)
        if field.required:
            yield "delete", path
        yield "retype", path
        if field.fields is not None:
            yield from _cases(field.fields, path)
            if field.others is None:
                yield "extra", path + ("zzz",)
    if not prefix:
        yield "extra", ("zzz",)


def _all_cases():
    cases = [pytest.param(kind, what, path, id=f"{kind}-{what}-{'.'.join(path)}")
             for kind in KEYS for what, path in _cases(_schema_of(kind))]
    cases += [pytest.param("model", what, ("metadata", "history", "__history__") + tail, id=f"model-{what}-history")
              for what, tail in (("retype", ("loss",)), ("extra", ("zzz",)))]
    cases += [pytest.param("checkpoint", "extra", ("schedule", "zzz"), id="checkpoint-extra-schedule")]
    return cases


def _at(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def _change(what, path):
    def change(meta):
        parent = _at(meta, path[:-1])
        if what == "delete":
            del parent[path[-1]]
        elif what == "retype":  # a list where an object belongs, an object anywhere else
            parent[path[-1]] = [1] if isinstance(parent.get(path[-1]), dict) else {"?": 0}
        else:
            parent[path[-1]] = 1
    return change


@pytest.mark.parametrize("kind,what,path", _all_cases())
def test_each_missing_mistyped_or_unknown_field_is_named(files, tmp_path, kind, what, path):
    bad = tmp_path / f"bad.{kind}"
    bad.write_bytes(edit_meta(files[kind].read_bytes(), KEYS[kind], _change(what, path), rehash=True))
    with pytest.raises(FileFormatError) as info:
        _load(kind, bad)
    field = ".".join(path)
    expected = {"delete": f"lacks the field '{field}'", "retype": f"field '{field}' must be",
                "extra": f"has a field ffnn does not know: '{field}'"}[what]
    message = str(info.value)
    assert str(bad) in message and expected in message, message


def test_each_file_kind_loads_unchanged(files, tmp_path):
    for kind in KEYS:  # the edit in the test above is the only change: the file itself is good
        same = tmp_path / f"same.{kind}"
        same.write_bytes(edit_meta(files[kind].read_bytes(), KEYS[kind], lambda m: None, rehash=True))
        _load(kind, same)


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
_VALUES = json_values(int_bits=66, text_size=6, max_leaves=5)


@FUZZ
@given(data=st.data())
@pytest.mark.parametrize("kind", list(KEYS))
def test_fuzz_metadata_of_each_file_kind(files, tmp_path_factory, kind, data):
    """Any value replaced, deleted or given a new field, the checksum then written anew: the file
    loads, or one FileFormatError (or ValueError, for a file of another run) naming it comes out."""
    blob = files[kind].read_bytes()
    path = tmp_path_factory.mktemp("fuzz") / f"m.{kind}"
    path.write_bytes(edit_meta(blob, KEYS[kind], lambda m: mutate_json(m, data, _VALUES), rehash=True))
    try:
        _load(kind, path)
    except ValueError as exc:  # FileFormatError is a ValueError
        assert str(path) in str(exc), str(exc)


# --- files of earlier formats ------------------------------------------------------------------------

def _as_format_1(blob, key, prefixes, n_layers):
    """A format-2 file's bytes as format 1 wrote them: ``{prefix}{i}`` for ``{prefix}W.{l}`` and
    ``{prefix}b.{l}``, and the checksum of the arrays inside the metadata."""
    from safetensors.numpy import load, save

    arrays = load(blob)
    meta = json.loads(split(blob)[0]["__metadata__"][key])
    old = {}
    for name, a in arrays.items():
        prefix = next((p for p in prefixes if name.startswith(p) and name[len(p):len(p) + 2] in ("W.", "b.")), None)
        if prefix is not None:
            kind, l = name[len(prefix):].split(".")
            name = f"{prefix}{2 * (int(l) - 1) + (kind == 'b')}"
        old[name] = a
    assert sorted(old) != sorted(arrays)
    meta.update(format=1, sha256=tensor_digest(old))
    return save(old, metadata={key: json.dumps(meta)})


def test_a_format_1_checkpoint_resumes_as_its_format_2_twin(files, tmp_path):
    blob = files["checkpoint"].read_bytes()
    old = tmp_path / "old.ckpt"
    old.write_bytes(_as_format_1(blob, KEYS["checkpoint"], ["opt.m.", "opt.s.", "best."], 2))
    from safetensors.numpy import load_file

    names = set(load_file(str(old)))
    assert {"opt.m.0", "opt.s.3", "best.0", "best.3"} <= names and not any(".W." in n for n in names if "." in n[4:])
    a, b = _train(resume=old, epochs=5), _train(resume=files["checkpoint"], epochs=5)
    assert all(np.array_equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_a_format_1_estimator_file_loads_and_goes_on_training_as_its_format_2_twin(files, tmp_path):
    from safetensors.numpy import load_file

    from ffnn.sklearn import load

    blob = files["estimator"].read_bytes()
    assert any(n.startswith("resume.") for n in load_file(str(files["estimator"])))
    old = tmp_path / "old.safetensors"
    old.write_bytes(_as_format_1(blob, KEYS["estimator"], ["opt.m.", "opt.s.", "resume."], 2))
    assert {"opt.m.0", "opt.s.3", "resume.2"} <= set(load_file(str(old)))
    a, b = load(old), load(files["estimator"])
    X, y = _iris()
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    a.fit(X, y)
    b.fit(X, y)
    assert all(np.array_equal(u, v) for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_))
    assert a.loss_curve_ == b.loss_curve_


def test_an_estimator_file_without_params_is_a_file_format_error_not_a_key_error(files, tmp_path):
    from ffnn.sklearn import load

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(edit_meta(files["estimator"].read_bytes(), KEYS["estimator"], lambda m: m.pop("params") and None))
    with pytest.raises(ffnn.FileFormatError, match=r"bad.safetensors' lacks the field 'params'"):
        load(bad)


@pytest.mark.parametrize("change,fragment", [
    (lambda m: m.update(format=3), "written by a newer ffnn (format 3"),
    (lambda m: m["params"].update(alpha=-1.0), "field 'params.alpha' must be a valid parameter"),
    (lambda m: m["params"].update(activation=["relu", "tanh"]), "describes an invalid network"),
    (lambda m: m["params"].update(class_weight={"__pairs__": [["a"]]}), "field 'params.class_weight' must be"),
    (lambda m: m["classes_"].update(dtype="<i8"), "field 'classes_.values' must be labels of dtype <i8"),
    (lambda m: m["classes_"].update(dtype="<U1000000"), "field 'classes_.dtype' (<U1000000) is wider"),
    (lambda m: m["classes_"].update(dtype="<M8"), "field 'classes_.dtype' must be a NumPy dtype of labels"),
    (lambda m: m.update(n_features_in_=7), "field 'n_features_in_' is 7, but the weights say 4"),
    (lambda m: m["optimizer"].update(slots=["velocity"]), "lacks the array opt.velocity.W.1"),
    (lambda m: m.update(best_is_current=True), "holds arrays an estimator file does not: best.W.1"),
    (lambda m: m["random_state"].update(pos=625), "field 'random_state.pos' must be an integer from 0 to 624"),
    (lambda m: m["dropout_rng"].update(bit_generator="MT19937"), "field 'dropout_rng' must be the state of"),
    (lambda m: m.update(none=["loss_curve_"]), "holds arrays an estimator file does not: loss_curve_"),
])
def test_malformed_estimator_files(files, tmp_path, change, fragment):
    from ffnn.sklearn import load

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(edit_meta(files["estimator"].read_bytes(), KEYS["estimator"], change, rehash=True))
    with pytest.raises(ffnn.FileFormatError) as info:
        load(bad)
    assert str(bad) in str(info.value) and fragment in str(info.value), str(info.value)


def test_a_classifier_file_without_its_classes_is_named(tmp_path):
    """classes_ is optional in the schema (a regressor has none) but a classifier's file must hold it."""
    from sklearn.datasets import load_iris

    from ffnn.sklearn import MLPClassifier
    from ffnn.sklearn import load as load_estimator

    from .hostile import edit_meta

    X, y = load_iris(return_X_y=True)
    path = tmp_path / "clf.safetensors"
    MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0).fit(X, y).save(path)

    path.write_bytes(edit_meta(path.read_bytes(), "ffnn_sklearn", lambda doc: doc.pop("classes_") and None,
                               rehash=True))
    with pytest.raises(ffnn.FileFormatError, match=r"lacks the field 'classes_'"):
        load_estimator(path)
