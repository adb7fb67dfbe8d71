"""When training stops: divergence, Ctrl-C, and early stopping."""

from __future__ import annotations

import signal
import threading

from .._checks import integer, number
from ..schedules import Plateau

__all__ = ["TrainingDiverged", "TrainingInterrupted", "EarlyStopping"]


class TrainingDiverged(FloatingPointError):
    """The loss or an update became NaN or infinite; the network keeps its last finite weights."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the network keeps the weights of its last completed step.

    ``history`` holds the epochs completed before the interruption.
    """

    def __init__(self, history):
        super().__init__("training interrupted")
        self.history = history


class EarlyStopping:
    """Stop when the monitored loss (validation loss, or training loss without validation) has not
    improved by more than ``min_delta`` for ``patience`` epochs; restore the best epoch's weights.

    The counting is a :class:`ffnn.schedules.Plateau`, the same as reduce-on-plateau's.
    """

    def __init__(self, patience=10, min_delta=0.0):
        self.patience = integer("early_stopping patience", patience, low=1)
        self._plateau = Plateau(number("early_stopping min_delta", min_delta, low=0))

    min_delta = property(lambda self: self._plateau.min_delta)
    best = property(lambda self: self._plateau.best)
    best_epoch = property(lambda self: self._plateau.best_epoch)
    wait = property(lambda self: self._plateau.wait)

    def update(self, epoch, value):
        """Record an epoch; True when it is the best so far."""
        return self._plateau.update(value, epoch)

    @property
    def should_stop(self):
        return self._plateau.wait >= self.patience

    def state(self):
        return self._plateau.state()

    def load_state(self, s):
        self._plateau.load_state(s)


class DeferredInterrupt:
    """Hold the first Ctrl-C until :meth:`check` (between steps); a second one interrupts at once.

    Only in the main thread, where Python delivers signals; elsewhere Ctrl-C is untouched.
    """

    def __init__(self):
        self.pending = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):  # pragma: no cover - embedded interpreters
                self.previous = None

    def _handler(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    def check(self):
        if self.pending:
            raise KeyboardInterrupt

    def restore(self):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None
