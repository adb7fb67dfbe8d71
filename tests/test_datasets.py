"""Rows on disk (ffnn.datasets): the same training as in memory, the Parquet shuffle, bounded memory."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ffnn
from ffnn.datasets import NpyPair, ParquetRows, is_source

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _data(n=157, d=5, k=3):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, k, n)
    return X, y, np.eye(k)[y]


def _params(net):
    return np.concatenate([np.ravel(p) for p in net.parameters()])


def _write_parquet(path, X, y, row_group):
    table = pa.table({**{f"f{j}": X[:, j] for j in range(X.shape[1])}, "label": y})
    pq.write_table(table, path, row_group_size=row_group)


@pytest.mark.parametrize("opt,mmap", [("adam", False), ("sgd_dropout", False), ("adam", True)])
def test_npy_pair_trains_to_the_weights_of_the_arrays_in_memory(tmp_path, opt, mmap):
    X, y, T = _data()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    def kw():  # a fresh optimiser for each run (an Optimizer object carries its state to the next call)
        if opt == "adam":
            return dict(loss="cross_entropy", epochs=3, batch_size=32, seed=7, optimizer="adam")
        return dict(loss="cross_entropy", epochs=3, batch_size=32, seed=7, optimizer=ffnn.SGD(0.1, momentum=0.9),
                    dropout=0.25)

    a, b = (ffnn.Network([5, 8, 3], "tanh", "softmax", seed=1) for _ in range(2))
    ha = ffnn.train(a, X, T, **kw())
    hb = ffnn.train(b, NpyPair(tmp_path / "X.npy", tmp_path / "y.npy", mmap=mmap), None, **kw())
    np.testing.assert_allclose(_params(b), _params(a), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hb.loss, ha.loss, rtol=1e-12)


def test_npy_targets_as_columns_and_float32_features(tmp_path):
    X, y, T = _data()
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    np.save(tmp_path / "T.npy", T)
    a, b = (ffnn.Network([5, 4, 3], "relu", "softmax", seed=1) for _ in range(2))
    ffnn.train(a, X.astype(np.float32).astype(np.float64), T, loss="cross_entropy", epochs=2, seed=0)
    ffnn.train(b, NpyPair(tmp_path / "X.npy", tmp_path / "T.npy"), None, loss="cross_entropy", epochs=2, seed=0)
    np.testing.assert_allclose(_params(b), _params(a), rtol=1e-12, atol=1e-15)


def test_parquet_two_level_shuffle(tmp_path):
    X, y, T = _data(n=100)
    _write_parquet(tmp_path / "d.parquet", X, y, row_group=16)  # 7 row groups, the last of 4 rows
    src = ParquetRows(tmp_path / "d.parquet")
    assert src.n_row_groups == 7 and len(src) == 100 and src.features == [f"f{j}" for j in range(5)]
    order = src.order(np.random.default_rng(0), True)
    assert sorted(order) == list(range(100))                     # every row once per epoch
    groups = order // 16
    runs = [int(g) for i, g in enumerate(groups) if i == 0 or g != groups[i - 1]]
    assert sorted(runs) == list(range(7))                         # each row group's rows are contiguous
    assert runs != sorted(runs)                                   # in a shuffled order of row groups
    first = order[groups == runs[0]]
    assert list(first) != sorted(first)                           # and shuffled within the row group
    # exactly the documented draws: row groups first, then each one's rows in that order
    rng = np.random.default_rng(0)
    expected = np.concatenate([16 * g + rng.permutation(min(16, 100 - 16 * g)) for g in rng.permutation(7)])
    np.testing.assert_array_equal(order, expected)
    np.testing.assert_array_equal(src.order(rng, False), np.arange(100))


def test_parquet_batches_hold_the_right_rows_across_row_groups(tmp_path):
    X, y, T = _data(n=100)
    _write_parquet(tmp_path / "d.parquet", X, y, row_group=16)
    net = ffnn.Network([5, 4, 3], "relu", "softmax", seed=1)
    src = ParquetRows(tmp_path / "d.parquet", target="label").bind(net)
    idx = src.order(np.random.default_rng(3), True)[10:60]  # spans several row groups
    Xb, Tb = src.batch(idx)
    np.testing.assert_array_equal(Xb, X[idx])
    np.testing.assert_array_equal(Tb, T[idx])


def test_parquet_training_equals_training_on_its_order_in_memory(tmp_path):
    X, y, T = _data(n=100)
    _write_parquet(tmp_path / "d.parquet", X, y, row_group=16)
    a = ffnn.Network([5, 4, 3], "relu", "softmax", seed=1)
    ffnn.train(a, ParquetRows(tmp_path / "d.parquet"), None, loss="cross_entropy", optimizer="adam", epochs=2,
               batch_size=24, seed=5)
    # by hand: the same order of rows, unshuffled arrays in that order, one epoch at a time
    rng = np.random.default_rng(5)
    src = ParquetRows(tmp_path / "d.parquet")
    b = ffnn.Network([5, 4, 3], "relu", "softmax", seed=1)
    opt = ffnn.Adam()
    for _ in range(2):
        o = src.order(rng, True)
        ffnn.train(b, X[o], T[o], loss="cross_entropy", optimizer=opt, epochs=1, batch_size=24, shuffle=False)
    np.testing.assert_allclose(_params(a), _params(b), rtol=1e-12, atol=1e-15)


def test_sources_refuse_what_they_cannot_do(tmp_path):
    X, y, T = _data()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "bad.npy", y + 5)
    src = NpyPair(tmp_path / "X.npy", tmp_path / "y.npy")
    assert is_source(src) and not is_source(X)
    net = ffnn.Network([5, 4, 3], "relu", "softmax")
    with pytest.raises(TypeError, match="T=None"):
        ffnn.train(net, src, T, loss="cross_entropy")
    with pytest.raises(TypeError, match="sample_weight"):
        ffnn.train(net, src, None, loss="cross_entropy", sample_weight=np.ones(len(X)))
    with pytest.raises(ValueError, match="validation"):
        ffnn.train(net, src, None, loss="cross_entropy", validation=0.2)
    with pytest.raises(ValueError, match="expects 6"):
        ffnn.train(ffnn.Network([6, 3], "relu", "softmax"), src, None, loss="cross_entropy")
    with pytest.raises(ValueError, match="class labels"):
        ffnn.train(net, NpyPair(tmp_path / "X.npy", tmp_path / "bad.npy"), None, loss="cross_entropy")
    with pytest.raises(TypeError, match="built-in loss"):
        user = ffnn.Loss("mine", lambda A, T: ((A - T) ** 2).sum(), lambda A, T: 2 * (A - T))
        ffnn.train(net, src, None, loss=user)
    with pytest.raises(ValueError, match="does not exist"):
        NpyPair(tmp_path / "nope.npy", tmp_path / "y.npy")
    np.save(tmp_path / "nan.npy", np.where(X > 1, np.nan, X))
    with pytest.raises(ValueError, match="NaN"):
        ffnn.train(net, NpyPair(tmp_path / "nan.npy", tmp_path / "y.npy"), None, loss="cross_entropy")


_PEAK = textwrap.dedent("""
    import json, sys, numpy as np, ffnn
    from ffnn.datasets import NpyPair
    def status(key):
        return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key + ":"))
    net = ffnn.Network([64, 16, 4], "relu", "softmax", seed=0)
    src = NpyPair(sys.argv[1], sys.argv[2])
    before = status("VmRSS")
    ffnn.train(net, src, None, loss="cross_entropy", optimizer="adam", epochs=1, batch_size=512, seed=0)
    print(json.dumps({"growth": status("VmHWM") - before}))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_resident_memory_does_not_grow_with_the_npy_file(tmp_path):
    rng = np.random.default_rng(0)
    n = 96_000  # 49 MB of features
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float64, shape=(n, 64))
    X[:] = rng.standard_normal((n, 64))
    X.flush()
    del X
    np.save(tmp_path / "y.npy", rng.integers(0, 4, n))
    r = subprocess.run([sys.executable, "-c", _PEAK, str(tmp_path / "X.npy"), str(tmp_path / "y.npy")],
                       capture_output=True, text=True, env={"OPENBLAS_NUM_THREADS": "1", "PATH": ""})
    assert r.returncode == 0, r.stderr
    growth = json.loads(r.stdout)["growth"]
    assert growth < 16 << 20, growth  # a third of the file: the file's pages do not stay resident


def test_import_ffnn_needs_neither_mpi4py_nor_pyarrow():
    code = "import sys, ffnn, ffnn.datasets, ffnn.training.distributed; " \
           "print(sorted(m for m in ('mpi4py', 'pyarrow') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
