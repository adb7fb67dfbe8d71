"""Training: :func:`train` and what it is made of.

    loop.py      train(): checks its arguments, prepares the data, runs the epochs
    run.py       _Run: one run's state and its steps (the array-namespace core or the fast path)
    fastpath.py  the NumPy fast path: buffers reused every step, kernels asked of the objects
    stopping.py  divergence, Ctrl-C and early stopping
    state.py     a run's state on disk: writing a checkpoint and restoring from it
"""

from .loop import train
from .stopping import EarlyStopping, TrainingDiverged, TrainingInterrupted

__all__ = ["train", "EarlyStopping", "TrainingDiverged", "TrainingInterrupted"]
