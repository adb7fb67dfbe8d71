"""A fitted estimator in one safetensors file, and back: no pickle.

Tensors, by layer l = 1..L: W[l] and b[l] (``W.{l}``, ``b.{l}``), each optimiser slot's state
(``opt.{slot}.W.{l}``, ``opt.{slot}.b.{l}``), early stopping's best weights (``best.W.{l}``,
``best.b.{l}``) and the weights a kept fit resumes from (``resume.W.{l}``, ``resume.b.{l}``); the
loss and validation curves, the random streams' key arrays and the last sample order. JSON metadata
under ``ffnn_sklearn`` (:data:`SCHEMA`): the estimator's class and parameters, its other fitted
attributes (classes, counts, the stopping rule's state), the optimiser's learning rate and step
count, and the random streams' positions. A loaded estimator predicts identically and goes on
training from the state it was saved in.

Loading checks the file whole before it builds the estimator: any missing, mistyped or unknown field
or array is a :class:`ffnn.FileFormatError` naming the file and the field. Files of format 1 (which
named the optimiser's and the resume arrays by their index in the flat parameter list,
``opt.{slot}.{i}`` and ``resume.{i}``) are read too.
"""

from __future__ import annotations

import math

import numpy as np

from .._array import to_numpy
from .._files import FileFormatError, SafetensorsFile, check_writable, is_number, printable, write_arrays
from .._schema import (BIT_GENERATOR, FLOAT, SHA256, Array, Field, boolean, check_arrays, integer, layer_names,
                       legacy_names, list_of, number, obj, one_of, text, validate)

__all__ = ["save", "load", "FORMAT", "SCHEMA"]

#: 2: per-parameter arrays named by layer (``opt.m.W.1``, ``resume.b.2``); 1: by flat index.
FORMAT = 2
_KEY = "ffnn_sklearn"
_CURVES = ("loss_curve_", "validation_scores_", "validation_loss_curve_")
_SCALARS = ("loss_", "best_loss_", "best_validation_score_")
_COUNTS = ("n_iter_", "t_", "n_outputs_", "n_layers_", "n_features_in_", "_no_improvement_count")
_ALWAYS_COUNTED = ("n_iter_", "n_outputs_", "n_layers_", "n_features_in_")  # every fitted estimator has these
_ESTIMATORS = ("MLPClassifier", "MLPRegressor")


def _is_label(v):
    return isinstance(v, (str, bool)) or is_number(v)


def _is_param(v):
    """A parameter as :func:`_json_param` writes it: a JSON scalar, a list of parameters, or label →
    parameter pairs (``{"__pairs__": [[label, value], …]}``, a dict such as class_weight)."""
    if v is None or isinstance(v, (str, bool)) or is_number(v):
        return True
    if isinstance(v, list):
        return all(_is_param(x) for x in v)
    pairs = v.get("__pairs__") if isinstance(v, dict) and list(v) == ["__pairs__"] else None
    return isinstance(pairs, list) and all(isinstance(p, list) and len(p) == 2 and _is_label(p[0]) and _is_param(p[1])
                                           for p in pairs)


def _is_label_dtype(v):
    """A NumPy dtype (as ``dtype.str``) of booleans, numbers, text or objects."""
    if not isinstance(v, str) or len(v) > 16:
        return False
    try:
        dt = np.dtype(v)
    except (TypeError, ValueError):
        return False
    return dt.kind in "biufUO" and (dt.kind == "U" or dt.itemsize <= 16)


def _out_activation(v):
    from .. import activations as _act

    return v in ("logistic", "exp") or (isinstance(v, str) and v in _act.ACTIVATIONS)


_LABEL = Field("a label (text, a number or true/false)", _is_label)
_PARAM = Field("a number, text, true/false, null, a list of them or label pairs", _is_param)
_SLOT = text("a slot name", pattern="[A-Za-z_][A-Za-z0-9_]*")
#: A legacy RandomState's position (its 624 keys are the tensor ``rng.keys`` or ``split.keys``).
_RANDOM_STATE = obj({"name": one_of("MT19937"), "pos": integer(0, 624), "has_gauss": integer(0, 1),
                     "cached_gaussian": number()})

#: The document under ``"ffnn_sklearn"``: field → Field. ``params`` holds one field per parameter of
#: the estimator's class (all but ``callbacks``), checked in :func:`load` once the class is known.
SCHEMA = {
    "format": integer(1),
    "estimator": one_of(*_ESTIMATORS),
    "params": obj({}, others=_PARAM, must="an object of the estimator's parameters"),
    "out_activation_": Field("an output activation's name", _out_activation),
    "dtype": one_of("float32", "float64"),
    "none": list_of(one_of(*_CURVES, *_SCALARS)),  # fitted attributes that are None
    **{name: integer(0) if name in _ALWAYS_COUNTED else integer(0).optional() for name in _COUNTS},
    "feature_names_in_": list_of(text("a column name")).optional(),
    "classes_": obj({"values": list_of(_LABEL, low=1),
                     "dtype": Field("a NumPy dtype of labels", _is_label_dtype),
                     "y_type": one_of("binary", "multiclass", "multilabel-indicator")}).optional(),
    "best_is_current": boolean().optional(),
    "optimizer": obj({"step": integer(0), "slots": list_of(_SLOT), "learning_rate": number()}).optional(),
    "random_state": _RANDOM_STATE.optional(),
    "split_state": _RANDOM_STATE.optional(),
    "dropout_rng": BIT_GENERATOR.optional(),
    "sha256": SHA256,
}


def _json_param(name, value):
    from ..activations import Activation

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else repr(float(value))
    if isinstance(value, Activation):
        return value.name
    if isinstance(value, dict):  # class_weight: keys may be labels of any type
        return {"__pairs__": [[_label(k), _json_param(name, v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_param(name, v) for v in value]
    raise TypeError(f"cannot save parameter {name}={value!r}: it is not a number, string or list of them")


def _label(v):
    return v.item() if isinstance(v, np.generic) else v


def _param_from_json(name, value):
    if isinstance(value, dict) and "__pairs__" in value:
        return {k: v for k, v in value["__pairs__"]}
    if name == "n_iter_no_change" and value == "inf":
        return np.inf
    if name == "hidden_layer_sizes" and isinstance(value, list):
        return tuple(value)
    return value


def _rng_state(rs, arrays, prefix):
    name, keys, pos, has_gauss, cached = rs.get_state()
    arrays[f"{prefix}.keys"] = np.asarray(keys, dtype=np.uint32)
    return {"name": name, "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _rng_tuple(meta, arrays, prefix):
    return (meta["name"], np.asarray(arrays[f"{prefix}.keys"], dtype=np.uint32), meta["pos"], meta["has_gauss"],
            meta["cached_gaussian"])


def save(est, path):
    """Write the fitted estimator ``est`` to ``path`` (one safetensors file; see the module docstring).

    Parameters
    ----------
    est : fitted ffnn.sklearn.MLPClassifier or MLPRegressor
    path : str or path-like
        Written atomically. Parameters must be numbers, strings, lists of them or ffnn's built-in
        activations; ``callbacks`` is not saved, and a ``random_state`` RandomState is saved as
        its current stream (the parameter becomes None).
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est)
    check_writable(path, "estimator file")
    params = {}
    for k, v in est.get_params(deep=False).items():
        if k == "callbacks":
            continue  # callables are not data: a loaded estimator has callbacks=None
        if k == "random_state" and isinstance(v, np.random.RandomState):
            v = None  # its stream is saved below as the estimator's own state
        params[k] = _json_param(k, v)
    net = est.network_
    arrays = {}
    for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        arrays[f"W.{l}"], arrays[f"b.{l}"] = np.asarray(to_numpy(W)), np.asarray(to_numpy(b))
    meta = {"format": FORMAT, "estimator": type(est).__name__, "params": params,
            "out_activation_": est.out_activation_, "dtype": net.dtype, "none": []}
    for name in _COUNTS:
        if hasattr(est, name):
            meta[name] = int(getattr(est, name))
    for name in _CURVES + _SCALARS:
        if not hasattr(est, name):
            continue
        value = getattr(est, name)
        if value is None:
            meta["none"].append(name)
        else:
            arrays[name] = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if hasattr(est, "feature_names_in_"):
        meta["feature_names_in_"] = [str(f) for f in est.feature_names_in_]
    if hasattr(est, "classes_"):
        meta["classes_"] = {"values": [_label(c) for c in est.classes_], "dtype": est.classes_.dtype.str,
                            "y_type": est._label_binarizer.y_type_}
    best = getattr(est, "_best_coefs", None)
    if best is not None:
        meta["best_is_current"] = best is est.coefs_
        if not meta["best_is_current"]:
            for l, (W, b) in enumerate(zip(est._best_coefs, est._best_intercepts), start=1):
                arrays[f"best.W.{l}"], arrays[f"best.b.{l}"] = np.asarray(to_numpy(W)), np.asarray(to_numpy(b))
    opt = getattr(est, "_optimizer", None)
    if opt is not None:
        slots = [s for s in opt.state if s != "step"]
        meta["optimizer"] = {"step": int(opt.state["step"]), "slots": slots, "learning_rate": opt.learning_rate}
        for slot in slots:
            for name, v in zip(layer_names(len(net.weights), f"opt.{slot}."), opt.state[slot], strict=True):
                arrays[name] = np.asarray(to_numpy(v))
    if isinstance(getattr(est, "_random_state", None), np.random.RandomState):
        meta["random_state"] = _rng_state(est._random_state, arrays, "rng")
    if getattr(est, "_split_state", None) is not None:
        split = np.random.RandomState()
        split.set_state(est._split_state)
        meta["split_state"] = _rng_state(split, arrays, "split")
    if getattr(est, "_dropout_rng", None) is not None:
        meta["dropout_rng"] = est._dropout_rng.bit_generator.state
    if getattr(est, "_sample_idx", None) is not None:
        arrays["sample_idx"] = np.asarray(est._sample_idx, dtype=np.int64)
    if getattr(est, "_resume_params", None) is not None:
        for name, p in zip(layer_names(len(net.weights), "resume."), est._resume_params, strict=True):
            arrays[name] = np.asarray(to_numpy(p))
    write_arrays(path, arrays, meta, _KEY, "estimator file")


def _expected_arrays(meta, found, where):
    """name → :class:`~ffnn._schema.Array` of every tensor the file must (or may) hold; the layer
    widths come from the weights W.1, W.2, … themselves."""
    L = 0
    while f"W.{L + 1}" in found:
        L += 1
        if len(found[f"W.{L}"][1]) != 2:
            raise FileFormatError(f"{where}: W.{L} has shape {tuple(found[f'W.{L}'][1])}, expected (n, n)")
    if L == 0:
        raise FileFormatError(f"{where} lacks the array W.1")
    sizes = [found["W.1"][1][0]] + [found[f"W.{l}"][1][1] for l in range(1, L + 1)]
    shapes = [shape for l in range(1, L + 1) for shape in ((sizes[l - 1], sizes[l]), (sizes[l],))]
    prefixes = [""]
    if not meta.get("best_is_current") and any(name.startswith("best.") for name in found):
        prefixes.append("best.")
    if any(name.startswith("resume.") for name in found):
        prefixes.append("resume.")
    prefixes += [f"opt.{slot}." for slot in meta.get("optimizer", {}).get("slots", [])]
    expected = {name: Array(FLOAT, shape) for prefix in prefixes for name, shape in zip(layer_names(L, prefix), shapes)}
    for name in _CURVES + _SCALARS:
        if name not in meta["none"]:
            expected[name] = Array(FLOAT, (None,) if name in _CURVES else (1,), required=False)
    for field, prefix in (("random_state", "rng"), ("split_state", "split")):
        if field in meta:
            expected[f"{prefix}.keys"] = Array(np.uint32, (624,))
    expected["sample_idx"] = Array(np.int64, (None,), required=False)
    return expected, sizes


def _check_fitted(meta, sizes, where):
    """The fitted attributes against each other and against the weights' widths."""
    L = len(sizes) - 1
    for name, want in (("n_features_in_", sizes[0]), ("n_outputs_", sizes[-1]), ("n_layers_", L + 1)):
        if name in meta and meta[name] != want:
            raise FileFormatError(f"{where}: field {name!r} is {meta[name]}, but the weights say {want}")
    if "feature_names_in_" in meta and len(meta["feature_names_in_"]) != sizes[0]:
        raise FileFormatError(f"{where}: field 'feature_names_in_' names {len(meta['feature_names_in_'])} "
                              f"features for {sizes[0]} inputs")
    if "classes_" in meta:
        c = meta["classes_"]
        dt = np.dtype(c["dtype"])
        widest = max(len(str(v)) for v in c["values"])
        if dt.kind == "U" and dt.itemsize > 4 * widest:
            raise FileFormatError(f"{where}: field 'classes_.dtype' ({printable(c['dtype'])}) is wider than its labels")
        try:
            values = np.asarray(c["values"], dtype=dt)
        except (TypeError, ValueError, OverflowError):
            raise FileFormatError(f"{where}: field 'classes_.values' must be labels of dtype "
                                  f"{printable(c['dtype'])}") from None
        return values
    return None


def _check_params(cls, params, where):
    """The stored parameters: one field per parameter of ``cls`` but ``callbacks`` (which is not
    saved), each valid for ``cls`` (scikit-learn's parameter constraints). Returns them as ``cls``
    takes them."""
    from sklearn.utils._param_validation import InvalidParameterError, validate_parameter_constraints

    names = [name for name in cls._get_param_names() if name != "callbacks"]
    validate(params, {name: _PARAM for name in names}, where, "params")
    params = {k: _param_from_json(k, v) for k, v in params.items()}
    for name, value in params.items():
        constraints = cls._parameter_constraints[name]
        try:
            if isinstance(value, bool) and not {"boolean", "verbose"} & {c for c in constraints if isinstance(c, str)}:
                raise InvalidParameterError(f"{name} is not true or false")  # scikit-learn takes True for 1
            validate_parameter_constraints({name: constraints}, {name: value}, caller_name=cls.__name__)
        except InvalidParameterError as exc:
            raise FileFormatError(f"{where}: field {f'params.{name}'!r} must be a valid parameter: {exc}") from None
    return params


def load(path, classes):
    """The estimator in the file ``path`` (see :func:`ffnn.sklearn.load`); ``classes`` maps each
    estimator name a file may hold to its class."""
    from sklearn.preprocessing import LabelBinarizer


    with SafetensorsFile(path, _KEY, "estimator file") as f:
        where, meta = f.where, f.meta
        if isinstance(meta.get("format"), int) and meta["format"] > FORMAT:
            raise FileFormatError(f"{where} was written by a newer ffnn (format {meta['format']}; this version "
                                  f"reads up to {FORMAT})")
        validate(meta, SCHEMA, where)
        if meta["estimator"] == "MLPClassifier" and "classes_" not in meta:
            raise FileFormatError(f"{where} lacks the field 'classes_' (a classifier's classes)")
        cls = classes[meta["estimator"]]
        params = _check_params(cls, meta["params"], where)
        L = sum(1 for name in f.tensors if name.startswith("W."))
        renamed = legacy_names(f.tensors, L) if meta["format"] < 2 else {}
        source = {renamed.get(name, name): name for name in f.tensors}  # name now → name in the file
        found = {name: f.tensors[src] for name, src in source.items()}
        expected, sizes = _expected_arrays(meta, found, where)
        check_arrays(found, expected, where, "estimator file")
        classes = _check_fitted(meta, sizes, where)
        f.verify()
        arrays = {name: f.array(source[name]) for name in expected if name in found}
    est = cls(**params)
    L, dtype = len(sizes) - 1, np.dtype(meta["dtype"])
    layers = lambda prefix: [np.asarray(arrays[name], dtype=dtype) for name in layer_names(L, prefix)]
    params_ = layers("")
    est.coefs_, est.intercepts_ = params_[0::2], params_[1::2]
    est.out_activation_ = meta["out_activation_"]
    for name in _COUNTS:
        if name in meta:
            setattr(est, name, meta[name])
    for name in _CURVES + _SCALARS:
        if name in meta["none"]:
            setattr(est, name, None)
        elif name in arrays:
            values = [float(v) for v in arrays[name]]
            setattr(est, name, values if name in _CURVES else values[0])
    if "feature_names_in_" in meta:
        est.feature_names_in_ = np.asarray(meta["feature_names_in_"], dtype=object)
    if classes is not None:
        lb = LabelBinarizer()
        lb.classes_ = classes
        lb.y_type_, lb.sparse_input_ = meta["classes_"]["y_type"], False
        est._label_binarizer, est.classes_ = lb, lb.classes_
        est._multilabel = lb.y_type_.startswith("multilabel")
    try:
        net = est.network_  # built from coefs_ and intercepts_
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"{where} describes an invalid network: {exc}") from None
    if meta.get("best_is_current"):
        est._best_coefs, est._best_intercepts = est.coefs_, est.intercepts_
    elif "best.W.1" in arrays:
        best = layers("best.")
        est._best_coefs, est._best_intercepts = best[0::2], best[1::2]
    if "optimizer" in meta:
        o = meta["optimizer"]
        try:
            opt = est._make_optimizer(net.parameters())
        except (TypeError, ValueError) as exc:
            raise FileFormatError(f"{where}: field 'params' does not describe an optimizer: {exc}") from None
        slots = [s for s in opt.state if s != "step"]
        if sorted(o["slots"]) != sorted(slots):
            raise FileFormatError(f"{where}: field 'optimizer.slots' must be {slots} for solver "
                                  f"{printable(est.solver)!r}, not {printable(o['slots'])}")
        opt.state["step"] = o["step"]
        for slot in slots:
            opt.state[slot] = layers(f"opt.{slot}.")
        opt.learning_rate = o["learning_rate"]
        est._optimizer = opt
    if "random_state" in meta:
        est._random_state = np.random.RandomState()
        est._random_state.set_state(_rng_tuple(meta["random_state"], arrays, "rng"))
    if "split_state" in meta:
        est._split_state = _rng_tuple(meta["split_state"], arrays, "split")
    if "sample_idx" in arrays:
        est._sample_idx = np.asarray(arrays["sample_idx"], dtype=int)
    if "resume.W.1" in arrays:
        est._resume_params = layers("resume.")
    if "dropout_rng" in meta:
        state = meta["dropout_rng"]  # of a bit generator NumPy has (SCHEMA)
        est._dropout_rng = np.random.Generator(getattr(np.random, state["bit_generator"])())
        est._dropout_rng.bit_generator.state = state
    return est
