"""One minibatch update: penalties, clipping, the divergence check and the optimiser's step.

    J_B = J(T_B, a[L]) + λ₁ Σ_l Σ|W[l]| + (λ₂/2) Σ_l Σ W[l]²
    g   = ∂J_B/∂θ           (back-propagation; + λ₁ sign(W) + λ₂ W for the weights)
    g  ← g · min(1, c / ‖g‖)    when clipping by global norm c
    θ  ← θ + optimiser step(g, η)
"""

from __future__ import annotations

import math

from .stopping import TrainingDiverged

__all__ = ["penalty", "penalized_gradients"]


def penalty(net, l1, l2):
    """λ₁ Σ_l Σ|W[l]| + (λ₂/2) Σ_l Σ W[l]², on the weights only (not the biases)."""
    xp = net.xp
    total = 0.0
    for W in net.weights:
        if l2 > 0:
            total += 0.5 * l2 * float(xp.sum(W * W))
        if l1 > 0:
            total += l1 * float(xp.sum(xp.abs(W)))
    return total


def penalized_gradients(net, gWs, l1, l2):
    """∂/∂W[l] of the loss plus :func:`penalty`: gW[l] + λ₁ sign(W[l]) + λ₂ W[l]."""
    xp = net.xp
    out = []
    for W, gW in zip(net.weights, gWs):
        if l2 > 0:
            gW = gW + l2 * W
        if l1 > 0:
            gW = gW + l1 * xp.sign(W)
        out.append(gW)
    return out


def core_step(net, Xb, Tb, wb, loss, opt, state, params, lr, l1, l2, clip_norm, rates, rng):
    """One minibatch update of ``params`` in place through the array-namespace core; returns J_B."""
    trace = net.forward(Xb, dropout=rates, rng=rng, checked=True)
    J = float(net.trace_loss(trace, Tb, loss, wb))
    g = net.backward(trace, Tb, loss, sample_weight=wb, input_gradient=False, checked=True)
    return apply_update(net, J, list(g.weights), list(g.biases), opt, state, params, lr, l1, l2, clip_norm)


def fused_sgd_step(net, ws, loss, state, lr, l2):
    """Plain SGD through the fast path's fused gemm update (see fastpath.Workspace.sgd_step)."""
    extra = penalty(net, 0.0, l2)  # of the weights this step starts from, as in apply_update
    J = ws.sgd_step(net, loss, lr, l2)
    if J is None or not math.isfinite(J + extra):
        raise TrainingDiverged(_diverged("the loss or a gradient"))
    state["step"] += 1
    return J + extra


def apply_update(net, J, gWs, gbs, opt, state, params, lr, l1, l2, clip_norm):
    """Add the penalties to J and the weight gradients, clip, check, and apply the optimiser's step.

    Divergence is caught before anything changes: a non-finite J or bias gradient (Σ_n δ[l], which is
    non-finite whenever any δ entry is) stops training with the weights of the last good step.
    """
    xp = net.xp
    J += penalty(net, l1, l2)
    grads = [g for pair in zip(penalized_gradients(net, gWs, l1, l2), gbs) for g in pair]
    if not math.isfinite(J):
        raise TrainingDiverged(_diverged("the loss"))
    if not all(bool(xp.all(xp.isfinite(gb))) for gb in gbs):
        raise TrainingDiverged(_diverged("a gradient"))
    if clip_norm is not None:
        norm = math.sqrt(sum(float(xp.sum(gi * gi)) for gi in grads))
        if norm > clip_norm:
            grads = [gi * (clip_norm / norm) for gi in grads]
    opt.apply(grads, state, params, lr)
    return J


def _diverged(what):
    return (f"training diverged: {what} became NaN or infinite; the network keeps its last finite weights. "
            f"Try a smaller learning rate, scaled inputs (e.g. standardised features), or clip_norm")
