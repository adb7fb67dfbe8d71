"""Array-namespace helpers shared by the core.

The core math never calls ``numpy`` directly: it asks the arrays it is given for their namespace
(the Python array API standard, through array-api-compat), so NumPy, array-api-strict, CuPy or
PyTorch arrays run through the same code.
"""

from __future__ import annotations

import numpy as np
from array_api_compat import array_namespace, is_numpy_namespace

__all__ = ["array_namespace", "is_numpy_namespace", "is_torch_namespace", "namespace_of", "normalize_namespace",
           "resolve_dtype", "dtype_name", "to_numpy", "device_of", "resolve_device", "asarray_on"]

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


def is_torch_namespace(xp) -> bool:
    """Whether ``xp`` is PyTorch, bare (``torch``) or wrapped (``array_api_compat.torch``); never imports torch."""
    return getattr(xp, "__name__", "") in ("torch", "array_api_compat.torch")


def normalize_namespace(xp):
    """The array-API namespace for ``xp``: the bare ``torch`` and ``cupy`` modules, which differ from the
    standard (``torch.take`` has no ``axis``), become their ``array_api_compat`` wrappers; ``None`` is NumPy."""
    if xp is None:
        return np
    name = getattr(xp, "__name__", "")
    if name == "torch":
        import array_api_compat.torch as compat

        return compat
    if name == "cupy":
        import array_api_compat.cupy as compat

        return compat
    return xp


def resolve_device(device):
    """A PyTorch device from ``"auto"`` (CUDA when there is one, else the CPU), a name or a ``torch.device``."""
    import torch

    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device={device!r} is not a PyTorch device (use 'cpu', 'cuda', 'cuda:1' or 'auto'): "
                         f"{' '.join(str(exc).split())[:120]}") from None
    if device.type not in ("cpu", "cuda", "mps", "xpu", "meta"):
        raise ValueError(f"device={str(device)!r}: ffnn trains on 'cpu' and 'cuda' devices (or 'auto')")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r}: PyTorch sees no CUDA device (device='auto' falls back to the CPU)")
    return device


def device_of(x):
    """The device an array lives on (``"cpu"`` for NumPy)."""
    from array_api_compat import device

    return device(x)


def asarray_on(xp, x, dtype, device=None):
    """``x`` as an array of namespace ``xp`` with ``dtype`` on ``device`` (``None``: the namespace's default);
    arrays of another library go through NumPy."""
    kw = {} if device is None else {"device": device}
    try:
        return xp.asarray(x, dtype=dtype, **kw)
    except (TypeError, ValueError, RuntimeError):  # another namespace's array
        return xp.asarray(to_numpy(x), dtype=dtype, **kw)
