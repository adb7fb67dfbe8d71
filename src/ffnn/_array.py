"""Array-namespace helpers shared by the core.

The core math never calls ``numpy`` directly: it asks the arrays it is given for their namespace
(the Python array API standard, through array-api-compat), so NumPy, array-api-strict, CuPy or
PyTorch arrays run through the same code.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace

__all__ = ["array_namespace", "is_numpy_namespace", "namespace_of", "resolve_dtype", "dtype_name", "to_numpy"]

_DTYPES = ("float32", "float64")


def namespace_of(*arrays):
    """The array namespace shared by ``arrays`` (``None`` entries are skipped)."""
    return array_namespace(*[a for a in arrays if a is not None])


def resolve_dtype(xp, dtype):
    """Map ``"float32"``/``"float64"`` (or a dtype object) to ``xp``'s dtype, refusing all others."""
    name = dtype_name(dtype)
    if name not in _DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}")
    return getattr(xp, name)


def dtype_name(dtype) -> str:
    """A dtype's canonical name: ``"float32"``, ``"float64"`` or whatever else it is called."""
    if isinstance(dtype, str):
        return dtype
    try:
        return np.dtype(dtype).name
    except TypeError:
        text = str(dtype)
        return text.rsplit(".", 1)[-1]


def to_numpy(x):
    """A NumPy copy of any array (for reports, file writing and tests, never the math path)."""
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except Exception:  # array-api-strict and GPU arrays refuse implicit conversion
        pass
    if hasattr(x, "get"):  # CuPy
        return x.get()
    if hasattr(x, "cpu"):  # PyTorch
        return x.detach().cpu().numpy()
    return np.from_dlpack(x)
