"""Synchronous data-parallel training over MPI (mpi4py): the gradient engine :class:`ShardedEngine`.

:func:`ffnn.train` uses it when it is given ``comm`` (an mpi4py communicator); the epoch driver
(:class:`~ffnn.training.run.Run`) is the one every path runs. mpi4py is imported only by the caller
who passes a communicator.

One step, on P processes (ranks r = 0..P−1), each holding the same weights and optimiser state and
the same NumPy Generator:

1. every rank draws the epoch's order from the Generator exactly as a single process does, so the
   global minibatch B (N rows) of every step is the one a single process trains on;
2. rank r takes the contiguous share ``B[lo_r:hi_r]`` (sizes ⌊N/P⌋ or ⌈N/P⌉, the larger ones
   first; a rank may have none) and reads only those rows;
3. it computes J_r and the gradients of its share, each normalised by its own rows (1/n_r or
   1/Σw_r for the mean losses), and scales them by ``loss.share(n_r, N)`` = n_r/N (Σw_r/Σw_B; 1 for
   the sums), so that their sum over ranks is J and ∂J/∂θ of the global batch;
4. one ``Allreduce`` (sum) of one flat float buffer, [∂J/∂W[1], ∂J/∂b[1], …, ∂J/∂b[L], D, J, stop],
   where ``stop`` > 0 when a rank holds a pending Ctrl-C and D, zero but on an epoch's last step,
   carries the gradient-flow diagnostics (Σ|δ[l]| per layer and the hidden units each rank has seen
   active in the epoch), so that the History's diagnostics are those of one process;
5. every rank adds the penalty, clips, checks for divergence and applies the optimiser to the
   same numbers, so the weights stay the same on every rank without being sent.

Dropout draws the mask of the whole global batch on every rank and keeps the rank's rows (see
:class:`RowSlice`): the Generator advances as in one process and the masks are the ones it draws.
Validation, callbacks and the progress bar run on rank 0; the validation numbers and the callbacks'
verdict are broadcast, so schedules, early stopping and divergence decide the same on every rank
and every rank stops at the same step. A Ctrl-C on any rank stops every rank after the same step
(the stop flag); a second one, which interrupts its rank at once, ends the whole job (MPI_Abort).
Checkpoints are written by rank 0 alone; every rank resumes from the same file, with any number of
processes.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

from . import numpy_workspace as _fast
from .engines import Engine, interleave

__all__ = ["ShardedEngine", "share_bounds", "RowSlice", "Solo"]


def share_bounds(n, rank, size):
    """Rows ``lo:hi`` of a batch of ``n`` that rank ``rank`` of ``size`` trains on: contiguous
    shares of ⌈n/size⌉ rows for the first ``n mod size`` ranks and ⌊n/size⌋ for the others."""
    q, r = divmod(n, size)
    lo = rank * q + min(rank, r)
    return lo, lo + q + (1 if rank < r else 0)


class Solo:
    """A communicator of one process (no MPI): the reductions and broadcasts are the identity."""

    rank, size = 0, 1

    def Allreduce(self, sendbuf, recvbuf, op=None):  # noqa: N802 - mpi4py's name
        pass

    def bcast(self, obj, root=0):
        return obj


class RowSlice:
    """A NumPy Generator seen by the rank that computes rows ``lo:hi`` of a batch of ``n`` rows.

    ``random((m, S))`` draws ``rng.random((n, S))`` — the whole batch's block, as one process draws
    it — and returns rows ``lo:hi``. :func:`ffnn.network._dropout_mask` draws each hidden layer's
    mask this way, so a rank's masks are its rows of the single-process masks.
    """

    def __init__(self, rng, n, lo, hi):
        self.rng, self.n, self.lo, self.hi = rng, n, lo, hi

    def random(self, shape):
        return self.rng.random((self.n,) + tuple(shape[1:]))[self.lo:self.hi]


class ShardedEngine(Engine):
    """The gradient engine of a data-parallel run: each rank computes its share of the global batch
    (by the NumPy fast path or the core), one Allreduce sums the shares, and every rank applies the
    same update (see the docstring of this module); it also makes the decisions every rank must
    share — the stop flag of a Ctrl-C, validation and the callbacks' verdict (rank 0's, broadcast).
    """

    name = "sharded"

    def __init__(self, net, loss, rows, chain, diag, comm, dropout=None, rng=None):
        super().__init__(net, loss, rows, chain, diag)
        self.comm = comm
        self.rank, self.size = comm.rank, comm.size
        self.is_root = self.rank == 0
        self.dropout, self.rng = dropout, rng
        self.fast = _fast.supports(net, loss, dropout, getattr(rows, "w", None))
        self.workspaces = {}
        # One flat buffer: every ∂J/∂W[l] and ∂J/∂b[l] (views written in place), then, for the
        # diagnostics of an epoch's last step, Σ|δ[l]| per layer and the units each hidden layer has
        # seen active, then J and the stop flag.
        shapes = [tuple(p.shape) for p in self.params]
        sizes = [math.prod(s) for s in shapes]
        self.n_grad = n_grad = sum(sizes)
        hidden = list(net.sizes[1:-1])
        self.flat = np.zeros(n_grad + net.n_layers + sum(hidden) + 2, dtype=np.dtype(net.dtype))
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        views = [self.flat[o:o + k].reshape(s) for o, k, s in zip(offsets, sizes, shapes)]
        self.grads = views
        self.gW, self.gb = views[0::2], views[1::2]
        self.delta_sums = self.flat[n_grad:n_grad + net.n_layers]
        starts = n_grad + net.n_layers + np.concatenate([[0], np.cumsum(hidden)]).astype(int)
        self.alive = [None] + [self.flat[a:b] for a, b in zip(starts[:-1], starts[1:])]  # by hidden layer l
        self.ctrl_c = None
        self.together = False  # a Ctrl-C that every rank saw (the stop flag), not one rank's alone
        self._ops = None if isinstance(comm, Solo) else _mpi_ops()  # (MPI.IN_PLACE, MPI.SUM)

    # --- the decisions every rank shares --------------------------------------------------------------

    def start_epoch(self, order, ctrl_c, state=None):
        self.ctrl_c = ctrl_c

    def check_interrupt(self, ctrl_c):
        """A Ctrl-C on any rank stops every rank after the same step (the stop flag of the Allreduce)."""
        if self.flat[-1] > 0:
            self.together = True
            raise KeyboardInterrupt

    def agree(self, fn):
        """Rank 0 computes; every rank gets its result — or, when it raised, an error: rank 0 its own,
        the others a RuntimeError naming it (so that no rank waits for a rank that has stopped)."""
        if self.rank != 0:
            result, failure = self.comm.bcast(None, root=0)
            if failure is not None:
                raise RuntimeError(f"rank 0 stopped the run: {failure}")
            return result
        try:
            result = fn()
        except Exception as exc:
            self.comm.bcast((None, f"{type(exc).__name__}: {exc}"), root=0)
            raise
        self.comm.bcast((result, None), root=0)
        return result

    def on_interrupt(self):
        """A Ctrl-C that stopped this rank alone (a second one, which interrupts at once) ends the
        whole job, since the other ranks would wait for it forever."""
        if self.size > 1 and not self.together:
            sys.stderr.write(f"ffnn: rank {self.rank} interrupted during a step; ending the job\n")
            sys.stderr.flush()
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)  # MPI's own abort notice would add lines
            self.comm.Abort(130)
            os._exit(130)  # MPICH's MPI_Abort can return before the process manager ends this one

    # --- one step ----------------------------------------------------------------------------------

    def compute(self, idx, last):
        """The global batch ``idx``: this rank's share, one Allreduce; J and the gradients of the batch.

        ``last``: the epoch's last step, whose gradients the diagnostics record (summed like J).
        """
        n = len(idx)
        lo, hi = share_bounds(n, self.rank, self.size)
        mine = idx[lo:hi]
        flat, g, diag = self.flat, self.n_grad, self.diag
        flat[g:] = 0.0
        hidden = deltas = None
        if self.fast:
            if hi > lo:
                ws = self._workspace(hi - lo)
                self.rows.gather(mine, ws.h[0], ws.t)
                flat[-2] = ws.step(self.net)
                c = self.loss.share(hi - lo, n)
                if c != 1.0:
                    flat[:g] *= c
                    flat[-2] *= c
                hidden, deltas = ws.h, ws.d[1:]
            else:
                flat[:g] = 0.0
        else:
            c, hidden, deltas = self._core_share(idx, mine, lo, hi)
        if diag is not None:
            if hidden is not None and self.watch_units:
                diag.hidden_activations(hidden)
            if last:
                self._pack_diagnostics(deltas, c if deltas is not None else 0.0)
        flat[-1] = 1.0 if (self.ctrl_c is not None and self.ctrl_c.pending) else 0.0
        if self._ops is not None:
            in_place, op = self._ops
            self.comm.Allreduce(in_place, flat, op=op)
        if diag is not None and last:
            self._unpack_diagnostics(n)
        return float(flat[-2]), self.gW, self.gb

    def _workspace(self, m):
        ws = self.workspaces.get(m)
        if ws is None:
            ws = self.workspaces[m] = _fast.Workspace(self.net, m, self.loss)
            ws.use_gradient_buffers(self.gW, self.gb)  # the products land in the flat buffer
        return ws

    def _core_share(self, idx, mine, lo, hi):
        """J and the gradients of rows ``mine`` by ``Network.forward``/``backward``, scaled into the
        buffer; returns (the scale, the hidden activations, the δ[l]) or (0, None, None) without rows."""
        net, loss, flat = self.net, self.loss, self.flat
        Xb, Tb = self.rows.batch(mine)
        wb = self.rows.weights(mine)
        dropout = self.dropout
        rng = RowSlice(self.rng, len(idx), lo, hi) if dropout is not None else None
        trace = net.forward(Xb, dropout=dropout, rng=rng, checked=True)  # draws the masks even with no rows
        if hi == lo:
            flat[:self.n_grad] = 0.0
            return 0.0, None, None
        J = float(net.trace_loss(trace, Tb, loss, wb))
        g = net.backward(trace, Tb, loss, sample_weight=wb, input_gradient=False, checked=True)
        if wb is None:
            c = loss.share(hi - lo, len(idx))
        else:
            c = loss.share(float(np.sum(wb)), float(np.sum(self.rows.weights(idx))))
        for view, grad in zip(self.grads, interleave(g.weights, g.biases)):
            np.multiply(grad, c, out=view)
        flat[-2] = J * c
        return c, trace.a, list(g.deltas)

    def _pack_diagnostics(self, deltas, c):
        """This rank's part of the last step's diagnostics: c·Σ|δ[l]| and the units seen active
        (largest activation > 0) in the epoch."""
        if deltas is not None:
            for l, d in enumerate(deltas):
                self.delta_sums[l] = c * float(np.sum(np.abs(d)))
        for l, peak in self.diag.peak.items():
            self.alive[l][...] = peak > 0

    def _unpack_diagnostics(self, n):
        """The global batch's ‖∂J/∂W[l]‖ and mean |δ[l]|, and the units active on any rank."""
        sizes = self.net.sizes
        self.diag.last["grad_norm"] = [math.sqrt(float(np.vdot(gw, gw))) for gw in self.gW]
        self.diag.last["delta_mean"] = [float(s) / (n * sizes[l + 1]) for l, s in enumerate(self.delta_sums)]
        for l in self.diag.watched:  # 1 where any rank saw the unit active, 0 where none did
            self.diag.peak[l] = (self.alive[l] > 0).astype(self.flat.dtype)


def _mpi_ops():
    from mpi4py import MPI

    return MPI.IN_PLACE, MPI.SUM
