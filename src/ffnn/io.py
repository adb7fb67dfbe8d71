"""Model files: ``ffnn.save(net, path, **metadata)`` and ``ffnn.load(path)``.

A model file is a safetensors file — other tools read its arrays ``W.1``, ``b.1``, … directly — whose
metadata holds one JSON document under the key ``"ffnn"``: the format version, the ffnn version,
sizes, activations, dtype, a SHA-256 checksum of the arrays, and whatever was passed as metadata
(loss, class labels, input scaling, training History, …). Arrays passed as metadata (the input
scaling's shift and scale, say) are stored as tensors named ``meta.<key>.<field>``. Loading never
executes code: no pickle anywhere.

One schema (:data:`SCHEMA` and :data:`KNOWN_METADATA`, checked by :mod:`ffnn._schema`) says what a
model file holds; any other field is an error. :func:`save` refuses to write what :func:`load` would
refuse to read, and :func:`load` checks the header, the schema and every array's shape before it
copies any array out of the file.
"""

from __future__ import annotations

import math
import os

import numpy as np

from . import activations as _act
from ._files import FileFormatError, SafetensorsFile, atomic_write, encode_arrays, is_number, printable
from ._schema import (ANY, SHA256, Array, Field, check_arrays, history_from, integer, list_of, obj, one_of, text,
                      validate)
from .data import Scaler
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


_LABEL = lambda v: isinstance(v, (str, bool)) or is_number(v)

#: A Scaler's place in the metadata (its shift and scale are the tensors ``meta.<key>.shift`` and
#: ``meta.<key>.scale``).
SCALING = obj({"__scaler__": one_of(*Scaler.KINDS)}, must="a scaling")

#: Metadata that ``ffnn train`` writes and the other commands read: key → Field. Any other key may
#: hold any JSON value (and arrays, scalings and Histories by their markers, checked where read).
KNOWN_METADATA = {
    "task": one_of("classify", "regress").optional(),
    "loss": text("a loss name").optional(),
    "target": text("a column name").or_null().optional(),
    "feature_names": list_of(text("a column name")).optional(),
    "classes": Field("a list of distinct labels (text, numbers or true/false)",
                     lambda v: isinstance(v, list) and len(v) >= 1 and all(_LABEL(c) for c in v)
                     and len({(type(c), c) for c in v}) == len(v)).optional(),
    "summary": obj({}, others=Field("a number, text, true/false or null", lambda v: v is None or _LABEL(v)),
                   must="an object of numbers and text").optional(),
    "scaler": SCALING.or_null().optional(),
    "target_scaler": SCALING.or_null().optional(),
}

#: The document under ``"ffnn"``: the format and ffnn versions, the layer widths S_0..S_L, the L
#: activations by name, the dtype, the metadata (:data:`KNOWN_METADATA`) and, in files written before
#: the checksum moved beside the document, the arrays' checksum.
SCHEMA = {
    "format_version": integer(1),
    "ffnn_version": text("a version string", max_len=63).optional(),
    "sizes": list_of(integer(1), low=2, high=MAX_LAYERS + 1),
    "activations": list_of(Field("an activation name", lambda v: isinstance(v, str) and 0 < len(v) < 100)),
    "dtype": one_of("float32", "float64"),
    "metadata": obj(KNOWN_METADATA, others=ANY).optional(),
    "sha256": SHA256,
}

_LIST_KEYS = ("classes", "feature_names")  # stored as JSON lists even when given as arrays
_MARKERS = ("__history__", "__scaler__", "__array__")


def _check_document(meta, where):
    validate(meta, SCHEMA, where)
    sizes, names = meta["sizes"], meta["activations"]
    if len(names) != len(sizes) - 1:
        raise FileFormatError(f"{where} has {len(names)} activations for {len(sizes) - 1} layers")
    user = meta.get("metadata", {})
    if user.get("task") == "classify" and len(user.get("classes") or []) != sizes[-1]:
        raise FileFormatError(f"{where}: a classifier with {sizes[-1]} outputs needs {sizes[-1]} classes, "
                              f"it has {len(user.get('classes') or [])}")
    if "feature_names" in user and len(user["feature_names"]) != sizes[0]:
        raise FileFormatError(f"{where}: {len(user['feature_names'])} feature names for {sizes[0]} inputs")


def _expected_tensors(meta, where):
    """name → :class:`~ffnn._schema.Array` of every tensor the file must hold."""
    sizes, dt = meta["sizes"], np.dtype(meta["dtype"])
    expected = {}
    for l in range(1, len(sizes)):
        expected[f"W.{l}"] = Array(dt, (sizes[l - 1], sizes[l]))
        expected[f"b.{l}"] = Array(dt, (sizes[l],))
    widths = {"scaler": sizes[0], "target_scaler": sizes[-1]}

    def walk(key, value, top):
        if isinstance(value, dict):
            markers = [k for k in value if k.startswith("__")]
            if markers and (len(value) != 1 or markers[0] not in _MARKERS):
                raise FileFormatError(f"{where}: metadata {printable(key)!r} has reserved keys {markers}")
            if "__scaler__" in value:
                width = widths.get(key) if top else None
                for field in ("shift", "scale"):
                    expected[f"meta.{key}.{field}"] = Array(np.dtype("float64"), (width,))
            elif "__array__" in value:
                if value["__array__"] is not True:
                    raise FileFormatError(f"{where}: metadata {printable(key)!r} is malformed")
                expected[f"meta.{key}"] = Array(None, None)
            elif "__history__" not in value:
                for k, v in value.items():
                    if not storable_key(k):
                        raise FileFormatError(f"{where}: metadata {printable(key)!r} has key {printable(k)!r}, which "
                                              f"ffnn never writes ({KEY_RULE})")
                    walk(f"{key}.{k}", v, False)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{key}.{i}", v, False)

    for key, value in meta.get("metadata", {}).items():
        if not storable_key(key):
            raise FileFormatError(f"{where}: metadata key {printable(key)!r} is one ffnn never writes ({KEY_RULE})")
        walk(key, value, True)
    return expected


def _check_scaler(key, shift, scale, where):
    if not (np.all(np.isfinite(shift)) and np.all(np.isfinite(scale)) and np.all(scale > 0)):
        raise FileFormatError(f"{where}: metadata {printable(key)!r} (input scaling) must have finite shifts and "
                              f"positive finite scales")
    if shift.shape != scale.shape:
        raise FileFormatError(f"{where}: metadata {printable(key)!r} has shift and scale of different shapes")


# --- metadata ↔ JSON -------------------------------------------------------------------------------

#: The one rule for a metadata key, at any depth: save refuses any other, and load refuses a file
#: holding one (a file without a checksum could otherwise load what save would not write again).
KEY_RULE = "keys are non-empty strings without '.' that do not start with '__'"


def storable_key(k) -> bool:
    return isinstance(k, str) and bool(k) and "." not in k and not k.startswith("__")


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
            if not storable_key(k):
                raise ValueError(f"metadata {key!r}: key {k!r} cannot be stored ({KEY_RULE})")
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
            return history_from(value["__history__"], f.where, f"metadata.{key}.__history__")
        if "__scaler__" in value:
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
    from ._files import MAX_DEPTH, too_deep
    from ._version import __version__

    if not isinstance(net, Network):
        raise TypeError(f"save needs an ffnn.Network, got {type(net).__name__}")
    for k, v in metadata.items():
        if isinstance(v, (dict, list)) and too_deep(v, MAX_DEPTH - 2):  # as load counts: under two levels
            raise ValueError(f"{where}: metadata {k!r} is nested more than {MAX_DEPTH} levels deep, or refers "
                             f"to itself; a model file holds a tree of JSON values")
    for k in metadata:
        if not storable_key(k):
            raise ValueError(f"metadata key {k!r} cannot be stored ({KEY_RULE})")
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
        check_arrays({k: (v.dtype, v.shape) for k, v in arrays.items()}, _expected_tensors(meta, where), where,
                     "model file")
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
        check_arrays(f.tensors, _expected_tensors(meta, where), where, "model file")
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
