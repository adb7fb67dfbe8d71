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
        classes = np.unique(labels)
        members = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
        counts = np.array([len(m) for m in members])
        take = _largest_remainder(fraction * counts, int(round(fraction * n)), counts)
        held = np.sort(np.concatenate([m[:k] for m, k in zip(members, take)]).astype(np.int64))
    else:
        held = np.sort(rng.permutation(n)[: int(round(fraction * n))])
    if len(held) == 0 or len(held) == n:
        raise ValueError(f"holding out a fraction {fraction} of {n} samples leaves "
                         f"{'nothing held out' if len(held) == 0 else 'nothing to train on'}")
    return np.setdiff1d(np.arange(n), held), held


def _largest_remainder(quotas, total, counts):
    """Whole numbers per class near ``quotas`` that add up to ``total``: each class gets its quota's
    floor, and the rest go to the largest remainders, first to classes that keep a sample to train on."""
    take = np.floor(quotas).astype(np.int64)
    spare = total - int(take.sum())
    order = sorted(range(len(quotas)), key=lambda i: (take[i] + 1 >= counts[i], -(quotas[i] - take[i]), i))
    for i in order[:max(spare, 0)]:
        take[i] += 1
    return take

