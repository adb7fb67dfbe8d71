"""One minibatch update: penalties, clipping, the divergence check and the optimiser's step.

    J_B = J(T_B, a[L]) + λ₁ Σ_l Σ|W[l]| + (λ₂/2) Σ_l Σ W[l]²
    g   = ∂J_B/∂θ           (back-propagation; + λ₁ sign(W) + λ₂ W for the weights)
    g  ← g · min(1, c / ‖g‖)    when clipping by global norm c
    θ  ← θ + optimiser step(g, η)
"""

from __future__ import annotations

import math

import numpy as np

from .stopping import TrainingDiverged

__all__ = []


def core_step(net, Xb, Tb, wb, loss, opt, state, params, lr, l1, l2, clip_norm, rates, rng):
    """One minibatch update of ``params`` in place through the array-namespace core; returns J_B."""
    trace = net._forward(Xb, rates, rng)
    J = float(net._loss_value(trace, Tb, loss, wb))
    g = net._backward(trace, Tb, loss, wb, input_gradient=False)
    return apply_update(net, J, list(g.weights), list(g.biases), opt, state, params, lr, l1, l2, clip_norm)


def fused_sgd_step(net, ws, loss, state, lr, l2):
    """Plain SGD through the fast path's fused gemm update (see fastpath.Workspace.sgd_step)."""
    penalty = 0.5 * l2 * sum(float(np.vdot(W, W)) for W in net.weights) if l2 > 0 else 0.0
    J = ws.sgd_step(net, loss, lr, l2)
    if J is None or not math.isfinite(J + penalty):
        raise TrainingDiverged(_diverged("the loss or a gradient"))
    state["step"] += 1
    return J + penalty


def apply_update(net, J, gWs, gbs, opt, state, params, lr, l1, l2, clip_norm):
    """Add the penalties to J and the weight gradients, clip, check, and apply the optimiser's step.

    Divergence is caught before anything changes: a non-finite J or bias gradient (Σ_n δ[l], which is
    non-finite whenever any δ entry is) stops training with the weights of the last good step.
    """
    xp = net.xp
    grads = []
    for W, gW, gb in zip(net.weights, gWs, gbs):
        if l2 > 0:
            gW = gW + l2 * W
            J += 0.5 * l2 * float(xp.sum(W * W))
        if l1 > 0:
            gW = gW + l1 * xp.sign(W)
            J += l1 * float(xp.sum(xp.abs(W)))
        grads += [gW, gb]
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
