"""scikit-learn's MLPs to and from ffnn: ``from_sklearn`` and ``to_sklearn``.

scikit-learn stores ``coefs_[i]`` as (n_in, n_out) and ``intercepts_[i]`` as (n_out,): ffnn's W[i+1] and
b[i+1] exactly, so the parameters are copied, never transformed. Activations map by name (scikit-learn's
"logistic" is ffnn's sigmoid: each activation carries its scikit-learn name, ``Activation.sklearn_name``);
its hidden layers share one activation (identity, logistic, tanh or relu) and its output is identity
(regressor), logistic (binary, multilabel) or softmax (multiclass).
"""

from __future__ import annotations

import copy

import numpy as np

from .. import activations as _act
from .. import losses as _losses
from ..network import Network
from ._model import ConversionError

__all__ = ["from_sklearn", "to_sklearn"]

# Fitted state worth carrying over besides the parameters (missing ones are skipped).
_FITTED = ("n_iter_", "t_", "loss_", "loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_",
           "n_features_in_", "feature_names_in_")


def _sklearn_mlps():
    try:
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    except ImportError:
        raise ImportError("converting scikit-learn models needs scikit-learn: pip install 'ffnn[sklearn]'") from None
    return MLPClassifier, MLPRegressor


def _by_sklearn_name():
    """scikit-learn's activation names → the activations ffnn knows by name that carry them."""
    out = {}
    for act in dict.fromkeys(_act.ACTIVATIONS.values()):
        if act.sklearn_name is not None:
            out.setdefault(act.sklearn_name, act)
    return out


def from_sklearn(mlp, *, estimator=False):
    """An ffnn model with the parameters of a fitted scikit-learn MLP.

    Parameters
    ----------
    mlp : sklearn.neural_network.MLPClassifier or MLPRegressor, fitted
    estimator : bool
        False: an :class:`ffnn.Network` (``predict`` gives a[L]: the probabilities of the softmax or
        logistic output, or the regression output). True: the matching :mod:`ffnn.sklearn` estimator,
        fitted, with the same hyperparameters, ``classes_``, ``n_iter_``, ``loss_curve_`` and so on,
        whose ``predict`` and ``predict_proba`` agree with ``mlp``'s.

    Returns
    -------
    ffnn.Network or ffnn.sklearn.MLPClassifier / MLPRegressor
        In the dtype of ``mlp.coefs_`` (float32 or float64).

    Raises
    ------
    ConversionError
        When ``mlp`` is not a fitted scikit-learn MLP or uses something ffnn lacks (e.g. the output
        activation of ``loss="poisson"``), naming it.
    """
    SkClassifier, SkRegressor = _sklearn_mlps()
    if not isinstance(mlp, (SkClassifier, SkRegressor)):
        raise ConversionError(f"from_sklearn needs a fitted sklearn.neural_network.MLPClassifier or MLPRegressor, "
                              f"got {type(mlp).__module__}.{type(mlp).__name__}")
    kind = type(mlp).__name__
    if not hasattr(mlp, "coefs_"):
        raise ConversionError(f"this {kind} is not fitted yet; call fit before converting it")
    ours = _by_sklearn_name()
    for what, name in (("activation", mlp.activation), ("out_activation_", mlp.out_activation_)):
        if name not in ours:
            raise ConversionError(f"{kind} {what}={name!r} has no ffnn equivalent (ffnn takes scikit-learn's "
                                  f"{', '.join(ours)})")
    hidden, out = ours[mlp.activation], ours[mlp.out_activation_]
    acts = [hidden] * (len(mlp.coefs_) - 1) + [out]
    dtype = np.dtype(mlp.coefs_[0].dtype).name
    try:
        net = Network.from_parameters([np.array(W) for W in mlp.coefs_], [np.array(b) for b in mlp.intercepts_],
                                      acts, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"{kind}: {exc}") from None
    if not estimator:
        return net
    from ..sklearn import MLPClassifier, MLPRegressor

    cls = MLPClassifier if isinstance(mlp, SkClassifier) else MLPRegressor
    ours = set(cls().get_params())
    params = {k: v for k, v in mlp.get_params().items() if k in ours}
    if cls is MLPRegressor and params.get("loss", _losses.mse.sklearn_name) != _losses.mse.sklearn_name:
        raise ConversionError(f"MLPRegressor loss={params['loss']!r} has no ffnn equivalent")
    est = cls(**params, dtype=dtype)
    est.network_ = net
    for attr in _FITTED:
        if hasattr(mlp, attr):
            setattr(est, attr, copy.deepcopy(getattr(mlp, attr)))
    est.n_outputs_ = mlp.n_outputs_
    est._optimizer = None
    est._no_improvement_count = 0
    if cls is MLPClassifier:
        est._label_binarizer = copy.deepcopy(mlp._label_binarizer)
        est.classes_ = est._label_binarizer.classes_
        est._multilabel = est._label_binarizer.y_type_.startswith("multilabel")
        # the log-loss whose declared (fused) output is the network's: cross_entropy for softmax,
        # binary_cross_entropy for logistic units
        est._loss = next(loss.name for loss in (_losses.cross_entropy, _losses.binary_cross_entropy)
                         if loss.fused(net.activations[-1]) is not None)
    else:
        est._y_ndim = 1 if mlp.n_outputs_ == 1 else 2  # scikit-learn returns (N,) for one output
    return est


def _is_ffnn_estimator(obj):
    import sys

    mod = sys.modules.get("ffnn.sklearn")
    return mod is not None and isinstance(obj, (mod.MLPClassifier, mod.MLPRegressor))


def to_sklearn(model, *, classes=None):
    """A fitted scikit-learn MLP with ``model``'s parameters.

    Parameters
    ----------
    model : fitted ffnn.sklearn.MLPClassifier / MLPRegressor, or ffnn.Network
    classes : sequence, optional
        For a Network only: the class labels, making an MLPClassifier (a softmax output over K ≥ 3
        classes, or one sigmoid unit for 2). Without it a Network with an identity output becomes an
        MLPRegressor.

    Returns
    -------
    sklearn.neural_network.MLPClassifier or MLPRegressor
        Its ``predict`` and ``predict_proba`` give the same results as ``model``'s (up to the last bit of
        the activations' own rounding). Hyperparameters scikit-learn lacks (``l1``, ``dropout``,
        ``class_weight``, ``dtype``, the solvers "adamw" and "rmsprop") are dropped; refitting then uses
        scikit-learn's defaults for them.

    Raises
    ------
    ConversionError
        When scikit-learn's MLP cannot represent the network — per-layer hidden activations, an
        activation other than identity, logistic, tanh and relu, a softmax over two classes — naming it.
    """
    SkClassifier, SkRegressor = _sklearn_mlps()
    if _is_ffnn_estimator(model):
        if classes is not None:
            raise ConversionError("classes= is only for a bare Network; an estimator has its own classes_")
        if not hasattr(model, "network_"):
            raise ConversionError(f"this {type(model).__name__} is not fitted yet; call fit before converting it")
        net, is_classifier = model.network_, hasattr(model, "classes_")
    elif isinstance(model, Network):
        net, is_classifier = model, classes is not None
    else:
        raise ConversionError(f"to_sklearn needs an ffnn.Network or a fitted ffnn.sklearn estimator, "
                              f"got {type(model).__name__}")
    acts = list(net.activations)
    names = [a.name for a in acts]
    if len(set(acts[:-1])) > 1:
        raise ConversionError(f"scikit-learn's MLP has one activation for all hidden layers; this network has "
                              f"{', '.join(names[:-1])}")
    h = acts[0] if len(acts) > 1 else _act.relu
    if h.sklearn_name is None or not h.hidden_ok:
        hidden = [n for n, a in _by_sklearn_name().items() if a.hidden_ok]
        raise ConversionError(f"hidden activation {h.name!r} has no scikit-learn equivalent (scikit-learn's MLP "
                              f"has {', '.join(hidden[:-1])} and {hidden[-1]})")
    out, k = acts[-1], net.sizes[-1]
    W = [np.array(w) for w in net.weights.to_list()]
    b = [np.array(v) for v in net.biases.to_list()]
    if is_classifier:
        from sklearn.preprocessing import LabelBinarizer

        if _is_ffnn_estimator(model):
            lb = copy.deepcopy(model._label_binarizer)
        else:
            lb = LabelBinarizer().fit(np.asarray(classes))
        multilabel = lb.y_type_.startswith("multilabel")
        n_classes = len(lb.classes_)
        want = "logistic" if (n_classes == 2 and not multilabel) or multilabel else "softmax"
        want_units = 1 if n_classes == 2 and not multilabel else n_classes
        if out.sklearn_name != want or k != want_units:
            raise ConversionError(f"scikit-learn's MLPClassifier for {n_classes} "
                                  f"{'labels' if multilabel else 'classes'} has {want_units} "
                                  f"{want} output unit{'s' if want_units > 1 else ''}; this network "
                                  f"has {k} {out.name} unit{'s' if k > 1 else ''}")
        sk = SkClassifier()
    else:
        if out.sklearn_name != "identity":
            raise ConversionError(f"scikit-learn's MLPRegressor has an identity output; this network's is "
                                  f"{out.name!r} (give classes= for a classifier)")
        sk = SkRegressor()
    if _is_ffnn_estimator(model):
        theirs = set(sk.get_params())
        params = {k2: v for k2, v in model.get_params().items() if k2 in theirs and k2 not in ("activation", "solver")}
        if model.solver in ("sgd", "adam", "lbfgs"):
            params["solver"] = model.solver
        if params.get("loss") not in (None, _losses.mse.sklearn_name):
            params.pop("loss")
        sk.set_params(**params)
        for attr in _FITTED:
            if hasattr(model, attr):
                setattr(sk, attr, copy.deepcopy(getattr(model, attr)))
    sk.set_params(activation=h.sklearn_name, hidden_layer_sizes=tuple(net.sizes[1:-1]))
    sk.coefs_, sk.intercepts_ = W, b
    sk.n_layers_ = len(net.sizes)
    sk.n_outputs_ = k
    sk.out_activation_ = out.sklearn_name
    sk.n_features_in_ = net.sizes[0]
    for attr, default in (("n_iter_", 0), ("t_", 0), ("loss_curve_", []), ("best_loss_", np.inf)):
        if not hasattr(sk, attr):
            setattr(sk, attr, default)
    if is_classifier:
        sk._label_binarizer = lb
        sk.classes_ = lb.classes_
    return sk
