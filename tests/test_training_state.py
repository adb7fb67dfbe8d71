"""ffnn.training.state: a run written to a checkpoint and restored from it — the resumed run equals the
uninterrupted one bit for bit, for every optimiser's state — and checkpoints that do not fit refused."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import ffnn

from .conftest import blobs as _blobs
from .conftest import same_weights as _same

SLOTS = {"sgd": [], "momentum": ["velocity"], "nesterov": ["velocity"], "adam": ["m", "s"], "adamw": ["m", "s"],
         "rmsprop": ["s"]}
OPTIMIZERS = {
    "sgd": lambda: ffnn.SGD(0.05),
    "momentum": lambda: ffnn.SGD(0.05, momentum=0.9),
    "nesterov": lambda: ffnn.SGD(0.05, momentum=0.9, nesterov=True),
    "adam": lambda: ffnn.Adam(0.01),
    "adamw": lambda: ffnn.AdamW(0.01, weight_decay=0.1),
    "rmsprop": lambda: ffnn.RMSprop(0.01),
}


def _short_run(make_opt, epochs, **kwargs):
    X, T, _ = _blobs(40)
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    opt = make_opt()
    h = ffnn.train(net, X, T, loss="cross_entropy", optimizer=opt, epochs=epochs, batch_size=16, seed=3, **kwargs)
    return net, opt, h


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizers_state_round_trips(tmp_path, name):
    from safetensors.numpy import load_file

    path = tmp_path / "c.ckpt"
    _, opt, _ = _short_run(OPTIMIZERS[name], 2, checkpoint=path)
    stored = load_file(str(path))
    slots = [s for s in opt.state if s != "step"]
    assert slots == SLOTS[name]
    assert sorted(k for k in stored if k.startswith("opt.")) == sorted(
        f"opt.{s}.{i}" for s in slots for i in range(4))  # W1, b1, W2, b2
    for s in slots:
        for i, v in enumerate(opt.state[s]):
            np.testing.assert_array_equal(stored[f"opt.{s}.{i}"], v)
    resumed, opt_r, h_r = _short_run(OPTIMIZERS[name], 4, resume=path)
    straight, opt_s, h_s = _short_run(OPTIMIZERS[name], 4)
    assert _same(resumed, straight)
    assert opt_r.state["step"] == opt_s.state["step"] == 4 * 3
    for s in slots:
        assert all(np.array_equal(a, b) for a, b in zip(opt_r.state[s], opt_s.state[s]))
    assert h_r.loss == h_s.loss and h_r.epoch == [1, 2, 3, 4]


def test_resume_with_another_loss_or_optimizer_is_refused(tmp_path):
    path = tmp_path / "c.ckpt"
    _short_run(OPTIMIZERS["adam"], 1, checkpoint=path)
    X, T, _ = _blobs(40)
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    before = net.copy()
    with pytest.raises(ValueError, match="was trained with loss 'cross_entropy', not 'mse'"):
        ffnn.train(net, X, T, loss="mse", optimizer="adam", resume=path)
    with pytest.raises(ValueError, match="was trained with optimizer 'adam', not 'rmsprop'"):
        ffnn.train(net, X, T, loss="cross_entropy", optimizer="rmsprop", resume=path)
    other = ffnn.Network([4, 6, 3], "relu", "softmax", seed=0)
    with pytest.raises(ValueError, match=r"has activations \['tanh', 'softmax'\]; this network has \['relu'"):
        ffnn.train(other, X, T, loss="cross_entropy", optimizer="adam", resume=path)
    assert _same(net, before)


def test_a_checkpoint_from_a_newer_format_is_refused(tmp_path):
    import json

    from safetensors.numpy import load_file, save_file
    from safetensors import safe_open

    path = tmp_path / "c.ckpt"
    _short_run(OPTIMIZERS["sgd"], 1, checkpoint=path)
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    inner = json.loads(meta["ffnn_checkpoint"])
    inner["format"] += 1
    save_file(load_file(str(path)), str(path), metadata={**meta, "ffnn_checkpoint": json.dumps(inner)})
    X, T, _ = _blobs(40)
    net = ffnn.Network([4, 6, 3], "tanh", "softmax", seed=0)
    with pytest.raises(ValueError, match="written by a newer ffnn"):
        ffnn.train(net, X, T, loss="cross_entropy", optimizer="sgd", resume=path)


# --- a run with validation, dropout, early stopping and a plateau schedule -------------------------

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


