"""ffnn: feed-forward neural networks trained by back-propagation, exactly as the derivations cited in the README derive it.

The public API, re-exported; nothing else lives here.
"""

from . import metrics, schedules
from .activations import Activation
from .gradcheck import GradcheckReport, gradcheck
from .history import History
from .io import load, save
from .losses import Loss
from .network import Gradients, Network, Trace
from .optim import SGD, Adam, AdamW, Optimizer, RMSprop
from .training import EarlyStopping, TrainingDiverged, TrainingInterrupted, train

__version__ = "0.1.0"

__all__ = ["Activation", "Loss", "save", "load", "Network", "Trace", "Gradients", "gradcheck", "GradcheckReport", "train",
           "History", "EarlyStopping", "TrainingDiverged", "TrainingInterrupted", "Optimizer", "SGD", "Adam",
           "AdamW", "RMSprop", "metrics", "schedules", "export_onnx", "export_c", "from_sklearn", "to_sklearn",
           "from_torch", "__version__"]

# Converters, loaded on first use so that ``import ffnn`` imports neither onnx, scikit-learn nor torch.
_EXPORTS = ("export_onnx", "export_c", "from_sklearn", "to_sklearn", "from_torch")


def __getattr__(name):
    if name in _EXPORTS or name == "export":
        from importlib import import_module

        export = import_module(".export", __name__)
        return export if name == "export" else getattr(export, name)
    raise AttributeError(f"module 'ffnn' has no attribute {name!r}")


def _network_to_torch(self):
    """A ``torch.nn.Sequential`` computing this network (see :func:`ffnn.export.to_torch`)."""
    from .export.torch_bridge import to_torch

    return to_torch(self)


# net.to_torch(): the converter lives in ffnn.export, which imports network.py, not the other way round.
Network.to_torch = _network_to_torch
