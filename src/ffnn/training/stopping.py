"""When training stops: divergence, Ctrl-C, and early stopping."""

from __future__ import annotations

import math
import signal
import threading
from numbers import Integral

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
    improved by more than ``min_delta`` for ``patience`` epochs; restore the best epoch's weights."""

    def __init__(self, patience=10, min_delta=0.0):
        if isinstance(patience, bool) or not isinstance(patience, Integral) or patience < 1:
            raise ValueError(f"early_stopping patience must be a positive integer, got {patience!r}")
        if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"early_stopping min_delta must be a non-negative number, got {min_delta!r}")
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.best, self.best_epoch, self.wait = math.inf, None, 0

    def update(self, epoch, value):
        """Record an epoch; True when it is the best so far."""
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return True
        self.wait += 1
        return False

    @property
    def should_stop(self):
        return self.wait >= self.patience

    def state(self):
        return {"best": self.best if math.isfinite(self.best) else None, "best_epoch": self.best_epoch,
                "wait": self.wait}

    def load_state(self, s):
        self.best = math.inf if s["best"] is None else s["best"]
        self.best_epoch, self.wait = s["best_epoch"], s["wait"]


class _DeferredInterrupt:
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
