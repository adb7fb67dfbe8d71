"""Activation functions σ and their derivatives σ′, as the derivations use them.

Every non-input layer l has its own activation σ_l (Wichmann, eq. 1.1): ``a[l] = σ_l(z[l])``.
Back-propagation needs, per layer, the product of the incoming gradient with σ_l′
(Wichmann, eq. 2.13: H = Δ ⊙ ∂σ/∂Z). For an elementwise σ that is ``g * σ′(z)``; softmax is not
elementwise, so :meth:`Activation.vjp` multiplies by its full Jacobian instead.

All functions take their operations from the namespace of their input array.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from ._array import array_namespace
from .init import INITIALIZERS

__all__ = ["Activation", "Kernels", "get_activation", "ACTIVATIONS", "identity", "sigmoid", "tanh", "relu",
           "leaky_relu", "elu", "softplus", "gelu", "softmax"]


class Activation:
    """An activation function σ with its derivative σ′.

    Parameters
    ----------
    name : str
        Shown in reprs, model files and error messages. Only the name of a built-in is looked up
        (in files and in ``get_activation``); a user's activation is always computed with its own
        functions, whatever its name.
    fn : callable
        ``fn(z) -> a``, elementwise, for ``z`` of shape (N, S_l).
    derivative : callable
        ``derivative(z) -> σ′(z)``, elementwise, same shape as ``z``.
    derivative_from_output : callable, optional
        ``σ′`` expressed through the output ``a = σ(z)`` (sigmoid: ``a(1 − a)``, Sheptunov), used when
        given because it saves recomputing σ.
    hidden_ok : bool
        False for activations that only make sense on the output layer (softmax).
    inplace : Kernels, optional
        NumPy in-place forms of σ and σ′ for the training fast path (see :class:`Kernels`). Without
        them, a network using this activation trains through the array-namespace core.
    torch_inplace : Kernels, optional
        The same for PyTorch tensors on any device (the PyTorch fast path): ``forward(z)`` overwrites
        the tensor z with σ(z), ``backward(g, a, mask)`` multiplies g in place by σ′ written through
        a = σ(z) (``mask`` is None: each kernel is one fused operation). Functions of tensors only,
        which never read a value back to the host, so that a training step runs without a
        host–device synchronisation and can be captured in a CUDA graph.
    init : str
        The initialiser ``Network(init="auto")`` uses for layers with this activation (one of
        ``ffnn.init.INITIALIZERS``; He for the built-in relu family, Glorot for the rest).
    kinks : tuple of float
        The net inputs z where σ′ jumps (relu: 0). A finite difference whose steps carry a net input
        across one measures no derivative, so :func:`ffnn.gradcheck` leaves such entries out.
    """

    elementwise = True
    _builtin = False

    def __init__(self, name, fn, derivative, *, derivative_from_output=None, hidden_ok=True, inplace=None,
                 init="glorot_uniform", torch_inplace=None, kinks=()):
        if not isinstance(name, str) or not name:
            raise TypeError("Activation name must be a non-empty string")
        if not callable(fn) or not callable(derivative):
            raise TypeError(f"Activation {name!r}: fn and derivative must be callables")
        if init not in INITIALIZERS:
            raise ValueError(f"Activation {name!r}: init must be one of {', '.join(INITIALIZERS)}, got {init!r}")
        for what, k in (("inplace", inplace), ("torch_inplace", torch_inplace)):
            if k is not None and not isinstance(k, Kernels):
                raise TypeError(f"Activation {name!r}: {what} must be an ffnn.activations.Kernels")
        self.name = name
        self.fn = fn
        self.derivative = derivative
        self.derivative_from_output = derivative_from_output
        self.hidden_ok = hidden_ok
        self.inplace = inplace
        self.torch_inplace = torch_inplace
        self.init = init
        self.kinks = tuple(float(k) for k in kinks)

    def __call__(self, z):
        return self.fn(z)

    def vjp(self, z, a, g):
        """Vector-Jacobian product ``g · ∂a/∂z``: for elementwise σ, ``g ⊙ σ′(z)`` (Wichmann, eq. 2.13)."""
        if self.derivative_from_output is not None:
            return g * self.derivative_from_output(a)
        return g * self.derivative(z)

    def __repr__(self):
        return f"Activation({self.name!r})"

    def _identity(self):
        # Built-ins are the same function when their names agree (the name carries any parameter,
        # "leaky_relu(slope=0.2)"); a user's activation is the same only as itself or one made of
        # the very same functions — never a built-in, whatever its name.
        if self._builtin:
            return ("builtin", self.name)
        return ("user", self.name, self.fn, self.derivative, self.derivative_from_output)

    def __eq__(self, other):
        return isinstance(other, Activation) and self._identity() == other._identity()

    def __hash__(self):
        return hash(self._identity())

    def __reduce__(self):
        # Built-ins (parameterised ones too) pickle by name; users' own pickle their functions.
        if self._builtin:
            return (get_activation, (self.name,))
        return super().__reduce__()


class Kernels:
    """The NumPy in-place forms of an activation, for the training fast path.

    ``forward(z)`` overwrites z (N, S_l) with σ(z); ``backward(g, a, mask)`` multiplies g in place by
    σ′ written through the output a = σ(z) (so the fast path keeps one buffer per layer); ``mask`` is
    a boolean scratch buffer shaped like g. Each must compute exactly what the activation's
    array-API formulas compute: the tests train every built-in both ways and compare.
    """

    __slots__ = ("forward", "backward")

    def __init__(self, forward, backward):
        if not callable(forward) or not callable(backward):
            raise TypeError("Kernels needs two callables, forward(z) and backward(g, a, mask)")
        self.forward, self.backward = forward, backward


def _builtin(name, fn, derivative, **kw):
    act = Activation(name, fn, derivative, **kw)
    act._builtin = True
    return act


class _Softmax(Activation):
    """softmax(z)_k = exp(z_k − max z) / Σ_j exp(z_j − max z), row by row.

    Its Jacobian ∂a_k/∂z_j = a_k(δ_kj − a_j) is not diagonal, so the product with an upstream
    gradient g is ``a ⊙ (g − Σ_k g_k a_k)`` per sample, exact for any loss paired with it.
    """

    elementwise = False

    _builtin = True

    def __init__(self):
        super().__init__("softmax", _softmax, _softmax_diag, hidden_ok=False)

    def vjp(self, z, a, g):
        xp = array_namespace(a, g)
        return a * (g - xp.sum(g * a, axis=-1, keepdims=True))


# --- elementwise functions; module-level so that networks pickle -----------------------------

def _identity(z):
    return z


def _ones(z):
    xp = array_namespace(z)
    return xp.ones_like(z)


def _sigmoid(z):
    # φ(z) = 1/(1 + e^{−z}) (Sheptunov), written with e^{−|z|} so no exponent ever overflows.
    xp = array_namespace(z)
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_from_output(a):
    return a * (1.0 - a)  # φ′ = φ(1 − φ) (Sheptunov)


def _sigmoid_inplace(z):
    # 1/(1 + e^{−z}); e^{−z} may overflow to inf for very negative z, which gives the exact limit 0
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1
    np.reciprocal(z, out=z)


def _sigmoid_backward_inplace(g, a, mask):
    g *= a
    g *= 1 - a


# PyTorch forms (the PyTorch fast path): tensor methods and aten's fused backward kernels, in place.

def _aten():
    import torch

    return torch.ops.aten


def _sigmoid_torch(z):
    z.sigmoid_()


def _sigmoid_backward_torch(g, a, mask):
    _aten().sigmoid_backward.grad_input(g, a, grad_input=g)  # g · a(1 − a), one kernel


def _tanh_torch(z):
    z.tanh_()


def _tanh_backward_torch(g, a, mask):
    _aten().tanh_backward.grad_input(g, a, grad_input=g)  # g · (1 − a²), one kernel


def _relu_torch(z):
    z.relu_()


def _relu_backward_torch(g, a, mask):
    _aten().threshold_backward.grad_input(g, a, 0, grad_input=g)  # g where a > 0, else 0: one kernel


def _leaky_relu_torch(z, slope):
    z.copy_(z.where(z > 0, z * slope))


def _leaky_relu_backward_torch(g, a, mask, slope):
    g.copy_(g.where(a > 0, g * slope))  # a > 0 exactly where z > 0 (slope ≥ 0)


def _sigmoid_derivative(z):
    return _sigmoid_from_output(_sigmoid(z))


def _tanh(z):
    return array_namespace(z).tanh(z)


def _tanh_from_output(a):
    return 1.0 - a * a


def _tanh_inplace(z):
    np.tanh(z, out=z)


def _tanh_backward_inplace(g, a, mask):
    g *= 1 - a * a


def _tanh_derivative(z):
    return _tanh_from_output(_tanh(z))


def _leaky_relu(z, slope=0.0):
    xp = array_namespace(z)
    return xp.where(z > 0, z, slope * z)


def _leaky_relu_derivative(z, slope=0.0):
    xp = array_namespace(z)
    return xp.where(z > 0, xp.ones_like(z), xp.full_like(z, slope))


def _relu_inplace(z):
    np.maximum(z, 0, out=z)


def _relu_backward_inplace(g, a, mask):
    np.greater(a, 0, out=mask)  # a preallocated boolean mask: ten times faster than g[a <= 0] = 0
    np.multiply(g, mask, out=g)


def _leaky_relu_inplace(z, slope):
    np.multiply(z, np.where(z > 0, 1.0, slope).astype(z.dtype, copy=False), out=z)


def _leaky_relu_backward_inplace(g, a, mask, slope):
    # a > 0 exactly where z > 0 (slope > 0 keeps the sign; slope = 0 gives a = 0 there)
    np.greater(a, 0, out=mask)
    g *= np.where(mask, 1.0, slope).astype(g.dtype, copy=False)


def _identity_inplace(z):
    pass


def _identity_backward_inplace(g, a, mask):
    pass


def _elu(z, alpha=1.0):
    xp = array_namespace(z)
    return xp.where(z > 0, z, alpha * xp.expm1(xp.minimum(z, xp.zeros_like(z))))


def _elu_derivative(z, alpha=1.0):
    xp = array_namespace(z)
    return xp.where(z > 0, xp.ones_like(z), alpha * xp.exp(xp.minimum(z, xp.zeros_like(z))))


def _softplus(z):
    # log(1 + e^z) = max(z, 0) + log1p(e^{−|z|}): finite for every finite z.
    xp = array_namespace(z)
    return xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))


_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_K = 0.044715


def _gelu(z):
    # The tanh form (Hendrycks & Gimpel; PyTorch's approximate="tanh"): the array API standard has
    # no erf, and this form runs unchanged on every namespace.
    xp = array_namespace(z)
    return 0.5 * z * (1.0 + xp.tanh(_GELU_C * (z + _GELU_K * z * z * z)))


def _gelu_derivative(z):
    xp = array_namespace(z)
    t = xp.tanh(_GELU_C * (z + _GELU_K * z * z * z))
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _GELU_C * (1.0 + 3.0 * _GELU_K * z * z)


def _softmax(z):
    xp = array_namespace(z)
    e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def _softmax_diag(z):
    a = _softmax(z)
    return a * (1.0 - a)  # the Jacobian's diagonal only; vjp() uses the full Jacobian


identity = _builtin("identity", _identity, _ones,
                    inplace=Kernels(_identity_inplace, _identity_backward_inplace),
                    torch_inplace=Kernels(_identity_inplace, _identity_backward_inplace))
sigmoid = _builtin("sigmoid", _sigmoid, _sigmoid_derivative, derivative_from_output=_sigmoid_from_output,
                   inplace=Kernels(_sigmoid_inplace, _sigmoid_backward_inplace),
                   torch_inplace=Kernels(_sigmoid_torch, _sigmoid_backward_torch))
tanh = _builtin("tanh", _tanh, _tanh_derivative, derivative_from_output=_tanh_from_output,
                inplace=Kernels(_tanh_inplace, _tanh_backward_inplace),
                torch_inplace=Kernels(_tanh_torch, _tanh_backward_torch))
relu = _builtin("relu", _leaky_relu, _leaky_relu_derivative, kinks=(0.0,),
                inplace=Kernels(_relu_inplace, _relu_backward_inplace), init="he_uniform",
                torch_inplace=Kernels(_relu_torch, _relu_backward_torch))
softplus = _builtin("softplus", _softplus, _sigmoid, init="he_uniform")
gelu = _builtin("gelu", _gelu, _gelu_derivative, init="he_uniform")
softmax = _Softmax()


def leaky_relu(slope=0.01):
    """σ(z) = z for z > 0, slope·z otherwise; σ′ = 1 or slope."""
    slope = float(slope)
    if not math.isfinite(slope):
        raise ValueError(f"leaky_relu slope must be finite, got {slope}")
    return _builtin(f"leaky_relu(slope={slope!r})" if slope != 0.01 else "leaky_relu",
                    partial(_leaky_relu, slope=slope), partial(_leaky_relu_derivative, slope=slope),
                    kinks=(0.0,) if slope != 1 else (),
                    inplace=Kernels(partial(_leaky_relu_inplace, slope=slope),
                                    partial(_leaky_relu_backward_inplace, slope=slope)) if slope >= 0 else None,
                    torch_inplace=Kernels(partial(_leaky_relu_torch, slope=slope),
                                          partial(_leaky_relu_backward_torch, slope=slope)) if slope >= 0 else None,
                    init="he_uniform")


def elu(alpha=1.0):
    """σ(z) = z for z > 0, α(e^z − 1) otherwise; σ′ = 1 or αe^z."""
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"elu alpha must be positive and finite, got {alpha}")
    return _builtin(f"elu(alpha={alpha!r})" if alpha != 1.0 else "elu",
                    partial(_elu, alpha=alpha), partial(_elu_derivative, alpha=alpha), init="he_uniform",
                    kinks=(0.0,) if alpha != 1 else ())


ACTIVATIONS = {
    "identity": identity, "linear": identity, "sigmoid": sigmoid, "logistic": sigmoid, "tanh": tanh,
    "relu": relu, "leaky_relu": leaky_relu(), "elu": elu(), "softplus": softplus, "gelu": gelu,
    "softmax": softmax,
}


def get_activation(spec) -> Activation:
    """An :class:`Activation` from a name (see ``ACTIVATIONS``), ``"leaky_relu(slope=0.2)"``-style
    names with a parameter, or an :class:`Activation` itself."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in ACTIVATIONS:
            return ACTIVATIONS[key]
        for factory, param in ((leaky_relu, "slope"), (elu, "alpha")):
            prefix = f"{factory.__name__}({param}="
            if key.startswith(prefix) and key.endswith(")"):
                try:
                    value = float(key[len(prefix):-1])
                except ValueError:
                    break
                return factory(value)
        known = ", ".join(sorted(set(ACTIVATIONS)))
        raise ValueError(f"unknown activation {spec!r}; known activations: {known}")
    raise TypeError(f"an activation must be a name or an ffnn.Activation, got {type(spec).__name__}")
