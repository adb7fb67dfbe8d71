"""ffnn.History: one entry per epoch, a JSON-safe dict and back, and a printable table."""

import json
import math

from ffnn import History


def _history():
    h = History(metric="accuracy", loss_includes_penalty=True)
    h.append(epoch=1, loss=0.9, val_loss=1.0, val_metric=0.5, lr=0.1, time=0.25)
    h.append(epoch=2, loss=math.inf, val_loss=math.nan, val_metric=0.75, lr=0.05, time=0.5)
    return h


def test_append_adds_one_epoch_to_every_column():
    h = _history()
    assert len(h) == 2
    assert h.epoch == [1, 2] and h.val_metric == [0.5, 0.75] and h.lr == [0.1, 0.05]
    assert h.best_epoch is None and not h.stopped_early and not h.interrupted


def test_to_dict_is_json_and_from_dict_restores_it():
    h = _history()
    h.best_epoch = 1
    d = h.to_dict()
    assert d["loss"] == [0.9, None] and d["val_loss"] == [1.0, None]  # non-finite values become null
    text = json.dumps(d, allow_nan=False)
    back = History.from_dict({**json.loads(text), "written_by_a_newer_version": 1})
    assert back.epoch == [1, 2] and back.loss == [0.9, None] and back.val_metric == [0.5, 0.75]
    assert back.metric == "accuracy" and back.loss_includes_penalty and back.best_epoch == 1
    assert History.from_dict({}).epoch == []


def test_per_layer_diagnostics_are_json_too():
    h = _history()
    h.grad_norm += [[0.5, math.inf], [0.25, 0.125]]
    h.dead_fraction += [[None], [math.nan]]
    d = h.to_dict()
    assert d["grad_norm"] == [[0.5, None], [0.25, 0.125]] and d["dead_fraction"] == [[None], [None]]
    back = History.from_dict(json.loads(json.dumps(d, allow_nan=False)))
    assert back.grad_norm == [[0.5, None], [0.25, 0.125]] and back.has_diagnostics
    assert not History().has_diagnostics


def test_str_is_a_table_with_one_row_per_epoch():
    h = History(metric="r2")
    h.append(epoch=1, loss=0.5, val_loss=None, val_metric=None, lr=0.01, time=1.5)
    h.append(epoch=2, loss=0.25, val_loss=0.3, val_metric=0.875, lr=0.01, time=1.25)
    lines = str(h).splitlines()
    assert lines[0].split() == ["epoch", "loss", "val_loss", "r2", "lr", "time"]
    assert lines[1].split() == ["1", "0.5", "0.01", "1.50s"]
    assert lines[2].split() == ["2", "0.25", "0.3", "0.8750", "0.01", "1.25s"]
