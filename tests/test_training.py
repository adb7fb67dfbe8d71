import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import ffnn
from ffnn.training.loop import _split

from .conftest import to_np

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_T = np.array([[0], [1], [1], [0]], dtype=float)


def _blobs(n=120, k=3, d=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    centers = rng.normal(scale=3, size=(k, d))
    return centers[y] + rng.normal(size=(n, d)), np.eye(k)[y], y


def _same(a, b):
    return all(np.array_equal(to_np(x), to_np(y)) for x, y in zip(a.parameters(), b.parameters()))


def test_seed_000_network_learns_xor_with_plain_sgd():
    net = ffnn.Network([2, 3, 1], "sigmoid", "sigmoid", seed=1)
    h = ffnn.train(net, XOR_X, XOR_T, loss="half_sse", optimizer=ffnn.SGD(2.0), epochs=3000, batch_size=4, seed=0)
    assert h.loss[-1] < 0.01
    np.testing.assert_array_equal(net.predict(XOR_X) > 0.5, XOR_T > 0.5)


def test_online_learning_batch_size_one(xp):
    net = ffnn.Network([2, 4, 1], "tanh", "sigmoid", seed=3, xp=xp)
    h = ffnn.train(net, xp.asarray(XOR_X), xp.asarray(XOR_T), loss="binary_cross_entropy",
                   optimizer=ffnn.SGD(0.5, momentum=0.9, nesterov=True), epochs=300, batch_size=1, seed=0)
    assert h.loss[-1] < h.loss[0]
    np.testing.assert_array_equal(to_np(net.predict(xp.asarray(XOR_X))) > 0.5, XOR_T > 0.5)


def test_one_epoch_full_batch_is_one_sgd_step_with_penalties():
    """θ₁ = θ₀ − η ∇(J + λ₁Σ|W| + λ₂/2 ΣW²): the L1/L2 gradient against finite differences."""
    X, T, _ = _blobs(20)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    for b in net.biases:
        b[...] = 0.1
    l1, l2, lr = 0.01, 0.03, 0.1
    before = net.copy()

    def penalised(n):
        J = n.loss(X, T, "cross_entropy")
        return J + sum(l1 * np.abs(W).sum() + 0.5 * l2 * (W**2).sum() for W in n.weights)

    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(lr), epochs=1, batch_size=20,
                   shuffle=False, l1=l1, l2=l2)
    assert h.loss[0] == pytest.approx(penalised(before), rel=1e-12)
    assert h.loss_includes_penalty
    eps = 1e-6
    for p0, p1 in zip(before.parameters(), net.parameters()):
        grad = (p0 - p1) / lr
        for idx in [(0, 0), (1, 2)] if p0.ndim == 2 else [(0,), (2,)]:
            old = p0[idx]
            p0[idx] = old + eps
            jp = penalised(before)
            p0[idx] = old - eps
            jm = penalised(before)
            p0[idx] = old
            assert grad[idx] == pytest.approx((jp - jm) / (2 * eps), rel=1e-6)


def test_same_seed_same_weights_bit_for_bit():
    X, T, _ = _blobs()
    nets = []
    for _ in range(2):
        net = ffnn.Network([4, 8, 3], "relu", "softmax", seed=5)
        ffnn.train(net, X, T, loss="cross_entropy", optimizer="adam", epochs=5, batch_size=16, seed=42,
                   dropout=0.2, validation=0.2)
        nets.append(net)
    assert _same(*nets)
    other = ffnn.Network([4, 8, 3], "relu", "softmax", seed=5)
    ffnn.train(other, X, T, loss="cross_entropy", optimizer="adam", epochs=5, batch_size=16, seed=43,
               dropout=0.2, validation=0.2)
    assert not _same(nets[0], other)


def test_early_stopping_restores_best_epoch():
    X, T, _ = _blobs(200, d=2, seed=1)
    T = T.copy()
    T[::3] = np.roll(T[::3], 1, axis=1)  # label noise so that the network overfits
    net = ffnn.Network([2, 64, 64, 3], "relu", "softmax", seed=0)
    seen = {}
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.Adam(0.01), epochs=200, batch_size=16,
                   validation=0.3, early_stopping=5, seed=0,
                   callbacks=[lambda n, hist: seen.setdefault(hist.epoch[-1], n.copy()) and None])
    assert h.stopped_early and len(h) < 200
    best = int(np.argmin(h.val_loss)) + 1
    assert h.best_epoch == best and len(h) == best + 5
    assert _same(net, seen[best])


def test_callbacks_can_stop_and_see_history():
    X, T, _ = _blobs()
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    h = ffnn.train(net, X, T, loss="cross_entropy", epochs=50, callbacks=[lambda n, hist: len(hist) == 3])
    assert len(h) == 3 and h.stopped_early


def test_validation_split_is_stratified_and_history_complete():
    _, T, y = _blobs(300)
    rng = np.random.default_rng(0)
    tr, va = _split(300, 0.2, T, rng)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 300
    for c in range(3):
        assert abs(np.mean(y[va] == c) - np.mean(y == c)) < 0.02
    X, T, _ = _blobs(300)
    net = ffnn.Network([4, 6, 3], "relu", "softmax", seed=0)
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer="adam", epochs=3, validation=0.2, seed=0)
    assert h.metric == "accuracy" and len(h.val_metric) == 3 and all(0 <= m <= 1 for m in h.val_metric)
    assert all(t > 0 for t in h.time) and h.lr == [0.001] * 3
    assert "val_loss" in str(h)
    d = h.to_dict()
    assert ffnn.History.from_dict(d).loss == h.loss


def test_explicit_validation_and_regression_metric():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    T = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.normal(size=(200, 1))
    net = ffnn.Network([3, 16, 1], "tanh", "identity", seed=0)
    h = ffnn.train(net, X[:150], T[:150], loss="mse", optimizer=ffnn.Adam(0.01), epochs=60,
                   validation=(X[150:], T[150:]), seed=0, schedule="cosine")
    assert h.metric == "r2" and h.val_metric[-1] > 0.95
    assert h.lr[-1] < 1e-5


def test_divergence_stops_with_clear_error_and_finite_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)) * 1e3
    T = rng.normal(size=(64, 1)) * 1e3
    net = ffnn.Network([3, 8, 1], "relu", "identity", seed=0)
    with pytest.raises(ffnn.TrainingDiverged, match="smaller learning rate.*scaled inputs"):
        ffnn.train(net, X, T, loss="sse", optimizer=ffnn.SGD(10.0), epochs=50, batch_size=8)
    assert all(np.all(np.isfinite(p)) for p in net.parameters())


def test_clip_norm_bounds_the_step():
    X, T, _ = _blobs(20)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    before = net.copy()
    ffnn.train(net, X * 100, T, loss="cross_entropy", optimizer=ffnn.SGD(1.0), epochs=1, batch_size=20,
               shuffle=False, clip_norm=0.5)
    step = math.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(before.parameters(), net.parameters())))
    assert step == pytest.approx(0.5, rel=1e-9)


def test_dropout_trains_but_never_drops_in_predict():
    X, T, _ = _blobs()
    net = ffnn.Network([4, 32, 3], "relu", "softmax", seed=0)
    ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.Adam(0.01), epochs=30, dropout=0.5, seed=0)
    assert np.array_equal(net.predict(X), net.predict(X))
    assert ffnn.metrics.accuracy(T, net.predict(X)) > 0.9
    tr = net.forward(X[:50], dropout=[0.5], rng=np.random.default_rng(0))
    dropped = np.mean(tr.masks[1] == 0)
    assert 0.4 < dropped < 0.6 and set(np.unique(tr.masks[1])) <= {0.0, 2.0}


def test_dropout_gradient_matches_finite_differences_for_a_fixed_mask():
    X, T, _ = _blobs(6)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    tr = net.forward(X, dropout=[0.4], rng=np.random.default_rng(1))
    g = net.backward(tr, T, "cross_entropy")
    mask = tr.masks[1]

    def J():
        h = np.tanh(X @ net.weights[1] + net.biases[1]) * mask
        z = h @ net.weights[2] + net.biases[2]
        z = z - z.max(axis=1, keepdims=True)
        return -np.sum(T * (z - np.log(np.exp(z).sum(axis=1, keepdims=True)))) / len(X)

    W = net.weights[1]
    for idx in [(0, 0), (2, 3), (3, 4)]:
        old = W[idx]
        W[idx] = old + 1e-6
        jp = J()
        W[idx] = old - 1e-6
        jm = J()
        W[idx] = old
        assert g.weights[1][idx] == pytest.approx((jp - jm) / 2e-6, rel=1e-6, abs=1e-10)


def test_second_call_continues_weights_and_optimizer_state():
    X, T, _ = _blobs()
    a = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    b = a.copy()
    opt_a = ffnn.Adam(0.01)
    ffnn.train(a, X, T, loss="cross_entropy", optimizer=opt_a, epochs=4, shuffle=False)
    opt_b = ffnn.Adam(0.01)
    ffnn.train(b, X, T, loss="cross_entropy", optimizer=opt_b, epochs=2, shuffle=False)
    assert opt_b.state["step"] == 2 * math.ceil(120 / 32)
    ffnn.train(b, X, T, loss="cross_entropy", optimizer=opt_b, epochs=2, shuffle=False)
    assert _same(a, b)


def test_schedule_drives_the_learning_rate():
    X, T, _ = _blobs()
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.1), epochs=4, batch_size=40,
                   schedule=lambda t: 0.5 ** t)
    assert h.lr == pytest.approx([0.1 * 0.5**2, 0.1 * 0.5**5, 0.1 * 0.5**8, 0.1 * 0.5**11])


def test_progress_bar_shows_batches_and_metrics(capsys):
    X, T, _ = _blobs()
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    ffnn.train(net, X, T, loss="cross_entropy", epochs=2, validation=0.25, progress=True, seed=0)
    err = capsys.readouterr()
    text = err.err + err.out
    assert "batch" in text and "epoch 2" in text and "val_accuracy" in text


def test_digits_64_32_10_reaches_97_percent():
    """The README's example: a 64-32-10 relu/softmax network on scikit-learn's digits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(digits.data / 16.0, digits.target, test_size=0.25,
                                                        random_state=0, stratify=digits.target)
    net = ffnn.Network([64, 64, 32, 10], "relu", "softmax", seed=0)
    ffnn.train(net, X_train, np.eye(10)[y_train], loss="cross_entropy", optimizer=ffnn.Adam(0.003),
               epochs=40, batch_size=32, validation=0.1, early_stopping=8, seed=0)
    assert np.mean(net.predict(X_test).argmax(axis=1) == y_test) >= 0.97


# --- checkpoints ----------------------------------------------------------------------------------

def _ckpt_run(tmp_path, epochs, resume=None, checkpoint=None):
    X, T, _ = _blobs(150)
    net = ffnn.Network([4, 8, 3], "relu", "softmax", seed=0)
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=ffnn.SGD(0.05, momentum=0.9, nesterov=True),
                   epochs=epochs, batch_size=16, seed=7, dropout=0.1, validation=0.2, early_stopping=50,
                   schedule="plateau", checkpoint=checkpoint, resume=resume)
    return net, h


def test_checkpoint_written_exactly_at_path_and_resume_is_exact(tmp_path):
    path = tmp_path / "run.ckpt"
    _ckpt_run(tmp_path, 3, checkpoint=path)
    assert path.exists() and sorted(os.listdir(tmp_path)) == ["run.ckpt"]
    resumed, h = _ckpt_run(tmp_path, 6, resume=path)
    straight, h2 = _ckpt_run(tmp_path, 6)
    assert _same(resumed, straight)
    assert h.loss == h2.loss and h.epoch == [1, 2, 3, 4, 5, 6]


def test_checkpoint_has_no_pickle_and_other_tools_read_it(tmp_path):
    from safetensors.numpy import load_file

    path = tmp_path / "c.safetensors"
    net, _ = _ckpt_run(tmp_path, 2, checkpoint=path)
    arrays = load_file(str(path))
    np.testing.assert_array_equal(arrays["W.1"], net.weights[1])
    assert b"pickle" not in path.read_bytes()


KILL_SCRIPT = textwrap.dedent("""
    import sys, time, numpy as np, ffnn
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=150)
    X = rng.normal(scale=3, size=(3, 4))[y] + rng.normal(size=(150, 4))
    net = ffnn.Network([4, 8, 3], "relu", "softmax", seed=0)
    def slow(n, h):
        print("epoch", h.epoch[-1], flush=True)
        time.sleep(0.3)
    ffnn.train(net, X, np.eye(3)[y], loss="cross_entropy", optimizer=ffnn.Adam(0.01), epochs=int(sys.argv[2]),
               batch_size=8, seed=3, dropout=0.2, checkpoint=sys.argv[1], callbacks=[slow],
               resume=sys.argv[3] if len(sys.argv) > 3 else None)
    np.save(sys.argv[1] + ".final.npy", net.weights[1])
""")


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    ckpt = tmp_path / "killed.ckpt"
    proc = subprocess.Popen([sys.executable, str(script), str(ckpt), "12"], stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("epoch 4"):
                break
        time.sleep(0.15)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert ckpt.exists() and not (tmp_path / "killed.ckpt.final.npy").exists()
    subprocess.run([sys.executable, str(script), str(ckpt), "12", str(ckpt)], check=True, capture_output=True)
    clean = tmp_path / "clean.ckpt"
    subprocess.run([sys.executable, str(script), str(clean), "12"], check=True, capture_output=True)
    np.testing.assert_array_equal(np.load(str(ckpt) + ".final.npy"), np.load(str(clean) + ".final.npy"))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(optimizer=ffnn.SGD(0.1), epochs=0), ValueError, "epochs must be a positive integer, got 0"),
    (dict(epochs=-3), ValueError, "epochs must be a positive integer"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive integer, got 0"),
    (dict(batch_size=2.5), ValueError, "batch_size must be a positive integer"),
    (dict(optimizer="lbfgs"), ValueError, "unknown optimizer 'lbfgs'"),
    (dict(schedule="linear"), ValueError, "unknown schedule 'linear'"),
    (dict(validation=1.5), ValueError, r"validation fraction must be a fraction in \(0, 1\), got 1.5"),
    (dict(validation=0.0), ValueError, "validation fraction must be a fraction in"),
    (dict(l2=-1), ValueError, "l2 must be a non-negative number"),
    (dict(dropout=1.0), ValueError, r"dropout rate must be a number in \[0, 1\)"),
    (dict(early_stopping=0), ValueError, "patience must be a positive integer"),
    (dict(clip_norm=0), ValueError, "clip_norm must be a positive number"),
    (dict(checkpoint="/no/such/folder/x.ckpt"), FileNotFoundError, "folder '/no/such/folder' does not exist"),
    (dict(resume="/no/such/file.ckpt"), FileNotFoundError, "does not exist"),
])
def test_bad_arguments_change_nothing(kwargs, exc, match):
    X, T, _ = _blobs(30)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    before = net.copy()
    args = dict(loss="cross_entropy", epochs=2)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ffnn.train(net, X, T, **args)
    assert _same(net, before)


def test_bad_learning_rate_and_data():
    with pytest.raises(ValueError, match="learning rate must be a positive number, got -0.1"):
        ffnn.SGD(-0.1)
    net = ffnn.Network([4, 5, 3], "tanh", "softmax", seed=0)
    X, T, _ = _blobs(30)
    with pytest.raises(ValueError, match="X has 30 samples but T has 29"):
        ffnn.train(net, X, T[:29], loss="cross_entropy")
    with pytest.raises(ValueError, match="validation data: X has 2 features"):
        ffnn.train(net, X, T, loss="cross_entropy", validation=(X[:, :2], T))


def test_resume_from_a_different_network_is_refused(tmp_path):
    path = tmp_path / "c.ckpt"
    _ckpt_run(tmp_path, 1, checkpoint=path)
    other = ffnn.Network([4, 9, 3], "relu", "softmax", seed=0)
    before = other.copy()
    X, T, _ = _blobs(30)
    with pytest.raises(ValueError, match=r"network of sizes \[4, 8, 3\]; this network has sizes \[4, 9, 3\]"):
        ffnn.train(other, X, T, loss="cross_entropy", resume=path)
    assert _same(other, before)
    path2 = tmp_path / "junk.ckpt"
    path2.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a safetensors file"):
        ffnn.train(other, X, T, loss="cross_entropy", resume=path2)


def test_ctrl_c_takes_effect_between_steps_only():
    """SIGINT mid-training stops after a complete update: weights equal a run of exactly that many steps."""
    X, T, _ = _blobs(200)
    net = ffnn.Network([4, 8, 3], "relu", "softmax", seed=0)
    steps = []

    def schedule(t):  # called once per step, before it; the signal arrives during step 5
        steps.append(t)
        if t == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return 1.0

    opt = ffnn.SGD(0.1)
    with pytest.raises(ffnn.TrainingInterrupted) as info:
        ffnn.train(net, X, T, loss="cross_entropy", optimizer=opt, epochs=5, batch_size=10, seed=0,
                   schedule=schedule)
    assert info.value.history.interrupted and opt.state["step"] == 6
    ref = ffnn.Network([4, 8, 3], "relu", "softmax", seed=0)
    order = np.random.default_rng(0).permutation(200)
    for k in range(6):
        idx = order[10 * k:10 * (k + 1)]
        _, g = ref.loss_and_gradients(X[idx], T[idx], "cross_entropy")
        for p, gp in zip(ref.parameters(), [a for pair in zip(g.weights, g.biases) for a in pair]):
            p -= 0.1 * gp
    for a, b in zip(net.parameters(), ref.parameters()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
