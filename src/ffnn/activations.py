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

from ._array import array_namespace

__all__ = ["Activation", "get_activation", "ACTIVATIONS", "identity", "sigmoid", "tanh", "relu",
           "leaky_relu", "elu", "softplus", "gelu", "softmax"]


class Activation:
    """An activation function σ with its derivative σ′.

    Parameters
    ----------
    name : str
        Shown in reprs, model files and error messages.
    fn : callable
        ``fn(z) -> a``, elementwise, for ``z`` of shape (N, S_l).
    derivative : callable
        ``derivative(z) -> σ′(z)``, elementwise, same shape as ``z``.
    derivative_from_output : callable, optional
        ``σ′`` expressed through the output ``a = σ(z)`` (sigmoid: ``a(1 − a)``, Sheptunov), used when
        given because it saves recomputing σ.
    hidden_ok : bool
        False for activations that only make sense on the output layer (softmax).
    """

    elementwise = True

    def __init__(self, name, fn, derivative, *, derivative_from_output=None, hidden_ok=True):
        if not isinstance(name, str) or not name:
            raise TypeError("Activation name must be a non-empty string")
        if not callable(fn) or not callable(derivative):
            raise TypeError(f"Activation {name!r}: fn and derivative must be callables")
        self.name = name
        self.fn = fn
        self.derivative = derivative
        self.derivative_from_output = derivative_from_output
        self.hidden_ok = hidden_ok

    def __call__(self, z):
        return self.fn(z)

    def vjp(self, z, a, g):
        """Vector-Jacobian product ``g · ∂a/∂z``: for elementwise σ, ``g ⊙ σ′(z)`` (Wichmann, eq. 2.13)."""
        if self.derivative_from_output is not None:
            return g * self.derivative_from_output(a)
        return g * self.derivative(z)

    def __repr__(self):
        return f"Activation({self.name!r})"

    def __eq__(self, other):
        # The name carries any parameter ("leaky_relu(slope=0.2)"), so it identifies the function.
        return isinstance(other, Activation) and self.name == other.name

    def __hash__(self):
        return hash(self.name)

    def __reduce__(self):
        # Built-ins (parameterised ones too) pickle by name; users' own pickle their functions.
        try:
            if get_activation(self.name) == self and type(get_activation(self.name)) is type(self):
                return (get_activation, (self.name,))
        except (ValueError, TypeError):
            pass
        return super().__reduce__()


class _Softmax(Activation):
    """softmax(z)_k = exp(z_k − max z) / Σ_j exp(z_j − max z), row by row.

    Its Jacobian ∂a_k/∂z_j = a_k(δ_kj − a_j) is not diagonal, so the product with an upstream
    gradient g is ``a ⊙ (g − Σ_k g_k a_k)`` per sample, exact for any loss paired with it.
    """

    elementwise = False

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


def _sigmoid_derivative(z):
    return _sigmoid_from_output(_sigmoid(z))


def _tanh(z):
    return array_namespace(z).tanh(z)


def _tanh_from_output(a):
    return 1.0 - a * a


def _tanh_derivative(z):
    return _tanh_from_output(_tanh(z))


def _leaky_relu(z, slope=0.0):
    xp = array_namespace(z)
    return xp.where(z > 0, z, slope * z)


def _leaky_relu_derivative(z, slope=0.0):
    xp = array_namespace(z)
    return xp.where(z > 0, xp.ones_like(z), xp.full_like(z, slope))


def _elu(z, alpha=1.0):
    xp = array_namespace(z)
    return xp.where(z > 0, z, alpha * xp.expm1(xp.minimum(z, 0.0)))


def _elu_derivative(z, alpha=1.0):
    xp = array_namespace(z)
    return xp.where(z > 0, xp.ones_like(z), alpha * xp.exp(xp.minimum(z, 0.0)))


def _softplus(z):
    # log(1 + e^z) = max(z, 0) + log1p(e^{−|z|}): finite for every finite z.
    xp = array_namespace(z)
    return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))


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


identity = Activation("identity", _identity, _ones)
sigmoid = Activation("sigmoid", _sigmoid, _sigmoid_derivative, derivative_from_output=_sigmoid_from_output)
tanh = Activation("tanh", _tanh, _tanh_derivative, derivative_from_output=_tanh_from_output)
relu = Activation("relu", _leaky_relu, _leaky_relu_derivative)
softplus = Activation("softplus", _softplus, _sigmoid)
gelu = Activation("gelu", _gelu, _gelu_derivative)
softmax = _Softmax()


def leaky_relu(slope=0.01):
    """σ(z) = z for z > 0, slope·z otherwise; σ′ = 1 or slope."""
    slope = float(slope)
    if not math.isfinite(slope):
        raise ValueError(f"leaky_relu slope must be finite, got {slope}")
    return Activation(f"leaky_relu(slope={slope!r})" if slope != 0.01 else "leaky_relu",
                      partial(_leaky_relu, slope=slope), partial(_leaky_relu_derivative, slope=slope))


def elu(alpha=1.0):
    """σ(z) = z for z > 0, α(e^z − 1) otherwise; σ′ = 1 or αe^z."""
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"elu alpha must be positive and finite, got {alpha}")
    return Activation(f"elu(alpha={alpha!r})" if alpha != 1.0 else "elu",
                      partial(_elu, alpha=alpha), partial(_elu_derivative, alpha=alpha))


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
