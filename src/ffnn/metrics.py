"""Metrics: accuracy, the confusion matrix and the per-class report for classification; MSE, MAE
and R² for regression.

Each takes targets T and outputs A of shape (N, K) (or (N,)) from any array namespace and returns a
Python float. For accuracy, a one-column output is thresholded at 0.5 (a sigmoid), several columns
are compared by argmax (softmax), or element by element when ``multilabel=True``.
"""

from __future__ import annotations

import math

from ._array import array_namespace

__all__ = ["accuracy", "margin_accuracy", "predicted_classes", "confusion_matrix", "classification_report", "mse", "mae", "r2",
           "METRICS", "get_metric"]


def _2d(xp, x):
    return xp.reshape(x, (-1, 1)) if x.ndim == 1 else x


def accuracy(T, A, multilabel=False):
    """Fraction of samples whose predicted class (or, multilabel, whose every label) is right."""
    xp = array_namespace(T, A)
    T, A = _2d(xp, T), _2d(xp, A)
    if A.shape[1] == 1 or multilabel:
        right = xp.all((A >= 0.5) == (T >= 0.5), axis=1)
    else:
        right = xp.argmax(A, axis=1) == xp.argmax(T, axis=1)
    return float(xp.mean(xp.astype(right, A.dtype)))


def margin_accuracy(T, A):
    """Accuracy for the scores of a margin loss (hinge, squared hinge): a single column predicts the
    positive class where its score is above 0, and its target is positive above 0 (labels ±1, or
    0/1 read as the hinge losses read them); several columns are compared by argmax, as
    :func:`accuracy` does."""
    xp = array_namespace(T, A)
    T, A = _2d(xp, T), _2d(xp, A)
    if A.shape[1] > 1:
        return accuracy(T, A)
    right = (A[:, 0] > 0) == (T[:, 0] > 0)
    return float(xp.mean(xp.astype(right, A.dtype)))


def predicted_classes(A):
    """The class index each row of outputs A (N, K) predicts: argmax over the columns, or for one
    column (a sigmoid) 1 where a ≥ 0.5, as :func:`accuracy` counts them."""
    xp = array_namespace(A)
    A = _2d(xp, A)
    if A.shape[1] == 1:
        return xp.astype(A[:, 0] >= 0.5, xp.int64)
    return xp.argmax(A, axis=1)


def confusion_matrix(true, predicted, k):
    """C (k, k) of counts: C[i, j] samples of class i predicted as class j (rows: the truth, as
    scikit-learn's ``confusion_matrix``); ``true`` and ``predicted`` are class indices 0 … k−1."""
    import numpy as np

    true, predicted = np.asarray(true, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if true.shape != predicted.shape:
        raise ValueError(f"true {true.shape} and predicted {predicted.shape} classes differ in shape")
    if true.size and (min(true.min(), predicted.min()) < 0 or max(true.max(), predicted.max()) >= k):
        raise ValueError(f"class indices must lie in 0 … {k - 1}")
    return np.bincount(true * k + predicted, minlength=k * k).reshape(k, k)


def classification_report(C, labels=None):
    """Per-class precision, recall, F1 and support from a confusion matrix C (rows: the truth), with
    the accuracy and the macro and support-weighted averages: scikit-learn's
    ``classification_report(..., output_dict=True)``, keys and all. For class k,
    precision = C[k, k] / Σ_i C[i, k], recall = C[k, k] / Σ_j C[k, j], F1 = 2 P R / (P + R); a
    ratio whose denominator is 0 is 0 (scikit-learn's ``zero_division`` default, without its warning)."""
    import numpy as np

    C = np.asarray(C, dtype=np.int64)
    labels = [str(i) for i in range(C.shape[0])] if labels is None else [str(label) for label in labels]
    tp, predicted, support = np.diag(C), C.sum(axis=0), C.sum(axis=1)

    def ratio(a, b):
        return np.divide(a, b, out=np.zeros(len(a)), where=b > 0)

    precision, recall = ratio(tp, predicted), ratio(tp, support)
    f1 = ratio(2 * precision * recall, precision + recall)
    report = {label: {"precision": float(p), "recall": float(r), "f1-score": float(f), "support": int(n)}
              for label, p, r, f, n in zip(labels, precision, recall, f1, support)}
    total = int(support.sum())
    report["accuracy"] = float(tp.sum() / total) if total else 0.0
    w = support / total if total else np.zeros(len(support))
    for name, weights in (("macro avg", np.full(len(support), 1 / len(support))), ("weighted avg", w)):
        report[name] = {"precision": float(weights @ precision), "recall": float(weights @ recall),
                        "f1-score": float(weights @ f1), "support": total}
    return report


def _scaled_errors(xp, T, A):
    """(|T − A| / s / u, s, u): s a power of two near the largest error (so dividing is exact and squaring
    or summing the quotients cannot overflow), u = 2 when an error beyond the float range is taken in
    halves (else 1); multiply back by s, then by u."""
    import numpy as np

    with np.errstate(over="ignore"):  # an error beyond the float range: taken in halves below
        D, unit = xp.abs(_2d(xp, T) - _2d(xp, A)), 1.0
    if not bool(xp.all(xp.isfinite(D))) and bool(xp.all(xp.isfinite(T))) and bool(xp.all(xp.isfinite(A))):
        D, unit = xp.abs(_2d(xp, T) / 2 - _2d(xp, A) / 2), 2.0
    largest = float(xp.max(D)) if D.size else 0.0
    if math.isfinite(largest) and largest > 0:
        s = math.ldexp(1.0, math.frexp(largest)[1] - 1)
        return D / s, s, unit
    return D, 1.0, unit


def mse(T, A):
    """1/(N K) Σ (T − A)², the mean squared error over every entry (infinite only when its value is
    beyond the float range: the errors are scaled by a power of two before they are squared)."""
    xp = array_namespace(T, A)
    D, s, u = _scaled_errors(xp, T, A)
    return float(xp.mean(D * D)) * s * s * u * u


def mae(T, A):
    """1/(N K) Σ ``|T − A|``, the mean absolute error over every entry (scaled as :func:`mse`, so a mean
    of errors near the float range is finite)."""
    xp = array_namespace(T, A)
    D, s, u = _scaled_errors(xp, T, A)
    return float(xp.mean(D)) * s * u


def r2(T, A):
    """R² = 1 − Σ(T − A)² / Σ(T − T̄)², averaged uniformly over output columns (scikit-learn's default).

    A constant target column scores 1.0 when predicted exactly and 0.0 otherwise, as in scikit-learn.
    R² does not change when T and A are divided by the same number, so each column is divided by the
    largest power of two not above its largest |t| (an exact division): targets near the float range
    (1e300) score without their squares overflowing.
    """
    xp = array_namespace(T, A)
    T, A = _2d(xp, T), _2d(xp, A)
    scores = []
    for k in range(T.shape[1]):
        t, a = T[:, k], A[:, k]
        largest = float(xp.max(xp.abs(t)))
        if math.isfinite(largest) and largest > 0:
            s = math.ldexp(1.0, math.frexp(largest)[1] - 1)
            t, a = t / s, a / s
        res, tot = float(xp.sum((t - a) ** 2)), float(xp.sum((t - xp.mean(t)) ** 2))
        scores.append(1.0 - res / tot if tot > 0 else (1.0 if res == 0 else 0.0))
    return sum(scores) / len(scores)


METRICS = {"accuracy": accuracy, "margin_accuracy": margin_accuracy, "mse": mse, "mae": mae, "r2": r2}


def get_metric(name):
    """The metric function ``f(T, A) -> float`` named ``name`` in ``METRICS``, or ``name`` itself when
    it is a callable."""
    if callable(name):
        return name
    if name in METRICS:
        return METRICS[name]
    raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
