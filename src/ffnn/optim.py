"""Optimisers with explicit state, in the manner of optax: ``init(params) -> state`` and
``update(grads, state, params, lr) -> (updates, state)``; the caller adds ``updates`` to ``params``.

``params`` and ``grads`` are lists of arrays ``[W1, b1, W2, b2, …]`` (``Network.parameters()``);
``lr`` is the learning rate η for this step (the base rate times the schedule's factor). The state
is a dict of plain arrays and numbers, so checkpoints store it as safetensors + JSON; its arrays are
updated in place for speed and returned. Each class stores its hyperparameters verbatim and pickles.
"""

from __future__ import annotations

import math

import numpy as np

from ._array import array_namespace
from ._checks import number

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Rprop", "Quickprop", "weights_only", "get_optimizer",
           "OPTIMIZERS"]


class Optimizer:
    """Base class: hyperparameters, the running state (``self.state`` after training), and the rule."""

    name = "optimizer"
    slots: tuple = ()  # names of per-parameter state arrays
    #: True for the batch methods (Rprop, Quickprop): each step needs the gradient of the whole
    #: training set, so training refuses minibatches (``ffnn.train``: batch_size below N is an error)
    full_batch = False
    #: False where η only sets the first step (Rprop): a learning-rate schedule would change nothing
    follows_lr = True

    def __init__(self, lr):
        self.lr = number("learning rate", lr, low=0, low_open=True)
        self.state = None

    def init(self, params):
        """Fresh state for ``params``: zero arrays for each slot and step 0."""
        state = {"step": 0}
        for slot in self.slots:
            state[slot] = [array_namespace(p).zeros_like(p) for p in params]
        return state

    def update(self, grads, state, params, lr):  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, grads, state, params, lr):
        """Take one step in place: ``params += update(grads, …)``. ``grads`` may be overwritten."""
        updates, state = self.update(grads, state, params, lr)
        for p, u in zip(params, updates):
            p += u
        return state

    def config(self) -> dict:
        """Hyperparameters, JSON-ready (checkpoints record them)."""
        return {k: v for k, v in vars(self).items() if k != "state"}

    # --- the fast form on flat device buffers (ffnn.training.torch_engine) -------------------------
    # One buffer holds every parameter (P), one the gradient (G), one each state slot; the numbers
    # that change from step to step are computed on the host for a chunk of steps (flat_scalars)
    # and reach the device as 0-d tensors, so that the update can be captured in a CUDA graph.

    def flat_scalars(self, lr, t):
        """The per-step numbers of :meth:`flat_update` for steps with learning rates ``lr`` and step
        counts ``t`` (NumPy arrays, t counting from 1): a dict name → array."""
        return {"neglr": -lr}

    def flat_update(self, flat, s):  # pragma: no cover - abstract
        """This optimiser's step on ``flat`` (``P``, ``G``, ``slots``, a scratch buffer ``D``,
        ``views(buffer)`` the per-parameter views, ``decays`` AdamW's flags and ``mask(flags)`` a flat
        0/1 buffer) with the step's 0-d tensors ``s``."""
        raise NotImplementedError

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def __getstate__(self):
        return dict(vars(self), state=None)  # pickles (for scikit-learn's clone) without buffers


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum μ (heavy ball or Nesterov).

    The updates::

        Plain (Xing Chao, Gashler, Kolar and McCulloch):   θ ← θ − η g
        Momentum:                 v ← μ v − η g;   θ ← θ + v
        Nesterov (Sutskever et al. 2013, as scikit-learn and Keras write it):
                                  v ← μ v − η g;   θ ← θ + μ v − η g

    This is the Nesterov form whose velocity already contains η, so a learning-rate schedule changes
    the step without rescaling the stored velocity, and ffnn's scikit-learn estimators reproduce
    scikit-learn's own updates. PyTorch's form (b ← μ b + g; θ ← θ − η(g + μ b)) takes the same steps
    when η is constant: v = −η b.
    """

    name = "sgd"

    def __init__(self, lr=0.01, momentum=0.0, nesterov=False):
        super().__init__(lr)
        self.momentum = number("momentum", momentum, low=0, high=1, high_open=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs a momentum above 0")

    @property
    def slots(self):
        return ("velocity",) if self.momentum > 0 else ()

    def apply(self, grads, state, params, lr):
        if self.momentum > 0:
            return super().apply(grads, state, params, lr)
        state["step"] += 1
        for p, g in zip(params, grads):  # θ ← θ − η g, reusing g's buffer: no allocation
            g *= lr
            p -= g
        return state

    def update(self, grads, state, params, lr):
        state["step"] += 1
        if self.momentum == 0:
            return [-lr * g for g in grads], state
        mu = self.momentum
        updates = []
        for v, g in zip(state["velocity"], grads):
            v *= mu
            v -= lr * g
            updates.append(mu * v - lr * g if self.nesterov else v)
        return updates, state

    def flat_update(self, flat, s):
        """:meth:`update` on flat buffers: θ ← θ − η g, or v ← μ v − η g; θ ← θ + v (+ μ v − η g)."""
        P, G = flat.P, flat.G
        if self.momentum == 0:
            P.addcmul_(G, s["neglr"])
            return
        V = flat.slots["velocity"]
        V.mul_(self.momentum)
        V.addcmul_(G, s["neglr"])
        if self.nesterov:
            P.add_(V, alpha=self.momentum)
            P.addcmul_(G, s["neglr"])
        else:
            P.add_(V)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), bias-corrected.

    The update, with t counting from 1::

        m ← β₁ m + (1 − β₁) g;   s ← β₂ s + (1 − β₂) g²
        m̂ = m / (1 − β₁ᵗ);       ŝ = s / (1 − β₂ᵗ)
        θ ← θ − η m̂ / (√ŝ + ε)

    With ``step_size_correction=True``, the bias correction is folded into the step size instead
    (the "more efficient" order at the end of Kingma & Ba's Section 2, which scikit-learn computes)::

        η_t = η √(1 − β₂ᵗ) / (1 − β₁ᵗ);   θ ← θ − η_t m / (√s + ε)

    the same step as the default form with ε replaced by ε / √(1 − β₂ᵗ).
    """

    name = "adam"
    slots = ("m", "s")

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, *, step_size_correction=False):
        super().__init__(lr)
        self.beta1 = number("beta1", beta1, low=0, high=1, high_open=True)
        self.beta2 = number("beta2", beta2, low=0, high=1, high_open=True)
        self.eps = number("eps", eps, low=0, low_open=True)
        self.step_size_correction = bool(step_size_correction)

    def _adam_step(self, g, m, s, t, lr):
        xp = array_namespace(g)
        m *= self.beta1
        m += (1 - self.beta1) * g
        s *= self.beta2
        s += (1 - self.beta2) * (g * g)
        if self.step_size_correction:
            lr_t = lr * math.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)
            return -lr_t * m / (xp.sqrt(s) + self.eps)
        mhat = m / (1 - self.beta1 ** t)
        shat = s / (1 - self.beta2 ** t)
        return -lr * mhat / (xp.sqrt(shat) + self.eps)

    def update(self, grads, state, params, lr):
        state["step"] += 1
        t = state["step"]
        return [self._adam_step(g, m, s, t, lr) for g, m, s in zip(grads, state["m"], state["s"])], state

    def flat_scalars(self, lr, t):
        """η, t, and both forms as one: θ ← θ + k_t m / (√s + e_t) with k_t = −η √(1 − β₂ᵗ)/(1 − β₁ᵗ)
        and e_t = ε √(1 − β₂ᵗ) (the default form, multiplied through by √(1 − β₂ᵗ)) or ε (the step-size
        correction form)."""
        root = np.sqrt(1.0 - self.beta2 ** t)
        e = np.full_like(root, self.eps) if self.step_size_correction else self.eps * root
        return {"lr": lr, "t": t, "k": -lr * root / (1.0 - self.beta1 ** t), "e": e,
                "wd": -lr * getattr(self, "weight_decay", 0.0)}

    def flat_update(self, flat, s):
        """:meth:`update` on flat buffers: PyTorch's fused Adam kernel (one operation for every
        parameter: the same formulas, ``_fused_adam_``/``_fused_adamw_``) for the default form where
        PyTorch has it, else the formulas above in eight operations."""
        import torch

        P, G, M, S, D = flat.P, flat.G, flat.slots["m"], flat.slots["s"], flat.D
        flags = flat.decays  # AdamW's mask, one flag per parameter (all False for Adam)
        if not self.step_size_correction and hasattr(torch, "_fused_adamw_"):
            for decay in (True, False):
                idx = [i for i, f in enumerate(flags) if f == decay]
                if not idx:
                    continue
                pick = [flat.views(buf) for buf in (P, G, M, S)]
                kernel = torch._fused_adamw_ if decay else torch._fused_adam_
                kernel(*[[views[i] for i in idx] for views in pick], [], [s["t"]] * len(idx), lr=s["lr"],
                       beta1=self.beta1, beta2=self.beta2, weight_decay=self.weight_decay if decay else 0.0,
                       eps=self.eps, amsgrad=False, maximize=False)
            return
        if any(flags):
            torch.mul(P, flat.mask(flags), out=D)
            P.addcmul_(D, s["wd"])  # θ ← θ − ηλθ where the mask says, from θ before the step
        M.mul_(self.beta1)
        M.add_(G, alpha=1 - self.beta1)
        S.mul_(self.beta2)
        S.addcmul_(G, G, value=1 - self.beta2)
        torch.sqrt(S, out=D)
        D.add_(s["e"])
        torch.div(M, D, out=D)
        P.addcmul_(D, s["k"])


def weights_only(params):
    """The default decay mask: the weight matrices W[l] (2-D), not the bias vectors b[l] (1-D)."""
    return [p.ndim >= 2 for p in params]


class AdamW(Adam):
    """Adam with decoupled weight decay λ (Loshchilov & Hutter 2019) on the parameters a mask selects.

    The update::

        θ ← θ − η (m̂ / (√ŝ + ε) + λ θ)      where mask(θ) is True;  Adam's step elsewhere

    Parameters
    ----------
    mask : sequence of bool or callable, optional
        Which parameters decay, one flag per entry of ``params`` (``[W1, b1, W2, b2, …]`` in training),
        or ``mask(params) -> flags`` as optax's ``add_decayed_weights`` takes it. Default
        :func:`weights_only`: the weight matrices, not the biases.
    """

    name = "adamw"

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01, mask=None, *,
                 step_size_correction=False):
        super().__init__(lr, beta1, beta2, eps, step_size_correction=step_size_correction)
        self.weight_decay = number("weight_decay", weight_decay, low=0)
        self.mask = mask

    def decays(self, params):
        """One bool per parameter: whether weight decay applies to it."""
        mask = weights_only if self.mask is None else self.mask
        flags = list(mask(params)) if callable(mask) else list(mask)
        if len(flags) != len(params):
            raise ValueError(f"AdamW mask has {len(flags)} entries for {len(params)} parameters")
        return [bool(f) for f in flags]

    def update(self, grads, state, params, lr):
        updates, state = super().update(grads, state, params, lr)
        for i, decay in enumerate(self.decays(params)):
            if decay:
                updates[i] = updates[i] - (lr * self.weight_decay) * params[i]
        return updates, state

    def config(self) -> dict:
        cfg = super().config()
        cfg["mask"] = None if self.mask is None or callable(self.mask) else [bool(f) for f in self.mask]
        return cfg


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012).

    The update::

        s ← ρ s + (1 − ρ) g²;   θ ← θ − η g / (√s + ε)
    """

    name = "rmsprop"
    slots = ("s",)

    def __init__(self, lr=0.001, rho=0.9, eps=1e-8):
        super().__init__(lr)
        self.rho = number("rho", rho, low=0, high=1, high_open=True)
        self.eps = number("eps", eps, low=0, low_open=True)

    def update(self, grads, state, params, lr):
        state["step"] += 1
        updates = []
        for g, s in zip(grads, state["s"]):
            xp = array_namespace(g)
            s *= self.rho
            s += (1 - self.rho) * (g * g)
            updates.append(-lr * g / (xp.sqrt(s) + self.eps))
        return updates, state

    def flat_update(self, flat, s):
        """:meth:`update` on flat buffers."""
        import torch

        G, S, D = flat.G, flat.slots["s"], flat.D
        S.mul_(self.rho)
        S.addcmul_(G, G, value=1 - self.rho)
        torch.sqrt(S, out=D)
        D.add_(self.eps)
        torch.div(G, D, out=D)
        flat.P.addcmul_(D, s["neglr"])


class Rprop(Optimizer):
    """Resilient back-propagation as iRPROP− (Igel & Hüsken 2000), the variant ``torch.optim.Rprop``
    computes: full-batch steps of a per-entry size Δ that only the sign of the gradient changes
    (Riedmiller & Braun 1993).

    Per entry of every parameter, with g = ∂J/∂θ of this step and g⁻ the gradient kept by the last::

        g⁻ g > 0:  Δ ← min(η⁺ Δ, Δ_max)
        g⁻ g < 0:  Δ ← max(η⁻ Δ, Δ_min);   g ← 0      (no step now, and none of the sign test next time)
        g⁻ g = 0:  Δ unchanged
        θ ← θ − sign(g) Δ;   g⁻ ← g

    Δ starts at ``lr`` for every entry, g⁻ at 0. Written as PyTorch writes it,
    Δ ← clip(f Δ, Δ_min, Δ_max) with f = η⁺, η⁻ or 1, which is the same numbers here because Δ_min ≤
    ``lr`` ≤ Δ_max is required. Setting g to 0 after a sign change, without taking back the last step,
    is what makes this iRPROP− rather than Riedmiller and Braun's original Rprop (which takes the
    step back) or iRPROP+.

    The defaults are PyTorch's (Δ₀ = 0.01, Δ_min = 1e-6). FANN's (``FANN_TRAIN_RPROP``, its default
    algorithm) are ``Rprop(lr=0.1, step_sizes=(0.0, 50.0))`` with the same η; FANN's code also departs
    from iRPROP− in ways not reproduced here: a zero gradient moves the weight by +Δ, Δ is kept above
    1e-4, and weights are clamped to ±1500.

    Rprop takes the gradient of the whole training set at every step (it is a batch method: the sign
    of a minibatch's gradient says little about the whole set's), so training refuses minibatches.
    The learning rate η only sets Δ₀; later steps do not read it, so a schedule would change nothing
    (``ffnn.train`` refuses one).

    Parameters
    ----------
    lr : float
        Δ₀, the first step size of every entry.
    etas : (float, float)
        (η⁻, η⁺) with 0 < η⁻ < 1 < η⁺.
    step_sizes : (float, float)
        (Δ_min, Δ_max) with 0 ≤ Δ_min ≤ lr ≤ Δ_max.
    """

    name = "rprop"
    slots = ("prev", "step_size")
    full_batch = True
    follows_lr = False

    def __init__(self, lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
        super().__init__(lr)
        down, up = _pair("etas", etas)
        self.etas = (number("etas[0] (η⁻)", down, low=0, high=1, low_open=True, high_open=True),
                     number("etas[1] (η⁺)", up, low=1, low_open=True))
        lo, hi = _pair("step_sizes", step_sizes)
        lo = number("step_sizes[0] (Δ_min)", lo, low=0)
        hi = number("step_sizes[1] (Δ_max)", hi, low=0, low_open=True)
        if not lo <= self.lr <= hi:
            raise ValueError(f"Rprop needs step_sizes[0] ≤ lr ≤ step_sizes[1] (the first step size Δ₀ = lr lies "
                             f"between the least and the greatest), got {lo!r} ≤ {self.lr!r} ≤ {hi!r}")
        self.step_sizes = (lo, hi)

    def init(self, params):
        """g⁻ = 0 and Δ = ``lr`` for every entry, step 0."""
        state = super().init(params)
        state["step_size"] = [array_namespace(p).full_like(p, self.lr) for p in params]
        return state

    def update(self, grads, state, params, lr):
        state["step"] += 1
        down, up = self.etas
        lo, hi = self.step_sizes
        updates = []
        for g, prev, delta in zip(grads, state["prev"], state["step_size"]):
            xp = array_namespace(g)
            d = xp.sign(g * prev)
            f = xp.where(d > 0, xp.full_like(g, up), xp.where(d < 0, xp.full_like(g, down), xp.ones_like(g)))
            delta[...] = xp.clip(delta * f, lo, hi)
            g = xp.where(d < 0, xp.zeros_like(g), g)
            prev[...] = g
            updates.append(-(xp.sign(g) * delta))
        return updates, state

    def flat_update(self, flat, s):
        """:meth:`update` on flat buffers, PyTorch's own sequence of operations."""
        import torch

        P, G, prev, delta, D = flat.P, flat.G, flat.slots["prev"], flat.slots["step_size"], flat.D
        down, up = self.etas
        torch.mul(G, prev, out=D)
        D.sign_()
        f = torch.ones_like(D).masked_fill_(D > 0, up).masked_fill_(D < 0, down)  # in the buffers' dtype
        delta.mul_(f).clamp_(*self.step_sizes)
        prev.copy_(G).masked_fill_(D < 0, 0.0)  # g, or 0 where the sign changed
        torch.sign(prev, out=D)
        P.addcmul_(D, delta, value=-1)


class Quickprop(Optimizer):
    """Quickprop (Fahlman 1988) as FANN's ``fann_update_weights_quickprop`` computes it: each weight
    jumps towards the minimum of the parabola through its last two slopes, a full-batch step.

    Per entry, with the slope s = ∂J/∂θ + λθ (gradient plus weight decay), s⁻ and p the slope and the
    step of the previous step (both 0 at first), ε = η and the shrink factor ρ = μ/(1 + μ)::

        p >  τ:  step = (−ε s if s < 0 else 0) + (μ p if s < ρ s⁻ else p s/(s⁻ − s))
        p < −τ:  step = (−ε s if s > 0 else 0) + (μ p if s > ρ s⁻ else p s/(s⁻ − s))
        else:    step = −ε s
        θ ← θ + step;   p ← step;   s⁻ ← s

    p s/(s⁻ − s) is the quadratic estimate (the secant's zero), μ p the largest step allowed (μ times
    the last), and −ε s the gradient-descent term added while the slope still points the way the last
    step went. This is FANN's code written with ffnn's sign (FANN's slopes are −∂E/∂w, so its
    ``decay = −0.0001`` is λ = 1e-4 here) and τ its 0.001, with two departures: where s⁻ = s the
    secant has no zero and the quadratic term is 0 (FANN divides by zero), and weights are not clamped
    to ±1500. Fahlman's own code has τ = 0 (``step_threshold=0``). Like FANN, the decay applies to
    every parameter, biases included.

    FANN and Fahlman add the decay to slopes summed over the training patterns, and FANN takes
    ε = η/N for them; ffnn's slope is the gradient of J as the loss defines it. With a mean loss
    (mse, cross_entropy) η = 0.7 is FANN's default learning rate, and λ = 1e-4/N its decay.

    Parameters
    ----------
    lr : float
        ε, the gradient-descent coefficient (FANN's learning rate, default 0.7); a schedule scales it.
    mu : float
        μ > 0, the maximum growth factor (default 1.75).
    decay : float
        λ ≥ 0, the weight decay added to the slope (default 1e-4, FANN's −0.0001).
    step_threshold : float
        τ ≥ 0: a previous step of size at most τ counts as none (FANN 0.001; Fahlman 0).
    """

    name = "quickprop"
    slots = ("prev_slope", "prev_step")
    full_batch = True

    def __init__(self, lr=0.7, mu=1.75, decay=1e-4, step_threshold=0.001):
        super().__init__(lr)
        self.mu = number("mu", mu, low=0, low_open=True)
        self.decay = number("decay", decay, low=0)
        self.step_threshold = number("step_threshold", step_threshold, low=0)

    def _step(self, xp, s, sp, p, eps):
        """The step from slope ``s``, previous slope ``sp`` and previous step ``p`` (arrays of ``xp``)."""
        mu, tau = self.mu, self.step_threshold
        rho = mu / (1.0 + mu)
        zero = xp.zeros_like(s)
        up = p > tau
        moved = up | (p < -tau)
        linear = -eps * s
        den = sp - s
        flat = den == 0
        quad = xp.where(flat, zero, p * s / xp.where(flat, xp.ones_like(s), den))
        largest = xp.where(up, s < rho * sp, s > rho * sp)
        descend = xp.where(up, s < 0, s > 0)
        jump = xp.where(descend, linear, zero) + xp.where(largest, mu * p, quad)
        return xp.where(moved, jump, linear)

    def update(self, grads, state, params, lr):
        state["step"] += 1
        updates = []
        for g, theta, sp, p in zip(grads, params, state["prev_slope"], state["prev_step"]):
            xp = array_namespace(g)
            s = g + self.decay * theta if self.decay > 0 else g
            step = self._step(xp, s, sp, p, lr)
            p[...] = step
            sp[...] = s
            updates.append(step)
        return updates, state

    def flat_update(self, flat, s):
        """:meth:`update` on flat buffers (ε = −``s["neglr"]``, a 0-d tensor)."""
        import torch

        P, G, sp, p, D = flat.P, flat.G, flat.slots["prev_slope"], flat.slots["prev_step"], flat.D
        torch.add(G, P, alpha=self.decay, out=D)  # the slope
        step = self._step(torch, D, sp, p, -s["neglr"])
        p.copy_(step)
        sp.copy_(D)
        P.add_(step)


def _pair(what, value):
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a pair of numbers, got {value!r}") from None
    return a, b


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "rprop": Rprop, "quickprop": Quickprop}


def get_optimizer(spec) -> Optimizer:
    """An :class:`Optimizer` from a name (with its defaults) or an optimizer object itself."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec.strip().lower() in OPTIMIZERS:
        return OPTIMIZERS[spec.strip().lower()]()
    if isinstance(spec, str):
        raise ValueError(f"unknown optimizer {spec!r}; known optimizers: {', '.join(OPTIMIZERS)}")
    raise TypeError(f"an optimizer must be a name or an ffnn optimizer object, got {type(spec).__name__}")
