"""The feed-forward network: parameters, the forward pass, and back-propagation.

Notation (batch-first; ../shared/DESIGN.md maps each seed's to it). Layers l = 1..L, layer 0 is the
input:

    a[0] = X                                  (N, S_0)
    z[l] = a[l−1] @ W[l] + b[l]               (N, S_l)    seed 004 eq. 1.4, transposed
    a[l] = σ_l(z[l])

Back-propagation (seed 004 §2 in matrix form, transposed; δ = H of seed 004 = δ of seeds 000/003 =
minus the "error term" e of seed 002):

    δ[L] = ∂J/∂A ⊙ σ_L′(z[L])                 (eq. 2.13; fused for the canonical pairs)
    δ[l] = (δ[l+1] @ W[l+1]ᵀ) ⊙ σ_l′(z[l])     (eq. 2.32–2.34; seed 003's δ⁽ˡ⁾ = g′(Z) ⊙ Wᵀδ⁽ˡ⁺¹⁾)
    ∂J/∂W[l] = a[l−1]ᵀ @ δ[l]                 (eq. 2.33; seed 000's ∂E/∂w_ij = δ_j o_i)
    ∂J/∂b[l] = Σ_n δ[l]                       (eq. 2.37)
    ∂J/∂X    = δ[1] @ W[1]ᵀ                   (seed 002, gradient with respect to the inputs)

The whole batch goes through each step at once; no Python loop runs over samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from . import activations as _act
from . import losses as _loss
from ._array import array_namespace, dtype_name, resolve_dtype, to_numpy
from .init import draw_weights, resolve_init
from .layers import LayerList

__all__ = ["Network", "Trace", "Gradients"]


@dataclass
class Trace:
    """What the forward pass caches for back-propagation.

    Attributes
    ----------
    z : LayerList
        ``z[l]``, the net inputs, l = 1..L, each (N, S_l).
    a : list
        ``a[l]``, the activations, l = 0..L (``a[0]`` is X), each (N, S_l).
    masks : LayerList or None
        Inverted-dropout masks (already divided by the keep probability) applied to hidden
        activations during training; None when nothing was dropped.
    """

    z: LayerList
    a: list
    masks: LayerList | None = None

    @property
    def output(self):
        """a[L], the network's output (N, S_L)."""
        return self.a[-1]


@dataclass
class Gradients:
    """∂J/∂(everything), shaped like what it differentiates.

    Attributes
    ----------
    weights : LayerList
        ∂J/∂W[l], (S_{l−1}, S_l), l = 1..L.
    biases : LayerList
        ∂J/∂b[l], (S_l,), l = 1..L.
    deltas : LayerList
        δ[l] = ∂J/∂z[l], (N, S_l): δ of seeds 000/003, H of seed 004, −e of seed 002.
    inputs : array or None
        ∂J/∂X, (N, S_0) (seed 002's second derivation); None when not asked for.
    """

    weights: LayerList
    biases: LayerList
    deltas: LayerList
    inputs: object = None


def _all_finite(xp, X):
    """Whether every entry of the 2-D array X is finite.

    X @ 0 is one matrix-vector product (fast, multi-threaded, no temporary the size of X): a row's
    result is 0 when all its entries are finite and NaN when any is NaN or ±inf (inf · 0 = NaN).
    """
    if X.shape[0] == 0 or X.shape[1] == 0:
        return True
    with np.errstate(invalid="ignore", over="ignore"):  # inf · 0 is the NaN we are looking for
        probe = X @ xp.zeros((X.shape[1],), dtype=X.dtype)
        return bool(xp.all(probe == 0))


def _check_sizes(sizes):
    try:
        sizes = list(sizes)
    except TypeError:
        raise TypeError(f"sizes must be a sequence of layer widths, got {type(sizes).__name__}") from None
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output width, got {sizes}")
    out = []
    for i, s in enumerate(sizes):
        if isinstance(s, bool) or not isinstance(s, Integral):
            raise TypeError(f"sizes[{i}] must be an int, got {s!r}")
        if s <= 0:
            raise ValueError(f"sizes[{i}] = {s}: every layer width must be a positive integer")
        out.append(int(s))
    return tuple(out)


def _resolve_activations(activation, output, n_hidden):
    if isinstance(activation, (list, tuple)):
        if len(activation) != n_hidden:
            raise ValueError(f"activation list has {len(activation)} entries; the network has {n_hidden} hidden layers")
        hidden = [_act.get_activation(a) for a in activation]
    else:
        hidden = [_act.get_activation(activation)] * n_hidden
    for l, a in enumerate(hidden, start=1):
        if not a.hidden_ok:
            raise ValueError(f"{a.name} cannot be used on hidden layer {l}; it is for the output layer only")
    return tuple(hidden) + (_act.get_activation(output),)


class Network:
    """A feed-forward network of any width and depth, each layer with its own activation.

    Parameters
    ----------
    sizes : sequence of int
        Widths from input to output, ``[S_0, S_1, …, S_L]``; L = len(sizes) − 1 layers of weights.
    activation : str, Activation, or list of them
        The hidden layers' σ: one for all, or one per hidden layer (seed 004's σ_l).
    output : str or Activation
        σ_L of the output layer ("identity" for a numeric outcome, seed 003).
    init : str
        ``"auto"`` (He for the relu family, Glorot otherwise) or one of ``ffnn.init.INITIALIZERS``.
    seed : int, numpy.random.Generator or None
        The source of every random draw; the same seed gives the same network bit for bit.
    dtype : "float32" or "float64"
        Kept end to end: parameters, activations and gradients.
    xp : array namespace, optional
        Where the parameters live (NumPy by default; e.g. ``array_api_strict``, CuPy, torch).

    Attributes
    ----------
    weights : LayerList
        ``weights[l]`` of shape (S_{l−1}, S_l), l = 1..L (``weights[-1]`` is the output layer's).
    biases : LayerList
        ``biases[l]`` of shape (S_l,).
    activations : tuple of Activation
        σ_1 … σ_L.
    """

    def __init__(self, sizes, activation="sigmoid", output="identity", *, init="auto", seed=None,
                 dtype="float64", xp=None):
        sizes = _check_sizes(sizes)
        acts = _resolve_activations(activation, output, len(sizes) - 2)
        xp = np if xp is None else xp
        xp_dtype = resolve_dtype(xp, dtype)
        inits = [resolve_init(init, a.name) for a in acts]
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        weights = [xp.asarray(draw_weights(rng, name, n_in, n_out), dtype=xp_dtype)
                   for name, n_in, n_out in zip(inits, sizes[:-1], sizes[1:])]
        biases = [xp.zeros((n_out,), dtype=xp_dtype) for n_out in sizes[1:]]
        self.sizes = sizes
        self.activations = acts
        self.init = init
        self.dtype = dtype_name(dtype)
        self.xp = xp
        self.weights = LayerList(weights, "weights", check_shapes=True)
        self.biases = LayerList(biases, "biases", check_shapes=True)

    # --- description ---------------------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        """L, the number of weight layers (hidden layers + output)."""
        return len(self.sizes) - 1

    @property
    def n_parameters(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def parameters(self):
        """All parameter arrays, ``[W1, b1, W2, b2, …]`` (the one source the optimisers read)."""
        out = []
        for W, b in zip(self.weights, self.biases):
            out += [W, b]
        return out

    def __repr__(self):
        acts = ", ".join(a.name for a in self.activations)
        return f"Network(sizes={list(self.sizes)}, activations=[{acts}], dtype={self.dtype})"

    def copy(self):
        """A deep copy: same architecture, parameters copied."""
        new = object.__new__(Network)
        new.__dict__.update(self.__dict__)
        xp = self.xp
        new.weights = LayerList([xp.asarray(W, copy=True) for W in self.weights], "weights", check_shapes=True)
        new.biases = LayerList([xp.asarray(b, copy=True) for b in self.biases], "biases", check_shapes=True)
        return new

    def to(self, xp=None, dtype=None):
        """A copy whose parameters live in namespace ``xp`` and/or have ``dtype``."""
        xp = self.xp if xp is None else xp
        dtype = self.dtype if dtype is None else dtype_name(dtype)
        d = resolve_dtype(xp, dtype)
        new = object.__new__(Network)
        new.__dict__.update(self.__dict__)
        new.xp, new.dtype = xp, dtype
        convert = (lambda x: xp.asarray(x, dtype=d, copy=True)) if xp is self.xp else \
            (lambda x: xp.asarray(to_numpy(x), dtype=d))
        new.weights = LayerList([convert(W) for W in self.weights], "weights", check_shapes=True)
        new.biases = LayerList([convert(b) for b in self.biases], "biases", check_shapes=True)
        return new

    def __getstate__(self):
        state = dict(self.__dict__)
        state["xp"] = None if self.xp is np else self.xp.__name__
        state["weights"] = [to_numpy(W) for W in self.weights]
        state["biases"] = [to_numpy(b) for b in self.biases]
        return state

    def __setstate__(self, state):
        import importlib

        xp = np if state["xp"] is None else importlib.import_module(state["xp"])
        state = dict(state, xp=xp)
        state["weights"] = LayerList([xp.asarray(W) for W in state["weights"]], "weights", check_shapes=True)
        state["biases"] = LayerList([xp.asarray(b) for b in state["biases"]], "biases", check_shapes=True)
        self.__dict__.update(state)

    # --- input checks ------------------------------------------------------------------------------

    def _as_input(self, X, what="X", width=None):
        """X as a 2-D array of the network's dtype and namespace, checked for shape and finiteness."""
        xp = self.xp
        width = self.sizes[0] if width is None else width
        if not hasattr(X, "shape") or not hasattr(X, "dtype"):
            X = np.asarray(X)
        if X.dtype == object or getattr(X.dtype, "kind", "f") in "USO":
            raise TypeError(f"{what} must hold numbers, got dtype {X.dtype}")
        try:
            X = xp.asarray(X, dtype=resolve_dtype(xp, self.dtype))
        except (TypeError, ValueError):  # another namespace's array
            X = xp.asarray(to_numpy(X), dtype=resolve_dtype(xp, self.dtype))
        if X.ndim != 2:
            raise ValueError(f"{what} must be 2-D (n_samples, n_features), got shape {tuple(X.shape)}; "
                             f"use X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample")
        if X.shape[1] != width:
            noun = "features" if what == "X" else "columns"
            expects = "the network expects" if what == "X" else "the output layer has"
            raise ValueError(f"{what} has {X.shape[1]} {noun}; {expects} {width}")
        if not _all_finite(xp, X):
            raise ValueError(f"{what} contains NaN or infinite values")
        return X

    @staticmethod
    def _column(v):
        """A 1-D array as a column (n, 1); anything else unchanged."""
        if not hasattr(v, "shape"):
            v = np.asarray(v)
        if v.ndim == 1:
            v = array_namespace(v).reshape(v, (-1, 1))
        return v

    def _as_target(self, T, n):
        if self.sizes[-1] == 1:
            T = self._column(T)
        T = self._as_input(T, "T", self.sizes[-1])
        if T.shape[0] != n:
            raise ValueError(f"X has {n} samples but T has {T.shape[0]}")
        return T

    # --- forward -----------------------------------------------------------------------------------

    def forward(self, X, *, dropout=None, rng=None):
        """The caching forward pass: a :class:`Trace` with z[l] and a[l] for every layer.

        ``z[l] = a[l−1] @ W[l] + b[l]``, ``a[l] = σ_l(z[l])`` (seed 004, eq. 1.4).

        Parameters
        ----------
        X : array (N, S_0)
        dropout : sequence of float, optional
            Drop probability for each hidden layer (inverted dropout: kept activations are divided by
            the keep probability); needs ``rng``. Only training uses this.
        rng : numpy.random.Generator, optional
        """
        X = self._as_input(X)
        return self._forward(X, dropout, rng)

    def _forward(self, X, dropout=None, rng=None):
        xp = self.xp
        a, zs, masks = [X], [], []
        L = self.n_layers
        for l, (W, b, act) in enumerate(zip(self.weights, self.biases, self.activations), start=1):
            z = a[-1] @ W + b
            h = act(z)
            if dropout is not None and l < L and dropout[l - 1] > 0:
                keep = 1.0 - dropout[l - 1]
                draw = rng.random(tuple(h.shape)) < keep
                mask = xp.asarray(draw.astype(np.dtype(self.dtype)) / np.dtype(self.dtype).type(keep))
                masks.append(mask)
                h = h * mask
            elif dropout is not None:
                masks.append(None)
            zs.append(z)
            a.append(h)
        return Trace(LayerList(zs, "z"), a, LayerList(masks, "masks") if dropout is not None else None)

    def predict(self, X):
        """a[L] for inputs X (N, S_0): the fast path, which keeps nothing for back-propagation."""
        return self._predict(self._as_input(X))

    def _predict(self, X):
        h = X
        for W, b, act in zip(self.weights, self.biases, self.activations):
            h = act(h @ W + b)
        return h

    __call__ = predict

    # --- losses and back-propagation ---------------------------------------------------------------

    def loss(self, X, T, loss, sample_weight=None):
        """J(T, a[L]) for the batch (X, T)."""
        loss = _loss.get_loss(loss)
        X = self._as_input(X)
        T = self._as_target(T, X.shape[0])
        return float(self._loss_value(self._forward(X), T, loss, sample_weight))

    def _loss_value(self, trace, T, loss, sample_weight=None):
        fused = loss.fused(self.activations[-1])
        if fused is not None:
            return fused.value(trace.z[-1], T, sample_weight)
        return loss.value(trace.a[-1], T, sample_weight)

    def backward(self, trace, T, loss, *, sample_weight=None, input_gradient=True):
        """Back-propagate the loss through a :class:`Trace`; returns :class:`Gradients`.

        ``δ[L] = ∂J/∂A ⊙ σ_L′(z[L])`` (or the fused error of a canonical pair),
        ``δ[l] = (δ[l+1] @ W[l+1]ᵀ) ⊙ σ_l′(z[l])``, ``∂J/∂W[l] = a[l−1]ᵀ δ[l]``,
        ``∂J/∂b[l] = Σ_n δ[l]``, ``∂J/∂X = δ[1] W[1]ᵀ`` (seed 004 §2; seed 002).
        """
        loss = _loss.get_loss(loss)
        T = self._as_target(T, trace.a[0].shape[0])
        if sample_weight is not None:
            sample_weight = self._as_weights(sample_weight, T.shape[0])
        return self._backward(trace, T, loss, sample_weight, input_gradient)

    def _as_weights(self, w, n):
        w = self._column(w)
        if w.ndim != 2 or w.shape[1] != 1:
            raise ValueError(f"sample_weight must be 1-D with one weight per sample, got shape {tuple(w.shape)}")
        w = self._as_input(w, "sample_weight", 1)[:, 0]
        if w.shape[0] != n:
            raise ValueError(f"sample_weight has {w.shape[0]} entries for {n} samples")
        if bool(self.xp.any(w < 0)):
            raise ValueError("sample_weight must be non-negative")
        return w

    def output_delta(self, trace, T, loss, sample_weight=None):
        """δ[L] = ∂J/∂z[L] (seed 004 eq. 2.13, or the fused canonical form)."""
        act = self.activations[-1]
        fused = loss.fused(act)
        if fused is not None:
            return fused.delta(trace.z[-1], trace.a[-1], T, sample_weight)
        return act.vjp(trace.z[-1], trace.a[-1], loss.gradient(trace.a[-1], T, sample_weight))

    def _backward(self, trace, T, loss, sample_weight=None, input_gradient=True):
        xp = self.xp
        L = self.n_layers
        W, acts, a, z = self.weights, self.activations, trace.a, trace.z
        masks = trace.masks
        deltas = [None] * L
        deltas[L - 1] = self.output_delta(trace, T, loss, sample_weight)
        for l in range(L - 1, 0, -1):  # δ[l] from δ[l+1], l = L−1 … 1
            g = deltas[l] @ W[l + 1].T
            mask = masks[l] if masks is not None else None
            if mask is not None:  # a[l] was multiplied by the mask, so σ′ must come from z[l]
                deltas[l - 1] = (g * mask) * acts[l - 1].derivative(z[l])
            else:
                deltas[l - 1] = acts[l - 1].vjp(z[l], a[l], g)
        gW = [a[l - 1].T @ deltas[l - 1] for l in range(1, L + 1)]
        gb = [xp.sum(d, axis=0) for d in deltas]
        gX = deltas[0] @ W[1].T if input_gradient else None
        return Gradients(LayerList(gW, "dJ/dW"), LayerList(gb, "dJ/db"), LayerList(deltas, "delta"), gX)

    def loss_and_gradients(self, X, T, loss, *, sample_weight=None, input_gradient=True):
        """``(J, gradients)`` for the batch (X, T): one forward and one backward pass."""
        loss = _loss.get_loss(loss)
        X = self._as_input(X)
        T = self._as_target(T, X.shape[0])
        if sample_weight is not None:
            sample_weight = self._as_weights(sample_weight, X.shape[0])
        trace = self._forward(X)
        J = float(self._loss_value(trace, T, loss, sample_weight))
        return J, self._backward(trace, T, loss, sample_weight, input_gradient)
