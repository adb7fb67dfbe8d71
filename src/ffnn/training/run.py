"""One training run: its settings, data, optimiser state, RNG, early stopping and History, and the
step that changes the weights.

One step on a minibatch B of the (reshuffled) data (Kolar and McCulloch's SGD with epochs and
minibatches; Xing Chao's and Gashler's Δw = −η ∂e/∂w for plain SGD):

    J_B = J(T_B, a[L]) + penalty(W)              (the loss term ``losses.Penalty``: λ₁ Σ|W| + λ₂/2 Σ W²)
    g   = ∂J_B/∂θ                                  (back-propagation, by the core or the NumPy fast path)
    g  ← g · min(1, c / ‖g‖)                      when clipping by global norm c
    θ  ← θ + optimiser.update(g, η₀ · s(t))       (s: the schedule's factor at step t)

Divergence is caught before anything changes: a non-finite J or bias gradient (Σ_n δ[l], which is
non-finite whenever any δ entry is) stops training with the weights of the last good step; an
update that itself overflows puts back the weights the epoch started from.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from .._array import is_torch_namespace
from . import fastpath as _fast
from .diagnostics import Diagnostics
from .state import restore_run, save_run
from .stopping import TrainingDiverged, TrainingInterrupted, _DeferredInterrupt

__all__ = ["Settings", "Data", "Run"]


@dataclass
class Settings:
    """Everything :func:`ffnn.train` was asked for, checked (see its docstring for each)."""

    loss: object
    optimizer: object
    schedule: object
    penalty: object
    epochs: int
    batch_size: int
    dropout: list | None
    clip_norm: float | None
    shuffle: bool
    stopper: object
    callbacks: tuple
    metric_fn: object
    metric_name: str
    checkpoint: object
    checkpoint_every: int
    progress: bool
    diagnostics: bool = True
    precision: object = None


@dataclass
class Data:
    """Checked training arrays X (N, S_0), T (N, S_L), sample weights (N,) or None, and the
    validation arrays or None."""

    X: object
    T: object
    w: object = None
    X_val: object = None
    T_val: object = None


class Run:
    """One training run of ``net`` on ``data`` with ``settings``; :meth:`fit` trains it."""

    def __init__(self, net, data, settings, rng, history):
        self.net, self.data, self.s, self.rng, self.history = net, data, settings, rng, history
        self.n = data.X.shape[0]
        self.batch_size = min(settings.batch_size, self.n)
        self.steps_per_epoch = math.ceil(self.n / self.batch_size)
        self.params = net.parameters()
        self.place = net._placement()  # the PyTorch device for index arrays, or None
        opt = settings.optimizer
        self.state = opt.state if _state_fits(opt.state, self.params) else opt.init(self.params)
        _state_to_params(self.state, self.params)
        self.best_params = None
        self.bar = None
        self.fast = _fast.supports(net, settings.loss, settings.dropout, data.w)
        self.fused = self.fast and _fast.can_fuse_sgd(opt, settings.penalty.l1, settings.clip_norm)
        self.workspaces = {}
        self.diag = Diagnostics(net) if settings.diagnostics else None
        self.watch_units = self.diag is not None and bool(self.diag.watched)  # any relu layer to watch
        self.device_run = None
        on_torch_path = False
        if not self.fast and is_torch_namespace(net.xp):
            from . import torch_fastpath as _torch_fast

            on_torch_path = _torch_fast.supports(net, settings.loss, data.w)
            precision = _torch_fast.check_precision(settings.precision, net, on_torch_path)
            if on_torch_path:  # the PyTorch fast path runs the epochs (see torch_fastpath.DeviceRun)
                self.device_run = _torch_fast.DeviceRun(self, precision)
                self.epoch = self.device_run.epoch
        if settings.precision not in (None, "highest") and not on_torch_path:
            raise ValueError(f"precision={settings.precision!r} needs PyTorch tensors and built-in activations "
                             f"and loss (the PyTorch fast path)")

    # --- the epochs --------------------------------------------------------------------------------

    def fit(self, resume=None):
        """Train from the first epoch (or the one after ``resume``'s) to the last; returns History."""
        s = self.s
        start_epoch = 1 if resume is None else restore_run(self, resume)
        if self.history.stopped_early:  # the checkpoint ends a run that early stopping finished
            start_epoch = s.epochs + 1
        if hasattr(s.schedule, "setup"):
            s.schedule.setup(self.steps_per_epoch, s.epochs * self.steps_per_epoch)
        if s.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=(s.epochs - start_epoch + 1) * self.steps_per_epoch, unit="batch",
                            dynamic_ncols=True)
        ctrl_c = _DeferredInterrupt()
        try:
            for epoch in range(start_epoch, s.epochs + 1):
                t0 = time.perf_counter()
                train_loss, lr = self.epoch(epoch, ctrl_c)
                stop_now = self.end_of_epoch(epoch, train_loss, lr, t0)
                if s.checkpoint is not None and (epoch % s.checkpoint_every == 0 or epoch == s.epochs or stop_now):
                    save_run(self, s.checkpoint, epoch)
                if stop_now:
                    break
        except KeyboardInterrupt:
            self.history.interrupted = True
            self.finish()
            raise TrainingInterrupted(self.history) from None
        finally:
            ctrl_c.restore()
            if self.bar is not None:
                self.bar.close()
        self.finish()
        return self.history

    def epoch(self, epoch, ctrl_c):
        """One pass over the data; returns (mean training loss, the last step's learning rate)."""
        # One shuffle per epoch; each batch gathers its rows (no copy of the whole data set).
        opt, schedule = self.s.optimizer, self.s.schedule
        order = self.rng.permutation(self.n) if self.s.shuffle else np.arange(self.n)
        total, lr = 0.0, opt.lr
        if self.diag is not None:
            self.diag.start_epoch()
        start_params = [self.net.xp.asarray(p, copy=True) for p in self.params]  # for an update that overflows
        for start in range(0, self.n, self.batch_size):
            idx = order[start:start + self.batch_size]
            factor = float(schedule(self.state["step"]))
            if not (factor >= 0 and math.isfinite(factor)):
                raise ValueError(f"the learning-rate schedule returned {factor!r} at step {self.state['step']}; "
                                 f"it must return a finite non-negative factor")
            lr = opt.lr * factor
            last = start + self.batch_size >= self.n
            if last and self.diag is not None:
                self.diag.before_last_step()
            # Overflow shows up as a non-finite loss or gradient, which becomes TrainingDiverged.
            try:
                with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                    J = self.step(idx, lr, last)
            except TrainingDiverged:
                self._keep_finite(start_params)
                raise
            total += J * len(idx)
            ctrl_c.check()  # Ctrl-C takes effect here, between steps, never halfway through an update
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix(epoch=epoch, loss=f"{J:.4g}", refresh=False)
        self._keep_finite(start_params, check=True)
        return total / self.n, lr

    def _keep_finite(self, start_params, check=False):
        """When an update itself overflowed (the checks before each update cannot see that), put back
        the weights the epoch started from; with ``check``, then raise TrainingDiverged."""
        xp = self.net.xp
        if all(bool(xp.all(xp.isfinite(p))) for p in self.params):
            return
        for p, p0 in zip(self.params, start_params):
            p[...] = p0
        if check:
            raise TrainingDiverged(_diverged("an update"))

    # --- one step ----------------------------------------------------------------------------------

    def step(self, idx, lr, last=False):
        """One update on the rows ``idx`` with learning rate η = ``lr``; returns J_B (with penalty).

        ``last``: the epoch's last step, whose gradients the diagnostics record.
        """
        if not self.fast:
            return self._core_step(idx, lr, last)
        ws = self.workspaces.get(len(idx))
        if ws is None:
            ws = self.workspaces[len(idx)] = _fast.Workspace(self.net, len(idx), self.s.loss)
        ws.load(self.data.X, self.data.T, idx)
        if self.fused:
            J = self._fused_sgd_step(ws, lr)
        else:
            J = ws.step(self.net)
            if last and self.diag is not None:
                self.diag.gradients(*ws.last_gradients())
            J = self._update(J, ws.gW, ws.gb, lr)
        if self.watch_units:
            self.diag.hidden_activations(ws.h[1:-1])
        if last and self.fused and self.diag is not None:
            self.diag.gradients(*ws.last_gradients())
        return J

    def _core_step(self, idx, lr, last=False):
        """Back-propagation through the array-namespace core (``Network.forward``/``backward``)."""
        net, loss, data, xp = self.net, self.s.loss, self.data, self.net.xp
        ii = xp.asarray(idx) if self.place is None else xp.asarray(idx, device=self.place)
        Xb, Tb = xp.take(data.X, ii, axis=0), xp.take(data.T, ii, axis=0)
        wb = None if data.w is None else xp.take(data.w, ii, axis=0)
        trace = net.forward(Xb, dropout=self.s.dropout, rng=self.rng, checked=True)
        J = float(net.trace_loss(trace, Tb, loss, wb))
        g = net.backward(trace, Tb, loss, sample_weight=wb, input_gradient=False, checked=True)
        if self.watch_units:
            self.diag.hidden_activations(trace.a[1:-1])
        if last and self.diag is not None:
            self.diag.gradients(list(g.weights), list(g.deltas))
        return self._update(J, list(g.weights), list(g.biases), lr)

    def _fused_sgd_step(self, ws, lr):
        """Plain SGD with the update folded into the products (see ``fastpath.Workspace.sgd_step``)."""
        extra = self.s.penalty.value(self.net.weights)  # of the weights this step starts from
        J = ws.sgd_step(self.net, lr, self.s.penalty.l2)
        if J is None or not math.isfinite(J + extra):
            raise TrainingDiverged(_diverged("the loss or a gradient"))
        self.state["step"] += 1
        return J + extra

    def _update(self, J, dW, db, lr):
        """Add the penalty to J and ∂J/∂W, clip, check for divergence, and apply the optimiser."""
        xp, penalty = self.net.xp, self.s.penalty
        if penalty:
            J += penalty.value(self.net.weights)
            dW = penalty.gradients(self.net.weights, dW)
        grads = [g for pair in zip(dW, db) for g in pair]  # [dW1, db1, dW2, …] like net.parameters()
        if not math.isfinite(J):
            raise TrainingDiverged(_diverged("the loss"))
        if not all(bool(xp.all(xp.isfinite(g))) for g in db):
            raise TrainingDiverged(_diverged("a gradient"))
        c = self.s.clip_norm
        if c is not None:
            norm = math.sqrt(sum(float(xp.sum(g * g)) for g in grads))
            if norm > c:
                grads = [g * (c / norm) for g in grads]
        self.s.optimizer.apply(grads, self.state, self.params, lr)
        return J

    # --- after each epoch --------------------------------------------------------------------------

    def end_of_epoch(self, epoch, train_loss, lr, t0):
        """Validate, record, schedule, early-stop and call back; True when training should stop."""
        net, s, history = self.net, self.s, self.history
        val_loss, val_metric = self.validate()
        history.append(epoch=epoch, loss=train_loss, val_loss=val_loss, val_metric=val_metric, lr=lr,
                       time=time.perf_counter() - t0, **(self.diag.epoch_record() if self.diag is not None else {}))
        monitored = train_loss if val_loss is None else val_loss
        if hasattr(s.schedule, "epoch_end"):
            s.schedule.epoch_end(monitored)
        stop_now = False
        if s.stopper is not None:
            if s.stopper.update(epoch, monitored):
                self.best_params = [net.xp.asarray(p, copy=True) for p in self.params]
            stop_now = s.stopper.should_stop
        if self.bar is not None:
            self.bar.write(_epoch_line(history), file=sys.stderr)
        if self.call_back():
            stop_now = True
        history.stopped_early = history.stopped_early or stop_now
        return stop_now

    def validate(self):
        """(validation loss, validation metric) of the current weights, or (None, None) without
        validation data."""
        net, s, data = self.net, self.s, self.data
        if data.X_val is None:
            return None, None
        trace = net.forward(data.X_val, checked=True)
        return float(net.trace_loss(trace, data.T_val, s.loss)), float(s.metric_fn(data.T_val, trace.output))

    def call_back(self):
        """Call every callback (each one, in order); True when one of them asks to stop."""
        stop = False
        for cb in self.s.callbacks:
            if cb(self.net, self.history) is True:
                stop = True
        return stop

    def finish(self):
        """Keep the optimiser's state for a later call; restore early stopping's best weights."""
        self.s.optimizer.state = self.state
        if self.s.stopper is not None and self.best_params is not None:
            for p, best in zip(self.params, self.best_params):
                p[...] = best
            self.history.best_epoch = self.s.stopper.best_epoch


def _diverged(what):
    return (f"training diverged: {what} became NaN or infinite; the network keeps its last finite weights. "
            f"Try a smaller learning rate, scaled inputs (e.g. standardised features), or clip_norm")


def _epoch_line(h):
    i = len(h) - 1
    parts = [f"epoch {h.epoch[i]}", f"loss {h.loss[i]:.5g}"]
    if h.val_loss[i] is not None:
        parts += [f"val_loss {h.val_loss[i]:.5g}", f"val_{h.metric} {h.val_metric[i]:.4f}"]
    parts += [f"lr {h.lr[i]:.3g}", f"{h.time[i]:.2f}s"]
    return "  ".join(parts)


def _state_fits(state, params):
    if not state:
        return False
    for key, values in state.items():
        if key != "step" and (len(values) != len(params) or
                              any(tuple(v.shape) != tuple(p.shape) for v, p in zip(values, params))):
            return False
    return True



def _state_to_params(state, params):
    """Move a continued optimiser state to where the parameters now live (another device or array
    library: a network moved with ``Network.to`` between two ``train`` calls with one optimiser)."""
    from .._array import array_namespace, asarray_on, device_of, to_numpy

    p0 = params[0]
    xp = array_namespace(p0)
    place = device_of(p0) if is_torch_namespace(xp) else None
    for key, values in state.items():
        if key == "step":
            continue
        for i, v in enumerate(values):
            if type(v) is not type(p0) or device_of(v) != device_of(p0):
                values[i] = asarray_on(xp, np.array(to_numpy(v)), p0.dtype, place)
