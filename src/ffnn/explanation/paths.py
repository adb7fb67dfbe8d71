"""Gashler's per-weight formula (his step 19): ∂J/∂w as a sum over every path from the weight to
the outputs, evaluated literally, one product per path, without the cached error terms.

For the weight W[l][k, j] (Gashler's w_ljk) and each sample, a path is a choice of one unit per
layer after l, j = u_l → u_l+1 → … → u_L, and its term is

    δ[L]_{u_L} · Π_{m=l+1..L} W[m][u_m−1, u_m] · Π_{m=l..L−1} σ_m′(z[m]_{u_m}) · a[l−1]_k

where δ[L] = ∂J/∂z[L] is the output error (Gashler's −e_L = −(t − y)f′ for his loss). The number of
paths is the product of the widths after layer l: exponential in depth, which is why
back-propagation caches the error terms (his steps 20–24). Only for small networks.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

__all__ = ["PathSum", "path_sum", "path_count"]


@dataclass(frozen=True)
class PathSum:
    """The path sum of one weight: ``total`` over all ``count`` paths (all samples), and the first
    ``len(paths)`` of them as (sample, units u_l … u_L, term)."""

    total: float
    count: int
    paths: tuple


def path_count(sizes, l) -> int:
    """The number of paths from a unit of layer l to the outputs (per sample)."""
    return math.prod(sizes[l + 1:])


def path_sum(values, sizes, l, k, j, *, listed=64) -> PathSum:
    """Gashler's step 19 for ∂J/∂W[l][k, j] (ffnn's indices and sign), summed over the samples.

    ``values`` is an :class:`~ffnn.explanation.Explanation`'s ``values`` (the forward pass's a[l],
    σ′(z[l]), the weights and the output error δ[L]); ``sizes`` the layer widths S_0 … S_L.
    Hidden error terms are not used: each path's product is formed from scratch.
    """
    L = len(sizes) - 1
    N = 1 + max(key[2] for key in values if key[0] == "a")
    total, count, shown = 0.0, 0, []
    for n in range(N):
        for rest in itertools.product(*(range(s) for s in sizes[l + 1:])):
            units = (j,) + rest
            term = values[("delta", L, n, units[-1])]
            for m in range(l + 1, L + 1):
                term *= values[("W", m, units[m - l - 1], units[m - l])]
            for m in range(l, L):
                term *= values[("fp", m, n, units[m - l])]
            term *= values[("a", l - 1, n, k)]
            total += term
            count += 1
            if len(shown) < listed:
                shown.append((n, units, term))
    return PathSum(total, count, tuple(shown))
