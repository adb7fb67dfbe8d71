import subprocess
import sys

import numpy as np
import pytest

try:
    import array_api_strict
except ImportError:  # pragma: no cover - a test dependency
    array_api_strict = None

NAMESPACES = [pytest.param(np, id="numpy")]
if array_api_strict is not None:
    NAMESPACES.append(pytest.param(array_api_strict, id="array_api_strict"))


_WARM_FLOAT32 = (
    "import numpy as np, ffnn\n"
    "net = ffnn.Network([3, 4, 2], 'relu', 'softmax', seed=0, dtype='float32')\n"
    "ffnn.train(net, np.zeros((4, 3), np.float32), np.eye(2, dtype=np.float32)[[0, 1, 0, 1]],\n"
    "           loss='cross_entropy', epochs=1, loop='compiled')\n")


@pytest.fixture(autouse=True, scope="session")
def _compile_float32_beside_the_suite():
    """On a fresh installation the compiled training loop is compiled once per dtype (about 20 s each):
    float64 compiles in this process at its first test, float32 meanwhile in a second process, on the
    other core, into numba's on-disk cache that the float32 tests then load. Only a matter of time:
    a test that needs float32 before it is done compiles it itself."""
    from ffnn.training import compiled_engine

    proc = None
    if compiled_engine.will_compile("float32"):
        proc = subprocess.Popen([sys.executable, "-c", _WARM_FLOAT32], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    yield
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


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


# --- real files for the file-format, data and command-line tests -------------------------------------

def cli(*args):
    """``ffnn ...`` in-process: (exit code, stdout, stderr). Any exception other than SystemExit escapes."""
    import contextlib
    import io

    from ffnn.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def real_files(tmp_path_factory):
    """Small real inputs and outputs: CSV, NPZ and Parquet data, a classifier, a regressor, a checkpoint."""
    d = tmp_path_factory.mktemp("real")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    labels = np.array(["ant", "bee", "cat"])[np.argmax(X @ rng.normal(size=(3, 3)), axis=1)]
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=90)
    with open(d / "c.csv", "w") as f:
        f.write("a,b,c,kind\n" + "".join(f"{x[0]:.4f},{x[1]:.4f},{x[2]:.4f},{l}\n" for x, l in zip(X, labels)))
    np.savez(d / "r.npz", X=X, y=y)
    files = {"csv": d / "c.csv", "npz": d / "r.npz", "dir": d}
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "kind": labels}), d / "c.parquet")
        files["parquet"] = d / "c.parquet"
    except ImportError:  # pragma: no cover - a test dependency
        pass
    for name, data, extra in (("clf", files["csv"], ["--checkpoint", d / "clf.ckpt"]), ("reg", files["npz"], [])):
        code, _, err = cli("train", data, "--quiet", "--epochs", "4", "--hidden", "5", "--seed", "1",
                           "--out", d / f"{name}.safetensors", *extra)
        assert code == 0, err
        files[name] = d / f"{name}.safetensors"
    files["ckpt"] = d / "clf.ckpt"
    return files


def optimizer_factories(weight_decay):
    """Name → a factory of each optimizer ffnn has (a fresh one per call: optimizers hold state)."""
    import ffnn

    return {
        "sgd": lambda: ffnn.SGD(0.05),
        "momentum": lambda: ffnn.SGD(0.05, momentum=0.9),
        "nesterov": lambda: ffnn.SGD(0.05, momentum=0.9, nesterov=True),
        "adam": lambda: ffnn.Adam(0.01),
        "adamw": lambda: ffnn.AdamW(0.01, weight_decay=weight_decay),
        "rmsprop": lambda: ffnn.RMSprop(0.01),
    }


def network_data(sizes, out, n, seed=0):
    """Inputs (n, S_0) and targets suited to the output activation ``out``: one-hot classes for
    softmax, 0/1 for sigmoid, normal values otherwise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, sizes[0]))
    if out == "softmax":
        T = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=n)]
    elif out == "sigmoid":
        T = rng.integers(0, 2, size=(n, sizes[-1])).astype(float)
    else:
        T = rng.normal(size=(n, sizes[-1]))
    return X, T


@pytest.fixture(autouse=True)
def _own_working_directory(tmp_path_factory, monkeypatch):
    """Every test runs in an empty folder of its own: a command's default output (``ffnn train`` writes
    ./model.safetensors) neither lands in the checkout nor meets a file an earlier run left there."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
