"""The command line under ``mpiexec``: which process is which, and ending the whole job on an error.

``mpiexec -n P python -m mpi4py -m ffnn train …`` starts P copies of the command; :func:`world` tells
each one its communicator (None outside MPI). Every rank reads the data and builds the same network;
training is data-parallel (:mod:`ffnn.training.distributed`); only rank 0 prints and writes files.
An error on any rank ends the job: that rank prints one line and calls ``MPI_Abort``, which ends every
other rank within seconds; when every rank meets the same error (a bad file), the other ranks wait a
moment so that rank 0's line is the only one.
"""

from __future__ import annotations

import os
import sys
import time

from .errors import CommandError

__all__ = ["world", "current", "fail", "quiet_stderr"]

_MPI_ENV = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")
_WORLD = None
GRACE_S = 1.0  # how long a rank other than 0 waits before it reports an error and ends the job
FORWARD_S = 0.2  # seconds between an error line and MPI_Abort (mpiexec may drop a line still in transit)


def world():
    """MPI's COMM_WORLD when this process is one of several started by mpiexec, else None."""
    global _WORLD
    if _WORLD is not None:
        return _WORLD
    if "mpi4py.MPI" not in sys.modules and not any(os.environ.get(k) for k in _MPI_ENV):
        return None
    # MPICH's own notice on MPI_Abort would repeat the error; the variable is read when MPI starts.
    os.environ.setdefault("MPIR_CVAR_SUPPRESS_ABORT_MESSAGE", "1")
    try:
        from mpi4py import MPI
    except ImportError:
        raise CommandError("started by mpiexec, but mpi4py is not installed: pip install 'ffnn[mpi]'") from None
    comm = MPI.COMM_WORLD
    if comm.size > 1:
        _WORLD = comm
        return comm
    return None


def current():
    """The communicator :func:`world` found, or None."""
    return _WORLD


def quiet_stderr():
    """Under MPI, send what is written to stderr from now on to /dev/null (after flushing)."""
    if _WORLD is None:
        return
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)


def fail(line, code):
    """Print ``line`` on stderr and return ``code``; under MPI, end the whole job with ``code`` instead."""
    comm = _WORLD
    if comm is None:
        print(line, file=sys.stderr)
        return code
    if comm.rank != 0:
        time.sleep(GRACE_S)  # when rank 0 has the same error, its abort ends this process first
        line = line.replace("ffnn: ", f"ffnn: rank {comm.rank}: ", 1) if line.startswith("ffnn: ") \
            else f"ffnn: rank {comm.rank}: {line}"
    print(line, file=sys.stderr, flush=True)
    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # pragma: no cover - closed stdout
        pass
    time.sleep(FORWARD_S)  # let the process manager forward the line before the abort tears its pipes down
    quiet_stderr()  # what MPI prints while aborting would add lines to the one above
    comm.Abort(code)
    os._exit(code)  # MPICH's MPI_Abort can return before the process manager ends this one
