"""ffnn.plot: training curves (and the per-layer diagnostics when recorded) as a figure, and as a PNG
written atomically."""

import pytest

from ffnn import History
from ffnn.plot import history_figure, plot_history, save_figure

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


def _history(validation):
    h = History(metric="accuracy" if validation else "")
    for e in range(1, 5):
        h.append(epoch=e, loss=1.0 / e, val_loss=1.2 / e if validation else None,
                 val_metric=0.2 * e if validation else None, lr=0.1, time=0.1)
    return h


def test_writes_a_png_at_exactly_the_path(tmp_path):
    h = _history(True)
    h.best_epoch = 3
    path = tmp_path / "curves.png"
    plot_history(h, path, title="a title")
    data = path.read_bytes()
    assert data.startswith(PNG)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 400)  # 10 × 4 inches at 100 dpi
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_panels_with_and_without_validation():
    fig = history_figure(_history(True), "t")
    loss, metric = fig.axes
    assert loss.get_title() == "loss" and metric.get_title() == "validation accuracy"
    assert len(loss.get_lines()) == 2 and len(metric.get_lines()) == 1
    loss, metric = history_figure(_history(False)).axes
    assert len(loss.get_lines()) == 1 and metric.get_title() == "no validation data"
    assert len(metric.get_lines()) == 0


def test_diagnostics_add_a_row_of_per_layer_panels():
    h = _history(True)
    for e in range(4):
        h.grad_norm.append([0.5 / (e + 1), 0.25])
        h.delta_mean.append([0.1, 0.2])
        h.update_ratio.append([1e-3, 2e-3])
        h.dead_fraction.append([0.1 * e])
    fig = history_figure(h, "with diagnostics")
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 6 and titles[:2] == ["loss", "validation accuracy"]
    assert [len(ax.get_lines()) for ax in fig.axes[2:]] == [2, 2, 2, 1]  # one line per layer
    assert tuple(fig.get_size_inches()) == (13, 7.5)


def test_an_unwritable_path_leaves_nothing(tmp_path):
    from matplotlib.figure import Figure

    with pytest.raises(OSError):
        save_figure(Figure(figsize=(1, 1)), tmp_path / "no" / "such" / "folder" / "c.png")
    assert list(tmp_path.iterdir()) == []
