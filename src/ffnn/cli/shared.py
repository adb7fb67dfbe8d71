"""What the ``ffnn`` subcommands share: output checks and writes, reading models and data, the
model's predictions from raw features, and scores as the terminal and JSON show them.

Errors the user can fix are raised as :class:`ffnn.cli.UsageError` (exit 2) or
:class:`ffnn.cli.CommandError` (exit 1); ``ffnn.cli.main`` turns them into one line on stderr.
"""


import math

import numpy as np

from ..losses import LOSSES
from .errors import CommandError, UsageError


def outputs_checked(outputs, inputs=(), allow=(), *, force=False):
    """Every output path of a command checked at once, before any work (see ffnn._files.check_outputs).
    The command line's one policy: an existing file is replaced only with ``--force`` (a checkpoint
    that the run resumes from is its own)."""
    from .._files import check_outputs

    try:
        return check_outputs(outputs, inputs, allow, replace=force)
    except OSError as exc:
        raise CommandError(str(exc)) from None


def write_reporting(what, write, *args, **kw):
    """Run a write; a failure (disk full, permissions) is one line naming the file."""
    try:
        write(*args, **kw)
    except OSError as exc:
        raise CommandError(str(exc) if str(exc).startswith("could not") else f"could not write {what}: {exc}") from None
    except ValueError as exc:
        raise CommandError(f"could not write {what}: {exc}") from None


def load_model(path):
    from .. import load
    from .._files import FileFormatError

    try:
        return load(path)
    except (FileFormatError, OSError) as exc:
        raise CommandError(str(exc)) from None


def model_loss(net, path, default=None):
    """The loss a model was trained with, checked to be one ffnn knows."""
    from .._files import printable
    from ..losses import get_loss

    name = net.metadata.get("loss", default)
    try:
        return get_loss(name).name
    except (TypeError, ValueError):
        raise CommandError(f"model file {str(path)!r} names loss {printable(name)!r}, which is not built in") from None


def read_data(path, **kw):
    from ..data import DataError, read_dataset

    try:
        return read_dataset(path, **kw)
    except DataError as exc:
        raise CommandError(str(exc)) from None


def prepare_features(net, ds):
    """The data's features scaled as the model's were in training; a value the scaling carries
    beyond the float range is an error naming its row and column."""
    meta = net.metadata
    if ds.X.shape[1] != net.sizes[0]:
        raise CommandError(f"data file {ds.source!r} has {ds.X.shape[1]} feature columns; "
                           f"the model expects {net.sizes[0]}")
    X = ds.X
    if meta.get("scaler") is not None:
        if tuple(meta["scaler"].shift.shape) != (X.shape[1],):
            raise CommandError(f"the model's input scaling has {meta['scaler'].shift.shape} columns; "
                               f"the data has {X.shape[1]}")
        with np.errstate(over="ignore", invalid="ignore"):
            X = meta["scaler"].transform(X)
        bad = np.argwhere(~np.isfinite(X))
        if len(bad):
            from .._files import printable

            row, col = bad[0]
            raise CommandError(f"data file {str(ds.source)!r}: row {ds.start + row + 1}, feature "
                               f"{printable(ds.feature_names[col])!r}: {ds.X[row, col]:g} is beyond the float "
                               f"range once scaled as in training")
    return X


def predict_rows(net, ds):
    """(scaled features, the network's outputs) for a data set; a row whose outputs are not finite
    (features far outside what the model was trained on) is an error naming it."""
    X = prepare_features(net, ds)
    with np.errstate(all="ignore"):
        A = net.predict(X)
    bad = np.flatnonzero(~np.all(np.isfinite(A), axis=1))
    if len(bad):
        raise CommandError(f"data file {str(ds.source)!r}: row {ds.start + bad[0] + 1}: the model's outputs are not finite "
                           f"for its features (values far outside what the model was trained on)")
    return X, A


def outputs_to_predictions(net, A):
    """(predictions, probabilities or None) from network outputs, in the user's units and labels."""
    meta = net.metadata
    if meta.get("task") == "classify":
        classes = np.asarray(meta["classes"], dtype=object)
        return classes[np.argmax(A, axis=1)], A
    Y = A
    if meta.get("target_scaler") is not None and meta["target_scaler"].shift.shape == (A.shape[1],):
        Y = meta["target_scaler"].inverse(A)
    return Y[:, 0], None


def regression_scores(truth, pred):
    """R², MSE and MAE in the user's units. The metrics scale before they square or sum, so a score is
    infinite only when its value is beyond the float range (the MSE of errors near 1e300): JSON then
    has null and the terminal "overflow" (see :func:`score_text`)."""
    import ffnn

    with np.errstate(over="ignore", invalid="ignore"):
        return {k: getattr(ffnn.metrics, k)(truth, pred) for k in ("r2", "mse", "mae")}


def score_text(value):
    """A score for the terminal: 6 significant digits; beyond the float range "overflow"."""
    if not isinstance(value, float):
        return str(value)
    if math.isinf(value):
        return "overflow (beyond ±1.8e308)"
    return "undefined (NaN)" if math.isnan(value) else f"{value:.6g}"


def finite_or_none(value):
    """Numbers for JSON: a NaN or infinite score becomes None (null)."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def train_device(args):
    """None (NumPy on the CPU) or the CUDA device ``--device`` asks for."""
    if args.device == "cpu":
        return None
    try:
        import torch
    except ImportError:
        if args.device == "auto":
            return None
        raise CommandError("--device cuda needs PyTorch: pip install 'ffnn[torch]'") from None
    if torch.cuda.is_available():
        return "cuda"
    if args.device == "auto":
        return None
    raise CommandError("--device cuda: PyTorch sees no CUDA device")


#: The classification losses, and the outputs each is defined on (the usual one first), as the loss
#: objects declare them (``Loss.probability_outputs``).
OUTPUTS_FOR_LOSS = {name: loss.probability_outputs for name, loss in LOSSES.items() if loss.classification}
CLASSIFICATION_LOSSES = tuple(OUTPUTS_FOR_LOSS)


def check_loss_and_output(command, loss, output):
    """A usage error when ``loss`` is not defined on what ``output`` produces."""
    allowed = OUTPUTS_FOR_LOSS.get(loss)
    if allowed is not None and output not in allowed:
        raise UsageError(f"{command}: --loss {loss} needs outputs that are probabilities (--output "
                         f"{' or '.join(allowed)}); --output {output} gives other values")
