"""PyTorch to and from ffnn: ``from_torch(module)`` and ``to_torch(net)`` (also ``net.to_torch()``).

``nn.Linear`` computes z = a @ weightᵀ + bias with ``weight`` of shape (out, in): ffnn's W[l] is its
transpose, and b[l] its bias. The modules map one to one:

    nn.Identity (or no module) identity      nn.Sigmoid   sigmoid      nn.Tanh   tanh
    nn.ReLU                    relu          nn.LeakyReLU(s)  leaky_relu(slope=s)
    nn.ELU(α)                  elu(alpha=α)  nn.Softplus()    softplus     nn.Softmax(dim=-1)  softmax
    nn.GELU(approximate="tanh")  gelu (ffnn's gelu is the tanh form; the exact, erf form is refused)

``nn.Dropout`` is skipped (it does nothing at inference). torch is imported only by ``to_torch``;
``from_torch`` reads the module it is given.
"""

from __future__ import annotations

import sys

import numpy as np

from .._array import to_numpy
from ._model import ConversionError, activation_spec

__all__ = ["from_torch", "to_torch"]


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("to_torch needs PyTorch: pip install torch") from None
    return torch


def _flatten(module, nn):
    if isinstance(module, nn.Sequential):
        for child in module:
            yield from _flatten(child, nn)
    else:
        yield module


def _activation_of(m, nn, position):
    """ffnn's activation name for torch module ``m``, or ConversionError naming it."""
    name = type(m).__name__
    if isinstance(m, nn.Sigmoid):
        return "sigmoid"
    if isinstance(m, nn.Tanh):
        return "tanh"
    if isinstance(m, nn.ReLU):
        return "relu"
    if isinstance(m, nn.LeakyReLU):
        return f"leaky_relu(slope={float(m.negative_slope)!r})"
    if isinstance(m, nn.ELU):
        return f"elu(alpha={float(m.alpha)!r})"
    if isinstance(m, nn.Softplus):
        if m.beta != 1 or m.threshold != 20:
            raise ConversionError(f"{position}: nn.Softplus(beta={m.beta}, threshold={m.threshold}) is not ffnn's "
                                  f"softplus log(1 + e^z); only nn.Softplus() with its defaults converts")
        return "softplus"
    if isinstance(m, nn.GELU):
        if m.approximate != "tanh":
            raise ConversionError(f"{position}: nn.GELU(approximate={m.approximate!r}) uses erf; ffnn's gelu is the "
                                  f"tanh form: use nn.GELU(approximate='tanh')")
        return "gelu"
    if isinstance(m, nn.Softmax):
        if m.dim not in (-1, 1):
            raise ConversionError(f"{position}: nn.Softmax(dim={m.dim}) is not over the features; use dim=-1")
        return "softmax"
    raise ConversionError(f"{position}: {name} is not supported (from_torch takes nn.Linear, nn.Identity, "
                          f"nn.Dropout, nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Softplus, "
                          f"nn.GELU(approximate='tanh') and nn.Softmax)")


def from_torch(module):
    """An :class:`ffnn.Network` with the layers and parameters of a PyTorch module.

    Parameters
    ----------
    module : torch.nn.Sequential or torch.nn.Linear
        ``nn.Linear`` layers, each followed by at most one supported activation module (see the module
        docstring); nested ``nn.Sequential`` are flattened. A Linear followed directly by another has
        the identity activation.

    Returns
    -------
    ffnn.Network
        W[l] = weightᵀ (S_{l−1}, S_l), b[l] = bias (zeros for ``bias=False``), in the parameters' dtype
        (float32 or float64).

    Raises
    ------
    ConversionError
        Naming the module and its position for anything else: other layer types, two activations in a
        row, an activation before the first Linear, softmax on a hidden layer, another dtype.
    """
    if "torch" not in sys.modules:  # then ``module`` cannot be a torch module
        raise ConversionError(f"from_torch needs a torch.nn.Sequential or nn.Linear, got {type(module).__name__}")
    import torch
    from torch import nn

    if not isinstance(module, nn.Module):
        raise ConversionError(f"from_torch needs a torch.nn.Sequential or nn.Linear, got {type(module).__name__}")
    weights, biases, acts = [], [], []
    dtype = None
    for i, m in enumerate(_flatten(module, nn)):
        position = f"module {i} ({type(m).__name__})"
        if isinstance(m, nn.Linear):
            if acts and acts[-1] is None:
                acts[-1] = "identity"
            if m.weight.dtype not in (torch.float32, torch.float64):
                raise ConversionError(f"{position} has dtype {m.weight.dtype}; ffnn networks are float32 or "
                                      f"float64 (convert with module.float() or module.double())")
            if dtype is not None and m.weight.dtype != dtype:
                raise ConversionError(f"{position} has dtype {m.weight.dtype}, the layers before it {dtype}")
            dtype = m.weight.dtype
            W = m.weight.detach().cpu().numpy().T.copy()
            b = m.bias.detach().cpu().numpy().copy() if m.bias is not None else np.zeros(W.shape[1], W.dtype)
            weights.append(W)
            biases.append(b)
            acts.append(None)
            continue
        if isinstance(m, (nn.Identity, nn.Dropout)):
            continue
        act = _activation_of(m, nn, position)
        if not acts:
            raise ConversionError(f"{position} comes before the first nn.Linear")
        if acts[-1] is not None:
            raise ConversionError(f"{position} follows another activation ({acts[-1]}) on the same layer")
        acts[-1] = act
    if not weights:
        raise ConversionError(f"from_torch found no nn.Linear layer in {type(module).__name__}")
    acts = [a or "identity" for a in acts]
    if "softmax" in acts[:-1]:
        raise ConversionError(f"softmax on hidden layer {acts.index('softmax') + 1}: ffnn uses it on the output "
                              f"layer only")
    from ..network import Network

    try:
        return Network.from_parameters(weights, biases, acts, dtype=str(weights[0].dtype))
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"from_torch: {exc}") from None


def to_torch(net):
    """A ``torch.nn.Sequential`` computing ``net``'s forward pass.

    Parameters
    ----------
    net : ffnn.Network

    Returns
    -------
    torch.nn.Sequential
        ``nn.Linear(S_{l−1}, S_l)`` with weight W[l]ᵀ and bias b[l], then σ_l's module (none for the
        identity), for l = 1..L, in the network's dtype, on the CPU, in eval mode. Creating it draws no
        random numbers.

    Raises
    ------
    ConversionError
        For an activation with no PyTorch module (a custom one), naming it and its layer.
    """
    torch = _torch()
    from torch import nn

    from ..network import Network

    if not isinstance(net, Network):
        raise ConversionError(f"to_torch needs an ffnn.Network, got {type(net).__name__}")
    dtype = {"float32": torch.float32, "float64": torch.float64}[net.dtype]
    layers = []
    for l, (W, b, act) in enumerate(zip(net.weights, net.biases, net.activations), start=1):
        kind, param = activation_spec(act, f" (layer {l})")
        W, b = np.asarray(to_numpy(W)), np.asarray(to_numpy(b))
        linear = nn.utils.skip_init(nn.Linear, W.shape[0], W.shape[1], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
        layers.append(linear)
        module = {"identity": None, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
                  "softplus": nn.Softplus}.get(kind, None)
        if module is not None:
            layers.append(module())
        elif kind == "leaky_relu":
            layers.append(nn.LeakyReLU(param))
        elif kind == "elu":
            layers.append(nn.ELU(param))
        elif kind == "gelu":
            layers.append(nn.GELU(approximate="tanh"))
        elif kind == "softmax":
            layers.append(nn.Softmax(dim=-1))
    return nn.Sequential(*layers).eval()

