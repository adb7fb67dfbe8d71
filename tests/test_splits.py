"""ffnn.splits: one-hot detection and the held-out split, stratified by class."""

import numpy as np
import pytest

from ffnn.splits import one_hot_labels, split_indices


def _blobs(n=120, k=3, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    centers = rng.normal(scale=3, size=(k, d))
    return centers[y] + rng.normal(size=(n, d)), np.eye(k)[y], y


def test_one_hot_labels(xp):
    np.testing.assert_array_equal(one_hot_labels(xp.asarray(np.eye(3)[[2, 0, 1, 2]])), [2, 0, 1, 2])
    assert one_hot_labels(xp.asarray([[0.0], [1.0]])) is None                  # one column
    assert one_hot_labels(xp.asarray([[1.0, 1.0], [0.0, 1.0]])) is None        # two 1s in a row
    assert one_hot_labels(xp.asarray([[0.0, 0.0], [0.0, 1.0]])) is None        # no 1 in a row
    assert one_hot_labels(xp.asarray([[0.5, 0.5], [0.0, 1.0]])) is None        # not 0/1


def test_validation_split_is_stratified():
    _, T, y = _blobs(300)
    rng = np.random.default_rng(0)
    tr, va = split_indices(300, 0.2, rng, one_hot_labels(T))
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 300
    for c in range(3):
        assert abs(np.mean(y[va] == c) - np.mean(y == c)) < 0.02


def test_each_class_holds_out_its_share_rounded_to_the_total():
    # shares 3, 1.5 and 0.9 of round(0.3 * 18) = 5: the floors 3, 1, 0, and the one left over goes to
    # the largest remainder (0.9)
    labels = np.array([0] * 10 + [1] * 5 + [2] * 3)
    tr, va = split_indices(18, 0.3, np.random.default_rng(1), labels)
    assert [int(np.sum(labels[va] == c)) for c in range(3)] == [3, 1, 1]
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(18))
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(va) > 0)


def test_many_small_classes_still_hold_out_their_total():
    labels = np.repeat(np.arange(40), 3)  # per-class rounding would hold out round(0.3) = 0 of each
    kept, held = split_indices(120, 0.1, np.random.default_rng(0), labels)
    assert len(held) == 12 and all(np.sum(labels[kept] == c) >= 2 for c in range(40))


def test_unstratified_split_is_the_generators_permutation():
    tr, va = split_indices(10, 0.3, np.random.default_rng(5))
    expected = np.sort(np.random.default_rng(5).permutation(10)[:3])
    np.testing.assert_array_equal(va, expected)
    np.testing.assert_array_equal(tr, np.setdiff1d(np.arange(10), expected))


@pytest.mark.parametrize("n,fraction,what", [(10, 0.01, "nothing held out"), (3, 0.9, "nothing to train on")])
def test_a_split_that_leaves_a_side_empty_is_refused(n, fraction, what):
    with pytest.raises(ValueError, match=f"holding out a fraction {fraction} of {n} samples leaves {what}"):
        split_indices(n, fraction, np.random.default_rng(0))
