"""Training rows that stay on disk: a memory-mapped ``.npy`` pair and Parquet read by row group.

:func:`ffnn.train` takes one of these in place of ``X`` (with ``T=None``) and reads, for each step,
only the rows of that step's minibatch — under MPI, only the rows of the process's share of it — so
that a data set larger than memory trains in the memory of the model, its optimiser state, a few
batches and (for Parquet) one row group.

The shuffle, per format (one draw per epoch from the run's NumPy Generator ``rng``):

``.npy`` (:class:`NpyPair`)
    The exact global permutation ``rng.permutation(N)``, the same as for arrays in memory: the same
    data in memory or on disk trains to the same weights. A batch's rows are read by positional
    reads into a buffer (or, with ``mmap=True``, through a read-only memory map whose resident
    pages are dropped after each batch), so resident memory does not grow with the file.
``Parquet`` (:class:`ParquetRows`)
    Parquet is read a row group at a time, so a full permutation would read a row group for almost
    every sample. The two-level shuffle instead draws ``rng.permutation(G)`` over the G row groups,
    then, for each row group in that order, ``rng.permutation(R_g)`` over its rows; the epoch's
    order is the row groups in the first order, each with its rows in its own order, and batches
    are consecutive slices of it (a batch can span two row groups). Every row is seen once per
    epoch; rows of one row group tend to share batches, so row groups should be many and their
    rows shuffled when written. Each process decodes only the row groups that hold its rows of the
    current batches, one at a time: with row groups of at most batch/P rows, a process's share of
    a batch is a run of whole row groups and each process decodes about 1/P of the file per epoch;
    with larger row groups, processes decode the same row groups and keep different rows.

Targets: y of shape (N, K) is used as it is; a 1-D y is a column for a network with one output and,
for a network with K > 1 outputs, integer class labels 0..K−1 turned into one-hot rows.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from ._files import check_readable

__all__ = ["NpyPair", "ParquetRows", "is_source"]


def is_source(obj) -> bool:
    """Whether ``obj`` is a source of training rows (has ``order`` and ``gather``) rather than an array."""
    return hasattr(obj, "gather") and hasattr(obj, "order")


class _Rows:
    """What every source has: N, the feature width, the target width once bound to a network."""

    n = 0
    n_features = 0
    name = "rows"

    @property
    def shape(self):
        return (self.n, self.n_features)

    def __len__(self):
        return self.n

    def bind(self, net):
        """Check the widths against ``net`` and fix the targets' form; returns self."""
        if self.n_features != net.sizes[0]:
            raise ValueError(f"{self.name} has {self.n_features} features; the network expects {net.sizes[0]}")
        self.n_outputs = net.sizes[-1]
        self.dtype = np.dtype(net.dtype)
        return self

    def order(self, rng, shuffle):
        """The epoch's order of the N rows (the exact global permutation unless said otherwise)."""
        return rng.permutation(self.n) if shuffle else np.arange(self.n)

    def batch(self, idx):
        """Rows ``idx`` as new arrays (X (n, D), T (n, K)) in the network's dtype."""
        X = np.empty((len(idx), self.n_features), self.dtype)
        T = np.empty((len(idx), self.n_outputs), self.dtype)
        self.gather(idx, X, T)
        return X, T

    def weights(self, idx):
        """Sample weights of rows ``idx`` or None."""
        return None

    def _targets(self, y, out):
        """y rows (n,) or (n, K) into ``out`` (n, K) in the bound form (see the module docstring)."""
        if y.ndim == 2:
            if y.shape[1] != self.n_outputs:
                raise ValueError(f"{self.name}: y has {y.shape[1]} columns; the output layer has {self.n_outputs}")
            out[...] = y
        elif self.n_outputs == 1:
            out[:, 0] = y
        else:
            if y.dtype.kind not in "iub" or (y.size and (y.min() < 0 or y.max() >= self.n_outputs)):
                raise ValueError(f"{self.name}: a 1-D y for {self.n_outputs} outputs must hold class labels "
                                 f"0..{self.n_outputs - 1}")
            out[...] = 0
            out[np.arange(len(y)), y] = 1
        return out

    def _check_finite(self, X, T):
        if not (np.isfinite(X).all() and np.isfinite(T).all()):
            raise ValueError(f"{self.name} contains NaN or infinite values")


class ArrayRows(_Rows):
    """Checked arrays in memory (X, T and optional sample weights), as a source."""

    in_memory = True  # the compiled loop gathers the rows of X, T and w itself (when they are NumPy arrays)

    def __init__(self, X, T, w=None):
        self.X, self.T, self.w = X, T, w
        self.n, self.n_features = X.shape
        self.name = "X"

    def gather(self, idx, X_out, T_out):
        # mode="clip": with mode="raise" np.take buffers `out`; the indices come from a permutation
        np.take(self.X, idx, axis=0, out=X_out, mode="clip")
        np.take(self.T, idx, axis=0, out=T_out, mode="clip")

    def weights(self, idx):
        return None if self.w is None else self.w[idx]


class NpyPair(_Rows):
    """Features and targets in two ``.npy`` files, read a batch's rows at a time.

    Parameters
    ----------
    x_path : path
        A 2-D ``.npy`` array (N, D) of numbers (any float or integer dtype; converted per batch).
    y_path : path
        A ``.npy`` array (N,) or (N, K): targets (see the module docstring for a 1-D y).
    mmap : bool
        False (default): rows are read with positional reads (``os.preadv``, one per run of
        consecutive rows) into a buffer of one batch, so the file's pages are never part of the
        process's memory (they stay in the OS's cache) and an address-space limit smaller than
        the file is no obstacle. True: the files are memory-mapped read-only, rows are gathered
        through the maps and the maps' resident pages are dropped after each batch
        (``MADV_DONTNEED``); between two drops the kernel maps up to 64 KiB around each row read
        (fault-around), so resident memory peaks near ``batch × 64 KiB`` above the batches.

    Notes
    -----
    The shuffle is the exact global permutation ``rng.permutation(N)``: training on an ``NpyPair``
    gives the weights that training on the same arrays in memory gives.
    """

    def __init__(self, x_path, y_path, *, mmap=False):
        self.x_path, self.y_path = os.fspath(x_path), os.fspath(y_path)
        self.X = _NpyFile(self.x_path, mmap)
        self.y = _NpyFile(self.y_path, mmap)
        if len(self.X.shape) != 2:
            raise ValueError(f"data file {self.x_path!r} holds an array of shape {self.X.shape}; X must be 2-D")
        if len(self.y.shape) not in (1, 2) or self.y.shape[0] != self.X.shape[0]:
            raise ValueError(f"data file {self.y_path!r} holds shape {self.y.shape}; y needs one row per row of X "
                             f"({self.X.shape[0]})")
        self.n, self.n_features = self.X.shape
        self.name = f"data file {self.x_path!r}"

    def gather(self, idx, X_out, T_out):
        order = np.argsort(idx, kind="stable")  # read the files forwards; put the rows back in batch order
        rows = idx[order]
        X_out[order] = self.X.rows(rows)
        T_out[order] = self._targets(self.y.rows(rows), np.empty_like(T_out))
        self._check_finite(X_out, T_out)
        self.X.release()
        self.y.release()


class _NpyFile:
    """One ``.npy`` file's header, and its rows by positional reads or through a memory map."""

    def __init__(self, path, use_mmap):
        self.fd = None
        check_readable(path, "data file", ValueError)
        self.path = path
        try:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(f)
                self.offset = f.tell()
        except (ValueError, OSError) as exc:
            raise ValueError(f"data file {path!r} is not a .npy array: {exc}") from None
        if fortran and len(shape) > 1:
            raise ValueError(f"data file {path!r} is in Fortran order; save it C-ordered (np.ascontiguousarray)")
        if dtype.hasobject or dtype.kind not in "biuf":
            raise ValueError(f"data file {path!r} holds {dtype}, not numbers")
        self.shape, self.dtype = tuple(shape), dtype
        self.row_shape = self.shape[1:]
        self.row_bytes = dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        if os.path.getsize(path) < self.offset + self.shape[0] * self.row_bytes:
            raise ValueError(f"data file {path!r} is shorter than its header says")
        self.map = np.memmap(path, dtype=dtype, mode="r", offset=self.offset, shape=self.shape) if use_mmap else None
        self.fd = os.open(path, os.O_RDONLY)
        self._buf = None

    def rows(self, rows):
        """The rows (sorted indices) as an array of the file's dtype (valid until the next call)."""
        if self.map is not None:
            return np.asarray(self.map[rows])
        m = len(rows)
        if self._buf is None or self._buf.shape[0] < m:
            self._buf = np.empty((m,) + self.row_shape, self.dtype)
        out = self._buf[:m]
        raw = out.reshape(-1).view(np.uint8)
        starts = np.flatnonzero(np.diff(rows) != 1) + 1
        for a, b in zip([0, *starts], [*starts, m]):
            if b > a:
                os.preadv(self.fd, [raw[a * self.row_bytes:b * self.row_bytes]],
                          self.offset + int(rows[a]) * self.row_bytes)
        return out

    def release(self):
        """Drop the map's resident pages (the OS keeps them cached); nothing to do for positional reads."""
        m = getattr(self.map, "_mmap", None)
        if m is not None and hasattr(m, "madvise"):
            m.madvise(mmap.MADV_DONTNEED)

    def __del__(self):
        if getattr(self, "fd", None) is not None:
            os.close(self.fd)
            self.fd = None


class ParquetRows(_Rows):
    """Features and a target in a Parquet file, read one row group at a time.

    Parameters
    ----------
    path : path
    target : str, optional
        The target column (default: the last column).
    features : sequence of str, optional
        The feature columns, in order (default: every column but the target).

    Notes
    -----
    The shuffle is two-level (see :meth:`order`). The row group being read is decoded into one
    array of the network's dtype; the rows of a batch are copied out of it, so at most one row
    group and the batches are held at a time.
    """

    def __init__(self, path, target=None, features=None):
        try:
            import pyarrow.parquet as pq
        except ImportError:  # pragma: no cover - the parquet extra
            raise ImportError("reading Parquet needs pyarrow: pip install 'ffnn[parquet]'") from None
        self.path = os.fspath(path)
        check_readable(self.path, "data file", ValueError)
        try:
            self.file = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError kinds
            raise ValueError(f"data file {self.path!r} is not a Parquet file: {exc}") from None
        names = list(self.file.schema_arrow.names)
        self.target = names[-1] if target is None else target
        if self.target not in names:
            raise ValueError(f"data file {self.path!r} has no column {self.target!r}")
        self.features = [c for c in names if c != self.target] if features is None else list(features)
        missing = [c for c in self.features if c not in names]
        if missing:
            raise ValueError(f"data file {self.path!r} has no column {missing[0]!r}")
        meta = self.file.metadata
        sizes = np.array([meta.row_group(g).num_rows for g in range(meta.num_row_groups)], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(sizes)])  # row group g holds rows starts[g]..starts[g+1]−1
        self.n, self.n_features = int(self.starts[-1]), len(self.features)
        self.name = f"data file {self.path!r}"
        self._group, self._X, self._y = -1, None, None

    @property
    def n_row_groups(self):
        return len(self.starts) - 1

    def order(self, rng, shuffle):
        """The two-level shuffle: ``rng.permutation(G)`` over the row groups, then, for each row group
        in that order, ``rng.permutation(R_g)`` over its rows; without shuffling, the file's order."""
        if not shuffle:
            return np.arange(self.n)
        parts = []
        for g in rng.permutation(self.n_row_groups):
            lo, hi = int(self.starts[g]), int(self.starts[g + 1])
            parts.append(lo + rng.permutation(hi - lo))
        return np.concatenate(parts) if parts else np.arange(0)

    def gather(self, idx, X_out, T_out):
        groups = np.searchsorted(self.starts, idx, side="right") - 1
        # Rows of one row group are copied together; the group in memory is kept for the next batch.
        bounds = np.flatnonzero(np.diff(groups)) + 1
        for seg in np.split(np.arange(len(idx)), bounds):
            if len(seg) == 0:
                continue
            g = int(groups[seg[0]])
            self._load(g)
            local = idx[seg] - self.starts[g]
            X_out[seg] = self._X[local]
            T_out[seg] = self._targets(self._y[local], np.empty((len(seg), self.n_outputs), self.dtype))
        self._check_finite(X_out, T_out)

    def _load(self, g):
        if g == self._group:
            return
        self._X = self._y = None  # free the previous row group before decoding the next
        lo, hi = int(self.starts[g]), int(self.starts[g + 1])
        X = np.empty((hi - lo, self.n_features), self.dtype)
        # A few columns at a time, so that Arrow's buffers stay small next to the row group's array.
        for c0 in range(0, self.n_features, COLUMN_BLOCK):
            names = self.features[c0:c0 + COLUMN_BLOCK]
            table = self.file.read_row_group(g, columns=names, use_threads=False)
            for j, name in enumerate(names, start=c0):
                X[:, j] = self._column(table, name, g)
            del table
        table = self.file.read_row_group(g, columns=[self.target], use_threads=False)
        self._y = self._column(table, self.target, g)
        self._X, self._group = X, g

    def _column(self, table, name, g):
        col = table.column(name)
        if col.null_count:
            raise ValueError(f"{self.name}: column {name!r} has missing values in row group {g}")
        return col.to_numpy()


COLUMN_BLOCK = 32  # columns decoded together from a row group
