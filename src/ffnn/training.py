"""Training by minibatch stochastic gradient descent, as seed 003 lists it — epochs, minibatches, a
learning-rate schedule, Nesterov momentum, L1/L2 — and what users expect beyond.

One step on a minibatch B of the (reshuffled) data, with penalties on the weights only:

    J_B = J(T_B, a[L]) + λ₁ Σ_l Σ|W[l]| + (λ₂/2) Σ_l Σ W[l]²
    g   = ∂J_B/∂θ           (back-propagation; + λ₁ sign(W) + λ₂ W for the weights)
    g  ← g · min(1, c / ‖g‖)    when clipping by global norm c
    θ  ← θ + optimiser.update(g, η₀ · s(t))    (seeds 001/002: Δw = −η ∂e/∂w for plain SGD)
"""

from __future__ import annotations

import math
import sys
import time
from numbers import Integral

import numpy as np

from . import fastpath as _fast
from . import losses as _loss
from ._array import resolve_dtype, to_numpy
from ._files import check_writable
from .checkpoint import load_checkpoint, optimizer_state_from, save_checkpoint
from .history import History
from .metrics import accuracy, r2
from .optim import get_optimizer
from .schedules import get_schedule
from .steps import apply_update, core_step, fused_sgd_step
from .stopping import EarlyStopping, TrainingDiverged, TrainingInterrupted, _DeferredInterrupt

__all__ = ["train", "EarlyStopping", "TrainingDiverged", "TrainingInterrupted"]


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _non_negative(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def _dropout_rates(dropout, n_hidden):
    rates = list(dropout) if isinstance(dropout, (list, tuple)) else [dropout] * n_hidden
    if len(rates) != n_hidden:
        raise ValueError(f"dropout has {len(rates)} rates; the network has {n_hidden} hidden layers")
    for r in rates:
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0 <= r < 1:
            raise ValueError(f"dropout rates must be in [0, 1), got {r!r}")
    return [float(r) for r in rates] if any(r > 0 for r in rates) else None


def _one_hot_labels(T):
    """Class indices when T is one-hot (several columns of 0/1, one 1 per row), else None."""
    Tn = to_numpy(T)
    if Tn.shape[1] > 1 and bool(np.all((Tn == 0) | (Tn == 1))) and bool(np.all(Tn.sum(axis=1) == 1)):
        return np.argmax(Tn, axis=1)
    return None


def split_indices(n, fraction, rng, labels=None):
    """Index arrays (kept, held out) holding out ``fraction`` of n samples, stratified by ``labels``
    (each class keeps its share) when given."""
    if labels is not None:
        held = []
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            held.extend(idx[: int(round(fraction * len(idx)))])
        held = np.sort(np.asarray(held, dtype=np.int64))
    else:
        held = np.sort(rng.permutation(n)[: int(round(fraction * n))])
    if len(held) == 0 or len(held) == n:
        raise ValueError(f"holding out a fraction {fraction} of {n} samples leaves "
                         f"{'nothing held out' if len(held) == 0 else 'nothing to train on'}")
    return np.setdiff1d(np.arange(n), held), held


def _split(n, fraction, T, rng):
    """Indices (train, validation); stratified by class when T is one-hot."""
    return split_indices(n, fraction, rng, None if T is None else _one_hot_labels(T))


def _default_metric(net, loss):
    out = net.activations[-1].name
    if loss.name in ("cross_entropy", "binary_cross_entropy") or out == "softmax":
        return "accuracy"
    return "r2"


def train(net, X, T, *, loss, optimizer="sgd", epochs=10, batch_size=32, l1=0.0, l2=0.0, schedule=None,
          validation=None, early_stopping=None, shuffle=True, seed=None, callbacks=(), progress=False,
          checkpoint=None, checkpoint_every=1, resume=None, dropout=0.0, clip_norm=None, metric=None,
          sample_weight=None):
    """Train ``net`` in place by minibatch gradient descent; returns a :class:`History`.

    Parameters
    ----------
    net : Network
    X : array (N, S_0);  T : array (N, S_L) (or (N,) for one output)
    loss : str or Loss
    optimizer : str or Optimizer
        ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"`` (defaults) or an object such as
        ``ffnn.SGD(0.1, momentum=0.9, nesterov=True)``. Passing the same object to a second call
        continues its state (momentum buffers, Adam moments).
    epochs : int
        Total number of passes over the data (with ``resume``, the run's total, not the remainder).
    batch_size : int
        Minibatch size; 1 is online learning (seed 002's per-pattern updates). Capped at N.
    l1, l2 : float
        Penalties λ₁ Σ|W| + (λ₂/2) Σ W² on the weights (not the biases), in loss and gradient.
    schedule : None, str or callable
        Factor s(t) on the base learning rate (see ``ffnn.schedules``).
    validation : (X_val, T_val) or float
        Held-out data, or the fraction of (X, T) to hold out (stratified when T is one-hot).
    early_stopping : int, EarlyStopping or None
        Patience in epochs (or an EarlyStopping with min_delta); the best weights are restored.
    shuffle : bool
        Reshuffle once per epoch, from a Generator built from ``seed``.
    seed : int, Generator or None
        Source of the shuffles, the validation split and dropout. Same seed, data and machine: the
        same weights bit for bit.
    callbacks : sequence of callables
        ``callback(net, history)`` after each epoch; returning True stops training.
    progress : bool
        A tqdm progress bar over batches with the running loss, and each epoch's metrics.
    checkpoint : path, optional
        Written exactly there, atomically, every ``checkpoint_every`` epochs and at the end.
    resume : path, optional
        Continue the run saved in this checkpoint (same network sizes).
    dropout : float or list of float
        Inverted dropout on the hidden layers during training (``predict`` never drops).
    clip_norm : float, optional
        Rescale the gradient to this global L2 norm when it is larger.
    metric : "accuracy", "r2", "mse", "mae" or callable(T, A), optional
        Validation metric; default accuracy for classification losses, R² otherwise.
    sample_weight : array (N,), optional
        Per-sample weights in the loss (built-in losses only).

    Raises
    ------
    TrainingDiverged
        When the loss or an update becomes non-finite; ``net`` keeps its last finite weights.
    TrainingInterrupted
        On Ctrl-C, after the current step: the network keeps every completed update (early stopping's
        best weights, when it has them); a checkpoint keeps the last completed epoch, so that a
        resumed run stays exact. A second Ctrl-C interrupts at once.
    """
    from .metrics import get_metric

    # --- check everything before anything changes --------------------------------------------------
    loss = _loss.get_loss(loss)
    opt = get_optimizer(optimizer)
    sched = get_schedule(schedule)
    epochs = _positive_int("epochs", epochs)
    batch_size = _positive_int("batch_size", batch_size)
    checkpoint_every = _positive_int("checkpoint_every", checkpoint_every)
    l1, l2 = _non_negative("l1", l1), _non_negative("l2", l2)
    if clip_norm is not None and (not isinstance(clip_norm, (int, float)) or not clip_norm > 0
                                  or not math.isfinite(clip_norm)):
        raise ValueError(f"clip_norm must be a positive number, got {clip_norm!r}")
    rates = _dropout_rates(dropout, net.n_layers - 1)
    stopper = None
    if early_stopping is not None and early_stopping is not False:
        stopper = early_stopping if isinstance(early_stopping, EarlyStopping) else EarlyStopping(early_stopping)
        stopper = EarlyStopping(stopper.patience, stopper.min_delta)  # fresh state for this run
    if validation is not None and not isinstance(validation, (tuple, list)):
        if isinstance(validation, bool) or not isinstance(validation, (int, float)) or not 0 < validation < 1:
            raise ValueError(f"validation fraction must be in (0, 1), got {validation!r}")
    if checkpoint is not None:
        check_writable(checkpoint, "checkpoint")
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables, got {cb!r}")
    metric_name = metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")
    metric_fn = get_metric(metric) if metric is not None else None

    rng = _generator(seed)
    X, T, w, Xv, Tv, metric_name, metric_fn = _prepare_data(net, X, T, sample_weight, validation, loss,
                                                            metric_name, metric_fn, rng)
    run = _Run(net, X, T, w, loss=loss, opt=opt, sched=sched, stopper=stopper, rng=rng, batch_size=batch_size,
               l1=l1, l2=l2, clip_norm=clip_norm, rates=rates, shuffle=shuffle)
    run.history = History(metric=metric_name if Xv is not None else "", loss_includes_penalty=(l1 > 0 or l2 > 0))
    start_epoch = 1 if resume is None else run.restore(resume)
    if hasattr(sched, "setup"):
        sched.setup(run.steps_per_epoch, epochs * run.steps_per_epoch)
    if progress:
        from tqdm.auto import tqdm

        run.bar = tqdm(total=(epochs - start_epoch + 1) * run.steps_per_epoch, unit="batch", dynamic_ncols=True)
    ctrl_c = _DeferredInterrupt()
    try:
        for epoch in range(start_epoch, epochs + 1):
            t0 = time.perf_counter()
            train_loss, lr = run.epoch(epoch, ctrl_c)
            stop_now = run.end_of_epoch(epoch, train_loss, lr, t0, Xv, Tv, metric_fn, callbacks)
            if checkpoint is not None and (epoch % checkpoint_every == 0 or epoch == epochs or stop_now):
                run.save(checkpoint, epoch)
            if stop_now:
                break
    except KeyboardInterrupt:
        run.history.interrupted = True
        run.finish()
        raise TrainingInterrupted(run.history) from None
    finally:
        ctrl_c.restore()
        if run.bar is not None:
            run.bar.close()
    run.finish()
    return run.history


def _generator(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _prepare_data(net, X, T, sample_weight, validation, loss, metric_name, metric_fn, rng):
    """Checked arrays, the validation split, and the validation metric."""
    xp = net.xp
    X = net._as_input(X)
    T = net._as_target(T, X.shape[0])
    w = None if sample_weight is None else net._as_weights(sample_weight, X.shape[0])
    if w is not None and not loss.weighted:
        raise TypeError(f"loss {loss.name!r} does not take sample weights")
    if validation is None:
        Xv = Tv = None
    elif isinstance(validation, (tuple, list)):
        if len(validation) != 2:
            raise ValueError("validation must be (X_val, T_val) or a fraction in (0, 1)")
        Xv = _val_input(net, validation[0])
        Tv = net._as_target(validation[1], Xv.shape[0])
    else:
        tr_idx, va_idx = _split(X.shape[0], float(validation), T, rng)
        Xv, Tv = xp.take(X, xp.asarray(va_idx), axis=0), xp.take(T, xp.asarray(va_idx), axis=0)
        X, T = xp.take(X, xp.asarray(tr_idx), axis=0), xp.take(T, xp.asarray(tr_idx), axis=0)
        if w is not None:
            w = xp.take(w, xp.asarray(tr_idx), axis=0)
    if metric_fn is None:
        metric_name = _default_metric(net, loss)
        metric_fn = accuracy if metric_name == "accuracy" else r2
    return X, T, w, Xv, Tv, metric_name, metric_fn


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
            tr = net._forward(Xv)
            val_loss = float(net._loss_value(tr, Tv, self.loss))
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


def _val_input(net, Xv):
    try:
        return net._as_input(Xv)
    except ValueError as exc:
        raise ValueError(f"validation data: {exc}") from None


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
