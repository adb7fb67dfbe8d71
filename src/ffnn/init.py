"""Weight initialisers. Every draw comes from a ``numpy.random.Generator``; biases start at zero.

For a layer with fan_in = S_{l−1} inputs and fan_out = S_l outputs:

=============== ================================ ===================================
name            uniform U(−r, r), r =             normal N(0, s²), s =
=============== ================================ ===================================
glorot          √(6 / (fan_in + fan_out))         √(2 / (fan_in + fan_out))
he              √(6 / fan_in)                     √(2 / fan_in)
lecun           √(3 / fan_in)                     √(1 / fan_in)
=============== ================================ ===================================

Names are ``"glorot_uniform"``, ``"he_normal"`` and so on; ``"auto"`` picks He (uniform) for
the relu family and Glorot (uniform) otherwise. Draws are made in float64 and then cast, so a seed
gives the same network in either dtype (up to the rounding of the cast).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["INITIALIZERS", "draw_weights", "resolve_init"]

INITIALIZERS = tuple(f"{family}_{dist}" for family in ("glorot", "he", "lecun") for dist in ("uniform", "normal"))


def _scale(family, dist, fan_in, fan_out):
    if family == "glorot":
        return math.sqrt((6.0 if dist == "uniform" else 2.0) / (fan_in + fan_out))
    if family == "he":
        return math.sqrt((6.0 if dist == "uniform" else 2.0) / fan_in)
    return math.sqrt((3.0 if dist == "uniform" else 1.0) / fan_in)


def resolve_init(init, activation):
    """The initialiser name for one layer: ``init`` itself, or, for ``"auto"``, the one the layer's
    activation asks for (``Activation.init``: He for the built-in relu family, Glorot otherwise)."""
    if init == "auto":
        return activation.init
    if init in ("glorot", "he", "lecun"):
        return f"{init}_uniform"
    if init not in INITIALIZERS:
        raise ValueError(f"unknown init {init!r}; known: auto, {', '.join(INITIALIZERS)}")
    return init


def draw_weights(rng: np.random.Generator, name: str, fan_in: int, fan_out: int) -> np.ndarray:
    """Draw W of shape (fan_in, fan_out) in float64 with initialiser ``name``."""
    family, dist = name.split("_")
    s = _scale(family, dist, fan_in, fan_out)
    if dist == "uniform":
        return rng.uniform(-s, s, size=(fan_in, fan_out))
    return rng.normal(0.0, s, size=(fan_in, fan_out))
