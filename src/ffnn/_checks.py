"""Argument checks shared by the library and the command line: one place that says what a valid
number, count or list of layer widths is, and one wording for the error."""

from __future__ import annotations

import math
from numbers import Integral, Real

__all__ = ["number", "integer", "layer_sizes", "describe"]


def describe(*, low=None, low_open=False, high=None, high_open=False, integer=False) -> str:
    """The range in words: "a positive integer", "a non-negative number", "a number in [0, 1)"."""
    noun = "integer" if integer else "number"
    if high is None and low == 0:
        return f"a {'positive' if low_open else 'non-negative'} {noun}"
    if high is None and low == 1 and integer and not low_open:
        return "a positive integer"
    if (low, low_open, high, high_open, integer) == (0, True, 1, True, False):
        return "a fraction in (0, 1)"
    if high is None and low is None:
        return f"a finite {noun}"
    article = "an" if integer else "a"
    if high is None:
        return f"{article} {noun} {'>' if low_open else '≥'} {low}"
    lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
    return f"{article} {noun} in {lo}, {high:g}{')' if high_open else ']'}"


def number(name, value, *, low=None, low_open=False, high=None, high_open=False):
    """``value`` as a float, checked to be a finite real number in the given range.

    Python and NumPy numbers are accepted (``np.float32(1.0)`` too); bools and strings are not.
    Raises TypeError for a non-number, ValueError for a number out of range, naming ``name``.
    """
    bounds = dict(low=low, low_open=low_open, high=high, high_open=high_open)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _refusal(TypeError, name, value, bounds, False)
    return _in_range(name, float(value), value, bounds, False)


def integer(name, value, *, low=None, low_open=False, high=None, high_open=False):
    """``value`` as an int, checked to be an integer (Python or NumPy, not bool) in the given range.

    Raises TypeError for a non-number and ValueError for a fractional number or one out of range.
    """
    bounds = dict(low=low, low_open=low_open, high=high, high_open=high_open)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _refusal(TypeError, name, value, bounds, True)
    if not isinstance(value, Integral):
        raise _refusal(ValueError, name, value, bounds, True)
    return _in_range(name, int(value), value, bounds, True)


def _in_range(name, v, given, bounds, is_int):
    """``v`` when it is finite and within ``bounds``; otherwise a ValueError naming ``name``."""
    low, high = bounds["low"], bounds["high"]
    ok = math.isfinite(v)
    if low is not None:
        ok = ok and (v > low if bounds["low_open"] else v >= low)
    if high is not None:
        ok = ok and (v < high if bounds["high_open"] else v <= high)
    if not ok:
        raise _refusal(ValueError, name, given, bounds, is_int)
    return v


def _refusal(kind, name, given, bounds, is_int):
    return kind(f"{name} must be {describe(integer=is_int, **bounds)}, got {given!r}")


def layer_sizes(sizes, budget=True) -> tuple:
    """Layer widths ``[S_0, …, S_L]`` as a tuple of positive ints (at least an input and an output);
    with ``budget``, a network of them must fit in :func:`memory_budget` (:func:`check_parameter_count`)."""
    try:
        sizes = list(sizes)
    except TypeError:
        raise TypeError(f"sizes must be a sequence of layer widths, got {type(sizes).__name__}") from None
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least an input and an output width, got {sizes}")
    sizes = tuple(integer(f"sizes[{i}]", s, low=1) for i, s in enumerate(sizes))
    if budget:
        check_parameter_count(sizes)
    return sizes


def memory_budget() -> int:
    """Bytes a data set or a network may take: ``FFNN_MEMORY_BUDGET`` (bytes, or with a K/M/G/T suffix)
    when set, else half of the machine's physical memory."""
    import os
    import re

    value = os.environ.get("FFNN_MEMORY_BUDGET", "").strip()
    if value:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", value, re.IGNORECASE)
        if m:
            return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no bound from here
        return 1 << 62


def check_parameter_count(sizes, itemsize=8):
    """ValueError, before anything is allocated, when a network of layer widths ``sizes`` would not fit
    in :func:`memory_budget` (its parameters, and as much again for their gradients)."""
    count = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    need = 2 * count * itemsize
    budget = memory_budget()
    if need > budget:
        raise ValueError(f"a network of widths {list(sizes)} has {count:,} parameters: about {need / 2**30:,.1f} GiB "
                         f"with their gradients, over the memory budget of {budget / 2**30:.1f} GiB "
                         f"(FFNN_MEMORY_BUDGET)")
