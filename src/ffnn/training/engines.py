"""Gradient engines: what differs between the paths that train a network, behind one small interface.

The epoch driver (:class:`ffnn.training.run.Run`) owns everything a path shares — the batches, the
schedule's factor and its check, divergence and the last-finite-weights rule, Ctrl-C, callbacks,
early stopping, checkpoints and the History. An engine computes and applies the steps:

``step(idx, lr, state, last)`` → J_B
    One update on the rows ``idx`` of the epoch's order with learning rate η = ``lr``: J and the
    gradients (back-propagation), then :meth:`Engine.update` — the penalty's term of J, the divergence
    check, and the update chain (:mod:`ffnn.updates`) on ``state`` — or a fused update that gives the
    same numbers. ``last``: the epoch's last step, whose gradients the diagnostics record.
``run(batches, lrs, state, last)`` → Σ J_B·|B|
    Several consecutive steps in one call (``steps_per_call`` of them); the default loops over
    :meth:`step`, and an engine that compiles its inner loop overrides it.
``deferred``
    True when divergence is recorded on the device and known only at the end of the epoch
    (:meth:`read_total`); the driver then replays the steps taken with ``deferred`` False, checking each.
``order``, ``start_epoch``, ``check_interrupt``, ``agree``, ``on_interrupt``, ``is_root``
    The epoch's order of rows, and the decisions every process of a sharded run must share (the
    identity for one process).

The engines here: :class:`NumpyEngine` (the NumPy fast path, :mod:`ffnn.training.numpy_workspace`),
:class:`CoreEngine` (``Network.forward``/``backward`` in any array namespace); elsewhere the compiled
loop (:class:`ffnn.training.compiled_engine.CompiledEngine`, many steps per call), the PyTorch fast
path (:class:`ffnn.training.torch_engine.TorchEngine`) and MPI shards
(:class:`ffnn.training.distributed.ShardedEngine`).
"""

from __future__ import annotations

import math

import numpy as np

from . import numpy_workspace as _fast
from .stopping import TrainingDiverged

__all__ = ["Engine", "NumpyEngine", "CoreEngine", "NamespaceRows", "diverged_message", "interleave"]


def diverged_message(what):
    return (f"training diverged: {what} became NaN or infinite; the network keeps its last finite weights. "
            f"Try a smaller learning rate, scaled inputs (e.g. standardised features), or clip_norm")


def interleave(dW, db):
    """[dW1, db1, dW2, db2, …]: the gradients in the order of ``Network.parameters()``."""
    return [g for pair in zip(dW, db) for g in pair]


class NamespaceRows:
    """Training arrays of any array namespace (on the network's device) as a source of rows: the
    epoch's order drawn on the host, each batch gathered with ``xp.take`` where the arrays live."""

    def __init__(self, net, X, T, w=None):
        self.xp, self.place = net.xp, net.placement()
        self.X, self.T, self.w = X, T, w
        self.n = X.shape[0]

    def order(self, rng, shuffle):
        return rng.permutation(self.n) if shuffle else np.arange(self.n)

    def _indices(self, idx):
        xp = self.xp
        return xp.asarray(idx) if self.place is None else xp.asarray(idx, device=self.place)

    def batch(self, idx):
        ii = self._indices(idx)
        return self.xp.take(self.X, ii, axis=0), self.xp.take(self.T, ii, axis=0)

    def weights(self, idx):
        return None if self.w is None else self.xp.take(self.w, self._indices(idx), axis=0)


class Engine:
    """The interface (see the module docstring) and what every engine shares: the network, the loss,
    the rows, the update chain and the diagnostics, and the one definition of an unfused update."""

    deferred = False
    steps_per_call = 1
    is_root = True
    name = "engine"

    def __init__(self, net, loss, rows, chain, diag=None):
        self.net, self.loss, self.rows, self.chain, self.diag = net, loss, rows, chain, diag
        self.watch_units = diag is not None and bool(diag.watched)  # any relu layer to watch

    @property
    def params(self):
        """The network's parameters now, ``[W1, b1, …]`` (a callback may rebind ``net.weights[l]``)."""
        return self.net.parameters()

    # --- the epoch ----------------------------------------------------------------------------------

    def order(self, rng, shuffle):
        """The epoch's order of the N rows (one shuffle per epoch, drawn from the run's Generator)."""
        return self.rows.order(rng, shuffle)

    def start_epoch(self, order, ctrl_c, state=None):
        """Called once the epoch's order is drawn, before its first step (``state``: the optimiser's)."""

    def run(self, batches, lrs, state, last):
        """Consecutive steps on the index arrays ``batches`` with learning rates ``lrs``; ``last``:
        the final one is the epoch's last step. Returns Σ J_B·|B| (0 for a deferred engine)."""
        total = 0.0
        final = len(batches) - 1
        for k, (idx, lr) in enumerate(zip(batches, lrs)):
            total += self.step(idx, lr, state, last and k == final) * len(idx)
        return total

    def step(self, idx, lr, state, last):
        if last and self.diag is not None:
            self.diag.before_last_step()
        J, dW, db = self.compute(idx, last)
        return self.update(J, dW, db, lr, state)

    def compute(self, idx, last):  # pragma: no cover - abstract
        """(J, [∂J/∂W[l]], [∂J/∂b[l]]) of the rows ``idx`` with the current weights, recording the
        diagnostics' per-step measures (and, when ``last``, the gradients)."""
        raise NotImplementedError

    def update(self, J, dW, db, lr, state):
        """J_B = J + penalty; stop on a non-finite J_B or bias gradient (Σ_n δ[l], non-finite whenever
        any δ entry is) before anything changes; else the chain's update. Returns J_B."""
        xp, chain = self.net.xp, self.chain
        J += chain.value(self.net.weights)
        if not math.isfinite(J):
            raise TrainingDiverged(diverged_message("the loss"))
        if not all(bool(xp.all(xp.isfinite(g))) for g in db):
            raise TrainingDiverged(diverged_message("a gradient"))
        chain.apply(interleave(dW, db), state, self.params, lr)
        return J

    def read_total(self):
        """(Σ J_B·|B| of the epoch, whether a step diverged) for a deferred engine; None otherwise."""
        return None

    def end_epoch(self, lr):
        """After the epoch's last step (a deferred engine hands over its diagnostics here)."""

    # --- decisions every process shares (one process: the identity) ----------------------------------

    def check_interrupt(self, ctrl_c):
        """Between steps: a pending Ctrl-C stops training here."""
        ctrl_c.check()

    def agree(self, fn):
        """``fn()``'s result, the same on every process."""
        return fn()

    def on_interrupt(self):
        """Training was interrupted (after the run kept its completed updates)."""


class NumpyEngine(Engine):
    """The NumPy fast path: buffers reused every step (:class:`ffnn.training.numpy_workspace.Workspace`),
    kernels asked of the activation and loss objects, and plain SGD folded into the products."""

    name = "numpy"

    def __init__(self, net, loss, rows, chain, diag=None):
        super().__init__(net, loss, rows, chain, diag)
        self.workspaces = {}
        self.l2 = chain.plain_sgd_decay()
        self.fused = self.l2 is not None

    def workspace(self, m):
        ws = self.workspaces.get(m)
        if ws is None:
            ws = self.workspaces[m] = _fast.Workspace(self.net, m, self.loss)
        return ws

    def compute(self, idx, last):
        ws = self.workspace(self.rows.count(idx) if isinstance(idx, slice) else len(idx))
        self.rows.gather(idx, ws.h[0], ws.t)
        J = ws.step(self.net)
        if last and self.diag is not None:
            self.diag.gradients(*ws.last_gradients())
        if self.watch_units:
            self.diag.hidden_activations(ws.h)
        return J, ws.dW, ws.db

    def step(self, idx, lr, state, last):
        if not self.fused:
            return super().step(idx, lr, state, last)
        # Plain SGD folded into the products (numpy_workspace.Workspace.sgd_step), which checks J and Σ_n δ[l]
        # before changing anything.
        diag = self.diag
        if last and diag is not None:
            diag.before_last_step()
        ws = self.workspace(len(idx))
        self.rows.gather(idx, ws.h[0], ws.t)
        extra = self.chain.value(self.net.weights)  # of the weights this step starts from
        J = ws.sgd_step(self.net, lr, self.l2, extra)  # None, with nothing changed, when J_B is not finite
        if J is None:
            raise TrainingDiverged(diverged_message("the loss or a gradient"))
        state["step"] += 1
        if self.watch_units:
            diag.hidden_activations(ws.h)
        if last and diag is not None:
            diag.gradients(*ws.last_gradients())
        return J + extra


class CoreEngine(Engine):
    """Back-propagation through the array-namespace core (``Network.forward``/``backward``): any
    namespace and device, dropout, sample weights, users' activations and losses."""

    name = "core"

    def __init__(self, net, loss, rows, chain, diag=None, dropout=None, rng=None):
        super().__init__(net, loss, rows, chain, diag)
        self.dropout, self.rng = dropout, rng

    def compute(self, idx, last):
        net, loss = self.net, self.loss
        Xb, Tb = self.rows.batch(idx)
        wb = self.rows.weights(idx)
        trace = net.forward(Xb, dropout=self.dropout, rng=self.rng, checked=True)
        J = float(net.trace_loss(trace, Tb, loss, wb))
        g = net.backward(trace, Tb, loss, sample_weight=wb, input_gradient=False, checked=True)
        if self.watch_units:
            self.diag.hidden_activations(trace.a)
        if last and self.diag is not None:
            self.diag.gradients(list(g.weights), list(g.deltas))
        return J, list(g.weights), list(g.biases)


def numpy_engine_for(net, loss, rows, chain, diag=None, dropout=None, rng=None, sample_weight=None):
    """The NumPy fast path where it computes this network's step, else the core."""
    if _fast.supports(net, loss, dropout, sample_weight):
        return NumpyEngine(net, loss, rows, chain, diag)
    return CoreEngine(net, loss, rows, chain, diag, dropout, rng)

