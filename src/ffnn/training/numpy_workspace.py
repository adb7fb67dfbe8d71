"""The NumPy fast path for training steps: the same back-propagation as ``Network.forward`` and
``Network.backward`` (Wichmann's matrix form), computed into buffers allocated once per batch size.

It is used by :func:`ffnn.train` when the network's arrays are NumPy arrays and the objects supply
their fast forms — each hidden activation its in-place kernels (``Activation.inplace``), the loss an
in-place output kernel for the output activation (``Loss.fast_output``); anything else goes through
the array-namespace core. Tests
check that both paths give the same gradients and the same trained weights.

Per step, for layers l = 1..L (buffers ``h[l]`` hold z[l] and then a[l] in place, because σ′ of
every supported activation can be computed from its output):

    h[l] = σ_l(h[l−1] @ W[l] + b[l])
    d[L] = fused or ∂J/∂A ⊙ σ_L′                d[l] = (d[l+1] @ W[l+1]ᵀ) ⊙ σ_l′(h[l])
    gW[l] = h[l−1]ᵀ @ d[l];   gb[l] = Σ_n d[l]
"""

from __future__ import annotations

import numpy as np


def _scipy_blas():
    """SciPy's BLAS (gemm with beta ≠ 0 updates W in place), or None; imported on first use."""
    global _BLAS
    if _BLAS is False:
        try:
            from scipy.linalg import blas
        except ImportError:  # pragma: no cover - SciPy is optional; NumPy does the update without it
            blas = None
        _BLAS = blas
    return _BLAS


_BLAS = False

__all__ = ["supports", "Workspace"]

from .._array import is_numpy_namespace


def supports(net, loss, dropout=None, sample_weight=None) -> bool:
    """Whether the fast path computes this network's training step: NumPy arrays, every hidden
    activation with in-place kernels (``Activation.inplace``) and the loss with an in-place output
    kernel for the output activation (``Loss.fast_output``) — asked of the objects themselves, so a
    user's activation or loss always trains with its own functions, whatever its name."""
    if not is_numpy_namespace(net.xp):
        return False
    if dropout is not None or sample_weight is not None:
        return False
    hidden_ok = all(a.inplace is not None for a in net.activations[:-1])
    return hidden_ok and loss.fast_output(net.activations[-1]) is not None


SMALL_BATCH = 8  # at or below this batch size, SciPy's gemm updates W in place (NumPy's outer products are slow)


def _gemm_into(gemm, A, B, out, alpha=1.0, beta=0.0):
    """out ← alpha A @ B + beta out, in place, by a Fortran gemm on the transposes (outᵀ = Bᵀ Aᵀ).

    A and B may be C-contiguous arrays or transposed views of them; out is C-contiguous.
    """
    def as_transpose(M):  # (operand, trans flag) that gemm reads as Mᵀ
        return (M.T, 0) if M.flags.c_contiguous else (M, 1)

    a, ta = as_transpose(B)
    b, tb = as_transpose(A)
    r = gemm(alpha, a, b, beta=beta, c=out.T, trans_a=ta, trans_b=tb, overwrite_c=1)
    if not np.shares_memory(r, out):  # pragma: no cover - BLAS wrappers that copy
        out[...] = r.T


class Workspace:
    """Buffers for one batch size: activations, deltas and gradients, reused every step."""

    def __init__(self, net, batch_size, loss):
        dt = np.dtype(net.dtype)
        self.n = batch_size
        self.h = [np.empty((batch_size, s), dt) for s in net.sizes]        # h[0] is the batch of X
        self.t = np.empty((batch_size, net.sizes[-1]), dt)
        self.d = [None] + [np.empty((batch_size, s), dt) for s in net.sizes[1:]]
        self.mask = [np.empty((batch_size, s), bool) for s in net.sizes]
        # ∂J/∂W[l] and ∂J/∂b[l] by layer (index 0 unused), and the same arrays as 0-based lists
        self.use_gradient_buffers([np.empty_like(W) for W in net.weights], [np.empty_like(b) for b in net.biases])
        self.output = loss.fast_output(net.activations[-1])  # z[L] → a[L], δ[L] and J, in place
        self.kernels = [None] + [a.inplace for a in net.activations[:-1]]  # σ_l's kernels, l = 1..L−1

    def use_gradient_buffers(self, dW, db):
        """Write the gradients into these arrays (0-based lists [∂J/∂W[1], …], [∂J/∂b[1], …]): views of
        a flat buffer for MPI's one Allreduce. ``gW[l]``/``gb[l]`` index them by layer."""
        self.dW, self.db = list(dW), list(db)
        self.gW, self.gb = [None, *self.dW], [None, *self.db]

    def load(self, X, T, idx):
        """Gather rows ``idx`` of X and T into the batch buffers (one shuffle per epoch, no data copy)."""
        # mode="clip": with the default mode="raise", np.take buffers `out` (ten times slower); the
        # indices come from a permutation, so they are always in range.
        np.take(X, idx, axis=0, out=self.h[0], mode="clip")
        np.take(T, idx, axis=0, out=self.t, mode="clip")

    def _forward_backward(self, net):
        """h[l] = a[l], then J and every δ[l] (with the current weights). Returns J.

        Every list here is indexed by layer, l = 1..L (h[0] is the batch of X).
        """
        h, d, L = self.h, self.d, net.n_layers
        W, b = net.weights.by_layer(), net.biases.by_layer()
        for l in range(1, L + 1):
            np.matmul(h[l - 1], W[l], out=h[l])
            h[l] += b[l]
            if l < L:
                self.kernels[l].forward(h[l])
        J = self.output(h[L], d[L], self.t)
        for l in range(L - 1, 0, -1):  # δ[l] = (δ[l+1] @ W[l+1]ᵀ) ⊙ σ_l′, σ_l′ from a[l] = h[l]
            np.matmul(d[l + 1], W[l + 1].T, out=d[l])
            self.kernels[l].backward(d[l], h[l], self.mask[l])
        for l in range(1, L + 1):
            np.sum(d[l], axis=0, out=self.gb[l])
        return J

    def step(self, net):
        """Forward and backward on the loaded batch; returns J (float). Gradients land in gW[l], gb[l]."""
        J = self._forward_backward(net)
        for l in range(1, net.n_layers + 1):
            np.matmul(self.h[l - 1].T, self.d[l], out=self.gW[l])
        self._scale, self._gW_ready = 1.0, True
        return J

    def last_gradients(self):
        """``(dW, deltas, scale)`` of the last step, for diagnostics: ∂J/∂W[l] and δ[l] for l = 1..L,
        each times ``scale`` (−η after a fused SGD step, which scales δ in place; 1 otherwise). The
        products a[l−1]ᵀδ[l] are computed here when that step did not need them."""
        if not self._gW_ready:
            for l in range(1, len(self.d)):
                np.matmul(self.h[l - 1].T, self.d[l], out=self.gW[l])
            self._gW_ready = True
        return self.dW, self.d[1:], self._scale

    def sgd_step(self, net, lr, l2, penalty=0.0):
        """Forward, backward and the plain-SGD update W ← (1 − ηλ₂)W − η a[l−1]ᵀδ[l]; returns J (without
        the penalty term ``penalty`` of the weights the step starts from).

        Every δ[l] is computed with the old weights first, J + ``penalty`` and Σ_n δ[l] are checked to
        be finite, and only then is any parameter changed; returns None (nothing changed) when they
        are not.
        Products go through NumPy. The update of W is one pass: for a few samples a BLAS gemm with
        beta = 1 − ηλ₂ writes W in place (SciPy); otherwise −η is folded into δ (a small array) so
        that W += a[l−1]ᵀ(−ηδ[l]) needs no separate scaling pass over the gradient.
        """
        J = self._forward_backward(net)
        h, d, L = self.h, self.d, net.n_layers
        W, b = net.weights.by_layer(), net.biases.by_layer()
        if not (np.isfinite(J + penalty) and all(np.isfinite(gb).all() for gb in self.db)):
            return None
        self._scale = 1.0  # what d (and, when computed, gW) hold: δ times this
        decay = 1.0 - lr * l2
        blas = _scipy_blas() if self.n <= SMALL_BATCH else None
        if blas is not None:
            gemm = blas.sgemm if h[0].dtype == np.float32 else blas.dgemm
            for l in range(1, L + 1):
                _gemm_into(gemm, h[l - 1].T, d[l], W[l], alpha=-lr, beta=decay)
                b[l] -= lr * self.gb[l]
            self._gW_ready = False
            return J
        self._scale, self._gW_ready = -lr, True
        for l in range(1, L + 1):
            d[l] *= -lr
            np.matmul(h[l - 1].T, d[l], out=self.gW[l])
            if decay != 1.0:
                W[l] *= decay
            W[l] += self.gW[l]
            b[l] -= lr * self.gb[l]
        return J
