import numpy as np
import pytest

try:
    import array_api_strict
except ImportError:  # pragma: no cover - a test dependency
    array_api_strict = None

NAMESPACES = [pytest.param(np, id="numpy")]
if array_api_strict is not None:
    NAMESPACES.append(pytest.param(array_api_strict, id="array_api_strict"))


@pytest.fixture(params=NAMESPACES)
def xp(request):
    """Each core test that takes ``xp`` runs once on NumPy and once on array-api-strict arrays."""
    return request.param


@pytest.fixture(autouse=True)
def _strict_numerics():
    """Overflow, invalid operations and division by zero raise instead of warning (as equinox does)."""
    with np.errstate(all="raise", under="ignore"):
        yield


def to_np(x):
    from ffnn._array import to_numpy

    return np.asarray(to_numpy(x))


def blobs(n=120, k=3, d=4, seed=0):
    """n samples of k Gaussian classes in d dimensions: (X, one-hot T, labels)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    centers = rng.normal(scale=3, size=(k, d))
    return centers[y] + rng.normal(size=(n, d)), np.eye(k)[y], y


def same_weights(a, b):
    """Whether two networks have bitwise equal parameters."""
    return all(np.array_equal(to_np(x), to_np(y)) for x, y in zip(a.parameters(), b.parameters()))
