""":func:`train`: minibatch stochastic gradient descent as Kolar and McCulloch list it — epochs,
minibatches, a learning-rate schedule, Nesterov momentum, L1/L2 — and what users expect beyond
(validation, early stopping, dropout, clipping, checkpoints, callbacks).

This module is the entry: it checks the arguments (the options through
:class:`ffnn.training.options.Settings`) and prepares the data; :mod:`ffnn.training.run` holds the epoch
driver and :mod:`ffnn.training.engines` the steps.
"""

from __future__ import annotations

import inspect

import numpy as np

from .._checks import number
from ..datasets import is_source
from ..history import History
from ..splits import one_hot_labels, split_indices
from .options import Settings
from .run import Data, Run
from .stopping import EarlyStopping, TrainingDiverged, TrainingInterrupted

__all__ = ["train", "EarlyStopping", "TrainingDiverged", "TrainingInterrupted"]


def _split(n, fraction, T, rng):
    """Indices (train, validation); stratified by class when T is one-hot."""
    return split_indices(n, fraction, rng, None if T is None else one_hot_labels(T))


def train(net, X, T, *, loss, optimizer="sgd", epochs=10, batch_size=32, l1=0.0, l2=0.0, schedule=None,
          validation=None, early_stopping=None, shuffle=True, seed=None, callbacks=(), progress=False,
          checkpoint=None, checkpoint_every=1, resume=None, dropout=0.0, clip_norm=None, metric=None,
          sample_weight=None, diagnostics=True, precision=None, loop="auto", dropout_masks="device",
          comm=None):
    """Train ``net`` in place by minibatch gradient descent; returns a :class:`History`.

    Parameters
    ----------
    net : Network
    X : array (N, S_0), or rows on disk (``ffnn.datasets.NpyPair``, ``ffnn.datasets.ParquetRows``)
        A source on disk is read a batch at a time (with ``T=None``; see :mod:`ffnn.datasets` for
        its shuffle); it takes neither ``sample_weight`` nor a validation fraction.
    T : array (N, S_L) (or (N,) for one output), or None with a source
    loss : str or Loss
    optimizer : str or Optimizer
        ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"`` (defaults) or an object such as
        ``ffnn.SGD(0.1, momentum=0.9, nesterov=True)``. Passing the same object to a second call
        continues its state (momentum buffers, Adam moments).
    epochs : int
        Total number of passes over the data (with ``resume``, the run's total, not the remainder).
    batch_size : int
        Minibatch size; 1 is online learning (Gashler's per-pattern updates). Capped at N.
    l1, l2 : float
        Penalties λ₁ Σ|W| + (λ₂/2) Σ W² on the weights (not the biases), in loss and gradient.
    schedule : None, str or callable
        Factor s(t) on the base learning rate (see ``ffnn.schedules``).
    validation : (X_val, T_val) or float
        Held-out data, or the fraction of (X, T) to hold out (stratified when T is one-hot).
    early_stopping : int, EarlyStopping or None
        Patience in epochs (or an EarlyStopping with min_delta); the best weights are restored.
    shuffle : bool
        Reshuffle once per epoch, from a Generator built from ``seed``.
    seed : int, Generator or None
        Source of the shuffles, the validation split and dropout. Same seed, data and machine: the
        same weights bit for bit.
    callbacks : sequence of callables
        ``callback(net, history)`` after each epoch; returning True stops training.
    progress : bool
        A tqdm progress bar over batches with the running loss, and each epoch's metrics.
    checkpoint : path, optional
        Written exactly there, atomically, every ``checkpoint_every`` epochs and at the end.
    resume : path, optional
        Continue the run saved in this checkpoint (same network sizes), checked whole first (a
        malformed one is a :class:`ffnn.FileFormatError`). A run that early stopping ended stays
        ended: its best weights are restored and nothing more is trained.
    dropout : float or list of float
        Inverted dropout on the hidden layers during training (``predict`` never drops).
    clip_norm : float, optional
        Rescale the gradient to this global L2 norm when it is larger.
    metric : "accuracy", "r2", "mse", "mae" or callable(T, A), optional
        Validation metric; default accuracy for classification losses, R² otherwise.
    sample_weight : array (N,), optional
        Per-sample weights in the loss (built-in losses only).
    diagnostics : bool
        Record the gradient-flow diagnostics in the History (per layer: ‖∂J/∂W[l]‖, mean |δ[l]|,
        ‖ΔW[l]‖/‖W[l]‖, dead relu units; see :mod:`ffnn.training.diagnostics`).
    precision : None, "highest", "tf32" or "bf16"
        None: every operation in the network's dtype, under PyTorch's global settings. "highest": the
        same, with CUDA's TF32 matrix products turned off for the run even where the user's global
        setting allows them. For a float32 network of PyTorch tensors trained on the PyTorch fast
        path: "tf32" lets CUDA matrix products use TF32; "bf16" computes products and activations in
        bfloat16 with float32 master weights, loss and update.
    loop : "auto", "compiled" or "interpreted"
        Which training loop runs. "auto" (default): the compiled loop (numba; Python is entered once
        per chunk of steps, see :mod:`ffnn.training.compiled_engine`) wherever it computes the step —
        NumPy float32/float64 arrays in memory, built-in activations and loss, ffnn's optimisers,
        penalties, clipping, dropout and sample weights — else the interpreted one. "compiled":
        ValueError naming what stands in the way when it cannot run. "interpreted": the loop of
        NumPy calls (the same numbers; in float64 within 1e-12 of the compiled loop's weights).
        ``History.loop`` records which loop ran.
    dropout_masks : "device" or "host"
        Where the PyTorch fast path draws dropout masks. "device" (default): on the network's device,
        from a generator of that device seeded from the run's ``seed`` (no host work or copy per step;
        the same seed gives the same masks on the same device). "host": from the run's NumPy Generator
        by the library's one rule, copied to the device — the masks, and so the numbers, of the NumPy
        path. NumPy networks always draw on the host.
    comm : mpi4py communicator, optional
        Synchronous data parallelism over its processes (e.g. ``MPI.COMM_WORLD``, launched with
        ``mpiexec -n P python -m mpi4py script.py``): every process calls ``train`` with the same
        arguments and ends with the weights one process trains, to rounding (each step's global
        minibatch is the one process's; each rank computes the gradient of its share of it and one
        Allreduce sums them; see :mod:`ffnn.training.distributed`). Progress, callbacks and
        checkpoints run on rank 0; when one of them raises, rank 0 raises it and every other rank a
        RuntimeError naming it. Needs NumPy arrays and a built-in loss.

    Raises
    ------
    TrainingDiverged
        When the loss or an update becomes non-finite; ``net`` keeps finite weights (those before the
        failing step, or the epoch's first when an update itself overflowed, with the optimiser's
        state of that moment). Whatever ends training — this, Ctrl-C, a schedule's bad factor, an
        exception in a callback — the weights are finite.
    TrainingInterrupted
        On Ctrl-C, after the current step: the network keeps every completed update (early stopping's
        best weights, when it has them); a checkpoint keeps the last completed epoch, so that a
        resumed run stays exact. A second Ctrl-C interrupts at once.

    Notes
    -----
    PyTorch tensors (a network made with ``xp=torch`` or ``device=…``) train where the network lives;
    NumPy inputs are moved there once. With built-in activations and losses and no sample weights they
    take the PyTorch fast path (:mod:`ffnn.training.torch_engine`): no host–device synchronisation
    inside an epoch, CUDA graphs on a GPU, and in float64 the NumPy path's numbers (the same shuffles
    and dropout masks, drawn from the same Generator).
    """
    from ..network import Network

    if not isinstance(net, Network):
        raise TypeError(f"train needs an ffnn.Network as net, got {type(net).__name__}")
    options = locals()
    del options["Network"]
    settings = Settings(net=net, **{name: options[name] for name in Settings.names()})
    if validation is not None and not isinstance(validation, (tuple, list)):
        validation = number("validation fraction", validation, low=0, low_open=True, high=1, high_open=True)
    rng = _generator(seed)
    source = is_source(X)
    if source:
        data = _source_data(net, X, T, sample_weight, validation)
    else:
        data = _prepare_data(net, X, T, sample_weight, validation, settings.loss, rng)
    history = History(metric=settings.metric_name if data.X_val is not None else "",
                      loss_includes_penalty=bool(settings.penalty))
    return Run(net, data, settings, rng, history, comm).fit(resume)


def settings_for(net, **options):
    """:class:`Settings` for ``net`` from ``options``, the others at ``train``'s defaults (read from its
    signature, where they are declared)."""
    defaults = {name: p.default for name, p in inspect.signature(train).parameters.items()
                if p.default is not inspect.Parameter.empty}
    unknown = set(options) - set(Settings.names())
    if unknown:
        raise TypeError(f"unknown training options: {', '.join(sorted(unknown))}")
    return Settings(net=net, **{name: options.get(name, defaults.get(name)) for name in Settings.names()})


def _generator(seed):
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def class_targets(net, loss, T):
    """1-D class labels 0 … K−1 for a cross-entropy loss, as one-hot rows (Keras' sparse categorical
    cross-entropy; training is exactly as with the one-hot rows); 0/1 labels for a single logistic
    output as one column. Anything else is returned as given (and checked as targets)."""
    from .._array import to_numpy

    if not hasattr(T, "ndim") or getattr(T, "ndim", 0) != 1 or not getattr(loss, "classification", False):
        return T
    K = net.sizes[-1]
    labels = np.asarray(to_numpy(T))
    if labels.dtype.kind not in "biuf":
        return T
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(labels) & (labels == np.round(labels)) if labels.dtype.kind == "f" else \
            np.ones(labels.shape, bool)
    top = 2 if K == 1 else K
    bad = np.flatnonzero(~whole | (labels < 0) | (labels >= top))
    if bad.size:
        raise ValueError(f"T holds 1-D class labels for loss {loss.name!r}; they must be whole numbers 0 … {top - 1} "
                         f"(the output layer has {K} unit{'s' if K > 1 else ''}), got {labels[bad[0]].item()!r} at row "
                         f"{int(bad[0])}")
    codes = labels.astype(np.int64)
    dense = codes[:, None].astype(np.float64) if K == 1 else np.eye(K)[codes]
    if hasattr(T, "device") and not isinstance(T, np.ndarray):  # a tensor: one-hot rows where it lives
        return net.xp.asarray(dense, device=net.placement())
    return dense


def _prepare_data(net, X, T, sample_weight, validation, loss, rng):
    """Checked arrays and the validation split, as a :class:`Data`."""
    xp = net.xp
    X = net.check_inputs(X)
    if X.shape[0] == 0:
        raise ValueError("X has no samples (0 rows); training needs at least one")
    T = net.check_targets(class_targets(net, loss, T), X.shape[0])
    w = None if sample_weight is None else net.check_sample_weight(sample_weight, X.shape[0])
    if w is not None and not loss.weighted:
        raise TypeError(f"loss {loss.name!r} does not take sample weights")
    if validation is None:
        data = Data(X, T, w)
    elif isinstance(validation, (tuple, list)):
        if len(validation) != 2:
            raise ValueError("validation must be (X_val, T_val) or a fraction in (0, 1)")
        Xv = _val_input(net, validation[0])
        data = Data(X, T, w, Xv, net.check_targets(class_targets(net, loss, validation[1]), Xv.shape[0]))
    else:
        place = net.placement()
        tr_idx, va_idx = (xp.asarray(i) if place is None else xp.asarray(i, device=place)
                          for i in _split(X.shape[0], float(validation), T, rng))
        Xv, Tv = xp.take(X, va_idx, axis=0), xp.take(T, va_idx, axis=0)
        X, T = xp.take(X, tr_idx, axis=0), xp.take(T, tr_idx, axis=0)
        data = Data(X, T, None if w is None else xp.take(w, tr_idx, axis=0), Xv, Tv)
    if data.w is not None and not bool(xp.any(data.w > 0)):
        raise ValueError("sample_weight is zero for every training sample; at least one must be positive")
    return data


def _source_data(net, source, T, sample_weight, validation):
    """A :class:`Data` of rows on disk (checked a batch at a time) and validation arrays or None."""
    if T is not None:
        raise TypeError("with rows on disk, pass T=None: the targets come from the same source")
    if sample_weight is not None:
        raise TypeError("sample_weight is not supported with rows on disk")
    source.bind(net)
    if validation is None:
        return Data(source, None)
    if not isinstance(validation, (tuple, list)) or len(validation) != 2:
        raise ValueError("with rows on disk, validation must be (X_val, T_val) arrays")
    Xv = _val_input(net, validation[0])
    return Data(source, None, None, Xv, net.check_targets(validation[1], Xv.shape[0]))


def _val_input(net, Xv):
    try:
        return net.check_inputs(Xv)
    except ValueError as exc:
        raise ValueError(f"validation data: {exc}") from None
