"""Model files: ``ffnn.save(net, path, **metadata)`` and ``ffnn.load(path)``.

A model file is a safetensors file — other tools read its arrays ``W.1``, ``b.1``, … directly — whose
metadata holds one JSON document under the key ``"ffnn"``: the format version, the ffnn version,
sizes, activations, dtype, a SHA-256 checksum of the arrays, and whatever was passed as metadata
(loss, class labels, input scaling, training History, …). Arrays passed as metadata (the input
scaling's shift and scale, say) are stored as tensors named ``meta.<key>.<field>``. Loading never
executes code: no pickle anywhere.

One schema (:data:`SCHEMA` and :data:`KNOWN_METADATA`) says what a model file holds; :func:`save`
refuses to write what :func:`load` would refuse to read, and :func:`load` checks the header, the
schema and every array's shape before it copies any array out of the file.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np

from . import activations as _act
from ._files import FileFormatError, SafetensorsFile, atomic_write, encode_arrays, is_number, printable
from .history import History
from .network import Network

__all__ = ["save", "load", "FORMAT_VERSION", "FileFormatError", "SCHEMA", "KNOWN_METADATA"]

FORMAT_VERSION = 1
_KEY = "ffnn"
#: Most layers a model file may declare.
MAX_LAYERS = 1000


# --- the schema ------------------------------------------------------------------------------------

def _is_int(v, low=None):
    return isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low)


def _list_of(check, *, n=None, low=0, high=None):
    def ok(v):
        return (isinstance(v, list) and (n is None or len(v) == n) and len(v) >= low
                and (high is None or len(v) <= high) and all(check(x) for x in v))
    return ok


_SCALAR = lambda v: v is None or isinstance(v, (str, bool)) or is_number(v)
_LABEL = lambda v: isinstance(v, (str, bool)) or is_number(v)
_NUM_OR_NONE = lambda v: v is None or is_number(v)

#: The document under ``"ffnn"``: field → (required, check, what it must be).
SCHEMA = {
    "format_version": (True, lambda v: _is_int(v, 1), "a positive integer"),
    "ffnn_version": (False, lambda v: isinstance(v, str) and len(v) < 64, "a version string"),
    "sizes": (True, _list_of(lambda s: _is_int(s, 1), low=2, high=MAX_LAYERS + 1), "a list of positive layer widths"),
    "activations": (True, _list_of(lambda s: isinstance(s, str) and 0 < len(s) < 100), "a list of activation names"),
    "dtype": (True, lambda v: v in ("float32", "float64"), '"float32" or "float64"'),
    "metadata": (False, lambda v: isinstance(v, dict), "an object"),
    "sha256": (False, lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
               "a SHA-256 digest in hex"),
}

#: Metadata that ``ffnn train`` writes and the other commands read: key → (check, what it must be).
#: ``scaler`` and ``target_scaler`` are Scalers and ``history`` a History, checked where they are read.
KNOWN_METADATA = {
    "task": (lambda v: v in ("classify", "regress"), '"classify" or "regress"'),
    "loss": (lambda v: isinstance(v, str), "a loss name"),
    "target": (lambda v: v is None or isinstance(v, str), "a column name"),
    "feature_names": (_list_of(lambda s: isinstance(s, str)), "a list of column names"),
    "classes": (lambda v: _list_of(_LABEL, low=1)(v) and len({(type(c), c) for c in v}) == len(v),
                "a list of distinct labels"),
    "summary": (lambda v: isinstance(v, dict) and all(_SCALAR(x) for x in v.values()), "an object of numbers and text"),
}

_HISTORY_LISTS = {"epoch": lambda v: _is_int(v, 0), "loss": _NUM_OR_NONE, "val_loss": _NUM_OR_NONE,
                  "val_metric": _NUM_OR_NONE, "lr": _NUM_OR_NONE, "time": _NUM_OR_NONE}
_LIST_KEYS = ("classes", "feature_names")  # stored as JSON lists even when given as arrays
_HISTORY_PER_LAYER = ("grad_norm", "delta_mean", "update_ratio", "dead_fraction")
_PER_LAYER = lambda v: v is None or (isinstance(v, list) and all(_NUM_OR_NONE(x) for x in v))
_MARKERS = ("__history__", "__scaler__", "__array__")


def _check_document(meta, where):
    for field, (required, check, must) in SCHEMA.items():
        if field not in meta:
            if required:
                raise FileFormatError(f"{where} lacks {field!r}")
        elif not check(meta[field]):
            raise FileFormatError(f"{where}: {field!r} must be {must}")
    sizes, names = meta["sizes"], meta["activations"]
    if len(names) != len(sizes) - 1:
        raise FileFormatError(f"{where} has {len(names)} activations for {len(sizes) - 1} layers")
    user = meta.get("metadata", {})
    for key, (check, must) in KNOWN_METADATA.items():
        if key in user and not check(user[key]):
            raise FileFormatError(f"{where}: metadata {key!r} must be {must}")
    if user.get("task") == "classify" and len(user.get("classes") or []) != sizes[-1]:
        raise FileFormatError(f"{where}: a classifier with {sizes[-1]} outputs needs {sizes[-1]} classes, "
                              f"it has {len(user.get('classes') or [])}")
    if "feature_names" in user and len(user["feature_names"]) != sizes[0]:
        raise FileFormatError(f"{where}: {len(user['feature_names'])} feature names for {sizes[0]} inputs")


def _expected_tensors(meta, where):
    """name → (dtype or None for any, shape or None for any) of every tensor the file must hold."""
    sizes, dt = meta["sizes"], np.dtype(meta["dtype"])
    expected = {}
    for l in range(1, len(sizes)):
        expected[f"W.{l}"] = (dt, (sizes[l - 1], sizes[l]))
        expected[f"b.{l}"] = (dt, (sizes[l],))
    widths = {"scaler": sizes[0], "target_scaler": sizes[-1]}

    def walk(key, value, top):
        if top and key in widths and value is not None and not (isinstance(value, dict) and "__scaler__" in value):
            raise FileFormatError(f"{where}: metadata {printable(key)!r} must be a scaling or null")
        if isinstance(value, dict):
            markers = [k for k in value if k.startswith("__")]
            if markers and (len(value) != 1 or markers[0] not in _MARKERS):
                raise FileFormatError(f"{where}: metadata {printable(key)!r} has reserved keys {markers}")
            if "__scaler__" in value:
                width = widths.get(key) if top else None
                for field in ("shift", "scale"):
                    expected[f"meta.{key}.{field}"] = (np.dtype("float64"), None if width is None else (width,))
            elif "__array__" in value:
                if value["__array__"] is not True:
                    raise FileFormatError(f"{where}: metadata {printable(key)!r} is malformed")
                expected[f"meta.{key}"] = (None, None)
            elif "__history__" not in value:
                for k, v in value.items():
                    walk(f"{key}.{k}", v, False)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{key}.{i}", v, False)

    for key, value in meta.get("metadata", {}).items():
        walk(key, value, True)
    return expected


def _check_tensors(found, expected, where):
    """Names, dtypes and shapes in the file against the schema's, before any array is read."""
    for name, (dt, shape) in expected.items():
        if name not in found:
            raise FileFormatError(f"{where} lacks the array {name}")
        got_dt, got_shape = found[name]
        if dt is not None and got_dt.newbyteorder("=") != dt:
            raise FileFormatError(f"{where}: {name} is {got_dt.name}, expected {dt.name}")
        if shape is not None and tuple(got_shape) != tuple(shape):
            raise FileFormatError(f"{where}: {name} has shape {tuple(got_shape)}, expected {tuple(shape)}")
        if name.startswith("meta.") and name.endswith((".shift", ".scale")) and len(got_shape) != 1:
            raise FileFormatError(f"{where}: {name} must be 1-D, got shape {tuple(got_shape)}")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise FileFormatError(f"{where} holds arrays a model file does not: {printable(', '.join(extra[:5]))}")


def _check_scaler(key, shift, scale, where):
    if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise FileFormatError(f"{where}: metadata {printable(key)!r} (input scaling) must have finite shifts and "
                              f"positive finite scales")
    if shift.shape != scale.shape:
        raise FileFormatError(f"{where}: metadata {printable(key)!r} has shift and scale of different shapes")


def _check_history(d, where):
    """A History's dict (from a model file or a checkpoint) checked field by field, as a History."""
    ok = isinstance(d, dict) and set(d) <= set(History.__dataclass_fields__)
    n = len(d.get("epoch", [])) if ok and isinstance(d.get("epoch", []), list) else None
    ok = ok and n is not None
    for k, check in _HISTORY_LISTS.items():
        v = d.get(k, []) if ok else None
        ok = ok and isinstance(v, list) and len(v) == n and all(check(x) for x in v)
    for k in _HISTORY_PER_LAYER:  # recorded per epoch when diagnostics were on, else empty
        v = d.get(k, []) if ok else None
        ok = ok and isinstance(v, list) and len(v) in (0, n) and all(_PER_LAYER(x) for x in v)
    ok = ok and isinstance(d.get("metric", ""), str) and _NUM_OR_NONE(d.get("best_epoch"))
    ok = ok and all(isinstance(d.get(k, False), bool) for k in ("loss_includes_penalty", "stopped_early", "interrupted"))
    if not ok:
        raise FileFormatError(f"{where}: its training history is malformed")
    return History.from_dict(d)


# --- metadata ↔ JSON -------------------------------------------------------------------------------

def _jsonable(key, value, arrays):
    """Metadata value → JSON, moving arrays into ``arrays``; refuses what :func:`load` would."""
    if isinstance(value, History):
        return {"__history__": value.to_dict()}
    if hasattr(value, "kind") and hasattr(value, "shift") and hasattr(value, "scale"):  # data.Scaler
        arrays[f"meta.{key}.shift"] = np.asarray(value.shift, dtype=np.float64).reshape(-1)
        arrays[f"meta.{key}.scale"] = np.asarray(value.scale, dtype=np.float64).reshape(-1)
        _check_scaler(key, arrays[f"meta.{key}.shift"], arrays[f"meta.{key}.scale"], "metadata")
        return {"__scaler__": value.kind}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            arrays[f"meta.{key}"] = value
            return {"__array__": True}
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str) or not k or "." in k or k.startswith("__"):
                raise ValueError(f"metadata {key!r}: key {k!r} cannot be stored (keys are non-empty strings "
                                 f"without '.' that do not start with '__')")
        return {k: _jsonable(f"{key}.{k}", v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(f"{key}.{i}", v, arrays) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"metadata {key!r} is {value}; files hold finite numbers only (use None)")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"metadata {key!r}: {type(value).__name__} cannot be stored in a model file "
                    f"(use numbers, strings, lists, dicts, arrays, a History or a Scaler)")


def _restore(key, value, f, top=True):
    if isinstance(value, dict):
        if "__history__" in value:
            return _check_history(value["__history__"], f.where)
        if "__scaler__" in value:
            from .data import Scaler

            if value["__scaler__"] not in Scaler.KINDS:
                raise FileFormatError(f"{f.where}: metadata {printable(key)!r} has an unknown scaling")
            shift, scale = f.array(f"meta.{key}.shift"), f.array(f"meta.{key}.scale")
            _check_scaler(key, shift, scale, f.where)
            return Scaler(value["__scaler__"], shift, scale)
        if "__array__" in value:
            return f.array(f"meta.{key}")
        return {k: _restore(f"{key}.{k}", v, f, False) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(f"{key}.{i}", v, f, False) for i, v in enumerate(value)]
    return value


# --- save and load ---------------------------------------------------------------------------------

def save(net: Network, path, **metadata):
    """Write ``net`` and ``metadata`` to ``path`` atomically (a crash mid-save keeps the old file).

    Parameters
    ----------
    net : Network
    path : path
        Written through a symlink; an existing file keeps its permissions.
    **metadata
        Numbers, strings, lists, dicts (string keys without ``.``, not starting with ``__``), NumPy
        arrays, a :class:`History` or a ``Scaler``; stored with the network and returned by
        :func:`load` as ``net.metadata``.

    Raises
    ------
    ValueError
        For non-finite weights, non-finite numbers or reserved keys in the metadata, or metadata
        that breaks :data:`KNOWN_METADATA` — anything :func:`load` would refuse.
    TypeError
        For a metadata value of another type.
    OSError
        When the file cannot be written (the previous file, if any, is left as it was).
    """
    atomic_write(path, encode(net, f"metadata for {os.fspath(path)!r}", **metadata), "model file")


def encode(net: Network, where, /, **metadata) -> bytes:
    """The bytes :func:`save` writes (``where`` names the destination in errors); for callers that
    write a model together with other files (:class:`ffnn._files.Outputs`)."""
    from ._version import __version__

    for k in metadata:
        if not k or "." in k or k.startswith("__"):
            raise ValueError(f"metadata key {k!r} cannot be stored (keys are non-empty strings without '.' "
                             f"that do not start with '__')")
    arrays = {}
    for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        arrays[f"W.{l}"] = np.asarray(_to_numpy(W))
        arrays[f"b.{l}"] = np.asarray(_to_numpy(b))
        for name in (f"W.{l}", f"b.{l}"):
            if not np.all(np.isfinite(arrays[name])):
                raise ValueError(f"the network's {name} holds NaN or infinite values; a model file holds finite weights")
    meta = {
        "format_version": FORMAT_VERSION,
        "ffnn_version": __version__,
        "sizes": list(net.sizes),
        "activations": [a.name for a in net.activations],
        "dtype": net.dtype,
        "metadata": {k: _jsonable(k, v.tolist() if k in _LIST_KEYS and isinstance(v, np.ndarray) else v, arrays)
                     for k, v in metadata.items()},
    }
    try:
        _check_document(meta, where)
        _check_tensors({k: (v.dtype, v.shape) for k, v in arrays.items()}, _expected_tensors(meta, where), where)
    except FileFormatError as exc:
        raise ValueError(f"cannot save: {exc}") from None
    return encode_arrays(arrays, meta, _KEY, where)


def _to_numpy(a):
    from ._array import to_numpy

    return to_numpy(a)


def load(path, *, custom_activations=None, xp=None):
    """Read a model file written by :func:`save`; returns the Network, with ``net.metadata``.

    Parameters
    ----------
    path : path
    custom_activations : dict, optional
        Names → :class:`ffnn.Activation` for activations that are not built in (they are stored by
        name; code is never loaded from the file).
    xp : array namespace, optional
        Where the network's parameters live; default NumPy.

    Raises
    ------
    FileFormatError
        Naming the file and the problem, for a missing, truncated, corrupted, foreign or newer-format
        file, or one whose arrays do not match its checksum. Nothing is allocated for the network
        before its header, schema and array shapes have been checked.
    """
    with SafetensorsFile(path, _KEY, "model file") as f:
        where, meta = f.where, f.meta
        version = meta.get("format_version")
        if _is_int(version) and version > FORMAT_VERSION:
            raise FileFormatError(f"{where} was written by a newer ffnn (format {version}, ffnn "
                                  f"{printable(meta.get('ffnn_version'))}); this version reads format "
                                  f"{FORMAT_VERSION}: upgrade ffnn")
        _check_document(meta, where)
        acts = _activations(meta["activations"], custom_activations, where)
        _check_tensors(f.tensors, _expected_tensors(meta, where), where)
        f.verify()
        L = len(meta["sizes"]) - 1
        try:
            net = Network.from_parameters([f.array(f"W.{l}") for l in range(1, L + 1)],
                                          [f.array(f"b.{l}") for l in range(1, L + 1)],
                                          acts, dtype=meta["dtype"], xp=xp)
        except (TypeError, ValueError) as exc:
            raise FileFormatError(f"{where} describes an invalid network: {exc}") from None
        net.metadata = {k: _restore(k, v, f) for k, v in meta.get("metadata", {}).items()}
    return net


def _activations(names, custom, where):
    custom = dict(custom or {})
    acts = []
    for name in names:
        if name in custom:
            acts.append(custom[name])
            continue
        try:
            acts.append(_act.get_activation(name))
        except ValueError:
            raise FileFormatError(f"{where} uses activation {printable(name)!r}, which is not built in; pass "
                                  f"custom_activations={{{printable(name)!r}: ffnn.Activation(...)}} to load it") from None
    return acts
