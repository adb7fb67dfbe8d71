"""PyTorch to and from ffnn: ``from_torch(module)`` and ``to_torch(net)`` (also ``net.to_torch()``).

``nn.Linear`` computes z = a @ weightᵀ + bias with ``weight`` of shape (out, in): ffnn's W[l] is its
transpose, and b[l] its bias. Each activation knows its module (``Activation.torch_module``) and
which modules it stands for (``Activation.torch_match``); for the built-ins they map one to one:

    nn.Identity (or no module) identity      nn.Sigmoid   sigmoid      nn.Tanh   tanh
    nn.ReLU                    relu          nn.LeakyReLU(s)  leaky_relu(slope=s)
    nn.ELU(α)                  elu(alpha=α)  nn.Softplus()    softplus     nn.Softmax(dim=-1)  softmax
    nn.GELU(approximate="tanh")  gelu (ffnn's gelu is the tanh form; the exact, erf form is refused)

``nn.Dropout`` is skipped (it does nothing at inference). ``from_torch`` looks among the activations
that ``ffnn.activations`` knows by name (the built-ins and those given to ``ffnn.activations.register``).
torch is imported only by ``to_torch``; ``from_torch`` reads the module it is given.
"""

from __future__ import annotations

import sys

import numpy as np

from .. import activations as _act
from ..network import Network
from ._model import ConversionError

__all__ = ["from_torch", "to_torch"]


def _flatten(module, nn):
    if isinstance(module, nn.Sequential):
        for child in module:
            yield from _flatten(child, nn)
    else:
        yield module


def _activation_of(m, position):
    """The ffnn activation that torch module ``m`` computes, asked of the registered activations
    (``Activation.torch_match``), or ConversionError naming it."""
    candidates = list(dict.fromkeys(_act.ACTIVATIONS.values()))
    for act in candidates:
        try:
            found = act.torch_match(m)
        except ValueError as exc:
            raise ConversionError(f"{position}: {exc}") from None
        if found is not None:
            return found
    known = [type(a.torch_module()).__name__ for a in candidates if a.torch_module is not None]
    known = [f"nn.{k}" for k in dict.fromkeys(k for k in known if k != "NoneType")]
    raise ConversionError(f"{position}: {type(m).__name__} is not supported (from_torch takes nn.Linear, nn.Identity, "
                          f"nn.Dropout and the modules of ffnn's activations: {', '.join(known)})")


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
                acts[-1] = _act.identity
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
        act = _activation_of(m, position)
        if not acts:
            raise ConversionError(f"{position} comes before the first nn.Linear")
        if acts[-1] is not None:
            raise ConversionError(f"{position} follows another activation ({acts[-1].name}) on the same layer")
        acts[-1] = act
    if not weights:
        raise ConversionError(f"from_torch found no nn.Linear layer in {type(module).__name__}")
    acts = [a or _act.identity for a in acts]
    for l, a in enumerate(acts[:-1], start=1):
        if not a.hidden_ok:
            raise ConversionError(f"{a.name} on hidden layer {l}: ffnn uses it on the output layer only")
    try:
        return Network.from_parameters(weights, biases, acts, dtype=str(weights[0].dtype))
    except (TypeError, ValueError) as exc:
        raise ConversionError(f"from_torch: {exc}") from None


def to_torch(net):
    """A ``torch.nn.Sequential`` computing ``net``'s forward pass: :meth:`ffnn.Network.to_torch`.

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
        For an activation with no PyTorch module (``Activation.torch_module``), naming it and its layer.
    """
    if not isinstance(net, Network):
        raise ConversionError(f"to_torch needs an ffnn.Network, got {type(net).__name__}")
    return net.to_torch()
