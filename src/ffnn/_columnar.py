"""Tables read as typed columns by pyarrow: CSV (also .tsv, and compressed: .gz, .zst, .bz2, .xz),
Parquet, Arrow IPC/Feather, standard input and in-memory pandas or pyarrow tables.

Each reader decodes the file in pyarrow's C++ readers (multithreaded, one typed array per column, no
Python object per cell) a part at a time — a CSV a piece of text of :data:`PIECE_BYTES` cut at a line
break (:func:`csv_pieces`), a Parquet file a row group — and turns the columns :mod:`ffnn.data` asks
for into NumPy arrays as it goes (one array for the file, :class:`Rows`): the features as float64,
the target by the same rules as the row-by-row reader (``ffnn.data._target``: integers stay
integers, ``01`` keeps its text, text labels stay text), applied to the column's distinct values.
Where the fast reader is not sure its result is the exact reader's — a cell that does not parse, a
missing or non-finite value, a ragged row, an unclosed quote, text that is not UTF-8, a line that
starts with a byte-order mark — it says so (:class:`NotSure`) and :mod:`ffnn.data` reads the file
again row by row, which either reads it (the few syntaxes only Python's parser takes) or raises the
error naming the line. So a fast parse never changes what a file means, and an error costs one slow
read.

Before anything is decoded, the size the file declares is checked against a memory budget
(:func:`memory_budget`): Parquet's and Arrow's row and column counts from their metadata, a CSV's
width from its header and its size on disk (at most one cell per byte).
"""

from __future__ import annotations

import os
import zlib

import numpy as np

try:  # (a Python built without liblzma has no lzma module: .xz files are then refused where they are opened)
    from lzma import LZMAError
except ImportError:  # pragma: no cover - depends on how Python was built
    LZMAError = OSError

#: What a damaged compressed stream raises, besides OSError, EOFError and ValueError.
DECOMPRESS_ERRORS = (zlib.error, LZMAError)

from ._checks import memory_budget

__all__ = ["available", "NotSure", "csv_format", "memory_budget", "check_size", "csv_pieces", "Rows",
           "read_columnar_table", "table_columns", "stack", "target_values"]

COMPRESSIONS = (".gz", ".zst", ".bz2", ".xz", ".lz4")


class NotSure(Exception):
    """The fast reader cannot vouch for its result: read the file row by row."""


def available() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


def csv_format(path):
    """(delimiter, compression suffix or "") of a text table's path: ``.tsv`` (and ``.tab``) is
    tab-separated; a compression suffix may follow (``data.csv.gz``)."""
    name = os.fspath(path).lower()
    compression = ""
    for suffix in COMPRESSIONS:
        if name.endswith(suffix):
            compression, name = suffix, name[:-len(suffix)]
            break
    return ("\t" if name.endswith((".tsv", ".tab")) else ","), compression


def check_size(path, rows, columns, error, how="declares"):
    """``error`` (a DataError) when ``rows`` × ``columns`` float64 values, with pyarrow's copy beside
    NumPy's, exceed :func:`memory_budget`."""
    need = 2 * 8 * rows * columns
    budget = memory_budget()
    if need > budget:
        raise error(f"data file {path!r} {how} {rows:,} rows × {columns:,} columns: about {need / 2**30:.1f} GiB "
                    f"once read, over the memory budget of {budget / 2**30:.1f} GiB (set FFNN_MEMORY_BUDGET to "
                    f"change it, or read a sample of the file)")


def _arrow():
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    return pa, pc, pcsv


def body_read_options(header, after_header=True):
    """pyarrow's options for the rows of a text that starts with the header line (or, with
    ``after_header=False``, with rows: a later piece), the columns named as the header names them."""
    import pyarrow.csv as pcsv

    return pcsv.ReadOptions(block_size=BLOCK_BYTES, skip_rows=1 if after_header else 0, column_names=header)


def header_line(stream, delimiter, limit=1 << 26):
    """(the header as Python's csv module reads the first line, quoted names and all, a BOM skipped;
    the bytes read from the binary ``stream`` so far: the header line and what follows it, where
    :func:`csv_pieces` goes on from). NotSure for a blank first line (the exact reader finds no header
    there), a header record that runs past its line, or a stream that cannot be read."""
    import csv
    import io

    head = bytearray()
    try:
        while len(head) < limit:
            block = stream.read(1 << 16)
            if not block:
                break
            head += block
            if b"\n" in block or b"\r" in block:  # (only the new block is searched: linear in the header)
                break
    except (OSError, EOFError, ValueError, *DECOMPRESS_ERRORS) as exc:
        raise NotSure(str(exc)) from None
    line = bytes(head.split(b"\n", 1)[0])
    if line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]
    try:
        text = line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        raise NotSure("not UTF-8") from None
    if not text.strip() or text.count('"') % 2:
        raise NotSure("a blank first line, or a header that runs past its line")
    try:
        return next(csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)), bytes(head)
    except (csv.Error, StopIteration) as exc:
        raise NotSure(str(exc)) from None


def parse_options(delimiter):
    """pyarrow's CSV parsing of the rows (the header is the csv module's, :func:`header_line`) with
    quoting off: a quote anywhere then fails to parse as a number or shows in a text cell
    (:func:`check_text`), and the file goes to the exact reader — pyarrow takes text after a closing
    quote (``"5"5``) that the csv module, rightly, refuses; a quoted cell over several lines or one
    never closed goes there too."""
    import pyarrow.csv as pcsv

    return pcsv.ParseOptions(delimiter=delimiter, quote_char=False, newlines_in_values=False)


def check_text(table, names):
    """NotSure when a text column holds a quote (the exact reader's to read). A line break cannot be
    in a cell: with quoting off, pyarrow ends a row at every ``\\n`` and ``\\r``."""
    pa, pc, _ = _arrow()
    for name in names:
        col = table.column(name)
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            if pc.any(pc.match_substring(col, '"')).as_py():
                raise NotSure(f"column {name!r} has a quote")


#: The text the CSV readers parse at a time, cut at a line break (with quoting off no record spans two
#: lines). pyarrow parses a piece on every core while the rows of the one before go into the arrays,
#: and the next is read into a buffer used before: memory stays bounded whatever the file's length.
#: Measured (benchmarks/data_reading.py, 2 cores): 4 MiB pieces read 79 MB and 790 MB files as fast
#: as 8 MiB ones, with a third less peak memory at 200,000 rows; 2 MiB pieces are slower.
PIECE_BYTES = 4 << 20

#: pyarrow's parsing unit within a piece (a block per thread at a time).
BLOCK_BYTES = 1 << 20

#: Pieces parsed (on pyarrow's threads) while the caller takes the rows of the one before and the next
#: is read: one keeps the cores busy (two measured no faster, and hold more memory).
PARSED_AHEAD = 1


#: Room for the end of a line beyond a piece, in each text buffer.
_SLACK = 1 << 16

#: A buffer grown past this many pieces' size (a line longer than a piece) is not kept.
_KEPT_UP_TO = 4


class _Buffers:
    """Anonymous memory maps for the text, kept between reads (as many as one read uses, none over
    :data:`_KEPT_UP_TO`): a fresh map's pages fault in as text is first read into them, which measured
    a third of a 7.5 MB file's read. A page costs memory only once text is read into it."""

    def __init__(self):
        import threading

        self.free, self.lock = [], threading.Lock()

    def take(self, n):
        with self.lock:
            return [self.free.pop() if self.free else None for _ in range(n)]

    def give(self, bufs):
        with self.lock:
            for buf in bufs:
                if buf is not None and len(buf) <= _KEPT_UP_TO * (PIECE_BYTES + _SLACK) \
                        and len(self.free) < PARSED_AHEAD + 1:
                    self.free.append(buf)


_BUFFERS = _Buffers()


def text_pieces(stream, size=None, bufs=None, start=b""):
    """A binary stream's text as pyarrow buffers of about ``size`` bytes (:data:`PIECE_BYTES`), each
    ending just after a line break, the last at the end of the text. The buffers in ``bufs`` (a list
    of anonymous memory maps or None: a new one is made where needed, and left in the list) are read
    into in turn and reused, so a piece is valid until ``len(bufs)`` more are asked for (pyarrow's CSV
    reader copies what it keeps); a line longer than a piece grows its buffer. ``start``: text already
    read from the stream (:func:`header_line`'s), which comes first."""
    import mmap

    pa, _, _ = _arrow()
    size = size or PIECE_BYTES
    bufs = [None] if bufs is None else bufs
    turn, carry = 0, bytes(start)
    while True:
        held = len(carry)  # the text after the last piece's line break, first in this one
        want = held + max(size, held)  # a line longer than a piece: reading as much again keeps the copies linear
        if bufs[turn] is None or want > len(bufs[turn]):
            bufs[turn] = mmap.mmap(-1, want + _SLACK)  # a new one: a piece given may still view the old
        buf = bufs[turn]
        buf[:held] = carry
        view, got = memoryview(buf), held
        try:
            while got < want:
                n = stream.readinto(view[got:want])
                if not n:
                    break
                got += n
        except (OSError, ValueError, EOFError, *DECOMPRESS_ERRORS, pa.ArrowException) as exc:  # a corrupt stream
            raise NotSure(str(exc)) from None
        finally:
            view.release()
        if got == held:  # the end of the text
            if held:
                yield pa.py_buffer(memoryview(buf)[:held])
            return
        cut = buf.rfind(b"\n", held, got) + 1  # only the new text can hold the piece's last line break
        carry = buf[cut:got]
        if cut:
            yield pa.py_buffer(memoryview(buf)[:cut])
            turn = (turn + 1) % len(bufs)


def csv_pieces(stream, header, delimiter, kinds, size=None, start=b""):
    """(pyarrow Table, the number of bytes of text it was parsed from) of a CSV's rows after its header
    line, a piece of text at a time (:func:`text_pieces`): every column (the ones not asked for as text: the exact
    reader checks them too, so they must decode as UTF-8 and hold no quote), the asked-for ones typed
    by ``kinds`` ({name: "float" | "text"}); NotSure where pyarrow cannot vouch for a piece. A piece is
    parsed while the caller takes the rows of the one before and the next is read
    (:data:`PARSED_AHEAD`). ``start``: the text :func:`header_line` read, the header line first."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    pa, _, pcsv = _arrow()
    types = {name: (pa.float64() if kinds.get(name) == "float" else pa.string()) for name in header}
    # no null values: a float cell's text goes straight to the number parser, which refuses "" and "NA"
    # (the exact reader's to report), about a tenth of the parse saved
    convert = pcsv.ConvertOptions(column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False,
                                  null_values=[])
    parse, text = parse_options(delimiter), [h for h in header if kinds.get(h) != "float"]

    def table(piece, first):
        if not first and bytes(memoryview(piece)[:3]) == b"\xef\xbb\xbf":  # pyarrow would drop it: data here
            raise NotSure("a line starts with a byte-order mark")
        try:
            out = pcsv.read_csv(pa.BufferReader(piece), read_options=body_read_options(header, first),
                                parse_options=parse, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, OSError) as exc:
            raise NotSure(str(exc)) from None
        check_text(out, text)
        return out, piece.size

    ahead = PARSED_AHEAD
    bufs = _BUFFERS.take(ahead + 1)
    try:
        with ThreadPoolExecutor(ahead, thread_name_prefix="ffnn-csv") as parser:
            pending = deque()
            for i, piece in enumerate(text_pieces(stream, size, bufs, start)):
                try:
                    pending.append(parser.submit(table, piece, i == 0))
                except RuntimeError:  # no thread can start (a process at its limit): parse it here
                    pending.append(_done(table(piece, i == 0)))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:  # no parse is running now: the buffers are free for the next read
        _BUFFERS.give(bufs)


def _done(value):
    from concurrent.futures import Future

    future = Future()
    future.set_result(value)
    return future


class Rows:
    """Float64 rows gathered a piece at a time into one C-ordered array whose length is known only at
    the end: ``expect`` rows are reserved (pages of the reservation never written cost no memory), the
    array grows by half where they run out (a reallocation: a large array's pages are remapped, not
    copied, but NumPy zeroes the new rows, so they cost memory at once) and is trimmed to the rows given
    by :meth:`array`, after which no row can be added."""

    def __init__(self, width, expect):
        self.X, self.n = np.empty((max(int(expect), 1), width)), 0

    def add(self, columns):
        """Append the rows of ``columns`` (float64 pyarrow columns of one length, as :func:`stack`)."""
        if self.X is None:
            raise RuntimeError("the rows were already given")
        n = len(columns[0]) if columns else 0
        if self.n + n > self.X.shape[0]:  # (refcheck=False is safe: no view of X outlives add)
            self.X.resize((max(self.n + n, self.X.shape[0] * 3 // 2), self.X.shape[1]), refcheck=False)
        stack(columns, out=self.X, start=self.n)
        self.n += n

    def array(self):
        X, self.X = self.X, None
        X.resize((self.n, X.shape[1]), refcheck=False)
        return X


def parquet_file(path):
    """A Parquet file opened to read a column chunk a megabyte at a time rather than a row group's
    chunks whole before decoding: measured on 2,000,000 rows in two row groups, a fifth faster and a
    sixth less peak memory (benchmarks/data_reading.py)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)


def read_columnar_table(path, kind):
    """A Parquet or Arrow IPC/Feather file as (pyarrow Table, row offsets of its row groups or None)."""
    if kind == "parquet":
        f = parquet_file(path)
        sizes = [f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)]
        return f.read(), np.cumsum([0] + sizes)  # (not read_table: it imports pandas, via pyarrow.dataset)
    import pyarrow.feather as feather

    return feather.read_table(path, memory_map=False), None


def table_columns(table, names, kinds):
    """{name: pyarrow column} of ``table``'s columns: "float" columns cast to float64 (NotSure when a
    column is not numeric or has a null; :func:`stack` checks the values are finite and copies them
    into NumPy once), "text" ones as they are (for :func:`target_values`)."""
    pa, pc, _ = _arrow()
    out = {}
    for name in names:
        col = table.column(name)
        if kinds[name] == "text":
            out[name] = col
            continue
        if col.null_count:
            raise NotSure(f"column {name!r} has a missing value")
        t = col.type
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            col = _numbers_from_text(col, name)
        elif not (pa.types.is_integer(t) or pa.types.is_floating(t)):  # decimals: the exact reader rounds once
            raise NotSure(f"column {name!r} is of type {t}")
        if col.type != pa.float64():
            col = pc.cast(col, pa.float64(), safe=False)
        out[name] = col  # finiteness: checked by stack()
    return out


def stack(columns, block=8192, out=None, start=0):
    """The float64 columns (pyarrow columns, or NumPy arrays) as one C-ordered (N, D) array: the
    columns' chunks (a CSV block, a row group) are read in place and turned into rows by pyarrow
    (``RecordBatch.to_tensor``), a block of rows at a time so the block stays in cache, and copied once
    into the array; NotSure when a value is not finite. With ``out``, they fill
    ``out[start:start + N]`` instead (a file read a piece at a time into one array)."""
    pa, _, _ = _arrow()
    table = pa.table({str(j): c for j, c in enumerate(columns)})
    X = np.empty((table.num_rows, len(columns))) if out is None else out
    if not columns:
        return X
    for batch in table.to_batches(max_chunksize=block):  # chunks aligned across the columns
        rows = X[start:start + batch.num_rows]
        rows[...] = np.asarray(memoryview(batch.to_tensor(row_major=True)))  # (Tensor.to_numpy imports pandas)
        if not np.isfinite(rows).all():
            raise NotSure("a feature has a value that is not finite")
        start += batch.num_rows
    return X


#: The pyarrow types read as NumPy views of their data buffer (fixed width, one value per slot).
_NUMPY_TYPES = {"double": np.float64, "float": np.float32, "int64": np.int64, "int32": np.int32,
                "int16": np.int16, "int8": np.int8, "uint32": np.uint32, "uint16": np.uint16, "uint8": np.uint8}


def _numpy(values):
    """A pyarrow array or column without nulls, of a type in :data:`_NUMPY_TYPES`, as a NumPy array: a
    view of the data buffer (a column of several chunks is joined first). pyarrow's own ``to_numpy``
    imports pandas where it is installed, a fifth of a second on a first read."""
    if hasattr(values, "combine_chunks"):
        values = values.combine_chunks()
    dtype = _NUMPY_TYPES.get(str(values.type))
    if values.null_count or dtype is None:  # pragma: no cover - the callers rule these out
        raise NotSure(f"a column of type {values.type} with {values.null_count} missing values")
    size = np.dtype(dtype).itemsize
    return np.frombuffer(values.buffers()[1], dtype=dtype, count=len(values), offset=size * values.offset)


# What a decimal number looks like to both Python's float() and pyarrow's parser (after trimming)
_DECIMAL = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def _numbers_from_text(col, name):
    _, pc, _ = _arrow()
    trimmed = pc.utf8_trim_whitespace(col)
    if not pc.all(pc.match_substring_regex(trimmed, _DECIMAL)).as_py():
        raise NotSure(f"column {name!r} has a cell that is not a plain decimal number")
    return trimmed


def target_values(col, exact):
    """The target column (pyarrow, any type) by the rules of ``exact(cells) -> array`` (the row-by-row
    reader's, on lists of strings): numbers as float64 or int64 arrays, labels as text. The rules are
    per-cell "any"/"all" decisions, so they are applied to the distinct values and mapped back; a
    numeric column is taken as it is typed."""
    pa, pc, _ = _arrow()
    t = col.type
    if col.null_count:
        raise NotSure("the target has a missing value")
    if pa.types.is_integer(t) and not pa.types.is_uint64(t):
        return _numpy(col).astype(np.int64)
    if pa.types.is_floating(t):
        y = np.asarray(_numpy(col), dtype=np.float64)
        if not np.isfinite(y).all():
            raise NotSure("the target has a value that is not finite")
        return y
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise NotSure(f"the target is of type {t}")
    uniq = pc.unique(col)
    if len(uniq) <= 100_000:
        values = exact(uniq.to_pylist())  # raises NotSure itself (via the caller) on a bad cell
        return values[_numpy(pc.index_in(col, value_set=uniq))]
    trimmed = pc.utf8_trim_whitespace(col)
    if pc.all(pc.match_substring_regex(trimmed, r"^[+-]?[0-9]+$")).as_py() \
            or pc.any(pc.match_substring_regex(trimmed, r"^[+-]?0[0-9]")).as_py() \
            or not pc.all(pc.match_substring_regex(trimmed, _DECIMAL)).as_py():
        raise NotSure("the target needs the exact reader's rules")  # integers, identifiers or text
    y = np.asarray(_numpy(pc.cast(trimmed, pa.float64())), dtype=np.float64)
    if not np.isfinite(y).all():
        raise NotSure("the target has a value that is not finite")
    return y
