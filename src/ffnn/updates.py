"""The update of one training step as composed transforms, in the manner of optax's ``chain``.

A step turns the loss's gradient g = ∂J(T_B, a[L])/∂θ into a change of the parameters θ by passing
it through a chain of transforms, each written once here or in :mod:`ffnn.optim`:

    g ← g + ∂penalty/∂θ                 :class:`Penalty` (λ₁, λ₂), or :class:`PerBatchL2` (scikit-learn's α / s_B)
    g ← g · min(1, c / ‖g‖)             :class:`ClipByGlobalNorm`
    θ ← θ + optimizer.update(g, η)      an :class:`ffnn.optim.Optimizer` (SGD, Adam, AdamW, RMSprop)

``params`` and ``grads`` are lists ``[W1, b1, W2, b2, …]`` (``Network.parameters()``). Every transform
takes its array operations from the namespace of the arrays it is given (NumPy, PyTorch on any
device, …) and none reads a value back to the host, so the PyTorch path runs the same chain without a
host–device synchronisation. The only state is the optimiser's, explicit: ``Chain.init(params)``
returns it and ``Chain.apply`` updates it (the run that owns it keeps it, and a checkpoint stores it).
"""

from __future__ import annotations

from ._array import array_namespace
from ._checks import number

__all__ = ["Penalty", "PerBatchL2", "ClipByGlobalNorm", "Chain", "chain"]


class Penalty:
    """The L1/L2 term of the training objective, on the weights only (not the biases):

        J_B = J(T_B, a[L]) + λ₁ Σ_l Σ|W[l]| + (λ₂/2) Σ_l Σ W[l]²
        ∂/∂W[l] adds λ₂ W[l] + λ₁ sign(W[l])

    (Kolar and McCulloch's L1/L2 regularisation; λ₂/2 so that the gradient is λ₂ W.)
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = number("l1", l1, low=0), number("l2", l2, low=0)

    def __bool__(self):
        return self.l1 > 0 or self.l2 > 0

    def coefficients(self, batch_total=None):
        """(λ₁, λ₂) for a batch whose size (or sum of sample weights) is ``batch_total``."""
        return self.l1, self.l2

    def array_value(self, weights, batch_total=None):
        """:meth:`value` as a 0-d array of the weights' namespace and device (no read back to the host)."""
        l1, l2 = self.coefficients(batch_total)
        total = None
        for W in weights:
            xp = array_namespace(W)
            terms = []
            if l2 > 0:
                terms.append(0.5 * l2 * xp.sum(W * W))
            if l1 > 0:
                terms.append(l1 * xp.sum(xp.abs(W)))
            for t in terms:
                total = t if total is None else total + t
        return total

    def value(self, weights, batch_total=None) -> float:
        """λ₁ Σ_l Σ|W[l]| + (λ₂/2) Σ_l Σ W[l]² for the weight matrices ``weights``."""
        l1, l2 = self.coefficients(batch_total)
        if not (l1 > 0 or l2 > 0):
            return 0.0  # the common case, on every step: no namespace look-up, no pass over W
        total = 0.0
        for W in weights:
            xp = array_namespace(W)
            if l2 > 0:
                total += 0.5 * l2 * float(xp.sum(W * W))
            if l1 > 0:
                total += l1 * float(xp.sum(xp.abs(W)))
        return total

    def gradients(self, weights, dW, batch_total=None):
        """``dW[l] + λ₂ W[l] + λ₁ sign(W[l])`` for each layer (new arrays; ``dW`` is not changed)."""
        l1, l2 = self.coefficients(batch_total)
        out = []
        for W, g in zip(weights, dW):
            if l2 > 0:
                g = g + l2 * W
            if l1 > 0:
                g = g + l1 * array_namespace(W).sign(W)
            out.append(g)
        return out

    def transform(self, grads, params, batch_total=None):
        """The chain's form: ``grads`` ([dW1, db1, …]) with the penalty's gradient added to each dW."""
        if not self:
            return grads
        dW = self.gradients(params[0::2], grads[0::2], batch_total)
        out = list(grads)
        out[0::2] = dW
        return out

    def flat_transform(self, flat, n):
        """:meth:`transform` on flat buffers (see :meth:`ffnn.optim.Optimizer.flat_update`): G ← G + λ₂ W
        + λ₁ sign(W) on the weights' entries (``flat.wmask``: 1 there, 0 on the biases), for a batch of n."""
        import torch

        l1, l2 = self.coefficients(n)
        if l2 > 0:
            flat.G.addcmul_(flat.P, flat.wmask, value=l2)
        if l1 > 0:
            torch.sign(flat.P, out=flat.D)
            flat.G.addcmul_(flat.D, flat.wmask, value=l1)

    def flat_value(self, flat, total, n):
        """N times :meth:`value`, added to the 1-element tensor ``total`` on the device."""
        import torch

        l1, l2 = self.coefficients(n)
        if l2 > 0:
            torch.mul(flat.P, flat.wmask, out=flat.D)
            total.addmv_(flat.D.view(1, -1), flat.P, alpha=0.5 * l2 * n)
        if l1 > 0:
            torch.abs(flat.P, out=flat.D)
            total.addmv_(flat.wmask.view(1, -1), flat.D, alpha=l1 * n)

    def __repr__(self):
        return f"{type(self).__name__}(l1={self.l1!r}, l2={self.l2!r})"


class PerBatchL2(Penalty):
    """scikit-learn's L2 term: α / (2 s_B) Σ_l Σ W[l]², with s_B the batch's size or its sum of
    sample weights, so that λ₂ = α / s_B changes from batch to batch (plus an optional λ₁ Σ|W|):

    .. code-block:: text

        J_B = J(T_B, a[L]) + (α / 2 s_B) Σ_l Σ W[l]² + λ₁ Σ_l Σ|W[l]|
        ∂/∂W[l] adds (α / s_B) W[l] + λ₁ sign(W[l])
    """

    def __init__(self, alpha=0.0, l1=0.0):
        super().__init__(l1, 0.0)
        self.alpha = number("alpha", alpha, low=0)

    def __bool__(self):
        return self.l1 > 0 or self.alpha > 0

    def coefficients(self, batch_total=None):
        if batch_total is None:
            raise ValueError("PerBatchL2 needs the batch's size or sum of sample weights")
        return self.l1, self.alpha / batch_total

    def __repr__(self):
        return f"PerBatchL2(alpha={self.alpha!r}, l1={self.l1!r})"


class ClipByGlobalNorm:
    """Rescale the whole gradient to global L2 norm c when it is larger (Pascanu et al. 2013)::

        ‖g‖ = √(Σ_i Σ g_i²);    g ← g · c / ‖g‖   when ‖g‖ > c

    The squares are summed in float64, array by array in the order of ``grads``; the factor is an
    array of the gradients' namespace, so nothing is read back to the host.
    """

    def __init__(self, c):
        self.c = number("clip_norm", c, low=0, low_open=True)

    def transform(self, grads, params=None, batch_total=None):
        xp = array_namespace(grads[0])
        sq = None
        for g in grads:
            t = xp.astype(xp.sum(g * g), xp.float64)
            sq = t if sq is None else sq + t
        norm = xp.sqrt(sq)
        scale = xp.where(norm > self.c, self.c / norm, xp.ones_like(norm))
        return [g * xp.astype(scale, g.dtype) for g in grads]

    def flat_transform(self, flat, n=None):
        """:meth:`transform` on the flat gradient: ‖g‖ in float64, g ← g · min(1, c/‖g‖) (the same
        factor: c/‖g‖ ≤ 1 exactly when ‖g‖ ≥ c, and NaN or ∞ in g stays non-finite)."""
        import torch

        q = torch.linalg.vector_norm(flat.G, dtype=torch.float64)
        q.reciprocal_().mul_(self.c).clamp_(max=1.0)
        flat.G.mul_(q)

    def __repr__(self):
        return f"ClipByGlobalNorm({self.c!r})"


class Chain:
    """Penalty → clipping → optimiser: the update of one step (see the module docstring).

    Parameters
    ----------
    penalty : Penalty or None
    clip : ClipByGlobalNorm or None
    optimizer : ffnn.optim.Optimizer or None
        None: :meth:`apply` is not available; :meth:`gradients` gives the transformed gradient
        (scikit-learn's L-BFGS, which takes its own steps).
    """

    def __init__(self, penalty=None, clip=None, optimizer=None):
        self.penalty = penalty if penalty else None
        self.clip = clip
        self.optimizer = optimizer

    def init(self, params):
        """The chain's state: the optimiser's (the other transforms keep none)."""
        return self.optimizer.init(params)

    def value(self, weights, batch_total=None) -> float:
        """The penalty's term of J_B (0 without one)."""
        return 0.0 if self.penalty is None else self.penalty.value(weights, batch_total)

    def array_value(self, weights, batch_total=None):
        """:meth:`value` as a 0-d array on the weights' device, or None without a penalty."""
        return None if self.penalty is None else self.penalty.array_value(weights, batch_total)

    def gradients(self, grads, params, batch_total=None):
        """∂J_B/∂θ with the penalty, clipped: the gradient the optimiser receives."""
        if self.penalty is not None:
            grads = self.penalty.transform(grads, params, batch_total)
        if self.clip is not None:
            grads = self.clip.transform(grads)
        return grads

    def apply(self, grads, state, params, lr, batch_total=None):
        """One update in place: θ ← θ + optimizer.update(gradients(g), η = ``lr``); returns the state."""
        return self.optimizer.apply(self.gradients(grads, params, batch_total), state, params, lr)

    def plain_sgd_decay(self):
        """λ₂ when the whole chain is θ ← (1 − ηλ₂)θ − η g (plain SGD, an L2 penalty or none, no L1,
        no clipping, no per-batch scaling) — the update the fast paths fold into their products; else
        None."""
        from .optim import SGD

        opt, p = self.optimizer, self.penalty
        if type(opt) is not SGD or opt.momentum != 0 or self.clip is not None:
            return None
        if p is None:
            return 0.0
        if type(p) is not Penalty or p.l1 != 0:
            return None
        return p.l2

    def __repr__(self):
        return f"Chain({self.penalty!r}, {self.clip!r}, {self.optimizer!r})"


def chain(*, optimizer=None, l1=0.0, l2=0.0, clip_norm=None, per_batch_alpha=None):
    """The :class:`Chain` of a training run: ``Penalty(l1, l2)`` (or scikit-learn's ``PerBatchL2``
    when ``per_batch_alpha`` is given), ``ClipByGlobalNorm(clip_norm)`` when given, and the optimiser."""
    penalty = Penalty(l1, l2) if per_batch_alpha is None else PerBatchL2(per_batch_alpha, l1)
    clip = None if clip_norm is None else ClipByGlobalNorm(clip_norm)
    return Chain(penalty, clip, optimizer)
