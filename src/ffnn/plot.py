"""Training curves and gradient-flow diagnostics as a matplotlib figure or a PNG (no display needed)."""

from __future__ import annotations

import io

from ._files import atomic_write

__all__ = ["history_figure", "png_bytes", "save_figure", "plot_history"]


def _nan(values):
    return [float("nan") if v is None else v for v in values]


def _per_layer(ax, history, key, first_layer, title, log=True):
    """One line per layer l (``first_layer`` + column index) of the per-epoch lists ``history.key``."""
    rows = [r for r in getattr(history, key) if r]
    epochs = [e for e, r in zip(history.epoch, getattr(history, key)) if r]
    if not rows:
        ax.set_visible(False)
        return
    for j in range(len(rows[0])):
        ys = _nan([r[j] for r in rows])
        if all(y != y for y in ys):  # nothing measured for this layer (dead units of a non-relu layer)
            continue
        ax.plot(epochs, ys, label=f"layer {first_layer + j}")
    if log:
        ax.set_yscale("log")
    else:
        ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend(fontsize="small")


def history_figure(history, title="ffnn training"):
    """A :class:`matplotlib.figure.Figure`: loss and validation loss per epoch, the validation metric,
    and, when the history has them, the per-layer diagnostics (‖∂J/∂W[l]‖, mean |δ[l]|,
    ‖ΔW[l]‖/‖W[l]‖ and the fraction of dead relu units)."""
    from matplotlib.figure import Figure

    diag = history.has_diagnostics
    fig = Figure(figsize=(13, 7.5) if diag else (10, 4), dpi=100)
    axes = fig.subplots(2, 3) if diag else [fig.subplots(1, 2)]
    ax1, ax2 = axes[0][0], axes[0][1]
    ax1.plot(history.epoch, history.loss, label="training loss" + (" (+ penalty)" if history.loss_includes_penalty else ""))
    if any(v is not None for v in history.val_loss):
        ax1.plot(history.epoch, _nan(history.val_loss), label="validation loss")
    if history.best_epoch:
        ax1.axvline(history.best_epoch, color="grey", linestyle=":", label=f"best epoch {history.best_epoch}")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.set_title("loss")
    if any(v is not None for v in history.val_metric):
        ax2.plot(history.epoch, _nan(history.val_metric), color="tab:green")
        ax2.set_ylabel(f"validation {history.metric}")
    ax2.set_xlabel("epoch")
    ax2.set_title(f"validation {history.metric}" if history.metric else "no validation data")
    if diag:
        _per_layer(axes[0][2], history, "grad_norm", 1, "‖∂J/∂W[l]‖ (last batch)")
        _per_layer(axes[1][0], history, "delta_mean", 1, "mean |δ[l]| (last batch)")
        _per_layer(axes[1][1], history, "update_ratio", 1, "‖ΔW[l]‖ / ‖W[l]‖ (last step)")
        _per_layer(axes[1][2], history, "dead_fraction", 1, "dead relu units (whole epoch)", log=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def png_bytes(fig) -> bytes:
    """``fig`` as the bytes of a PNG file."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def save_figure(fig, path):
    """Write ``fig`` as a PNG at ``path``, atomically."""
    atomic_write(path, png_bytes(fig))


def plot_history(history, path, title="ffnn training"):
    """:func:`history_figure` written as a PNG at ``path``, atomically."""
    save_figure(history_figure(history, title), path)
