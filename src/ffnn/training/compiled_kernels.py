"""The compiled inner loop: many training steps in one call, compiled by numba (``@njit(cache=True, error_model="numpy")``).

The same step as the interpreted loop — the formulas of :mod:`ffnn.network` (Wichmann's matrix form
of back-propagation), :mod:`ffnn.losses`, :mod:`ffnn.updates` and :mod:`ffnn.optim` — written as
loops over numbers, so that Python is entered once per chunk of steps instead of a few dozen times
per step. Per step, on the rows ``order[start + k·m : start + (k+1)·m]``:

    z[l] = a[l−1] @ W[l] + b[l];   a[l] = σ_l(z[l]) ⊙ m[l];   v[l] = σ_l′(z[l]) ⊙ m[l]   (l < L)
    J, δ[L]                        the loss's form for the output activation (fused or ∂J/∂A ⊙ σ_L′)
    δ[l] = (δ[l+1] @ W[l+1]ᵀ) ⊙ v[l]
    ∂J/∂W[l] = a[l−1]ᵀ @ δ[l];     ∂J/∂b[l] = Σ_n δ[l]
    J_B = J + λ₁ Σ|W| + λ₂/2 Σ W²  — a non-finite J_B or ∂J/∂b stops here, before anything changes
    g = ∂J/∂θ + λ₂ W + λ₁ sign W;  g ← g · min(1, c/‖g‖);  θ ← θ + optimiser(g, η_k)

(m[l]: the inverted-dropout mask, from the uniforms ``rng.random`` drew for the same step and layer,
in the order the interpreted loop draws them.) Each formula cites the place it is defined; what the
kernels know of an activation, a loss or an optimiser is the code its object declares (``compiled``
on activations and losses), so a user's objects never reach these kernels.

Matrix products: loops for at most :data:`SMALL_BATCH` rows and :data:`SMALL_LAYER` weights a layer,
the innermost one an axpy over a row (vectorised), with plain SGD's update of W folded into the
gradient's outer product; BLAS otherwise — NumPy's own OpenBLAS through its CBLAS gemm where NumPy
bundles one (:func:`_numpy_blas`), with plain SGD's update folded into the gradient's gemm
(W ← (1 − ηλ₂)W − η a[l−1]ᵀδ[l]), and numba's ``np.dot`` (SciPy's BLAS) for one-row products and
where NumPy bundles none. The measurements behind each choice: docs/user_guide/performance.rst.
"""

from __future__ import annotations

import ctypes
import glob
import math
import os

import llvmlite.binding as _llvm
import numpy as np
from numba import njit, types

__all__ = ["ACTIVATIONS", "LOSSES", "OUTPUTS", "OPTIMIZERS", "SMALL_BATCH", "run_steps"]

# Arrays reach the kernels flat, each kind in one buffer with offsets (numba's typed lists cost seconds
# to compile in every new process; flat buffers keep one compiled signature per dtype for every shape):
#   parameters θ_q, q = 0 … 2L−1 (W[1], b[1], W[2], …; b as 1 × S_l): P, G (∂J/∂θ), U (transformed), the
#   optimiser's slots S1, S2, all with offsets po and shapes pr × pc;
#   layers l = 0 … L, m × S_l each: H (a[l]; z[L] at L), D (δ[l]), V (σ_l′ ⊙ m[l]), with offsets ho;
#   the watched layers' running maxima of a[l], S_l each, with offsets ko.

# Activation codes (an activation's ``compiled`` names one, with its parameter).
ACTIVATIONS = {"identity": 0, "sigmoid": 1, "tanh": 2, "leaky_relu": 3, "elu": 4, "softplus": 5, "gelu": 6,
               "softmax": 7}
# Elementwise losses ℓ(A, T) (a built-in loss's ``compiled``: kind, factor, mean).
LOSSES = {"squared": 0, "cross_entropy": 1, "binary_cross_entropy": 2}
# Output forms: the generic ∂J/∂A ⊙ σ_L′, or a fused canonical pair computed from z[L].
OUTPUTS = {"generic": 0, "softmax_cross_entropy": 1, "sigmoid_binary_cross_entropy": 2,
           # the same with J from a[L] clipped to [eps, 1 − eps], as scikit-learn reports it (ffnn.sklearn)
           "softmax_cross_entropy_clipped": 3, "sigmoid_binary_cross_entropy_clipped": 4}
# Update rules (ffnn.optim); AdamW is Adam with its decay flags.
OPTIMIZERS = {"sgd": 0, "momentum": 1, "nesterov": 2, "adam": 3, "rmsprop": 4}

SMALL_BATCH = 4  # at or below this many rows per step, products of small layers are loops (BLAS calls cost
SMALL_LAYER = 32768  # more than they save); layers with more weights than this always go to BLAS
# The products' loops may reassociate sums and contract a·b + c into one fused multiply-add, as BLAS
# does: the same products to rounding, and no flag that changes what NaN or infinity do.
_PRODUCT_MATH = {"reassoc", "contract"}



def _numpy_blas():
    """NumPy's own OpenBLAS (the scipy-openblas64 its wheels bundle), whose gemm is measured faster
    than the SciPy build numba's ``np.dot`` calls on this machine (32 × 784 by 784 × 256, float32: 194 µs
    against 276 µs): its CBLAS gemm entry points registered for the kernels as ``ffnn_cblas_sgemm`` and
    ``ffnn_cblas_dgemm``. Returns 1 when found; else 0, and the names point at numba's own BLAS helper
    (never called then: the kernels take ``np.dot``), so that the cached machine code always links."""
    root = os.path.dirname(np.__file__)
    candidates = [*glob.glob(os.path.join(root, os.pardir, "numpy.libs", "libscipy_openblas64_*")),
                  *glob.glob(os.path.join(root, ".dylibs", "libscipy_openblas64_*"))]
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            addresses = [ctypes.cast(getattr(lib, f"scipy_cblas_{p}gemm64_"), ctypes.c_void_p).value for p in "sd"]
        except (OSError, AttributeError):
            continue
        _llvm.add_symbol("ffnn_cblas_sgemm", addresses[0])
        _llvm.add_symbol("ffnn_cblas_dgemm", addresses[1])
        return 1
    from numba import _helperlib

    placeholder = _helperlib.c_helpers["xxgemm"]
    _llvm.add_symbol("ffnn_cblas_sgemm", placeholder)
    _llvm.add_symbol("ffnn_cblas_dgemm", placeholder)
    return 0


BLAS = _numpy_blas()  # passed to the kernels as an argument (a global would be frozen into the cache)
_GEMM_ARGS = (types.int32, types.int32, types.int32, types.int64, types.int64, types.int64)
_sgemm = types.ExternalFunction("ffnn_cblas_sgemm", types.void(*_GEMM_ARGS, types.float32, types.uintp, types.int64,
                                                              types.uintp, types.int64, types.float32, types.uintp,
                                                              types.int64))
_dgemm = types.ExternalFunction("ffnn_cblas_dgemm", types.void(*_GEMM_ARGS, types.float64, types.uintp, types.int64,
                                                              types.uintp, types.int64, types.float64, types.uintp,
                                                              types.int64))
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

_GELU_C = math.sqrt(2.0 / math.pi)
_GELU_K = 0.044715


# --- activations: σ(z) and σ′(z), as ffnn.activations defines each ------------------------------------

@njit(cache=True, error_model="numpy")
def _sigmoid(z):
    # ffnn.activations._sigmoid: written with e^{−|z|} so that no exponent overflows
    e = np.exp(-np.abs(z))
    return 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)


@njit(cache=True, error_model="numpy")
def _activate(code, p, z):
    """(σ(z), σ′(z)) for activation ``code`` with parameter ``p`` (slope, α)."""
    if code == 0:    # identity
        return z, z * 0.0 + 1.0
    if code == 1:    # sigmoid: φ′ = φ(1 − φ) (Sheptunov)
        a = _sigmoid(z)
        return a, a * (1.0 - a)
    if code == 2:    # tanh: σ′ = 1 − tanh² z
        a = np.tanh(z)
        return a, 1.0 - a * a
    if code == 3:    # leaky_relu (relu: slope 0): z or slope·z; σ′ = 1 or slope
        if z > 0:
            return z, z * 0.0 + 1.0
        return p * z, z * 0.0 + p
    if code == 4:    # elu: α(e^z − 1) for z ≤ 0; σ′ = α e^z
        if z > 0:
            return z, z * 0.0 + 1.0
        return p * np.expm1(z), p * np.exp(z)
    if code == 5:    # softplus: max(z, 0) + log1p(e^{−|z|}); σ′ = sigmoid
        return max(z, z * 0.0) + np.log1p(np.exp(-np.abs(z))), _sigmoid(z)
    # gelu, the tanh form: ½ z (1 + tanh(c(z + k z³)))
    t = np.tanh(_GELU_C * (z + _GELU_K * z * z * z))
    return 0.5 * z * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * _GELU_C * (1.0 + 3.0 * _GELU_K * z * z)


@njit(cache=True, error_model="numpy")
def _activate_layer(code, p, Z, V, b):
    """Z ← σ(Z + b) and V ← σ′(Z + b), elementwise (b: the bias row, added here in the same pass), one
    loop per activation (so that simple ones vectorise).

    The kernels index matrices element by element: a row view would cost two atomic reference-count
    updates each (numba's runtime), more than the row's arithmetic at a small batch."""
    m, n = Z.shape
    one = Z.dtype.type(1.0)
    zero = Z.dtype.type(0.0)
    if code == 3:  # leaky_relu (relu: slope 0)
        slope = Z.dtype.type(p)
        for r in range(m):
            for j in range(n):
                x = Z[r, j] + b[0, j]
                pos = x > zero
                Z[r, j] = x if pos else slope * x
                V[r, j] = one if pos else slope
        return
    if code == 0:
        for r in range(m):
            for j in range(n):
                Z[r, j] += b[0, j]
                V[r, j] = one
        return
    for r in range(m):
        for j in range(n):
            a, dv = _activate(code, p, Z[r, j] + b[0, j])
            Z[r, j] = a
            V[r, j] = dv


# --- products ----------------------------------------------------------------------------------------

@njit(cache=True, error_model="numpy")
def _gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc):
    """C ← alpha op(A) op(B) + beta C, row-major, with NumPy's BLAS (ta, tb: transpose A, B)."""
    t1 = _TRANS if ta else _NO_TRANS
    t2 = _TRANS if tb else _NO_TRANS
    if C.itemsize == 4:
        _sgemm(_ROW_MAJOR, t1, t2, M, N, K, np.float32(alpha), A.ctypes.data, lda, B.ctypes.data, ldb,
               np.float32(beta), C.ctypes.data, ldc)
    else:
        _dgemm(_ROW_MAJOR, t1, t2, M, N, K, np.float64(alpha), A.ctypes.data, lda, B.ctypes.data, ldb,
               np.float64(beta), C.ctypes.data, ldc)


@njit(cache=True, error_model="numpy", fastmath=_PRODUCT_MATH)
def _product(h, W, z, blas):
    """z = h @ W (h: m × n_in, W: n_in × n_out); the bias is added by the pass that follows."""
    m, n_in = h.shape
    n_out = W.shape[1]
    if m <= SMALL_BATCH and n_in * n_out <= SMALL_LAYER:
        zero = z.dtype.type(0.0)
        for r in range(m):
            for j in range(n_out):
                z[r, j] = zero
            for i in range(n_in):
                x = h[r, i]
                if x != zero:
                    for j in range(n_out):
                        z[r, j] += x * W[i, j]
    elif blas and m > 1:  # (one row: SciPy's gemm is measured faster than NumPy's, 2.3× on 1 × 784 by 784 × 256)
        _gemm(False, False, m, n_out, n_in, 1.0, h, n_in, W, n_out, 0.0, z, n_out)
    else:
        np.dot(h, W, z)


@njit(cache=True, error_model="numpy", fastmath=_PRODUCT_MATH)
def _back(d_next, W_next, out, blas):
    """out = δ[l+1] @ W[l+1]ᵀ."""
    m = d_next.shape[0]
    n_in, n_out = W_next.shape
    if m <= SMALL_BATCH and n_in * n_out <= SMALL_LAYER:
        zero = out.dtype.type(0.0)
        for r in range(m):
            for i in range(n_in):
                s = zero
                for j in range(n_out):
                    s += d_next[r, j] * W_next[i, j]
                out[r, i] = s
    elif blas and m > 1:
        _gemm(False, True, m, n_in, n_out, 1.0, d_next, n_out, W_next, n_out, 0.0, out, n_in)
    else:
        np.dot(d_next, W_next.T, out)


@njit(cache=True, error_model="numpy", fastmath=_PRODUCT_MATH)
def _weight_gradient(h, d, gW, blas, alpha=1.0, beta=0.0):
    """gW = a[l−1]ᵀ @ δ[l]."""
    m = h.shape[0]
    if m <= SMALL_BATCH and gW.shape[0] * gW.shape[1] <= SMALL_LAYER:
        zero = gW.dtype.type(0.0)
        for i in range(gW.shape[0]):
            for j in range(gW.shape[1]):
                gW[i, j] = zero
        for r in range(m):
            for i in range(gW.shape[0]):
                x = h[r, i]
                if x != zero:
                    for j in range(gW.shape[1]):
                        gW[i, j] += x * d[r, j]
    elif blas:  # gW ← alpha a[l−1]ᵀδ[l] + beta gW (plain SGD writes W itself: alpha = −η, beta = 1 − ηλ₂)
        _gemm(True, False, gW.shape[0], gW.shape[1], m, alpha, h, gW.shape[0], d, gW.shape[1], beta, gW, gW.shape[1])
    else:
        np.dot(h.T, d, gW)


@njit(cache=True, error_model="numpy", fastmath=_PRODUCT_MATH)
def _sgd_outer(h, d, W, scale, decay):
    """W ← decay·W + scale · a[l−1]ᵀ δ[l], in one pass (plain SGD: scale = −η)."""
    m = h.shape[0]
    decay = W.dtype.type(decay)
    scale = W.dtype.type(scale)
    zero = W.dtype.type(0.0)
    if decay != 1.0:
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                W[i, j] *= decay
    for r in range(m):
        for i in range(W.shape[0]):
            x = scale * h[r, i]
            if x != zero:
                for j in range(W.shape[1]):
                    W[i, j] += x * d[r, j]


# --- the loss at the output: J and δ[L] (ffnn.losses) --------------------------------------------------

@njit(cache=True, error_model="numpy")
def _batch_total(wb, m, weighted):
    """s_B: the batch's size, or its sum of sample weights (the mean losses' 1/N, PerBatchL2's α / s_B)."""
    if not weighted:
        return float(m)
    total = 0.0
    for r in range(m):
        total += wb[r]
    return total


@njit(cache=True, error_model="numpy")
def _output(z, A, d, T, wb, weighted, out_code, act_code, act_p, loss_code, factor, mean, eps):
    """J(T, a[L]) and δ[L] into ``d`` from z[L] (``A`` receives a[L]); ``wb``: the rows' sample weights."""
    m, K = z.shape
    scale = factor / _batch_total(wb, m, weighted) if mean else factor
    J = 0.0
    if out_code == 1 or out_code == 3:  # softmax + cross-entropy: δ = (A Σ_k T_k − T)·scale·w (losses._FusedSoftmaxCE)
        for r in range(m):
            mx = z[r, 0]
            for k in range(1, K):
                mx = max(mx, z[r, k])
            s = 0.0
            for k in range(K):
                A[r, k] = np.exp(z[r, k] - mx)
                s += A[r, k]
            log_s = np.log(s)
            t_sum, row = 0.0, 0.0
            for k in range(K):
                A[r, k] /= s
                t_sum += T[r, k]
                if out_code == 1:
                    row += T[r, k] * (z[r, k] - mx - log_s)
                elif T[r, k] != 0.0:  # scikit-learn's log_loss: xlogy(T, clip(A, eps, 1 − eps))
                    row += T[r, k] * np.log(min(max(A[r, k], eps), 1.0 - eps))
            w = wb[r] if weighted else 1.0
            J -= w * row
            c = scale * w
            for k in range(K):
                d[r, k] = (A[r, k] * t_sum - T[r, k]) * c
        return J * scale
    if out_code == 2 or out_code == 4:  # sigmoid + BCE: J from softplus(z) − T z; δ = (A − T)·scale·w (losses._FusedSigmoidBCE)
        for r in range(m):
            w = wb[r] if weighted else 1.0
            row = 0.0
            for k in range(K):
                x, t = z[r, k], T[r, k]
                A[r, k] = _sigmoid(x)
                if out_code == 2:
                    row += max(x, 0.0) + np.log1p(np.exp(-abs(x))) - t * x
                else:  # scikit-learn's binary_log_loss, from A clipped to [eps, 1 − eps]
                    ac = min(max(A[r, k], eps), 1.0 - eps)
                    row -= t * np.log(ac) + (1.0 - t) * np.log1p(-ac)
                d[r, k] = (A[r, k] - t) * (scale * w)
            J += w * row
        return J * scale
    # generic: G = ∂ℓ/∂A · scale · w, then δ = G ⊙ σ_L′(z) (elementwise) or a ⊙ (G − Σ_k G_k a_k) (softmax)
    for r in range(m):
        if act_code == 7:
            mx = z[r, 0]
            for k in range(1, K):
                mx = max(mx, z[r, k])
            s = 0.0
            for k in range(K):
                A[r, k] = np.exp(z[r, k] - mx)
                s += A[r, k]
            for k in range(K):
                A[r, k] /= s
        w = wb[r] if weighted else 1.0
        row = 0.0
        dv = 1.0
        for k in range(K):
            if act_code != 7:
                a, dv = _activate(act_code, act_p, z[r, k])
                A[r, k] = a
            a, t = A[r, k], T[r, k]
            if loss_code == 0:    # squared: ℓ = (T − A)², ∂ℓ/∂A = 2(A − T)
                e = t - a
                row += e * e
                g = 2.0 * (a - t)
            elif loss_code == 1:  # cross-entropy: ℓ = −T log A, ∂ℓ/∂A = −T / A (A clipped to [eps, 1 − eps])
                ac = min(max(a, eps), 1.0 - eps)
                row += -t * np.log(ac)
                g = -t / ac
            else:                 # binary cross-entropy
                ac = min(max(a, eps), 1.0 - eps)
                row += -(t * np.log(ac) + (1.0 - t) * np.log1p(-ac))
                g = (ac - t) / (ac * (1.0 - ac))
            g = g * scale
            if weighted:
                g = g * w
            d[r, k] = g * dv if act_code != 7 else g
        J += row * w
        if act_code == 7:
            s = 0.0
            for k in range(K):
                s += d[r, k] * A[r, k]
            for k in range(K):
                d[r, k] = A[r, k] * (d[r, k] - s)
    return J * scale


# --- the epoch's steps --------------------------------------------------------------------------------

@njit(cache=True, error_model="numpy")
def _at(flat, off, q, rows, cols):
    """Block q of a flat buffer as a rows × cols matrix (a view)."""
    return flat[off[q]:off[q + 1]].reshape((rows, cols))


@njit(cache=True, error_model="numpy")
def run_steps(X, T, w, order, start, m, lrs, P, G, U, S1, S2, po, pr, pc, H, D, V, ho, sz, A_out, Tb, wb, acts, act_p,
              keep, drop_u, peaks, ko, watch, out_code, loss_code, factor, mean, eps, jscale, l1, l2, alpha, clip, opt,
              hp, decays, step, grads_on_last, check, Wb, dg, blas):
    """``len(lrs)`` steps of ``m`` rows each (see the module docstring). Returns (steps done, Σ J_B·m,
    whether the step after them diverged).

    P is updated in place, and the optimiser's slots S1, S2; G holds ∂J/∂θ of the loss (the last
    step's, for the diagnostics). ``acts``/``act_p``: each layer's activation code and parameter;
    ``keep``: each hidden layer's keep probability; ``drop_u``: the uniforms of the dropout masks;
    ``watch``: the layers whose running maximum of a[l] ``peaks`` holds; ``hp``: the optimiser's
    hyperparameters; ``decays``: AdamW's flag per parameter; ``step``: the optimiser's step count
    before the first step; ``grads_on_last``: on the final step, compute G and the diagnostics into
    ``dg`` (:func:`_measure`; ``Wb`` receives the weights that step starts from); ``jscale``: a factor on J
    alone in J_B (scikit-learn's report of the squared error); ``check``: stop at a non-finite J_B or
    bias gradient (scikit-learn's own loop does not).
    """
    L = sz.shape[0] - 1
    n_steps = lrs.shape[0]
    weighted = w.shape[0] > 0
    has_penalty = l1 > 0.0 or l2 > 0.0 or alpha > 0.0
    transform = has_penalty or clip > 0.0
    plain = opt == 0 and clip == 0.0 and l1 == 0.0 and alpha == 0.0  # θ ← (1 − ηλ₂)θ − η g
    fused = plain and m <= SMALL_BATCH      # folded into the products' loops
    in_gemm = plain and not fused and blas == 1  # folded into BLAS: W ← (1 − ηλ₂)W − η a[l−1]ᵀδ[l]
    # each layer's blocks as matrices, once per call
    Hs = [_at(H, ho, l, m, sz[l]) for l in range(L + 1)]
    Ds = [_at(D, ho, l, m, sz[l]) for l in range(L + 1)]
    Vs = [_at(V, ho, l, m, sz[l]) for l in range(L + 1)]
    Ws = [_at(P, po, 2 * l - 2, pr[2 * l - 2], pc[2 * l - 2]) for l in range(1, L + 1)]
    Bs = [_at(P, po, 2 * l - 1, 1, sz[l]) for l in range(1, L + 1)]
    GWs = [_at(G, po, 2 * l - 2, pr[2 * l - 2], pc[2 * l - 2]) for l in range(1, L + 1)]
    u_at = 0
    total = 0.0
    for k in range(n_steps):
        lr = lrs[k]
        # the batch's rows
        base = start + k * m
        X0 = Hs[0]
        for r in range(m):
            i = order[base + r]
            for j in range(sz[0]):
                X0[r, j] = X[i, j]
            for j in range(sz[L]):
                Tb[r, j] = T[i, j]
            if weighted:
                wb[r] = w[i]
        # forward: a[l] = σ_l(a[l−1] @ W[l] + b[l]) ⊙ m[l]; V[l] = σ_l′(z[l]) ⊙ m[l]
        for l in range(1, L + 1):
            Z = Hs[l]
            _product(Hs[l - 1], Ws[l - 1], Z, blas)
            if l == L:
                b = Bs[l - 1]
                for r in range(m):
                    for j in range(sz[l]):
                        Z[r, j] += b[0, j]
                break
            Vl = Vs[l]
            _activate_layer(acts[l], act_p[l], Z, Vl, Bs[l - 1])
            kp = keep[l]
            if kp < 1.0:  # inverted dropout: m[l] = [u < keep] / keep
                inv = Z.dtype.type(1.0 / kp)
                for r in range(m):
                    for j in range(sz[l]):
                        if drop_u[u_at] < kp:
                            Z[r, j] *= inv
                            Vl[r, j] *= inv
                        else:
                            Z[r, j] = 0.0
                            Vl[r, j] = 0.0
                        u_at += 1
            if watch[l]:  # each unit's running maximum of a[l] (a NaN ends the run before it is read)
                o = ko[l]
                for r in range(m):
                    for j in range(sz[l]):
                        x, p = Z[r, j], peaks[o + j]
                        peaks[o + j] = x if x > p else p
        J = _output(Hs[L], A_out, Ds[L], Tb, wb, weighted, out_code, acts[L],
                    act_p[L], loss_code, factor, mean, eps)
        # backward: δ[l] = (δ[l+1] @ W[l+1]ᵀ) ⊙ V[l]
        for l in range(L - 1, 0, -1):
            Dl = Ds[l]
            _back(Ds[l + 1], Ws[l], Dl, blas)
            Vl = Vs[l]
            for r in range(m):
                for j in range(sz[l]):
                    Dl[r, j] *= Vl[r, j]
        # ∂J/∂b[l] = Σ_n δ[l]; the penalty's term; the divergence check before any change
        finite = True
        for l in range(1, L + 1):
            gb, Dl = G[po[2 * l - 1]:po[2 * l]], Ds[l]
            for j in range(sz[l]):
                gb[j] = 0.0
            for r in range(m):
                for j in range(sz[l]):
                    gb[j] += Dl[r, j]
            for j in range(sz[l]):
                if not math.isfinite(gb[j]):
                    finite = False
        lam1, lam2 = l1, l2
        if alpha > 0.0:  # scikit-learn's α / s_B (updates.PerBatchL2)
            lam2 = alpha / _batch_total(wb, m, weighted)
        extra = 0.0
        if has_penalty:
            for l in range(1, L + 1):
                sq, ab = 0.0, 0.0
                for i in range(po[2 * l - 2], po[2 * l - 1]):
                    x = P[i]
                    sq += x * x
                    ab += abs(x)
                if lam2 > 0.0:
                    extra += 0.5 * lam2 * sq
                if lam1 > 0.0:
                    extra += lam1 * ab
        JB = J * jscale + extra
        if check and not (finite and math.isfinite(JB)):
            return k, total, True
        total += JB * m
        step += 1
        measure = k == n_steps - 1 and grads_on_last
        if measure or not (fused or in_gemm):
            for l in range(1, L + 1):
                _weight_gradient(Hs[l - 1], Ds[l], GWs[l - 1], blas)
        if measure:
            for i in range(P.shape[0]):
                Wb[i] = P[i]
        if in_gemm:
            for l in range(1, L + 1):
                _weight_gradient(Hs[l - 1], Ds[l], Ws[l - 1], blas, -lr, 1.0 - lr * lam2)
                for i in range(po[2 * l - 1], po[2 * l]):
                    P[i] -= lr * G[i]
        elif fused:
            # plain SGD folded into the products: W ← (1 − ηλ₂)W − η a[l−1]ᵀδ[l]; b ← b − η Σ_n δ[l]
            for l in range(1, L + 1):
                _sgd_outer(Hs[l - 1], Ds[l], Ws[l - 1], -lr, 1.0 - lr * lam2)
                for i in range(po[2 * l - 1], po[2 * l]):
                    P[i] -= lr * G[i]
        else:
            _update(P, G, U, S1, S2, po, transform, lam1, lam2, clip, opt, hp, decays, lr, step)
        if measure:
            _measure(P, G, Wb, Ds, po, dg)
    return n_steps, total, False


@njit(cache=True, error_model="numpy")
def _measure(P, G, Wb, Ds, po, dg):
    """The diagnostics of a step (ffnn.training.diagnostics), per layer l into dg[l]: Σ (∂J/∂W)², mean |δ|,
    Σ (W − W_before)², Σ W_before²."""
    L = dg.shape[0] - 1
    for l in range(1, L + 1):
        g2, dw2, w2 = 0.0, 0.0, 0.0
        for i in range(po[2 * l - 2], po[2 * l - 1]):
            g2 += float(G[i]) * float(G[i])
            d = float(P[i]) - float(Wb[i])
            dw2 += d * d
            w2 += float(Wb[i]) * float(Wb[i])
        Dl = Ds[l]
        a = 0.0
        for r in range(Dl.shape[0]):
            for j in range(Dl.shape[1]):
                a += abs(float(Dl[r, j]))
        dg[l, 0], dg[l, 1], dg[l, 2], dg[l, 3] = g2, a / (Dl.shape[0] * Dl.shape[1]), dw2, w2


@njit(cache=True, error_model="numpy")
def _update(P, G, U, S1, S2, po, transform, lam1, lam2, clip, opt, hp, decays, lr, step):
    """The update chain (ffnn.updates.Chain): penalty, clipping, then the optimiser (ffnn.optim)."""
    n = po.shape[0] - 1
    src = G
    if transform:
        src = U
        for q in range(n):
            is_weight = q % 2 == 0
            for i in range(po[q], po[q + 1]):
                x = G[i]
                if is_weight:  # g + λ₂ W + λ₁ sign W (updates.Penalty, weights only)
                    if lam2 > 0.0:
                        x = x + lam2 * P[i]
                    if lam1 > 0.0:
                        pv = P[i]
                        x = x + lam1 * (1.0 if pv > 0 else (-1.0 if pv < 0 else 0.0 * pv))
                U[i] = x
        if clip > 0.0:  # g · c/‖g‖ when ‖g‖ > c (updates.ClipByGlobalNorm; squares summed in float64)
            sq = 0.0
            for i in range(U.shape[0]):
                sq += float(U[i]) * float(U[i])
            norm = math.sqrt(sq)
            if norm > clip:
                c = U.dtype.type(clip / norm)
                for i in range(U.shape[0]):
                    U[i] *= c
    if opt == 0:      # SGD: θ ← θ − η g
        eta = P.dtype.type(lr)
        for i in range(P.shape[0]):
            P[i] -= eta * src[i]
    elif opt == 1 or opt == 2:  # momentum: v ← μv − ηg; θ ← θ + v (Nesterov: θ ← θ + μv − ηg)
        mu = hp[0]
        for i in range(P.shape[0]):
            g = src[i]
            x = S1[i] * mu
            x -= lr * g
            S1[i] = x
            if opt == 2:
                P[i] += mu * x - lr * g
            else:
                P[i] += x
    elif opt == 3:    # Adam (Kingma & Ba), AdamW's decoupled decay where flagged
        b1, b2, eps, ssc, wd = hp[0], hp[1], hp[2], hp[3], hp[4]
        bc1, bc2 = 1.0 - b1 ** step, 1.0 - b2 ** step
        lr_t = lr * math.sqrt(bc2) / bc1
        for q in range(n):
            decay = decays[q]
            for i in range(po[q], po[q + 1]):
                g = src[i]
                mv = S1[i] * b1
                mv += (1.0 - b1) * g
                sv = S2[i] * b2
                sv += (1.0 - b2) * (g * g)
                S1[i] = mv
                S2[i] = sv
                if ssc > 0.0:
                    u = -lr_t * mv / (np.sqrt(sv) + eps)
                else:
                    u = -lr * (mv / bc1) / (np.sqrt(sv / bc2) + eps)
                if decay:
                    u = u - (lr * wd) * P[i]
                P[i] += u
    else:             # RMSprop (Tieleman & Hinton): s ← ρs + (1 − ρ)g²; θ ← θ − ηg/(√s + ε)
        rho, eps = hp[0], hp[1]
        for i in range(P.shape[0]):
            g = src[i]
            sv = S1[i] * rho
            sv += (1.0 - rho) * (g * g)
            S1[i] = sv
            P[i] += -lr * g / (np.sqrt(sv) + eps)
