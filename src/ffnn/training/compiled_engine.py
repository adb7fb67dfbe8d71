"""The compiled engine: many steps per call of a numba-compiled loop (:mod:`ffnn.training.compiled_kernels`).

It runs whenever everything a step computes has a compiled form: a network of NumPy float32 or
float64 arrays, built-in activations and loss (their objects declare the kernels: ``Activation.compiled``,
``Loss.compiled``), one of ffnn's optimisers, penalty and clipping as :mod:`ffnn.updates` defines
them, the rows in memory — with or without dropout and sample weights. Anything else (a user's
activation or loss, a subclassed optimiser, rows read from disk, MPI) runs the interpreted loop, and
``History.loop`` says which loop ran. numba is imported on first use, and only for a run the compiled
loop computes; without numba, training runs interpreted, with the same numbers.

The driver (:class:`ffnn.training.run.Run`) hands the engine a chunk of consecutive steps; a chunk is
sized so that one call takes about :data:`CALL_SECONDS`, so Ctrl-C (checked between calls) still
stops training within a fraction of a second. Compiled code is cached on disk by numba
(``cache=True``): a later process, and a network of another shape, loads it instead of compiling.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .engines import Engine, diverged_message
from .stopping import TrainingDiverged

__all__ = ["CompiledEngine", "plan", "available", "will_compile"]

CALL_SECONDS = 0.05  # the time one call aims at: Ctrl-C waits at most about this long
_MAX_STEPS_PER_CALL = 1 << 20
_KERNELS = None  # the module, once imported; False when numba is missing or does not work here


def kernels():
    """:mod:`ffnn.training.compiled_kernels`, or None where numba is not installed (or ``FFNN_LOOP``
    is ``interpreted``)."""
    global _KERNELS
    if _KERNELS is None:
        if os.environ.get("FFNN_LOOP", "").strip().lower() == "interpreted":
            return None
        try:
            from . import compiled_kernels
        except ImportError:  # numba (or llvmlite) missing or broken: the interpreted loop runs
            _KERNELS = False
        else:
            _KERNELS = compiled_kernels
    return _KERNELS or None


def available():
    """Whether the compiled loop can run here (numba imports)."""
    return kernels() is not None


def will_compile(dtype):
    """Whether the loop for ``dtype`` is neither loaded in this process nor in numba's on-disk cache
    (so that its first call compiles, about 20 s): read from numba's cache index, False when unsure."""
    k = kernels()
    if k is None:
        return False
    name = np.dtype(dtype).name
    try:
        if any(name in str(sig) for sig in k.run_steps.signatures):
            return False
        index = k.run_steps._cache._cache_file._load_index()  # numba's own index of cached signatures
    except Exception:  # noqa: BLE001 - numba's internals moved: say nothing rather than guess
        return False
    return not any(name in str(key) for key in index)


class _Plan:
    """What the kernels need to know of a run: codes and constants, decided once."""

    def __init__(self, **kw):
        vars(self).update(kw)


def plan(net, loss, chain, rows, dropout=None):
    """(a :class:`_Plan`, None) when the compiled loop computes this run's steps, else (None, the
    reason in words)."""
    from .. import optim, updates
    from .._array import is_numpy_namespace

    if not is_numpy_namespace(net.xp):
        return None, "the network's arrays are not NumPy arrays"
    dt = np.dtype(net.dtype)
    if dt not in (np.float32, np.float64):
        return None, f"the compiled loop computes in float32 or float64, not {dt.name}"
    if not getattr(rows, "in_memory", False) or not _plain_arrays(rows, dt):
        return None, "the rows are not NumPy arrays in memory"
    acts = [a.compiled for a in net.activations]
    for l, (act, form) in enumerate(zip(net.activations, acts), start=1):
        if form is None:
            return None, f"activation {act.name!r} (layer {l}) is not a built-in"
    out = loss.compiled(net.activations[-1])
    if out is None:
        return None, f"loss {loss.name!r} has no compiled form"
    opt = chain.optimizer
    if type(opt) is optim.SGD:
        code = "sgd" if opt.momentum == 0 else ("nesterov" if opt.nesterov else "momentum")
        hp = [opt.momentum]
    elif type(opt) in (optim.Adam, optim.AdamW):
        code = "adam"
        hp = [opt.beta1, opt.beta2, opt.eps, float(opt.step_size_correction), getattr(opt, "weight_decay", 0.0)]
    elif type(opt) is optim.RMSprop:
        code, hp = "rmsprop", [opt.rho, opt.eps]
    else:
        return None, f"optimizer {type(opt).__name__} has no compiled form"
    pen = chain.penalty
    if pen is not None and type(pen) not in (updates.Penalty, updates.PerBatchL2):
        return None, f"penalty {type(pen).__name__} is not one of ffnn's"
    if chain.clip is not None and type(chain.clip) is not updates.ClipByGlobalNorm:
        return None, f"clipping {type(chain.clip).__name__} is not ffnn's"
    params = net.parameters()
    decays = opt.decays(params) if type(opt) is optim.AdamW else [False] * len(params)
    L = net.n_layers
    keep = [1.0] * (L + 1)
    for l, rate in enumerate(dropout or (), start=1):
        keep[l] = 1.0 - float(rate)
    k = kernels()  # last: numba is imported only for a run it would compute
    if k is None:
        return None, "numba is not installed" if _KERNELS is False else "FFNN_LOOP=interpreted"
    out_form, loss_kernel, factor, mean = out
    per_batch = type(pen) is updates.PerBatchL2
    return _Plan(
        dtype=dt,
        acts=np.array([0] + [k.ACTIVATIONS[name] for name, _ in acts], np.int64),
        act_p=np.array([0.0] + [float(p) for _, p in acts], np.float64),
        keep=np.array(keep, np.float64),
        out=k.OUTPUTS[out_form], loss=k.LOSSES[loss_kernel], factor=float(factor), mean=bool(mean),
        eps=float(np.finfo(dt).eps),
        l1=0.0 if pen is None else float(pen.l1),
        l2=0.0 if pen is None or per_batch else float(pen.l2),
        alpha=float(pen.alpha) if per_batch else 0.0,
        clip=0.0 if chain.clip is None else float(chain.clip.c),
        opt=k.OPTIMIZERS[code], hp=np.array(hp, np.float64), decays=np.array(decays, np.bool_),
        slots=tuple(opt.slots),
    ), None


def _plain_arrays(rows, dt):
    arrays = [rows.X, rows.T] + ([] if rows.w is None else [rows.w])
    return all(type(a) is np.ndarray and a.dtype == dt and a.flags.c_contiguous for a in arrays)


class CompiledEngine(Engine):
    """Steps of the compiled loop, ``steps_per_call`` per call (see the module docstring).

    The kernels take each kind of array flat (:mod:`ffnn.training.compiled_kernels`): a call copies
    the parameters and the optimiser's slots into flat buffers and back — one pass over them per
    chunk of steps. ``check``: stop at a non-finite J_B or bias gradient (TrainingDiverged);
    ``report_scale``: a factor on J in the J_B returned (scikit-learn's estimators use both).
    """

    name = "compiled"

    def __init__(self, net, loss, rows, chain, diag=None, dropout=None, rng=None, run_plan=None, *,
                 check=True, report_scale=1.0):
        super().__init__(net, loss, rows, chain, diag)
        self.plan = run_plan if run_plan is not None else plan(net, loss, chain, rows, dropout)[0]
        if self.plan is None:
            raise ValueError("the compiled loop cannot run this network; see compiled_engine.plan")
        self.k = kernels()
        self.rng = rng
        self.check, self.report_scale = check, float(report_scale)
        self.steps_per_call = 64
        dt, sizes = self.plan.dtype, net.sizes
        shapes = [tuple(p.shape) if p.ndim == 2 else (1, p.shape[0]) for p in self.params]
        self.po = np.cumsum([0] + [r * c for r, c in shapes]).astype(np.int64)
        self.pr = np.array([r for r, _ in shapes], np.int64)
        self.pc = np.array([c for _, c in shapes], np.int64)
        self.sz = np.array(sizes, np.int64)
        self.ko = np.cumsum([0] + list(sizes)).astype(np.int64)
        n = int(self.po[-1])
        self.P, self.G = np.empty(n, dt), np.empty(n, dt)
        self.U = np.empty(n, dt) if self._transforms() else self.G
        self.S = [np.zeros(n, dt) for _ in self.plan.slots] + [np.empty(0, dt)] * (2 - len(self.plan.slots))
        self.peaks = np.empty(int(self.ko[-1]), dt)
        self.Wb = np.empty(n if diag is not None else 0, dt)  # the weights the measured step starts from
        self._dg = np.zeros((net.n_layers + 1, 4))  # its diagnostics, per layer (kernels._measure)
        self._buffers = {}
        self._no_weights = np.empty(0, dt)

    def _transforms(self):
        p = self.plan
        return p.l1 > 0 or p.l2 > 0 or p.alpha > 0 or p.clip > 0

    def _workspace(self, m):
        """Buffers for batches of m rows: a[l] (z[L] at L), δ[l] and σ′[l] flat by layer, a[L], the
        targets and the weights."""
        ws = self._buffers.get(m)
        if ws is None:
            dt, sizes = self.plan.dtype, self.net.sizes
            ho = np.cumsum([0] + [m * s for s in sizes]).astype(np.int64)
            n = int(ho[-1])
            ws = self._buffers[m] = dict(ho=ho, H=np.empty(n, dt), D=np.empty(n, dt), V=np.empty(n, dt),
                                         A=np.empty((m, sizes[-1]), dt), T=np.empty((m, sizes[-1]), dt),
                                         w=np.empty(m, dt))
        return ws

    # --- the flat copies of the parameters, the optimiser's slots and the diagnostics' maxima ----------

    def _load(self, state):
        po = self.po
        for q, p in enumerate(self.params):
            self.P[po[q]:po[q + 1]] = p.reshape(-1)
        for slot, flat in zip(self.plan.slots, self.S):
            for q, a in enumerate(state[slot]):
                flat[po[q]:po[q + 1]] = a.reshape(-1)
        watch = np.zeros(len(self.sz), np.bool_)
        if self.watch_units:
            for l in self.diag.watched:
                peak = self.diag.peak.get(l)
                self.peaks[self.ko[l]:self.ko[l + 1]] = -np.inf if peak is None else peak
                watch[l] = True
        return watch

    def _store(self, state, watch):
        po = self.po
        for q, p in enumerate(self.params):
            p[...] = self.P[po[q]:po[q + 1]].reshape(p.shape)
        for slot, flat in zip(self.plan.slots, self.S):
            for q, a in enumerate(state[slot]):
                a[...] = flat[po[q]:po[q + 1]].reshape(a.shape)
        for l in np.flatnonzero(watch):
            self.diag.peak[int(l)] = self.peaks[self.ko[l]:self.ko[l + 1]].copy()

    # --- steps -------------------------------------------------------------------------------------

    def steps(self, order, start, m, lrs, state, measure=False):
        """``len(lrs)`` steps of ``m`` rows each from ``order[start:]``; returns (steps done, Σ J_B·m,
        diverged). ``state['step']`` counts the steps done."""
        p, rows = self.plan, self.rows
        ws = self._workspace(m)
        drop_u = self._uniforms(len(lrs), m)
        w = self._no_weights if rows.w is None else rows.w
        watch = self._load(state)
        try:
            done, total, diverged = self.k.run_steps(
                rows.X, rows.T, w, np.asarray(order, np.int64), start, m, np.asarray(lrs, np.float64),
                self.P, self.G, self.U, self.S[0], self.S[1], self.po, self.pr, self.pc,
                ws["H"], ws["D"], ws["V"], ws["ho"], self.sz, ws["A"], ws["T"], ws["w"], p.acts, p.act_p, p.keep,
                drop_u, self.peaks, self.ko, watch, p.out, p.loss, p.factor, p.mean, p.eps, self.report_scale,
                p.l1, p.l2, p.alpha, p.clip, p.opt, p.hp, p.decays, int(state["step"]), bool(measure),
                self.check, self.Wb, self._dg, self.k.BLAS)
        finally:
            self._store(state, watch)
        state["step"] += done
        return done, total, diverged

    def _uniforms(self, n_steps, m):
        """The dropout masks' uniforms for ``n_steps`` steps of m rows, drawn as the interpreted loop
        draws them: ``rng.random((m, S_l))`` per step and hidden layer with a rate above 0, in that order
        (one draw of all of them consumes the Generator's stream identically)."""
        keep = self.plan.keep
        per_step = sum(m * s for l, s in enumerate(self.net.sizes) if 0 < l < len(keep) - 1 and keep[l] < 1.0)
        if per_step == 0:
            return _NO_UNIFORMS
        return self.rng.random(n_steps * per_step)

    def run(self, batches, lrs, state, last):
        """The driver's chunk of steps (:class:`ffnn.training.run.Batches`): full batches in one call, a
        last partial batch in another; on the epoch's last step the kernel also measures the diagnostics."""
        order, start, bs, count = batches.order, batches.start, batches.size, len(batches)
        end = min(start + count * bs, order.shape[0])
        full = (end - start) // bs
        record = last and self.diag is not None
        groups = []  # (first row, rows per step, learning rates)
        if full:
            groups.append((start, bs, lrs[:full]))
        if full < count:
            groups.append((start + full * bs, end - start - full * bs, lrs[full:]))
        total = 0.0
        t0 = time.perf_counter()
        for g, (first, m, rates) in enumerate(groups):
            final = record and g == len(groups) - 1
            done, part, diverged = self.steps(order, first, m, rates, state, measure=final)
            total += part
            if diverged:
                raise TrainingDiverged(diverged_message("the loss or a gradient"))
            if final:
                dg = self._dg[1:]
                self.diag.measured(np.sqrt(dg[:, 0]).tolist(), dg[:, 1].tolist(), np.sqrt(dg[:, 2]).tolist(),
                                   np.sqrt(dg[:, 3]).tolist())
        self.pace(time.perf_counter() - t0, count)
        return total

    def pace(self, seconds, count):
        """Size the next chunk so that one call takes about CALL_SECONDS."""
        if count >= self.steps_per_call and seconds > 0:
            per_step = seconds / count
            self.steps_per_call = int(min(_MAX_STEPS_PER_CALL, max(1, CALL_SECONDS / per_step)))


_NO_UNIFORMS = np.empty(0, np.float64)
