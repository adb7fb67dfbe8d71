"""The PyTorch fast path for training steps, on any device: the counterpart of :mod:`ffnn.training.numpy_workspace`,
built the same way — the objects supply their kernels (each hidden activation its ``torch_inplace``
kernels, the loss its ``torch_output`` kernel for the output activation); anything else trains
through the array-namespace core, on the same tensors.

Per step, for layers l = 1..L (buffers allocated once per batch size, on the network's device)::

    h[l] = σ_l(addmm(b[l], h[l−1], W[l]))          (one product with the bias folded in)
    d[L] = the loss's fused output error           (softmax + cross-entropy in a few fused kernels)
    d[l] = (d[l+1] @ W[l+1]ᵀ) ⊙ σ_l′(h[l])          (σ′ fused into one kernel per layer)
    gW[l] = h[l−1]ᵀ @ d[l];   gb[l] = d[l]ᵀ @ 1     (bias gradients as products, not reductions)

and plain SGD folds the update into the products: ``W[l] ← decay·W[l] + h[l−1]ᵀ(−η d[l])`` (addmm).

What runs where:

* the data are moved to the device once (by the input checks); each epoch's order is drawn on the
  host from the run's NumPy Generator — the draw the NumPy path makes, so that both paths visit the
  same rows — copied to the device once per epoch, and every batch is gathered there (index_select);
* dropout masks follow the library's one rule (``rng.random((N, S_l)) < 1 − p``, row-major, from the
  run's NumPy Generator, divided by 1 − p): drawn on the host, copied to the device;
* once the workspaces and graphs of the first epoch exist (beginning a CUDA-graph capture
  synchronises), there is no host–device synchronisation inside an epoch: the loss is summed on the
  device, where divergence (a non-finite loss or bias gradient, which makes the sum non-finite) is
  recorded too; the sum is read once, at the end of the epoch. When a step of the epoch diverged,
  the epoch is replayed from a copy of the parameters, the optimiser state and the Generator taken
  at its start, checking after each step — so, like the NumPy path, training stops with the weights
  of the last good step;
* on CUDA, for each batch size, the step is captured once in a CUDA graph after a few eager steps
  and then replayed: the whole step (gather, forward, backward, update) for plain SGD; the forward
  and backward pass for the other optimisers, whose update then runs eagerly (their bias
  corrections change with the step count, which a graph would freeze).

Precision: the network's own dtype by default (float64 runs everywhere); for float32 networks
``precision="tf32"`` lets CUDA matrix products use TF32, and ``precision="bf16"`` computes the
products and activations in bfloat16 while the weights, the loss and the update stay float32
(the master weights).
"""

from __future__ import annotations

import numpy as np

from .._array import is_torch_namespace
from .engines import Engine, diverged_message, interleave
from .stopping import TrainingDiverged

__all__ = ["supports", "Workspace", "TorchEngine", "CUDA_GRAPHS", "WARMUP_STEPS"]

CUDA_GRAPHS = True   # capture each batch size's step in a CUDA graph on CUDA devices
WARMUP_STEPS = 3     # eager steps of a batch size before its capture (on a side stream, as CUDA graphs need)


def supports(net, loss, sample_weight=None) -> bool:
    """Whether the PyTorch fast path computes this network's training step: PyTorch tensors, every
    hidden activation with PyTorch kernels (``Activation.torch_inplace``) and the loss with a PyTorch
    output kernel for the output activation (``Loss.torch_output``), no sample weights."""
    if not is_torch_namespace(net.xp) or sample_weight is not None:
        return False
    hidden_ok = all(a.torch_inplace is not None for a in net.activations[:-1])
    return hidden_ok and loss.torch_output(net.activations[-1]) is not None


class Workspace:
    """Buffers for one batch size on the network's device: activations, errors, gradients."""

    def __init__(self, net, batch_size, loss, dropout=None, compute_dtype=None):
        import torch

        dev, dt = net.device, net.weights[1].dtype
        cdt = dt if compute_dtype is None else compute_dtype
        self.n, self.cast = batch_size, cdt != dt

        def new(width, dtype=cdt):
            return torch.empty((batch_size, width), dtype=dtype, device=dev)

        sizes, L = net.sizes, net.n_layers
        self.h = [new(s) for s in sizes]                      # h[0] is the batch of X
        self.x = new(sizes[0], dt) if self.cast else self.h[0]
        self.t = new(sizes[-1], dt)
        self.d = [None] + [new(s) for s in sizes[1:]]
        self.zL = new(sizes[-1], dt) if self.cast else self.h[L]   # the loss works in the master dtype
        self.dL = new(sizes[-1], dt) if self.cast else self.d[L]
        rates = dropout or [0.0] * (L - 1)
        self.masks = [None] + [new(s) if r > 0 else None for s, r in zip(sizes[1:-1], rates)]
        self.rates = [None] + list(rates)
        self.dropout = any(m is not None for m in self.masks)
        # inp[l] feeds layer l+1: the dropped-out copy of h[l] where there is dropout
        self.inp = [self.h[0]] + [new(s) if self.masks[l] is not None else self.h[l]
                                  for l, s in enumerate(sizes[1:-1], start=1)]
        self.ones = torch.ones(batch_size, dtype=cdt, device=dev)
        # every per-layer list is indexed by layer, l = 1..L (index 0 unused); dW, db: the gradients as
        # 0-based lists, the same tensors
        self.dW = [torch.empty_like(W) for W in net.weights]
        self.gW = [None, *self.dW]
        # the bias gradients, views of one buffer (the divergence check sums them in one kernel)
        self.gb_flat = torch.empty(sum(sizes[1:]), dtype=dt, device=dev)
        self.db = list(torch.split(self.gb_flat, list(sizes[1:])))
        self.gb = [None, *self.db]

        def by_layer(arrays):
            return [None] + [torch.empty(a.shape, dtype=cdt, device=dev) for a in arrays]

        self.gWc = by_layer(net.weights) if self.cast else self.gW
        self.gbc = by_layer(net.biases) if self.cast else self.gb
        self.Wc = by_layer(net.weights) if self.cast else None
        self.bc = by_layer(net.biases) if self.cast else None
        self.idx = torch.zeros(batch_size, dtype=torch.long, device=dev)
        self.output = loss.torch_output(net.activations[-1])
        self.kernels = [None] + [a.torch_inplace for a in net.activations[:-1]]  # σ_l's, l = 1..L−1
        self.graph = None
        self.eager_steps = 0

    def draw_masks(self, rng, dtype):
        """Host arrays of this step's dropout masks, drawn by the library's one rule
        (:func:`ffnn.network.dropout_draw`), layer by layer as ``Network.forward`` draws them."""
        from ..network import dropout_draw

        return [(l, dropout_draw(self.rates[l], tuple(m.shape), rng, dtype))
                for l, m in enumerate(self.masks) if m is not None]

    def load_masks(self, host_masks):
        import torch

        for l, m in host_masks:
            src = torch.from_numpy(m)
            if self.masks[l].is_cuda:
                src = src.pin_memory()  # the caching host allocator keeps it alive until the copy is done
            self.masks[l].copy_(src, non_blocking=True)

    def load(self, X, T):
        """Gather the rows ``self.idx`` of X and T into the batch buffers, on the device."""
        import torch

        torch.index_select(X, 0, self.idx, out=self.x)
        torch.index_select(T, 0, self.idx, out=self.t)
        if self.cast:
            self.h[0].copy_(self.x)

    def forward_backward(self, net):
        """a[l] into h[l], then every δ[l] and gb[l] with the current weights; returns J (0-d tensor).

        Every list here is indexed by layer, l = 1..L.
        """
        import torch

        h, d, inp, masks, L = self.h, self.d, self.inp, self.masks, net.n_layers
        W, b = net.weights.by_layer(), net.biases.by_layer()
        if self.cast:
            for l in range(1, L + 1):
                self.Wc[l].copy_(W[l])
                self.bc[l].copy_(b[l])
            W, b = self.Wc, self.bc
        for l in range(1, L + 1):
            torch.addmm(b[l], inp[l - 1], W[l], out=h[l])
            if l < L:
                self.kernels[l].forward(h[l])
                if masks[l] is not None:
                    torch.mul(h[l], masks[l], out=inp[l])
        if self.cast:
            self.zL.copy_(h[L])
        J = self.output(self.zL, self.dL, self.t)
        if self.cast:
            d[L].copy_(self.dL)
        for l in range(L - 1, 0, -1):  # δ[l] = (δ[l+1] @ W[l+1]ᵀ) ⊙ m[l] ⊙ σ_l′, σ_l′ from a[l] = h[l]
            torch.mm(d[l + 1], W[l + 1].T, out=d[l])
            if masks[l] is not None:
                d[l].mul_(masks[l])
            self.kernels[l].backward(d[l], h[l], None)
        for l in range(1, L + 1):
            torch.mv(d[l].T, self.ones, out=self.gbc[l])
            if self.cast:
                self.gb[l].copy_(self.gbc[l])
        return J

    def gradients(self):
        """gW[l] = inp[l−1]ᵀ @ δ[l] (after :meth:`forward_backward`)."""
        import torch

        for l in range(1, len(self.gW)):
            torch.mm(self.inp[l - 1].T, self.d[l], out=self.gWc[l])
            if self.cast:
                self.gW[l].copy_(self.gWc[l])

    def last_gradients(self, scale):
        """``(dW, deltas, scale)`` of the last step, for the diagnostics: ∂J/∂W[l] and δ[l] times
        ``scale`` (−η after a fused SGD step, which scales δ in place; 1 otherwise), computing the
        products inp[l−1]ᵀδ[l] when the fused step did not."""
        if scale != 1.0:
            self.gradients()
        return self.dW, self.d[1:], scale

    def sgd_update(self, net, neg_lr, decay):
        """Plain SGD folded into the products: W ← decay·W + inp[l−1]ᵀ(−η δ[l]); b ← b − η gb.

        ``neg_lr`` (−η) and ``decay`` (1 − ηλ₂, or None) are 0-d tensors on the device.
        """
        for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
            self.d[l].mul_(neg_lr)
            if decay is not None:
                W.mul_(decay)
            W.addmm_(self.inp[l - 1].T, self.d[l])
            b.addcmul_(self.gb[l], neg_lr)


class TorchEngine(Engine):
    """The PyTorch fast path as a gradient engine (see the module docstring): deferred divergence
    checks, CUDA graphs, plain SGD folded into the products.

    ``host_reads`` counts the values read back from the device by the epochs (one per epoch, plus one
    per step when an epoch is replayed after divergence).
    """

    name = "torch"
    deferred = True

    def __init__(self, net, loss, rows, chain, diag=None, dropout=None, rng=None, precision=None):
        import torch

        super().__init__(net, loss, rows, chain, diag)
        self.dropout, self.rng = dropout, rng
        self.device = net.device
        self.dtype = net.weights[1].dtype
        self.precision = precision
        self.compute_dtype = torch.bfloat16 if precision == "bf16" else None
        self.l2 = chain.plain_sgd_decay()
        self.fused = self.l2 is not None and self.compute_dtype is None
        self.graphs = CUDA_GRAPHS and self.device.type == "cuda"
        self.workspaces = {}
        self.perm = torch.empty(rows.n, dtype=torch.long, device=self.device)
        self.total = torch.zeros((), dtype=torch.float64, device=self.device)
        self.neg_lr = torch.zeros((), dtype=self.dtype, device=self.device)
        self.decay = torch.ones((), dtype=self.dtype, device=self.device) if self.fused and self.l2 > 0 else None
        self.pool = None
        self.captured = 0  # CUDA graphs captured (one per batch size)
        self.host_reads = 0
        self.ws = None  # the workspace of the last step
        self.order_host = None
        self.position = 0  # the position in the epoch's order of the next step's first row
        # the diagnostics' dead-unit count: which units of each watched hidden layer were ever > 0 this
        # epoch, folded in place by every step (inside its graph) and handed over once per epoch
        watched = diag.watched if diag is not None else []
        self.alive = {l: torch.zeros(net.sizes[l], dtype=torch.bool, device=self.device) for l in watched}
        from ..activations import relu

        self.nonnegative = {l: net.activations[l - 1] == relu for l in watched}  # relu: a ≥ 0

    # --- the epoch ---------------------------------------------------------------------------------

    def start_epoch(self, order, ctrl_c):
        """The epoch's order to the device once (the batches are gathered there); counters zeroed."""
        import torch

        self.order_host = order
        self.position = 0
        src = torch.from_numpy(np.ascontiguousarray(order, dtype=np.int64))
        if self.device.type == "cuda":
            src = src.pin_memory()
        self.perm.copy_(src, non_blocking=True)
        self.total.zero_()
        self.ws = None
        if self.diag is not None:
            for alive in self.alive.values():
                alive.zero_()

    def run(self, batches, lrs, state, last):
        with self._precision():
            return super().run(batches, lrs, state, last)

    def step(self, idx, lr, state, last):
        """One step; no read back to the host unless ``deferred`` is False (a replay), when J_B and the
        bias gradients are checked before the update, as on the NumPy path."""
        if last and self.diag is not None:
            self.diag.before_last_step()  # a copy on the device
        nb = len(idx)
        ws = self.ws = self._workspace(nb)
        start, self.position = self.position, self.position + nb
        self.neg_lr.fill_(-lr)
        if self.decay is not None:
            self.decay.fill_(1.0 - lr * self.l2)
        if not self.deferred:
            return self._checked_step(ws, idx, lr, state)
        ws.idx.copy_(self.perm[start:start + nb])
        if ws.dropout:
            ws.load_masks(ws.draw_masks(self.rng, self.net.dtype))
        if ws.graph is None and self.graphs and ws.eager_steps >= WARMUP_STEPS:
            self._capture(ws)  # after a few eager steps; a failed capture turns the graphs off
        if ws.graph is not None:
            ws.graph.replay()
        elif self.graphs:
            self._on_side_stream(lambda: self._body(ws))
            ws.eager_steps += 1
        else:
            self._body(ws)
        if self.fused:
            state["step"] += 1
        else:
            self.chain.apply(interleave(ws.dW, ws.db), state, self.params, lr)
        return 0.0

    def _checked_step(self, ws, idx, lr, state):
        """A replayed step: the divergence check reads J_B back before anything changes."""
        import torch

        ws.idx.copy_(torch.from_numpy(np.ascontiguousarray(idx, dtype=np.int64)))
        if ws.dropout:
            ws.load_masks(ws.draw_masks(self.rng, self.net.dtype))
        J = self._compute(ws)
        self.host_reads += 1
        if not bool(torch.isfinite(self._check(ws, J))):
            raise TrainingDiverged(diverged_message("the loss or a gradient"))
        if self.fused:
            ws.sgd_update(self.net, self.neg_lr, self.decay)
            state["step"] += 1
        else:
            self.chain.apply(interleave(ws.dW, ws.db), state, self.params, lr)
        return float(J)

    def read_total(self):
        """(Σ J·|B| over the epoch, whether a step diverged or a parameter is not finite): the one
        read back from the device."""
        import math

        import torch

        finite = torch.stack([torch.isfinite(p).all() for p in self.params]).all()
        self.host_reads += 1
        total = torch.where(finite, self.total, torch.full_like(self.total, math.nan)).tolist()
        return total, not math.isfinite(total)

    def end_epoch(self, lr):
        """The diagnostics, read after the epoch's last step like the loss."""
        diag, ws = self.diag, self.ws
        if diag is not None and ws is not None:
            diag.gradients(*ws.last_gradients(-lr if self.fused else 1.0))
            # the epoch's union of active units, as one row of activations per hidden layer
            rows = [self.alive[l].reshape(1, -1).to(self.dtype) if l in self.alive else layer[:1]
                    for l, layer in enumerate(ws.inp)]  # indexed by layer, like a[l]
            diag.hidden_activations(rows)

    # --- one step ----------------------------------------------------------------------------------

    def _workspace(self, nb):
        ws = self.workspaces.get(nb)
        if ws is None:
            ws = self.workspaces[nb] = Workspace(self.net, nb, self.loss, self.dropout, self.compute_dtype)
        return ws

    def _compute(self, ws):
        """Gather, forward, backward (and gW unless fused); returns J_B with the penalty (0-d tensor)."""
        ws.load(self.rows.X, self.rows.T)
        J = ws.forward_backward(self.net)
        if not self.fused:
            ws.gradients()
        extra = self.chain.array_value(self.net.weights)  # of the weights this step starts from
        return J if extra is None else J + extra

    @staticmethod
    def _check(ws, J):
        """J + 0·Σ_l Σ gb[l]: J itself when J and every bias gradient are finite, NaN otherwise (NaN and
        ±inf propagate through the sum, and 0·±inf is NaN)."""
        return J + ws.gb_flat.sum() * 0

    def _record(self, ws, J):
        """Σ J·|B| over the epoch, on the device; a step that diverged makes it non-finite for good."""
        self.total.add_(self._check(ws, J).to(self.total.dtype) * ws.n)

    def _body(self, ws):
        """What a graph captures: the whole step for plain SGD, the gradients otherwise."""
        import torch

        J = self._compute(ws)
        self._record(ws, J)
        for l, alive in self.alive.items():  # hidden layer l (the diagnostics' dead units)
            a = ws.inp[l]
            # for a ≥ 0 a unit was active when its column sum is > 0: a product aᵀ1, not a column reduction
            top = torch.mv(a.T, ws.ones) if self.nonnegative[l] else a.amax(dim=0)
            torch.logical_or(alive, top > 0, out=alive)
        if self.fused:
            ws.sgd_update(self.net, self.neg_lr, self.decay)

    def _on_side_stream(self, fn):
        import torch

        side = torch.cuda.Stream(device=self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            fn()
        torch.cuda.current_stream(self.device).wait_stream(side)

    def _capture(self, ws):
        """Capture this batch size's step in a CUDA graph; True when it worked. A capture that fails
        changes nothing (capturing runs no kernel): the run warns and goes on without graphs."""
        import warnings

        import torch

        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, pool=self.pool):
                self._body(ws)
        except RuntimeError as exc:
            self.graphs = False
            warnings.warn(f"ffnn: the training step could not be captured in a CUDA graph ({exc}); "
                          f"training goes on without graphs", stacklevel=2)
            return False
        self.pool = graph.pool()
        ws.graph = graph
        self.captured += 1
        return True

    # --- precision ---------------------------------------------------------------------------------

    def _precision(self):
        import contextlib

        import torch

        if self.precision != "tf32" or self.device.type != "cuda":
            return contextlib.nullcontext()

        @contextlib.contextmanager
        def tf32():
            old = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = True
            try:
                yield
            finally:
                torch.backends.cuda.matmul.allow_tf32 = old

        return tf32()
