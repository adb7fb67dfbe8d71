"""The feed-forward network: parameters, the forward pass, and back-propagation.

Notation (batch-first; the README's References section maps each author's to it). Layers l = 1..L, layer 0 is the
input:

    a[0] = X                                  (N, S_0)
    z[l] = a[l−1] @ W[l] + b[l]               (N, S_l)    Wichmann eq. 1.4, transposed
    a[l] = σ_l(z[l])

Back-propagation (Wichmann §2 in matrix form, transposed; δ = H of Wichmann = δ of Sheptunov and Kolar and McCulloch =
minus the "error term" e of Gashler):

    δ[L] = ∂J/∂A ⊙ σ_L′(z[L])                 (eq. 2.13; fused for the canonical pairs)
    δ[l] = (δ[l+1] @ W[l+1]ᵀ) ⊙ σ_l′(z[l])     (eq. 2.32–2.34; Kolar and McCulloch's δ⁽ˡ⁾ = g′(Z) ⊙ Wᵀδ⁽ˡ⁺¹⁾)
    ∂J/∂W[l] = a[l−1]ᵀ @ δ[l]                 (eq. 2.33; Sheptunov's ∂E/∂w_ij = δ_j o_i)
    ∂J/∂b[l] = Σ_n δ[l]                       (eq. 2.37)
    ∂J/∂X    = δ[1] @ W[1]ᵀ                   (Gashler, gradient with respect to the inputs)

The whole batch goes through each step at once; no Python loop runs over samples.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from . import activations as _act
from . import losses as _loss
from ._checks import layer_sizes
from ._array import (array_namespace, asarray_on, device_of, dtype_name, is_numpy_namespace, is_torch_namespace,
                     normalize_namespace, resolve_device, resolve_dtype, to_numpy)
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
        δ[l] = ∂J/∂z[l], (N, S_l): δ of Sheptunov and Kolar and McCulloch, H of Wichmann, −e of Gashler.
    inputs : array or None
        ∂J/∂X, (N, S_0) (Gashler's second derivation); None when not asked for.
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
        probe = X @ xp.zeros_like(X[0, :])  # zeros of X's dtype on X's device
        return bool(xp.all(probe == 0))


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
        The hidden layers' σ: one for all, or one per hidden layer (Wichmann's σ_l).
    output : str or Activation
        σ_L of the output layer ("identity" for a numeric outcome, Kolar and McCulloch).
    init : str
        ``"auto"`` (He for the relu family, Glorot otherwise) or one of ``ffnn.init.INITIALIZERS``.
    seed : int, numpy.random.Generator or None
        The source of every random draw; the same seed gives the same network bit for bit.
    dtype : "float32" or "float64"
        Kept end to end: parameters, activations and gradients.
    xp : array namespace, optional
        Where the parameters live (NumPy by default; e.g. ``array_api_strict``, CuPy, torch). The bare
        ``torch`` and ``cupy`` modules are used through their ``array_api_compat`` wrappers.
    device : str or torch.device, optional
        The PyTorch device of the parameters: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (a GPU when
        there is one). Implies ``xp=torch`` when ``xp`` is not given. The random draws are the same on
        every device: the network's starting weights do not depend on where it lives.

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
                 dtype="float64", xp=None, device=None):
        sizes = layer_sizes(sizes)
        acts = _resolve_activations(activation, output, len(sizes) - 2)
        xp, device = _namespace_and_device(xp, device)
        xp_dtype = resolve_dtype(xp, dtype)
        inits = [resolve_init(init, a) for a in acts]
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        weights = [asarray_on(xp, draw_weights(rng, name, n_in, n_out), xp_dtype, device)
                   for name, n_in, n_out in zip(inits, sizes[:-1], sizes[1:])]
        biases = [asarray_on(xp, np.zeros(n_out), xp_dtype, device) for n_out in sizes[1:]]
        self._set(sizes, acts, weights, biases, xp, dtype_name(dtype), init)

    @classmethod
    def from_parameters(cls, weights, biases, activations, *, dtype=None, xp=None, device=None):
        """A network made from given parameters, with no random draw.

        Parameters
        ----------
        weights : sequence of arrays
            ``[W[1], …, W[L]]``, W[l] of shape (S_{l−1}, S_l).
        biases : sequence of arrays
            ``[b[1], …, b[L]]``, b[l] of shape (S_l,).
        activations : sequence of str or Activation
            ``[σ_1, …, σ_L]``, one per layer, the output layer's last.
        dtype : "float32" or "float64", optional
            Default: the dtype of ``weights[0]`` when it is one of these, else float64.
        xp : array namespace, optional
            Where the parameters live; default NumPy. Arrays are copied into it.
        device : str or torch.device, optional
            The PyTorch device of the parameters (see :class:`Network`); implies ``xp=torch``.

        Raises
        ------
        ValueError, TypeError
            When the shapes do not chain (W[l] must be (S_{l−1}, S_l) and b[l] (S_l,)), a value is not
            finite, or an activation is unknown — naming the layer.
        """
        weights, biases = list(weights), list(biases)
        if not weights:
            raise ValueError("from_parameters needs at least one layer of weights")
        if len(biases) != len(weights) or len(activations) != len(weights):
            raise ValueError(f"from_parameters got {len(weights)} weight matrices, {len(biases)} bias vectors "
                             f"and {len(activations)} activations; they must be one per layer")
        xp, device = _namespace_and_device(xp, device)
        if dtype is None:
            dtype = dtype_name(getattr(weights[0], "dtype", "float64"))
            dtype = dtype if dtype in ("float32", "float64") else "float64"
        d = resolve_dtype(xp, dtype)
        Ws = [np.array(to_numpy(W), copy=True) for W in weights]  # copies: the network owns its parameters
        bs = [np.array(to_numpy(b), copy=True) for b in biases]
        sizes = []
        for l, (W, b) in enumerate(zip(Ws, bs), start=1):
            if W.ndim != 2:
                raise ValueError(f"W[{l}] must be 2-D (S_{l - 1}, S_{l}), got shape {W.shape}")
            if l > 1 and W.shape[0] != sizes[-1]:
                raise ValueError(f"W[{l}] has {W.shape[0]} rows; layer {l - 1} has {sizes[-1]} units")
            if b.shape != (W.shape[1],):
                raise ValueError(f"b[{l}] must have shape ({W.shape[1]},), got {b.shape}")
            for name, v in ((f"W[{l}]", W), (f"b[{l}]", b)):
                if v.dtype.kind not in "fiu" or not np.all(np.isfinite(v)):
                    raise ValueError(f"{name} must hold finite numbers")
            if l == 1:
                sizes.append(W.shape[0])
            sizes.append(W.shape[1])
        sizes = layer_sizes(sizes)
        acts = tuple(_act.get_activation(a) for a in activations)
        for l, a in enumerate(acts[:-1], start=1):
            if not a.hidden_ok:
                raise ValueError(f"{a.name} cannot be used on hidden layer {l}; it is for the output layer only")
        net = object.__new__(cls)
        net._set(sizes, acts, [asarray_on(xp, W, d, device) for W in Ws], [asarray_on(xp, b, d, device) for b in bs],
                 xp, dtype_name(dtype), "given")
        return net

    def _set(self, sizes, activations, weights, biases, xp, dtype, init):
        self.sizes = tuple(sizes)
        self.activations = tuple(activations)
        self.init = init
        self.dtype = dtype
        self.xp = xp
        self.weights = LayerList(weights, "weights", check_shapes=True)
        self.biases = LayerList(biases, "biases", check_shapes=True)

    # --- description ---------------------------------------------------------------------------

    @property
    def device(self):
        """Where the parameters live: a ``torch.device`` for PyTorch, ``"cpu"`` for NumPy."""
        return device_of(self.weights[1])

    def placement(self):
        """The device to create arrays on (PyTorch), or None (the namespace's only or default device)."""
        return self.device if is_torch_namespace(self.xp) else None

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

    def to(self, xp=None, dtype=None, device=None):
        """A copy whose parameters live in namespace ``xp``, on ``device`` and/or have ``dtype``.

        Parameters
        ----------
        xp : array namespace, optional
            Default: the network's own, or PyTorch when ``device`` is given to a NumPy network.
        dtype : "float32" or "float64", optional
        device : str or torch.device, optional
            ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"auto"`` (see :class:`Network`); default: where the
            parameters are now when they stay PyTorch tensors.
        """
        if xp is None and device is not None and not is_torch_namespace(self.xp):
            xp = "torch"
        if xp is None:
            xp = self.xp
        xp, device = _namespace_and_device(xp, device)
        if device is None and is_torch_namespace(xp) and is_torch_namespace(self.xp):
            device = self.device
        dtype = self.dtype if dtype is None else dtype_name(dtype)
        d = resolve_dtype(xp, dtype)
        new = object.__new__(Network)
        new.__dict__.update(self.__dict__)
        new.xp, new.dtype = xp, dtype
        if is_torch_namespace(xp):
            import torch

            def convert(x):
                t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(to_numpy(x)))
                return t.to(device=device, dtype=d, copy=True)
        elif xp is self.xp:
            def convert(x):
                return xp.asarray(x, dtype=d, copy=True)
        else:
            def convert(x):
                return xp.asarray(np.array(to_numpy(x)), dtype=d)  # a copy, never a view of the source
        new.weights = LayerList([convert(W) for W in self.weights], "weights", check_shapes=True)
        new.biases = LayerList([convert(b) for b in self.biases], "biases", check_shapes=True)
        return new

    def to_torch(self):
        """A ``torch.nn.Sequential`` computing this network's forward pass (also :func:`ffnn.export.to_torch`;
        imports torch only when called).

        ``nn.Linear(S_{l−1}, S_l)`` with weight W[l]ᵀ and bias b[l], then σ_l's module
        (``Activation.torch_module``; none for the identity), for l = 1..L, in the network's dtype, on the
        CPU, in eval mode. Creating it draws no random numbers. :class:`ffnn.export.ConversionError`
        for an activation with no PyTorch module, naming it and its layer.
        """
        try:
            import torch
        except ImportError:
            raise ImportError("to_torch needs PyTorch: pip install torch") from None
        from torch import nn

        modules = [act.export_form("torch", f" (layer {l})") for l, act in enumerate(self.activations, start=1)]
        dtype = {"float32": torch.float32, "float64": torch.float64}[self.dtype]
        layers = []
        for W, b, module in zip(self.weights, self.biases, modules):
            W, b = np.asarray(to_numpy(W)), np.asarray(to_numpy(b))
            linear = nn.utils.skip_init(nn.Linear, W.shape[0], W.shape[1], dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)))
            layers.append(linear)
            m = module()
            if m is not None:
                layers.append(m)
        return nn.Sequential(*layers).eval()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["xp"] = None if self.xp is np else self.xp.__name__
        state["weights"] = [to_numpy(W) for W in self.weights]
        state["biases"] = [to_numpy(b) for b in self.biases]
        return state

    def __setstate__(self, state):
        xp = np if state["xp"] is None else importlib.import_module(state["xp"])
        state = dict(state, xp=xp)
        state["weights"] = LayerList([xp.asarray(W) for W in state["weights"]], "weights", check_shapes=True)
        state["biases"] = LayerList([xp.asarray(b) for b in state["biases"]], "biases", check_shapes=True)
        self.__dict__.update(state)

    # --- input checks: the public entry to the core -------------------------------------------------
    #
    # Everything that runs the math on user data (training, gradcheck, the estimators) checks it once
    # with these, then calls forward/backward/trace_loss/predict with ``checked=True``.

    def check_inputs(self, X):
        """X as a 2-D array of the network's namespace and dtype, (N, S_0), checked to be finite.

        Raises TypeError for non-numeric data and ValueError for a wrong shape or NaN/inf, each
        naming the problem.
        """
        return self._checked_matrix(X, "X", self.sizes[0])

    def check_targets(self, T, n_samples):
        """T as a 2-D array (N, S_L) matching ``n_samples``; a 1-D T is a column when S_L = 1."""
        if self.sizes[-1] == 1:
            T = _column(T)
        T = self._checked_matrix(T, "T", self.sizes[-1])
        if T.shape[0] != n_samples:
            raise ValueError(f"X has {n_samples} samples but T has {T.shape[0]}")
        return T

    def check_sample_weight(self, sample_weight, n_samples):
        """Sample weights as a 1-D array (N,) of non-negative finite numbers."""
        w = _column(sample_weight)
        if w.ndim != 2 or w.shape[1] != 1:
            raise ValueError(f"sample_weight must be 1-D with one weight per sample, got shape {tuple(w.shape)}")
        w = self._checked_matrix(w, "sample_weight", 1)[:, 0]
        if w.shape[0] != n_samples:
            raise ValueError(f"sample_weight has {w.shape[0]} entries for {n_samples} samples")
        if bool(self.xp.any(w < 0)):
            raise ValueError("sample_weight must be non-negative")
        return w

    def _checked_matrix(self, X, what, width):
        xp = self.xp
        if not hasattr(X, "shape") or not hasattr(X, "dtype"):
            X = np.asarray(X)
        if X.dtype == object or getattr(X.dtype, "kind", "f") in "USO":
            raise TypeError(f"{what} must hold numbers, got dtype {X.dtype}")
        X = asarray_on(xp, X, resolve_dtype(xp, self.dtype), self.placement())
        if X.ndim != 2:
            if what == "X":
                hint = "use X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample"
            else:
                hint = (f"use {what}.reshape(-1, 1) for a single column (1-D class labels are taken by the "
                        f"cross-entropy losses)")
            raise ValueError(f"{what} must be 2-D (n_samples, n_columns), got shape {tuple(X.shape)}; {hint}")
        if X.shape[1] != width:
            noun = "features" if what == "X" else "columns"
            expects = "the network expects" if what == "X" else "the output layer has"
            raise ValueError(f"{what} has {X.shape[1]} {noun}; {expects} {width}")
        if not _all_finite(xp, X):
            where = np.argwhere(~np.isfinite(np.asarray(to_numpy(X))))[0]
            cast = " (a value beyond the float32 range becomes infinite: use float64)" if self.dtype == "float32" else ""
            raise ValueError(f"{what} contains NaN or infinite values (first at row {int(where[0])}, column "
                             f"{int(where[1])}){cast}")
        return X

    # --- forward ------------------------------------------------------------------------------------

    def forward(self, X, *, dropout=None, rng=None, checked=False):
        """The caching forward pass: a :class:`Trace` with z[l] and a[l] for every layer.

        ``z[l] = a[l−1] @ W[l] + b[l]``, ``a[l] = σ_l(z[l])`` (Wichmann, eq. 1.4, transposed).

        Parameters
        ----------
        X : array (N, S_0)
        dropout : sequence of float, optional
            Drop probability for each hidden layer (inverted dropout: kept activations are divided by
            the keep probability); needs ``rng``. Only training uses this. The masks are drawn layer
            by layer, l = 1..L−1, skipping layers with rate 0, as ``rng.random((N, S_l)) < 1 − p``:
            one uniform per activation, row-major over the batch. Under data parallelism a process
            that computes rows lo:hi of a global batch of N rows passes an ``rng`` that draws the
            whole (N, S_l) block and keeps rows lo:hi (``ffnn.training.distributed.RowSlice``), so
            its masks are its rows of the single-process masks and the Generator advances alike.
        rng : numpy.random.Generator, optional
            (or any object with the Generator's ``random(shape)``)
        checked : bool
            True when X already comes from :meth:`check_inputs` (skips the check).
        """
        X = X if checked else self.check_inputs(X)
        xp = self.xp
        L = self.n_layers
        a, z, masks = [X], [], []
        for l in range(1, L + 1):
            z_l = a[l - 1] @ self.weights[l] + self.biases[l]
            a_l = self.activations[l - 1](z_l)
            if dropout is not None and l < L:
                mask = _dropout_mask(xp, self.dtype, dropout[l - 1], tuple(a_l.shape), rng, self.placement())
                masks.append(mask)
                if mask is not None:
                    a_l = a_l * mask
            z.append(z_l)
            a.append(a_l)
        return Trace(LayerList(z, "z"), a, LayerList(masks, "masks") if dropout is not None else None)

    def predict(self, X, *, checked=False):
        """a[L] for inputs X (N, S_0): the fast forward pass, which keeps nothing for back-propagation."""
        h = X if checked else self.check_inputs(X)
        for W, b, act in zip(self.weights, self.biases, self.activations):
            h = act(h @ W + b)
        return h

    __call__ = predict

    # --- losses and back-propagation ---------------------------------------------------------------

    def loss(self, X, T, loss, sample_weight=None):
        """J(T, a[L]) for the batch (X, T), a float."""
        loss = _loss.get_loss(loss)
        X = self.check_inputs(X)
        T = self.check_targets(T, X.shape[0])
        w = None if sample_weight is None else self.check_sample_weight(sample_weight, X.shape[0])
        return float(self.trace_loss(self.forward(X, checked=True), T, loss, w))

    def trace_loss(self, trace, T, loss, sample_weight=None):
        """J(T, a[L]) from a :class:`Trace` on checked T (a 0-d array): the fused form of a canonical
        pair works from z[L], which stays exact where a[L] has rounded to 0 or 1."""
        fused = loss.fused(self.activations[-1])
        if fused is not None:
            return fused.value(trace.z[-1], T, sample_weight)
        return loss.value(trace.a[-1], T, sample_weight)

    def output_delta(self, trace, T, loss, sample_weight=None):
        """δ[L] = ∂J/∂z[L] = ∂J/∂A ⊙ σ_L′(z[L]) (Wichmann, eq. 2.13), or the fused canonical form."""
        act = self.activations[-1]
        fused = loss.fused(act)
        if fused is not None:
            return fused.delta(trace.z[-1], trace.a[-1], T, sample_weight)
        return act.vjp(trace.z[-1], trace.a[-1], loss.gradient(trace.a[-1], T, sample_weight))

    def backward(self, trace, T, loss, *, sample_weight=None, input_gradient=True, checked=False):
        """Back-propagate the loss through a :class:`Trace`; returns :class:`Gradients`.

        For l = L … 1, with W, z, σ and δ all indexed by layer as in the docstring of this module::

            δ[L] = ∂J/∂A ⊙ σ_L′(z[L])                 (or the fused error of a canonical pair)
            δ[l] = (δ[l+1] @ W[l+1]ᵀ) ⊙ σ_l′(z[l])     for l = L−1 … 1
            ∂J/∂W[l] = a[l−1]ᵀ @ δ[l];   ∂J/∂b[l] = Σ_n δ[l];   ∂J/∂X = δ[1] @ W[1]ᵀ

        (Wichmann §2; Gashler for ∂J/∂X.) With dropout, a[l] = σ_l(z[l]) ⊙ m[l], so δ[l] carries the
        mask: δ[l] = (δ[l+1] @ W[l+1]ᵀ) ⊙ m[l] ⊙ σ_l′(z[l]).

        ``checked=True`` when T (and sample_weight) come from :meth:`check_targets` and
        :meth:`check_sample_weight`.
        """
        loss = _loss.get_loss(loss)
        if not checked:
            T = self.check_targets(T, trace.a[0].shape[0])
            if sample_weight is not None:
                sample_weight = self.check_sample_weight(sample_weight, T.shape[0])
        xp = self.xp
        L = self.n_layers
        W, z, a, masks = self.weights, trace.z, trace.a, trace.masks
        sigma = (None,) + tuple(self.activations)  # σ[l] for l = 1..L, like W[l] and z[l]
        delta = [None] * (L + 1)                   # delta[l] for l = 1..L; delta[0] is unused
        delta[L] = self.output_delta(trace, T, loss, sample_weight)
        for l in range(L - 1, 0, -1):
            g = delta[l + 1] @ W[l + 1].T
            mask = masks[l] if masks is not None else None
            if mask is not None:  # a[l] holds the mask, so σ′ must come from z[l], not from a[l]
                delta[l] = (g * mask) * sigma[l].derivative(z[l])
            else:
                delta[l] = sigma[l].vjp(z[l], a[l], g)
        dW = [a[l - 1].T @ delta[l] for l in range(1, L + 1)]
        db = [xp.sum(delta[l], axis=0) for l in range(1, L + 1)]
        dX = delta[1] @ W[1].T if input_gradient else None
        return Gradients(LayerList(dW, "dJ/dW"), LayerList(db, "dJ/db"), LayerList(delta[1:], "delta"), dX)

    def loss_and_gradients(self, X, T, loss, *, sample_weight=None, input_gradient=True):
        """``(J, gradients)`` for the batch (X, T): one forward and one backward pass."""
        loss = _loss.get_loss(loss)
        X = self.check_inputs(X)
        if X.shape[0] == 0:  # J of no samples: a mean over nothing for some losses, 0 for sums
            raise ValueError("X has no samples (0 rows); the loss and its gradients need at least one")
        T = self.check_targets(T, X.shape[0])
        w = None if sample_weight is None else self.check_sample_weight(sample_weight, X.shape[0])
        trace = self.forward(X, checked=True)
        J = float(self.trace_loss(trace, T, loss, w))
        return J, self.backward(trace, T, loss, sample_weight=w, input_gradient=input_gradient, checked=True)


def _column(v):
    """A 1-D array as a column (n, 1); anything else unchanged."""
    if not hasattr(v, "shape"):
        v = np.asarray(v)
    if v.ndim == 1:
        v = array_namespace(v).reshape(v, (-1, 1))
    return v


def _namespace_and_device(xp, device):
    """The normalised namespace and the PyTorch device (or None) for ``Network(xp=…, device=…)``."""
    if isinstance(xp, str):
        xp = normalize_namespace(importlib.import_module(xp))
    if device is None:
        return normalize_namespace(xp), None
    xp = normalize_namespace(importlib.import_module("torch") if xp is None else xp)
    if not is_torch_namespace(xp):
        if str(device) == "cpu" and is_numpy_namespace(xp):
            return xp, None
        raise ValueError(f"device={device!r} needs PyTorch (xp=torch, or no xp); this network's namespace "
                         f"is {getattr(xp, '__name__', xp)}")
    return xp, resolve_device(device)


def dropout_draw(rate, shape, rng, dtype):
    """The inverted-dropout mask m of one hidden layer as a NumPy array of ``dtype``.

    m = B / (1 − p) with B ~ Bernoulli(1 − p) drawn as ``rng.random(shape) < 1 − p``: one uniform
    draw per activation, row-major over (N, S_l), from a NumPy Generator whatever the namespace, so
    the same Generator drops the same units on every array library and device (the PyTorch fast
    path draws its masks with this function too, and copies them to the device). ``shape`` is the
    batch's (N, S_l); an ``rng`` that stands for rows lo:hi of a larger batch (distributed.RowSlice)
    draws the larger batch's block and returns those rows, which keeps data-parallel training exact.
    """
    dt = np.dtype(dtype)
    keep = 1.0 - rate
    return (rng.random(shape) < keep).astype(dt) / dt.type(keep)


def _dropout_mask(xp, dtype, rate, shape, rng, device=None):
    """:func:`dropout_draw` as an array of namespace ``xp`` on ``device``, or None when nothing is dropped."""
    if rate <= 0:
        return None
    return asarray_on(xp, dropout_draw(rate, shape, rng, dtype), resolve_dtype(xp, dtype), device)
