"""The columnar readers (pyarrow) against the row-by-row reader: the same data or the same error, for
every file; and the formats they add (.tsv, compressed CSV, Arrow IPC/Feather, standard input, tables
in memory), Parquet errors by row group, and the memory budget checked before decoding."""

import gzip
import io
import string
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

from ffnn import _columnar  # noqa: E402
from ffnn import data as data_module  # noqa: E402
from ffnn.data import DataError, read_dataset  # noqa: E402


def _both(path, monkeypatch, **kw):
    """(fast result, exact result): each a Dataset or the DataError's text."""
    def read():
        try:
            return read_dataset(path, **kw)
        except DataError as exc:
            return str(exc)

    def not_sure(*a, **k):
        raise _columnar.NotSure("the test asks for the exact reader")

    fast = read()
    with monkeypatch.context() as m:  # the row-by-row reader, for every format
        m.setattr(_columnar, "table_columns", not_sure)
        m.setattr(data_module, "_fast_csv", not_sure)
        exact = read()
    return fast, exact


def _same(fast, exact):
    assert type(fast) is type(exact), (fast, exact)
    if isinstance(fast, str):
        assert fast == exact
        return
    np.testing.assert_array_equal(fast.X, exact.X)
    assert fast.X.dtype == exact.X.dtype == np.float64
    assert fast.feature_names == exact.feature_names and fast.target_name == exact.target_name
    if exact.y is None:
        assert fast.y is None
    else:
        assert fast.y.dtype.kind == exact.y.dtype.kind and fast.y.tolist() == exact.y.tolist()


NUMBERS = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
                    st.integers(-10**20, 10**20).map(str),
                    st.sampled_from(["1e5", ".5", "5.", "-0", "+3", " 7 ", "1_0", "0x10", "nan", "inf", "",
                                     "1e400", "١٢", "infinity", "1.5e+03"]))
LABELS = st.one_of(st.integers(-5, 5).map(str), st.sampled_from(["01", "007", "a", "B", "nan", "", " 3", "2.5",
                                                                 str(2**63), str(2**53 + 1), "x y", "é"]),
                   st.text(alphabet=string.ascii_letters + "0123456789 .-+", min_size=1, max_size=4))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(NUMBERS, NUMBERS, LABELS), min_size=1, max_size=8),
       piece=st.sampled_from([None, 1, 7, 64]), end=st.sampled_from(["\n", "\r\n", ""]))
def test_fast_and_exact_csv_readers_agree(rows, piece, end, tmp_path, monkeypatch):
    """Also with the text parsed a few bytes at a time (a piece per line or less), CRLF line ends and
    no line break at the end."""
    path = tmp_path / "d.csv"
    lines = ["a,b,y"] + [",".join(f'"{c}"' if "," in c else c for c in r) for r in rows]
    path.write_bytes(((end or "\n").join(lines) + end).encode("utf-8"))
    monkeypatch.setattr(_columnar, "PIECE_BYTES", piece or _columnar.PIECE_BYTES)
    _same(*_both(path, monkeypatch))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(labels=st.lists(LABELS, min_size=1, max_size=8), data=st.data())
def test_fast_and_exact_parquet_readers_agree(labels, data, tmp_path, monkeypatch):
    n = len(labels)
    a = data.draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n))
    b = data.draw(st.lists(st.integers(-2**62, 2**62), min_size=n, max_size=n))
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": a, "b": b, "y": labels}), path, row_group_size=3)
    _same(*_both(path, monkeypatch))


@pytest.mark.parametrize("text", [
    "a,b,y\n1,2,x\n\n3,4,y\n",                  # a blank line
    'a,b,y\n1,2,"two\nlines"\n3,4,y\n',         # a quoted cell over two lines: the exact reader's
    'a,b,y\n1,2,"never closed\n3,4,y\n',        # an unclosed quote
    "a,b,y\n1,2,x\n3,4\n",                      # a ragged row
    "a,a,y\n1,2,x\n",                           # duplicate names
    "\ufeffa,b,y\n1,2,01\n3,4,02\n",            # a BOM, labels with a leading zero
    "a,b,y\n1,2,9007199254740993\n3,4,1\n",     # an integer beyond 2**53 stays exact
    "a,b,y\n,,\n1,2,3\n",                       # a row of empty cells
    "a,b,y\n1,abc,3\n",                         # not numeric
    'a,b\n1,2\n"5"5,6\n',                        # text after a closing quote (pyarrow would read 55)
    'a,b,y\n1,"2" ,x\n',                         # a space after a closing quote
    'a,b,y\n1,2,"a"b"c"\n',                      # quotes inside a label
    '"a"x,b,y\n1,2,3\n',                         # text after a quoted header name
    "\na,b\n1,2\n",                              # a blank first line: no header there
    "\ufeff\na,b\n1,2\n",                         # the same after a BOM
])
@pytest.mark.parametrize("piece", [None, 3])
def test_edge_files_read_the_same(text, piece, tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(_columnar, "PIECE_BYTES", piece or _columnar.PIECE_BYTES)
    fast, exact = _both(path, monkeypatch)
    _same(fast, exact)


def _rows_csv(path, n=3000, labels=None, seed=0):
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    y = labels if labels is not None else rng.integers(0, 10, n)
    pcsv.write_csv(pa.table({"a": rng.normal(size=n), "b": rng.normal(size=n) * 1e300, "y": y}), path,
                   pcsv.WriteOptions(quoting_style="none"))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tsv"])
@pytest.mark.parametrize("piece", [100, 4096])
def test_a_csv_read_a_piece_at_a_time_is_the_whole_file(suffix, piece, tmp_path, monkeypatch):
    """Pieces far smaller than the file (and a compressed file, whose length is unknown until its end:
    the array grows) give the array the whole file gives at once, to the last bit."""
    whole = read_dataset(_rows_csv(tmp_path / "d.csv"))
    text = (tmp_path / "d.csv").read_bytes()
    path = tmp_path / f"e{suffix}"
    if suffix == ".csv.gz":
        path.write_bytes(gzip.compress(text))
    else:
        path.write_bytes(text.replace(b",", b"\t") if suffix == ".tsv" else text)
    monkeypatch.setattr(_columnar, "PIECE_BYTES", piece)
    _fast_only(monkeypatch)
    got = read_dataset(path)
    assert got.X.flags.c_contiguous and got.X.flags.owndata and got.X.shape == (3000, 2)
    np.testing.assert_array_equal(got.X, whole.X)
    assert got.y.dtype == whole.y.dtype == np.int64 and got.y.tolist() == whole.y.tolist()


def test_the_target_rules_see_the_whole_column_across_pieces(tmp_path, monkeypatch):
    """A label written ``01`` in the last piece makes every label text, as it does read whole; a bad
    feature cell in the last piece is named by its line."""
    labels = [str(i % 10) for i in range(2999)] + ["01"]
    path = _rows_csv(tmp_path / "d.csv", labels=labels)
    monkeypatch.setattr(_columnar, "PIECE_BYTES", 256)
    with monkeypatch.context() as m:
        _fast_only(m)
        got = read_dataset(path)
    assert got.y.dtype.kind == "U" and got.y[-1] == "01" and got.y[0] == "0"
    text = path.read_text().splitlines()
    text[-1] = "1.5,oops," + text[-1].split(",")[-1]
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match="line 3001"):
        read_dataset(path)


def test_a_line_longer_than_a_piece_and_a_header_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(_columnar, "PIECE_BYTES", 8)
    path = tmp_path / "d.csv"
    path.write_text("a_long_header_name,b,y\n" + "1.25,2,x\n" * 3 + "1." + "5" * 300 + ",2,y\n")
    with monkeypatch.context() as m:
        _fast_only(m)
        got = read_dataset(path)
    assert got.X.shape == (4, 2) and got.X[-1, 0] == float("1." + "5" * 300) and got.y.tolist() == list("xxxy")
    path.write_text("a_long_header_name,b,y\n")
    with pytest.raises(DataError, match="no data rows"):
        read_dataset(path)


def _fast_only(monkeypatch):
    """The exact reader refuses: what follows must be read by the fast one."""
    def refuse(*a, **k):
        raise AssertionError("the exact reader was asked")

    monkeypatch.setattr(data_module, "_read_csv", refuse)


def test_pieces_of_text_end_at_line_breaks_and_lose_nothing():
    text = b"h\n" + b"".join(b"%d,%s\n" % (i, b"x" * (i % 13)) for i in range(500)) + b"tail-without-break"
    for size, bufs in [(1, None), (5, [None, None]), (64, None), (64, [None] * 3), (1 << 20, None)]:
        pieces = [p.to_pybytes() for p in _columnar.text_pieces(io.BytesIO(text), size, bufs)]
        assert b"".join(pieces) == text
        assert all(p.endswith(b"\n") for p in pieces[:-1])
        assert size >= len(text) or len(pieces) > 1


def test_not_utf8_is_one_clear_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b,y\n1,2,\xff\n")
    with pytest.raises(DataError, match="not a text CSV file"):
        read_dataset(path)


def _table():
    rng = np.random.default_rng(0)
    return pa.table({"a": rng.normal(size=30), "b": rng.normal(size=30), "y": rng.integers(0, 3, 30)})


def test_tsv_and_compressed_csv_read_as_the_plain_csv(tmp_path):
    import pyarrow.csv as pcsv

    plain = tmp_path / "d.csv"
    pcsv.write_csv(_table(), plain)
    want = read_dataset(plain)
    text = plain.read_text()
    (tmp_path / "d.tsv").write_text(text.replace(",", "\t"))
    with gzip.open(tmp_path / "d.csv.gz", "wt") as f:
        f.write(text)
    with pa.CompressedOutputStream(str(tmp_path / "d.csv.zst"), "zstd") as f:
        f.write(text.encode())
    for name in ("d.tsv", "d.csv.gz", "d.csv.zst"):
        got = read_dataset(tmp_path / name)
        np.testing.assert_array_equal(got.X, want.X)
        assert got.y.tolist() == want.y.tolist()


def test_compressed_csv_errors_name_the_line(tmp_path):
    with gzip.open(tmp_path / "d.csv.gz", "wt") as f:
        f.write("a,b,y\n1,2,0\n3,nan,1\n")
    with pytest.raises(DataError, match=r"d.csv.gz', line 3: column 'b' has a missing, NaN or infinite value"):
        read_dataset(tmp_path / "d.csv.gz")


def test_feather_and_memory_tables(tmp_path):
    import pyarrow.feather as feather

    table = _table()
    pq.write_table(table, tmp_path / "d.parquet")
    feather.write_feather(table, tmp_path / "d.feather")
    want = read_dataset(tmp_path / "d.parquet")
    for got in (read_dataset(tmp_path / "d.feather"), read_dataset(table), read_dataset(table.to_pandas())):
        np.testing.assert_array_equal(got.X, want.X)
        assert got.y.tolist() == want.y.tolist() and got.y.dtype == np.int64
    assert read_dataset(table.to_pandas(), target="a").feature_names == ["b", "y"]


def test_standard_input(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a,b,y\n1,2,p\n3,4,q\n")))
    ds = read_dataset("-")
    assert ds.X.tolist() == [[1, 2], [3, 4]] and ds.y.tolist() == ["p", "q"] and ds.source == "<stdin>"


def test_parquet_errors_name_the_row_group_and_row(tmp_path):
    a = np.arange(10.0)
    a[7] = np.nan
    pq.write_table(pa.table({"a": a, "y": np.arange(10) % 2}), tmp_path / "d.parquet", row_group_size=3)
    with pytest.raises(DataError, match=r"row 8 \(row group 2, its row 2\): column 'a' has a missing"):
        read_dataset(tmp_path / "d.parquet")


def test_the_declared_size_is_checked_before_decoding(tmp_path, monkeypatch):
    pq.write_table(_table(), tmp_path / "d.parquet")
    (tmp_path / "d.csv").write_text("a,b,y\n" + "1,2,0\n" * 100)
    monkeypatch.setenv("FFNN_MEMORY_BUDGET", "1K")
    with pytest.raises(DataError, match=r"d.parquet' declares 30 rows × 3 columns: .* over the memory budget"):
        read_dataset(tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"d.csv' may hold \(from its size\) .* over the memory budget"):
        read_dataset(tmp_path / "d.csv")
    monkeypatch.setenv("FFNN_MEMORY_BUDGET", "1G")
    assert len(read_dataset(tmp_path / "d.csv")) == 100


@pytest.mark.parametrize("text, kw", [
    (b"a,b,c\n1,2,\xe9\n", {"target": "c", "require_target": False}),   # bad UTF-8 in a column not read
    (b'a,b,c\n1,2,"x\n', {"expected_features": ["a", "b"]}),           # an unclosed quote in one
])
def test_columns_not_read_are_checked_as_the_exact_reader_checks_them(text, kw, tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    path.write_bytes(text)
    fast, exact = _both(path, monkeypatch, **kw)
    assert isinstance(exact, str)
    _same(fast, exact)


def test_decimal_columns_round_once(monkeypatch):
    from decimal import Decimal

    t = pa.table({"a": pa.array([Decimal("9007199254740993.5")], pa.decimal128(20, 1)), "y": [1]})
    assert read_dataset(t).X[0, 0] == float("9007199254740993.5") == 9007199254740994.0


def test_xz_and_long_cells(tmp_path):
    import lzma

    (tmp_path / "d.csv.xz").write_bytes(lzma.compress(b"a,b\n1,2\n3,4\n"))
    assert read_dataset(tmp_path / "d.csv.xz").X.tolist() == [[1.0], [3.0]]
    label = "x" * 200_000  # a cell beyond the csv module's default limit of 131,072 characters
    (tmp_path / "long.csv").write_text(f"a,y\n1,{label}\n2,b\n")
    assert read_dataset(tmp_path / "long.csv").y.tolist() == [label, "b"]
    (tmp_path / "bad.csv").write_text(f"a,y\n{'9' * 100_000}x,1\n")
    with pytest.raises(DataError) as info:  # the cell is cut in the message
        read_dataset(tmp_path / "bad.csv")
    assert len(str(info.value)) < 300


def test_tables_in_memory_that_are_not_tables_of_columns():
    pd = pytest.importorskip("pandas")
    for frame in (pd.DataFrame({"a": ["1", 2], "y": [1, 2]}), pd.DataFrame([[1, 2, 3]], columns=["a", "a", "y"])):
        with pytest.raises(DataError, match="cannot be read as a table of columns"):
            read_dataset(frame)
    batch = pa.RecordBatch.from_pydict({"a": [1.0, 2.0], "y": [0, 1]})
    assert read_dataset(batch).X.tolist() == [[1.0], [2.0]]


def test_read_chunks_keeps_to_its_row_count_and_names_corrupt_pages(tmp_path):
    from ffnn.data import read_chunks

    (tmp_path / "d.csv").write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(10)))
    chunks = list(read_chunks(tmp_path / "d.csv", rows=3))
    assert [len(c) for c in chunks] == [3, 3, 3, 1] and [c.start for c in chunks] == [0, 3, 6, 9]
    pq.write_table(pa.table({"a": np.arange(200000.0), "b": np.arange(200000.0)}), tmp_path / "p.parquet")
    raw = bytearray((tmp_path / "p.parquet").read_bytes())
    raw[200:3000] = bytes(2800)  # corrupt data pages, footer intact
    (tmp_path / "p.parquet").write_bytes(raw)
    with pytest.raises(DataError, match="is not readable"):
        list(read_chunks(tmp_path / "p.parquet"))


def test_the_budget_covers_feather_and_standard_input(tmp_path, monkeypatch):
    import pyarrow.feather as feather

    feather.write_feather(_table(), tmp_path / "d.feather")
    monkeypatch.setenv("FFNN_MEMORY_BUDGET", "1K")
    with pytest.raises(DataError, match="over the memory budget"):
        read_dataset(tmp_path / "d.feather")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a,b,y\n" + b"1,2,0\n" * 100)))
    with pytest.raises(DataError, match="over the memory budget"):
        read_dataset("-")


def test_a_quoted_header_keeps_the_fast_reader(tmp_path, monkeypatch):
    """pyarrow's own CSV writer quotes the header; the body of numbers stays on the fast reader."""
    import pyarrow.csv as pcsv

    pcsv.write_csv(_table(), tmp_path / "d.csv")
    assert (tmp_path / "d.csv").read_text().startswith('"a","b","y"')

    def no_exact_reader(*a, **k):
        raise AssertionError("the row-by-row reader ran")

    monkeypatch.setattr(data_module, "_read_csv", no_exact_reader)
    ds = read_dataset(tmp_path / "d.csv")
    assert ds.feature_names == ["a", "b"] and ds.y.dtype == np.int64


@pytest.mark.parametrize("kind", ["classify", "regress"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_evaluate_in_chunks_gives_the_whole_files_scores(kind, suffix, tmp_path, monkeypatch, capsys):
    """ffnn evaluate reads the features in chunks (the target column whole): the same scores as one read."""
    import json

    import ffnn
    from ffnn import data as data_module
    from ffnn.cli import main

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0) if kind == "classify" else X @ [1.0, -2.0, 0.5]
    table = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": y})
    path = tmp_path / f"d{suffix}"
    if suffix == ".csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    else:
        pq.write_table(table, path, row_group_size=9)
    model = tmp_path / "m.safetensors"
    net = ffnn.Network([3, 5, 3 if kind == "classify" else 1], "tanh", "softmax" if kind == "classify" else "identity",
                       seed=0)
    meta = dict(task=kind, feature_names=["a", "b", "c"], target="y",
                loss="cross_entropy" if kind == "classify" else "mse")
    if kind == "classify":
        meta["classes"] = [0, 1, 2]
    ffnn.save(net, model, **meta)
    chunks, starts = data_module.read_chunks, []

    def seven_rows(*a, **k):
        for ds in chunks(*a, **{**k, "rows": 7}):
            starts.append(ds.start)
            yield ds

    monkeypatch.setattr(data_module, "read_chunks", seven_rows)
    assert main(["evaluate", str(model), str(path), "--json"]) == 0
    streamed = json.loads(capsys.readouterr().out)
    assert starts[:3] == [0, 7, 14] and len(starts) >= 8  # in chunks, the target read once

    def not_sure(*a, **k):
        raise _columnar.NotSure("read whole")

    monkeypatch.setattr(data_module, "read_target", not_sure)
    assert main(["evaluate", str(model), str(path), "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert streamed.keys() == whole.keys()
    for k, v in whole.items():
        assert streamed[k] == pytest.approx(v, rel=1e-12) if isinstance(v, float) else streamed[k] == v


def test_a_compressed_file_is_held_to_the_budget_as_it_is_read(tmp_path, monkeypatch):
    """A compressed CSV's length shows only as it is read: the rows read so far are checked against
    the budget after every piece, so a small file that inflates past it stops with one line."""
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"a,b,y\n" + b"1.5,2.5,1\n" * 200_000))
    monkeypatch.setattr(_columnar, "PIECE_BYTES", 1 << 16)
    monkeypatch.setenv("FFNN_MEMORY_BUDGET", "1M")
    with pytest.raises(DataError, match=r"d\.csv\.gz' holds at least [0-9,]+ rows × 2 columns.*FFNN_MEMORY_BUDGET"):
        read_dataset(path)
    monkeypatch.delenv("FFNN_MEMORY_BUDGET")
    assert read_dataset(path).X.shape == (200_000, 2)


def test_rows_are_given_once():
    rows = _columnar.Rows(2, 4)
    rows.add([pa.chunked_array([[1.0, 2.0]]), pa.chunked_array([[3.0, 4.0]])])
    assert rows.array().tolist() == [[1.0, 3.0], [2.0, 4.0]]
    with pytest.raises(RuntimeError, match="already given"):
        rows.add([pa.chunked_array([[5.0]]), pa.chunked_array([[6.0]])])


def test_a_piece_is_parsed_in_the_calling_thread_when_no_thread_can_start(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "".join(f"{i}.5,{-i},{i % 3}\n" for i in range(2000)))
    want = read_dataset(path)

    def refuse(self, *a, **k):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(ThreadPoolExecutor, "submit", refuse)
    monkeypatch.setattr(_columnar, "PIECE_BYTES", 512)
    got = read_dataset(path)
    np.testing.assert_array_equal(got.X, want.X)
    assert got.y.tolist() == want.y.tolist()


def test_ffnn_reads_csv_on_a_python_without_lzma(tmp_path):
    """lzma is optional in a Python build: without it, ``import ffnn`` and a plain CSV still work."""
    import subprocess

    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,0\n3,4,1\n")
    code = ("import sys; sys.modules['lzma'] = None\n"
            "from ffnn.data import read_dataset\n"
            f"print(read_dataset({str(path)!r}).X.tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[[1.0, 2.0], [3.0, 4.0]]"
