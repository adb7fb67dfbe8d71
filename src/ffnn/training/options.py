"""The options of :func:`ffnn.train` that shape a run, declared once: :class:`Settings`.

Each option is a field of :class:`Settings` with the name it has in ``train``'s signature, and is
checked in :meth:`Settings.__post_init__`; its default is the one in ``train``'s signature
(:func:`ffnn.training.api.settings_for` reads it there), and ``train`` hands every option to
:class:`Settings` by name.
Adding an option is one parameter of ``train`` (with its line in the docstring) and one field
here, with its check.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from .. import activations as _act
from .. import losses as _loss
from .._checks import integer, number
from .._files import check_writable
from ..metrics import get_metric
from ..optim import get_optimizer
from ..schedules import get_schedule
from ..updates import ClipByGlobalNorm, Penalty
from .stopping import EarlyStopping

__all__ = ["Settings", "PRECISIONS", "LOOPS", "DROPOUT_MASKS", "dropout_rates", "default_metric", "precision_for"]

PRECISIONS = ("highest", "tf32", "bf16")
LOOPS = ("auto", "compiled", "interpreted")
DROPOUT_MASKS = ("device", "host")  # where the PyTorch fast path draws dropout masks  # which training loop runs (see ffnn.training.compiled_engine)


def dropout_rates(dropout, n_hidden):
    """One rate per hidden layer, each in [0, 1), or None when no layer drops."""
    rates = list(dropout) if isinstance(dropout, (list, tuple)) else [dropout] * n_hidden
    if len(rates) != n_hidden:
        raise ValueError(f"dropout has {len(rates)} rates; the network has {n_hidden} hidden layers")
    rates = [number("dropout rate", r, low=0, high=1, high_open=True) for r in rates]
    return rates if any(r > 0 for r in rates) else None


def precision_for(precision, net, on_torch_path):
    """The checked ``precision`` option for ``net``: None for None; "highest" (TF32 off on the PyTorch
    fast path, whatever the global setting; nothing to change elsewhere: None); "tf32" or "bf16" only
    for a float32 network that trains on the PyTorch fast path (``on_torch_path``)."""
    if precision is None:
        return None
    if precision == "highest":
        return "highest" if on_torch_path else None
    if not on_torch_path:
        raise ValueError(f"precision={precision!r} needs PyTorch tensors and built-in activations and loss "
                         f"(the PyTorch fast path)")
    if net.dtype != "float32":
        raise ValueError(f"precision={precision!r} is for float32 networks; this one is {net.dtype}")
    return precision


def default_metric(net, loss):
    """"accuracy" for classification losses or a softmax output, "margin_accuracy" for a margin loss
    (hinge: scores, the class by their sign), "r2" otherwise."""
    if loss.classification or net.activations[-1] == _act.softmax:
        return "accuracy"
    if getattr(loss, "margin", False):
        return "margin_accuracy"
    return "r2"


@dataclass
class Settings:
    """Every option of :func:`ffnn.train` that shapes the run (see its docstring for each), checked and
    in the form the run uses: ``loss`` a Loss, ``optimizer`` an Optimizer, ``schedule`` a callable,
    ``early_stopping`` a fresh :class:`EarlyStopping` or None, ``dropout`` one rate per hidden layer
    or None, ``metric`` a callable with its ``metric_name`` (the default for this network and loss
    when none was given)."""

    net: object
    loss: object
    optimizer: object
    epochs: int
    batch_size: int
    l1: float
    l2: float
    schedule: object
    early_stopping: object
    shuffle: bool
    callbacks: tuple
    progress: bool
    checkpoint: object
    checkpoint_every: int
    dropout: object
    clip_norm: object
    metric: object
    diagnostics: bool
    precision: object
    loop: str
    dropout_masks: str

    def __post_init__(self):
        net = self.net
        self.loss = _loss.get_loss(self.loss)
        if net.activations[-1] == _act.softmax and net.sizes[-1] == 1:
            raise ValueError("a softmax over one output is always 1: nothing can train (the loss is constant). "
                             "Use a sigmoid output with binary_cross_entropy for two classes, or give the "
                             "output layer one unit per class")
        self.optimizer = get_optimizer(self.optimizer)
        self.epochs = integer("epochs", self.epochs, low=1)
        self.batch_size = integer("batch_size", self.batch_size, low=1)
        self.penalty = Penalty(self.l1, self.l2)
        self.l1, self.l2 = self.penalty.l1, self.penalty.l2
        if self.schedule is not None and not self.optimizer.follows_lr:
            raise ValueError(f"optimizer {self.optimizer.name!r} reads the learning rate only for its first step "
                             f"size, so a schedule would change nothing; leave schedule=None")
        self.schedule = get_schedule(self.schedule)
        stopper = self.early_stopping
        if stopper is None or stopper is False:
            stopper = None
        else:
            stopper = stopper if isinstance(stopper, EarlyStopping) else EarlyStopping(stopper)
            stopper = EarlyStopping(stopper.patience, stopper.min_delta)  # fresh state for this run
        self.early_stopping = stopper
        self.shuffle = bool(self.shuffle)
        for cb in self.callbacks:
            if not callable(cb):
                raise TypeError(f"callbacks must be callables, got {cb!r}")
        self.callbacks = tuple(self.callbacks)
        self.progress = bool(self.progress)
        if self.checkpoint is not None:
            check_writable(self.checkpoint, "checkpoint")
        self.checkpoint_every = integer("checkpoint_every", self.checkpoint_every, low=1)
        self.dropout = dropout_rates(self.dropout, net.n_layers - 1)
        self.clip = None if self.clip_norm is None else ClipByGlobalNorm(self.clip_norm)
        self.clip_norm = None if self.clip is None else self.clip.c
        metric = self.metric
        self.metric_name = metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")
        self.metric = get_metric(metric) if metric is not None else None
        if self.metric is None:
            self.metric_name = default_metric(net, self.loss)
            self.metric = get_metric(self.metric_name)
        self.diagnostics = bool(self.diagnostics)
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"precision must be None or one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.loop not in LOOPS:
            raise ValueError(f"loop must be one of {', '.join(LOOPS)}, got {self.loop!r}")
        if self.dropout_masks not in DROPOUT_MASKS:
            raise ValueError(f"dropout_masks must be one of {', '.join(DROPOUT_MASKS)}, got {self.dropout_masks!r}")

    @property
    def stopper(self):
        return self.early_stopping

    @classmethod
    def names(cls):
        """The option names, as in ``train``'s signature."""
        return [f.name for f in fields(cls) if f.name != "net"]
