"""Training curves as a PNG (matplotlib, headless)."""

from __future__ import annotations

import io

from ._files import atomic_write

__all__ = ["plot_history"]


def plot_history(history, path, title="ffnn training"):
    """Loss and validation loss per epoch (left) and the validation metric (right), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(history.epoch, history.loss, label="training loss" + (" (+ penalty)" if history.loss_includes_penalty else ""))
    if any(v is not None for v in history.val_loss):
        ax1.plot(history.epoch, [float("nan") if v is None else v for v in history.val_loss], label="validation loss")
    if history.best_epoch:
        ax1.axvline(history.best_epoch, color="grey", linestyle=":", label=f"best epoch {history.best_epoch}")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.set_title("loss")
    if any(v is not None for v in history.val_metric):
        ax2.plot(history.epoch, [float("nan") if v is None else v for v in history.val_metric], color="tab:green")
        ax2.set_ylabel(f"validation {history.metric}")
    ax2.set_xlabel("epoch")
    ax2.set_title(f"validation {history.metric}" if history.metric else "no validation data")
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write(path, buf.getvalue())
