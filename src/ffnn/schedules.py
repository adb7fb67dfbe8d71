"""Learning-rate schedules: callables of the step count t (updates done so far, from 0) that return
the factor s(t) multiplying the optimiser's base rate, η_t = η₀ · s(t) — as PyTorch's LambdaLR does,
so one optimiser's rate can be scheduled in any of these ways. Any callable ``f(t) -> float`` is a
schedule too.

``ffnn.train`` calls ``setup(steps_per_epoch, total_steps)`` on a schedule that has it before the
first step, so the built-ins can be given in epochs, and ``epoch_end(monitored_value)`` after each
epoch (reduce-on-plateau uses it).
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import integer, number

__all__ = ["Plateau", "Constant", "StepDecay", "Exponential", "InverseScaling", "Cosine", "ReduceOnPlateau",
           "get_schedule", "SCHEDULES"]


class Schedule:
    """Base: ``setup`` records the epoch length; subclasses define ``__call__(t)``."""

    steps_per_epoch = 1
    total_steps = None

    def setup(self, steps_per_epoch, total_steps):
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.total_steps = int(total_steps)

    def epoch_end(self, value):
        """Called after each epoch with the monitored loss; most schedules ignore it."""

    def state(self) -> dict:
        """Mutable state, JSON-ready, for checkpoints."""
        return {}

    def load_state(self, state):
        vars(self).update(state)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Constant(Schedule):
    """s(t) = 1."""

    def __call__(self, t):
        return 1.0

    def factors(self, t0, count):
        """s(t) for t = t0 … t0 + count − 1 at once (the driver asks a schedule that has this for a
        chunk of steps' factors in one call)."""
        return np.ones(count)


class StepDecay(Schedule):
    """s(t) = γ^⌊epoch / every⌋: multiply the rate by γ every ``every`` epochs."""

    def __init__(self, every=10, gamma=0.5):
        self.every = integer("every", every, low=1)
        self.gamma = number("gamma", gamma, low=0, low_open=True, high=1)

    def __call__(self, t):
        return self.gamma ** ((t // self.steps_per_epoch) // self.every)


class Exponential(Schedule):
    """s(t) = γ^(t / steps_per_epoch): a smooth decay by γ per epoch."""

    def __init__(self, gamma=0.95):
        self.gamma = number("gamma", gamma, low=0, low_open=True, high=1)

    def __call__(self, t):
        return self.gamma ** (t / self.steps_per_epoch)


class InverseScaling(Schedule):
    """s(t) = 1 / (t + 1)^p (scikit-learn's 'invscaling', per update)."""

    def __init__(self, power=0.5):
        self.power = number("power", power, low=0)

    def __call__(self, t):
        return 1.0 / (t + 1) ** self.power


class Cosine(Schedule):
    """Linear warm-up over ``warmup`` epochs, then a cosine from 1 down to ``floor`` at the last step.

    The factor::

        s(t) = (t + 1) / w                                       for t < w (w in steps)
        s(t) = floor + (1 − floor) · ½ (1 + cos(π (t − w) / (T − w)))   otherwise
    """

    def __init__(self, warmup=0, floor=0.0, total_epochs=None):
        self.warmup = number("warmup", warmup, low=0)
        self.floor = number("floor", floor, low=0, high=1)
        self.total_epochs = total_epochs

    def __call__(self, t):
        w = self.warmup * self.steps_per_epoch
        total = self.total_epochs * self.steps_per_epoch if self.total_epochs else (self.total_steps or 1)
        if t < w:
            return (t + 1) / w
        progress = min(1.0, (t - w) / max(1.0, total - w))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


class Plateau:
    """The plateau counter that early stopping and reduce-on-plateau share.

    An epoch improves when its monitored value < best − min_delta; ``wait`` counts the epochs since
    the last improvement.
    """

    def __init__(self, min_delta=0.0):
        self.min_delta = number("min_delta", min_delta, low=0)
        self.best, self.best_epoch, self.wait = math.inf, None, 0

    def update(self, value, epoch=None):
        """Record one epoch's value; True when it improves on the best so far."""
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True
        self.wait += 1
        return False

    def state(self) -> dict:
        return {"best": self.best if math.isfinite(self.best) else None, "best_epoch": self.best_epoch,
                "wait": self.wait}

    def load_state(self, state):
        self.best = math.inf if state["best"] is None else state["best"]
        self.best_epoch, self.wait = state.get("best_epoch"), state["wait"]


class ReduceOnPlateau(Schedule):
    """Multiply the factor by ``factor`` when the monitored loss has not improved by ``min_delta`` for
    more than ``patience`` epochs (a :class:`Plateau`), never below ``min_factor``."""

    def __init__(self, factor=0.1, patience=5, min_delta=1e-4, min_factor=1e-6):
        self.factor = number("factor", factor, low=0, low_open=True, high=1, high_open=True)
        self.patience = integer("patience", patience, low=0)
        self.min_factor = number("min_factor", min_factor, low=0)
        self.scale = 1.0
        self._plateau = Plateau(min_delta)

    min_delta = property(lambda self: self._plateau.min_delta)
    best = property(lambda self: self._plateau.best)
    wait = property(lambda self: self._plateau.wait)

    def epoch_end(self, value):
        self._plateau.update(value)
        if self._plateau.wait > self.patience:
            self.scale = max(self.min_factor, self.scale * self.factor)
            self._plateau.wait = 0

    def __call__(self, t):
        return self.scale

    def state(self):
        return {"scale": self.scale, **self._plateau.state()}

    def load_state(self, state):
        # the factor only ever shrinks from 1, never below min_factor: a stored one outside that is not this run's
        self.scale = number("scale", state["scale"], low=self.min_factor, high=1)
        self._plateau.load_state(state)


SCHEDULES = {"constant": Constant, "step": StepDecay, "exponential": Exponential,
             "invscaling": InverseScaling, "cosine": Cosine, "plateau": ReduceOnPlateau}


def get_schedule(spec):
    """A schedule from None (constant), a name in ``SCHEDULES``, or any callable of the step."""
    if spec is None:
        return Constant()
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in SCHEDULES:
            return SCHEDULES[key]()
        raise ValueError(f"unknown schedule {spec!r}; known schedules: {', '.join(SCHEDULES)}")
    if callable(spec):
        return spec
    raise TypeError(f"a schedule must be a name or a callable of the step, got {type(spec).__name__}")
