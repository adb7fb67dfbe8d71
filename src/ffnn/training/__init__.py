"""Training: :func:`train` and what it is made of.

    loop.py      train(): checks its arguments, prepares the data, runs the epochs
    run.py       Run: one run's state, its step (the array-namespace core or the fast path) and epochs
    diagnostics.py  gradient-flow diagnostics recorded in the History
    fastpath.py  the NumPy fast path: buffers reused every step, kernels asked of the objects
    stopping.py  divergence, Ctrl-C and early stopping
    state.py     a run's state on disk: writing a checkpoint and restoring from it
    distributed.py  ShardedRun: data parallelism over MPI (one Allreduce per step) and rows read from
                 disk (ffnn.datasets); used only when train() gets ``comm`` or a source of rows
"""

from .loop import train
from .stopping import EarlyStopping, TrainingDiverged, TrainingInterrupted

__all__ = ["train", "EarlyStopping", "TrainingDiverged", "TrainingInterrupted"]
