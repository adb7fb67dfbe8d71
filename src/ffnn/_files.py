"""Safe files: safetensors for arrays, JSON for the rest, written atomically. No pickle, ever.

A write goes to a temporary file in the destination's folder, is flushed and fsynced, then renamed
over the destination (atomic on POSIX and Windows), so a crash mid-write leaves the previous file
intact.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile

import numpy as np

__all__ = ["FileFormatError", "atomic_write", "check_readable", "check_writable", "write_arrays", "read_arrays"]

# The header of a safetensors file is at most 100 MB (the format's own limit).
_MAX_HEADER = 100_000_000


class FileFormatError(ValueError):
    """A file that is missing, truncated, corrupted or not the kind ffnn expected."""


def _safetensors():
    try:
        import safetensors.numpy
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError("model and checkpoint files need the safetensors package: pip install 'ffnn[io]'") from None
    return safetensors.numpy


def check_writable(path, what="output file"):
    """Raise a clear error now (before any work) if ``path`` cannot be written later."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{what} {path!r}: folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{what} {path!r} is a folder")
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"{what} {path!r}: folder {folder!r} is not writable")


def check_readable(path, what, error=FileNotFoundError):
    """Raise ``error`` naming ``path`` unless it is an existing, readable, non-empty file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise error(f"{what} {path!r} does not exist")
    if os.path.isdir(path):
        raise error(f"{what} {path!r} is a folder")
    if not os.access(path, os.R_OK):
        raise error(f"{what} {path!r} cannot be read (permission denied)")
    if os.path.getsize(path) == 0:
        raise error(f"{what} {path!r} is empty")


def atomic_write(path, data: bytes):
    """Write ``data`` to ``path`` atomically (temporary file, flush, fsync, rename)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - not every platform can fsync a folder
        pass


def write_arrays(path, arrays: dict, meta: dict, key: str):
    """Write ``arrays`` (name -> NumPy array) as safetensors with ``meta`` as JSON under ``key``."""
    st = _safetensors()
    tensors = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    data = st.save(tensors, metadata={key: json.dumps(meta, allow_nan=False)})
    atomic_write(path, data)


def read_arrays(path, key: str, what: str):
    """Read a file written by :func:`write_arrays`: ``(arrays, meta)``, or a clear FileFormatError."""
    path = os.fspath(path)
    check_readable(path, what)
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise FileFormatError(f"{what} {path!r} is not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise FileFormatError(f"{what} {path!r} is truncated or not a safetensors file (bad header length)")
    try:
        header = json.loads(data[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FileFormatError(f"{what} {path!r} is corrupted or not a safetensors file (unreadable header)") from None
    if not isinstance(header, dict):
        raise FileFormatError(f"{what} {path!r} is not a safetensors file")
    meta_text = (header.get("__metadata__") or {}).get(key)
    if meta_text is None:
        raise FileFormatError(f"{what} {path!r} is a safetensors file but not an ffnn {what.split()[0]} "
                              f"(no {key!r} metadata)")
    try:
        meta = json.loads(meta_text)
    except json.JSONDecodeError:
        raise FileFormatError(f"{what} {path!r} has corrupted metadata") from None
    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > len(data):
        raise FileFormatError(f"{what} {path!r} is truncated ({len(data)} bytes; the header promises {8 + n + end})")
    try:
        arrays = _safetensors().load(data)
    except Exception as exc:  # safetensors raises its own error type
        raise FileFormatError(f"{what} {path!r} is corrupted: {exc}") from None
    return arrays, meta
