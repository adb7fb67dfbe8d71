"""The estimators on PyTorch tensors, the way scikit-learn's array-API support works: inside
``sklearn.config_context(array_api_dispatch=True)``, ``fit``, ``partial_fit``, ``predict`` and
``predict_proba`` accept PyTorch tensors; the network trains on the tensors' device and stays there,
and predictions come back as tensors on the input's device (class labels of any kind other than
numbers stay a NumPy array). Validation, labels and class weights are handled on the host, once.
The 'lbfgs' solver runs SciPy on the host whatever the input.

Outside that context, or for other arrays, nothing changes.
"""

from __future__ import annotations

import functools

import numpy as np

from .._array import to_numpy

__all__ = ["tensor_device", "device_aware"]


def _is_torch(x):
    from array_api_compat import is_torch_array

    return is_torch_array(x)


def tensor_device(X):
    """The PyTorch device of X when array-API dispatch is on and X is a tensor, else None."""
    from sklearn import get_config

    if not get_config().get("array_api_dispatch", False) or not _is_torch(X):
        return None
    return X.device


def _host(v):
    return np.asarray(to_numpy(v)) if _is_torch(v) else v


def device_aware(method, *, fits):
    """``method`` taking tensors: inputs to the host for checking; a fit trains on their device;
    numeric results go back to the input's device."""
    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        device = tensor_device(X)
        if device is None:
            return method(self, X, *args, **kwargs)
        X, args = _host(X), tuple(_host(a) for a in args)
        kwargs = {k: _host(v) for k, v in kwargs.items()}
        if fits:
            self._train_device = device
            try:
                return method(self, X, *args, **kwargs)
            finally:
                self._train_device = None
        out = method(self, X, *args, **kwargs)
        if isinstance(out, np.ndarray) and out.dtype.kind in "biuf":
            import torch

            return torch.asarray(out, device=device)
        return out

    return wrapper
