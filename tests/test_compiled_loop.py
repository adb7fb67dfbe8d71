"""The compiled training loop (numba) against the interpreted one: the same weights in float64 within
1e-12 after 100 steps, for every optimiser, schedule, penalty, clipping, dropout and sample weights,
every built-in activation and loss; and what it must not change (errors, History, fallbacks)."""

import numpy as np
import pytest

import ffnn
from ffnn.training import compiled_engine

pytestmark = pytest.mark.skipif(not compiled_engine.available(), reason="numba is not installed")

RNG = np.random.default_rng(7)
X = RNG.normal(size=(70, 5))
Y = RNG.integers(0, 3, 70)
T_ONEHOT = np.eye(3)[Y]
T_REAL = RNG.normal(size=(70, 3))
W = RNG.uniform(0.2, 2.0, 70)


def _both(sizes, acts, out, T, **options):
    """(weights, history) of the interpreted and the compiled loop on the same run; 100+ steps."""
    results = []
    for loop in ("interpreted", "compiled"):
        net = ffnn.Network(sizes, acts, out, seed=3)
        opt = options.pop("optimizer_factory", None)
        kw = dict(options)
        if opt is not None:
            options["optimizer_factory"] = opt
            kw["optimizer"] = opt()
        h = ffnn.train(net, X, T, epochs=20, batch_size=16, seed=5, loop=loop, **kw)  # 5 steps per epoch
        results.append(([p.copy() for p in net.parameters()], h))
    (p_i, h_i), (p_c, h_c) = results
    assert h_i.loop in ("numpy", "core") and h_c.loop == "compiled"
    return p_i, p_c, h_i, h_c


def _close(p_i, p_c, tol=1e-12):
    for a, b in zip(p_i, p_c):
        assert np.all(np.isfinite(b))
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)


OPTIMIZERS = {
    "sgd": lambda: ffnn.SGD(0.05),
    "momentum": lambda: ffnn.SGD(0.05, momentum=0.9),
    "nesterov": lambda: ffnn.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: ffnn.Adam(0.01),
    "adam_ssc": lambda: ffnn.Adam(0.01, step_size_correction=True),
    "adamw": lambda: ffnn.AdamW(0.01, weight_decay=0.1),
    "rmsprop": lambda: ffnn.RMSprop(0.01),
}
EXTRAS = {
    "plain": {},
    "penalty": {"l1": 1e-3, "l2": 1e-2},
    "clip": {"clip_norm": 0.05},
    "dropout": {"dropout": 0.3},
    "weights": {"sample_weight": W},
    "schedule": {"schedule": "cosine"},
}


@pytest.mark.parametrize("extra", list(EXTRAS))
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_same_weights_as_the_interpreted_loop(opt, extra):
    p_i, p_c, h_i, h_c = _both([5, 8, 3], "tanh", "softmax", T_ONEHOT, loss="cross_entropy",
                               optimizer_factory=OPTIMIZERS[opt], **EXTRAS[extra])
    _close(p_i, p_c)
    np.testing.assert_allclose(h_c.loss, h_i.loss, rtol=1e-12)
    np.testing.assert_allclose(h_c.lr, h_i.lr, rtol=1e-15)


@pytest.mark.parametrize("hidden", ["identity", "sigmoid", "tanh", "relu", "leaky_relu(slope=0.2)",
                                    "elu(alpha=0.5)", "softplus", "gelu"])
def test_every_hidden_activation(hidden):
    p_i, p_c, h_i, h_c = _both([5, 7, 6, 3], hidden, "softmax", T_ONEHOT, loss="cross_entropy",
                               optimizer="adam")
    _close(p_i, p_c)


@pytest.mark.parametrize("out,loss,T", [
    ("softmax", "cross_entropy", T_ONEHOT), ("sigmoid", "binary_cross_entropy", T_ONEHOT),
    ("identity", "mse", T_REAL), ("identity", "sse", T_REAL), ("identity", "half_sse", T_REAL),
    ("sigmoid", "mse", T_ONEHOT), ("softmax", "mse", T_ONEHOT), ("tanh", "half_sse", T_REAL / 4),
    ("sigmoid", "cross_entropy", T_ONEHOT), ("softmax", "binary_cross_entropy", T_ONEHOT),
])
@pytest.mark.parametrize("weighted", [False, True])
def test_every_output_and_loss(out, loss, T, weighted):
    kw = {"sample_weight": W} if weighted else {}
    p_i, p_c, h_i, h_c = _both([5, 8, 3], "relu", out, T, loss=loss, optimizer=ffnn.SGD(0.02), **kw)
    _close(p_i, p_c, 1e-11)
    np.testing.assert_allclose(h_c.loss, h_i.loss, rtol=1e-11)


@pytest.mark.parametrize("batch", [1, 3, 8, 9, 70])
def test_small_and_large_batches_and_the_short_last_one(batch):
    results = []
    for loop in ("interpreted", "compiled"):
        net = ffnn.Network([5, 8, 3], "relu", "softmax", seed=3)
        ffnn.train(net, X, T_ONEHOT, loss="cross_entropy", epochs=3, batch_size=batch, seed=5, loop=loop,
                   l2=1e-3)
        results.append(net.parameters())
    _close(*results)


def test_diagnostics_are_the_same():
    p_i, p_c, h_i, h_c = _both([5, 8, 6, 3], "relu", "softmax", T_ONEHOT, loss="cross_entropy",
                               optimizer=ffnn.SGD(0.3))
    for key in ("grad_norm", "delta_mean", "update_ratio"):
        np.testing.assert_allclose(getattr(h_c, key), getattr(h_i, key), rtol=1e-9)
    assert h_c.dead_fraction == h_i.dead_fraction


def test_float32_trains_to_the_same_accuracy():
    accs = []
    for loop in ("interpreted", "compiled"):
        net = ffnn.Network([5, 16, 3], "relu", "softmax", seed=3, dtype="float32")
        h = ffnn.train(net, X, T_ONEHOT, loss="cross_entropy", epochs=30, batch_size=8, seed=5, loop=loop)
        accs.append(float(np.mean(net.predict(X.astype(np.float32)).argmax(1) == Y)))
        assert h.loop == ("compiled" if loop == "compiled" else "numpy")
    assert abs(accs[0] - accs[1]) <= 0.03


def test_divergence_keeps_the_last_finite_weights():
    net = ffnn.Network([5, 8, 3], "relu", "softmax", seed=3)
    with pytest.raises(ffnn.TrainingDiverged, match="diverged"):
        ffnn.train(net, X * 1e3, T_ONEHOT, loss="cross_entropy", optimizer=ffnn.SGD(1e30), epochs=3, loop="compiled")
    assert all(np.all(np.isfinite(p)) for p in net.parameters())


def test_resume_from_a_checkpoint_continues_exactly(tmp_path):
    ck = tmp_path / "run.ckpt"
    full = ffnn.Network([5, 8, 3], "relu", "softmax", seed=3)
    ffnn.train(full, X, T_ONEHOT, loss="cross_entropy", optimizer="adam", epochs=4, seed=5)
    part = ffnn.Network([5, 8, 3], "relu", "softmax", seed=3)
    ffnn.train(part, X, T_ONEHOT, loss="cross_entropy", optimizer="adam", epochs=2, seed=5, checkpoint=ck)
    again = ffnn.Network([5, 8, 3], "relu", "softmax", seed=3)
    h = ffnn.train(again, X, T_ONEHOT, loss="cross_entropy", optimizer="adam", epochs=4, seed=5, resume=ck)
    assert h.loop == "compiled"
    for a, b in zip(full.parameters(), again.parameters()):
        np.testing.assert_array_equal(a, b)


def test_users_activation_runs_interpreted_and_compiled_says_why():
    act = ffnn.Activation("mine", np.tanh, lambda z: 1 - np.tanh(z) ** 2)
    net = ffnn.Network([5, 4, 3], act, "softmax", seed=0)
    h = ffnn.train(net, X, T_ONEHOT, loss="cross_entropy", epochs=1)
    assert h.loop == "core"
    with pytest.raises(ValueError, match="activation 'mine' .* not a built-in"):
        ffnn.train(net, X, T_ONEHOT, loss="cross_entropy", epochs=1, loop="compiled")


def test_bad_loop_option():
    net = ffnn.Network([5, 4, 3], "relu", "softmax", seed=0)
    with pytest.raises(ValueError, match="loop must be one of auto, compiled, interpreted"):
        ffnn.train(net, X, T_ONEHOT, loss="cross_entropy", loop="fast")


def test_without_numba_training_runs_interpreted(monkeypatch):
    monkeypatch.setattr(compiled_engine, "_KERNELS", False)
    net = ffnn.Network([5, 4, 3], "relu", "softmax", seed=0)
    assert ffnn.train(net, X, T_ONEHOT, loss="cross_entropy", epochs=1).loop == "numpy"
    with pytest.raises(ValueError, match="numba is not installed"):
        ffnn.train(net, X, T_ONEHOT, loss="cross_entropy", epochs=1, loop="compiled")


def test_auto_takes_the_compiled_loop_at_every_size():
    big = ffnn.Network([784, 256, 256, 10], "relu", "softmax", seed=0, dtype="float32")
    Xb = np.zeros((8, 784), np.float32)
    Tb = np.eye(10, dtype=np.float32)[np.arange(8)]
    assert ffnn.train(big, Xb, Tb, loss="cross_entropy", epochs=1, batch_size=8).loop == "compiled"


def test_ctrl_c_between_chunks_keeps_completed_steps(monkeypatch):
    """A KeyboardInterrupt raised by the check between two calls of the kernel stops training with every
    completed update kept (the engine's chunks are its unit of work)."""
    net = ffnn.Network([5, 8, 3], "relu", "softmax", seed=3)
    calls = {"n": 0}
    real = compiled_engine.CompiledEngine.check_interrupt

    def interrupt(self, ctrl_c):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, ctrl_c)

    monkeypatch.setattr(compiled_engine.CompiledEngine, "check_interrupt", interrupt)
    with pytest.raises(ffnn.TrainingInterrupted) as info:
        ffnn.train(net, X, T_ONEHOT, loss="cross_entropy", epochs=50, batch_size=1, seed=5)
    assert info.value.history.interrupted
    assert all(np.all(np.isfinite(p)) for p in net.parameters())


def test_will_compile_reads_numbas_cache_index(monkeypatch):
    from types import SimpleNamespace

    def fake(index):
        cache = SimpleNamespace(_cache_file=SimpleNamespace(_load_index=lambda: index))
        return SimpleNamespace(run_steps=SimpleNamespace(signatures=[], _cache=cache))

    monkeypatch.setattr(compiled_engine, "_KERNELS", fake({}))
    assert compiled_engine.will_compile("float32")
    monkeypatch.setattr(compiled_engine, "_KERNELS", fake({("(array(float32, 1d, C), ...)", "magic"): "x"}))
    assert not compiled_engine.will_compile("float32") and compiled_engine.will_compile("float64")


def test_a_first_compile_is_announced_when_progress_is_shown(monkeypatch, capsys):
    monkeypatch.setattr(compiled_engine, "will_compile", lambda dtype: True)
    net = ffnn.Network([5, 4, 3], "relu", "softmax", seed=0)
    ffnn.train(net, X, T_ONEHOT, loss="cross_entropy", epochs=1, progress=True)
    assert "ffnn: compiling the training loop for float64 (once per installation" in capsys.readouterr().err
    ffnn.train(net, X, T_ONEHOT, loss="cross_entropy", epochs=1)  # no progress: nothing written
    assert "compiling" not in capsys.readouterr().err
