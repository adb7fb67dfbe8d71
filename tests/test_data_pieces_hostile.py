"""Hostile inputs for the CSV reader that parses a piece of text at a time (``ffnn._columnar.text_pieces``,
``csv_pieces``, ``Rows``): piece boundaries at every offset of awkward line ends, BOMs, long lines and
headers; whole-column rules decided by a value in the last piece; errors in a late piece; compressed
inputs cut short or corrupted; standard input; ``read_chunks`` with small pieces and small chunks,
abandoned mid-way; the array grown many times; a file replaced between the header read and the body
read; the parser thread never outliving a read.

The contract checked throughout: the fast reader gives exactly what the exact row-by-row reader gives
(the same X bits, y values and dtype, feature names), or the same DataError text."""

import bz2
import gc
import gzip
import io
import itertools
import lzma
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pa = pytest.importorskip("pyarrow")

from ffnn import _columnar
from ffnn import data as data_module
from ffnn.data import DataError, read_chunks, read_dataset

from .conftest import cli
from .test_data_columnar import _both, _fast_only, _same


def _examples(n):
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _identical(fast, exact):
    """:func:`_same`, and the target's dtype itself (not only its kind: ``<U3`` is not ``<U5``)."""
    _same(fast, exact)
    if not isinstance(fast, str) and exact.y is not None:
        assert fast.y.dtype == exact.y.dtype


def _agree(path, monkeypatch, piece, **kw):
    """The fast and the exact reader agree on ``path`` read ``piece`` bytes at a time."""
    monkeypatch.setattr(_columnar, "PIECE_BYTES", piece)
    fast, exact = _both(path, monkeypatch, **kw)
    _identical(fast, exact)
    return fast


def _chunked(path, rows, **kw):
    """read_chunks' Datasets joined (checking each is at most ``rows`` long and the starts run on
    without a gap), or the DataError's text."""
    try:
        chunks = list(read_chunks(path, rows=rows, **kw))
    except DataError as exc:
        return str(exc)
    assert all(0 < len(c) <= rows for c in chunks)
    assert [c.start for c in chunks] == list(itertools.accumulate([0] + [len(c) for c in chunks[:-1]]))
    return np.concatenate([c.X for c in chunks]), chunks[0].feature_names


def _whole_features(path, **kw):
    try:
        ds = read_dataset(path, require_target=False, **kw)
    except DataError as exc:
        return str(exc)
    return ds.X, ds.feature_names


def _chunks_agree(path, rows, **kw):
    got, want = _chunked(path, rows, **kw), _whole_features(path, **kw)
    assert type(got) is type(want), (got, want)
    if isinstance(want, str):
        assert got == want
    else:
        assert got[0].tobytes() == want[0].tobytes() and got[0].shape == want[0].shape and got[1] == want[1]


# --- piece boundaries at every offset ------------------------------------------------------------

AWKWARD = {
    "crlf": b"a,b,y\r\n1,2,x\r\n3.5,4,y\r\n\r\n5,6,z\r\n",
    "lone cr": b"a,b,y\n1,2,x\r3,4,y\n5,6,z\r",
    "blank lines": b"a,b,y\n\n1,2,x\n\n\n3,4,y\n\r\n5,6,z\n\n",
    "no final break": b"a,b,y\n1,2,x\n3,4,y\n5,6,zz",
    "bom and crlf": b"\xef\xbb\xbfa,b,y\r\n1,2,x\r\n3,4,y",
    "quoted header": b'"a","b","y"\n1,2,x\n3,4,y\n',
    "long header": b"a" * 40 + b",b" + b"b" * 40 + b",y\n1,2,x\n3,4,y\n",
    "long line": b"a,b,y\n1,2,x\n1." + b"25" * 60 + b",4,y\n5,6,z\n",
    "header only": b"a,b,y\n",
    "header only, no break": b"a,b,y",
    "cr after last break": b"a,b,y\n1,2,x\n\r",
    "quote late": b'a,b,y\n1,2,x\n3,4,y\n"5",6,z\n',
    "quoted label over two lines late": b'a,b,y\n1,2,x\n3,4,"y\nz"\n',
    "ragged late": b"a,b,y\n1,2,x\n3,4,y\n5,6\n",
    "nan late": b"a,b,y\n1,2,x\n3,4,y\n5,nan,z\n",
    "not utf-8 late": b"a,b,y\n1,2,x\n3,4,y\n5,6,\xff\n",
    "utf-8 cut late": b"a,b,y\n1,2,x\n3,4,y\n5,6,\xc3\n",
    "tsv-looking": b"a\tb\ty\n1\t2\tx\n",
}


@pytest.mark.parametrize("name", AWKWARD)
def test_every_piece_size_cuts_awkward_files_the_same(name, tmp_path, monkeypatch):
    """Pieces of 1, 2, ... bytes up to the whole file: a cut lands after every byte once (inside
    "\\r\\n", after a lone "\\r", on a blank line, inside the header, inside a long line)."""
    path = tmp_path / "d.csv"
    path.write_bytes(AWKWARD[name])
    for piece in range(1, len(AWKWARD[name]) + 2):
        _agree(path, monkeypatch, piece)
        _chunks_agree(path, 2)


def test_a_line_longer_than_the_parsing_block_is_read_as_the_exact_reader_reads_it(tmp_path, monkeypatch):
    """A cell over BLOCK_BYTES (pyarrow refuses a row that straddles its blocks): the same result, whole
    file or in chunks, the chunks before it from the fast reader and the rest from the exact one."""
    lines = [f"{i}.5,{i}" for i in range(400)]
    lines[300] = "1,0." + "9" * (_columnar.BLOCK_BYTES + 10)  # rounds to 1.0
    path = tmp_path / "d.csv"
    path.write_text("a,b\n" + "\n".join(lines) + "\n")
    got = _agree(path, monkeypatch, 512, target="b")
    assert got.X.shape == (400, 1) and got.y[300] == 1.0
    _chunks_agree(path, 7)


# --- whole-column rules and errors decided in the last piece -------------------------------------

@pytest.mark.parametrize("last, kind", [("01", "U"), ("a", "U"), (str(2**63), "U"), (str(2**53 + 1), "i"),
                                        ("2.5", "f"), (" 3 ", "i"), ("-0", "i"), ("+4", "i"), ("1e3", "f")])
def test_a_label_in_the_last_piece_decides_the_whole_column(last, kind, tmp_path, monkeypatch):
    """The target's rule (integers, identifiers with a leading zero, text, beyond int64) is the whole
    column's, also when the one value that decides it comes in the last of many pieces."""
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n" + "".join(f"{i}.5,{-i},{i % 4}\n" for i in range(300)) + f"7,8,{last}\n")
    with monkeypatch.context() as m:
        _fast_only(m)  # none of these needs the exact reader
        m.setattr(_columnar, "PIECE_BYTES", 64)
        fast = read_dataset(path)
    assert fast.y.dtype.kind == kind and len(fast) == 301
    _agree(path, monkeypatch, 64)


@pytest.mark.parametrize("last, message", [
    ("5,nan,1", "line 302: column 'b' has a missing, NaN or infinite value"),
    ("5,inf,1", "line 302: column 'b' has a missing, NaN or infinite value"),
    ("5,1e999,1", "line 302: column 'b' has a missing, NaN or infinite value"),
    ("5,six,1", "line 302: column 'b' is not numeric"),
    ("5,,1", "line 302: column 'b' has a missing"),
    ("5,6", "line 302: 2 cells where the header has 3"),
    ("5,6,1,9", "line 302: 4 cells where the header has 3"),
    ("5,6,NA", "line 302: target column 'y' is missing"),
    ('5,6,"never closed', "line 302: a quoted cell that starts on this line is never closed"),
    ("5,6,inf", "line 302: target column 'y' has an infinite value"),
])
@pytest.mark.parametrize("compression", ["", ".gz"])
def test_an_error_in_a_late_piece_names_its_line(last, message, compression, tmp_path, monkeypatch):
    text = ("a,b,y\n" + "".join(f"{i}.5,{-i},{i % 4}\n" for i in range(300)) + last + "\n").encode()
    path = tmp_path / f"d.csv{compression}"
    path.write_bytes(gzip.compress(text) if compression else text)
    monkeypatch.setattr(_columnar, "PIECE_BYTES", 64)
    with pytest.raises(DataError, match=message):
        read_dataset(path)
    _agree(path, monkeypatch, 64)


def test_text_that_is_not_utf8_in_a_late_piece(tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b,y\n" + b"1,2,x\n" * 200 + b"3,4,\xe9t\xe9\n")
    monkeypatch.setattr(_columnar, "PIECE_BYTES", 50)
    with pytest.raises(DataError, match="not a text CSV file"):
        read_dataset(path)
    _agree(path, monkeypatch, 50)


# --- random files with hostile lines anywhere -----------------------------------------------------

HOSTILE_LINES = st.sampled_from([
    b"1,2,01", b"1,2,a", b"1,2,%d" % 2**63, b"1,2,%d" % (2**53 + 1), b"1,2, 3", b"1,2,2.5", b"1,2,-0",
    b'"1",2,3', b'1,2,"x"', b'1,2,"x\ny"', b"1,2", b"1,2,3,4", b"", b"\r", b" , , ", b"1,nan,3", b"1,1e400,3",
    b"1,\xff,3", b"1,2,\xff", b"1,2,3\r", b"1,2,x\ry", b"1,0." + b"5" * 300 + b",3", b"1,2,NA", b"1,2,",
    b"1_0,2,3", b"\t1,2,3", b"1 ,2,3", b"\x001,2,3", b"1,2,\xe2\x80\xa8", b"1e5,.5,5.", b"1,2,\xef\xbb\xbfz",
])


@st.composite
def hostile_csv(draw):
    n = draw(st.integers(1, 120))
    lines = [b"%d.%d,%d,%d" % (i, i % 7, -i, i % 4) for i in range(n)]
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(HOSTILE_LINES))
    end = draw(st.sampled_from([b"\n", b"\r\n"]))
    text = b"a,b,y" + end + end.join(lines) + draw(st.sampled_from([end, b""]))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + text


@_examples(60)
@given(text=hostile_csv(), piece=st.sampled_from([1, 3, 16, 50, 4096]), rows=st.sampled_from([1, 7, 64]),
       suffix=st.sampled_from([".csv", ".csv.gz", ".tsv"]),
       kw=st.sampled_from([{}, {"target": "a"}, {"expected_features": ["b", "a"], "require_target": False}]))
def test_hostile_lines_anywhere_read_as_the_exact_reader_reads_them(text, piece, rows, suffix, kw, tmp_path,
                                                                    monkeypatch):
    path = tmp_path / f"d{suffix}"
    path.write_bytes(gzip.compress(text) if suffix == ".csv.gz" else
                     text.replace(b",", b"\t") if suffix == ".tsv" else text)
    before = threading.active_count()
    _agree(path, monkeypatch, piece, **kw)
    _chunks_agree(path, rows, expected_features=kw.get("expected_features"))
    assert threading.active_count() == before


# --- compressed inputs cut short or corrupted ----------------------------------------------------

def _arrow_codec(codec):
    def compress(data):
        out = pa.BufferOutputStream()
        with pa.CompressedOutputStream(out, codec) as f:
            f.write(data)
        return out.getvalue().to_pybytes()

    return compress


TEXT = b"a,b,y\n" + b"".join(b"%d.25,%d,%d\n" % (i, 7 * i, i % 3) for i in range(5000))
COMPRESS = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress, ".zst": _arrow_codec("zstd"),
            ".lz4": _arrow_codec("lz4")}


def _damaged(how, compress):
    full = compress(TEXT)
    return {"cut in half": full[:len(full) // 2], "last bytes cut": full[:-3], "garbage after": full + b"garbage!",
            "two streams": full + compress(TEXT[6:]), "a stream cut at a line": compress(TEXT[:len(TEXT) // 2]),
            "zeros in the middle": full[:len(full) // 2] + bytes(50) + full[len(full) // 2 + 50:],
            "zeros at the start": full[:5] + bytes(20) + full[25:], "not compressed": TEXT}[how]


@pytest.mark.parametrize("suffix, how", [
    *[(s, h) for s in COMPRESS for h in ("cut in half", "last bytes cut", "garbage after", "two streams",
                                         "a stream cut at a line")],
    (".gz", "zeros in the middle"), (".bz2", "zeros in the middle"), (".zst", "zeros in the middle"),
    (".bz2", "zeros at the start"), (".zst", "zeros at the start"), (".lz4", "zeros at the start"),
    (".gz", "not compressed"), (".bz2", "not compressed"), (".zst", "not compressed"), (".lz4", "not compressed"),
    pytest.param(".gz", "zeros at the start"),
    pytest.param(".xz", "zeros in the middle"),
    pytest.param(".xz", "zeros at the start"),
    pytest.param(".xz", "not compressed"),
])
def test_damaged_compressed_files_read_as_the_exact_reader_reads_them(suffix, how, tmp_path, monkeypatch):
    """Cut short, corrupted, trailed by garbage, several streams: the same data or the same DataError,
    from read_dataset and read_chunks alike — never another exception."""
    path = tmp_path / f"d.csv{suffix}"
    path.write_bytes(_damaged(how, COMPRESS[suffix]))
    _agree(path, monkeypatch, 4096)
    _chunks_agree(path, 1000)


@pytest.mark.parametrize("command", ["train", "predict", "evaluate"])
@pytest.mark.parametrize("suffix, how", [
    (".gz", "cut in half"), (".zst", "zeros in the middle"),
    pytest.param(".xz", "zeros in the middle"),
])
def test_the_cli_says_one_line_on_a_damaged_compressed_file(command, suffix, how, tmp_path, model):
    path = tmp_path / f"d.csv{suffix}"
    path.write_bytes(_damaged(how, COMPRESS[suffix]))
    args = {"train": ["train", path, "--epochs", "1", "--quiet", "--out", tmp_path / "m.safetensors"],
            "predict": ["predict", model, path], "evaluate": ["evaluate", model, path]}[command]
    code, out, err = cli(*args)
    assert code == 1 and err.count("\n") == 1 and err.startswith("ffnn: error: data file") and out == ""
    assert not (tmp_path / "m.safetensors").exists()


@pytest.fixture
def model(tmp_path):
    import ffnn

    net = ffnn.Network([2, 3, 3], "tanh", "softmax", seed=0)
    path = tmp_path / "model.safetensors"
    ffnn.save(net, path, task="classify", feature_names=["a", "b"], target="y", loss="cross_entropy",
              classes=[0, 1, 2])
    return path


def test_the_cli_on_hostile_plain_files(tmp_path, model):
    """A late bad cell, a late ragged row: one line naming the line, exit 1, no output file."""
    good = "a,b,y\n" + "".join(f"{i}.5,{-i},{i % 3}\n" for i in range(300))
    for tail, line in (("5,x,1\n", "line 302"), ("5,6\n", "line 302"), ("5,6,1\n7,8,1\n" + "9,inf,0", "line 304")):
        path = tmp_path / "h.csv"
        path.write_text(good + tail)
        for args in (["train", path, "--epochs", "1", "--quiet", "--out", tmp_path / "m.safetensors"],
                     ["predict", model, path, "--out", tmp_path / "p.csv"], ["evaluate", model, path]):
            code, _, err = cli(*args)
            assert code == 1 and err.count("\n") == 1 and line in err and "Traceback" not in err, (args, err)
        assert not (tmp_path / "m.safetensors").exists() and not (tmp_path / "p.csv").exists()


# --- a BOM where a piece starts ------------------------------------------------------------------

@pytest.mark.parametrize("text, kw", [
    pytest.param("a,y\n1,0\n\ufeff2,1\n3,0\n", {}, id="feature"),
    pytest.param("y,a\np,1\n\ufeffq,2\nr,3\n", {"target": "y"}, id="label"),
    pytest.param("y,a\np,1\nq,\ufeff2\nr,3\n", {"target": "y"}, id="inside a line"),
])
def test_a_bom_that_starts_a_piece_is_data(text, kw, tmp_path, monkeypatch):
    """The first piece ends at the line before the BOM (with the default 4 MiB pieces, a file whose
    first 4 MiB end at a line break has the same problem)."""
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8")
    _agree(path, monkeypatch, len("".join(text.splitlines(True)[:2]).encode()), **kw)


def test_a_bom_that_starts_a_default_sized_piece_is_data(tmp_path):
    """The same with the 4 MiB pieces: the file's first PIECE_BYTES end with a line break."""
    row = "0.5," + "x" * 1019 + "\n"  # 1 KiB
    head = "a," + "y" * 1021 + "\n"
    text = head + row * ((_columnar.PIECE_BYTES - len(head)) // len(row))
    assert len(text) == _columnar.PIECE_BYTES
    path = tmp_path / "d.csv"
    path.write_text(text + "\ufeff7,z\n" + row * 3, encoding="utf-8")
    with pytest.raises(DataError, match=f"line {text.count(chr(10)) + 1}: column 'a' is not numeric"):
        read_dataset(path)


def test_a_bom_that_starts_a_piece_reaches_predict_as_data(tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n\ufeff3,4\n", encoding="utf-8")
    monkeypatch.setattr(_columnar, "PIECE_BYTES", 8)
    with pytest.raises(DataError, match="line 3: column 'a' is not numeric"):
        list(read_chunks(path, rows=10))


# --- standard input -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["crlf", "lone cr", "bom and crlf", "ragged late", "not utf-8 late", "long line"])
def test_standard_input_reads_as_the_file(name, tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    path.write_bytes(AWKWARD[name])
    monkeypatch.setattr(_columnar, "PIECE_BYTES", 5)
    from_file = _both(path, monkeypatch)
    from_stdin = []
    for exact in (False, True):  # standard input is read once: a fresh one for each reader
        with monkeypatch.context() as m:
            m.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(AWKWARD[name])))
            if exact:
                m.setattr(data_module, "_fast_csv", lambda *a, **k: (_ for _ in ()).throw(_columnar.NotSure("")))
            try:
                from_stdin.append(read_dataset("-"))
            except DataError as exc:
                from_stdin.append(str(exc))
    _identical(*from_stdin)
    if isinstance(from_file[0], str):
        assert from_stdin[0] == from_file[0].replace(repr(str(path)), "'<stdin>'")
    else:
        _identical(from_stdin[0], from_file[0])


# --- the array grown, the pieces themselves, Rows ------------------------------------------------

LONG = "1." + "0" * 250 + "1"


@pytest.mark.parametrize("text, n, grows", [
    ("a,b,y\n" + "1,2,3\n" * 2000 + f"{LONG},{LONG},1\n" * 200, 2200, False),  # short rows first: over-reserved
    # (the first piece holds what the header's read took, 64 KiB, and as much again)
    ("a,b,y\n" + f"{LONG},{LONG},1\n" * 400 + "1,2,3\n" * 20000, 20400, True),  # long rows first: grows many times
    ("a,b,y\n" + "\n" * 200000 + "1,2,3\n" * 3000, 3000, True),                # a first piece of blank lines only
], ids=["short-then-long", "long-then-short", "blank-first"])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_a_badly_wrong_rows_per_byte_estimate(text, n, grows, suffix, tmp_path, monkeypatch):
    """The array reserved from the first piece's rows per byte is far too long or far too short (and a
    compressed file's length is unknown): grown as often as needed, trimmed, the same bits."""
    path = tmp_path / f"d{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix == ".csv.gz" else text.encode())
    grown, add = [], _columnar.Rows.add

    def spy(self, columns):
        rows = self.X.shape[0]
        add(self, columns)
        grown.append(self.X.shape[0] != rows)

    monkeypatch.setattr(_columnar.Rows, "add", spy)
    with monkeypatch.context() as m:
        _fast_only(m)
        m.setattr(_columnar, "PIECE_BYTES", 256)
        got = read_dataset(path)
    assert got.X.flags.c_contiguous and got.X.flags.owndata and got.X.shape == (n, 2)
    if suffix == ".csv":
        assert any(grown) == grows
    _agree(path, monkeypatch, 256)


@_examples(60)
@given(sizes=st.lists(st.integers(0, 300), max_size=12), expect=st.integers(-5, 2000), width=st.integers(1, 4))
def test_rows_gathered_are_the_rows_given(sizes, expect, width):
    rng = np.random.default_rng(len(sizes))
    parts = [rng.normal(size=(n, width)) for n in sizes]
    rows = _columnar.Rows(width, expect)
    for p in parts:
        rows.add([pa.array(p[:, j]) for j in range(width)])
    got = rows.array()
    want = np.concatenate(parts) if parts else np.empty((0, width))
    assert got.shape == want.shape and got.tobytes() == want.tobytes() and got.flags.c_contiguous


class _Trickle(io.RawIOBase):
    """A stream that gives at most a few bytes per read (a pipe, a decompressor)."""

    def __init__(self, data, most):
        self.data, self.at, self.most = data, 0, most

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.most[self.at % len(self.most)], len(self.data) - self.at)
        b[:n] = self.data[self.at:self.at + n]
        self.at += n
        return n


@_examples(80)
@given(text=st.binary(max_size=300).map(lambda b: b.replace(b"\x00", b"\n")), size=st.integers(1, 40),
       most=st.lists(st.integers(1, 9), min_size=1, max_size=4),
       stale=st.lists(st.one_of(st.none(), st.integers(1, 120)), min_size=1, max_size=3))
def test_text_pieces_lose_nothing_and_stay_valid_while_held(text, size, most, stale):
    """Joined, the pieces are the text; each but the last ends just after a line break; the last
    ``len(bufs)`` pieces are intact while the next is read; buffers kept from an earlier read (too
    small, or larger and full of its text) change nothing."""
    import mmap

    bufs = [None if n is None else mmap.mmap(-1, n) for n in stale]
    for buf in bufs:
        if buf is not None:
            buf[:] = b"x\n" * (len(buf) // 2) + b"y" * (len(buf) % 2)
    held, seen = [], []
    for piece in _columnar.text_pieces(_Trickle(text, most), size, bufs):
        seen.append(piece.to_pybytes())
        held = (held + [(piece, seen[-1])])[-len(bufs):]
        assert all(p.to_pybytes() == b for p, b in held)
        assert seen[-1]
    assert b"".join(seen) == text
    assert all(p.endswith(b"\n") for p in seen[:-1])
    longest = max(len(line) + 1 for line in text.split(b"\n"))
    assert all(len(p) <= max(2 * size, 2 * longest) for p in seen)  # what was carried (part of a line) and a read


# --- threads: none left behind --------------------------------------------------------------------

def _many_rows(path, n=500):
    path.write_text("a,b,y\n" + "".join(f"{i}.5,{i},{i % 3}\n" for i in range(n)))
    return path


def test_abandoned_chunk_readers_leave_no_thread(tmp_path, monkeypatch):
    path = _many_rows(tmp_path / "d.csv")
    monkeypatch.setattr(_columnar, "PIECE_BYTES", 256)
    before = threading.active_count()
    chunks = read_chunks(path, rows=10)
    first, second = next(chunks), next(chunks)
    assert (first.start, second.start) == (0, 10)
    chunks.close()
    assert threading.active_count() == before
    chunks = read_chunks(path, rows=10)
    next(chunks)
    del chunks
    gc.collect()
    assert threading.active_count() == before
    bad = tmp_path / "bad.csv"
    bad.write_text(path.read_text() + "1,x,2\n")  # found by the parser thread, in the last piece
    for _ in range(30):  # and many reads, good and bad
        read_dataset(path)
        with pytest.raises(DataError, match="line 502"):
            read_dataset(bad)
    assert threading.active_count() == before


def test_a_process_exits_with_a_chunk_reader_left_open(tmp_path):
    path = _many_rows(tmp_path / "d.csv")
    code = ("import sys; from ffnn import _columnar; from ffnn.data import read_chunks\n"
            "_columnar.PIECE_BYTES = 256\n"
            f"keep = read_chunks({str(path)!r}, rows=5); next(keep); next(keep)\n"
            "print('read', flush=True)\n")
    src = str(Path(data_module.__file__).parents[1])  # this checkout's ffnn
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "PYTHONPATH": src})
    assert done.returncode == 0 and done.stdout == "read\n" and done.stderr == ""


def test_reads_in_several_threads_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(_columnar, "PIECE_BYTES", 300)
    paths = [_many_rows(tmp_path / f"d{i}.csv", n=500 + 100 * i) for i in range(4)]
    want = [read_dataset(p) for p in paths]
    got = [None] * 4

    def read(i):
        got[i] = [read_dataset(paths[i]) for _ in range(5)]

    threads = [threading.Thread(target=read, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for w, g in zip(want, got):
        for d in g:
            assert d.X.tobytes() == w.X.tobytes() and d.y.tolist() == w.y.tolist()


def test_interleaved_reads_with_pieces_of_changing_sizes(tmp_path, monkeypatch):
    """Two chunk readers suspended in turn, whole reads between their chunks, the piece size changed
    between reads: the text buffers one read gives back and another takes never mix two files."""
    paths = [_many_rows(tmp_path / f"d{i}.csv", n=80 + 70 * i) for i in range(3)]
    want = [read_dataset(p) for p in paths]
    features = [read_dataset(p, require_target=False).X for p in paths[:2]]  # what read_chunks gives
    monkeypatch.setattr(_columnar, "PIECE_BYTES", 200)
    readers = [read_chunks(p, rows=37) for p in paths[:2]]
    got, sizes = [[], []], itertools.cycle([50, 200, 4096, 23])
    for step in itertools.count():
        monkeypatch.setattr(_columnar, "PIECE_BYTES", next(sizes))
        chunks = [next(reader, None) for reader in readers]
        for i, chunk in enumerate(chunks):
            if chunk is not None:
                got[i].append(chunk.X)
        whole = read_dataset(paths[step % 3])
        assert whole.X.tobytes() == want[step % 3].X.tobytes() and whole.y.tolist() == want[step % 3].y.tolist()
        if chunks == [None, None]:
            break
    for i in range(2):
        joined = np.concatenate(got[i])
        assert joined.shape == features[i].shape and joined.tobytes() == features[i].tobytes()


# --- a file replaced between the header read and the body read -----------------------------------

def test_a_file_replaced_between_the_header_and_the_body(tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    old, new = "a,b,y\n1,2,3\n", "b,a,y\n10,20,30\n"
    header_line = _columnar.header_line

    def then_replace(*a, **k):
        names = header_line(*a, **k)
        path.write_text(new)
        return names

    path.write_text(old)
    monkeypatch.setattr(_columnar, "header_line", then_replace)
    got = read_dataset(path)
    monkeypatch.setattr(_columnar, "header_line", header_line)
    readings = []
    for text in (old, new):
        path.write_text(text)
        readings.append(read_dataset(path))
    assert any(got.feature_names == r.feature_names and got.X.tolist() == r.X.tolist() for r in readings), \
        (got.feature_names, got.X.tolist())


# --- the order of errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["a\n", "a,a,y\n", "a,a,y\n1,2\n"])
def test_a_header_problem_and_a_row_problem_together(text, tmp_path, monkeypatch):
    path = tmp_path / "d.csv"
    path.write_text(text)
    _agree(path, monkeypatch, 4096)
