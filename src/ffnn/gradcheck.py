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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import losses as _loss
from ._array import to_numpy

__all__ = ["gradcheck", "GradcheckReport"]


@dataclass
class GradcheckReport:
    """Worst relative error per array, and whether all are within ``tolerance``.

    ``errors`` maps ``"W[1]"``, ``"b[1]"``, …, ``"X"`` to the worst relative error in that array.
    """

    errors: dict
    tolerance: float
    loss: float

    @property
    def passed(self) -> bool:
        return all(e <= self.tolerance for e in self.errors.values())

    @property
    def worst(self) -> float:
        return max(self.errors.values())

    def __bool__(self):
        return self.passed

    def __str__(self):
        lines = [f"gradient check (central differences, float64), J = {self.loss:.6g}"]
        for name, err in self.errors.items():
            lines.append(f"  {name:<8} worst relative error {err:.2e}  {'ok' if err <= self.tolerance else 'FAIL'}")
        lines.append(f"{'PASSED' if self.passed else 'FAILED'}: worst {self.worst:.2e} "
                     f"{'<=' if self.passed else '>'} tolerance {self.tolerance:.0e}")
        return "\n".join(lines)


def _rel(bp, fd, floor, noise_floor):
    if not bp.size:
        return 0.0
    scale = np.maximum(np.maximum(np.abs(bp), np.abs(fd)), max(floor * np.max(np.abs(fd)), noise_floor, 1e-300))
    return float(np.max(np.abs(bp - fd) / scale))


def _central_difference(J, P, h):
    """The fourth-order central difference of J with respect to every entry of P (changed in place)."""
    fd = np.empty_like(P)
    for idx in np.ndindex(P.shape):
        old = P[idx]
        values = []
        for step in (-2 * h, -h, h, 2 * h):
            P[idx] = old + step
            values.append(J())
        P[idx] = old
        fd[idx] = (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * h)
    return fd


def gradcheck(net, X, T, loss, *, h=1e-4, tolerance=1e-6, floor=1e-6, sample_weight=None):
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

    Returns
    -------
    GradcheckReport
        ``report.errors`` per array, ``report.passed``; ``print(report)`` shows a table.
    """
    loss = _loss.get_loss(loss)
    ref = net.to(np, "float64")
    Xd = ref.check_inputs(to_numpy(X))
    Td = ref.check_targets(to_numpy(T), Xd.shape[0])
    w = None if sample_weight is None else ref.check_sample_weight(to_numpy(sample_weight), Xd.shape[0])

    def J(Xv=Xd):
        return float(ref.trace_loss(ref.forward(Xv, checked=True), Td, loss, w))

    J0 = J()
    grads = ref.backward(ref.forward(Xd, checked=True), Td, loss, sample_weight=w, checked=True)
    errors = {}
    noise_floor = 10 * np.finfo(np.float64).eps * max(1.0, abs(J0)) / h / tolerance
    for kind, params, gparams in (("W", ref.weights, grads.weights), ("b", ref.biases, grads.biases)):
        for l, P in params.items():
            errors[f"{kind}[{l}]"] = _rel(gparams[l], _central_difference(J, P, h), floor, noise_floor)
    Xv = Xd.copy()
    errors["X"] = _rel(grads.inputs, _central_difference(lambda: J(Xv), Xv, h), floor, noise_floor)
    return GradcheckReport(errors, tolerance, J0)
