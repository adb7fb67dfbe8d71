"""The one epoch driver: every path that trains a network — the NumPy fast path, the array-namespace
core, PyTorch tensors, rows read from disk, MPI shards — runs this loop; what differs sits behind a
gradient engine (:mod:`ffnn.training.engines`).

One step on a minibatch B of the (reshuffled) data (Kolar and McCulloch's SGD with epochs and
minibatches; Xing Chao's and Gashler's Δw = −η ∂e/∂w for plain SGD):

    J_B = J(T_B, a[L]) + penalty(W)              (``ffnn.updates.Penalty``: λ₁ Σ|W| + λ₂/2 Σ W²)
    g   = ∂J_B/∂θ                                  (back-propagation, by the engine)
    g  ← g · min(1, c / ‖g‖)                      when clipping by global norm c
    θ  ← θ + optimiser.update(g, η₀ · s(t))       (s: the schedule's factor at step t)

(the update chain of :mod:`ffnn.updates`). The driver owns, for every engine alike: the epoch's
order and batches; the schedule's factor, which must be finite and non-negative; divergence —
a non-finite J or bias gradient stops training with the weights of the last good step, and an
update that itself overflows puts back the weights the epoch started from (an engine that checks
only at the end of the epoch has the epoch replayed from its start, checking every step); Ctrl-C
between steps; validation, the History, schedules' and early stopping's epoch ends, callbacks and
checkpoints.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from .. import updates
from .._array import array_namespace, asarray_on, device_of, is_numpy_namespace, is_torch_namespace, to_numpy
from ..datasets import ArrayRows, is_source
from . import compiled_engine as _compiled
from .diagnostics import Diagnostics
from .engines import CoreEngine, NamespaceRows, diverged_message, numpy_engine_for
from .options import precision_for
from .state import restore_run, save_run
from .stopping import TrainingDiverged, TrainingInterrupted, DeferredInterrupt

__all__ = ["Data", "Run", "Batches", "keep_state_with"]


@dataclass
class Data:
    """Checked training arrays X (N, S_0), T (N, S_L), sample weights (N,) or None — or a source of
    rows as X with T None — and the validation arrays or None."""

    X: object
    T: object
    w: object = None
    X_val: object = None
    T_val: object = None


class Run:
    """One training run of ``net`` on ``data`` with ``settings``; :meth:`fit` trains it.

    ``comm``: an mpi4py communicator (data parallelism; :mod:`ffnn.training.distributed`).
    """

    def __init__(self, net, data, settings, rng, history, comm=None):
        self.net, self.data, self.s, self.rng, self.history = net, data, settings, rng, history
        self.n = data.X.shape[0]
        self.batch_size = min(settings.batch_size, self.n)
        self.steps_per_epoch = math.ceil(self.n / self.batch_size)
        self.params = net.parameters()
        opt = settings.optimizer
        if opt.full_batch and self.batch_size < self.n:
            raise ValueError(f"optimizer {opt.name!r} takes full-batch steps (the gradient of all {self.n} training "
                             f"rows each time); batch_size={settings.batch_size} would take minibatches: pass "
                             f"batch_size={self.n} (or more)")
        self.chain = updates.Chain(settings.penalty, settings.clip, opt)
        self.state = opt.state if _state_fits(opt.state, self.params) else self.chain.init(self.params)
        keep_state_with(self.state, self.params)
        self.best_params = None
        self.bar = None
        self.diag = Diagnostics(net) if settings.diagnostics else None
        self.engine = self._engine(comm)
        if not self.engine.is_root:  # progress and logs come from rank 0 only (and files: see engine.agree)
            settings.progress = False

    def _engine(self, comm):
        """The gradient engine for this network, data and settings (see :mod:`ffnn.training.engines`)."""
        net, s, data = self.net, self.s, self.data
        source = is_source(data.X)
        if comm is not None or source:
            if not is_numpy_namespace(net.xp):
                raise TypeError("data-parallel and out-of-core training need a network of NumPy arrays")
            if s.loss.share(1, 1) is None:
                raise TypeError(f"loss {s.loss.name!r} cannot be split over processes or read from disk: "
                                f"its normalisation by the batch is unknown; use a built-in loss")
        on_torch_path = False
        if is_torch_namespace(net.xp):
            from . import torch_engine as _torch_fast

            on_torch_path = _torch_fast.supports(net, s.loss, data.w)
        precision = precision_for(s.precision, net, on_torch_path)
        rows = data.X if source else None
        if rows is None and is_numpy_namespace(net.xp):
            rows = ArrayRows(data.X, data.T, data.w).bind(net)
        compiled = None
        if s.loop != "interpreted" and comm is None:
            compiled, why = _compiled.plan(net, s.loss, self.chain, rows, s.dropout)
            if compiled is None and s.loop == "compiled":
                raise ValueError(f"loop='compiled' cannot run here: {why}; use loop='auto' or 'interpreted'")
        elif s.loop == "compiled":
            raise ValueError("loop='compiled' cannot run here: data-parallel training (comm) runs the "
                             "interpreted loop; use loop='auto' or 'interpreted'")
        if compiled is not None:
            if s.progress and _compiled.will_compile(compiled.dtype):
                print(f"ffnn: compiling the training loop for {compiled.dtype.name} (once per installation, "
                      f"about 20 s; the compiled code is cached on disk)", file=sys.stderr, flush=True)
            engine = _compiled.CompiledEngine(net, s.loss, rows, self.chain, self.diag, s.dropout, self.rng,
                                              compiled)
        elif comm is not None:
            from .distributed import ShardedEngine

            engine = ShardedEngine(net, s.loss, rows, self.chain, self.diag, comm, s.dropout, self.rng)
        elif is_numpy_namespace(net.xp):
            engine = numpy_engine_for(net, s.loss, rows, self.chain, self.diag, s.dropout, self.rng, data.w)
        elif on_torch_path:
            engine = _torch_fast.TorchEngine(net, s.loss, NamespaceRows(net, data.X, data.T), self.chain,
                                             self.diag, s.dropout, self.rng, precision, self.batch_size,
                                             s.dropout_masks)
        else:
            engine = CoreEngine(net, s.loss, NamespaceRows(net, data.X, data.T, data.w), self.chain, self.diag,
                                s.dropout, self.rng)
        self.history.loop = engine.name
        return engine

    # --- the epochs --------------------------------------------------------------------------------

    def fit(self, resume=None):
        """Train from the first epoch (or the one after ``resume``'s) to the last; returns History."""
        s = self.s
        start_epoch = 1 if resume is None else restore_run(self, resume)
        s.optimizer.state = self.state  # one state, the run's: the optimiser holds it, however training ends
        if self.history.stopped_early:  # the checkpoint ends a run that early stopping finished
            start_epoch = s.epochs + 1
        if hasattr(s.schedule, "setup"):
            s.schedule.setup(self.steps_per_epoch, s.epochs * self.steps_per_epoch)
        if s.progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=(s.epochs - start_epoch + 1) * self.steps_per_epoch, unit="batch",
                            dynamic_ncols=True)
        ctrl_c = DeferredInterrupt()
        try:
            for epoch in range(start_epoch, s.epochs + 1):
                t0 = time.perf_counter()
                train_loss, lr = self.epoch(epoch, ctrl_c)
                stop_now = self.end_of_epoch(epoch, train_loss, lr, t0)
                if s.checkpoint is not None and (epoch % s.checkpoint_every == 0 or epoch == s.epochs or stop_now):
                    self.engine.agree(lambda: save_run(self, s.checkpoint, epoch))  # written once (rank 0)
                if stop_now:
                    break
        except KeyboardInterrupt:
            self.history.interrupted = True
            self.finish()
            self.engine.on_interrupt()
            raise TrainingInterrupted(self.history) from None
        finally:
            ctrl_c.restore()
            if self.bar is not None:
                self.bar.close()
        self.finish()
        return self.history

    def epoch(self, epoch, ctrl_c):
        """One pass over the data; returns (mean training loss, the last step's learning rate).

        However the epoch ends — its last step, a divergence, Ctrl-C, a schedule's bad factor, any
        exception — the network is left with finite weights (see :meth:`_settle`).
        """
        engine = self.engine
        self.params = self.net.parameters()  # a callback may have rebound net.weights[l] or biases[l]
        order = engine.order(self.rng, self.s.shuffle)  # one shuffle per epoch; each batch gathers its rows
        snapshot = self._snapshot()
        if self.diag is not None:
            self.diag.start_epoch()
        engine.start_epoch(order, ctrl_c, self.state)
        self._lrs = []  # each step's η, as the schedule gave it (a replay takes the same)
        self._replayed = False
        # Overflow shows up as a non-finite loss, gradient or weight, which the driver handles itself.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            try:
                total, lr = self._steps(order, ctrl_c, epoch)
                checked = False  # whether the engine's one read at the end of the epoch checked the parameters
                if engine.deferred:
                    total, bad = engine.read_total()
                    if bad:
                        total, lr = self._replay(order, snapshot, epoch, len(self._lrs))
                    checked = not bad
            except BaseException:
                self._settle(order, snapshot, epoch)
                raise
        if not checked:
            self._keep_finite(snapshot, check=True)
        engine.end_epoch(lr)
        if self.bar is not None and engine.deferred:
            self.bar.set_postfix(epoch=epoch, loss=f"{total / self.n:.4g}", refresh=False)
        return total / self.n, lr

    def _steps(self, order, ctrl_c, epoch, limit=None):
        """The epoch's steps (the first ``limit`` of them), ``engine.steps_per_call`` at a time;
        returns (Σ J_B·|B|, the last η). A replay (``limit`` given) takes the η of ``self._lrs``."""
        engine, opt, bar = self.engine, self.s.optimizer, self.bar
        bs = self.batch_size
        total, lr = 0.0, opt.lr
        n_steps = self.steps_per_epoch if limit is None else limit
        first = 0
        while first < n_steps:
            count = min(engine.steps_per_call, n_steps - first)  # an engine may resize its chunks as it goes
            batches = Batches(order, first * bs, bs, count)
            bad = None
            if limit is None:
                try:
                    lrs = self._rates(self.state["step"], count, ctrl_c)
                except _BadFactor as exc:  # the steps before the bad factor are taken, as one by one
                    bad, lrs = exc.error, exc.good
                if len(lrs) < count:
                    count = len(lrs)
                    batches = Batches(order, first * bs, bs, count)
                self._lrs.extend(lrs)  # the steps being taken (a replay after an error takes them again)
            else:
                lrs = self._lrs[first:first + count]
            if lrs:
                lr = lrs[-1]
                part = engine.run(batches, lrs, self.state, first + len(lrs) == self.steps_per_epoch)
            if bad is not None:
                raise bad
            total += part
            first += count
            engine.check_interrupt(ctrl_c)  # Ctrl-C takes effect here, between steps, never halfway through one
            if bar is not None and limit is None:
                bar.update(count)
                if not engine.deferred:
                    bar.set_postfix(epoch=epoch, loss=f"{part / batches.rows:.4g}", refresh=False)
        return total, lr

    def _rates(self, step0, count, ctrl_c=None):
        """η of the steps step0 … step0 + count − 1: the base rate times the schedule's checked factor
        (all at once for a schedule that gives them so, else one call per step). _BadFactor carries the
        rates before a bad factor and its ValueError. A Ctrl-C that arrives while the schedule is asked
        for step t ends the chunk at step t, which is taken (as one step at a time would take it)."""
        opt, schedule = self.s.optimizer, self.s.schedule
        factors = getattr(schedule, "factors", None)
        if factors is not None:
            f = np.asarray(factors(step0, count), dtype=np.float64)
            if f.shape == (count,) and bool(np.all(np.isfinite(f) & (f >= 0))):
                return (opt.lr * f).tolist()
        lrs = []
        try:
            for k in range(count):
                lrs.append(opt.lr * self._factor(step0 + k))
                if ctrl_c is not None and ctrl_c.pending:
                    break
        except ValueError as exc:
            raise _BadFactor(lrs, exc) from None
        return lrs

    def _factor(self, t):
        """The schedule's factor s(t), checked: finite and non-negative."""
        factor = float(self.s.schedule(t))
        if not (factor >= 0 and math.isfinite(factor)):
            raise ValueError(f"the learning-rate schedule returned {factor!r} at step {t}; "
                             f"it must return a finite non-negative factor")
        return factor

    # --- divergence --------------------------------------------------------------------------------

    def _snapshot(self):
        """What the epoch starts from: the parameters, the optimiser's state and the Generator (after
        the epoch's shuffle) — put back when an update overflowed, and replayed from by a deferred
        engine."""
        xp = self.net.xp
        params = [xp.asarray(p, copy=True) for p in self.params]
        state = {k: (v if k == "step" else [xp.asarray(a, copy=True) for a in v]) for k, v in self.state.items()}
        return params, state, self.rng.bit_generator.state

    def _restore(self, snapshot, rng=True):
        """Put back the epoch's start: the parameters and the optimiser's state (and the Generator)."""
        params, state, rng_state = snapshot
        for p, saved in zip(self.params, params):
            p[...] = saved
        for k, v in state.items():
            if k == "step":
                self.state[k] = v
            else:
                for a, saved in zip(self.state[k], v):
                    a[...] = saved
        if rng:
            self.rng.bit_generator.state = rng_state

    def _replay(self, order, snapshot, epoch, steps):
        """Put back the epoch's start and run its first ``steps`` steps again checking each one (for a
        deferred engine); raises TrainingDiverged at the step that diverged."""
        self._restore(snapshot)
        self._replayed = True
        engine = self.engine
        engine.deferred = False
        try:
            return self._steps(order, _NoInterrupt(), epoch, limit=steps)
        finally:
            engine.deferred = True

    def _settle(self, order, snapshot, epoch):
        """An epoch ended by an exception: a divergence a deferred engine has not reported yet is
        found by replaying the steps taken (TrainingDiverged, at its step, replaces the exception);
        then weights that are not finite (an update overflowed) go back to the epoch's start."""
        engine = self.engine
        try:
            if engine.deferred and not self._replayed and engine.read_total()[1]:
                self._replay(order, snapshot, epoch, len(self._lrs))
        finally:
            self._keep_finite(snapshot)

    def _keep_finite(self, snapshot, check=False):
        """When an update itself overflowed (the checks before each update cannot see that), put back
        the weights and the optimiser's state the epoch started from; with ``check``, then raise
        TrainingDiverged."""
        xp = self.net.xp
        if all(bool(xp.all(xp.isfinite(p))) for p in self.params):
            return
        self._restore(snapshot, rng=False)  # the weights and the optimiser's state, consistent
        if check:
            raise TrainingDiverged(diverged_message("an update"))

    # --- after each epoch --------------------------------------------------------------------------

    def end_of_epoch(self, epoch, train_loss, lr, t0):
        """Validate, record, schedule, early-stop and call back; True when training should stop."""
        net, s, history = self.net, self.s, self.history
        val_loss, val_metric = self.engine.agree(self.validate)
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
        if self.engine.agree(self.call_back):
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
        return float(net.trace_loss(trace, data.T_val, s.loss)), float(s.metric(data.T_val, trace.output))

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



class Batches:
    """``count`` consecutive minibatches of ``size`` rows of the epoch's ``order``, from row ``start`` (the
    epoch's last one may be shorter): a sequence of index arrays, whose bounds an engine that gathers
    rows itself reads directly."""

    __slots__ = ("order", "start", "size", "count")

    def __init__(self, order, start, size, count):
        self.order, self.start, self.size, self.count = order, start, size, count

    def __len__(self):
        return self.count

    def __getitem__(self, k):
        if not 0 <= k < self.count:
            raise IndexError(k)
        first = self.start + k * self.size
        return self.order[first:first + self.size]

    @property
    def rows(self):
        """How many rows the batches hold together."""
        return min(self.count * self.size, len(self.order) - self.start)


class _BadFactor(Exception):
    def __init__(self, good, error):
        super().__init__(str(error))
        self.good, self.error = good, error


class _NoInterrupt:
    """Ctrl-C during a replay: the replay is short and must end where the epoch failed."""

    pending = False

    def check(self):
        pass


def keep_state_with(state, params):
    """Move a continued optimiser state to where the parameters now live (another device or array
    library: a network moved with ``Network.to`` between two ``train`` calls with one optimiser)."""
    p0 = params[0]
    xp = array_namespace(p0)
    place = device_of(p0) if is_torch_namespace(xp) else None
    for key, values in state.items():
        if key == "step":
            continue
        for i, v in enumerate(values):
            if type(v) is not type(p0) or device_of(v) != device_of(p0):
                values[i] = asarray_on(xp, np.array(to_numpy(v)), p0.dtype, place)
