"""ffnn: feed-forward neural networks trained by back-propagation, exactly as the derivations cited in the README derive it.

The public API, re-exported; nothing else lives here.
"""

from . import datasets, metrics, schedules
from .activations import Activation
from .explanation import Explanation, explain
from .gradcheck import GradcheckReport, gradcheck
from .history import History
from .io import FileFormatError, load, save
from .losses import Loss
from .network import Gradients, Network, Trace
from .optim import SGD, Adam, AdamW, Optimizer, Quickprop, RMSprop, Rprop
from .training import EarlyStopping, TrainingDiverged, TrainingInterrupted, train

from ._version import __version__

__all__ = ["Activation", "Loss", "save", "load", "FileFormatError", "Network", "Trace", "Gradients", "gradcheck", "explain", "Explanation",
           "GradcheckReport", "train", "History", "EarlyStopping", "TrainingDiverged", "TrainingInterrupted",
           "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Rprop", "Quickprop", "metrics", "schedules", "datasets",
           "export_onnx", "export_c", "from_sklearn", "to_sklearn", "from_torch", "__version__"]

_EXPORTS = ("export_onnx", "export_c", "from_sklearn", "to_sklearn", "from_torch")


def __getattr__(name):
    # ffnn.export and its converters load on first use, so that ``import ffnn`` imports neither onnx,
    # scikit-learn nor torch, and the core (ffnn.network) never imports the exporters, which import it.
    if name == "export" or name in _EXPORTS:
        from importlib import import_module

        export = import_module(".export", __name__)
        return export if name == "export" else getattr(export, name)
    raise AttributeError(f"module 'ffnn' has no attribute {name!r}")
