"""What every exporter reads: a network, or a fitted ``ffnn.sklearn`` estimator, reduced to plain arrays.

A CLI model file (``ffnn train``) maps raw features to predictions in three steps, which the
exporters reproduce (see ``ffnn.cli.shared``: ``prepare_features`` and ``outputs_to_predictions``):

    x' = (x − shift) / scale                  the input Scaler stored with the model
    a  = net.predict(x')                       a[L], layer by layer
    classify: probabilities = a, label = argmax_k a_k  (an index into ``classes``)
    regress:  prediction = a · scale_y + shift_y       the target Scaler, when stored

Nothing here imports onnx, torch or scikit-learn.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np

from .. import activations as _act
from .._array import to_numpy
from .._errors import ConversionError
from ..network import Network

__all__ = ["ConversionError", "Description", "describe"]


@dataclass
class Description:
    """A network and what surrounds it, as NumPy arrays.

    Attributes
    ----------
    weights, biases : list of ndarray
        ``W[l]`` (S_{l−1}, S_l) and ``b[l]`` (S_l,), for l = 1..L (0-based lists), in ``dtype``.
    activations : list of ffnn.Activation
        σ_1 … σ_L; each exporter asks them for their forms (``Activation.export_form``).
    activation_names : list of str
        ffnn's names of σ_1 … σ_L (``"leaky_relu(slope=0.2)"``).
    dtype : str
        The network's dtype, "float32" or "float64".
    output : str
        ``"values"`` (a regression prediction), ``"probabilities"`` (a[L] are the probabilities; the
        label is their argmax), ``"binary"`` (one logistic unit p; probabilities [1 − p, p]) or
        ``"multilabel"`` (one logistic unit per label; each label is p > 0.5).
    input_shift, input_scale : ndarray (S_0,) or None
        x' = (x − shift) / scale before layer 1.
    target_shift, target_scale : ndarray (S_L,) or None
        prediction = a[L] · scale + shift (regression only).
    classes : list or None
        Class labels, one per probability column.
    feature_names : list of str or None
    kind : str
        What was given ("Network", "model file", "MLPClassifier", …), for messages and metadata.
    """

    weights: list
    biases: list
    activations: list
    activation_names: list
    dtype: str
    output: str = "values"
    input_shift: np.ndarray | None = None
    input_scale: np.ndarray | None = None
    target_shift: np.ndarray | None = None
    target_scale: np.ndarray | None = None
    classes: list | None = None
    feature_names: list | None = None
    kind: str = "Network"
    extra: dict = field(default_factory=dict)

    @property
    def sizes(self):
        return [self.weights[0].shape[0]] + [W.shape[1] for W in self.weights]

    @property
    def task(self):
        return "regress" if self.output == "values" else "classify"

    @property
    def n_outputs(self):
        """Width of the probabilities (or of the prediction)."""
        return 2 if self.output == "binary" else self.sizes[-1]


def check_representable(d: Description, dtype, hint=""):
    """ConversionError naming the first array whose values do not fit ``dtype`` (a float64 weight
    of 1e308 becomes infinity in float32), so that no exported model computes with infinities."""
    dtype = np.dtype(dtype)
    largest = float(np.finfo(dtype).max)
    arrays = [(f"W[{l}]", W) for l, W in enumerate(d.weights, start=1)]
    arrays += [(f"b[{l}]", b) for l, b in enumerate(d.biases, start=1)]
    arrays += [(name, a) for name, a in (("the input shift", d.input_shift), ("the input scale", d.input_scale),
                                         ("the target shift", d.target_shift), ("the target scale", d.target_scale))
               if a is not None]
    for name, a in arrays:
        a = np.asarray(a, dtype=np.float64)
        beyond = np.abs(a) > largest
        if beyond.any():
            raise ConversionError(f"{name} holds {a[beyond].flat[0]:g}, beyond the range of {dtype.name} "
                                  f"(±{largest:.4g}){hint}")


def _scaler_arrays(scaler, width, what):
    """(shift, scale) float64 arrays of a stored ``ffnn.data.Scaler``, or (None, None) for "none"."""
    if scaler is None or getattr(scaler, "kind", None) == "none":
        return None, None
    shift = np.asarray(scaler.shift, dtype=np.float64).reshape(-1)
    scale = np.asarray(scaler.scale, dtype=np.float64).reshape(-1)
    if shift.shape != (width,) or scale.shape != (width,):
        raise ConversionError(f"the stored {what} scaling has {shift.size} columns; the network has {width}")
    return shift, scale


def _plain(values):
    """A list of JSON-friendly Python values (NumPy scalars become ints, floats, strs)."""
    if isinstance(values, np.ndarray):
        return values.tolist()
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _is_ffnn_estimator(obj):
    mod = sys.modules.get("ffnn.sklearn")
    return mod is not None and isinstance(obj, (mod.MLPClassifier, mod.MLPRegressor))


def describe(obj, *, classes=None, what="export") -> Description:
    """A :class:`Description` of an ``ffnn.Network`` (a loaded CLI model file included) or a fitted
    ``ffnn.sklearn`` estimator.

    ``classes`` (only for a bare Network) names the output columns of a classifier: as many labels as
    the output layer has units, or two labels for a single logistic unit. A Network with a softmax
    output and no ``classes`` is a classifier with unnamed classes (the label is the column index).
    """
    if _is_ffnn_estimator(obj):
        if classes is not None:
            raise ConversionError("classes= is only for a bare Network; an estimator has its own classes_")
        return _describe_estimator(obj)
    if not isinstance(obj, Network):
        hint = ""
        if type(obj).__module__.startswith("sklearn.neural_network"):
            hint = " (convert a scikit-learn MLP first: ffnn.from_sklearn(mlp))"
        elif type(obj).__module__.startswith("torch"):
            hint = " (convert a PyTorch module first: ffnn.from_torch(module))"
        raise ConversionError(f"{what} needs an ffnn.Network or a fitted ffnn.sklearn estimator, "
                              f"got {type(obj).__name__}{hint}")
    d = _describe_network(obj, "Network")
    meta = getattr(obj, "metadata", None) or {}
    task = meta.get("task")
    if task is not None and classes is not None:
        raise ConversionError("classes= is only for a bare Network; this model file stores its own classes")
    if task is not None:
        d.kind = "model file"
        d.input_shift, d.input_scale = _scaler_arrays(meta.get("scaler"), d.sizes[0], "input")
        names = meta.get("feature_names")
        d.feature_names = [str(n) for n in names] if names else None
        if task == "classify":
            d.classes = _plain(meta.get("classes") or [])
            if len(d.classes) != d.sizes[-1]:
                raise ConversionError(f"the model file stores {len(d.classes)} classes for "
                                      f"{d.sizes[-1]} output units")
            d.output = "probabilities"
        elif task == "regress":
            d.target_shift, d.target_scale = _scaler_arrays(meta.get("target_scaler"), d.sizes[-1], "target")
        else:
            raise ConversionError(f"the model file's task {task!r} is neither 'classify' nor 'regress'")
        for key in ("target",):
            if meta.get(key) is not None:
                d.extra[key] = str(meta[key])
        return d
    if classes is not None:
        classes = _plain(classes)
        k = d.sizes[-1]
        if len(classes) == k:
            d.output = "probabilities"
        elif k == 1 and len(classes) == 2 and d.activations[-1] == _act.sigmoid:
            d.output = "binary"
        else:
            raise ConversionError(f"classes has {len(classes)} labels; the output layer has {k} units "
                                  f"(give one label per unit, or two for a single sigmoid unit)")
        d.classes = classes
    elif d.activations[-1] == _act.softmax:
        d.output = "probabilities"
    return d


def _describe_network(net, kind):
    acts = list(net.activations)
    d = np.dtype(net.dtype)
    return Description(
        weights=[np.asarray(to_numpy(W), dtype=d) for W in net.weights],
        biases=[np.asarray(to_numpy(b), dtype=d) for b in net.biases],
        activations=acts, activation_names=[a.name for a in net.activations], dtype=net.dtype, kind=kind)


def _describe_estimator(est):
    name = type(est).__name__
    if not hasattr(est, "network_"):
        raise ConversionError(f"this {name} is not fitted yet; call fit before exporting it")
    d = _describe_network(est.network_, name)
    names = getattr(est, "feature_names_in_", None)
    d.feature_names = [str(n) for n in names] if names is not None else None
    if hasattr(est, "classes_"):
        d.classes = _plain(est.classes_)
        if getattr(est, "_multilabel", False):
            d.output = "multilabel"
        elif est.n_outputs_ == 1:
            d.output = "binary"
        else:
            d.output = "probabilities"
    return d
