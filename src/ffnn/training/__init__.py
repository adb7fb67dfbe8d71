"""Training: :func:`train` and what it is made of.

    api.py       train(): checks its arguments, prepares the data, runs the epochs
    options.py   Settings: train()'s options, declared and checked once
    run.py       Run: the one epoch driver every path runs (batches, schedule, divergence, Ctrl-C,
                 validation, early stopping, callbacks, checkpoints, History)
    engines.py   the gradient engines behind it: the NumPy fast path, the array-namespace core
    diagnostics.py  gradient-flow diagnostics recorded in the History
    numpy_workspace.py  the NumPy fast path: buffers reused every step, kernels asked of the objects
    stopping.py  divergence, Ctrl-C and early stopping
    state.py     a run's state on disk: writing a checkpoint and restoring from it
    torch_engine.py  TorchEngine: the PyTorch fast path (deferred divergence checks, CUDA graphs)
    distributed.py  ShardedEngine: data parallelism over MPI (one Allreduce per step); used only when
                 train() gets ``comm``
"""

from .api import train
from .stopping import EarlyStopping, TrainingDiverged, TrainingInterrupted

__all__ = ["train", "EarlyStopping", "TrainingDiverged", "TrainingInterrupted"]
