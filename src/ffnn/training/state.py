"""A run's state on disk: writing a checkpoint and restoring a run from it, in one place, so that
what is written and what is read can never drift apart.

One safetensors file. Tensors, by layer l = 1..L: the network's ``W.{l}`` and ``b.{l}``, each
optimiser slot's ``opt.{slot}.W.{l}`` and ``opt.{slot}.b.{l}``, and early stopping's best weights
``best.W.{l}`` and ``best.b.{l}``. JSON metadata under ``"ffnn_checkpoint"`` (:data:`SCHEMA`): the
format, the network's sizes, activations and dtype, the loss, the epoch, the optimiser's name,
hyperparameters, step and slots, the RNG's bit-generator state, the schedule's and early stopping's
state and the History; a SHA-256 checksum of all of it beside it.

A checkpoint is checked whole before a run takes anything from it (:func:`restore_run`): its
fields against :data:`SCHEMA` (any missing, mistyped or unknown field is an error naming it), every
array's name, shape and finiteness against the network and the optimiser, the schedule's and early
stopping's state against theirs. A malformed checkpoint is a :class:`ffnn.FileFormatError` naming
the file; one of another network, loss or optimiser is a ValueError. Checkpoints of format 1 (which
named the per-parameter arrays by their index in the flat parameter list: ``opt.{slot}.{i}``,
``best.{i}``) are read too.
"""

from __future__ import annotations

import numpy as np

from .._array import asarray_on, resolve_dtype, to_numpy
from .._files import FileFormatError, SafetensorsFile, printable, write_arrays
from .._schema import (ANY, BIT_GENERATOR, FLOAT, HISTORY, SHA256, Array, check_arrays, history_from, integer,
                       layer_names, legacy_names, list_of, number, obj, one_of, text, validate)
from ..history import History

__all__ = ["save_run", "restore_run", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT", "SCHEMA"]

#: 2: per-parameter arrays named by layer (``opt.m.W.1``); 1: by flat index (``opt.m.0``).
CHECKPOINT_FORMAT = 2
_KEY = "ffnn_checkpoint"

#: The document under ``"ffnn_checkpoint"``: field → Field. The schedule's and early stopping's
#: states are checked against the resuming run's own (:func:`restore_run`).
SCHEMA = {
    "format": integer(1),
    "sizes": list_of(integer(1), low=2),
    "activations": list_of(text("an activation name")),
    "dtype": one_of("float32", "float64"),
    "loss": text("a loss name"),
    "epoch": integer(1),
    "optimizer": obj({
        "name": text("an optimizer name"),
        "config": obj({}, others=ANY),  # hyperparameters, for the record
        "step": integer(0),
        "slots": list_of(text("a slot name", pattern="[A-Za-z_][A-Za-z0-9_]*")),
    }),
    "rng": BIT_GENERATOR,
    "schedule": obj({}, others=ANY).or_null(),
    "stopper": obj({}, others=ANY).or_null(),
    "history": HISTORY,
    "sha256": SHA256,
}


def save_checkpoint(path, net, *, epoch, optimizer, opt_state, rng, schedule_state, stopper_state,
                    best_params, history: History, loss_name):
    arrays = {}
    L = net.n_layers
    for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        arrays[f"W.{l}"] = to_numpy(W)
        arrays[f"b.{l}"] = to_numpy(b)
    for slot, values in opt_state.items():
        if slot != "step":
            for name, v in zip(layer_names(L, f"opt.{slot}."), values, strict=True):
                arrays[name] = to_numpy(v)
    if best_params is not None:
        for name, p in zip(layer_names(L, "best."), best_params, strict=True):
            arrays[name] = to_numpy(p)
    meta = {
        "format": CHECKPOINT_FORMAT,
        "sizes": list(net.sizes),
        "activations": [a.name for a in net.activations],
        "dtype": net.dtype,
        "loss": loss_name,
        "epoch": epoch,
        "optimizer": {"name": optimizer.name, "config": optimizer.config(), "step": opt_state["step"],
                      "slots": [s for s in opt_state if s != "step"]},
        "rng": rng.bit_generator.state,
        "schedule": schedule_state,
        "stopper": stopper_state,
        "history": history.to_dict(),
    }
    write_arrays(path, arrays, meta, _KEY, "checkpoint file")


def _check_meta(meta, net, where):
    if isinstance(meta.get("format"), int) and meta["format"] > CHECKPOINT_FORMAT:
        raise FileFormatError(f"{where} was written by a newer ffnn "
                              f"(format {meta.get('format')}; this version reads up to {CHECKPOINT_FORMAT})")
    validate(meta, SCHEMA, where)
    if meta["sizes"] != list(net.sizes):
        raise ValueError(f"{where} is for a network of sizes {meta['sizes']}; this network has sizes {list(net.sizes)}")
    names = [a.name for a in net.activations]
    if meta["activations"] != names:
        raise ValueError(f"{where} has activations {printable(meta['activations'])}; this network has {names}")


def _expected_arrays(meta, params, has_best):
    """name → :class:`~ffnn._schema.Array` of every array the checkpoint must hold."""
    L, shapes = len(meta["sizes"]) - 1, [tuple(p.shape) for p in params]
    prefixes = ["", *(f"opt.{slot}." for slot in meta["optimizer"]["slots"]), *(["best."] if has_best else [])]
    return {name: Array(FLOAT, shape) for prefix in prefixes for name, shape in zip(layer_names(L, prefix), shapes)}


def load_checkpoint(path, net):
    """Read and check a checkpoint of ``net``'s architecture. Returns ``(arrays, meta)``, the arrays
    by their names in the current format (``opt.m.W.1``) whatever the file's.

    Raises FileFormatError for a malformed file (missing, mistyped or unknown fields, missing,
    misshapen or unexpected arrays, NaN or infinite values, a checksum that does not match) and
    ValueError for a checkpoint of another architecture.
    """
    with SafetensorsFile(path, _KEY, "checkpoint file") as f:
        where, meta = f.where, f.meta
        _check_meta(meta, net, where)
        renamed = legacy_names(f.tensors, len(meta["sizes"]) - 1) if meta["format"] < 2 else {}
        source = {renamed.get(name, name): name for name in f.tensors}  # name now → name in the file
        found = {name: f.tensors[src] for name, src in source.items()}
        expected = _expected_arrays(meta, net.parameters(), any(name.startswith("best.") for name in found))
        check_arrays(found, expected, where, "checkpoint")
        f.verify()
        arrays = {}
        for name in expected:
            arrays[name] = f.array(source[name])
            if not np.all(np.isfinite(arrays[name])):
                raise FileFormatError(f"{where}: {name} holds NaN or infinite values")
    return arrays, meta


def optimizer_state_from(arrays, meta, xp, dtype, device=None):
    """The optimiser state dict stored in a checkpoint, as arrays of namespace ``xp`` (on ``device``)."""
    L = len(meta["sizes"]) - 1
    state = {"step": int(meta["optimizer"]["step"])}
    for slot in meta["optimizer"]["slots"]:
        state[slot] = [asarray_on(xp, np.asarray(arrays[name]), dtype, device)
                       for name in layer_names(L, f"opt.{slot}.")]
    return state


def _check_state(where, what, path, stored, current):
    """A schedule's or early stopping's stored state (at ``path`` in the file) against its current
    state: the same fields, each a number wherever the current state holds one (an integer where it
    holds an integer, a number or null where it holds null)."""
    def field(now):
        if now is None:
            return number().or_null()
        return integer(0) if isinstance(now, int) and not isinstance(now, bool) else number()

    try:
        validate(stored, obj({k: field(v) for k, v in current.items()}), where, path)
    except FileFormatError as exc:
        raise FileFormatError(f"{exc} (the {what} state does not match this run's {what})") from None


def save_run(run, path, epoch):
    """Write ``run``'s state after ``epoch`` to ``path`` (atomically)."""
    s = run.s
    save_checkpoint(path, run.net, epoch=epoch, optimizer=s.optimizer, opt_state=run.state, rng=run.rng,
                    schedule_state=s.schedule.state() if hasattr(s.schedule, "state") else None,
                    stopper_state=s.stopper.state() if s.stopper is not None else None,
                    best_params=run.best_params, history=run.history, loss_name=s.loss.name)


def restore_run(run, path):
    """Put ``run`` back in the state saved at ``path`` (network, optimiser, RNG, schedule, early
    stopping, History), after checking all of it; returns the first epoch still to train."""
    net, xp, s = run.net, run.net.xp, run.s
    arrays, meta = load_checkpoint(path, net)
    where = f"checkpoint file {str(path)!r}"
    if meta["loss"] != s.loss.name:
        raise ValueError(f"{where} was trained with loss {printable(meta['loss'])!r}, not {s.loss.name!r}")
    if meta["optimizer"]["name"] != s.optimizer.name:
        raise ValueError(f"{where} was trained with optimizer {printable(meta['optimizer']['name'])!r}, "
                         f"not {s.optimizer.name!r}")
    slots = [k for k in s.optimizer.init(net.parameters()) if k != "step"]
    if sorted(meta["optimizer"]["slots"]) != sorted(slots):
        raise FileFormatError(f"{where}: optimizer {s.optimizer.name!r} keeps state {slots}, the file has "
                              f"{printable(meta['optimizer']['slots'])}")
    if hasattr(s.schedule, "state") and meta["schedule"] is not None:
        _check_state(where, "schedule", "schedule", meta["schedule"], s.schedule.state())
    if s.stopper is not None and meta["stopper"] is not None:
        _check_state(where, "early stopping", "stopper", meta["stopper"], s.stopper.state())
    history = history_from(meta["history"], where)
    if len(history) != meta["epoch"]:
        raise FileFormatError(f"{where}: its history records {len(history)} epochs, but it was written after "
                              f"epoch {meta['epoch']}")
    rng_state = run.rng.bit_generator.state
    try:
        run.rng.bit_generator.state = meta["rng"]
    except (TypeError, ValueError, KeyError, OverflowError):
        run.rng.bit_generator.state = rng_state
        raise FileFormatError(f"{where}: its random generator state is malformed or of another kind") from None
    try:  # before the network is written (the fields were checked above; a state may also bound its values)
        if hasattr(s.schedule, "load_state") and meta["schedule"]:
            s.schedule.load_state(meta["schedule"])
        if s.stopper is not None and meta["stopper"]:
            s.stopper.load_state(meta["stopper"])
    except (TypeError, ValueError) as exc:
        raise FileFormatError(f"{where}: its schedule or early-stopping state is not this run's: {exc}") from None
    d, place = resolve_dtype(xp, net.dtype), net.placement()  # a checkpoint is read onto the run's device
    for l in range(1, net.n_layers + 1):
        net.weights[l][...] = asarray_on(xp, np.asarray(arrays[f"W.{l}"]), d, place)
        net.biases[l][...] = asarray_on(xp, np.asarray(arrays[f"b.{l}"]), d, place)
    run.state = optimizer_state_from(arrays, meta, xp, d, place)
    if s.stopper is not None and meta["stopper"] and "best.W.1" in arrays:
        run.best_params = [asarray_on(xp, np.asarray(arrays[name]), d, place)
                           for name in layer_names(net.n_layers, "best.")]
    run.history = history
    return meta["epoch"] + 1
