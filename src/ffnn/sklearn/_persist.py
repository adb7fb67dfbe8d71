"""A fitted estimator in one safetensors file, and back: no pickle.

Tensors: W[l] and b[l] (``W.{l}``, ``b.{l}``, l = 1..L), the optimiser's state arrays
(``opt.{slot}.{i}``), early stopping's best weights (``best.W.{l}``, ``best.b.{l}``), the loss and
validation curves, and the random streams' key arrays. JSON metadata under ``ffnn_sklearn``: the
estimator's class and parameters, its other fitted attributes (classes, counts, the stopping rule's
state), the optimiser's learning rate and step count, and the random streams' positions. A loaded
estimator predicts identically and goes on training from the state it was saved in.
"""

from __future__ import annotations

import math

import numpy as np

from .._array import to_numpy
from .._files import FileFormatError, check_writable, read_arrays, write_arrays

__all__ = ["save", "load"]

FORMAT = 1
_KEY = "ffnn_sklearn"
_CURVES = ("loss_curve_", "validation_scores_", "validation_loss_curve_")
_SCALARS = ("loss_", "best_loss_", "best_validation_score_")
_COUNTS = ("n_iter_", "t_", "n_outputs_", "n_layers_", "n_features_in_", "_no_improvement_count")


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
            for i, v in enumerate(opt.state[slot]):
                arrays[f"opt.{slot}.{i}"] = np.asarray(to_numpy(v))
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
        for i, p in enumerate(est._resume_params):
            arrays[f"resume.{i}"] = np.asarray(to_numpy(p))
    write_arrays(path, arrays, meta, _KEY)


def load(path):
    """An estimator saved by ``est.save(path)``: it predicts as the saved one did and goes on training
    (``partial_fit``, or ``fit`` with ``warm_start``) from the state it was saved in.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ffnn.sklearn.MLPClassifier or MLPRegressor

    Raises
    ------
    FileFormatError
        When the file is missing, truncated, not a safetensors file, or not an estimator file.
    """
    from sklearn.preprocessing import LabelBinarizer

    from .estimators import MLPClassifier, MLPRegressor

    arrays, meta = read_arrays(path, _KEY, "estimator file")
    if meta.get("format", 0) > FORMAT:
        raise FileFormatError(f"estimator file {str(path)!r} was written by a newer ffnn (format {meta.get('format')})")
    classes = {"MLPClassifier": MLPClassifier, "MLPRegressor": MLPRegressor}
    if meta.get("estimator") not in classes:
        raise FileFormatError(f"estimator file {str(path)!r} holds an unknown estimator {meta.get('estimator')!r}")
    est = classes[meta["estimator"]](**{k: _param_from_json(k, v) for k, v in meta["params"].items()})
    L = sum(1 for k in arrays if k.startswith("W."))
    dtype = np.dtype(meta["dtype"])
    est.coefs_ = [np.asarray(arrays[f"W.{l}"], dtype=dtype) for l in range(1, L + 1)]
    est.intercepts_ = [np.asarray(arrays[f"b.{l}"], dtype=dtype) for l in range(1, L + 1)]
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
    if "classes_" in meta:
        c = meta["classes_"]
        lb = LabelBinarizer()
        lb.classes_ = np.asarray(c["values"], dtype=np.dtype(c["dtype"]))
        lb.y_type_, lb.sparse_input_ = c["y_type"], False
        est._label_binarizer, est.classes_ = lb, lb.classes_
        est._multilabel = lb.y_type_.startswith("multilabel")
    net = est.network_  # built from coefs_ and intercepts_
    if meta.get("best_is_current"):
        est._best_coefs, est._best_intercepts = est.coefs_, est.intercepts_
    elif "best.W.1" in arrays:
        est._best_coefs = [np.asarray(arrays[f"best.W.{l}"], dtype=dtype) for l in range(1, L + 1)]
        est._best_intercepts = [np.asarray(arrays[f"best.b.{l}"], dtype=dtype) for l in range(1, L + 1)]
    if "optimizer" in meta:
        o = meta["optimizer"]
        opt = est._make_optimizer(net.parameters())
        opt.state["step"] = o["step"]
        for slot in o["slots"]:
            opt.state[slot] = [np.asarray(arrays[f"opt.{slot}.{i}"], dtype=dtype) for i in range(len(opt.state[slot]))]
        opt.learning_rate = o["learning_rate"]
        est._optimizer = opt
    if "random_state" in meta:
        est._random_state = np.random.RandomState()
        est._random_state.set_state(_rng_tuple(meta["random_state"], arrays, "rng"))
    if "split_state" in meta:
        est._split_state = _rng_tuple(meta["split_state"], arrays, "split")
    if "sample_idx" in arrays:
        est._sample_idx = np.asarray(arrays["sample_idx"], dtype=int)
    if "resume.0" in arrays:
        est._resume_params = [np.asarray(arrays[f"resume.{i}"], dtype=dtype) for i in range(2 * L)]
    if "dropout_rng" in meta:
        est._dropout_rng = np.random.default_rng()
        est._dropout_rng.bit_generator.state = meta["dropout_rng"]
    return est
