"""ffnn._array: the array namespace of the arrays given, the two float dtypes, and NumPy copies."""

import numpy as np
import pytest

from ffnn._array import dtype_name, is_numpy_namespace, namespace_of, resolve_dtype, to_numpy


def test_namespace_of_skips_none(xp):
    a = xp.asarray([1.0, 2.0])
    ns = namespace_of(None, a, None)
    assert ns is namespace_of(a)
    assert is_numpy_namespace(ns) == (xp is np)
    assert float(ns.sum(a)) == 3.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resolve_dtype_accepts_both_float_widths_by_name_or_object(dtype, xp):
    assert resolve_dtype(xp, dtype) == getattr(xp, dtype)
    assert resolve_dtype(xp, getattr(xp, dtype)) == getattr(xp, dtype)
    assert resolve_dtype(np, np.dtype(dtype)) == getattr(np, dtype)


@pytest.mark.parametrize("dtype", ["int64", "float16", np.int32, "complex128"])
def test_resolve_dtype_refuses_everything_else(dtype):
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        resolve_dtype(np, dtype)


def test_dtype_name(xp):
    assert dtype_name("float32") == "float32"
    assert dtype_name(np.float64) == "float64"
    assert dtype_name(np.dtype("<f4")) == "float32"
    assert dtype_name(xp.float32) == "float32"
    assert dtype_name(xp.asarray([1.0], dtype=xp.float64).dtype) == "float64"


def test_to_numpy_keeps_numpy_arrays_and_copies_others(xp):
    values = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    a = xp.asarray(values)
    out = to_numpy(a)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    np.testing.assert_array_equal(out, values)
    if xp is np:
        assert out is a


def test_normalize_namespace_wraps_the_bare_modules_and_keeps_the_rest(xp):
    from ffnn._array import is_torch_namespace, normalize_namespace

    assert normalize_namespace(None) is np
    assert normalize_namespace(xp) is xp
    assert not is_torch_namespace(xp)
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as compat

    assert normalize_namespace(torch) is compat and normalize_namespace(compat) is compat
    assert is_torch_namespace(torch) and is_torch_namespace(compat)


def test_asarray_on_places_and_converts():
    from ffnn._array import asarray_on, device_of

    out = asarray_on(np, [1, 2], np.float32)
    assert out.dtype == np.float32 and device_of(out) == "cpu"
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as compat

    t = asarray_on(compat, np.arange(3.0), compat.float64, torch.device("cpu"))
    assert isinstance(t, torch.Tensor) and t.device == torch.device("cpu")
