"""A run's state on disk: writing a checkpoint and restoring a run from it, in one place, so that
what is written and what is read can never drift apart.

One safetensors file: the network's W[l] and b[l], the optimiser's state arrays and the best
weights kept by early stopping as tensors; the epoch, optimiser step and hyperparameters, the RNG's
bit-generator state, the schedule's and early stopping's state and the History as JSON metadata.
"""

from __future__ import annotations

import numpy as np

from .._array import asarray_on, resolve_dtype, to_numpy
from .._files import FileFormatError, read_arrays, write_arrays
from ..history import History

__all__ = ["save_run", "restore_run", "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = 1
_KEY = "ffnn_checkpoint"


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
    write_arrays(path, arrays, meta, _KEY)


def load_checkpoint(path, net):
    """Read a checkpoint and check it belongs to ``net``'s architecture. Returns ``(arrays, meta)``."""
    arrays, meta = read_arrays(path, _KEY, "checkpoint file")
    if meta.get("format", 0) > CHECKPOINT_FORMAT:
        raise FileFormatError(f"checkpoint file {str(path)!r} was written by a newer ffnn "
                              f"(format {meta.get('format')}; this version reads up to {CHECKPOINT_FORMAT})")
    if meta.get("sizes") != list(net.sizes):
        raise ValueError(f"checkpoint file {str(path)!r} is for a network of sizes {meta.get('sizes')}; "
                         f"this network has sizes {list(net.sizes)}")
    names = [a.name for a in net.activations]
    if meta.get("activations") != names:
        raise ValueError(f"checkpoint file {str(path)!r} has activations {meta.get('activations')}; "
                         f"this network has {names}")
    for l in range(1, net.n_layers + 1):
        for kind in ("W", "b"):
            if f"{kind}.{l}" not in arrays:
                raise FileFormatError(f"checkpoint file {str(path)!r} lacks {kind}[{l}]")
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


def save_run(run, path, epoch):
    """Write ``run``'s state after ``epoch`` to ``path`` (atomically)."""
    s = run.s
    save_checkpoint(path, run.net, epoch=epoch, optimizer=s.optimizer, opt_state=run.state, rng=run.rng,
                    schedule_state=s.schedule.state() if hasattr(s.schedule, "state") else None,
                    stopper_state=s.stopper.state() if s.stopper is not None else None,
                    best_params=run.best_params, history=run.history, loss_name=s.loss.name)


def restore_run(run, path):
    """Put ``run`` back in the state saved at ``path``; returns the first epoch still to train."""
    net, xp, s = run.net, run.net.xp, run.s
    arrays, meta = load_checkpoint(path, net)
    if meta.get("loss") != s.loss.name:
        raise ValueError(f"checkpoint file {str(path)!r} was trained with loss {meta.get('loss')!r}, "
                         f"not {s.loss.name!r}")
    if meta["optimizer"]["name"] != s.optimizer.name:
        raise ValueError(f"checkpoint file {str(path)!r} was trained with optimizer "
                         f"{meta['optimizer']['name']!r}, not {s.optimizer.name!r}")
    d, place = resolve_dtype(xp, net.dtype), net._placement()  # a checkpoint is read onto the run's device
    for l in range(1, net.n_layers + 1):
        net.weights[l][...] = asarray_on(xp, np.asarray(arrays[f"W.{l}"]), d, place)
        net.biases[l][...] = asarray_on(xp, np.asarray(arrays[f"b.{l}"]), d, place)
    run.state = optimizer_state_from(arrays, meta, xp, d, place)
    run.rng.bit_generator.state = meta["rng"]
    if hasattr(s.schedule, "load_state") and meta.get("schedule"):
        s.schedule.load_state(meta["schedule"])
    if s.stopper is not None and meta.get("stopper"):
        s.stopper.load_state(meta["stopper"])
        if "best.0" in arrays:
            run.best_params = [asarray_on(xp, np.asarray(arrays[f"best.{i}"]), d, place)
                               for i in range(len(run.params))]
    run.history = History.from_dict(meta["history"])
    return int(meta["epoch"]) + 1
