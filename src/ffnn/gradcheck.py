"""Check back-propagation against central finite differences.

For every parameter θ (each entry of every W[l] and b[l]) and every input x:

    ∂J/∂θ ≈ (J(θ − 2h) − 8 J(θ − h) + 8 J(θ + h) − J(θ + 2h)) / 12h      (error O(h⁴))

the fourth-order central difference, computed in float64 on a float64 NumPy copy of the network,
whatever the network's own dtype and namespace. With h = 1e-4 its truncation error (~h⁴) and its
round-off (~1e-16·|J|/h) both stay near 1e-12, so agreement to 1e-9 is a real test.

The relative error of one entry is |g_bp − g_fd| / max(|g_bp|, |g_fd|, floor · max|g_fd|, ν / tolerance),
where ν = 10 · ε · max(1, |J|) / h is ten times the round-off of the difference quotient itself: entries
more than 1/floor (default 1e6) times smaller than the largest in their array, or so small that the
finite difference cannot resolve them, are measured against that scale rather than divided by noise.

Each finite difference costs four forward passes, so a large network is checked on a random sample
of each array's entries (``max_entries``): the back-propagated gradient is still computed whole,
and a rule that is wrong for some class of entries shows in a random sample of a few hundred of them.
An entry whose steps carry a net input across a kink of its activation (relu at 0, as the
activation declares in ``Activation.kinks``) measures no derivative there; it is left out and
counted, not reported as a failure. The many small forward passes run on one BLAS thread (through
threadpoolctl, when it is installed): on matrices this small, more threads only wait for each
other, and on a busy machine they spin.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from . import losses as _loss
from ._array import to_numpy
from ._checks import number

__all__ = ["gradcheck", "GradcheckReport", "finite_differences"]


@dataclass
class GradcheckReport:
    """Worst relative error per array, and whether all are within ``tolerance``.

    ``errors`` maps ``"W[1]"``, ``"b[1]"``, …, ``"X"`` to the worst relative error in that array;
    ``checked`` maps the same names to (entries compared, entries in the array); ``at_kinks`` to the
    entries left out because their steps crossed a kink of an activation. ``complete`` is False when
    ``max_seconds`` ran out first: the errors are those of the entries compared by then.
    """

    errors: dict
    tolerance: float
    loss: float
    checked: dict = None
    at_kinks: dict = None
    complete: bool = True

    @property
    def passed(self) -> bool:
        """Every compared entry within tolerance (and, when the time limit cut the check, at least one
        compared)."""
        if not self.complete and not any(n for n, _ in (self.checked or {}).values()):
            return False
        return all(e <= self.tolerance for e in self.errors.values())

    @property
    def worst(self) -> float:
        return max(self.errors.values())

    def __bool__(self):
        return self.passed

    def __str__(self):
        lines = [f"gradient check (central differences, float64), J = {self.loss:.6g}"]
        for name, err in self.errors.items():
            n, total = (self.checked or {}).get(name, (None, None))
            kinks = (self.at_kinks or {}).get(name, 0)
            if not self.complete and n == 0 and not kinks:
                lines.append(f"  {name:<8} not reached by the time limit")
                continue
            how = "at random" if self.complete else "by the time limit"
            notes = ([f"{n} of {total} entries, {how}"] if n is not None and n + kinks < total else [])
            notes += [f"{kinks} left out at a kink"] if kinks else []
            sampled = f"  ({'; '.join(notes)})" if notes else ""
            lines.append(f"  {name:<8} worst relative error {err:.2e}  {'ok' if err <= self.tolerance else 'FAIL'}"
                         f"{sampled}")
        if not self.passed and self.worst <= self.tolerance:
            lines.append("NOT CHECKED: the time limit came before the first entry")
            return "\n".join(lines)
        lines.append(f"{'PASSED' if self.passed else 'FAILED'}: worst {self.worst:.2e} "
                     f"{'<=' if self.passed else '>'} tolerance {self.tolerance:.0e}"
                     + ("" if self.complete else " (stopped at the time limit: only the entries counted above)"))
        return "\n".join(lines)


def _rel(bp, fd, floor, noise_floor):
    if not bp.size:
        return 0.0
    scale = np.maximum(np.maximum(np.abs(bp), np.abs(fd)), max(floor * np.max(np.abs(fd)), noise_floor, 1e-300))
    return float(np.max(np.abs(bp - fd) / scale))


def _central_difference(J, P, h, entries, sides, go_on=lambda: True):
    """The fourth-order central difference of J with respect to P's ``entries`` (flat indices; P is
    changed in place and restored), and how many entries were computed: ``go_on()`` is asked before
    each (False stops there: the time is up). ``J()`` returns (loss, which side of each kink every net
    input is on); an entry whose steps change a side (``sides`` is the unperturbed one) is NaN."""
    fd = np.full(len(entries), np.nan)
    for k, i in enumerate(entries):
        if not go_on():
            return fd, k
        idx = np.unravel_index(i, P.shape)
        old = P[idx]
        values, crossed = [], False
        for step in (-2 * h, -h, h, 2 * h):
            P[idx] = old + step
            value, where = J()
            values.append(value)
            crossed = crossed or where != sides
        P[idx] = old
        fd[k] = np.nan if crossed else (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * h)
    return fd, len(entries)


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is optional
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _entries(size, max_entries, rng):
    """Every flat index of an array of ``size`` entries, or ``max_entries`` of them at random."""
    if max_entries is None or size <= max_entries:
        return np.arange(size)
    return np.sort(rng.choice(size, size=max_entries, replace=False))


def _loss_function(net, X, T, loss, sample_weight=None):
    """(float64 NumPy copy of ``net``, checked X, checked T, checked weights, the Loss, J) where
    ``J(Xv=X)`` returns (the loss, the side of each activation kink every net input is on), from the
    copy's current parameters."""
    loss = _loss.get_loss(loss)
    ref = net.to(np, "float64")
    Xd = ref.check_inputs(to_numpy(X))
    Td = ref.check_targets(to_numpy(T), Xd.shape[0])
    w = None if sample_weight is None else ref.check_sample_weight(to_numpy(sample_weight), Xd.shape[0])
    kinks = [(l, k) for l, act in enumerate(ref.activations, start=1) for k in getattr(act, "kinks", ())]

    def J(Xv=Xd):
        trace = ref.forward(Xv, checked=True)
        return (float(ref.trace_loss(trace, Td, loss, w)),
                tuple(np.packbits(trace.z[l] > k).tobytes() for l, k in kinks))

    return ref, Xd, Td, w, loss, J


def finite_differences(net, X, T, loss, *, h=1e-4, sample_weight=None):
    """∂J/∂W[l] and ∂J/∂b[l] by the fourth-order central difference of this module's docstring.

    Returns ``{"W[1]": array, "b[1]": array, …}`` (float64, shaped like the parameters); an entry
    whose steps carry a net input across a kink of its activation is NaN (no derivative is measured
    there). Four forward passes per entry: for small networks (:func:`ffnn.explain`'s page).
    """
    ref, _, _, _, _, J = _loss_function(net, X, T, loss, sample_weight)
    with np.errstate(all="ignore"):
        _, sides = J()
    out = {}
    with _one_blas_thread():
        for kind, params in (("W", ref.weights), ("b", ref.biases)):
            for l, P in params.items():
                out[f"{kind}[{l}]"] = _central_difference(J, P, h, np.arange(P.size), sides)[0].reshape(P.shape)
    return out


def gradcheck(net, X, T, loss, *, h=1e-4, tolerance=1e-6, floor=1e-6, sample_weight=None, max_entries=None,
              seed=0, max_seconds=None, progress=None):
    """Compare ``net``'s back-propagated gradients with central finite differences.

    Parameters
    ----------
    net : Network
    X : array (N, S_0)
    T : array (N, S_L)
    loss : str or Loss
    h : float
        Finite-difference step.
    tolerance : float
        Largest worst-case relative error that passes. Activations with kinks (relu) can fail where a
        net input sits within h of the kink; nudge the data or use a smooth activation there.
    max_entries : int, optional
        Compare at most this many entries of each array (W[l], b[l], X), drawn at random with
        ``seed``; default every entry.
    max_seconds : float, optional
        Stop comparing after this long: the report says how many entries of each array were
        compared (a random sample of each array is still a fair test when ``max_entries`` drew it)
        and ``report.complete`` is False.
    progress : callable, optional
        ``progress(done, total)`` after each entry's four evaluations of J (a long check can show
        where it is).

    Returns
    -------
    GradcheckReport
        ``report.errors`` per array, ``report.passed``; ``print(report)`` shows a table.

    Raises
    ------
    ValueError
        When the loss is not finite at ``net``'s weights and ``X`` (there is no gradient to check).
    """
    ref, Xd, Td, w, loss, J = _loss_function(net, X, T, loss, sample_weight)

    if max_entries is not None and (isinstance(max_entries, bool) or not isinstance(max_entries, (int, np.integer))
                                    or max_entries < 1):
        raise ValueError(f"max_entries must be a positive integer or None, got {max_entries!r}")
    with np.errstate(all="ignore"):
        J0, sides = J()
    if not np.isfinite(J0):
        raise ValueError(f"the loss is {J0} at this network's weights and these inputs; there is no finite "
                         f"gradient for finite differences to check")
    grads = ref.backward(ref.forward(Xd, checked=True), Td, loss, sample_weight=w, checked=True)
    if max_seconds is not None:
        max_seconds = number("max_seconds", max_seconds, low=0, low_open=True)
    rng = np.random.default_rng(seed)
    errors, checked, at_kinks = {}, {}, {}
    noise_floor = 10 * np.finfo(np.float64).eps * max(1.0, abs(J0)) / h / tolerance
    Xv = Xd.copy()
    arrays = ([(f"W[{l}]", P, grads.weights[l], J) for l, P in ref.weights.items()]
              + [(f"b[{l}]", P, grads.biases[l], J) for l, P in ref.biases.items()]
              + [("X", Xv, grads.inputs, lambda: J(Xv))])
    drawn = [_entries(P.size, max_entries, rng) for _, P, _, _ in arrays]
    total, state = sum(len(e) for e in drawn), {"done": 0, "out_of_time": False}
    deadline = None if max_seconds is None else time.perf_counter() + max_seconds

    def go_on():
        if state["out_of_time"] or (deadline is not None and time.perf_counter() >= deadline):
            state["out_of_time"] = True
            return False
        if state["done"] and progress is not None:
            progress(state["done"], total)
        state["done"] += 1
        return True

    with _one_blas_thread():
        for (name, P, G, Jp), entries in zip(arrays, drawn):
            fd, computed = _central_difference(Jp, P, h, entries, sides, go_on)
            smooth = ~np.isnan(fd[:computed])
            errors[name] = _rel(np.asarray(G).reshape(-1)[entries[:computed]][smooth], fd[:computed][smooth], floor,
                                noise_floor)
            checked[name] = (int(smooth.sum()), P.size)
            at_kinks[name] = int((~smooth).sum())
    complete = not state["out_of_time"]
    if progress is not None and complete:
        progress(total, total)
    return GradcheckReport(errors, tolerance, J0, checked, at_kinks, complete)
