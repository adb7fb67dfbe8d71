"""Activation functions σ and their derivatives σ′, as the derivations use them.

Every non-input layer l has its own activation σ_l (Wichmann, eq. 1.1): ``a[l] = σ_l(z[l])``.
Back-propagation needs, per layer, the product of the incoming gradient with σ_l′
(Wichmann, eq. 2.13: H = Δ ⊙ ∂σ/∂Z). For an elementwise σ that is ``g * σ′(z)``; softmax is not
elementwise, so :meth:`Activation.vjp` multiplies by its full Jacobian instead.

Each activation is one :class:`Activation` object holding every form of σ: the array-API formulas
(``fn``, ``derivative``), the NumPy and PyTorch in-place kernels of the training fast paths
(``inplace``, ``torch_inplace``), and its forms in other systems, which the exporters ask it for —
its ONNX nodes (``onnx_nodes``), its C expression (``c_expr``), its PyTorch module
(``torch_module``) and its scikit-learn name (``sklearn_name``). Each built-in below is defined in
one block; adding an activation is one ``Activation(...)`` with the forms it has, and, for lookup by
name (model files, ``from_torch``, ``from_sklearn``), :func:`register`.

All functions take their operations from the namespace of their input array.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np

from ._array import array_namespace
from ._errors import ConversionError
from .init import INITIALIZERS

__all__ = ["Activation", "Kernels", "get_activation", "register", "c_float", "ACTIVATIONS", "identity", "sigmoid",
           "tanh", "relu", "leaky_relu", "elu", "softplus", "gelu", "softmax"]

# export_form's formats: the attribute holding the form, what messages call it, the argument giving it
_FORMS = {"onnx": ("onnx_nodes", "ONNX form", "onnx_nodes"), "c": ("c_code", "C form", "c_expr"),
          "torch": ("torch_module", "PyTorch module", "torch_module"),
          "sklearn": ("sklearn_name", "scikit-learn name", "sklearn_name")}


class Activation:
    """An activation function σ with its derivative σ′, and its forms for training and export.

    The object is the activation's one definition: training asks it for its kernels, the exporters
    for their forms (:meth:`export_form`); one without a form cannot be exported to that format, and
    the exporter names it.

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
    onnx_nodes : callable, optional
        ``onnx_nodes(g, z) -> a``: adds the nodes computing σ to an ONNX graph and returns the name
        of their output, for :func:`ffnn.export.export_onnx`. ``z`` is the name of the net input
        (N, S_l); ``g.node(op, inputs, hint=None, **attributes)`` adds an ``ai.onnx`` node and returns
        its output's name, ``g.const(hint, value)`` adds a constant in the graph's float type
        (``g.dtype``) and returns its name.
    c_expr : callable, optional
        ``c_expr(v) -> str``: a C99 float expression of σ(v) for the float variable named ``v`` (which
        it may read more than once), with ``<math.h>``'s float functions (``expf``, ``tanhf``, …);
        :func:`c_float` writes a parameter as a float literal. For :func:`ffnn.export.export_c`.
    c_code : callable, optional
        ``c_code(buf, n) -> list of str``: C statements replacing ``buf[0] … buf[n − 1]`` by σ of them,
        with ``int i`` declared, for an activation that is not elementwise (softmax). Derived from
        ``c_expr`` when only that is given.
    torch_module : callable, optional
        ``torch_module() -> torch.nn.Module`` computing σ (``torch.nn.ReLU()``), or None for no module
        (the identity), for :meth:`ffnn.Network.to_torch`.
    torch_match : callable, optional
        ``torch_match(module) -> Activation or None``, the reverse, for :func:`ffnn.export.from_torch`:
        the activation a torch module computes when it is this activation's kind (a family such as
        leaky_relu returns the member with the module's parameter), None when it is not, ValueError
        naming what differs for a variant ffnn lacks. Default: this activation for a module of the
        type ``torch_module()`` gives with the same settings.
    sklearn_name : str, optional
        scikit-learn's name of σ (``"logistic"`` for sigmoid), for :func:`ffnn.export.to_sklearn` and
        :func:`~ffnn.export.from_sklearn`; None where scikit-learn's MLP has none.
    params : dict, optional
        The parameters of a parameterised activation (``{"slope": 0.2}``), for display.
    doc : str, optional
        The formula of σ and σ′, and who writes it: the object's docstring.
    """

    elementwise = True
    _builtin = False
    compiled = None  # (kernel, parameter) of the compiled training loop (ffnn.training.compiled_kernels); built-ins only

    def __init__(self, name, fn, derivative, *, derivative_from_output=None, hidden_ok=True, inplace=None,
                 init="glorot_uniform", torch_inplace=None, kinks=(), onnx_nodes=None, c_expr=None, c_code=None,
                 torch_module=None, torch_match=None, sklearn_name=None, params=None, doc=None):
        if not isinstance(name, str) or not name:
            raise TypeError("Activation name must be a non-empty string")
        if not callable(fn) or not callable(derivative):
            raise TypeError(f"Activation {name!r}: fn and derivative must be callables")
        if init not in INITIALIZERS:
            raise ValueError(f"Activation {name!r}: init must be one of {', '.join(INITIALIZERS)}, got {init!r}")
        for what, k in (("inplace", inplace), ("torch_inplace", torch_inplace)):
            if k is not None and not isinstance(k, Kernels):
                raise TypeError(f"Activation {name!r}: {what} must be an ffnn.activations.Kernels")
        for what, f in (("onnx_nodes", onnx_nodes), ("c_expr", c_expr), ("c_code", c_code),
                        ("torch_module", torch_module), ("torch_match", torch_match)):
            if f is not None and not callable(f):
                raise TypeError(f"Activation {name!r}: {what} must be a callable")
        if sklearn_name is not None and (not isinstance(sklearn_name, str) or not sklearn_name):
            raise TypeError(f"Activation {name!r}: sklearn_name must be a non-empty string")
        self.name = name
        self.fn = fn
        self.derivative = derivative
        self.derivative_from_output = derivative_from_output
        self.hidden_ok = hidden_ok
        self.inplace = inplace
        self.torch_inplace = torch_inplace
        self.init = init
        self.kinks = tuple(float(k) for k in kinks)
        self.onnx_nodes = onnx_nodes
        self.c_expr = c_expr
        self.c_code = c_code if c_code is not None or c_expr is None else partial(_c_code_from_expr, c_expr)
        self.torch_module = torch_module
        self._torch_match = torch_match
        self.sklearn_name = sklearn_name
        self.params = dict(params or {})
        if doc is not None:
            self.__doc__ = doc

    def __call__(self, z):
        return self.fn(z)

    def vjp(self, z, a, g):
        """Vector-Jacobian product ``g · ∂a/∂z``: for elementwise σ, ``g ⊙ σ′(z)`` (Wichmann, eq. 2.13)."""
        if self.derivative_from_output is not None:
            return g * self.derivative_from_output(a)
        return g * self.derivative(z)

    def export_form(self, fmt, where=""):
        """This activation's form for ``fmt`` — ``"onnx"`` (:attr:`onnx_nodes`), ``"c"`` (:attr:`c_code`),
        ``"torch"`` (:attr:`torch_module`) or ``"sklearn"`` (:attr:`sklearn_name`) — or a
        :class:`~ffnn.export.ConversionError` naming the activation (and ``where``, such as
        ``" (layer 2)"``) when it has none."""
        attr, what, argument = _FORMS[fmt]
        form = getattr(self, attr)
        if form is not None:
            return form
        if self._builtin:
            raise ConversionError(f"activation {self.name!r}{where} has no {what}; it cannot be exported")
        builtins = ", ".join(dict.fromkeys(a.name.split("(")[0] for a in ACTIVATIONS.values() if a._builtin))
        raise ConversionError(f"activation {self.name!r}{where} is not one of ffnn's built-in activations "
                              f"({builtins}) and has no {what} ({argument}=); it cannot be exported")

    def torch_match(self, module):
        """The activation that the PyTorch module ``module`` computes if it is this activation's kind, else
        None; ValueError naming what differs for a variant that ffnn lacks (see ``torch_match=``)."""
        if self._torch_match is not None:
            return self._torch_match(module)
        if self.torch_module is None:
            return None
        ref = self.torch_module()
        if ref is None or type(module) is not type(ref):
            return None
        if _torch_settings(module) != _torch_settings(ref):
            kind = type(module).__name__
            raise ValueError(f"nn.{kind}({module.extra_repr()}) is not ffnn's {self.name}, "
                             f"nn.{kind}({ref.extra_repr()})")
        return self

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

    ``product(x, W, out)``, optional: ``out ← σ(x @ W)`` in one operation (the PyTorch fast path
    uses it in place of a product followed by :attr:`forward`).
    """

    __slots__ = ("forward", "backward", "product")

    def __init__(self, forward, backward, product=None):
        if not callable(forward) or not callable(backward):
            raise TypeError("Kernels needs two callables, forward(z) and backward(g, a, mask)")
        if product is not None and not callable(product):
            raise TypeError("Kernels' product must be callable: product(x, W, out)")
        self.forward, self.backward, self.product = forward, backward, product


def c_float(value) -> str:
    """``value`` as a C float literal that reads back as the same float32 (the shortest such decimal)."""
    s = str(np.float32(value))  # NumPy prints the shortest decimal that reads back as this float32
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def _c_code_from_expr(c_expr, buf, n):
    """C statements applying the elementwise ``c_expr`` to buf[0 … n − 1] (none for the identity)."""
    expr = c_expr("z")
    if expr.strip() == "z":
        return []
    return [f"for (i = 0; i < {n}; ++i) {{ const float z = {buf}[i]; {buf}[i] = {expr}; }}"]


def _torch_settings(module):
    # A module's public settings (negative_slope, beta, approximate, dim, …) but not whether it runs
    # in place or in training mode, which change nothing that ffnn computes.
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k not in ("training", "inplace")}


def _nn():
    from torch import nn

    return nn


def _aten():
    import torch

    return torch.ops.aten


def _builtin(name, fn, derivative, *, compiled, **kw):
    act = Activation(name, fn, derivative, **kw)
    act._builtin = True
    act.compiled = compiled  # the compiled loop's kernel for these formulas: (name, parameter)
    return act


# --- the built-ins, one block each: formulas, kernels, export forms, then the object ------------------
# Module-level functions, so that networks pickle.

# identity: σ(z) = z, σ′ = 1

def _identity(z):
    return z


def _ones(z):
    xp = array_namespace(z)
    return xp.ones_like(z)


def _identity_inplace(z):
    pass


def _identity_backward_inplace(g, a, mask):
    pass


def _identity_onnx(g, z):
    return z


def _identity_c(v):
    return v


def _no_module():
    return None


identity = _builtin("identity", _identity, _ones, compiled=("identity", 0.0),
                    inplace=Kernels(_identity_inplace, _identity_backward_inplace),
                    torch_inplace=Kernels(_identity_inplace, _identity_backward_inplace),
                    onnx_nodes=_identity_onnx, c_expr=_identity_c, torch_module=_no_module,
                    sklearn_name="identity", doc="σ(z) = z; σ′(z) = 1.")


# sigmoid: φ(z) = 1/(1 + e^{−z}), φ′ = φ(1 − φ) (Sheptunov)

def _sigmoid(z):
    # written with e^{−|z|} so no exponent ever overflows
    xp = array_namespace(z)
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _sigmoid_from_output(a):
    return a * (1.0 - a)  # φ′ = φ(1 − φ) (Sheptunov)


def _sigmoid_derivative(z):
    return _sigmoid_from_output(_sigmoid(z))


def _sigmoid_inplace(z):
    # 1/(1 + e^{−z}); e^{−z} may overflow to inf for very negative z, which gives the exact limit 0
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1
    np.reciprocal(z, out=z)


def _sigmoid_backward_inplace(g, a, mask):
    g *= a
    g *= 1 - a


def _sigmoid_torch(z):
    z.sigmoid_()


def _sigmoid_backward_torch(g, a, mask):
    _aten().sigmoid_backward.grad_input(g, a, grad_input=g)  # g · a(1 − a), one kernel


def _sigmoid_onnx(g, z):
    # ffnn's form, e = exp(−|z|); Where(z ≥ 0, 1/(1 + e), e/(1 + e)): onnxruntime's float32 Sigmoid
    # loses the small tail
    tail = g.node("Exp", [g.node("Neg", [g.node("Abs", [z])])], "exp_neg_abs")
    one = g.const("one", 1.0)
    denominator = g.node("Add", [one, tail])
    nonnegative = g.node("GreaterOrEqual", [z, g.const("zero", 0.0)])
    return g.node("Where", [nonnegative, g.node("Div", [one, denominator]), g.node("Div", [tail, denominator])], "a")


def _sigmoid_c(v):
    return f"{v} >= 0.0f ? 1.0f / (1.0f + expf(-{v})) : expf({v}) / (1.0f + expf({v}))"


def _sigmoid_module():
    return _nn().Sigmoid()


sigmoid = _builtin("sigmoid", _sigmoid, _sigmoid_derivative, compiled=("sigmoid", 0.0), derivative_from_output=_sigmoid_from_output,
                   inplace=Kernels(_sigmoid_inplace, _sigmoid_backward_inplace),
                   torch_inplace=Kernels(_sigmoid_torch, _sigmoid_backward_torch),
                   onnx_nodes=_sigmoid_onnx, c_expr=_sigmoid_c, torch_module=_sigmoid_module,
                   sklearn_name="logistic",
                   doc="φ(z) = 1/(1 + e^(−z)); φ′(z) = φ(z)(1 − φ(z)) (Sheptunov).")


# tanh: σ(z) = tanh z, σ′ = 1 − tanh² z

def _tanh(z):
    return array_namespace(z).tanh(z)


def _tanh_from_output(a):
    return 1.0 - a * a


def _tanh_derivative(z):
    return _tanh_from_output(_tanh(z))


def _tanh_inplace(z):
    np.tanh(z, out=z)


def _tanh_backward_inplace(g, a, mask):
    g *= 1 - a * a


def _tanh_torch(z):
    z.tanh_()


def _tanh_backward_torch(g, a, mask):
    _aten().tanh_backward.grad_input(g, a, grad_input=g)  # g · (1 − a²), one kernel


def _tanh_onnx(g, z):
    return g.node("Tanh", [z], "a")


def _tanh_c(v):
    return f"tanhf({v})"


def _tanh_module():
    return _nn().Tanh()


tanh = _builtin("tanh", _tanh, _tanh_derivative, compiled=("tanh", 0.0), derivative_from_output=_tanh_from_output,
                inplace=Kernels(_tanh_inplace, _tanh_backward_inplace),
                torch_inplace=Kernels(_tanh_torch, _tanh_backward_torch),
                onnx_nodes=_tanh_onnx, c_expr=_tanh_c, torch_module=_tanh_module, sklearn_name="tanh",
                doc="σ(z) = tanh z; σ′(z) = 1 − tanh² z.")


# relu and leaky_relu: σ(z) = z for z > 0, slope·z otherwise (relu: slope 0); σ′ = 1 or slope

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


def _relu_torch(z):
    z.relu_()


def _relu_backward_torch(g, a, mask):
    _aten().threshold_backward.grad_input(g, a, 0, grad_input=g)  # g where a > 0, else 0: one kernel


def _relu_product_torch(x, W, out):
    """out ← max(0, x @ W) in one operation: PyTorch's ``_addmm_activation`` (on CUDA, cuBLASLt's ReLU
    epilogue where it applies), with β = 0 so that ``out``'s old values are not read."""
    import torch

    torch._addmm_activation(out, x, W, beta=0, out=out)


def _relu_onnx(g, z):
    return g.node("Relu", [z], "a")


def _relu_c(v):
    return f"{v} > 0.0f ? {v} : 0.0f"


def _relu_module():
    return _nn().ReLU()


def _leaky_relu_inplace(z, slope):
    np.multiply(z, np.where(z > 0, 1.0, slope).astype(z.dtype, copy=False), out=z)


def _leaky_relu_backward_inplace(g, a, mask, slope):
    # a > 0 exactly where z > 0 (slope > 0 keeps the sign; slope = 0 gives a = 0 there)
    np.greater(a, 0, out=mask)
    g *= np.where(mask, 1.0, slope).astype(g.dtype, copy=False)


def _leaky_relu_torch(z, slope):
    z.copy_(z.where(z > 0, z * slope))


def _leaky_relu_backward_torch(g, a, mask, slope):
    g.copy_(g.where(a > 0, g * slope))  # a > 0 exactly where z > 0 (slope ≥ 0)


def _leaky_relu_onnx(g, z, slope):
    positive = g.node("Greater", [z, g.const("zero", 0.0)], "positive")
    return g.node("Where", [positive, z, g.node("Mul", [z, g.const("slope", slope)])], "a")


def _leaky_relu_c(v, slope):
    return f"{v} > 0.0f ? {v} : {c_float(slope)} * {v}"


def _leaky_relu_module(slope):
    return _nn().LeakyReLU(slope)


def _leaky_relu_match(module):
    return leaky_relu(float(module.negative_slope)) if isinstance(module, _nn().LeakyReLU) else None


relu = _builtin("relu", _leaky_relu, _leaky_relu_derivative, compiled=("leaky_relu", 0.0), kinks=(0.0,),
                inplace=Kernels(_relu_inplace, _relu_backward_inplace), init="he_uniform",
                torch_inplace=Kernels(_relu_torch, _relu_backward_torch, _relu_product_torch),
                onnx_nodes=_relu_onnx, c_expr=_relu_c, torch_module=_relu_module, sklearn_name="relu",
                doc="σ(z) = max(0, z); σ′(z) = 1 for z > 0, else 0.")


def leaky_relu(slope=0.01):
    """σ(z) = z for z > 0, slope·z otherwise; σ′ = 1 or slope."""
    slope = float(slope)
    if not math.isfinite(slope):
        raise ValueError(f"leaky_relu slope must be finite, got {slope}")
    return _builtin(f"leaky_relu(slope={slope!r})" if slope != 0.01 else "leaky_relu",
                    partial(_leaky_relu, slope=slope), partial(_leaky_relu_derivative, slope=slope),
                    compiled=("leaky_relu", slope),
                    kinks=(0.0,) if slope != 1 else (),
                    inplace=Kernels(partial(_leaky_relu_inplace, slope=slope),
                                    partial(_leaky_relu_backward_inplace, slope=slope)) if slope >= 0 else None,
                    torch_inplace=Kernels(partial(_leaky_relu_torch, slope=slope),
                                          partial(_leaky_relu_backward_torch, slope=slope)) if slope >= 0 else None,
                    init="he_uniform", onnx_nodes=partial(_leaky_relu_onnx, slope=slope),
                    c_expr=partial(_leaky_relu_c, slope=slope), torch_module=partial(_leaky_relu_module, slope),
                    torch_match=_leaky_relu_match, params={"slope": slope},
                    doc=f"σ(z) = z for z > 0, {slope!r}·z otherwise; σ′(z) = 1 or {slope!r}.")


# elu: σ(z) = z for z > 0, α(e^z − 1) otherwise; σ′ = 1 or αe^z

def _elu(z, alpha=1.0):
    xp = array_namespace(z)
    return xp.where(z > 0, z, alpha * xp.expm1(xp.minimum(z, xp.zeros_like(z))))


def _elu_derivative(z, alpha=1.0):
    xp = array_namespace(z)
    return xp.where(z > 0, xp.ones_like(z), alpha * xp.exp(xp.minimum(z, xp.zeros_like(z))))


def _elu_onnx(g, z, alpha):
    zero = g.const("zero", 0.0)
    positive = g.node("Greater", [z, zero], "positive")
    em1 = g.node("Sub", [g.node("Exp", [g.node("Min", [z, zero])]), g.const("one", 1.0)])
    return g.node("Where", [positive, z, g.node("Mul", [g.const("alpha", alpha), em1])], "a")


def _elu_c(v, alpha):
    return f"{v} > 0.0f ? {v} : {c_float(alpha)} * expm1f({v})"


def _elu_module(alpha):
    return _nn().ELU(alpha)


def _elu_match(module):
    return elu(float(module.alpha)) if isinstance(module, _nn().ELU) else None


def elu(alpha=1.0):
    """σ(z) = z for z > 0, α(e^z − 1) otherwise; σ′ = 1 or αe^z."""
    alpha = float(alpha)
    if not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"elu alpha must be positive and finite, got {alpha}")
    return _builtin(f"elu(alpha={alpha!r})" if alpha != 1.0 else "elu",
                    partial(_elu, alpha=alpha), partial(_elu_derivative, alpha=alpha), compiled=("elu", alpha), init="he_uniform",
                    kinks=(0.0,) if alpha != 1 else (), onnx_nodes=partial(_elu_onnx, alpha=alpha),
                    c_expr=partial(_elu_c, alpha=alpha), torch_module=partial(_elu_module, alpha),
                    torch_match=_elu_match, params={"alpha": alpha},
                    doc=f"σ(z) = z for z > 0, {alpha!r}(e^z − 1) otherwise; σ′(z) = 1 or {alpha!r}e^z.")


# softplus: σ(z) = log(1 + e^z), σ′ = 1/(1 + e^{−z}) (the sigmoid)

def _softplus(z):
    # log(1 + e^z) = max(z, 0) + log1p(e^{−|z|}): finite for every finite z.
    xp = array_namespace(z)
    return xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))


def _softplus_onnx(g, z):
    tail = g.node("Exp", [g.node("Neg", [g.node("Abs", [z])])])
    log1p = g.node("Log", [g.node("Add", [g.const("one", 1.0), tail])])
    return g.node("Add", [g.node("Relu", [z]), log1p], "a")


def _softplus_c(v):
    return f"fmaxf({v}, 0.0f) + log1pf(expf(-fabsf({v})))"


def _softplus_module():
    return _nn().Softplus()


softplus = _builtin("softplus", _softplus, _sigmoid, compiled=("softplus", 0.0), init="he_uniform", onnx_nodes=_softplus_onnx,
                    c_expr=_softplus_c, torch_module=_softplus_module,
                    doc="σ(z) = log(1 + e^z); σ′(z) = 1/(1 + e^(−z)).")


# gelu, the tanh form (Hendrycks and Gimpel; PyTorch's approximate="tanh"):
# σ(z) = ½ z (1 + tanh(√(2/π)(z + 0.044715 z³)))

_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_K = 0.044715


def _gelu(z):
    # The array API standard has no erf, and this form runs unchanged on every namespace.
    xp = array_namespace(z)
    return 0.5 * z * (1.0 + xp.tanh(_GELU_C * (z + _GELU_K * z * z * z)))


def _gelu_derivative(z):
    xp = array_namespace(z)
    t = xp.tanh(_GELU_C * (z + _GELU_K * z * z * z))
    return 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _GELU_C * (1.0 + 3.0 * _GELU_K * z * z)


def _gelu_onnx(g, z):
    # 0.5·z·(1 + tanh(c·(z + k·z·z·z))), the operations in ffnn's order
    kzzz = g.node("Mul", [g.node("Mul", [g.node("Mul", [g.const("gelu_k", _GELU_K), z]), z]), z])
    t = g.node("Tanh", [g.node("Mul", [g.const("gelu_c", _GELU_C), g.node("Add", [z, kzzz])])])
    half_z = g.node("Mul", [g.const("half", 0.5), z])
    return g.node("Mul", [half_z, g.node("Add", [g.const("one", 1.0), t])], "a")


def _gelu_c(v):
    return f"0.5f * {v} * (1.0f + tanhf({c_float(_GELU_C)} * ({v} + {c_float(_GELU_K)} * {v} * {v} * {v})))"


def _gelu_module():
    return _nn().GELU(approximate="tanh")


def _gelu_match(module):
    if not isinstance(module, _nn().GELU):
        return None
    if module.approximate != "tanh":
        raise ValueError(f"nn.GELU(approximate={module.approximate!r}) uses erf; ffnn's gelu is the tanh form: "
                         f"use nn.GELU(approximate='tanh')")
    return gelu


gelu = _builtin("gelu", _gelu, _gelu_derivative, compiled=("gelu", 0.0), init="he_uniform", onnx_nodes=_gelu_onnx, c_expr=_gelu_c,
                torch_module=_gelu_module, torch_match=_gelu_match,
                doc="σ(z) = ½ z (1 + tanh(√(2/π)(z + 0.044715 z³))), the tanh form of GELU (Hendrycks and "
                    "Gimpel); σ′ its derivative.")


# softmax: a_k = e^{z_k} / Σ_j e^{z_j} row by row; not elementwise (see _Softmax)

def _softmax(z):
    xp = array_namespace(z)
    e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def _softmax_diag(z):
    a = _softmax(z)
    return a * (1.0 - a)  # the Jacobian's diagonal only; vjp() uses the full Jacobian


def _softmax_onnx(g, z):
    return g.node("Softmax", [z], "a", axis=-1)


def _softmax_c_code(buf, n):
    return [f"{{ float m = {buf}[0], s = 0.0f;",
            f"  for (i = 1; i < {n}; ++i) if ({buf}[i] > m) m = {buf}[i];",
            f"  for (i = 0; i < {n}; ++i) {{ {buf}[i] = expf({buf}[i] - m); s += {buf}[i]; }}",
            f"  for (i = 0; i < {n}; ++i) {buf}[i] /= s; }}"]


def _softmax_module():
    return _nn().Softmax(dim=-1)


def _softmax_match(module):
    if not isinstance(module, _nn().Softmax):
        return None
    if module.dim not in (-1, 1):
        raise ValueError(f"nn.Softmax(dim={module.dim}) is not over the features; use dim=-1")
    return softmax


class _Softmax(Activation):
    """softmax(z)_k = exp(z_k − max z) / Σ_j exp(z_j − max z), row by row.

    Its Jacobian ∂a_k/∂z_j = a_k(δ_kj − a_j) is not diagonal, so the product with an upstream
    gradient g is ``a ⊙ (g − Σ_k g_k a_k)`` per sample, exact for any loss paired with it.
    """

    elementwise = False

    _builtin = True
    compiled = ("softmax", 0.0)

    def __init__(self):
        super().__init__("softmax", _softmax, _softmax_diag, hidden_ok=False, onnx_nodes=_softmax_onnx,
                         c_code=_softmax_c_code, torch_module=_softmax_module, torch_match=_softmax_match,
                         sklearn_name="softmax")

    def vjp(self, z, a, g):
        xp = array_namespace(a, g)
        return a * (g - xp.sum(g * a, axis=-1, keepdims=True))


softmax = _Softmax()


ACTIVATIONS = {
    "identity": identity, "linear": identity, "sigmoid": sigmoid, "logistic": sigmoid, "tanh": tanh,
    "relu": relu, "leaky_relu": leaky_relu(), "elu": elu(), "softplus": softplus, "gelu": gelu,
    "softmax": softmax,
}


def register(act, *aliases):
    """Make ``act`` known by its name (and ``aliases``) to :func:`get_activation`, so that model files
    using it load without ``custom_activations``, and to :func:`ffnn.export.from_torch` and
    :func:`~ffnn.export.from_sklearn`, which look for the activation a module or a name stands for
    among the registered ones. Exporting needs no registration: the exporters ask the object.

    Returns ``act``. ValueError for a name that is already another activation's.
    """
    if not isinstance(act, Activation):
        raise TypeError(f"register takes an ffnn.Activation, got {type(act).__name__}")
    keys = [k.strip().lower() for k in (act.name, *aliases)]
    for key in keys:
        if not key or "(" in key:
            raise ValueError(f"cannot register activation {act.name!r} as {key!r}: a name has no parentheses")
        if key in ACTIVATIONS and ACTIVATIONS[key] != act:
            raise ValueError(f"activation name {key!r} is already registered (for {ACTIVATIONS[key]!r})")
    for key in keys:
        ACTIVATIONS[key] = act
    return act


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
