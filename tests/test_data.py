"""ffnn.data in-process: every reader, the target's type, scaling, splits, and mutated files."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ffnn.data import DataError, Dataset, Scaler, encode_labels, infer_task, read_dataset

from .hostile import snapshot

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


def _csv(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_text_labels_and_a_named_target(tmp_path):
    path = _csv(tmp_path, "a,kind,b\n1,x,2\n3,y,4\n5,x,6\n")
    ds = read_dataset(path, target="kind")
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4], [5, 6]])
    assert ds.y.tolist() == ["x", "y", "x"] and ds.feature_names == ["a", "b"] and ds.target_name == "kind"
    assert infer_task(ds.y)[0] == "classify"


def test_csv_numeric_target_and_expected_features(tmp_path):
    path = _csv(tmp_path, "b,a,y\n2,1,0.5\n4,3,1.5\n")
    ds = read_dataset(path, expected_features=["a", "b"], require_target=False)
    np.testing.assert_array_equal(ds.X, [[1, 2], [3, 4]])
    assert ds.y is None
    ds = read_dataset(path)
    assert ds.y.dtype == np.float64 and ds.y.tolist() == [0.5, 1.5]


def test_npz_reader(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.arange(6.0).reshape(3, 2), y=np.array([b"a", b"b", b"a"]))
    ds = read_dataset(tmp_path / "d.npz")
    assert ds.X.shape == (3, 2) and ds.y.tolist() == ["a", "b", "a"] and ds.feature_names == ["x0", "x1"]
    np.savez(tmp_path / "inf.npz", X=np.zeros((2, 2)), y=np.array([1.0, np.inf]))
    with pytest.raises(DataError, match="y has a NaN or infinite value"):
        read_dataset(tmp_path / "inf.npz")
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="X holds Python objects"):
        read_dataset(tmp_path / "obj.npz")
    np.savez(tmp_path / "flat.npz", X=np.zeros(3), y=np.zeros(3))
    with pytest.raises(DataError, match="2-D numeric"):
        read_dataset(tmp_path / "flat.npz")


def test_an_npz_member_that_declares_more_than_it_holds_is_refused_before_any_is_inflated(tmp_path):
    import io
    import zipfile

    from numpy.lib import format as npy

    def member(dtype, shape, body=b""):
        buf = io.BytesIO()
        npy.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
        return buf.getvalue() + body

    with zipfile.ZipFile(tmp_path / "d.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("X.npy", member("<f8", (4, 2), np.zeros(8).tobytes()))
        z.writestr("y.npy", member("<i8", (50_000_000,)))  # 400 MB declared, nothing held
    with pytest.raises(DataError, match=r"corrupted: y declares shape \(50000000,\) of int64 \(400000128 bytes with its "
                                        r"header\), its member holds 128"):
        read_dataset(tmp_path / "d.npz")


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "d.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("X.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (2_500_000, 4)})
            for _ in range(10):
                f.write(bytes(8_000_000))  # 80 MB of zeros: about 80 kB compressed
    with pytest.raises(DataError, match=r"X inflates from \d+ to 80000128 bytes \(more than 100:1\)"):
        read_dataset(tmp_path / "d.npz")


def test_csv_numbers_are_what_a_csv_file_means(tmp_path):
    (tmp_path / "d.csv").write_text("a,y\n1_0,1\n2,2\n")
    with pytest.raises(DataError, match="1_0"):  # Python's float() reads "1_0" as 10
        read_dataset(tmp_path / "d.csv")
    (tmp_path / "e.csv").write_text("a,y\n1,1_0\n2,2\n")
    assert read_dataset(tmp_path / "e.csv").y.tolist() == ["1_0", "2"]


def test_parquet_reader(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"a": [1.0, 2.0], "b": [3, 4], "y": ["p", "q"]}), tmp_path / "d.parquet")
    ds = read_dataset(tmp_path / "d.parquet")
    np.testing.assert_array_equal(ds.X, [[1, 3], [2, 4]])
    assert ds.y.tolist() == ["p", "q"]
    pq.write_table(pa.Table.from_arrays([pa.array([1.0]), pa.array([2.0]), pa.array([0])], names=["a", "a", "y"]),
                   tmp_path / "dup.parquet")
    with pytest.raises(DataError, match="two columns named 'a'"):
        read_dataset(tmp_path / "dup.parquet")


@pytest.mark.parametrize("text,fragment", [
    ("a,y\n1,2\n2,inf\n", "line 3: target column 'y' has an infinite value"),
    ("a,y\n1,2\n2,-Infinity\n", "infinite value"),
    ("a,a,y\n1,2,3\n", "two columns named 'a'"),
    ("a,y\n1,\n", "target column 'y' is missing"),
    ("a,\x1b[2J,y\n1,2,3\n", None),
])
def test_data_problems(tmp_path, text, fragment):
    path = _csv(tmp_path, text)
    if fragment is None:  # odd but valid names are kept; messages escape them
        assert read_dataset(path).feature_names == ["a", "\x1b[2J"]
        with pytest.raises(DataError, match=r"\\x1b"):
            read_dataset(path, target="z")
        return
    with pytest.raises(DataError, match=fragment) as info:
        read_dataset(path)
    assert str(path) in str(info.value)


def test_special_files_and_folders_are_refused_without_reading(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.csv")  # reading it would wait for a writer forever
    with pytest.raises(DataError, match="special file"):
        read_dataset(tmp_path / "fifo.csv")
    with pytest.raises(DataError, match="is a folder"):
        read_dataset(tmp_path)
    with pytest.raises(DataError, match="is empty"):
        read_dataset(_csv(tmp_path, ""))


def test_labels_with_leading_zeros_keep_their_text(tmp_path):
    ds = read_dataset(_csv(tmp_path, "a,y\n1,01\n2,1\n3,002\n"))
    assert ds.y.tolist() == ["01", "1", "002"]
    assert encode_labels(ds.y)[0].tolist() == ["002", "01", "1"]
    assert read_dataset(_csv(tmp_path, "a,y\n1,0.5\n2,10\n", "n.csv")).y.dtype == np.float64


def test_prediction_ignores_a_blank_target_column(tmp_path):
    ds = read_dataset(_csv(tmp_path, "a,b,y\n1,2,\n3,4,\n"), target="y", require_target=False,
                      expected_features=["a", "b"])
    assert ds.y is None and ds.X.shape == (2, 2)


def test_scaler_and_tasks():
    X = np.array([[1.0, 5.0], [3.0, 5.0]])
    s = Scaler("standard").fit(X)
    np.testing.assert_allclose(s.transform(X), [[-1, 0], [1, 0]])
    np.testing.assert_allclose(s.inverse(s.transform(X)), X)
    np.testing.assert_allclose(Scaler("minmax").fit(X).transform(X), [[0, 0], [1, 0]])
    assert infer_task(np.array([0.0, 1.0] * 10))[0] == "classify"
    assert infer_task(np.linspace(0, 1, 40))[0] == "regress"
    with pytest.raises(DataError, match="not seen in training"):
        encode_labels(np.array(["z"]), ["a", "b"])


# --- fuzzing ---------------------------------------------------------------------------------------

def _mutate(data, blob, alphabet=None):
    b = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, max(len(b) - 1, 0)))
        kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        if kind == "flip" and b:
            b[at] = data.draw(st.sampled_from(alphabet)) if alphabet else b[at] ^ data.draw(st.integers(1, 255))
        elif kind == "truncate":
            del b[at:]
        elif kind == "insert":
            b[at:at] = (data.draw(st.text(alphabet=alphabet.decode("latin-1"), min_size=1, max_size=6)).encode("latin-1")
                        if alphabet
                        else data.draw(st.binary(min_size=1, max_size=6)))
        elif b:
            del b[at:at + data.draw(st.integers(1, 12))]
    return bytes(b)


def _read_or_data_error(path, **kw):
    try:
        ds = read_dataset(path, **kw)
    except DataError as exc:
        assert str(path) in str(exc), str(exc)
        return None
    assert isinstance(ds, Dataset) and np.all(np.isfinite(ds.X)) and ds.X.ndim == 2 and ds.X.shape[0] > 0
    if ds.y is not None:
        assert len(ds.y) == len(ds.X) and (ds.y.dtype.kind in "U" or np.all(np.isfinite(ds.y)))
    return ds


@FUZZ
@given(data=st.data())
def test_fuzz_csv(real_files, tmp_path_factory, data):
    d = tmp_path_factory.mktemp("csv")
    path = d / "d.csv"
    path.write_bytes(_mutate(data, real_files["csv"].read_bytes(), b'0123456789.,-+e\n\r"ainf \t\xff'))
    before = snapshot(d)
    _read_or_data_error(path)
    _read_or_data_error(path, target="kind", require_target=False, expected_features=["a", "b", "c"])
    assert snapshot(d) == before


@FUZZ
@pytest.mark.parametrize("kind", ["npz", "parquet"])
@given(data=st.data())
def test_fuzz_binary_data_files(real_files, tmp_path_factory, kind, data):
    if kind not in real_files:
        pytest.skip("pyarrow is not installed")
    d = tmp_path_factory.mktemp(kind)
    path = d / f"d.{kind}"
    path.write_bytes(_mutate(data, real_files[kind].read_bytes()))
    before = snapshot(d)
    _read_or_data_error(path)
    assert snapshot(d) == before


def test_scaler_handles_values_near_the_float_range():
    # the mean and deviation of X / max|X|, times max|X|: no overflow, the same numbers as exact arithmetic
    X = np.array([[1e300, 1.0], [-1e300, 2.0], [1e300, 3.0], [-1e300, 4.0]])
    s = Scaler("standard").fit(X)
    np.testing.assert_allclose(s.shift, [0.0, 2.5], atol=1e-12)
    np.testing.assert_allclose(s.scale, [1e300, np.sqrt(1.25)], rtol=1e-14)
    assert np.all(np.isfinite(s.transform(X)))
    huge = np.array([[1.7e308], [-1.7e308], [1.0], [1.7e308]])
    s = Scaler("standard").fit(huge)  # mean ≈ 4.25e307: −1.7e308 − mean overflows unless rearranged
    Z = s.transform(huge)
    np.testing.assert_allclose(Z[:, 0], (huge[:, 0] / 1e308 - s.shift / 1e308) / (s.scale / 1e308), rtol=1e-14)
    np.testing.assert_allclose(s.inverse(Z), huge, rtol=1e-14, atol=1e-14 * 1.7e308)  # 1.0 is below the precision
    assert s.inverse(np.array([[1e10]]))[0, 0] == np.inf  # beyond the float range: inf, without a warning
    ordinary = np.array([[1.0], [2.0], [4.0]])
    t = Scaler("standard").fit(ordinary)
    assert np.array_equal(t.transform(ordinary), (ordinary - t.shift) / t.scale)  # the formula, bit for bit
    with pytest.raises(ValueError, match="column 0 spans more than the float range"):
        Scaler("minmax").fit(huge)
