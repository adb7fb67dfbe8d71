"""The pieces of data-parallel training that need no MPI: shares, dropout draws, the one-process run."""

import numpy as np
import pytest

import ffnn
from ffnn.training.distributed import RowSlice, ShardedEngine, Solo, share_bounds


@pytest.mark.parametrize("n", [0, 1, 3, 50, 203])
@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_shares_are_contiguous_cover_the_batch_and_differ_by_at_most_one(n, size):
    bounds = [share_bounds(n, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    lengths = [hi - lo for lo, hi in bounds]
    assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)


def test_row_slices_draw_the_rows_of_the_whole_batch_and_advance_alike():
    full, parts = np.random.default_rng(5), [np.random.default_rng(5) for _ in range(3)]
    for shape in [(10, 4), (10, 6)]:  # two hidden layers, drawn one after the other
        expected = full.random(shape)
        for r, rng in enumerate(parts):
            lo, hi = share_bounds(10, r, 3)
            np.testing.assert_array_equal(RowSlice(rng, 10, lo, hi).random((hi - lo, shape[1])), expected[lo:hi])
    assert all(rng.random() == full.random() for rng in [parts[0]]) and parts[1].random() == parts[2].random()


def test_the_forward_pass_masks_a_share_with_its_rows_of_the_batch_masks():
    net = ffnn.Network([3, 6, 5, 2], "tanh", "softmax", seed=0)
    X = np.random.default_rng(1).normal(size=(9, 3))
    whole = net.forward(X, dropout=[0.5, 0.3], rng=np.random.default_rng(2))
    lo, hi = share_bounds(9, 1, 2)
    part = net.forward(X[lo:hi], dropout=[0.5, 0.3], rng=RowSlice(np.random.default_rng(2), 9, lo, hi))
    for m_whole, m_part in zip(whole.masks, part.masks):
        np.testing.assert_array_equal(m_part, m_whole[lo:hi])


def test_solo_is_the_identity():
    buf = np.arange(3.0)
    Solo().Allreduce(None, buf)
    assert Solo().bcast({"a": 1}) == {"a": 1} and (Solo().rank, Solo().size) == (0, 1)
    np.testing.assert_array_equal(buf, np.arange(3.0))


class _OneRank:
    """A communicator of one rank that goes through ShardedEngine's MPI branch without MPI."""

    rank, size = 0, 1

    def __init__(self):
        self.calls = 0

    def Allreduce(self, sendbuf, recvbuf=None, op=None):  # noqa: N802
        assert sendbuf is None and recvbuf.ndim == 1  # in place, one flat buffer
        self.calls += 1

    def bcast(self, obj, root=0):
        return obj


@pytest.mark.parametrize("kw", [dict(optimizer="adam", l2=1e-3), dict(dropout=0.2, clip_norm=0.5),
                                dict(optimizer="rmsprop", validation=0.2, early_stopping=1, schedule="cosine")])
def test_a_sharded_run_of_one_process_trains_like_the_single_process_run(monkeypatch, kw):
    import ffnn.training.distributed as dist

    monkeypatch.setattr(dist, "_mpi_ops", lambda: (None, None))  # no mpi4py needed: the fake comm ignores them
    rng = np.random.default_rng(0)
    X = rng.normal(size=(70, 4))
    T = np.eye(3)[rng.integers(0, 3, 70)]
    comm = _OneRank()
    nets = [ffnn.Network([4, 6, 3], "relu", "softmax", seed=1) for _ in range(2)]
    ha = ffnn.train(nets[0], X, T, loss="cross_entropy", epochs=4, batch_size=16, seed=2, **kw)
    hb = ffnn.train(nets[1], X, T, loss="cross_entropy", epochs=4, batch_size=16, seed=2, comm=comm, **kw)
    n_train = 70 - (14 if "validation" in kw else 0)
    assert comm.calls == len(hb) * -(-n_train // 16)  # one Allreduce per step
    for p, q in zip(nets[0].parameters(), nets[1].parameters()):
        np.testing.assert_allclose(q, p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(hb.loss, ha.loss, rtol=1e-12)
    assert isinstance(ShardedEngine, type)
