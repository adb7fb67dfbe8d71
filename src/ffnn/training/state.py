"""A run's state on disk: writing a checkpoint and restoring a run from it, in one place, so that
what is written and what is read can never drift apart.

One safetensors file: the network's W[l] and b[l], the optimiser's state arrays and the best
weights kept by early stopping as tensors; the epoch, optimiser step and hyperparameters, the RNG's
bit-generator state, the schedule's and early stopping's state and the History as JSON metadata,
with a SHA-256 checksum of the arrays.

A checkpoint is checked whole before a run takes anything from it (:func:`restore_run`): its
fields against :data:`SCHEMA`, every array's name, shape and finiteness against the network and
the optimiser, the schedule's and early stopping's state against theirs. A malformed checkpoint is
a :class:`ffnn.FileFormatError` naming the file; one of another network, loss or optimiser is a
ValueError.
"""

from __future__ import annotations

import numpy as np

from .._array import asarray_on, resolve_dtype, to_numpy
from .._files import FileFormatError, SafetensorsFile, is_number, printable, write_arrays
from ..history import History

__all__ = ["save_run", "restore_run", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT", "SCHEMA"]

CHECKPOINT_FORMAT = 1
_KEY = "ffnn_checkpoint"


def _int(v, low=0):
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number_or_none(v):
    return v is None or is_number(v)


def _state_dict(v):
    return v is None or (isinstance(v, dict) and all(isinstance(k, str) for k in v))


#: The document under ``"ffnn_checkpoint"``: field → (check, what it must be).
SCHEMA = {
    "format": (lambda v: _int(v, 1), "a positive integer"),
    "sizes": (lambda v: isinstance(v, list) and len(v) >= 2 and all(_int(s, 1) for s in v), "a list of layer widths"),
    "activations": (lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v), "a list of names"),
    "dtype": (lambda v: v in ("float32", "float64"), '"float32" or "float64"'),
    "loss": (lambda v: isinstance(v, str), "a loss name"),
    "epoch": (lambda v: _int(v, 1), "a positive integer"),
    "optimizer": (lambda v: isinstance(v, dict) and isinstance(v.get("name"), str) and isinstance(v.get("config"), dict)
                  and _int(v.get("step")) and isinstance(v.get("slots"), list)
                  and all(isinstance(s, str) for s in v["slots"]), "an object of name, config, step and slots"),
    "rng": (lambda v: isinstance(v, dict) and isinstance(v.get("bit_generator"), str), "a bit generator's state"),
    "schedule": (_state_dict, "an object or null"),
    "stopper": (_state_dict, "an object or null"),
    "history": (lambda v: isinstance(v, dict), "an object"),
}


def save_checkpoint(path, net, *, epoch, optimizer, opt_state, rng, schedule_state, stopper_state,
                    best_params, history: History, loss_name):
    arrays = {}
    for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        arrays[f"W.{l}"] = to_numpy(W)
        arrays[f"b.{l}"] = to_numpy(b)
    for slot, values in opt_state.items():
        if slot != "step":
            for i, v in enumerate(values):
                arrays[f"opt.{slot}.{i}"] = to_numpy(v)
    if best_params is not None:
        for i, p in enumerate(best_params):
            arrays[f"best.{i}"] = to_numpy(p)
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
    for field, (check, must) in SCHEMA.items():
        if field not in meta:
            raise FileFormatError(f"{where} lacks {field!r}")
        if not check(meta[field]):
            raise FileFormatError(f"{where}: {field!r} must be {must}")
    if meta["sizes"] != list(net.sizes):
        raise ValueError(f"{where} is for a network of sizes {meta['sizes']}; this network has sizes {list(net.sizes)}")
    names = [a.name for a in net.activations]
    if meta["activations"] != names:
        raise ValueError(f"{where} has activations {printable(meta['activations'])}; this network has {names}")


def _expected_arrays(meta, params, has_best):
    """name → shape of every array the checkpoint must hold."""
    expected = {}
    for l in range(1, len(meta["sizes"])):
        expected[f"W.{l}"] = tuple(params[2 * (l - 1)].shape)
        expected[f"b.{l}"] = tuple(params[2 * (l - 1) + 1].shape)
    for slot in meta["optimizer"]["slots"]:
        for i, p in enumerate(params):
            expected[f"opt.{slot}.{i}"] = tuple(p.shape)
    if has_best:
        for i, p in enumerate(params):
            expected[f"best.{i}"] = tuple(p.shape)
    return expected


def load_checkpoint(path, net):
    """Read and check a checkpoint of ``net``'s architecture. Returns ``(arrays, meta)``.

    Raises FileFormatError for a malformed file (missing or mistyped fields, missing, misshapen or
    unexpected arrays, NaN or infinite values, a checksum that does not match) and ValueError for a
    checkpoint of another architecture.
    """
    with SafetensorsFile(path, _KEY, "checkpoint file") as f:
        where, meta = f.where, f.meta
        _check_meta(meta, net, where)
        params = net.parameters()
        expected = _expected_arrays(meta, params, "best.0" in f.tensors)
        for name, shape in expected.items():
            if name not in f.tensors:
                raise FileFormatError(f"{where} lacks the array {name}")
            dt, got = f.tensors[name]
            if dt.kind != "f" or tuple(got) != shape:
                raise FileFormatError(f"{where}: {name} is {dt.name} of shape {tuple(got)}, expected floats of "
                                      f"shape {shape}")
        extra = sorted(set(f.tensors) - set(expected))
        if extra:
            raise FileFormatError(f"{where} holds arrays a checkpoint does not: {printable(', '.join(extra[:5]))}")
        f.verify()
        arrays = {}
        for name in expected:
            arrays[name] = f.array(name)
            if not np.all(np.isfinite(arrays[name])):
                raise FileFormatError(f"{where}: {name} holds NaN or infinite values")
    return arrays, meta


def optimizer_state_from(arrays, meta, xp, dtype, device=None):
    """The optimiser state dict stored in a checkpoint, as arrays of namespace ``xp`` (on ``device``)."""
    state = {"step": int(meta["optimizer"]["step"])}
    for slot in meta["optimizer"]["slots"]:
        values, i = [], 0
        while f"opt.{slot}.{i}" in arrays:
            values.append(asarray_on(xp, np.asarray(arrays[f"opt.{slot}.{i}"]), dtype, device))
            i += 1
        state[slot] = values
    return state


def _check_state(where, what, stored, current):
    """A schedule's or early stopping's stored state against its current state: the same keys, and a
    number wherever the current state holds one (an integer where it holds an integer)."""
    def fits(v, now):
        if now is None:
            return _number_or_none(v)
        if isinstance(now, int) and not isinstance(now, bool):
            return _int(v, 0)
        return v is not None and _number_or_none(v)

    if (not isinstance(stored, dict) or set(stored) != set(current)
            or not all(fits(stored[k], current[k]) for k in current)):
        raise FileFormatError(f"{where}: the {what} state does not match this run's {what}")


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
    from ..io import _check_history

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
        _check_state(where, "schedule", meta["schedule"], s.schedule.state())
    if s.stopper is not None and meta["stopper"] is not None:
        _check_state(where, "early stopping", meta["stopper"], s.stopper.state())
    history = _check_history(meta["history"], where)
    if len(history) != meta["epoch"]:
        raise FileFormatError(f"{where}: its history records {len(history)} epochs, but it was written after "
                              f"epoch {meta['epoch']}")
    rng_state = run.rng.bit_generator.state
    try:
        run.rng.bit_generator.state = meta["rng"]
    except (TypeError, ValueError, KeyError, OverflowError):
        run.rng.bit_generator.state = rng_state
        raise FileFormatError(f"{where}: its random generator state is malformed or of another kind") from None
    d, place = resolve_dtype(xp, net.dtype), net.placement()  # a checkpoint is read onto the run's device
    for l in range(1, net.n_layers + 1):
        net.weights[l][...] = asarray_on(xp, np.asarray(arrays[f"W.{l}"]), d, place)
        net.biases[l][...] = asarray_on(xp, np.asarray(arrays[f"b.{l}"]), d, place)
    run.state = optimizer_state_from(arrays, meta, xp, d, place)
    if hasattr(s.schedule, "load_state") and meta["schedule"]:
        s.schedule.load_state(meta["schedule"])
    if s.stopper is not None and meta["stopper"]:
        s.stopper.load_state(meta["stopper"])
        if "best.0" in arrays:
            run.best_params = [asarray_on(xp, np.asarray(arrays[f"best.{i}"]), d, place)
                               for i in range(len(run.params))]
    run.history = history
    return meta["epoch"] + 1
