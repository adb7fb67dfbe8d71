"""Gradient-flow diagnostics: what happens inside the network during training, per epoch and layer.

For each epoch and each layer l = 1..L, :class:`ffnn.History` records

    grad_norm[l]     ‖∂J/∂W[l]‖_F                 (the loss's gradient, without the L1/L2 term)
    delta_mean[l]    mean_n,k |δ[l]_nk|            (Wichmann's H, the error term back-propagation caches)
    update_ratio[l]  ‖ΔW[l]‖_F / ‖W[l]‖_F          (the step's size against the weights' size)

measured on the epoch's last minibatch, from the arrays that step computes anyway; and for each
hidden layer l = 1..L−1

    dead_fraction[l] for a relu layer, the fraction of units whose activation a[l] was 0 for every
                     sample of the epoch: a dead ReLU, whose σ′ = 0 passes no gradient (None for
                     other activations, whose σ′ never vanishes outright)

accumulated over every minibatch of the epoch. A vanishing gradient shows as grad_norm and
delta_mean falling by orders of magnitude from layer L down to layer 1.

The cost is one running maximum over each relu layer's activations per step and, once per epoch, a copy
and a few norms of the weights; ``train(..., diagnostics=False)`` turns it all off.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Diagnostics"]


class Diagnostics:
    """Collects one epoch's diagnostics for a network with L layers; :meth:`epoch_record` returns them."""

    def __init__(self, net):
        from .._array import is_numpy_namespace
        from ..activations import relu

        self.net = net
        self.watched = [l for l, act in enumerate(net.activations[:-1], start=1) if act == relu]  # hidden layers l
        self.numpy = is_numpy_namespace(net.xp)
        self.peak = {}  # hidden layer l → each unit's largest activation so far this epoch
        self.before = None
        self.last = {}

    def start_epoch(self):
        self.peak = {}
        self.last = {}

    def hidden_activations(self, a):
        """Fold one minibatch's hidden activations ``a[l]``, l = 1..L−1 (``a`` indexed by layer, as the
        trace's ``a`` and the workspaces' ``h``; a[0] and a[L] are not read) into each watched unit's
        largest activation so far (a unit is dead when that stays ≤ 0): one running maximum per layer,
        written in place with NumPy, as cheap at batch 1 as the step allows."""
        for l in self.watched:
            a_l = a[l]
            peak = self.peak.get(l)
            if self.numpy:
                row = a_l[0] if a_l.shape[0] == 1 else a_l.max(axis=0)
                if peak is None:
                    self.peak[l] = row.copy()
                else:
                    np.maximum(peak, row, out=peak)
            else:
                xp = _namespace(a_l)
                row = xp.max(a_l, axis=0)
                self.peak[l] = row if peak is None else xp.maximum(peak, row)

    def before_last_step(self):
        """Keep the weights the epoch's last step starts from (for the update ratio)."""
        xp = self.net.xp
        self.before = [xp.asarray(W, copy=True) for W in self.net.weights]

    def gradients(self, dW, deltas, scale=1.0):
        """The last step's ∂J/∂W[l] and δ[l] (each times ``scale``: the fused SGD step holds −η·them)."""
        s = abs(scale) or math.nan  # η = 0: the fused step kept nothing to measure
        self.last["grad_norm"] = [_norm(g) / s for g in dW]
        self.last["delta_mean"] = [_mean_abs(d) / s for d in deltas]

    def measured(self, grad_norm, delta_mean, update_norm, weight_norm):
        """The last step's measures as an engine computed them itself (per layer: ‖∂J/∂W[l]‖, mean |δ[l]|,
        ‖ΔW[l]‖ and ‖W[l]‖ before the step), in place of :meth:`before_last_step` and :meth:`gradients`."""
        self.last["grad_norm"] = list(grad_norm)
        self.last["delta_mean"] = list(delta_mean)
        self.last["update_ratio"] = [u / w if w > 0 else math.inf for u, w in zip(update_norm, weight_norm)]
        self.before = None

    def epoch_record(self):
        """This epoch's values: a dict of per-layer lists (empty lists when nothing was measured)."""
        rec = {"grad_norm": self.last.get("grad_norm", []), "delta_mean": self.last.get("delta_mean", [])}
        if "update_ratio" in self.last:
            rec["update_ratio"] = self.last["update_ratio"]
        elif self.before is not None:
            rec["update_ratio"] = [_norm(W - W0) / w0 if (w0 := _norm(W0)) > 0 else math.inf
                                   for W, W0 in zip(self.net.weights, self.before)]
        else:
            rec["update_ratio"] = []
        rec["dead_fraction"] = [_dead(self.peak[l]) if l in self.peak else None for l in range(1, self.net.n_layers)]
        self.before = None
        return rec


def _namespace(x):
    from .._array import array_namespace

    return array_namespace(x)


def _norm(x):
    """‖x‖_F; NumPy arrays directly (no namespace look-up: this runs per layer at every epoch's end)."""
    if isinstance(x, np.ndarray):
        return math.sqrt(float(np.vdot(x, x)))
    xp = _namespace(x)
    return math.sqrt(float(xp.sum(x * x)))


def _mean_abs(x):
    """mean |x|, NumPy arrays directly."""
    if isinstance(x, np.ndarray):
        return float(np.abs(x).mean())
    xp = _namespace(x)
    return float(xp.mean(xp.abs(x)))


def _dead(peak):
    """The fraction of units whose largest activation over the epoch was ≤ 0."""
    if isinstance(peak, np.ndarray):
        return float(np.count_nonzero(peak <= 0)) / peak.shape[0]
    xp = _namespace(peak)
    return float(xp.sum(xp.astype(peak <= 0, xp.float64))) / peak.shape[0]
