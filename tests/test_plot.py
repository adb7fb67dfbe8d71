"""ffnn.plot: training curves written as a PNG, atomically, with or without validation data."""

import pytest

from ffnn import History
from ffnn.plot import plot_history

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


def _history(validation):
    h = History(metric="accuracy" if validation else "")
    for e in range(1, 5):
        h.append(epoch=e, loss=1.0 / e, val_loss=1.2 / e if validation else None,
                 val_metric=0.2 * e if validation else None, lr=0.1, time=0.1)
    return h


@pytest.mark.parametrize("validation", [True, False])
def test_writes_a_png_at_exactly_the_path(tmp_path, validation):
    h = _history(validation)
    if validation:
        h.best_epoch = 3
    path = tmp_path / "curves.png"
    plot_history(h, path, title="a title")
    data = path.read_bytes()
    assert data.startswith(PNG)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 400)  # 10 × 4 inches at 100 dpi
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_an_unwritable_path_leaves_nothing(tmp_path):
    with pytest.raises(OSError):
        plot_history(_history(True), tmp_path / "no" / "such" / "folder" / "c.png")
    assert list(tmp_path.iterdir()) == []


def test_diagnostics_add_a_row_of_per_layer_panels(tmp_path):
    from ffnn.plot import history_figure

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
    path = tmp_path / "d.png"
    assert h.plot(path) is not None
    data = path.read_bytes()
    assert (int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")) == (1300, 750)
