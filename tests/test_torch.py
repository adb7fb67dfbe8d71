"""PyTorch tensors: devices, the PyTorch fast path's numbers against the NumPy path's, no host reads
inside an epoch, and (where there is a GPU) CUDA placement, synchronisation and graphs."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ffnn  # noqa: E402
from ffnn.losses import get_loss  # noqa: E402
from ffnn.training import torch_engine  # noqa: E402

from .conftest import network_data, optimizer_factories  # noqa: E402

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: these tests check numbers, and tiny operations on a busy machine's thread
    pool only add waiting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(sizes, out, n=100, seed=0):
    return network_data(sizes, out, n, seed)


def _params(net):
    return [np.asarray(ffnn._array.to_numpy(p)) for p in net.parameters()]


def _max_rel(a, b):
    return max(float(np.max(np.abs(x - y)) / max(np.max(np.abs(x)), 1e-300)) for x, y in zip(a, b))


def test_import_ffnn_never_imports_torch():
    code = "import sys, ffnn, ffnn.training.torch_engine; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- namespaces and devices ----------------------------------------------------------------------

def test_the_bare_torch_module_is_used_through_array_api_compat():
    import array_api_compat.torch as compat

    net = ffnn.Network([3, 4, 2], "gelu", "softmax", seed=0, xp=torch)  # gelu: the core path
    assert net.xp is compat
    X, T = _data([3, 4, 2], "softmax", n=20)
    ffnn.train(net, torch.from_numpy(X), torch.from_numpy(T), loss="cross_entropy", epochs=2, batch_size=8, seed=0)
    assert isinstance(net.weights[1], torch.Tensor)


def test_device_argument_and_to():
    net = ffnn.Network([3, 4, 2], seed=0, device="cpu")
    assert isinstance(net.weights[1], torch.Tensor) and net.device == torch.device("cpu")
    host = ffnn.Network([3, 4, 2], seed=0)
    assert host.device == "cpu"
    moved = host.to(device="auto")
    assert moved.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    for a, b in zip(_params(host), _params(moved)):
        np.testing.assert_array_equal(a, b)
    back = moved.to(xp=np)
    assert isinstance(back.weights[1], np.ndarray)
    back.weights[1][...] = 0  # a copy, not a view of the tensors
    assert float(moved.weights[1].abs().sum()) > 0
    same = ffnn.Network.from_parameters(host.weights, host.biases, ["sigmoid", "identity"], device="cpu")
    assert same.device == torch.device("cpu")
    with pytest.raises(ValueError, match="needs PyTorch"):
        ffnn.Network([3, 4, 2], xp=np, device="cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            ffnn.Network([3, 4, 2], device="cuda")


def test_numpy_inputs_move_to_the_networks_device():
    net = ffnn.Network([3, 4, 2], seed=0, device="cpu")
    out = net.predict(np.ones((5, 3)))
    assert isinstance(out, torch.Tensor) and out.device == net.device


# --- the same numbers as the NumPy path ------------------------------------------------------------

OPTIMIZERS = optimizer_factories(weight_decay=0.05)
EXTRAS = {  # factories: a schedule object has state, and each run needs its own
    "plain": lambda: {},
    "l2": lambda: {"l2": 1e-2},
    "l1": lambda: {"l1": 1e-3},
    "dropout": lambda: {"dropout": [0.2, 0.1], "dropout_masks": "host"},
    "clip": lambda: {"clip_norm": 0.3},
    "cosine": lambda: {"schedule": "cosine"},
    "step": lambda: {"schedule": ffnn.schedules.StepDecay(every=3, gamma=0.5)},
    "invscaling": lambda: {"schedule": "invscaling"},
    "exponential": lambda: {"schedule": ffnn.schedules.Exponential(0.8)},
    "plateau+validation": lambda: {"schedule": ffnn.schedules.ReduceOnPlateau(factor=0.5, patience=0),
                                   "validation": 0.2, "early_stopping": 3},
}


def _train_both(hidden, out, loss, optimizer, extra, device="cpu", sizes=(6, 16, 8, 3), epochs=10, dtype="float64"):
    """100 steps (10 epochs of 10 batches) on NumPy and on PyTorch tensors; the two parameter lists."""
    X, T = _data(sizes, out)
    host = ffnn.Network(list(sizes), hidden, out, seed=1, dtype=dtype)
    dev = host.to(device=device)
    kw = dict(loss=loss, epochs=epochs, batch_size=10, seed=0)
    h1 = ffnn.train(host, X, T, optimizer=optimizer(), **kw, **extra())
    h2 = ffnn.train(dev, torch.from_numpy(X), torch.from_numpy(T), optimizer=optimizer(), **kw, **extra())
    np.testing.assert_allclose(h1.loss, h2.loss, rtol=1e-12)
    _same_diagnostics(h1, h2)
    return _params(host), _params(dev)


@pytest.mark.parametrize("extra", list(EXTRAS))
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_every_optimizer_and_option_gives_the_numpy_weights(opt, extra):
    a, b = _train_both("relu", "softmax", "cross_entropy", OPTIMIZERS[opt], EXTRAS[extra])
    assert _max_rel(a, b) < 1e-12


@pytest.mark.parametrize("hidden,out,loss", [("tanh", "sigmoid", "binary_cross_entropy"),
                                             ("sigmoid", "identity", "mse"), ("leaky_relu", "identity", "mse"),
                                             ("identity", "identity", "mse")])
def test_every_builtin_kernel_gives_the_numpy_weights(hidden, out, loss):
    for opt in ("sgd", "adam"):
        a, b = _train_both(hidden, out, loss, OPTIMIZERS[opt], lambda: {"dropout": 0.1, "dropout_masks": "host"})
        assert _max_rel(a, b) < 1e-12


def test_the_fast_path_is_taken_and_asks_the_objects():
    net = ffnn.Network([3, 4, 2], "relu", "softmax", device="cpu")
    assert torch_engine.supports(net, get_loss("cross_entropy"))
    assert not torch_engine.supports(net, get_loss("mse"))  # softmax + mse: no fused kernel
    assert not torch_engine.supports(net, get_loss("cross_entropy"), sample_weight=torch.ones(3))
    gelu = ffnn.Network([3, 4, 2], "gelu", "softmax", device="cpu")
    assert not torch_engine.supports(gelu, get_loss("cross_entropy"))
    mine = ffnn.Activation("relu", lambda z: z * (z > 0), lambda z: 1.0 * (z > 0))  # a user's, named "relu"
    assert not torch_engine.supports(ffnn.Network([3, 4, 2], mine, "softmax", device="cpu"),
                                       get_loss("cross_entropy"))
    assert not torch_engine.supports(ffnn.Network([3, 4, 2], "relu", "softmax"), get_loss("cross_entropy"))


def _engine_gradients(net, X, T, loss, n):
    """The PyTorch fast path's J and flat gradient G for the first n rows (unshuffled), one step."""
    from ffnn import updates
    from ffnn.training.engines import NamespaceRows
    from ffnn.training.run import Batches

    chain = updates.Chain(optimizer=ffnn.Adam())  # not plain SGD: G holds ∂J/∂θ itself
    eng = torch_engine.TorchEngine(net, get_loss(loss), NamespaceRows(net, X, T), chain, batch_size=n)
    state = chain.init(net.parameters())
    eng.start_epoch(np.arange(X.shape[0]), None, state)
    batches = Batches(np.arange(X.shape[0]), 0, n, 1)
    ws, rows = eng._rows(batches, 0)
    eng._scalars(eng._table(batches, [0.1], state), 0)
    eng._forward_backward(ws, rows, ws.jbuf)
    eng._gradients(ws)
    return float(ws.jbuf[0]) / n, eng.flat.views(eng.G)


def test_workspace_gradients_equal_the_core():
    sizes = [6, 7, 5, 3]
    for hidden, out, loss in [("relu", "softmax", "cross_entropy"), ("tanh", "sigmoid", "binary_cross_entropy"),
                              ("sigmoid", "identity", "mse"), ("relu", "identity", "sse")]:
        net = ffnn.Network(sizes, hidden, out, seed=1, device="cpu")
        X, T = (torch.from_numpy(a) for a in _data(sizes, out, n=16))
        J, G = _engine_gradients(net, X, T, loss, 16)
        J_core, g = net.loss_and_gradients(X, T, loss)
        assert J == pytest.approx(J_core, rel=1e-13)
        for l in range(1, 4):
            np.testing.assert_allclose(G[2 * l - 2].numpy(), g.weights[l].numpy(), rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(G[2 * l - 1].numpy(), g.biases[l].numpy(), rtol=1e-12, atol=1e-15)


# --- no host reads inside an epoch ---------------------------------------------------------------

@pytest.fixture
def count_host_reads(monkeypatch):
    """Counts every way a tensor's value reaches the host (item, tolist, bool, float, int, numpy, cpu)."""
    counts = {"n": 0}
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, **k):
            counts["n"] += 1
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return counts


@pytest.mark.parametrize("diagnostics", [False, True])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_no_host_read_inside_an_epoch(opt, diagnostics, count_host_reads, monkeypatch):
    """Nothing is read back during the steps; without diagnostics, one read per epoch in all (the loss
    and the divergence flag); the diagnostics read their few numbers after the epoch's last step."""
    from ffnn.training.run import Run
    from ffnn.training.torch_engine import TorchEngine

    sizes = [6, 16, 8, 3]
    X, T = (torch.from_numpy(a) for a in _data(sizes, "softmax", n=200))
    net = ffnn.Network(sizes, "relu", "softmax", seed=1, device="cpu")
    in_fit, in_steps, host_reads = [], [], []
    fit, step = Run.fit, TorchEngine._step

    def counted_fit(self, resume=None):  # the epochs only: the input checks before them read the data once
        start = count_host_reads["n"]
        out = fit(self, resume)
        in_fit.append(count_host_reads["n"] - start)
        host_reads.append(self.engine.host_reads)
        return out

    def counted_step(self, *a):
        start = count_host_reads["n"]
        out = step(self, *a)
        in_steps.append(count_host_reads["n"] - start)
        return out

    monkeypatch.setattr(Run, "fit", counted_fit)
    monkeypatch.setattr(TorchEngine, "_step", counted_step)
    ffnn.train(net, X, T, loss="cross_entropy", optimizer=OPTIMIZERS[opt](), epochs=4, batch_size=10, seed=0,
               l2=1e-3, clip_norm=1.0, dropout=0.1, schedule="cosine", diagnostics=diagnostics)  # 20 steps an epoch
    assert in_steps == [0] * 80
    assert host_reads == [4]
    if not diagnostics:
        assert in_fit == [4]


@pytest.fixture
def stand_in_graphs(monkeypatch):
    """The CUDA-graph sequencing on the CPU: the engine in its graph layout, a stand-in graph whose
    replay runs the captured body again; yields the batch sizes captured, in order."""
    from ffnn.training.torch_engine import TorchEngine

    captured = []

    def capture(self, ws):
        captured.append(ws.n)
        ws.graph = type("Replayed", (), {"replay": staticmethod(lambda: self._body(ws, None))})()
        return True

    init = TorchEngine.__init__

    def graphs_on(self, *a, **k):
        init(self, *a, **k)
        self.graphs = self.static = True

    monkeypatch.setattr(TorchEngine, "__init__", graphs_on)
    monkeypatch.setattr(TorchEngine, "_capture", capture)
    monkeypatch.setattr(TorchEngine, "_on_side_stream", lambda self, fn: fn())
    return captured


@pytest.mark.parametrize("opt", ["sgd", "nesterov", "adam"])
def test_graph_bookkeeping_gives_the_numpy_weights(opt, stand_in_graphs):
    """The CUDA-graph sequencing (eager warm-up, capture, replay, host-side step count, eager update for
    the optimisers whose rule is not captured), run on the CPU with a stand-in graph whose replay runs
    the captured body again."""
    captured = stand_in_graphs
    X, T = _data([6, 16, 8, 3], "softmax", n=95)  # batches of 10 and a last one of 5
    host = ffnn.Network([6, 16, 8, 3], "relu", "softmax", seed=1)
    dev = host.to(device="cpu")
    kw = dict(loss="cross_entropy", epochs=6, batch_size=10, seed=0, l2=1e-3, schedule="cosine", dropout=0.1)
    h1 = ffnn.train(host, X, T, optimizer=OPTIMIZERS[opt](), **kw)
    h2 = ffnn.train(dev, X, T, optimizer=OPTIMIZERS[opt](), dropout_masks="host", **kw)
    assert captured == [10, 5]
    assert _max_rel(_params(host), _params(dev)) < 1e-12
    _same_diagnostics(h1, h2)


def _same_diagnostics(h1, h2):
    """The gradient-flow diagnostics agree (to 1e-9: ‖ΔW‖ of a last step whose η a schedule has brought
    near 0 is a difference of nearly equal weights)."""
    assert h1.dead_fraction == h2.dead_fraction
    for key in ("grad_norm", "delta_mean", "update_ratio"):
        np.testing.assert_allclose(getattr(h1, key), getattr(h2, key), rtol=1e-9)


def test_estimators_train_on_tensors_under_array_api_dispatch():
    scipy = pytest.importorskip("scipy")
    if tuple(int(p) for p in scipy.__version__.split(".")[:2]) < (1, 14):
        pytest.skip("scikit-learn's array-API dispatch needs SciPy 1.14 or newer")
    code = """
import numpy as np, sklearn, torch
from ffnn.sklearn import MLPClassifier
rng = np.random.default_rng(0)
X = rng.normal(size=(120, 5)); y = (X[:, 0] > 0).astype(np.int64)
host = MLPClassifier((8,), max_iter=5, random_state=0).fit(X, y)
with sklearn.config_context(array_api_dispatch=True):
    dev = MLPClassifier((8,), max_iter=5, random_state=0).fit(torch.from_numpy(X), torch.from_numpy(y))
    proba = dev.predict_proba(torch.from_numpy(X))
assert isinstance(dev.network_.weights[1], torch.Tensor)
assert isinstance(proba, torch.Tensor)
np.testing.assert_allclose(proba.numpy(), host.predict_proba(X), rtol=1e-12)
# scikit-learn's steps on the device too: early stopping, partial_fit continuing, dropout, save/load
from ffnn.sklearn import MLPRegressor, load
t = X @ np.arange(1.0, 6.0)
kw = dict(hidden_layer_sizes=(6,), max_iter=8, random_state=1, early_stopping=True, dropout=0.2, solver="sgd")
host = MLPRegressor(**kw).fit(X, t)
host2 = MLPRegressor(hidden_layer_sizes=(6,), random_state=1).partial_fit(X, t).partial_fit(X, t)
with sklearn.config_context(array_api_dispatch=True):
    dev = MLPRegressor(**kw).fit(torch.from_numpy(X), torch.from_numpy(t))
    dev2 = MLPRegressor(hidden_layer_sizes=(6,), random_state=1)
    dev2.partial_fit(torch.from_numpy(X), torch.from_numpy(t)).partial_fit(torch.from_numpy(X), torch.from_numpy(t))
    pred = dev.predict(torch.from_numpy(X))
assert isinstance(dev.coefs_[0], torch.Tensor) and isinstance(pred, torch.Tensor)
np.testing.assert_allclose(dev.validation_scores_, host.validation_scores_, rtol=1e-10)
np.testing.assert_allclose(pred.numpy(), host.predict(X), rtol=1e-10)
np.testing.assert_allclose(dev2.predict(X), host2.predict(X), rtol=1e-10)
import tempfile, os
path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
dev.save(path)
np.testing.assert_allclose(load(path).predict(X), host.predict(X), rtol=1e-10)
print("ok")
"""
    import os
    env = dict(os.environ, SCIPY_ARRAY_API="1", PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]


# --- divergence ----------------------------------------------------------------------------------

@pytest.mark.parametrize("opt", ["sgd", "momentum"])
def test_divergence_stops_with_the_last_good_weights_like_numpy(opt):
    sizes = [4, 8, 1]
    X, T = _data(sizes, "identity", n=64)
    X[40:] *= 1e3
    host = ffnn.Network(sizes, "relu", "identity", seed=0)
    dev = host.to(device="cpu")
    kw = dict(loss="sse", epochs=5, batch_size=8, seed=0)
    with np.errstate(all="ignore"), pytest.raises(ffnn.TrainingDiverged):
        ffnn.train(host, X, T, optimizer=OPTIMIZERS[opt](), **kw)
    with pytest.raises(ffnn.TrainingDiverged):
        ffnn.train(dev, torch.from_numpy(X), torch.from_numpy(T), optimizer=OPTIMIZERS[opt](), **kw)
    a, b = _params(host), _params(dev)
    assert all(np.all(np.isfinite(p)) for p in b)
    assert _max_rel(a, b) < 1e-12


# --- files and checkpoints are device-independent -----------------------------------------------

def test_checkpoints_resume_across_devices(tmp_path):
    sizes = [6, 16, 8, 3]
    X, T = _data(sizes, "softmax")
    kw = dict(loss="cross_entropy", batch_size=10, seed=0)
    whole = ffnn.Network(sizes, "relu", "softmax", seed=1)
    ffnn.train(whole, X, T, optimizer=ffnn.Adam(0.01), epochs=4, **kw)
    ck = tmp_path / "run.safetensors"
    first = ffnn.Network(sizes, "relu", "softmax", seed=1, device="cpu")
    ffnn.train(first, torch.from_numpy(X), torch.from_numpy(T), optimizer=ffnn.Adam(0.01), epochs=2,
               checkpoint=ck, **kw)
    second = ffnn.Network(sizes, "relu", "softmax", seed=1)  # resumed on NumPy
    ffnn.train(second, X, T, optimizer=ffnn.Adam(0.01), epochs=4, resume=ck, **kw)
    assert _max_rel(_params(whole), _params(second)) < 1e-12
    ffnn.save(first, tmp_path / "m.safetensors")
    loaded = ffnn.load(tmp_path / "m.safetensors")
    assert isinstance(loaded.weights[1], np.ndarray)
    for a, b in zip(_params(first), _params(loaded)):
        np.testing.assert_array_equal(a, b)


# --- precision -----------------------------------------------------------------------------------

def test_bf16_trains_with_float32_master_weights():
    sizes = [6, 16, 8, 3]
    X, T = (torch.from_numpy(a).float() for a in _data(sizes, "softmax", n=200))
    net = ffnn.Network(sizes, "relu", "softmax", seed=1, dtype="float32", device="cpu")
    hist = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.1), epochs=5, batch_size=40, seed=0,
                      precision="bf16")
    assert net.weights[1].dtype == torch.float32
    assert hist.loss[-1] < hist.loss[0]
    full = ffnn.Network(sizes, "relu", "softmax", seed=1, dtype="float32", device="cpu")
    ref = ffnn.train(full, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.1), epochs=5, batch_size=40, seed=0)
    assert hist.loss[-1] == pytest.approx(ref.loss[-1], rel=0.05)


def test_precision_is_checked():
    X, T = _data([3, 4, 2], "softmax", n=10)
    with pytest.raises(ValueError, match="float32"):
        ffnn.train(ffnn.Network([3, 4, 2], "relu", "softmax", device="cpu"), X, T, loss="cross_entropy",
                   precision="bf16")
    with pytest.raises(ValueError, match="PyTorch"):
        ffnn.train(ffnn.Network([3, 4, 2], "relu", "softmax", dtype="float32"), X, T, loss="cross_entropy",
                   precision="tf32")
    with pytest.raises(ValueError, match="precision must be"):
        ffnn.train(ffnn.Network([3, 4, 2], "relu", "softmax"), X, T, loss="cross_entropy", precision="fp8")


# --- the command line ----------------------------------------------------------------------------

def test_cli_device_auto_trains_and_saves_a_host_model(tmp_path, capsys):
    from ffnn.cli import main

    out = tmp_path / "m.safetensors"
    assert main(["train", "--device", "auto", "--epochs", "2", "--quiet", "--out", str(out), "--hidden", "8"]) == 0
    assert isinstance(ffnn.load(out).weights[1], np.ndarray)


def test_bench_gpu_measures_on_cpu_tensors():
    from ffnn.cli import bench_gpu

    names = {"ffnn", "ffnn no-diag", "pytorch eager", "pytorch manual"}
    rows = bench_gpu.measure("cpu", shapes=[("tiny", (20, 16, 4), 32, 256)], rounds=1, log=lambda s: None)
    assert set(rows[0]["samples_per_s"]) == names
    # 250 = 7·32 + 26: every contender is timed over the whole epoch, the partial last batch included
    lines = []
    for precision in (None, "bf16"):
        row, = bench_gpu.measure("cpu", shapes=[("partial", (20, 16, 4), 32, 250)], rounds=1, precision=precision,
                                 log=lines.append)
        assert row["errors"] == {} and set(row["samples_per_s"]) == names
        assert row["steps"] == dict.fromkeys(names, 8) and row["samples_timed"] == dict.fromkeys(names, 250)
        assert row["partial_batch"] == dict.fromkeys(names, True)
        assert row["precision"] == (precision or "highest")
        assert row["precision_by_contender"] == dict.fromkeys(names, row["precision"])
    assert not any("NOT COMPARABLE" in line for line in lines)
    assert bench_gpu._batches(64, 32) == [(0, 32), (32, 64)] and bench_gpu._shapes(250, 32) == [32, 26]


# --- CUDA (skipped without a GPU) ----------------------------------------------------------------

@cuda
def test_cuda_float64_gives_the_numpy_weights():
    for opt in ("sgd", "nesterov", "adam"):
        for extra in ("plain", "dropout", "clip", "l2"):
            a, b = _train_both("relu", "softmax", "cross_entropy", OPTIMIZERS[opt], EXTRAS[extra], device="cuda")
            assert _max_rel(a, b) < 1e-12, (opt, extra)


@cuda
@pytest.mark.parametrize("opt", ["sgd", "adam", "rmsprop"])
def test_cuda_epoch_has_no_host_device_synchronisation(opt, monkeypatch):
    """Under ``torch.cuda.set_sync_debug_mode("error")`` from the second epoch on, with a partial last
    batch, six epochs: no synchronisation inside an epoch, and both batch sizes run as CUDA graphs (a
    capture synchronises by design; it happens in the first epoch, and ffnn lifts the debug mode
    around it rather than losing the graphs)."""
    import warnings

    sizes = [20, 64, 32, 4]
    X, T = (torch.from_numpy(a).float().cuda() for a in _data(sizes, "softmax", n=500))  # 7 × 64 + 52
    net = ffnn.Network(sizes, "relu", "softmax", seed=1, dtype="float32", device="cuda")
    from ffnn.training import torch_engine as tf
    from ffnn.training.run import Run

    original = tf.TorchEngine.read_total
    engines = []

    def read_flags(self):  # the epoch's steps are done: its one read of the loss, then the diagnostics'
        engines.append(self)
        torch.cuda.set_sync_debug_mode(0)
        return original(self)

    monkeypatch.setattr(tf.TorchEngine, "read_total", read_flags)
    original_epoch = Run.epoch

    def epoch(self, number, ctrl_c):
        torch.cuda.set_sync_debug_mode("error" if number > 1 else 0)
        try:
            return original_epoch(self, number, ctrl_c)
        finally:
            torch.cuda.set_sync_debug_mode(0)

    monkeypatch.setattr(Run, "epoch", epoch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a capture that fails warns: an error here
        ffnn.train(net, X, T, loss="cross_entropy", optimizer=OPTIMIZERS[opt](), epochs=6, batch_size=64, seed=0,
                   dropout=0.1, l2=1e-4, clip_norm=5.0)
    engine = engines[-1]
    assert engine.graphs and engine.captured == 2
    assert all(ws.graph is not None for ws in engine.workspaces.values())


@cuda
def test_cuda_step_count_is_the_cpu_count():
    """The operations of a step do not depend on the device (the CPU count is the one the suite keeps),
    but for the copy of the step's numbers to the device (on the CPU they are written in place)."""
    from . import torch_ops

    counts = []
    for device in ("cpu", "cuda"):
        X, T = torch_ops.data(16 * 12, (64, 32, 32, 10))
        net = ffnn.Network((64, 32, 32, 10), "relu", "softmax", seed=0, dtype="float32", device=device)
        from ffnn.training import torch_engine as tf

        saved = tf.CUDA_GRAPHS
        tf.CUDA_GRAPHS = False
        try:
            def run(X, T, net=net):
                ffnn.train(net, X.to(device), T.to(device), loss="cross_entropy", epochs=1, batch_size=16, seed=0)

            counts.append(torch_ops.per_step(run, sizes=(64, 32, 32, 10), batch=16)[0])
        finally:
            tf.CUDA_GRAPHS = saved
    assert counts[1] == counts[0] + 1


@cuda
def test_cuda_graphs_give_the_eager_numbers(monkeypatch):
    sizes = [20, 64, 32, 4]
    X, T = _data(sizes, "softmax", n=500)
    results, captured = [], []
    capture = torch_engine.TorchEngine._capture

    def counted(self, ws):
        ok = capture(self, ws)
        captured.append(ok)
        return ok

    monkeypatch.setattr(torch_engine.TorchEngine, "_capture", counted)
    for graphs in (True, False):
        monkeypatch.setattr(torch_engine, "CUDA_GRAPHS", graphs)
        net = ffnn.Network(sizes, "relu", "softmax", seed=1, device="cuda")
        ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.05), epochs=5, batch_size=64, seed=0,
                   schedule="cosine", l2=1e-3)
        results.append(_params(net))
    assert captured == [True, True]  # 500 = 7 × 64 + 52: two batch sizes, two graphs (52: in epoch 4)
    assert _max_rel(*results) < 1e-12


@cuda
@pytest.mark.parametrize("masks", ["device", "host"])
@pytest.mark.parametrize("precision", ["highest", "tf32", "bf16"])
def test_cuda_precisions_train(precision, masks):
    sizes = [20, 64, 32, 4]
    X, T = (torch.from_numpy(a).float().cuda() for a in _data(sizes, "softmax", n=500))
    net = ffnn.Network(sizes, "relu", "softmax", seed=1, dtype="float32", device="cuda")
    hist = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.1), epochs=5, batch_size=64, seed=0,
                      precision=precision, dropout=0.1, dropout_masks=masks)
    assert hist.loss[-1] < hist.loss[0]
    assert net.weights[1].dtype == torch.float32 and net.weights[1].is_cuda
    reference = ffnn.Network(sizes, "relu", "softmax", seed=1, dtype="float32", device="cuda")
    ref = ffnn.train(reference, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.1), epochs=1, batch_size=64,
                     seed=0, dropout=0.1, dropout_masks=masks)
    np.testing.assert_allclose(hist.grad_norm[0], ref.grad_norm[0], rtol=0.1)  # not η times it in bf16


@cuda
def test_cuda_model_loads_on_the_host(tmp_path):
    net = ffnn.Network([3, 4, 2], "relu", "softmax", seed=0, device="cuda")
    ffnn.save(net, tmp_path / "m.safetensors")
    loaded = ffnn.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.weights[1], net.weights[1].cpu().numpy())


@cuda
def test_cuda_estimator_trains_where_the_tensors_live():
    sklearn = pytest.importorskip("sklearn")
    from ffnn.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] > 0).astype(np.int64)
    try:
        ctx = sklearn.config_context(array_api_dispatch=True)
        ctx.__enter__()
    except RuntimeError as exc:  # SciPy's array-API support must be switched on before import
        pytest.skip(str(exc))
    try:
        Xc, yc = torch.from_numpy(X).cuda(), torch.from_numpy(y).cuda()
        clf = MLPClassifier((8,), max_iter=5, random_state=0).fit(Xc, yc)
        assert clf.network_.device.type == "cuda"
        assert clf.predict_proba(torch.from_numpy(X).cuda()).is_cuda
    finally:
        ctx.__exit__(None, None, None)


def test_an_optimizer_continues_on_a_network_moved_to_another_device():
    X, T = _data([4, 6, 2], "softmax")
    kw = dict(loss="cross_entropy", epochs=2, batch_size=10)
    opt, ref_opt = ffnn.SGD(0.1, momentum=0.9), ffnn.SGD(0.1, momentum=0.9)
    host = ffnn.Network([4, 6, 2], "relu", "softmax", seed=0)
    ref = host.copy()
    ffnn.train(host, X, T, optimizer=opt, seed=0, **kw)
    moved = host.to(device="cpu")
    ffnn.train(moved, X, T, optimizer=opt, seed=1, **kw)  # the velocity follows the parameters
    ffnn.train(ref, X, T, optimizer=ref_opt, seed=0, **kw)
    ffnn.train(ref, X, T, optimizer=ref_opt, seed=1, **kw)
    assert isinstance(opt.state["velocity"][0], torch.Tensor)
    assert _max_rel(_params(ref), _params(moved)) < 1e-12


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages without a GPU")
def test_cli_without_a_gpu(capsys):
    from ffnn.cli import main

    assert main(["train", "--device", "cuda", "--epochs", "1", "--quiet"]) == 1
    assert "no CUDA device" in capsys.readouterr().err
    assert main(["bench", "--gpu"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "ffnn: error: bench --gpu: PyTorch sees no CUDA device; nothing measured\n"
    assert main(["train", "--precision", "bf16", "--epochs", "1", "--quiet"]) == 2
    captured = capsys.readouterr()  # a usage error, found before the data are read
    assert captured.out == "" and "--precision tf32/bf16 needs --dtype float32 and a GPU" in captured.err


# --- what an outside review of the fast path found (each at its root) --------------------------------

def test_a_callback_that_rebinds_the_weights_is_trained_from_the_next_epoch():
    """The engine loads the network's parameters when each epoch starts: a callback may replace
    ``net.weights[l]`` (not only change it in place), on every path alike."""
    X, T = _data([6, 16, 8, 3], "softmax")

    def rebind(net, history):
        if len(history.loss) == 2:
            xp = net.xp
            net.weights[1] = xp.asarray(net.weights[1], copy=True) * 0.5
            net.biases[2] = xp.asarray(net.biases[2], copy=True) + 0.25

    results = []
    for device in (None, "cpu"):
        net = ffnn.Network([6, 16, 8, 3], "relu", "softmax", seed=1)
        net = net if device is None else net.to(device=device)
        for opt in ("sgd", "adam"):
            ffnn.train(net, X, T, loss="cross_entropy", optimizer=OPTIMIZERS[opt](), epochs=4, batch_size=10,
                       seed=0, callbacks=[rebind], loop="interpreted")
        results.append(_params(net))
    assert _max_rel(*results) < 1e-12


def test_the_partial_last_batch_is_captured_in_the_first_epoch(stand_in_graphs):
    """Warm-up counts the engine's eager steps, not each batch size's: the last, smaller batch is
    captured the first time it comes (not in the fourth epoch)."""
    captured = stand_in_graphs
    X, T = _data([6, 16, 8, 3], "softmax", n=45)  # four batches of 10 and one of 5
    net = ffnn.Network([6, 16, 8, 3], "relu", "softmax", seed=1, device="cpu")
    ffnn.train(net, X, T, loss="cross_entropy", epochs=1, batch_size=10, seed=0)
    assert captured == [10, 5]


def test_bf16_diagnostics_measure_the_gradient_not_eta_times_it():
    """In bf16 the fused SGD step's δ holds −η·δ; the diagnostics divide η out, as in float32."""
    X, T = (a.astype(np.float32) for a in _data([6, 16, 8, 3], "softmax", n=80))
    hist = {}
    for precision in (None, "bf16"):
        net = ffnn.Network([6, 16, 8, 3], "relu", "softmax", seed=1, dtype="float32", device="cpu")
        hist[precision] = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.01), epochs=2,
                                     batch_size=16, seed=0, precision=precision)
    np.testing.assert_allclose(hist["bf16"].grad_norm, hist[None].grad_norm, rtol=0.1)
    np.testing.assert_allclose(hist["bf16"].delta_mean, hist[None].delta_mean, rtol=0.1)


def test_a_replay_after_divergence_runs_in_the_run_s_precision(monkeypatch):
    """The replay that finds the diverged step is computed under the same precision context as the epoch."""
    from ffnn.training.torch_engine import TorchEngine

    inside, seen = [], []

    class Context:
        def __enter__(self):
            inside.append(True)

        def __exit__(self, *exc):
            inside.pop()

    checked = TorchEngine._checked

    def recorded(self, *a):
        seen.append(bool(inside))
        return checked(self, *a)

    monkeypatch.setattr(TorchEngine, "_precision", lambda self: Context())
    monkeypatch.setattr(TorchEngine, "_checked", recorded)
    X, T = _data([4, 8, 1], "identity", n=64)
    X[40:] *= 1e6
    net = ffnn.Network([4, 8, 1], "relu", "identity", seed=0, device="cpu")
    with pytest.raises(ffnn.TrainingDiverged):
        ffnn.train(net, X, T, loss="mse", optimizer=ffnn.SGD(0.5), epochs=3, batch_size=8, seed=0, shuffle=False)
    assert seen and all(seen)


def test_tf32_goes_through_the_newer_api_and_highest_turns_it_off():
    from ffnn.training.options import precision_for
    from ffnn.training.torch_engine import tf32_matmul

    matmul = torch.backends.cuda.matmul
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("this PyTorch has only the allow_tf32 flag")
    net = ffnn.Network([3, 4, 2], seed=0, dtype="float32", device="cpu")
    assert precision_for("highest", net, True) == "highest" and precision_for("highest", net, False) is None
    before = matmul.fp32_precision
    matmul.fp32_precision = "tf32"  # a user who set the newer API: the older flag would raise now
    try:
        with tf32_matmul(False):
            assert matmul.fp32_precision == "ieee"
        assert matmul.fp32_precision == "tf32"
        with tf32_matmul(True):
            assert matmul.fp32_precision == "tf32"
    finally:
        matmul.fp32_precision = before


def test_device_dropout_is_reproducible_and_not_the_host_masks():
    X, T = _data([6, 16, 8, 3], "softmax")
    runs = []
    for masks in ("device", "device", "host"):
        net = ffnn.Network([6, 16, 8, 3], "relu", "softmax", seed=1, device="cpu")
        ffnn.train(net, X, T, loss="cross_entropy", epochs=3, batch_size=10, seed=0, dropout=0.3, dropout_masks=masks)
        runs.append(_params(net))
    assert _max_rel(runs[0], runs[1]) == 0  # the same seed, the same device masks
    assert _max_rel(runs[0], runs[2]) > 1e-6  # other masks than the host's
    with pytest.raises(ValueError, match="dropout_masks"):
        ffnn.train(ffnn.Network([6, 4, 3], device="cpu"), X, T, loss="mse", dropout_masks="gpu")


def test_the_command_line_passes_dropout_masks_and_precision(tmp_path, monkeypatch):
    from ffnn.cli import main

    seen = {}
    original = ffnn.train

    def recorded(*a, **k):
        seen.update(k)
        return original(*a, **k)

    monkeypatch.setattr(ffnn, "train", recorded)
    out = tmp_path / "m.safetensors"
    assert main(["train", "--device", "cpu", "--epochs", "1", "--quiet", "--out", str(out), "--hidden", "8",
                 "--dropout", "0.1", "--dropout-masks", "host"]) == 0
    assert seen["dropout_masks"] == "host" and seen["precision"] == "highest"


# --- what an outside test of the rebuilt path found (each a regression test) ---------------------------

def _overflowing_with_dropout():
    r = np.random.default_rng(0)
    return r.normal(size=(20, 2)), r.normal(size=(20, 1))


def test_a_replay_draws_the_epochs_dropout_masks_again():
    """With dropout, the replay after a deferred divergence takes the masks the epoch took (the host's:
    the driver rewinds the Generator; the device's: the engine rewinds its generator), so it finds the
    step that diverged instead of following another trajectory."""
    X, T = _overflowing_with_dropout()
    kw = dict(loss="mse", epochs=1, batch_size=1, dropout=0.1, shuffle=False, seed=0)
    host = ffnn.Network([2, 5, 1], "relu", "identity", seed=1)
    dev = host.to(device="cpu")
    with pytest.raises(ffnn.TrainingDiverged):
        ffnn.train(host, X, T, optimizer=ffnn.SGD(0.5, momentum=0.5), **kw)
    with pytest.raises(ffnn.TrainingDiverged):
        ffnn.train(dev, torch.tensor(X), torch.tensor(T), optimizer=ffnn.SGD(0.5, momentum=0.5),
                   dropout_masks="host", **kw)
    assert _max_rel(_params(host), _params(dev)) < 1e-12
    for seed in range(6):  # device masks: a first pass that overflows is always found again
        net = ffnn.Network([2, 5, 1], "relu", "identity", seed=1, device="cpu")
        X, T = (np.random.default_rng(seed).normal(size=s) for s in ((20, 2), (20, 1)))
        try:
            ffnn.train(net, torch.tensor(X * 4), torch.tensor(T), optimizer=ffnn.SGD(0.5, momentum=0.5), **kw)
        except ffnn.TrainingDiverged:
            pass
        assert all(bool(torch.isfinite(p).all()) for p in net.parameters())


def test_plain_sgd_with_a_large_rate_diverges_at_the_numpy_step():
    """The replay checks δ unscaled (as the NumPy path does), not −η·δ, which overflows a step earlier."""
    r = np.random.default_rng(0)
    X, T = r.normal(size=(37, 4)), r.normal(size=(37, 3))
    host = ffnn.Network([4, 5, 3], "tanh", "identity", seed=1)
    dev = host.to(device="cpu")
    for net, x, t in ((host, X, T), (dev, torch.tensor(X), torch.tensor(T))):
        with pytest.raises(ffnn.TrainingDiverged):
            ffnn.train(net, x, t, loss="mse", optimizer=ffnn.SGD(1e6), epochs=20, batch_size=8, seed=0)
    assert _max_rel(_params(host), _params(dev)) < 1e-12


def test_diagnostics_of_a_last_step_at_eta_zero():
    X, T = _data([6, 16, 8, 3], "softmax", n=16)

    def sched(t):
        return 0.0 if t % 4 == 3 else 1.0

    kw = dict(loss="cross_entropy", optimizer=ffnn.SGD(0.1), epochs=2, batch_size=4, seed=0, schedule=sched)
    host = ffnn.Network([6, 16, 8, 3], "relu", "softmax", seed=1)
    dev = host.to(device="cpu")
    h1 = ffnn.train(host, X, T, **kw)
    h2 = ffnn.train(dev, torch.from_numpy(X), torch.from_numpy(T), **kw)
    assert np.all(np.isfinite(h2.grad_norm))
    _same_diagnostics(h1, h2)


@pytest.mark.parametrize("opt", ["adam", "sgd", "momentum"])
def test_an_interrupt_part_way_through_a_chunk_keeps_the_step_count_with_the_weights(opt, monkeypatch):
    """Ctrl-C at the 13th step: both paths keep the 12 updates taken, and the optimiser's step count
    says 12 (Adam's bias correction and a schedule go on from there)."""
    from ffnn.training.engines import NumpyEngine
    from ffnn.training.torch_engine import TorchEngine

    def interrupt_at_13(cls, name):
        original, calls = getattr(cls, name), [0]

        def interrupted(self, *a, **k):
            calls[0] += 1
            if calls[0] == 13:
                raise KeyboardInterrupt
            return original(self, *a, **k)

        monkeypatch.setattr(cls, name, interrupted)

    interrupt_at_13(TorchEngine, "_step")
    interrupt_at_13(NumpyEngine, "step")
    X, T = _data([4, 5, 3], "softmax", n=40)
    factory = {"adam": lambda: ffnn.Adam(0.01), "sgd": lambda: ffnn.SGD(0.1),
               "momentum": lambda: ffnn.SGD(0.1, momentum=0.9)}[opt]
    host = ffnn.Network([4, 5, 3], "relu", "softmax", seed=1)
    dev = host.to(device="cpu")
    opts = factory(), factory()
    for net, x, t, o, loop in ((host, X, T, opts[0], "interpreted"), (dev, torch.from_numpy(X), torch.from_numpy(T),
                                                                     opts[1], "auto")):
        with pytest.raises(ffnn.TrainingInterrupted):
            ffnn.train(net, x, t, loss="cross_entropy", optimizer=o, seed=0, epochs=3, batch_size=4, loop=loop)
    assert opts[0].state["step"] == opts[1].state["step"] == 12
    assert _max_rel(_params(host), _params(dev)) < 1e-12
