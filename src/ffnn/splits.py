"""Splitting samples into kept and held-out sets, stratified by class: used by training's validation
split and by the command line's test split (which must not import the training loop)."""

from __future__ import annotations

import numpy as np

from ._array import to_numpy

__all__ = ["one_hot_labels", "split_indices"]


def one_hot_labels(T):
    """Class indices when T is one-hot (several columns of 0/1, one 1 per row), else None."""
    Tn = to_numpy(T)
    if Tn.shape[1] > 1 and bool(np.all((Tn == 0) | (Tn == 1))) and bool(np.all(Tn.sum(axis=1) == 1)):
        return np.argmax(Tn, axis=1)
    return None


def split_indices(n, fraction, rng, labels=None):
    """Index arrays (kept, held out) holding out ``fraction`` of n samples, stratified by ``labels``
    (each class keeps its share) when given."""
    if labels is not None:
        held = []
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            held.extend(idx[: int(round(fraction * len(idx)))])
        held = np.sort(np.asarray(held, dtype=np.int64))
    else:
        held = np.sort(rng.permutation(n)[: int(round(fraction * n))])
    if len(held) == 0 or len(held) == n:
        raise ValueError(f"holding out a fraction {fraction} of {n} samples leaves "
                         f"{'nothing held out' if len(held) == 0 else 'nothing to train on'}")
    return np.setdiff1d(np.arange(n), held), held

