"""The PyTorch fast path for training steps, on any device: the counterpart of the compiled loop
(:mod:`ffnn.training.compiled_engine`), built the same way — the objects supply their kernels (each
hidden activation its ``torch_inplace`` kernels, the loss its ``torch_output`` form for the output
activation, the optimiser, penalty and clipping their ``flat_*`` forms beside their formulas);
anything else trains through the array-namespace core, on the same tensors.

The layout, chosen so that a step is as few operations (kernel launches) as the math allows:

* every parameter lives in one flat buffer P, layer l as the block Wb[l] = [W[l]; b[l]] of shape
  (S_{l−1} + 1, S_l), so that one product computes a layer with its bias — h[l] = [a[l−1] | 1] @ Wb[l] —
  and one product updates both (the activations keep a column of ones beside them); the gradient G
  and each optimiser slot are flat buffers of the same layout, so an optimiser's update is a few
  operations (PyTorch's fused Adam kernel for Adam and AdamW) whatever the depth;
* the training rows are put in the epoch's order once per epoch, on the device (X with its column of
  ones, and what the loss reads of T: e.g. −T/N and Σ_k T_k/N for softmax + cross-entropy); a batch
  is then a slice of rows, read in place;
* the numbers that change from step to step (η and what the optimiser derives from it and from t)
  are computed on the host for a chunk of steps and reach the device as 0-d tensors.

Per step, for layers l = 1..L (buffers allocated once per batch size)::

    h[l] = σ_l([a[l−1] | 1] @ Wb[l])                 (relu: one operation, PyTorch's _addmm_activation)
    δ[L] = the loss's output error, J·N added to the epoch's total on the device
    δ[l] = (δ[l+1] @ W[l+1]ᵀ) ⊙ σ_l′                 (σ′ through the output, one kernel per layer)
    plain SGD:  Wb[l] ← Wb[l] + [a[l−1] | 1]ᵀ (−η δ[l])   (−η folded into δ[L]: one product per layer)
    otherwise:  G[l] = [a[l−1] | 1]ᵀ δ[l]; penalty, clipping and the optimiser on the flat buffers

Against a hand-written PyTorch loop (``nn.Sequential``, ``CrossEntropyLoss``, autograd, ``torch.optim``)
this is about 0.6× the operations per step for SGD and 0.7× for Adam with ``fused=True``
(``benchmarks/torch_ops.py`` counts them; ``tests/test_torch_ops.py`` keeps them counted).

What runs where:

* the training copy of the parameters and the optimiser's state is the engine's for the duration of
  an epoch: loaded from the network (and the state) when the epoch starts, written back when it ends
  (and whenever it ends early), so a callback between epochs may change or rebind
  ``net.weights[l]`` and the next epoch trains what it left;
* no host–device synchronisation inside an epoch: the loss is summed on the device and read once at
  its end, with one check that every parameter is finite. A step whose loss or gradient is not finite
  makes that sum or the parameters non-finite (an infinite δ reaches the weights through the update,
  as ∞ or as 0·∞ = NaN), and then the epoch is replayed from a copy of the parameters, the optimiser
  state and the Generator taken at its start, checking after each step — so, like the NumPy path,
  training stops with the weights of the last good step;
* dropout: by default the masks are drawn on the device from a generator of the device, seeded from the
  run's Generator (``Generator.spawn``, which leaves the rows' order as it is); ``dropout_masks="host"``
  draws them on the host by the library's one rule (the numbers of the NumPy path);
* on CUDA, each batch size's step (everything after the batch's rows are copied in) is captured once
  in a CUDA graph after a few eager steps and then replayed, with the update of every optimiser inside
  the graph.

Precision: the network's own dtype by default (float64 runs everywhere); for float32 networks
``precision="tf32"`` lets CUDA matrix products use TF32 (``torch.backends.cuda.matmul.fp32_precision``,
or the older flag where that API is missing), and ``precision="bf16"`` computes the products and
activations in bfloat16 from one cast of P per step, while the weights, the loss and the update stay
float32 (the master weights).
"""

from __future__ import annotations

import math

import numpy as np

from .._array import is_torch_namespace
from .engines import Engine, diverged_message
from .options import DROPOUT_MASKS
from .stopping import TrainingDiverged

__all__ = ["supports", "Workspace", "TorchEngine", "CUDA_GRAPHS", "WARMUP_STEPS", "DROPOUT_MASKS"]

_TINY_ETA = 2.0 ** -100  # below it, −η·δ would lose δ to underflow (or be 0): such a step runs unscaled
CUDA_GRAPHS = True   # capture each batch size's step in a CUDA graph on CUDA devices
WARMUP_STEPS = 3     # eager steps of a batch size before its capture (on a side stream, as CUDA graphs need)


def supports(net, loss, sample_weight=None) -> bool:
    """Whether the PyTorch fast path computes this network's training step: PyTorch tensors, every
    hidden activation with PyTorch kernels (``Activation.torch_inplace``) and the loss with a PyTorch
    output form for the output activation (``Loss.torch_output``), no sample weights."""
    if not is_torch_namespace(net.xp) or sample_weight is not None:
        return False
    hidden_ok = all(a.torch_inplace is not None for a in net.activations[:-1])
    return hidden_ok and loss.torch_output(net.activations[-1]) is not None


class _Flat:
    """The flat buffers an update reads (see :meth:`ffnn.optim.Optimizer.flat_update`)."""

    def __init__(self, P, G, slots, D, offsets, shapes, wmask, decays):
        self.P, self.G, self.slots, self.D = P, G, slots, D
        self.offsets, self.shapes, self.wmask, self.decays = offsets, shapes, wmask, decays
        self._views = {}

    def views(self, buf):
        """The per-parameter views of a flat buffer, [W1, b1, W2, b2, …] in shape."""
        key = buf.data_ptr()
        v = self._views.get(key)
        if v is None:
            o = self.offsets
            v = self._views[key] = [buf[o[i]:o[i + 1]].view(shape) for i, shape in enumerate(self.shapes)]
        return v

    def mask(self, flags):
        """A flat 0/1 buffer: 1 on the entries of the parameters whose flag is set."""
        m = self.P.new_zeros(self.P.shape)
        for i, f in enumerate(flags):
            if f:
                m[self.offsets[i]:self.offsets[i + 1]] = 1
        return m


class Workspace:
    """Buffers for one batch size: activations with their column of ones, errors, dropout masks, and
    (when the step is captured in a graph, or computes in bf16) the batch's own copy of its rows."""

    def __init__(self, eng, n):
        import torch

        dev, dt, cdt = eng.device, eng.dtype, eng.compute_dtype
        sizes, L = eng.net.sizes, eng.net.n_layers
        self.n = n

        def new(width, dtype=cdt):
            return torch.empty((n, width), dtype=dtype, device=dev)

        def with_ones(width):
            buf = new(width + 1)
            buf[:, width] = 1
            return buf

        # inp[l] = [a[l] | 1] feeds layer l + 1; h[l] = σ_l(z[l]) is its first S_l columns, or a buffer of
        # its own when dropout multiplies it into inp[l]
        self.rates = [0.0] + list(eng.dropout or [0.0] * (L - 1)) + [0.0]
        self.inp = [None] + [with_ones(s) for s in sizes[1:-1]]
        self.h = [None] + [new(s) if self.rates[l] > 0 else self.inp[l][:, :s]
                           for l, s in enumerate(sizes[1:-1], start=1)] + [new(sizes[-1])]
        self.masks = [None] + [new(s) if self.rates[l] > 0 else None for l, s in enumerate(sizes[1:-1], start=1)]
        self.d = [None] + [new(s) for s in sizes[1:]]
        self.cast = cdt != dt
        self.zL = new(sizes[-1], dt) if self.cast else self.h[L]   # the loss works in the master dtype
        self.dL = new(sizes[-1], dt) if self.cast else self.d[L]
        self.ones = torch.ones(n, dtype=cdt, device=dev)
        self.static = eng.static or self.cast  # the rows copied into buffers of their own
        self.x = with_ones(sizes[0]) if self.static else None
        self.targets = None if not eng.static else [torch.empty((n,) + tuple(t.shape[1:]), dtype=t.dtype, device=dev)
                                                     for t in eng.targets]
        self.jbuf = torch.zeros(1, dtype=dt, device=dev)  # J_B·N of a checked step
        factor = getattr(eng.output, "torch_factor", None)
        self.factor = 1.0 if factor is None else factor(n)  # the output form's c: δ[L] = c·(what it writes)
        self.graph = None


class TorchEngine(Engine):
    """The PyTorch fast path as a gradient engine (see the module docstring).

    ``host_reads`` counts the values read back from the device (one per epoch, plus one per step when
    an epoch is replayed after divergence); ``captured`` the CUDA graphs captured (one per batch size).
    ``static``: use the CUDA-graph layout (rows copied into each batch's buffers, the step's numbers
    copied to the device) even without graphs — the default on CUDA; the tests set it on the CPU to
    count what a graph contains.
    """

    name = "torch"
    deferred = True
    steps_per_call = 64

    def __init__(self, net, loss, rows, chain, diag=None, dropout=None, rng=None, precision=None,
                 batch_size=None, dropout_masks="device", static=None):
        import torch

        super().__init__(net, loss, rows, chain, diag)
        if dropout_masks not in DROPOUT_MASKS:
            raise ValueError(f"dropout_masks must be one of {', '.join(DROPOUT_MASKS)}, got {dropout_masks!r}")
        self.dropout, self.rng = dropout, rng
        self.device = net.device
        self.dtype = net.weights[1].dtype
        self.precision = precision
        self.compute_dtype = torch.bfloat16 if precision == "bf16" else self.dtype  # "highest": TF32 off
        self.cast = self.compute_dtype != self.dtype
        self.l2 = chain.plain_sgd_decay()
        self.fused = self.l2 is not None  # plain SGD folded into the products
        self.graphs = CUDA_GRAPHS and self.device.type == "cuda"
        self.static = self.graphs if static is None else bool(static)
        self.output = loss.torch_output(net.activations[-1])
        L = net.n_layers
        self.kernels = [None] + [a.torch_inplace for a in net.activations[:-1]]  # σ_l's, l = 1..L−1
        dev, dt = self.device, self.dtype
        sizes = net.sizes
        # the flat buffers: parameters in Network.parameters() order, so that Wb[l] = [W[l]; b[l]]
        self.shapes = [tuple(p.shape) for p in self.params]
        self.offsets = np.cumsum([0] + [math.prod(s) for s in self.shapes]).tolist()
        size = self.offsets[-1]
        self.P = torch.empty(size, dtype=dt, device=dev)
        self.Wb = [None] + [self.P[self.offsets[2 * l - 2]:self.offsets[2 * l]].view(sizes[l - 1] + 1, sizes[l])
                            for l in range(1, L + 1)]
        self.Pc = torch.empty(size, dtype=self.compute_dtype, device=dev) if self.cast else self.P
        self.Wbc = [None] + [self.Pc[self.offsets[2 * l - 2]:self.offsets[2 * l]].view(sizes[l - 1] + 1, sizes[l])
                             for l in range(1, L + 1)] if self.cast else self.Wb
        opt = chain.optimizer
        unfused = not self.fused
        self.G = torch.empty(size, dtype=dt, device=dev) if unfused else None
        self.Gc = torch.empty(size, dtype=self.compute_dtype, device=dev) if (unfused or self.fused) and self.cast \
            else self.G
        self.Gwb = [None] + [self.Gc[self.offsets[2 * l - 2]:self.offsets[2 * l]].view(sizes[l - 1] + 1, sizes[l])
                             for l in range(1, L + 1)] if self.Gc is not None else None
        self.slots = {name: torch.zeros(size, dtype=dt, device=dev) for name in opt.slots}
        wmask = torch.zeros(size, dtype=dt, device=dev)
        for q in range(0, len(self.params), 2):
            wmask[self.offsets[q]:self.offsets[q + 1]] = 1
        decays = opt.decays(self.params) if hasattr(opt, "decays") else [False] * len(self.params)
        scratch = unfused or chain.penalty is not None
        self.flat = _Flat(self.P, self.G, self.slots, torch.empty(size, dtype=dt, device=dev) if scratch else None,
                          self.offsets, self.shapes, wmask, decays)
        self.penalty = chain.penalty
        # the step's numbers: one small device vector, named 0-d views of it
        self.scalar_names = ["neglr", "dscale", "decay"] + sorted(opt.flat_scalars(np.ones(1), np.ones(1)))
        self.scal = torch.zeros(len(self.scalar_names), dtype=dt, device=dev)
        self.s = {name: self.scal[i] for i, name in enumerate(self.scalar_names)}
        self.scal_host = None if self.device.type != "cpu" or self.static else self.scal.numpy()
        self.table = None  # a chunk's numbers (pinned host memory when they are copied to a device)
        # the epoch's rows in order: [X | 1] and the loss's targets
        self.Xp = torch.empty((rows.n, sizes[0] + 1), dtype=dt, device=dev)
        self.Xp[:, sizes[0]] = 1
        self.targets = None
        self.perm = torch.empty(rows.n, dtype=torch.long, device=dev)
        self.batch_size = rows.n if batch_size is None else min(int(batch_size), rows.n)
        self.state = None  # the optimiser's state of the epoch (the driver's)
        self.total = torch.zeros(1, dtype=dt, device=dev)  # Σ J_B·|B| over the chunk (dtype: addmv's)
        self.epoch_total = torch.zeros((), dtype=torch.float64, device=dev)
        self.workspaces = {}
        self.pool = None
        self.eager_steps = 0  # eager steps before the first capture (of any batch size: the streams and
        # cuBLAS are warm after them, so a last partial batch is captured the first time it comes)
        self.captured = 0
        self.host_reads = 0
        self.ws = None  # the workspace of the epoch's last step
        self.before = None  # P before the epoch's last step (the diagnostics' update ratio)
        self.last_lr = None
        self.replay_loaded = False
        self.eta = None  # η of a step run with δ unscaled (a replay's, the epoch's measured last step)
        self.last_unscaled = False
        self.gen = None
        if dropout is not None and dropout_masks == "device":
            seed = int(rng.spawn(1)[0].integers(2 ** 63)) if rng is not None else 0
            self.gen = torch.Generator(device=dev)
            self.gen.manual_seed(seed)
        watched = diag.watched if diag is not None else []
        self.alive = {l: torch.zeros(sizes[l], dtype=self.compute_dtype, device=dev) for l in watched}

    # --- the flat training copy --------------------------------------------------------------------

    def _load(self, state):
        """P ← the network's parameters, the slots ← the optimiser's state (their current tensors)."""
        import torch

        torch.cat([p.reshape(-1) for p in self.params], out=self.P)
        for name, flat in self.slots.items():
            torch.cat([a.reshape(-1) for a in state[name]], out=flat)

    def _store(self, state):
        """The network's parameters and the optimiser's state ← the flat training copy."""
        import torch

        views = self.flat.views(self.P)
        torch._foreach_copy_(self.params, views)
        for name, flat in self.slots.items():
            torch._foreach_copy_(list(state[name]), self.flat.views(flat))

    # --- the epoch ---------------------------------------------------------------------------------

    def start_epoch(self, order, ctrl_c, state=None):
        """The rows to the device in the epoch's order (once), the training copy loaded, counters zeroed."""
        import torch

        self.state = state
        self._load(state)
        src = torch.from_numpy(np.ascontiguousarray(order, dtype=np.int64))
        if self.device.type == "cuda":
            src = src.pin_memory()
        self.perm.copy_(src, non_blocking=True)
        S0 = self.net.sizes[0]
        self.Xp[:, :S0].copy_(self.rows.X.index_select(0, self.perm))
        T = self.rows.T.index_select(0, self.perm)
        self.targets = self.output.torch_targets(T, self._inv_n())
        self.epoch_total.zero_()
        self.total.zero_()
        self.replay_loaded = False
        if self.gen is not None:
            self.gen_state = self.gen.get_state()  # a replay draws the epoch's masks again
        self.ws = None
        for alive in self.alive.values():
            alive.zero_()

    def _inv_n(self):
        """1/N of each row's batch, rows in the epoch's order (the last batch may be smaller)."""
        import torch

        n, bs = self.rows.n, self.batch_size
        inv = torch.full((n,), 1.0 / bs, dtype=self.dtype, device=self.device)
        last = n % bs
        if last:
            inv[n - last:] = 1.0 / last
        return inv

    def run(self, batches, lrs, state, last):
        """A chunk of steps; deferred: Σ J_B·|B| stays on the device (0 returned), else each step is
        checked before its update and the sum returned."""
        with self._precision():
            if not self.deferred:
                return self._checked(batches, lrs, state, last)
            table = self._table(batches, lrs, state)
            for k in range(len(batches)):
                ws, rows = self._rows(batches, k)
                final = last and k == len(batches) - 1
                if final:
                    self._before_last_step(ws, lrs[k])
                self._scalars(table, k)
                # the diagnostics measure the epoch's last step from −η·δ; at η ≈ 0 it runs with δ unscaled
                # (eagerly, η applied in the update's products) so that there is a δ to measure
                tiny = final and self.diag is not None and self.fused and abs(lrs[k]) < _TINY_ETA
                self.last_unscaled = bool(tiny) if final else self.last_unscaled
                self._step(ws, rows, lrs[k] if tiny else None)
                state["step"] += 1  # step by step: an exception part way keeps the count with the weights
            self.epoch_total.add_(self.total[0])
            self.total.zero_()
        return 0.0

    def _checked(self, batches, lrs, state, last):
        """The steps of a replay, each checked before its update (J_B and every δ finite)."""
        import torch

        if not self.replay_loaded:  # the driver put back the epoch's start in the network, the state and rng
            self._load(state)
            if self.gen is not None:
                self.gen.set_state(self.gen_state)  # the device's dropout masks, drawn again
            for alive in self.alive.values():
                alive.zero_()
            self.replay_loaded = True
        table = self._table(batches, lrs, state)
        total = 0.0
        try:
            for k in range(len(batches)):
                ws, rows = self._rows(batches, k)
                if last and k == len(batches) - 1:
                    self._before_last_step(ws, lrs[k])
                    self.last_unscaled = True
                self._scalars(table, k)
                if self.dropout is not None:
                    self._draw_masks(ws)
                ws.jbuf.zero_()
                self.eta = lrs[k]  # δ unscaled, checked as the NumPy path checks it: J_B and Σ_n δ[l]
                try:
                    self._forward_backward(ws, rows, ws.jbuf)
                    finite = torch.isfinite(ws.jbuf).all()
                    for d in ws.d[1:]:
                        finite = finite & torch.isfinite(d.sum(dim=0)).all()
                    self.host_reads += 1
                    if not bool(finite):
                        raise TrainingDiverged(diverged_message("the loss or a gradient"))
                    if self.fused and abs(lrs[k]) >= _TINY_ETA:  # the step as the unchecked path takes it
                        self.eta = None                           # (−η in δ), to the last bit, unless −η·δ
                        self._forward_backward(ws, rows, torch.zeros_like(ws.jbuf))  # overflows where δ
                        scaled = torch.isfinite(ws.d[1].sum(dim=0)).all()            # did not (η > 1):
                        self.host_reads += 1                                         # then η goes into
                        if bool(scaled):                                             # the update's
                            if last and k == len(batches) - 1:                       # products
                                self.last_unscaled = False
                        else:
                            self.eta = lrs[k]
                            self._forward_backward(ws, rows, torch.zeros_like(ws.jbuf))
                    self._watch(ws)
                    self._update(ws)
                finally:
                    self.eta = None
                state["step"] += 1
                total += float(ws.jbuf[0])
        finally:
            self._store(state)
        return total

    def read_total(self):
        """(Σ J·|B| over the epoch, whether a step diverged or a parameter is not finite): the
        training copy written back to the network, then the one read back from the device."""
        import torch

        self._store(self.state)
        finite = torch.isfinite(self.P).all()
        self.host_reads += 1
        total = torch.where(finite, self.epoch_total, torch.full_like(self.epoch_total, math.nan)).tolist()
        return total, not math.isfinite(total)

    def end_epoch(self, lr):
        """The diagnostics of the epoch's last step, read once."""
        diag, ws = self.diag, self.ws
        if diag is None or ws is None:
            return
        import torch

        L = self.net.n_layers
        scale = abs(self.last_lr) if self.fused and not self.last_unscaled else 1.0  # fused: δ holds −η·δ
        gn, dm, un, wn = [], [], [], []
        for l in range(1, L + 1):
            inp = self._input_of(ws, l)
            g = (inp.T @ ws.d[l])[:-1].to(self.dtype)
            gn.append(torch.linalg.vector_norm(g, dtype=torch.float64) / scale)
            dm.append(ws.d[l].abs().mean(dtype=torch.float64) / scale)
            W, W0 = self.Wb[l][:-1], self.before[self.offsets[2 * l - 2]:self.offsets[2 * l - 1]].view(self.shapes[2 * l - 2])
            un.append(torch.linalg.vector_norm(W - W0, dtype=torch.float64))
            wn.append(torch.linalg.vector_norm(W0, dtype=torch.float64))
        values = torch.stack(gn + dm + un + wn).tolist()
        diag.measured(values[:L], values[L:2 * L], values[2 * L:3 * L], values[3 * L:])
        # the epoch's union of active units, as one row of activations per hidden layer
        rows = [None] * (L + 1)
        for l, alive in self.alive.items():
            rows[l] = alive.reshape(1, -1).to(self.dtype)
        diag.hidden_activations(rows)

    # --- one step ----------------------------------------------------------------------------------

    def _workspace(self, n):
        ws = self.workspaces.get(n)
        if ws is None:
            ws = self.workspaces[n] = Workspace(self, n)
        return ws

    def _rows(self, batches, k):
        """The workspace of step k of the chunk and its rows (a slice of the epoch's ordered rows)."""
        start = batches.start + k * batches.size
        stop = min(start + batches.size, self.rows.n)
        ws = self._workspace(stop - start)
        return ws, (self.Xp[start:stop], [t[start:stop] for t in self.targets])

    def _table(self, batches, lrs, state):
        """Each step's numbers (a row per step, columns as ``scalar_names``), on the host."""
        lr = np.asarray(lrs, dtype=np.float64)
        t = state["step"] + 1 + np.arange(len(lr), dtype=np.float64)
        cols = dict(self.chain.optimizer.flat_scalars(lr, t))
        cols["neglr"] = -lr
        sizes = np.array([min(batches.size, self.rows.n - batches.start - k * batches.size)
                          for k in range(len(lr))])
        factors = np.array([self._workspace(int(n)).factor for n in sizes])
        cols["dscale"] = factors * (-lr if self.fused else 1.0)
        cols["decay"] = 1.0 - lr * (self.l2 or 0.0)
        table = np.stack([np.broadcast_to(np.asarray(cols[name], dtype=np.float64), lr.shape)
                          for name in self.scalar_names], axis=1).astype(np.dtype(str(self.dtype).split(".")[-1]))
        if self.scal_host is None:
            import torch

            table = torch.from_numpy(table)
            if self.device.type == "cuda":
                table = table.pin_memory()
        return table

    def _scalars(self, table, k):
        if self.scal_host is not None:
            self.scal_host[:] = table[k]  # the CPU tensor's memory: no operation
        else:
            self.scal.copy_(table[k], non_blocking=True)

    def _before_last_step(self, ws, lr):
        import torch

        self.ws, self.last_lr = ws, lr
        if self.diag is not None:
            self.before = torch.clone(self.P)

    def _step(self, ws, rows, eta=None):
        """One deferred step: the rows into the batch's buffers where the step is a graph, the dropout
        masks, then the graph's replay or the step itself. ``eta``: run it eagerly with δ unscaled and
        η applied in the update's products (the diagnostics measure that step's δ)."""
        if ws.static:
            ws.x[:, :-1].copy_(rows[0][:, :-1])
            if ws.targets is not None:
                for dst, src in zip(ws.targets, rows[1]):
                    dst.copy_(src)
        if self.dropout is not None:
            self._draw_masks(ws)
        if eta is not None:
            self.eta = eta
            try:
                self._body(ws, rows)
            finally:
                self.eta = None
            return
        if ws.graph is None and self.graphs and self.eager_steps >= WARMUP_STEPS:
            self._capture(ws)  # after a few eager steps; a failed capture turns the graphs off
        if ws.graph is not None:
            ws.graph.replay()
        elif self.graphs:
            self._on_side_stream(lambda: self._body(ws, rows))
            self.eager_steps += 1
        else:
            self._body(ws, rows)

    def _body(self, ws, rows):
        """What a graph captures: forward, backward, the update."""
        self._forward_backward(ws, rows, self.total)
        self._watch(ws)
        self._update(ws)

    def _watch(self, ws):
        for l, alive in self.alive.items():  # hidden layer l (the diagnostics' dead units): a ≥ 0 for relu,
            alive.addmv_(ws.inp[l][:, :-1].T, ws.ones)  # so a unit was active when its column sum is > 0

    def _input_of(self, ws, l):
        """[a[l−1] | 1], the input of layer l (for l = 1 the batch's rows)."""
        if l > 1:
            return ws.inp[l - 1]
        return ws.x if ws.static else ws.rows_x

    def _forward_backward(self, ws, rows, total):
        """h[l], the loss (J·N into ``total``) and every δ[l], scaled as the step needs (−η/N·… for
        plain SGD)."""
        import torch

        L, W = self.net.n_layers, self.Wbc
        if self.cast:
            self.Pc.copy_(self.P)
        x = ws.x if ws.static else rows[0]
        ws.rows_x = x
        targets = ws.targets if ws.targets is not None else rows[1]
        inp = x
        for l in range(1, L):
            k = self.kernels[l]
            if k.product is not None:
                k.product(inp, W[l], ws.h[l])
            else:
                torch.mm(inp, W[l], out=ws.h[l])
                k.forward(ws.h[l])
            if ws.masks[l] is not None:
                torch.mul(ws.h[l], ws.masks[l], out=ws.inp[l][:, :-1])
            inp = ws.inp[l]
        torch.mm(inp, W[L], out=ws.h[L])
        if ws.cast:
            ws.zL.copy_(ws.h[L])
        self.output.torch_step(ws.zL, ws.dL, targets, total, ws.n)
        if self.penalty is not None:
            self.penalty.flat_value(self.flat, total, ws.n)
        if self.fused and self.eta is not None:  # unscaled: η goes into the update's products
            if ws.factor != 1.0:
                ws.dL.mul_(ws.factor)
        elif self.fused or ws.factor != 1.0:
            ws.dL.mul_(self.s["dscale"])
        if ws.cast:
            ws.d[L].copy_(ws.dL)
        for l in range(L - 1, 0, -1):  # δ[l] = (δ[l+1] @ W[l+1]ᵀ) ⊙ m[l] ⊙ σ_l′, σ_l′ from a[l] = h[l]
            torch.mm(ws.d[l + 1], W[l + 1][:-1].T, out=ws.d[l])
            if ws.masks[l] is not None:
                ws.d[l].mul_(ws.masks[l])
            self.kernels[l].backward(ws.d[l], ws.h[l], None)

    def _update(self, ws):
        """The update of the step whose δ[l] are in ``ws``."""
        L = self.net.n_layers
        if self.fused and not self.cast:
            for l in range(1, L + 1):
                if self.l2:
                    self.Wb[l][:-1].mul_(self.s["decay"])
                if self.eta is None:
                    self.Wb[l].addmm_(self._input_of(ws, l).T, ws.d[l])
                else:
                    self.Wb[l].addmm_(self._input_of(ws, l).T, ws.d[l], alpha=-self.eta)
            return
        self._gradients(ws)
        if self.fused:  # bf16: G holds −η g in bfloat16; the master weights take it in float32
            if self.l2:
                for l in range(1, L + 1):
                    self.Wb[l][:-1].mul_(self.s["decay"])
            self.P.add_(self.Gc, alpha=1.0 if self.eta is None else -self.eta)
            return
        if self.cast:
            self.G.copy_(self.Gc)
        chain = self.chain
        if chain.penalty is not None:
            chain.penalty.flat_transform(self.flat, ws.n)
        if chain.clip is not None:
            chain.clip.flat_transform(self.flat)
        chain.optimizer.flat_update(self.flat, self.s)

    def _gradients(self, ws):
        """[∂J/∂W[l]; ∂J/∂b[l]] = [a[l−1] | 1]ᵀ δ[l] into G (its compute-dtype copy), each layer one product
        (times the step's scaling of δ: −η for plain SGD in bf16)."""
        import torch

        for l in range(1, self.net.n_layers + 1):
            torch.mm(self._input_of(ws, l).T, ws.d[l], out=self.Gwb[l])

    def _draw_masks(self, ws):
        """This step's dropout masks, 0 or 1/(1 − p): on the device (the default), or drawn on the host
        by the library's one rule (:func:`ffnn.network.dropout_draw`) and copied."""
        import torch

        for l, m in enumerate(ws.masks):
            if m is None:
                continue
            keep = 1.0 - ws.rates[l]
            if self.gen is not None:
                m.bernoulli_(keep, generator=self.gen)
                m.mul_(1.0 / keep)
            else:
                from ..network import dropout_draw

                src = torch.from_numpy(dropout_draw(ws.rates[l], tuple(m.shape), self.rng, self.net.dtype))
                if m.is_cuda:
                    src = src.pin_memory()
                m.copy_(src, non_blocking=True)

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
        debug = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode(0)  # beginning a capture synchronises, once per batch size, by design
        try:
            with torch.cuda.graph(graph, pool=self.pool):
                self._body(ws, None)
        except RuntimeError as exc:
            self.graphs = False
            warnings.warn(f"ffnn: the training step could not be captured in a CUDA graph ({exc}); "
                          f"training goes on without graphs", stacklevel=2)
            return False
        finally:
            torch.cuda.set_sync_debug_mode(debug)
        self.pool = graph.pool()
        ws.graph = graph
        self.captured += 1
        return True

    # --- precision ---------------------------------------------------------------------------------

    def _precision(self):
        import contextlib

        if self.precision not in ("tf32", "highest") or self.device.type != "cuda":
            return contextlib.nullcontext()
        return tf32_matmul(self.precision == "tf32")


def tf32_matmul(on=True):
    """A context in which CUDA float32 matrix products use TF32 (``on``) or full float32: through
    ``torch.backends.cuda.matmul.fp32_precision`` ("tf32"/"ieee") where PyTorch has it — mixing it
    with the older ``allow_tf32`` flag raises — else that flag. The previous setting is restored."""
    import contextlib

    import torch

    matmul = torch.backends.cuda.matmul

    @contextlib.contextmanager
    def scope():
        if hasattr(matmul, "fp32_precision"):
            old = matmul.fp32_precision
            matmul.fp32_precision = "tf32" if on else "ieee"
            try:
                yield
            finally:
                matmul.fp32_precision = old
        else:
            old = matmul.allow_tf32
            matmul.allow_tf32 = on
            try:
                yield
            finally:
                matmul.allow_tf32 = old

    return scope()
