"""ffnn: feed-forward neural networks trained by back-propagation, exactly as the seeds derive it."""

from .activations import Activation
from .gradcheck import GradcheckReport, gradcheck
from .losses import Loss
from .network import Gradients, Network, Trace

__version__ = "0.1.0"

__all__ = ["Activation", "Loss", "Network", "Trace", "Gradients", "gradcheck", "GradcheckReport", "__version__"]
