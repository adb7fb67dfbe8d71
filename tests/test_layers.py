"""ffnn.layers.LayerList: indexed 1..L like the derivations, shapes and dtypes kept when asked."""

import numpy as np
import pytest

from ffnn.layers import LayerList


def _three():
    return [np.zeros((2, 3)), np.ones((3, 4)), np.full((4, 1), 2.0)]


def test_indices_run_from_one_to_L_and_back_from_minus_one():
    arrays = _three()
    W = LayerList(arrays, "W")
    assert len(W) == 3
    for l in (1, 2, 3):
        assert W[l] is arrays[l - 1]
        assert W[-l] is arrays[3 - l]
    assert list(W) == arrays and W.to_list() == arrays and W.to_list() is not arrays
    assert [(l, a.shape) for l, a in W.items()] == [(1, (2, 3)), (2, (3, 4)), (3, (4, 1))]
    assert repr(W) == "W{1: (2, 3), 2: (3, 4), 3: (4, 1)}"


@pytest.mark.parametrize("l,exc,match", [
    (0, IndexError, r"W\[0\] does not exist: layer 0 is the input; layers are numbered 1..3"),
    (4, IndexError, r"W\[4\] is out of range: layers are numbered 1..3"),
    (-4, IndexError, r"W\[-4\] is out of range"),
    (1.0, TypeError, "W index must be an int, got float"),
    (slice(1, 2), TypeError, "W index must be an int, got slice"),
])
def test_bad_indices_are_named(l, exc, match):
    W = LayerList(_three(), "W")
    with pytest.raises(exc, match=match):
        W[l]
    with pytest.raises(exc, match=match):
        W[l] = np.zeros((2, 3))


def test_assignment_checks_shape_and_dtype_only_when_asked():
    W = LayerList(_three(), "weights", check_shapes=True)
    new = np.full((3, 4), 5.0)
    W[2] = new
    assert W[2] is new
    with pytest.raises(ValueError, match=r"weights\[2\] must have shape \(3, 4\), got \(4, 3\)"):
        W[2] = np.zeros((4, 3))
    with pytest.raises(TypeError, match=r"weights\[-1\] must have dtype float64, got float32"):
        W[-1] = np.zeros((4, 1), dtype=np.float32)
    assert W[2] is new and W[3].dtype == np.float64
    free = LayerList(_three())
    free[1] = np.zeros(7, dtype=np.float32)
    assert free[1].shape == (7,)
