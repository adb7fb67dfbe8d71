"""Metrics: accuracy for classification; MSE, MAE and R² for regression.

Each takes targets T and outputs A of shape (N, K) (or (N,)) from any array namespace and returns a
Python float. For accuracy, a one-column output is thresholded at 0.5 (a sigmoid), several columns
are compared by argmax (softmax), or element by element when ``multilabel=True``.
"""

from __future__ import annotations

import math

from ._array import array_namespace

__all__ = ["accuracy", "mse", "mae", "r2", "METRICS", "get_metric"]


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


def mse(T, A):
    """1/(N K) Σ (T − A)², the mean squared error over every entry."""
    xp = array_namespace(T, A)
    D = _2d(xp, T) - _2d(xp, A)
    return float(xp.mean(D * D))


def mae(T, A):
    """1/(N K) Σ ``|T − A|``, the mean absolute error over every entry."""
    xp = array_namespace(T, A)
    return float(xp.mean(xp.abs(_2d(xp, T) - _2d(xp, A))))


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


METRICS = {"accuracy": accuracy, "mse": mse, "mae": mae, "r2": r2}


def get_metric(name):
    """The metric function ``f(T, A) -> float`` named ``name`` in ``METRICS``, or ``name`` itself when
    it is a callable."""
    if callable(name):
        return name
    if name in METRICS:
        return METRICS[name]
    raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
