"""ffnn._checks: the one set of argument checks the library and the command line share."""

import numpy as np
import pytest

from ffnn._checks import describe, integer, layer_sizes, number


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.25), np.float64(0.75), np.int64(1)])
def test_numbers_of_any_real_type_are_accepted(value):
    assert number("x", value, low=0, high=1) == float(value)


@pytest.mark.parametrize("value,exc", [(True, TypeError), ("0.5", TypeError), (None, TypeError), ([1], TypeError),
                                       (float("nan"), ValueError), (float("inf"), ValueError), (-0.1, ValueError),
                                       (1.0, ValueError)])
def test_numbers_are_refused_with_the_name_and_the_range(value, exc):
    with pytest.raises(exc, match=r"^x must be a number in \[0, 1\), got"):
        number("x", value, low=0, high=1, high_open=True)


def test_integers():
    assert integer("n", np.int32(3), low=1) == 3 and type(integer("n", np.int32(3), low=1)) is int
    with pytest.raises(ValueError, match="n must be a positive integer, got 2.5"):
        integer("n", 2.5, low=1)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        integer("n", 0, low=1)
    with pytest.raises(TypeError, match="n must be a positive integer, got True"):
        integer("n", True, low=1)


def test_descriptions():
    assert describe(low=0, low_open=True) == "a positive number"
    assert describe(low=0) == "a non-negative number"
    assert describe(low=1, integer=True) == "a positive integer"
    assert describe(low=0, low_open=True, high=1, high_open=True) == "a fraction in (0, 1)"
    assert describe(low=0, high=1, high_open=True) == "a number in [0, 1)"


def test_layer_sizes():
    assert layer_sizes([3, np.int64(4), 1]) == (3, 4, 1)
    with pytest.raises(ValueError, match="at least an input and an output"):
        layer_sizes([3])
    with pytest.raises(TypeError, match="sequence of layer widths"):
        layer_sizes(3)
    with pytest.raises(ValueError, match=r"sizes\[2\] must be a positive integer, got -1"):
        layer_sizes([3, 4, -1])
