"""Losses J(T, A) over a batch of N samples, as the derivations write them, with ∂J/∂A.

Wichmann assumes only that J depends on the targets T and the output activations A = a[L]; its
"output error" is Δ = ∂J/∂A (eq. 2.12). Back-propagation starts from δ[L] = Δ ⊙ σ_L′(z[L]) (eq. 2.13),
or, for the canonical pairs (softmax + cross_entropy, sigmoid + binary_cross_entropy), from the
fused form that cancels σ_L′ analytically — more accurate, and free of the 0·∞ that the two factors
can produce separately.

Sample weights w_n (optional, for the built-ins) replace the sum over samples Σ_n j_n by
Σ_n w_n j_n and, for the mean losses, 1/N by 1/Σ_n w_n.

Shapes: A, T and z are (N, S_L); w is (N,).
"""

from __future__ import annotations

import re

import numpy as np

from . import activations as _act
from ._array import array_namespace
from ._checks import number
from .updates import Penalty  # the L1/L2 term of J, one of the update's transforms; named here too

__all__ = ["Loss", "Penalty", "Huber", "get_loss", "LOSSES", "half_sse", "sse", "mse", "cross_entropy",
           "binary_cross_entropy", "huber", "log_cosh", "hinge", "squared_hinge", "poisson"]


class Loss:
    """A loss J(T, A) and its gradient ∂J/∂A (Wichmann's general J, his equation 2.12).

    A built-in also declares its forms for particular output activations (``outputs``, whose fused
    errors and fast-path kernels :meth:`fused`, :meth:`fast_output` and :meth:`torch_output` give)
    and its name in scikit-learn (``sklearn_name``); a user's loss has neither.

    Parameters
    ----------
    name : str
    value : callable
        ``value(A, T) -> J``, a scalar (0-d array or float) for the whole batch.
    gradient : callable
        ``gradient(A, T) -> ∂J/∂A``, shaped like A.
    """

    weighted = False  # users' losses take no sample weights
    outputs = ()  # the output activations with a form of this loss (see _Builtin)
    sklearn_name = None  # scikit-learn's name of this loss ("squared_error", "log_loss"), if it has one
    #: For a classification loss, the output activations it is defined on (their values must be
    #: probabilities), the usual one first; None for a loss defined on any output.
    probability_outputs = None
    #: True for a loss of scores whose sign is the class (the hinge losses: targets ±1, or 0/1 read
    #: as ±1): a classification loss on any output, its accuracy counted at 0 rather than 0.5.
    margin = False
    #: For a loss of positive rates (Poisson), the output activations that give them, the usual one
    #: first; None otherwise.
    positive_outputs = None

    @property
    def classification(self) -> bool:
        """Whether this loss compares probabilities with class indicators (cross-entropies)."""
        return self.probability_outputs is not None

    def __init__(self, name, value, gradient):
        if not isinstance(name, str) or not name:
            raise TypeError("Loss name must be a non-empty string")
        if not callable(value) or not callable(gradient):
            raise TypeError(f"Loss {name!r}: value and gradient must be callables")
        self.name = name
        self._value = value
        self._gradient = gradient

    def value(self, A, T, sample_weight=None):
        """J(T, A): a scalar for the batch."""
        self._no_weights(sample_weight)
        return self._value(A, T)

    def gradient(self, A, T, sample_weight=None):
        """∂J/∂A, shaped like A (Wichmann's Δ[L])."""
        self._no_weights(sample_weight)
        return self._gradient(A, T)

    def output_form(self, activation):
        """This loss's declared form for output ``activation``, or None (see :class:`_Builtin`)."""
        return None

    def fused(self, activation):
        """The fused output error for a canonical pair, or None (see :class:`_Builtin`)."""
        return None

    def fast_output(self, activation):
        """The NumPy in-place output kernel for this loss after ``activation``, or None.

        A kernel ``kernel(z, delta, T) -> J`` takes the output layer's net input z (N, S_L), which it
        overwrites with a[L], writes δ[L] = ∂J/∂z[L] into ``delta`` and returns J as a float — the
        same numbers as :meth:`value` and the core's δ[L]. Users' losses have none: they train
        through the array-namespace core with their own functions.
        """
        return None

    def compiled(self, activation):
        """The compiled training loop's form of this loss after ``activation``, or None: users' losses
        train with their own functions (the interpreted loop)."""
        return None

    def share(self, part, whole):
        """The factor c that makes c·J over part of a batch its share of J over the whole batch.

        ``part`` and ``whole`` are sample counts (or sums of sample weights). None for a user's
        loss, whose normalisation by the batch is unknown.
        """
        return None

    def torch_output(self, activation):
        """The PyTorch form of :meth:`fast_output`, or None (users' losses have none): an object with

        ``torch_targets(T, inv_n) -> tuple of tensors``
            what the step reads of the targets, made once per epoch for the rows in the epoch's
            order (``inv_n``: 1/N of each row's batch), each row-major with one row per sample;
        ``torch_step(z, delta, targets, total, n)``
            from the output layer's z (N, S_L) and a batch's rows of the targets: δ[L]/c into
            ``delta`` and J·N added to ``total`` (a 1-element tensor), in a few operations on the
            device and nothing read back to the host;
        ``torch_factor(n) -> c``, optional (default 1)
            the factor c for batches of n rows (the engine folds it into its scaling of δ[L]).
        """
        return None

    def _no_weights(self, sample_weight):
        if sample_weight is not None:
            raise TypeError(f"loss {self.name!r} does not take sample weights")

    def __repr__(self):
        return f"Loss({self.name!r})"

    def _identity(self):
        # A built-in is itself by name; a user's loss is the same only as one of the same functions.
        return ("user", self.name, self._value, self._gradient)

    def __eq__(self, other):
        return isinstance(other, Loss) and self._identity() == other._identity()

    def __hash__(self):
        return hash(self._identity())


class _Builtin(Loss):
    """A built-in loss: J = scale · Σ_n w_n Σ_k ℓ(A_nk, T_nk), scale 1, ½ or 1/N (1/Σw with weights).

    ``outputs`` is the loss's own declaration of the output activations it has a form for: built-in
    activation → form class (see :meth:`output_form`); every (activation, loss) pair with a fused
    error or a fast-path kernel is declared there, and nowhere else.
    """

    weighted = True

    def __init__(self, name, elementwise, elementwise_grad, factor, mean, *, outputs=(), sklearn_name=None,
                 probability_outputs=None, kernel, doc=None, margin=False, positive_outputs=None):
        self.name = name
        self.kernel = kernel  # ℓ's name in the compiled training loop (ffnn.training.compiled_kernels)
        self._ell = elementwise
        self._dell = elementwise_grad
        self._factor = factor
        self._mean = mean
        self._outputs = tuple(outputs)  # ((built-in output activation, form class), ...)
        self.sklearn_name = sklearn_name
        self.probability_outputs = None if probability_outputs is None else tuple(probability_outputs)
        self.margin = bool(margin)
        self.positive_outputs = None if positive_outputs is None else tuple(positive_outputs)
        if doc is not None:
            self.__doc__ = doc

    @property
    def outputs(self):
        """The output activations this loss declares a form for (its fused or fast pairs)."""
        return tuple(act for act, _ in self._outputs)

    def output_form(self, activation):
        """The form declared for output ``activation`` — an object with the ``inplace`` kernel (see
        :meth:`Loss.fast_output`) and the PyTorch ``torch_targets``/``torch_step`` (:meth:`Loss.torch_output`), and, for a fused pair, ``value`` and ``delta`` from z —
        or None. Matched with ``==``: a user's activation is never a built-in, whatever its name."""
        for act, form in self._outputs:
            if act == activation:
                return form(self)
        return None

    def _scale(self, xp, A, w):
        if not self._mean:
            return self._factor
        total = A.shape[0] if w is None else xp.sum(w)
        return self._factor / total

    def share(self, part, whole):
        """part/whole for the mean losses (their 1/N or 1/Σw is the part's); 1 for the sums."""
        return part / whole if self._mean else 1.0

    @staticmethod
    def _per_sample(xp, E, w):
        s = xp.sum(E, axis=-1)
        return s if w is None else s * w

    def value(self, A, T, sample_weight=None):
        xp = array_namespace(A, T)
        return self._scale(xp, A, sample_weight) * xp.sum(self._per_sample(xp, self._ell(xp, A, T), sample_weight))

    def gradient(self, A, T, sample_weight=None):
        xp = array_namespace(A, T)
        G = self._dell(xp, A, T) * self._scale(xp, A, sample_weight)
        return G if sample_weight is None else G * sample_weight[:, None]

    def __reduce__(self):  # built-ins pickle by name: they are module-level singletons
        return (_builtin_loss, (self.name,))

    def _identity(self):
        return ("builtin", self.name)

    def fused(self, activation):
        """The fused form when ``activation`` is a declared canonical partner (never by name alone)."""
        form = self.output_form(activation)
        return form if form is not None and form.fused else None

    def fast_output(self, activation):
        form = self.output_form(activation)
        return None if form is None else form.inplace

    def torch_output(self, activation):
        form = self.output_form(activation)
        return None if form is None or getattr(form, "torch_step", None) is None else form

    def compiled(self, activation):
        """The compiled loop's form of this loss after ``activation`` (a built-in): (output form, ℓ's
        kernel, factor, whether J is a mean) — the fused pair's form where one is declared, else the
        generic ∂J/∂A ⊙ σ_L′; None for a user's activation."""
        if activation.compiled is None or self.kernel is None:  # ℓ has no compiled kernel
            return None
        form = self.output_form(activation)
        out = form.compiled if form is not None else "generic"
        return out, self.kernel, self._factor, self._mean


class _SquaredErrorIdentity:
    """Identity output, J = c Σ (A − T)² with c = factor (·1/N for the mean); δ = 2c (A − T).

    Only the fast paths' kernels: δ[L] = ∂J/∂A here anyway, so the core needs no fused form.
    """

    fused = False
    compiled = "generic"

    def __init__(self, loss):
        self.loss = loss

    def _c(self, n):
        return self.loss._factor / n if self.loss._mean else self.loss._factor

    def inplace(self, z, delta, T):
        """The NumPy fast form (see :meth:`Loss.fast_output`)."""
        np.subtract(z, T, out=delta)
        c = self._c(z.shape[0])
        J = c * float(np.vdot(delta, delta))
        delta *= 2 * c
        return J

    @staticmethod
    def torch_targets(T, inv_n):
        """−T (see :meth:`Loss.torch_output`)."""
        return (-T,)

    def torch_factor(self, n):
        return 2 * self._c(n)

    def torch_step(self, z, delta, targets, total, n):
        """The PyTorch form of :meth:`inplace`: e = z − T into ``delta``; J·N = c·N Σ e²; δ = 2c·e."""
        import torch

        torch.add(z, targets[0], out=delta)
        flat = delta.view(1, -1)
        total.addmv_(flat, flat.view(-1), alpha=self._c(n) * n)


class _FusedSoftmaxCE:
    """softmax + cross_entropy: δ[L] = (A · Σ_k T_k − T)/N, from J = −1/N Σ T (z − logsumexp z).

    With one-hot (or any row-normalised) T this is the familiar (A − T)/N; the Σ_k T_k factor keeps it
    exact for any non-negative T.
    """

    fused = True
    compiled = "softmax_cross_entropy"

    def __init__(self, loss):
        self.loss = loss

    def value(self, z, T, sample_weight=None):
        xp = array_namespace(z, T)
        m = xp.max(z, axis=-1, keepdims=True)
        log_a = z - m - xp.log(xp.sum(xp.exp(z - m), axis=-1, keepdims=True))
        return -self.loss._scale(xp, z, sample_weight) * xp.sum(
            _Builtin._per_sample(xp, T * log_a, sample_weight))

    def delta(self, z, A, T, sample_weight=None):
        xp = array_namespace(A, T)
        D = (A * xp.sum(T, axis=-1, keepdims=True) - T) * self.loss._scale(xp, A, sample_weight)
        return D if sample_weight is None else D * sample_weight[:, None]

    def inplace(self, z, delta, T):
        """The NumPy fast form of :meth:`value` and :meth:`delta` (see :meth:`Loss.fast_output`)."""
        n = z.shape[0]
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=delta)
        s = delta.sum(axis=1, keepdims=True)
        t_sum = T.sum(axis=1, keepdims=True)
        J = -(float(np.vdot(T, z)) - float(np.vdot(t_sum, np.log(s)))) / n
        delta *= t_sum / (n * s)
        delta -= T * (1.0 / n)
        return J

    @staticmethod
    def torch_targets(T, inv_n):
        """(−T/N, Σ_k T_k/N) for each row (see :meth:`Loss.torch_output`)."""
        return (T * -inv_n[:, None], T.sum(dim=1, keepdim=True) * inv_n[:, None])

    def torch_step(self, z, delta, targets, total, n):
        """The PyTorch form of :meth:`inplace`, in four operations: log a = log_softmax(z) (PyTorch's
        stable kernel); J·N = N Σ (−T/N) log a; a = exp(log a); δ = a · Σ_k T_k/N − T/N."""
        import torch

        negT, t_sum = targets
        torch._log_softmax(z, 1, False, out=delta)
        total.addmv_(negT.view(1, -1), delta.view(-1), alpha=n)
        delta.exp_()
        torch.addcmul(negT, delta, t_sum, out=delta)


class _FusedSigmoidBCE:
    """sigmoid + binary_cross_entropy: δ[L] = (A − T)/N, from J = 1/N Σ [softplus(z) − T z]."""

    fused = True
    compiled = "sigmoid_binary_cross_entropy"

    def __init__(self, loss):
        self.loss = loss

    def value(self, z, T, sample_weight=None):
        xp = array_namespace(z, T)
        softplus = xp.maximum(z, xp.zeros_like(z)) + xp.log1p(xp.exp(-xp.abs(z)))
        return self.loss._scale(xp, z, sample_weight) * xp.sum(
            _Builtin._per_sample(xp, softplus - T * z, sample_weight))

    def delta(self, z, A, T, sample_weight=None):
        xp = array_namespace(A, T)
        D = (A - T) * self.loss._scale(xp, A, sample_weight)
        return D if sample_weight is None else D * sample_weight[:, None]

    def inplace(self, z, delta, T):
        """The NumPy fast form of :meth:`value` and :meth:`delta` (see :meth:`Loss.fast_output`)."""
        n = z.shape[0]
        J = float(np.sum(np.logaddexp(0, z) - T * z)) / n
        np.copyto(delta, z)
        _act.sigmoid.inplace.forward(delta)
        delta -= T
        delta *= 1.0 / n
        return J

    @staticmethod
    def torch_targets(T, inv_n):
        """(−T/N, 1/N per entry) for each row (see :meth:`Loss.torch_output`)."""
        return (T * -inv_n[:, None], inv_n[:, None].expand(T.shape).contiguous())

    def torch_step(self, z, delta, targets, total, n):
        """The PyTorch form of :meth:`inplace`: J·N = N Σ [softplus(z)/N − (T/N) z] with softplus(z) =
        log(1 + e^z) = logaddexp(z, 0); δ = σ(z)/N − T/N."""
        import torch

        negT, inv = targets
        zero = getattr(self, "_zero", None)
        if zero is None or zero.device != z.device or zero.dtype != z.dtype:
            zero = self._zero = z.new_zeros(())
        torch.logaddexp(z, zero, out=delta)
        total.addmv_(inv.view(1, -1), delta.view(-1), alpha=n)
        total.addmv_(negT.view(1, -1), z.reshape(-1), alpha=n)
        torch.sigmoid(z, out=delta)
        torch.addcmul(negT, delta, inv, out=delta)


def _clipped(xp, A):
    eps = xp.finfo(A.dtype).eps
    return xp.clip(A, eps, 1.0 - eps)


def _sq(xp, A, T):
    D = T - A
    return D * D


def _dsq(xp, A, T):
    return 2.0 * (A - T)


def _ce(xp, A, T):
    return -T * xp.log(_clipped(xp, A))


def _dce(xp, A, T):
    return -T / _clipped(xp, A)


def _bce(xp, A, T):
    Ac = _clipped(xp, A)
    return -(T * xp.log(Ac) + (1.0 - T) * xp.log1p(-Ac))


def _dbce(xp, A, T):
    Ac = _clipped(xp, A)
    return (Ac - T) / (Ac * (1.0 - Ac))


class _FusedSoftmaxCEClipped(_FusedSoftmaxCE):
    """softmax + cross-entropy with J as scikit-learn's ``log_loss`` computes it: from the
    probabilities clipped to [eps, 1 − eps] (eps of the dtype), J = −1/N Σ T log clip(A), so that J is
    capped where a probability saturates; δ[L] = (A Σ_k T_k − T)/N, the unclipped error scikit-learn
    differentiates. For ffnn's scikit-learn estimators; :func:`ffnn.train` keeps the exact fused loss."""

    compiled = "softmax_cross_entropy_clipped"
    torch_step = None  # the PyTorch fast path computes the exact loss only

    def value(self, z, T, sample_weight=None):
        xp = array_namespace(z, T)
        m = xp.max(z, axis=-1, keepdims=True)
        e = xp.exp(z - m)
        A = e / xp.sum(e, axis=-1, keepdims=True)
        return self.loss._scale(xp, z, sample_weight) * xp.sum(_Builtin._per_sample(xp, _ce(xp, A, T), sample_weight))

    def inplace(self, z, delta, T):
        n = z.shape[0]
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=delta)
        delta /= delta.sum(axis=1, keepdims=True)  # A
        eps = np.finfo(z.dtype).eps
        np.clip(delta, eps, 1 - eps, out=z)
        np.log(z, out=z)
        J = -float(np.vdot(T, z)) / n
        delta *= T.sum(axis=1, keepdims=True) * (1.0 / n)
        delta -= T * (1.0 / n)
        return J


class _FusedSigmoidBCEClipped(_FusedSigmoidBCE):
    """sigmoid + binary cross-entropy with J as scikit-learn's ``binary_log_loss`` computes it: from
    A = σ(z) clipped to [eps, 1 − eps], J = −1/N Σ [T log clip(A) + (1 − T) log(1 − clip(A))];
    δ[L] = (A − T)/N unclipped. For ffnn's scikit-learn estimators."""

    compiled = "sigmoid_binary_cross_entropy_clipped"
    torch_step = None

    def value(self, z, T, sample_weight=None):
        xp = array_namespace(z, T)
        A = _act.sigmoid(z)
        return self.loss._scale(xp, z, sample_weight) * xp.sum(_Builtin._per_sample(xp, _bce(xp, A, T), sample_weight))

    def inplace(self, z, delta, T):
        n = z.shape[0]
        np.copyto(delta, z)
        _act.sigmoid.inplace.forward(delta)  # A
        J = float(np.sum(_bce(np, delta, T))) / n
        delta -= T
        delta *= 1.0 / n
        return J


_SQUARED_ERROR_OUTPUTS = ((_act.identity, _SquaredErrorIdentity),)

half_sse = _Builtin("half_sse", _sq, _dsq, 0.5, mean=False, kernel="squared", outputs=_SQUARED_ERROR_OUTPUTS,
                    doc="J = ½ Σ_n Σ_k (T − A)² (Sheptunov, Gashler); ∂J/∂A = A − T.")
sse = _Builtin("sse", _sq, _dsq, 1.0, mean=False, kernel="squared", outputs=_SQUARED_ERROR_OUTPUTS,
               doc="J = Σ_n Σ_k (T − A)² (Xing Chao, Kolar and McCulloch); ∂J/∂A = 2(A − T).")
mse = _Builtin("mse", _sq, _dsq, 0.5, mean=True, kernel="squared", outputs=_SQUARED_ERROR_OUTPUTS, sklearn_name="squared_error",
               doc="J = 1/(2N) Σ_n ‖a_n − t_n‖² (Wichmann, equation 2.16); ∂J/∂A = (A − T)/N (equation 2.21).")
cross_entropy = _Builtin("cross_entropy", _ce, _dce, 1.0, mean=True, kernel="cross_entropy", outputs=((_act.softmax, _FusedSoftmaxCE),),
                         sklearn_name="log_loss", probability_outputs=("softmax",),  # rows of probabilities
                         doc="J = −1/N Σ_n Σ_k T log A; ∂J/∂A = −T/(N A). After a softmax output the fused form is exact; "
                             "after any other output A is clipped to [eps, 1 − eps] (eps of the dtype) in J "
                             "and ∂J/∂A, so that log A and 1/A stay finite.")
binary_cross_entropy = _Builtin("binary_cross_entropy", _bce, _dbce, 1.0, mean=True, kernel="binary_cross_entropy",
                                outputs=((_act.sigmoid, _FusedSigmoidBCE),), sklearn_name="log_loss",
                                probability_outputs=("sigmoid", "softmax"),  # every a in (0, 1)
                                doc="J = −1/N Σ_n Σ_k [T log A + (1 − T) log(1 − A)]; ∂J/∂A = (A − T)/(N A(1 − A)).")


# --- the losses Keras and PyTorch users reach for: each J = 1/N Σ_n Σ_k ℓ(A_nk, T_nk) (1/Σw with
# weights), the sum over the outputs as ffnn's cross-entropy sums; for one output this is Keras's and
# PyTorch's mean, for K outputs K times it. None has a fused or fast-path form: they train through
# the array-namespace core, on NumPy and PyTorch alike.

def _log_cosh(xp, A, T):
    M = xp.abs(A - T)  # log cosh e = |e| + log(1 + e^(−2|e|)) − log 2, finite for any e
    return M + xp.log1p(xp.exp(-2.0 * M)) - float(np.log(2.0))


def _dlog_cosh(xp, A, T):
    return xp.tanh(A - T)


def _signed(xp, T):
    """The hinge losses' labels: T with 0 read as −1 (Keras turns {0, 1} labels into {−1, 1})."""
    return xp.where(T == 0, -xp.ones_like(T), T)


def _margin(xp, A, T):
    S = _signed(xp, T)
    return S, xp.maximum(1.0 - S * A, xp.zeros_like(A))


def _hinge(xp, A, T):
    return _margin(xp, A, T)[1]


def _dhinge(xp, A, T):
    S, M = _margin(xp, A, T)
    return xp.where(M > 0, -S, xp.zeros_like(S))


def _squared_hinge(xp, A, T):
    M = _margin(xp, A, T)[1]
    return M * M


def _dsquared_hinge(xp, A, T):
    S, M = _margin(xp, A, T)
    return -2.0 * S * M


def _poisson(xp, A, T):
    pos = T > 0  # T log(T/A), with 0 log 0 = 0 (scipy's xlogy)
    return xp.where(pos, T * xp.log(xp.where(pos, T, xp.ones_like(T)) / A), xp.zeros_like(T)) - T + A


def _dpoisson(xp, A, T):
    return 1.0 - T / A


class Huber(_Builtin):
    """The Huber loss (Huber 1964; PyTorch's ``HuberLoss``, Keras' ``Huber``) with threshold δ > 0:

    .. code-block:: text

        J = 1/N Σ_n Σ_k h_δ(A − T),   h_δ(e) = ½ e²  where |e| ≤ δ,   δ (|e| − ½ δ)  elsewhere
        ∂J/∂A = clip(A − T, −δ, δ) / N

    quadratic near the target and linear beyond δ, so that outliers pull with a bounded force. Its
    name is ``"huber"`` for δ = 1 (the default) and ``"huber(delta=0.5)"`` otherwise, which
    :func:`get_loss` reads back (model files and checkpoints record it).
    """

    def __init__(self, delta=1.0):
        self.delta = number("Huber loss delta", delta, low=0, low_open=True)
        name = "huber" if self.delta == 1.0 else f"huber(delta={self.delta!r})"
        super().__init__(name, self._h, self._dh, 1.0, mean=True, kernel=None, doc=type(self).__doc__)

    def _h(self, xp, A, T):
        E = A - T
        M = xp.abs(E)
        return xp.where(M <= self.delta, 0.5 * E * E, self.delta * (M - 0.5 * self.delta))

    def _dh(self, xp, A, T):
        return xp.clip(A - T, -self.delta, self.delta)

    def __repr__(self):
        return f"Huber(delta={self.delta!r})"


huber = Huber()


def _mean_loss(name, ell, dell, doc, **kinds):
    """A loss J = 1/N Σ_n Σ_k ℓ with no fused, fast or compiled form (the core computes it); ``kinds``:
    ``margin`` or ``positive_outputs`` (see :class:`Loss`)."""
    return _Builtin(name, ell, dell, 1.0, mean=True, kernel=None, doc=doc, **kinds)


log_cosh = _mean_loss("log_cosh", _log_cosh, _dlog_cosh,
                      "J = 1/N Σ_n Σ_k log cosh(A − T) (Keras' log_cosh); ∂J/∂A = tanh(A − T)/N. Computed as "
                      "|e| + log(1 + e^(−2|e|)) − log 2, finite for any e = A − T.")
hinge = _mean_loss("hinge", _hinge, _dhinge,
                   "J = 1/N Σ_n Σ_k max(0, 1 − T̃ A) (Keras' hinge), T̃ the labels in {−1, 1} (a 0 in T is read as "
                   "−1, so {0, 1} labels work as in Keras); ∂J/∂A = −T̃/N where T̃ A < 1, 0 elsewhere. A is a score "
                   "(an identity or tanh output): its sign is the predicted class.", margin=True)
squared_hinge = _mean_loss("squared_hinge", _squared_hinge, _dsquared_hinge,
                           "J = 1/N Σ_n Σ_k max(0, 1 − T̃ A)² (Keras' squared_hinge), T̃ as for hinge (0 read as −1); "
                           "∂J/∂A = −2 T̃ max(0, 1 − T̃ A)/N.", margin=True)
poisson = _mean_loss("poisson", _poisson, _dpoisson,
                     "J = 1/N Σ_n Σ_k [T log(T/A) − T + A], half the Poisson deviance (scikit-learn's "
                     "MLPRegressor(loss='poisson'); 0 log 0 = 0), for counts T ≥ 0 and rates A > 0 (a softplus or "
                     "exp output); ∂J/∂A = (1 − T/A)/N. Keras' and PyTorch's Poisson loss A − T log A differs from "
                     "it by T log T − T, a constant: the same gradient.", positive_outputs=("softplus", "sigmoid"))


LOSSES = {l.name: l for l in (half_sse, sse, mse, cross_entropy, binary_cross_entropy, huber, log_cosh, hinge,
                              squared_hinge, poisson)}

# scikit-learn's log-loss values, for ffnn.sklearn's estimators: the fused errors, the loss clipped as
# scikit-learn clips it (not listed in LOSSES: ffnn.train takes the exact losses)
sklearn_log_loss = _Builtin("sklearn_log_loss", _ce, _dce, 1.0, mean=True, kernel="cross_entropy",
                            outputs=((_act.softmax, _FusedSoftmaxCEClipped),), sklearn_name="log_loss",
                            probability_outputs=("softmax",),
                            doc="cross_entropy with J from A clipped to [eps, 1 − eps], as scikit-learn's log_loss.")
sklearn_binary_log_loss = _Builtin("sklearn_binary_log_loss", _bce, _dbce, 1.0, mean=True, kernel="binary_cross_entropy",
                                   outputs=((_act.sigmoid, _FusedSigmoidBCEClipped),), sklearn_name="log_loss",
                                   probability_outputs=("sigmoid", "softmax"),
                                   doc="binary_cross_entropy with J from A clipped to [eps, 1 − eps], as "
                                       "scikit-learn's binary_log_loss.")
_SKLEARN_LOSSES = {l.name: l for l in (sklearn_log_loss, sklearn_binary_log_loss)}
_ALIASES = {"bce": "binary_cross_entropy", "ce": "cross_entropy", "log_loss": "cross_entropy"}


_HUBER_NAME = re.compile(r"huber\(\s*(?:delta\s*=\s*)?([^)]*?)\s*\)")  # "huber(delta=0.5)", "huber(0.5)"


def _builtin_loss(name):
    """A built-in by its name, scikit-learn's clipped forms included (what a pickled built-in holds)."""
    return _SKLEARN_LOSSES[name] if name in _SKLEARN_LOSSES else get_loss(name)


def get_loss(spec) -> Loss:
    """A :class:`Loss` from a name (see ``LOSSES``) or a :class:`Loss` itself."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        key = _ALIASES.get(key, key)
        if key in LOSSES:
            return LOSSES[key]
        delta = _HUBER_NAME.fullmatch(key)
        if delta is not None:
            try:
                value = float(delta.group(1))
            except ValueError:
                raise ValueError(f"loss {spec!r}: the Huber loss's delta must be a number, got "
                                 f"{delta.group(1)!r}") from None
            return Huber(value)
        raise ValueError(f"unknown loss {spec!r}; known losses: {', '.join(sorted(LOSSES))} "
                         f"(and huber(delta=δ))")
    raise TypeError(f"a loss must be a name or an ffnn.Loss, got {type(spec).__name__}")
