"""The record of a training run, one entry per epoch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

__all__ = ["History"]


def _nan_to_none(values):
    """JSON has no NaN or infinity: they become None, in nested per-layer lists too."""
    return [_nan_to_none(v) if isinstance(v, list) else (None if isinstance(v, float) and not math.isfinite(v) else v)
            for v in values]


@dataclass(repr=False)
class History:
    """Per-epoch training record returned by :func:`ffnn.train`.

    Attributes
    ----------
    epoch : list of int
        1-based epoch numbers.
    loss : list of float
        Mean training loss over the epoch's minibatches (weighted by batch size), including the L1/L2
        penalty when ``loss_includes_penalty`` is True.
    val_loss, val_metric : list of float or None
        Loss (without penalty) and ``metric`` on the validation data, None without validation.
    lr : list of float
        The learning rate of the epoch's last step.
    time : list of float
        Wall-clock seconds per epoch.
    grad_norm, delta_mean, update_ratio : list of list of float
        Gradient-flow diagnostics per epoch, one value per layer l = 1..L: ‖∂J/∂W[l]‖, mean |δ[l]| and
        ‖ΔW[l]‖/‖W[l]‖ on the epoch's last minibatch (see :mod:`ffnn.training.diagnostics`); empty
        lists when training ran with ``diagnostics=False``.
    dead_fraction : list of list of float or None
        Per epoch, one value per hidden layer: the fraction of relu units that were 0 for every
        sample of the epoch (None for other activations).
    metric : str
        Name of the validation metric ("accuracy" or "r2").
    loss_includes_penalty : bool
    best_epoch : int or None
        The epoch whose weights early stopping restored.
    stopped_early, interrupted : bool
    loop : str
        The training loop that ran: "compiled" (numba), "numpy" (the interpreted NumPy fast path),
        "core" (the array-namespace core), "torch" (the PyTorch fast path) or "sharded" (MPI's
        data-parallel shards); see ``train(loop=…)``.
    """

    epoch: list = field(default_factory=list)
    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_metric: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    time: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)
    delta_mean: list = field(default_factory=list)
    update_ratio: list = field(default_factory=list)
    dead_fraction: list = field(default_factory=list)
    metric: str = ""
    loss_includes_penalty: bool = False
    best_epoch: int | None = None
    stopped_early: bool = False
    interrupted: bool = False
    loop: str = ""

    def __len__(self):
        return len(self.epoch)

    def append(self, **values):
        for k, v in values.items():
            getattr(self, k).append(v)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("loss", "val_loss", "val_metric", "grad_norm", "delta_mean", "update_ratio", "dead_fraction"):
            d[k] = _nan_to_none(d[k])
        return d

    @property
    def has_diagnostics(self) -> bool:
        return any(len(v) > 0 for v in self.grad_norm)

    def plot(self, path=None, title="ffnn training"):
        """The loss curves and, when recorded, the gradient-flow diagnostics per layer, as a
        matplotlib Figure (shown inline in a notebook); also written as a PNG when ``path`` is given."""
        from .plot import history_figure, save_figure

        fig = history_figure(self, title)
        if path is not None:
            save_figure(fig, path)
        return fig

    @classmethod
    def from_dict(cls, d) -> "History":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def __repr__(self):
        """One line (a loaded model's ``print(net.metadata)`` stays readable): the epochs, the first and
        last losses, and the flags; ``str(history)`` is the table, the lists are the attributes."""
        def span(values):
            seen = [v for v in values if isinstance(v, (int, float)) and v is not None]
            return f"{seen[0]:.4g} → {seen[-1]:.4g}" if seen else "none"

        parts = [f"{len(self)} epoch{'s' if len(self) != 1 else ''}", f"loss {span(self.loss)}"]
        if any(v is not None for v in self.val_loss):
            parts.append(f"val_loss {span(self.val_loss)}")
        if any(v is not None for v in self.val_metric):
            parts.append(f"{self.metric or 'val_metric'} {span(self.val_metric)}")
        parts += [f"{k}={getattr(self, k)!r}" for k in ("best_epoch", "stopped_early", "interrupted", "loop")
                  if getattr(self, k) not in (None, False, "")]
        if self.has_diagnostics:
            parts.append("with diagnostics")
        return f"History({', '.join(parts)})"

    def __str__(self):
        rows = [f"{'epoch':>5} {'loss':>12} {'val_loss':>12} {self.metric or 'metric':>10} {'lr':>10} {'time':>7}"]
        for i in range(len(self)):
            vl, vm = self.val_loss[i], self.val_metric[i]
            rows.append(f"{self.epoch[i]:>5} {self.loss[i]:>12.6g} {'' if vl is None else f'{vl:.6g}':>12} "
                        f"{'' if vm is None else f'{vm:.4f}':>10} {self.lr[i]:>10.3g} {self.time[i]:>6.2f}s")
        return "\n".join(rows)
