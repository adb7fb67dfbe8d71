"""Reading data sets (CSV, NPZ, Parquet, the embedded default), task inference, scaling and splits.

Every problem with a file is a :class:`DataError` naming the file and, where it applies, the
column and line.
"""

from __future__ import annotations

import csv
import math
import os
import re
import weakref

import numpy as np

from . import _columnar
from ._files import check_readable, printable
from .splits import split_indices as train_test_split

__all__ = ["DataError", "Dataset", "read_dataset", "load_default", "infer_task", "Scaler", "train_test_split",
           "encode_labels", "integer_valued", "whole_numbers"]


class DataError(ValueError):
    """A data file that cannot be used as it is."""


class Dataset:
    """Features ``X`` (N, D) float64, the raw target ``y`` (N,) or None, and their names."""

    def __init__(self, X, y, feature_names, target_name, source, start=0):
        self.X, self.y = X, y
        self.feature_names, self.target_name, self.source = list(feature_names), target_name, source
        self.start = start  # the index of the first row in its file (a chunk of :func:`read_chunks`)

    def __len__(self):
        return self.X.shape[0]


def load_default() -> Dataset:
    """scikit-learn's bundled digits (1,797 8×8 images, 10 classes): no network needed."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return Dataset(d.data.astype(np.float64), d.target.astype(np.int64),
                   [f"pixel_{i // 8}_{i % 8}" for i in range(64)], "digit", "digits (embedded default)")


def read_dataset(path, target=None, *, require_target=True, expected_features=None) -> Dataset:
    """Read a data set: CSV with a header row (also ``.tsv``, and compressed ``.csv.gz``, ``.csv.zst``,
    ``.bz2``, ``.xz``), Parquet, Arrow IPC/Feather (``.feather``, ``.arrow``, ``.ipc``), ``.npz`` (arrays
    ``X`` and ``y``), ``"-"`` (CSV on standard input), or a pandas DataFrame or pyarrow Table in memory.

    ``target`` names the target column (default: the last column); with ``require_target=False`` a
    file may lack it (prediction). ``expected_features`` (names) selects and orders feature columns
    when the file has a header. Tables are read as typed columns by pyarrow where it is installed
    (:mod:`ffnn._columnar`); a file it cannot vouch for is read row by row, which gives the same data
    or an error naming the line (CSV) or the row and its row group (Parquet).
    """
    if _is_memory_table(path):
        return _read_memory_table(path, target, require_target, expected_features)
    if isinstance(path, str) and path == "-":
        import sys

        return _read_csv_dataset("<stdin>", ",", "", target, require_target, expected_features,
                                 data=sys.stdin.buffer.read())
    path = os.fspath(path)
    check_readable(path, "data file", DataError)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        return _read_npz(path, require_target)
    if ext in (".parquet", ".pq", ".feather", ".arrow", ".ipc"):
        return _read_columnar(path, "parquet" if ext in (".parquet", ".pq") else "feather", target, require_target,
                              expected_features)
    delimiter, compression = _columnar.csv_format(path)
    return _read_csv_dataset(path, delimiter, compression, target, require_target, expected_features)


def read_chunks(path, target=None, *, expected_features=None, rows=1 << 16):
    """The features of a data file (for prediction: no target is read) as Datasets of at most about
    ``rows`` rows, in file order, each with ``.start``, its first row's index. CSV (plain or
    compressed) and Parquet stream: memory stays bounded whatever the file's length. Where the fast
    reader cannot vouch for a chunk, the file is read whole by the exact reader (which names the line
    of a bad cell), and the rows not yet given follow from it."""
    done = 0
    try:
        for X, names in _stream_features(path, target, expected_features, rows):
            yield Dataset(X, None, names, target, os.fspath(path), start=done)
            done += X.shape[0]
        return
    except _columnar.NotSure:
        pass
    whole = read_dataset(path, target, require_target=False, expected_features=expected_features)
    for start in range(done, len(whole), rows):
        yield Dataset(whole.X[start:start + rows], None, whole.feature_names, whole.target_name, whole.source,
                      start=start)


def _streamed_kind(path):
    """"parquet" or "csv" (plain or compressed, by its name) for a file the chunked readers stream;
    NotSure for anything read whole (an in-memory table, standard input, .npz, Arrow IPC) or when
    pyarrow is missing. The one place that decides, for :func:`read_target` and :func:`read_chunks`."""
    if _is_memory_table(path) or not _columnar.available() or (isinstance(path, str) and path == "-"):
        raise _columnar.NotSure("not a streamable file")
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in (".parquet", ".pq"):
        return "parquet"
    if ext in (".npz", ".feather", ".arrow", ".ipc"):
        raise _columnar.NotSure("read whole")
    return "csv"


def read_target(path, target):
    """The target column alone, its values by the readers' rules over the whole column (for evaluation
    with the features in chunks: :func:`read_chunks`); NotSure where the fast readers do not apply."""
    kind = _streamed_kind(path)
    import pyarrow as pa

    path = os.fspath(path)
    try:
        if kind == "parquet":
            f = _columnar.parquet_file(path)
            if target not in f.schema_arrow.names:
                raise _columnar.NotSure("no such column")
            col = f.read(columns=[target]).column(target)
        else:
            import pyarrow.csv as pcsv

            delimiter, compression = _columnar.csv_format(path)
            with _csv_stream(path, compression) as stream:
                raw, _ = _columnar.header_line(stream, delimiter)
            matches = [h for h in raw if h.strip() == target]
            if len(matches) != 1 or len(set(raw)) != len(raw):
                raise _columnar.NotSure("the target is not one named column")
            convert = pcsv.ConvertOptions(column_types={matches[0]: pa.string()}, include_columns=matches,
                                          strings_can_be_null=False)
            table = pcsv.read_csv(_binary_source(path, compression), read_options=_columnar.body_read_options(raw),
                                  parse_options=_columnar.parse_options(delimiter), convert_options=convert)
            _columnar.check_text(table, matches)
            col = table.column(matches[0])
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _columnar.NotSure(str(exc)) from None
    if len(col) == 0:
        raise _columnar.NotSure("no rows")
    return _target_from_column(path, target, col)


def _stream_features(path, target, expected_features, rows):
    """(X, feature names) per chunk, from pyarrow's streaming readers; NotSure where they do not apply."""
    kind = _streamed_kind(path)
    path = os.fspath(path)
    check_readable(path, "data file", DataError)
    if kind == "parquet":
        try:
            f = _columnar.parquet_file(path)
        except Exception as exc:
            raise DataError(f"data file {path!r} is not a readable Parquet file: {_one_line(exc)}") from None
        header = list(f.schema_arrow.names)
        _unique(path, header)
        _, cols = _select_columns(path, header, target, False, expected_features)
        names = [header[c] for c in cols]
        batches = f.iter_batches(batch_size=rows, columns=names)
    else:
        delimiter, compression = _columnar.csv_format(path)
        names, batches = _csv_batches(path, delimiter, compression, target, expected_features)
    import pyarrow as pa

    empty = True
    kinds = dict.fromkeys(names, "float")
    features = [str(n).strip() if kind == "csv" else str(n) for n in names]
    try:
        for batch in batches:
            for start in range(0, batch.num_rows, rows):  # at most ``rows`` rows a chunk
                part = batch.slice(start, rows)
                empty = False
                yield _columnar.stack(list(_columnar.table_columns(part, names, kinds).values())), features
    except (pa.ArrowException, OSError) as exc:  # a corrupt page: the data file's problem, not the output's
        if isinstance(exc, pa.ArrowInvalid) and kind == "csv":
            raise _columnar.NotSure(str(exc)) from None
        raise DataError(f"data file {path!r} is not readable: {_one_line(exc)[:200]}") from None
    if empty:
        raise _columnar.NotSure("no rows")


def _csv_batches(path, delimiter, compression, target, expected_features):
    """(feature columns' names as written, Tables of the file's rows a piece at a time): the header and
    the rows from one open of the file."""
    stream = _csv_stream(path, compression)
    try:
        raw, head, _, _, cols = _csv_header(path, stream, delimiter, target, False, expected_features)
    except BaseException:
        stream.close()
        raise
    names = [raw[c] for c in cols]

    def batches():
        with stream:
            for table, _ in _columnar.csv_pieces(stream, raw, delimiter, dict.fromkeys(names, "float"), start=head):
                yield table

    rows = batches()
    weakref.finalize(rows, stream.close)  # (a generator dropped before it starts never enters its ``with``)
    return names, rows


def _is_memory_table(obj):
    kind = type(obj).__module__.split(".")[0]
    return kind in ("pandas", "pyarrow") and hasattr(obj, "columns")


def _read_memory_table(table, target, require_target, expected_features):
    import pyarrow as pa

    source = f"<{type(table).__name__}>"
    try:
        if not isinstance(table, pa.Table):
            table = pa.Table.from_batches([table]) if isinstance(table, pa.RecordBatch) else \
                pa.Table.from_pandas(table, preserve_index=False)
        table = table.rename_columns([str(c) for c in table.column_names])
    except (pa.ArrowException, ValueError, TypeError, AttributeError) as exc:
        raise DataError(f"{source} cannot be read as a table of columns: {_one_line(exc)[:200]}") from None
    return _dataset_from_arrow(source, table, None, target, require_target, expected_features)


def _read_columnar(path, kind, target, require_target, expected_features):
    what = "Parquet" if kind == "parquet" else "Arrow IPC/Feather"
    if not _columnar.available():
        raise DataError(f"reading {what} ({path!r}) needs pyarrow: pip install pyarrow")
    try:
        if kind == "parquet":
            f = _columnar.parquet_file(path)  # its footer: the schema, the row groups, the declared size
            _unique(path, f.schema_arrow.names)
            _columnar.check_size(path, f.metadata.num_rows, f.metadata.num_columns, DataError)
            try:
                return _parquet_by_row_groups(path, f, target, require_target, expected_features)
            except _columnar.NotSure:
                pass  # the whole table, and the row-by-row conversion where it must
        table, groups = _columnar.read_columnar_table(path, kind)
        if kind != "parquet":  # memory-mapped: its row and column counts before anything is converted
            _columnar.check_size(path, table.num_rows, table.num_columns, DataError)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"data file {path!r} is not a readable {what} file: {_one_line(exc)}") from None
    return _dataset_from_arrow(path, table, groups, target, require_target, expected_features)


def _parquet_by_row_groups(path, f, target, require_target, expected_features):
    """A Parquet file's Dataset (``f``: its open ``ParquetFile``) read a row group at a time into an
    array of the size its metadata declares: only the columns asked for, and at most one row group
    beside the features (the whole table would be a second copy of them). NotSure where :func:`_dataset_from_arrow`'s exact
    conversion must decide (a missing value, a column that is not numeric, a cell of the target)."""
    import pyarrow as pa

    header = [str(h) for h in f.schema_arrow.names]
    if f.metadata.num_rows == 0:
        raise _columnar.NotSure("no rows")
    t_idx, feature_cols = _select_columns(path, header, target, require_target, expected_features)
    need_target = t_idx is not None and require_target
    kinds = _column_kinds(header, feature_cols, t_idx, need_target)
    X = np.empty((f.metadata.num_rows, len(feature_cols)))
    start, target_chunks = 0, []
    try:
        for g in range(f.num_row_groups):
            part = f.read_row_group(g, columns=list(kinds))
            cols = _columnar.table_columns(part, list(kinds), kinds)
            _columnar.stack([cols[header[c]] for c in feature_cols], out=X, start=start)
            if need_target:
                target_chunks.extend(cols[header[t_idx]].chunks)
            start += part.num_rows
            del part, cols  # before the next row group is read: one at a time beside the array
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _columnar.NotSure(str(exc)) from None
    if start != X.shape[0]:
        raise _columnar.NotSure("the row groups do not add up to the rows the file declares")
    y = None
    if need_target:
        col = pa.chunked_array(target_chunks, type=f.schema_arrow.field(header[t_idx]).type)
        y = _target_from_column(path, header[t_idx], col)
    return Dataset(X, y, [header[c] for c in feature_cols], header[t_idx] if t_idx is not None else target, path)


def _column_kinds(names, feature_cols, t_idx, need_target):
    """{column name: "float" | "text"}: what the columnar readers read of a file, the features as
    numbers and (when it is needed) the target as it is written, for the exact reader's rules."""
    kinds = {names[c]: "float" for c in feature_cols}
    if need_target:
        kinds[names[t_idx]] = "text"
    return kinds


def _dataset_from_arrow(path, table, groups, target, require_target, expected_features):
    """A Dataset from a pyarrow Table: typed columns straight to NumPy, or (NotSure) the row-by-row
    conversion, whose errors name the row (and, for Parquet, its row group)."""
    header = [str(h) for h in table.column_names]
    _unique(path, header)
    if table.num_rows == 0:
        raise DataError(f"data file {path!r} has no rows")
    t_idx, feature_cols = _select_columns(path, header, target, require_target, expected_features)
    need_target = t_idx is not None and require_target
    try:
        kinds = _column_kinds(header, feature_cols, t_idx, need_target)
        cols = _columnar.table_columns(table, list(kinds), kinds)
        X = _columnar.stack([cols[header[c]] for c in feature_cols])
        y = _target_from_column(path, header[t_idx], cols[header[t_idx]]) if need_target else None
    except _columnar.NotSure:
        rows = _rows_from_table(table, header)
        return _table_to_dataset(path, header, rows, target, require_target, expected_features,
                                 where=_row_groups(groups))
    return Dataset(X, y, [header[c] for c in feature_cols], header[t_idx] if t_idx is not None else target, path)


def _target_from_column(path, name, col):
    def exact(cells):
        try:
            return _target(path, name, cells)
        except DataError:
            raise _columnar.NotSure("the target has a bad cell") from None

    return _columnar.target_values(col, exact)


def _rows_from_table(table, header):
    cols = [table.column(name).to_pylist() for name in header]
    return [["" if v is None else str(v) for v in r] for r in zip(*cols)]


def _row_groups(groups):
    """``where(i)``: row i's place in a table (its row group too, for Parquet)."""
    if groups is None or len(groups) <= 2:
        return lambda i: f"row {i + 1}"

    def where(i):
        g = int(np.searchsorted(groups, i, side="right")) - 1
        return f"row {i + 1} (row group {g}, its row {i - int(groups[g]) + 1})"

    return where


def _read_csv_dataset(path, delimiter, compression, target, require_target, expected_features, data=None):
    """A CSV file's Dataset: pyarrow's reader where it can vouch for the result, else row by row."""
    if _columnar.available():
        try:
            return _fast_csv(path, delimiter, compression, target, require_target, expected_features, data)
        except _columnar.NotSure:
            pass

    def check_header(header):  # as the fast reader does: the header's problems before the rows'
        _unique(path, header)
        _select_columns(path, header, target, require_target, expected_features)

    header, rows, lines = _read_csv(path, delimiter, compression, data, check_header)
    return _table_to_dataset(path, header, rows, target, require_target, expected_features,
                             where=lambda i: f"line {lines[i]}")


def _fast_csv(path, delimiter, compression, target, require_target, expected_features, data):
    """A CSV file's Dataset from pyarrow's parser, a piece of text at a time into one array
    (:func:`ffnn._columnar.csv_pieces`); NotSure where it cannot vouch for the result."""
    import pyarrow as pa

    with _csv_stream(path, compression, data) as stream:  # the header and the rows from one open of the file
        raw, head, header, t_idx, feature_cols = _csv_header(path, stream, delimiter, target, require_target,
                                                             expected_features)
        size = len(data) if data is not None else None if compression else os.path.getsize(path)
        if size is not None:  # a feature cell takes at least a character and its delimiter
            _columnar.check_size(path, size // max(1, 2 * len(raw)), len(feature_cols), DataError,
                                 how="may hold (from its size)")
        need_target = t_idx is not None and require_target
        kinds = _column_kinds(raw, feature_cols, t_idx, need_target)
        rows, target_chunks = None, []
        for table, nbytes in _columnar.csv_pieces(stream, raw, delimiter, kinds, start=head):
            cols = _columnar.table_columns(table, list(kinds), kinds)
            if rows is None:  # the rows the file will hold, from the first piece's (over-reserving costs nothing)
                expect = table.num_rows * (size / max(nbytes, 1) * 1.02 if size else 4) + 1024
                rows = _columnar.Rows(len(feature_cols), expect)
            rows.add([cols[raw[c]] for c in feature_cols])
            if need_target:
                target_chunks.extend(cols[raw[t_idx]].chunks)
            if size is None:  # compressed: its length shows as it is read
                _columnar.check_size(path, rows.n, len(feature_cols), DataError, how="holds at least")
    if rows is None or rows.n == 0:
        raise _columnar.NotSure("no rows")
    y = _target_from_column(path, header[t_idx], pa.chunked_array(target_chunks, type=pa.string())) \
        if need_target else None
    return Dataset(rows.array(), y, [header[c] for c in feature_cols], header[t_idx] if t_idx is not None else target,
                   path)


def _csv_header(path, stream, delimiter, target, require_target, expected_features):
    """(header as written, the bytes read so far, header names stripped, the target's column or None,
    the feature columns) of a CSV stream, checked as the exact reader checks them."""
    raw, head = _columnar.header_line(stream, delimiter)
    header = [h.strip() for h in raw]
    if not any(header):
        raise _columnar.NotSure("no header")
    _unique(path, header)
    t_idx, feature_cols = _select_columns(path, header, target, require_target, expected_features)
    return raw, head, header, t_idx, feature_cols


def _csv_stream(path, compression, data=None):
    """A CSV file as a binary stream (decompressed; ``data``: the bytes of standard input)."""
    import io

    if data is not None:
        return io.BytesIO(data)
    source = _binary_source(path, compression)
    return open(source, "rb", buffering=0) if isinstance(source, str) else source


def _binary_source(path, compression):
    """A CSV file as pyarrow reads it: its path, or a decompressing stream (.xz through the standard
    library: pyarrow does not detect it)."""
    if compression == ".xz":
        import lzma

        return lzma.open(path, "rb")
    if compression:
        import pyarrow as pa

        return pa.input_stream(path, compression="detect")
    return path


def _open_text(path, compression, data):
    import io

    if data is not None:
        return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    if compression and compression not in (".gz", ".bz2", ".xz"):  # zst, lz4: pyarrow's codecs
        if _columnar.available():
            import pyarrow as pa

            stream = pa.input_stream(path, compression="detect")
            return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        import bz2
        import gzip
        import lzma

    if compression:
        import bz2
        import gzip
        import lzma

        opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(compression)
        if opener is None:
            raise DataError(f"reading {compression} files ({path!r}) needs pyarrow: pip install pyarrow")
        return opener(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, newline="", encoding="utf-8-sig")


def _read_csv(path, delimiter=",", compression="", data=None, check_header=None):
    """(header, rows as lists of cells, the line each row starts on) of a CSV file, row by row with
    Python's csv module; ``check_header(header)`` runs on the header (names stripped) before any row
    is read."""
    import sys

    start = 1  # the line the record being read starts on
    limit = csv.field_size_limit(sys.maxsize)  # a long cell is a cell (its size is bounded by the file's)
    try:
        with _open_text(path, compression, data) as f:
            reader = csv.reader(f, strict=True, delimiter=delimiter)
            header, rows, lines = next(reader, None), [], []
            if header is None or not any(h.strip() for h in header):
                raise DataError(f"data file {path!r} has no header row")
            if check_header is not None:
                check_header([h.strip() for h in header])
            start = reader.line_num + 1
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    rows.append(row)
                    lines.append(start)
                start = reader.line_num + 1
    except UnicodeDecodeError:
        raise DataError(f"data file {path!r} is not a text CSV file (not UTF-8)") from None
    except csv.Error as exc:
        why = ("a quoted cell that starts on this line is never closed" if "unexpected end of data" in str(exc)
               else f"not valid CSV ({_one_line(exc)})")
        raise DataError(f"data file {path!r}, line {start}: {why}") from None
    except (OSError, EOFError, *_columnar.DECOMPRESS_ERRORS) as exc:
        raise DataError(f"data file {path!r} cannot be decompressed: {_one_line(exc)}") from None
    finally:
        csv.field_size_limit(limit)
    header = [h.strip() for h in header]
    for lineno, row in zip(lines, rows):
        if len(row) != len(header):
            raise DataError(f"data file {path!r}, line {lineno}: {len(row)} cells where the header has {len(header)}")
    if not rows:
        raise DataError(f"data file {path!r} has a header but no data rows")
    return header, rows, lines


#: An .npz member larger than this (inflated) may be compressed at most :data:`_MAX_NPZ_RATIO` to 1:
#: real numbers compress a few times, a one-hot matrix a few dozen; a megabyte that inflates to
#: gigabytes (a "zip bomb") is refused before it is read. The same array saved uncompressed loads.
_NPZ_RATIO_FROM = 64 * 2**20
_MAX_NPZ_RATIO = 100


def _check_npz_members(path, z):
    """Each array's header against its member's size, and its compression ratio, before any array
    is inflated: a member that declares more (or fewer) bytes than it holds, or inflates from a few
    megabytes to gigabytes, is refused without reading it."""
    from numpy.lib import format as npy

    for name in ("X", "y"):
        if name not in z.files:
            continue
        member = f"{name}.npy" if f"{name}.npy" in z.zip.namelist() else name
        info = z.zip.getinfo(member)
        if info.file_size > _NPZ_RATIO_FROM and info.file_size > _MAX_NPZ_RATIO * max(info.compress_size, 1):
            raise DataError(f"data file {path!r}: {name} inflates from {info.compress_size} to {info.file_size} "
                            f"bytes (more than {_MAX_NPZ_RATIO}:1); ffnn refuses such ratios for arrays over "
                            f"{_NPZ_RATIO_FROM // 2**20} MiB. Save it with np.savez (uncompressed) to load it")
        with z.zip.open(info) as f:
            version = npy.read_magic(f)
            read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = read(f, max_header_size=10_000)
            if dtype.hasobject:
                raise DataError(f"data file {path!r}: {name} holds Python objects; ffnn reads numbers and text only")
            need = f.tell() + math.prod(shape) * dtype.itemsize
        if need != info.file_size:
            raise DataError(f"data file {path!r} is corrupted: {name} declares shape {shape} of {dtype} "
                            f"({need} bytes with its header), its member holds {info.file_size}")


def _read_npz(path, require_target):
    try:
        with np.load(path, allow_pickle=False) as z:
            if "X" not in z.files:
                raise DataError(f"data file {path!r} has no array 'X' (it has: {', '.join(z.files) or 'none'})")
            _check_npz_members(path, z)
            X = z["X"]
            y = z["y"] if "y" in z.files else None
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(f"data file {path!r} is not a plain .npz of numeric arrays: {_one_line(exc)}") from None
    except Exception as exc:
        raise DataError(f"data file {path!r} is not a readable .npz file: {_one_line(exc)}") from None
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise DataError(f"data file {path!r}: X must be a 2-D numeric array, got shape {X.shape} dtype {X.dtype}")
    X = X.astype(np.float64)
    if not np.all(np.isfinite(X)):
        r, c = np.argwhere(~np.isfinite(X))[0]
        raise DataError(f"data file {path!r}: X has a NaN or infinite value (row {r}, column {c})")
    if y is None and require_target:
        raise DataError(f"data file {path!r} has no array 'y' for the target")
    if y is not None:
        y = y.reshape(len(y), -1)[:, 0] if y.ndim > 1 and y.shape[1] == 1 else y
        if y.ndim != 1 or len(y) != len(X):
            raise DataError(f"data file {path!r}: y must be 1-D with one entry per row of X")
        y = _npz_target(path, y)
    if len(X) == 0 or X.shape[1] == 0:
        raise DataError(f"data file {path!r}: X has shape {X.shape}; it needs rows and feature columns")
    return Dataset(X, y, [f"x{i}" for i in range(X.shape[1])], "y", path)


def _npz_target(path, y):
    """y as numbers (checked finite) or text labels (bytes decoded as UTF-8)."""
    if y.dtype.kind == "S":
        try:
            return np.array([v.decode("utf-8") for v in y.tolist()], dtype=str)
        except UnicodeDecodeError:
            raise DataError(f"data file {path!r}: y holds bytes that are not UTF-8 text") from None
    if y.dtype.kind == "b":
        return y.astype(np.int64)
    if y.dtype.kind in "iuf":
        bad = ~np.isfinite(y.astype(np.float64))
        if bad.any():
            raise DataError(f"data file {path!r}: y has a NaN or infinite value (row {int(np.flatnonzero(bad)[0])})")
        return y
    if y.dtype.kind == "U":
        for i, v in enumerate(y.tolist()):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise DataError(f"data file {path!r}: y holds text that is not valid Unicode (row {i}: a lone "
                                f"surrogate)") from None
        return y
    raise DataError(f"data file {path!r}: y must hold numbers or text, got dtype {y.dtype}")


# Integers written with a leading zero ("01", "007") are identifiers, not numbers: they keep their text.
_LEADING_ZERO = re.compile(r"^[+-]?0[0-9]")


_INTEGER = re.compile(r"^[+-]?[0-9]+$")


def _float(text):
    """A CSV cell as a float; Python's float() also takes "1_0" (as 10), which a CSV file does not mean."""
    if "_" in text:
        raise ValueError(f"could not convert string to float: {text!r}")
    return float(text)


def _parse_float(cell):
    cell = cell.strip()
    if cell == "":
        return math.nan
    return _float(cell)


def _cell(text, limit=40):
    """A cell's text for a message: its repr, cut to ``limit`` characters."""
    r = repr(text)
    return r if len(r) <= limit else r[:limit - 5] + "…" + r[-4:]


def _one_line(exc):
    """An exception's text on one line, control characters escaped (other libraries' messages)."""
    return printable(" ".join(str(exc).split()))


def _unique(path, header):
    seen = set()
    for name in header:
        if name in seen:
            raise DataError(f"data file {path!r} has two columns named {printable(name)!r}; column names must differ")
        seen.add(name)


def _select_columns(path, header, target, require_target, expected_features):
    """(the target's column index or None, the feature columns' indices) of a header."""
    columns = ", ".join(printable(h) for h in header)
    if target is not None and target not in header:
        if require_target:
            raise DataError(f"data file {path!r} has no column {target!r} (columns: {columns})")
        t_idx = None
    elif target is not None:
        t_idx = header.index(target)
    elif expected_features is not None:
        t_idx = None
    else:
        t_idx = len(header) - 1 if require_target else None
    feature_cols = [i for i in range(len(header)) if i != t_idx]
    missing = [f for f in expected_features if f not in header] if expected_features is not None else []
    if expected_features is not None and not missing:
        feature_cols = [header.index(f) for f in expected_features]
    elif len(missing) < len(expected_features or ()):  # some of the model's columns are there: name the rest
        shown = ", ".join(repr(printable(f)) for f in missing[:5]) + (f" and {len(missing) - 5} more"
                                                                      if len(missing) > 5 else "")
        raise DataError(f"data file {path!r} has no column{'s' if len(missing) > 1 else ''} {shown}: the model was trained on "
                        f"{len(expected_features)} named features and finds {len(expected_features) - len(missing)} "
                        f"of them here")
    elif expected_features is not None and len(feature_cols) != len(expected_features):
        raise DataError(f"data file {path!r} has {len(feature_cols)} feature columns; the model expects "
                        f"{len(expected_features)} ({printable(', '.join(expected_features))})")
    if not feature_cols:
        raise DataError(f"data file {path!r} has no feature columns besides the target")
    return t_idx, feature_cols


def _table_to_dataset(path, header, rows, target, require_target, expected_features, where=None):
    """The row-by-row reader's Dataset from cells as text; ``where(i)``: row i's place in the file."""
    where = where or (lambda i: f"line {i + 2}")
    _unique(path, header)
    t_idx, feature_cols = _select_columns(path, header, target, require_target, expected_features)
    X = _features(path, header, rows, feature_cols, where)
    # Prediction reads only the features: a target column there, even a blank one, is ignored.
    y = (_target(path, header[t_idx], [row[t_idx] for row in rows], where)
         if t_idx is not None and require_target else None)
    return Dataset(X, y, [header[c] for c in feature_cols], header[t_idx] if t_idx is not None else target, path)


def _features(path, header, rows, feature_cols, where):
    X = np.empty((len(rows), len(feature_cols)))
    for j, c in enumerate(feature_cols):
        for i, row in enumerate(rows):
            try:
                X[i, j] = _parse_float(row[c])
            except ValueError:
                raise DataError(f"data file {path!r}, {where(i)}: column {header[c]!r} is not numeric "
                                f"({_cell(row[c])}); encode it as numbers or drop it") from None
        bad = ~np.isfinite(X[:, j])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"data file {path!r}, {where(i)}: column {header[c]!r} has a missing, NaN or "
                            f"infinite value ({_cell(rows[i][c])})")
    return X


def _target(path, name, cells, where=None):
    """The target column: numbers when every cell is one (and finite), else text labels."""
    where = where or (lambda i: f"line {i + 2}")
    raw = [v.strip() for v in cells]
    for i, v in enumerate(raw):
        if v == "" or v.lower() in ("nan", "na", "null", "none"):
            raise DataError(f"data file {path!r}, {where(i)}: target column {name!r} is missing")
    if any(_LEADING_ZERO.match(v) for v in raw):
        return np.array(raw, dtype=str)
    if all(_INTEGER.match(v) for v in raw):  # integers stay exact (a float rounds those beyond 2**53)
        try:
            return np.array([int(v) for v in raw], dtype=np.int64)
        except OverflowError:  # beyond int64: labels, kept as written
            return np.array(raw, dtype=str)
    try:
        y = np.array([_float(v) for v in raw])
    except ValueError:
        return np.array(raw, dtype=str)
    bad = ~np.isfinite(y)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"data file {path!r}, {where(i)}: target column {name!r} has an infinite value ({raw[i]!r})")
    return y


#: Floats up to 2**53 in magnitude are exact integers when integral; beyond, every float is integral
#: and the integers no longer count one by one, so they are not read as class labels.
_EXACT_INTEGERS = 2.0**53


def whole_numbers(y) -> np.ndarray:
    """Elementwise: is each entry of numeric ``y`` a whole number a float represents exactly (|v| ≤ 2**53)?"""
    y = np.asarray(y)
    if y.dtype.kind in "biu":
        return np.ones(y.shape, dtype=bool)
    if y.dtype.kind != "f":
        return np.zeros(y.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return (np.abs(y) <= _EXACT_INTEGERS) & (y == np.round(y))


def integer_valued(y) -> bool:
    """Whether numeric ``y`` holds only whole numbers that a float represents exactly (|v| ≤ 2**53)."""
    return bool(np.all(whole_numbers(y)))


def infer_task(y) -> tuple[str, str]:
    """("classify" | "regress", the reason), from the target's values."""
    if y.dtype.kind in "USO":
        return "classify", "the target holds text labels"
    values = np.unique(y)
    if integer_valued(values) and len(values) <= max(2, min(50, len(y) // 5)):
        return "classify", f"the target holds {len(values)} distinct integer values"
    return "regress", f"the target holds {len(values)} distinct numeric values"


def encode_labels(y, classes=None):
    """(class labels, integer codes): labels sorted; with ``classes`` given, unknown labels are an error."""
    if classes is None:
        classes = np.unique(y)
    classes = np.asarray(classes)
    lookup = {c: i for i, c in enumerate(classes.tolist())}
    try:
        codes = np.array([lookup[v] for v in y.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise DataError(f"label {exc.args[0]!r} was not seen in training (classes: {classes.tolist()})") from None
    return classes, codes


def _overflow_safe(X, direct, rearranged):
    """``direct()``, with ``rearranged()`` (the same value, computed in an order that cannot overflow
    on the way) where the direct form is not finite for finite X."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = direct()
        bad = ~np.isfinite(out) & np.isfinite(X)
        if bad.any():
            out = np.where(bad, rearranged(), out)
    return out


class Scaler:
    """x' = (x − shift) / scale per column: "standard" (mean, std), "minmax" (min, max − min), "none".

    Constant columns get scale 1, so they map to 0 instead of dividing by zero.
    """

    KINDS = ("standard", "minmax", "none")

    def __init__(self, kind="standard", shift=None, scale=None):
        if kind not in self.KINDS:
            raise ValueError(f"unknown scaling {kind!r}; known: {', '.join(self.KINDS)}")
        self.kind, self.shift, self.scale = kind, shift, scale

    def __repr__(self):
        width = "not fitted" if self.shift is None else f"{np.size(self.shift)} features"
        return f"Scaler({self.kind!r}, {width})"

    def fit(self, X):
        """Learn shift and scale from X (N, d). Values near the float range are scaled without
        overflow (the mean and deviation of X / max|X| per column, times max|X|); a column whose
        spread still exceeds the float range is a ValueError naming it."""
        d = X.shape[1]
        with np.errstate(over="ignore", invalid="ignore"):
            if self.kind == "standard":
                self.shift, self.scale = X.mean(axis=0), X.std(axis=0)
                if not (np.all(np.isfinite(self.shift)) and np.all(np.isfinite(self.scale))):
                    m = np.max(np.abs(X), axis=0)
                    m = np.where((m > 0) & np.isfinite(m), m, 1.0)
                    self.shift, self.scale = (X / m).mean(axis=0) * m, (X / m).std(axis=0) * m
            elif self.kind == "minmax":
                self.shift, self.scale = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
            else:
                self.shift, self.scale = np.zeros(d), np.ones(d)
        bad = np.flatnonzero(~(np.isfinite(self.shift) & np.isfinite(self.scale)))
        if bad.size:
            raise ValueError(f"column {int(bad[0])} spans more than the float range; rescale it or use "
                             f"another scaling")
        self.scale = np.where(self.scale > 0, self.scale, 1.0)
        return self

    def transform(self, X):
        """(X − shift) / scale; where X − shift alone would overflow (values of opposite sign near the
        float range), X / scale − shift / scale, which does not."""
        return _overflow_safe(X, lambda: (X - self.shift) / self.scale,
                              lambda: X / self.scale - self.shift / self.scale)

    def inverse(self, X):
        """X · scale + shift; where X · scale alone would overflow, (X + shift / scale) · scale. A
        value beyond the float range either way is ±inf (without a warning)."""
        return _overflow_safe(X, lambda: X * self.scale + self.shift,
                              lambda: (X + self.shift / self.scale) * self.scale)
