"""Safe files: safetensors for arrays, JSON for the rest, written atomically. No pickle, ever.

Writing. :func:`check_outputs` resolves and checks every output path of a job before any work: it
refuses an empty name, a folder, a missing or read-only folder, an over-long name, a special file
(FIFO, device, socket) and any output that is the same file as an input or as another output, and
returns the real paths (a symlink is written through, to its target). :func:`atomic_write` writes
to a temporary file in the destination's folder, flushes, fsyncs and renames it over the
destination (atomic on POSIX and Windows), so a crash mid-write leaves the previous file intact. An
existing file keeps its permission bits; a new one gets those the umask allows. The temporary file
is removed on every exit Python sees; one left by a killed process is named
``.<name>.<pid>.<random>.ffnn-tmp`` and removed by the next save to the same name once that process
is gone.

Reading. :class:`SafetensorsFile` memory-maps a safetensors file and checks its header before it
gives out any array: the header is at most :data:`MAX_HEADER` bytes of JSON with at most
:data:`MAX_TENSORS` tensors of known dtypes, whose byte ranges tile the data exactly to the end of
the file and match their shapes. Arrays are copied out of the map one at a time, on request, after
the caller has checked their shapes; the checksum stored at save time (SHA-256 over every tensor's
name, dtype, shape and bytes and over the metadata's JSON text) is verified by
:meth:`SafetensorsFile.verify`. It detects corruption, not tampering: whoever edits a file on
purpose can store a new checksum, or none.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import re
import secrets
import stat
import struct

import numpy as np

__all__ = ["FileFormatError", "Outputs", "atomic_write", "encode_arrays", "check_readable", "check_writable",
           "check_outputs", "write_arrays", "SafetensorsFile", "read_arrays", "is_number", "tensor_digest", "printable",
           "MAX_HEADER", "MAX_TENSORS", "MAX_CONTAINERS"]

#: Largest header (JSON, metadata included) a file may declare: far above any model or checkpoint
#: ffnn writes, far below what would cost real memory to parse.
MAX_HEADER = 16 * 2**20
#: Most tensors one file may hold.
MAX_TENSORS = 65536
#: Deepest nesting of JSON accepted in a header or its metadata.
MAX_DEPTH = 64
#: Most JSON lists and objects a header or its metadata may hold (a model's or checkpoint's hold a
#: few per layer and per epoch): counted in the raw text before parsing, so that a header of nothing
#: but ``[[[]]]`` cannot cost gigabytes of Python objects.
MAX_CONTAINERS = 2**20
#: Longest JSON integer accepted (in digits): a float holds at most 309 before its decimal point.
_MAX_INT_DIGITS = 309

_TMP_SUFFIX = ".ffnn-tmp"
_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
           "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


class FileFormatError(ValueError):
    """A file that is missing, truncated, corrupted or not the kind ffnn expected."""


class MissingFileError(FileFormatError, FileNotFoundError):
    """A model or checkpoint file that does not exist: a FileFormatError, and a FileNotFoundError
    for callers that catch that."""


def printable(text) -> str:
    """``text`` with control and other non-printable characters escaped (``\\x1b``), for terminals."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _safetensors():
    try:
        import safetensors.numpy
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError("model and checkpoint files need the safetensors package: pip install 'ffnn[io]'") from None
    return safetensors.numpy


# --- writing -------------------------------------------------------------------------------------

def _oserror(code, message):
    """An OSError whose text is ``message`` alone (no "[Errno n]" prefix) and whose errno is ``code``."""
    exc = OSError(message)
    exc.errno = code
    return exc


def _name_max(folder):
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # pragma: no cover - platforms without pathconf
        return 255


def _tmp_stem(folder, name):
    """The start of a temporary file's name for ``name``: ``.<name>``, cut on a character boundary so
    that the whole temporary name (``.<pid>.<8 hex>.ffnn-tmp`` follows, the pid up to 10 digits)
    fits the folder's longest file name; the same for every process, so stale ones are found."""
    room = _name_max(folder) - len(f"..{'0' * 10}.{'0' * 8}{_TMP_SUFFIX}")
    return "." + os.fsencode(name)[:max(room, 1)].decode("utf-8", "ignore")


def _tmp_path(real):
    """A fresh temporary path beside ``real``: ``.<name>.<pid>.<8 hex>.ffnn-tmp``."""
    folder, name = os.path.split(real)
    return os.path.join(folder, f"{_tmp_stem(folder, name)}.{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}")


def check_writable(path, what="output file") -> str:
    """The real path ``path`` will be written at, or a clear OSError now (before any work).

    Refuses an empty name, a name ending in a separator, an existing folder, a missing or read-only
    folder, a name too long for the file system, a special file (FIFO, device, socket) and a
    read-only file (which a rename would otherwise replace although its permissions say no). A
    symlink resolves to its target (which is what gets written).
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text:
        raise FileNotFoundError(f"{what}: the file name is empty")
    if text.endswith(("/", os.sep)):
        raise IsADirectoryError(f"{what} {text!r} names a folder, not a file")
    real = os.path.realpath(text)
    folder, name = os.path.split(real)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{what} {text!r}: folder {folder!r} does not exist")
    if len(os.fsencode(name)) > _name_max(folder):
        raise OSError(f"{what} {text!r}: the file name is too long for its folder")
    try:
        st = os.stat(real)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _oserror(exc.errno, f"{what} {text!r}: {exc.strerror}") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{what} {text!r} is a folder")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OSError(f"{what} {text!r} is a special file (FIFO, device or socket), not a regular file; "
                      f"ffnn writes only regular files")
    if st is not None and (not st.st_mode & 0o222 or not os.access(real, os.W_OK)):
        raise PermissionError(f"{what} {text!r} is read-only; ffnn does not replace it (make it writable "
                              f"or remove it first)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {text!r}: folder {folder!r} is not writable")
    return real


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs, inputs=(), allow=(), *, replace=True):
    """Resolve and check every output of a job before it starts; returns ``{label: real path}``.

    Parameters
    ----------
    outputs : sequence of (label, path)
        The files the job will write, ``path`` None when not asked for; ``label`` names it in errors
        (``"--out"``).
    inputs : sequence of (label, path)
        The files the job reads; no output may be one of them.
    allow : collection of (output label, input label)
        Pairs that may name the same file (a checkpoint that is resumed from and written again).
    replace : bool
        False: an output that is an existing regular file is refused (the command line's policy:
        nothing is replaced without ``--force``). A special file (``/dev/null``, a pipe) is written
        to, never replaced, and an allowed pair is the job's own file.

    Raises
    ------
    OSError
        For an output :func:`check_writable` refuses, one that is the same file as an input (also
        through a symlink or a hard link), two outputs that are the same file, or (``replace``
        False) an existing file.
    """
    resolved = {}
    for label, path in outputs:
        if path is None:
            continue
        real = check_writable(path, label)
        for other, other_real in resolved.items():
            if real == other_real or _same_file(real, other_real):
                raise OSError(f"{label} {os.fspath(path)!r} is the same file as {other}; "
                              f"each output needs its own file")
        for in_label, in_path in inputs:
            if in_path is None or (label, in_label) in allow:
                continue
            if real == os.path.realpath(os.fspath(in_path)) or _same_file(real, in_path):
                raise OSError(f"{label} {os.fspath(path)!r} is the same file as the input "
                              f"{in_label} {os.fspath(in_path)!r}; it would be overwritten")
        own = any(in_label_path is not None and (label, in_label) in allow and _same_file(real, in_label_path)
                  for in_label, in_label_path in inputs)  # the checkpoint this job resumes from
        if not replace and not own and os.path.isfile(real):
            raise OSError(f"{label} {os.fspath(path)!r} exists; pass --force to replace it")
        resolved[label] = real
    return resolved


def _may_be_running(pid):
    """False only when no process ``pid`` exists here (POSIX; elsewhere every process may be running)."""
    if pid == os.getpid() or os.name != "posix":
        return True
    try:
        os.kill(pid, 0)  # signal 0: a check, nothing is sent
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def _remove_stale_temporaries(folder, name):
    """Remove temporaries this module left for ``name`` in ``folder`` when the process is gone."""
    pattern = re.compile(rf"^{re.escape(_tmp_stem(folder, name))}\.(\d+)\.[0-9a-f]{{8}}{re.escape(_TMP_SUFFIX)}$")
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        m = pattern.match(entry)
        if m is None:
            continue
        if _may_be_running(int(m.group(1))):
            continue  # perhaps writing it now
        try:
            os.unlink(os.path.join(folder, entry))
        except OSError:
            pass


def _mode_for(real):
    try:
        st = os.stat(real)
        return stat.S_IMODE(st.st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _unlink(path):
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass


def _fsync_folder(folder):
    try:  # make a rename durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # pragma: no cover - not every platform can fsync a folder
        pass


class Outputs:
    """Several files written as one: all or none.

    Each :meth:`add` writes its bytes to a temporary file beside the destination (flushed and
    fsynced, with the destination's permission bits, or the umask's for a new file); :meth:`commit`
    then renames them over their destinations, each rename atomic. When a write fails (disk full,
    permissions) or the block raises, every temporary file is removed and no destination changes;
    when a rename fails part way, the ones already done are undone (:meth:`commit`).
    As a context manager it commits on a clean exit and discards otherwise::

        with Outputs() as out:
            out.add("model.safetensors", blob, "--out")
            out.add("metrics.json", text, "--metrics")
    """

    def __init__(self):
        self._staged = []  # (temporary path, real destination, what, path as given)

    def add(self, path, data: bytes, what="output file"):
        self.add_stream(path, (data,), what)

    def add_stream(self, path, chunks, what="output file"):
        """:meth:`add` for bytes that come in pieces (``chunks``, an iterable): written as they come, so
        an output of any length takes constant memory; an exception from ``chunks`` discards it all."""
        real = check_writable(path, what)
        _remove_stale_temporaries(*os.path.split(real))
        mode = _mode_for(real)
        tmp = _tmp_path(real)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            self._staged.append((tmp, real, what, os.fspath(path)))
            with os.fdopen(fd, "wb") as f:
                for data in chunks:
                    f.write(data)
                f.flush()
                os.fsync(f.fileno())
                os.fchmod(f.fileno(), mode) if hasattr(os, "fchmod") else os.chmod(tmp, mode)
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError) and not isinstance(exc, FileFormatError):
                raise _oserror(exc.errno, f"could not write {what} {os.fspath(path)!r}: "
                                          f"{exc.strerror or exc}") from None
            raise

    def commit(self):
        """Rename every staged file over its destination. With several, each existing destination is
        first hard-linked to a backup beside it, so that a rename that fails part way (a file
        mounted over, a folder made read-only meanwhile) puts back the ones already done (a file
        system without hard links keeps the new file where it had no backup)."""
        done = []  # (real destination, whether it existed, its backup or None), renamed in place
        try:
            for tmp, real, what, given in self._staged:
                existed = os.path.lexists(real)
                backup = self._backup(real) if existed and len(self._staged) > 1 else None
                try:
                    os.replace(tmp, real)
                except BaseException:
                    _unlink(backup)
                    raise
                done.append((real, existed, backup))
        except BaseException as exc:
            self._roll_back(done)
            self.discard()
            if isinstance(exc, OSError):
                raise _oserror(exc.errno, f"could not write {what} {given!r}: {exc.strerror or exc}") from None
            raise
        for real, _, backup in done:
            _unlink(backup)
            _fsync_folder(os.path.dirname(real))
        self._staged = []

    @staticmethod
    def _backup(real):
        """A hard link to ``real`` beside it, or None where the file system has no hard links."""
        backup = _tmp_path(real)
        try:
            os.link(real, backup)
        except OSError:
            return None
        return backup

    @staticmethod
    def _roll_back(done):
        for real, existed, backup in reversed(done):
            try:
                if not existed:
                    os.unlink(real)
                elif backup is not None:
                    os.replace(backup, real)
            except OSError:  # pragma: no cover - the folder itself went away
                pass

    def discard(self):
        """Remove every staged temporary file; no destination changes."""
        for tmp, *_ in self._staged:
            _unlink(tmp)
        self._staged = []

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None:
            self.commit()
        else:
            self.discard()


def atomic_write(path, data: bytes, what="output file"):
    """Write ``data`` to ``path`` atomically (temporary file, flush, fsync, rename).

    A symlink is written through (its target is replaced); an existing file keeps its permission
    bits and a new one gets the umask's. Raises OSError naming ``path`` when the write fails, and
    then leaves no temporary file behind.
    """
    with Outputs() as out:
        out.add(path, data, what)


def _digest_update(h, name, dtype, shape, data):
    h.update(f"{name}\0{dtype.str}\0{list(shape)}\0".encode())
    if len(data):
        h.update(data)


def tensor_digest(arrays, metadata_text=None) -> str:
    """SHA-256 (hex) over each tensor's name, dtype, shape and little-endian bytes, by sorted name,
    followed by ``metadata_text`` (UTF-8) when given: the checksum :func:`write_arrays` stores."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))
        _digest_update(h, name, a.dtype, a.shape, memoryview(a.reshape(-1)).cast("B") if a.size else b"")
    if metadata_text is not None:
        h.update(b"\0metadata\0" + metadata_text.encode())
    return h.hexdigest()


def digest_key(key):
    """The ``__metadata__`` entry beside ``key`` that holds the file's checksum."""
    return f"{key}.sha256"


def encode_arrays(arrays: dict, meta: dict, key: str, where="output file") -> bytes:
    """``arrays`` (name -> NumPy array) as safetensors bytes, with ``meta`` as JSON under ``key``.

    Beside it, under :func:`digest_key`, goes :func:`tensor_digest` of the arrays and of that JSON
    text: the checksum every reader verifies, so one changed byte anywhere but the header's framing
    is an error at load.
    """
    st = _safetensors()
    tensors = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    try:
        text = json.dumps(meta, allow_nan=False)
    except RecursionError:
        raise ValueError(f"{where}: the metadata is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        if "ircular" in str(exc):
            raise ValueError(f"{where}: the metadata refers to itself (a circular reference); it must be a "
                             f"tree of JSON values") from None
        raise ValueError(f"{where}: {exc}; store NaN or infinity as None") from None
    except TypeError as exc:
        raise ValueError(f"{where}: the metadata holds a value JSON cannot store ({exc})") from None
    if "\\ud" in text.lower() and not _valid_unicode(meta):  # json.dumps writes surrogates as \ud8xx
        raise ValueError(f"{where}: the metadata holds text that is not valid Unicode (a lone surrogate)")
    if len(text) > MAX_HEADER // 2:
        raise ValueError(f"{where}: the metadata is {len(text)} bytes of JSON; files hold at most {MAX_HEADER // 2}")
    parse_json(text, f"{where}: the metadata")  # what a reader refuses (loading runs the same check) is not written
    return st.save(tensors, metadata={key: text, digest_key(key): tensor_digest(tensors, text)})


def write_arrays(path, arrays: dict, meta: dict, key: str, what="output file"):
    """:func:`encode_arrays`, written to ``path`` atomically."""
    atomic_write(path, encode_arrays(arrays, meta, key, f"{what} {os.fspath(path)!r}"), what)


# --- reading -------------------------------------------------------------------------------------

def check_readable(path, what, error=FileNotFoundError, invalid=None):
    """Raise ``error`` naming ``path`` when it does not exist, and ``invalid`` (default
    FileFormatError) unless it is a readable, non-empty regular file."""
    path = os.fspath(path)
    invalid = invalid or (error if error is not FileNotFoundError else FileFormatError)
    if not os.path.exists(path):
        raise error(f"{what} {path!r} does not exist")
    if os.path.isdir(path):
        raise invalid(f"{what} {path!r} is a folder")
    if not os.path.isfile(path):
        raise invalid(f"{what} {path!r} is a special file (FIFO, device or socket), not a regular file")
    if not os.access(path, os.R_OK):
        raise invalid(f"{what} {path!r} cannot be read (permission denied)")
    if os.path.getsize(path) == 0:
        raise invalid(f"{what} {path!r} is empty")


def too_deep(value, limit) -> bool:
    """True when ``value`` nests lists and dicts more than ``limit`` deep (level by level, no recursion)."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > limit:
            return True
        nxt = []
        for v in level:
            children = v.values() if isinstance(v, dict) else v
            nxt.extend(c for c in children if isinstance(c, (dict, list)))
        level = nxt
    return False


def is_number(v) -> bool:
    """A finite JSON number: an int or float, not a bool, within the float range."""
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer beyond the float range
        return False


def _no_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError(f"the key {k!r} appears twice")
        d[k] = v
    return d


def _parse_int(digits):
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits.lstrip('-'))} digits is beyond the float range")
    return int(digits)


def parse_json(text, where):
    """JSON text → value, as FileFormatError: duplicate keys, NaN/Infinity, integers beyond the
    float range, more than :data:`MAX_CONTAINERS` lists and objects, and deep nesting."""
    def constant(name):
        raise ValueError(f"{name} is not a JSON number")
    opening = (b"[", b"{") if isinstance(text, (bytes, bytearray)) else ("[", "{")
    if text.count(opening[0]) + text.count(opening[1]) > MAX_CONTAINERS:  # an upper bound: brackets in strings count too
        raise FileFormatError(f"{where} holds more than {MAX_CONTAINERS} JSON lists and objects")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=constant, parse_int=_parse_int)
    except RecursionError:
        raise FileFormatError(f"{where} is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise FileFormatError(f"{where} is not valid JSON ({exc})") from None
    if isinstance(value, (dict, list)) and too_deep(value, MAX_DEPTH):
        raise FileFormatError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    escape = ("\\ud", "\\uD") if isinstance(text, str) else (b"\\ud", b"\\uD")
    if any(e in text for e in escape) and not _valid_unicode(value):
        raise FileFormatError(f"{where} holds text that is not valid Unicode (a lone surrogate)")
    return value


def _valid_unicode(value) -> bool:
    """Whether every string in a parsed JSON value can be written as UTF-8 (no lone surrogates)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


class SafetensorsFile:
    """A safetensors file, memory-mapped, whose header has been checked; arrays are copied out on request.

    Parameters
    ----------
    path : path
    key : str
        The ``__metadata__`` entry holding ffnn's JSON (``"ffnn"`` for models).
    what : str
        What the file is, for errors ("model file").

    Attributes
    ----------
    meta : dict
        The JSON document under ``key``.
    tensors : dict
        name → (NumPy dtype, shape) of every tensor in the file.

    Raises
    ------
    FileFormatError
        Naming the file, for anything but a well-formed safetensors file with ffnn's metadata.
    """

    def __init__(self, path, key, what):
        self.path, self.what = os.fspath(path), what
        self.where = f"{what} {self.path!r}"
        check_readable(self.path, what, MissingFileError, FileFormatError)
        self._map, self.checksum = None, None
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 8:
                raise FileFormatError(f"{self.where} is not a safetensors file (only {size} bytes)")
            (n,) = struct.unpack("<Q", f.read(8))
            if n > MAX_HEADER:
                raise FileFormatError(f"{self.where} is not a safetensors file ffnn reads: its header claims "
                                      f"{n} bytes (at most {MAX_HEADER})")
            if 8 + n > size:
                raise FileFormatError(f"{self.where} is truncated or not a safetensors file "
                                      f"(header of {n} bytes in a file of {size})")
            raw = f.read(n)
            self._entries = self._check_header(raw, size - 8 - n, key)
            self._data_start = 8 + n
            if size > self._data_start:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.tensors = {name: (dt, shape) for name, (dt, shape, _, _) in self._entries.items()}

    def _check_header(self, raw, data_size, key):
        if not _valid_utf8(raw):
            raise FileFormatError(f"{self.where} is corrupted or not a safetensors file (its header is not UTF-8 text)")
        if raw.count(b'"data_offsets"') > MAX_TENSORS:
            raise FileFormatError(f"{self.where} declares more than {MAX_TENSORS} tensors")
        header = parse_json(raw, f"the header of {self.where}")
        if not isinstance(header, dict):
            raise FileFormatError(f"{self.where} is not a safetensors file (its header is not a JSON object)")
        metadata = header.pop("__metadata__", None)
        if not isinstance(metadata, dict) or not isinstance(metadata.get(key), str):
            raise FileFormatError(f"{self.where} is a safetensors file but not an ffnn {self.what.split()[0]} "
                                  f"(no {key!r} metadata)")
        if len(header) > MAX_TENSORS:
            raise FileFormatError(f"{self.where} declares {len(header)} tensors (at most {MAX_TENSORS})")
        entries, spans = {}, []
        for name, e in header.items():
            entries[name] = self._check_entry(name, e)
            spans.append(entries[name][2:])
        spans.sort()
        at = 0
        for begin, end in spans:
            if begin != at:
                raise FileFormatError(f"{self.where} is corrupted: its tensors' byte ranges "
                                      f"{'overlap' if begin < at else 'leave a gap'} at byte {begin}")
            at = end
        if at != data_size:
            raise FileFormatError(f"{self.where} is {'truncated' if at > data_size else 'corrupted'}: the header "
                                  f"promises {at} bytes of tensors, the file holds {data_size}")
        unknown = sorted(set(metadata) - {key, digest_key(key)})
        if unknown:  # one flipped bit in the checksum's name must not switch the check off
            raise FileFormatError(f"{self.where} is corrupted: its header holds a metadata entry ffnn does not "
                                  f"write ({printable(unknown[0])!r})")
        self._text, self._digest = metadata[key], metadata.get(digest_key(key))
        if self._digest is not None and (not isinstance(self._digest, str)
                                         or re.fullmatch(r"[0-9a-f]{64}", self._digest) is None):
            raise FileFormatError(f"{self.where} is corrupted: its checksum is not a SHA-256 digest")
        self.meta = parse_json(self._text, f"the metadata of {self.where}")
        if not isinstance(self.meta, dict):
            raise FileFormatError(f"{self.where}'s metadata is not a JSON object")
        return entries

    def _check_entry(self, name, e):
        bad = f"{self.where} is corrupted: tensor {printable(name)!r}"
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise FileFormatError(f"{bad} is not described by dtype, shape and data_offsets")
        dt, shape, offsets = e["dtype"], e["shape"], e["data_offsets"]
        if dt not in _DTYPES:
            raise FileFormatError(f"{bad} has dtype {printable(dt)!r}, which ffnn does not read")
        ints = lambda v: isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0
                                                     for i in v)
        if not ints(shape) or len(shape) > 8 or any(i >= 2**31 for i in shape):
            raise FileFormatError(f"{bad} has an invalid shape")
        if not ints(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
            raise FileFormatError(f"{bad} has invalid data_offsets")
        dtype = np.dtype(_DTYPES[dt])
        if math.prod(shape) * dtype.itemsize != offsets[1] - offsets[0]:
            raise FileFormatError(f"{bad}: shape {tuple(shape)} of {dt} does not fill its "
                                  f"{offsets[1] - offsets[0]} bytes")
        return dtype, tuple(shape), offsets[0], offsets[1]

    def array(self, name) -> np.ndarray:
        """A fresh, writable NumPy copy of tensor ``name``."""
        dtype, shape, begin, end = self._entries[name]
        if end == begin:
            return np.zeros(shape, dtype=dtype.newbyteorder("="))
        view = np.frombuffer(self._map, dtype=dtype, count=math.prod(shape), offset=self._data_start + begin)
        out = view.astype(dtype.newbyteorder("="), copy=True).reshape(shape)
        del view
        return out

    def verify(self):
        """Check the file's checksum; returns what it covered: ``"tensors and metadata"``,
        ``"tensors"`` (a file written before the metadata was covered) or ``None`` (no checksum:
        a file written by another tool). Raises FileFormatError when it does not match."""
        legacy = self.meta.get("sha256") if self._digest is None else None
        if self._digest is None and legacy is None:
            return None
        h = hashlib.sha256()
        for name in sorted(self._entries):
            dtype, shape, begin, end = self._entries[name]
            if end == begin:
                _digest_update(h, name, dtype, shape, b"")
                continue
            with memoryview(self._map) as mv:
                _digest_update(h, name, dtype, shape, mv[self._data_start + begin:self._data_start + end])
        if legacy is None:
            h.update(b"\0metadata\0" + self._text.encode())
        if h.hexdigest() != (legacy if legacy is not None else self._digest):
            raise FileFormatError(f"{self.where} is corrupted: its {'arrays' if legacy else 'arrays or metadata'} "
                                  f"do not match the checksum stored when it was saved")
        self.checksum = "tensors" if legacy is not None else "tensors and metadata"
        return self.checksum

    def close(self):
        if self._map is not None:
            self._map.close()
            self._map = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _valid_utf8(raw):
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def read_arrays(path, key: str, what: str):
    """Every array of a file written by :func:`write_arrays`, checksum verified: ``(arrays, meta)``."""
    with SafetensorsFile(path, key, what) as f:
        f.verify()
        return {name: f.array(name) for name in f.tensors}, f.meta
