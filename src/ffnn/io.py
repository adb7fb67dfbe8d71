"""Model files: ``ffnn.save(net, path, **metadata)`` and ``ffnn.load(path)``.

A model file is a safetensors file — other tools read its arrays ``W.1``, ``b.1``, … directly — whose
metadata holds one JSON document under the key ``"ffnn"``: the format version, the ffnn version,
sizes, activations, dtype, and whatever was passed as metadata (loss, class labels, input scaling,
training History, …). Arrays passed as metadata (the input scaling's shift and scale, say) are stored
as tensors named ``meta.<key>.<field>``. Loading never executes code: no pickle anywhere.
"""

from __future__ import annotations

import numpy as np

from . import activations as _act
from ._array import resolve_dtype, to_numpy
from ._files import FileFormatError, read_arrays, write_arrays
from .history import History
from .network import Network

__all__ = ["save", "load", "FORMAT_VERSION", "FileFormatError"]

FORMAT_VERSION = 1
_KEY = "ffnn"


def _jsonable(key, value, arrays):
    """Metadata value → JSON, moving arrays into ``arrays``."""
    if isinstance(value, History):
        return {"__history__": value.to_dict()}
    if hasattr(value, "kind") and hasattr(value, "shift") and hasattr(value, "scale"):  # data.Scaler
        arrays[f"meta.{key}.shift"] = np.asarray(value.shift, dtype=np.float64)
        arrays[f"meta.{key}.scale"] = np.asarray(value.scale, dtype=np.float64)
        return {"__scaler__": value.kind}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "biuf":
            arrays[f"meta.{key}"] = value
            return {"__array__": True}
        return value.tolist()
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(f"{key}.{k}", v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(f"{key}.{i}", v, arrays) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"metadata {key!r}: {type(value).__name__} cannot be stored in a model file "
                    f"(use numbers, strings, lists, dicts, arrays, a History or a Scaler)")


def _restore(key, value, arrays):
    if isinstance(value, dict):
        if "__history__" in value:
            return History.from_dict(value["__history__"])
        if "__scaler__" in value:
            from .data import Scaler

            return Scaler(value["__scaler__"], arrays[f"meta.{key}.shift"], arrays[f"meta.{key}.scale"])
        if value.get("__array__") is True:
            return arrays[f"meta.{key}"]
        return {k: _restore(f"{key}.{k}", v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(f"{key}.{i}", v, arrays) for i, v in enumerate(value)]
    return value


def save(net: Network, path, **metadata):
    """Write ``net`` and ``metadata`` to ``path`` atomically (a crash mid-save keeps the old file)."""
    from . import __version__

    arrays = {}
    for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        arrays[f"W.{l}"] = to_numpy(W)
        arrays[f"b.{l}"] = to_numpy(b)
    meta = {
        "format_version": FORMAT_VERSION,
        "ffnn_version": __version__,
        "sizes": list(net.sizes),
        "activations": [a.name for a in net.activations],
        "dtype": net.dtype,
        "metadata": {k: _jsonable(k, v, arrays) for k, v in metadata.items()},
    }
    write_arrays(path, arrays, meta, _KEY)


def load(path, *, custom_activations=None, xp=None):
    """Read a model file written by :func:`save`; returns the Network, with ``net.metadata``.

    ``custom_activations`` maps names to :class:`ffnn.Activation` objects for activations that are
    not built in (they are stored by name; code is never loaded from the file).
    """
    arrays, meta = read_arrays(path, _KEY, "model file")
    where = f"model file {str(path)!r}"
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise FileFormatError(f"{where} has no format version")
    if version > FORMAT_VERSION:
        raise FileFormatError(f"{where} was written by a newer ffnn (format {version}, ffnn "
                              f"{meta.get('ffnn_version')}); this version reads format {FORMAT_VERSION}: upgrade ffnn")
    try:
        sizes, names, dtype = meta["sizes"], meta["activations"], meta["dtype"]
    except KeyError as exc:
        raise FileFormatError(f"{where} lacks {exc.args[0]!r}") from None
    custom = dict(custom_activations or {})
    acts = []
    for name in names:
        if name in custom:
            acts.append(custom[name])
            continue
        try:
            acts.append(_act.get_activation(name))
        except ValueError:
            raise FileFormatError(f"{where} uses activation {name!r}, which is not built in; pass "
                                  f"custom_activations={{{name!r}: ffnn.Activation(...)}} to load it") from None
    try:
        net = Network(sizes, list(acts[:-1]), acts[-1], dtype=dtype, seed=0, xp=xp)
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"{where} describes an invalid network: {exc}") from None
    d = resolve_dtype(net.xp, dtype)
    for l in range(1, net.n_layers + 1):
        for kind, store in (("W", net.weights), ("b", net.biases)):
            name = f"{kind}.{l}"
            if name not in arrays:
                raise FileFormatError(f"{where} lacks the array {name}")
            a = arrays[name]
            if tuple(a.shape) != tuple(store[l].shape):
                raise FileFormatError(f"{where}: {name} has shape {tuple(a.shape)}, "
                                      f"expected {tuple(store[l].shape)}")
            if not np.all(np.isfinite(a)):
                raise FileFormatError(f"{where}: {name} holds NaN or infinite values")
            store[l] = net.xp.asarray(np.asarray(a), dtype=d)
    net.metadata = {k: _restore(k, v, arrays) for k, v in meta.get("metadata", {}).items()}
    return net
