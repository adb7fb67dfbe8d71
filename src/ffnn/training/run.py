"""One training run: its data, optimiser state, RNG, early stopping and History, and its steps."""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from .._array import resolve_dtype
from ..history import History
from . import fastpath as _fast
from .state import load_checkpoint, optimizer_state_from, save_checkpoint
from .steps import apply_update, core_step, fused_sgd_step


class _Run:
    """One training run's moving parts: data, optimiser state, RNG, early stopping, History."""

    def __init__(self, net, X, T, w, *, loss, opt, sched, stopper, rng, batch_size, l1, l2, clip_norm, rates,
                 shuffle):
        self.net, self.X, self.T, self.w = net, X, T, w
        self.loss, self.opt, self.sched, self.stopper, self.rng = loss, opt, sched, stopper, rng
        self.l1, self.l2, self.clip_norm, self.rates, self.shuffle = l1, l2, clip_norm, rates, shuffle
        self.n = X.shape[0]
        self.batch_size = min(batch_size, self.n)
        self.steps_per_epoch = math.ceil(self.n / self.batch_size)
        self.params = net.parameters()
        self.state = opt.state if _state_fits(opt.state, self.params) else opt.init(self.params)
        self.best_params = None
        self.history = None
        self.bar = None
        self.fast = _fast.supports(net, loss, rates, w)
        self.fused = self.fast and _fast.can_fuse_sgd(opt, l1, clip_norm)
        self.workspaces = {}

    def restore(self, path):
        """Continue the run saved at ``path``; returns the first epoch still to train."""
        net, xp, loss, opt = self.net, self.net.xp, self.loss, self.opt
        arrays, meta = load_checkpoint(path, net)
        if meta.get("loss") != loss.name:
            raise ValueError(f"checkpoint file {str(path)!r} was trained with loss {meta.get('loss')!r}, "
                             f"not {loss.name!r}")
        if meta["optimizer"]["name"] != opt.name:
            raise ValueError(f"checkpoint file {str(path)!r} was trained with optimizer "
                             f"{meta['optimizer']['name']!r}, not {opt.name!r}")
        d = resolve_dtype(xp, net.dtype)
        for l in range(1, net.n_layers + 1):
            net.weights[l][...] = xp.asarray(np.asarray(arrays[f"W.{l}"]), dtype=d)
            net.biases[l][...] = xp.asarray(np.asarray(arrays[f"b.{l}"]), dtype=d)
        self.state = optimizer_state_from(arrays, meta, xp, d)
        self.rng.bit_generator.state = meta["rng"]
        if hasattr(self.sched, "load_state") and meta.get("schedule"):
            self.sched.load_state(meta["schedule"])
        if self.stopper is not None and meta.get("stopper"):
            self.stopper.load_state(meta["stopper"])
            if "best.0" in arrays:
                self.best_params = [xp.asarray(np.asarray(arrays[f"best.{i}"]), dtype=d)
                                    for i in range(len(self.params))]
        self.history = History.from_dict(meta["history"])
        return int(meta["epoch"]) + 1

    def epoch(self, epoch, ctrl_c):
        """One pass over the data; returns (mean training loss, the last step's learning rate)."""
        # One shuffle per epoch; each batch gathers its rows (no copy of the whole data set).
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        total, lr = 0.0, self.opt.lr
        for start in range(0, self.n, self.batch_size):
            idx = order[start:start + self.batch_size]
            lr = self.opt.lr * float(self.sched(self.state["step"]))
            # Overflow shows up as a non-finite loss or gradient, which becomes TrainingDiverged.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                J = self.step(idx, lr)
            total += J * len(idx)
            ctrl_c.check()  # Ctrl-C takes effect here, between steps, never halfway through an update
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix(epoch=epoch, loss=f"{J:.4g}", refresh=False)
        return total / self.n, lr

    def step(self, idx, lr):
        """One update on the rows ``idx``: the NumPy fast path when it applies, else the core."""
        net, opt, state, loss = self.net, self.opt, self.state, self.loss
        if self.fast:
            ws = self.workspaces.get(len(idx))
            if ws is None:
                ws = self.workspaces[len(idx)] = _fast.Workspace(net, len(idx))
            ws.load(self.X, self.T, idx)
            if self.fused:
                return fused_sgd_step(net, ws, loss, state, lr, self.l2)
            J = ws.step(net, loss)
            return apply_update(net, J, ws.gW, ws.gb, opt, state, self.params, lr, self.l1, self.l2, self.clip_norm)
        xp = net.xp
        ii = xp.asarray(idx)
        Xb, Tb = xp.take(self.X, ii, axis=0), xp.take(self.T, ii, axis=0)
        wb = None if self.w is None else xp.take(self.w, ii, axis=0)
        return core_step(net, Xb, Tb, wb, loss, opt, state, self.params, lr, self.l1, self.l2, self.clip_norm,
                     self.rates, self.rng)

    def end_of_epoch(self, epoch, train_loss, lr, t0, Xv, Tv, metric_fn, callbacks):
        """Validate, record, schedule, early-stop and call back; True when training should stop."""
        net, history, stopper = self.net, self.history, self.stopper
        val_loss = val_metric = None
        if Xv is not None:
            tr = net.forward(Xv, checked=True)
            val_loss = float(net.trace_loss(tr, Tv, self.loss))
            val_metric = float(metric_fn(Tv, tr.output))
        history.append(epoch=epoch, loss=train_loss, val_loss=val_loss, val_metric=val_metric, lr=lr,
                       time=time.perf_counter() - t0)
        monitored = train_loss if val_loss is None else val_loss
        if hasattr(self.sched, "epoch_end"):
            self.sched.epoch_end(monitored)
        stop_now = False
        if stopper is not None:
            if stopper.update(epoch, monitored):
                self.best_params = [net.xp.asarray(p, copy=True) for p in self.params]
            stop_now = stopper.should_stop
        if self.bar is not None:
            self.bar.write(_epoch_line(history), file=sys.stderr)
        for cb in callbacks:
            if cb(net, history) is True:
                stop_now = True
        history.stopped_early = history.stopped_early or stop_now
        return stop_now

    def save(self, path, epoch):
        sched, stopper = self.sched, self.stopper
        save_checkpoint(path, self.net, epoch=epoch, optimizer=self.opt, opt_state=self.state, rng=self.rng,
                        schedule_state=sched.state() if hasattr(sched, "state") else None,
                        stopper_state=stopper.state() if stopper is not None else None,
                        best_params=self.best_params, history=self.history, loss_name=self.loss.name)

    def finish(self):
        """Keep the optimiser's state for a later call; restore early stopping's best weights."""
        self.opt.state = self.state
        if self.stopper is not None and self.best_params is not None:
            for p, best in zip(self.params, self.best_params):
                p[...] = best
            self.history.best_epoch = self.stopper.best_epoch


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
