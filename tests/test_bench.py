"""The benchmark's arithmetic and plumbing (never its timings)."""

import importlib.util
import json
import sys

import numpy as np
import pytest

from ffnn.cli import bench

from .conftest import cli


def test_training_flops_counts_forward_backward_minus_input_gradient():
    n = 128
    fwd = 2 * n * (784 * 256 + 256 * 256 + 256 * 10)
    assert bench.training_flops(n) == fwd + 2 * fwd - 2 * n * 784 * 256
    assert bench.training_flops(1, (3, 2)) == 3 * 12 - 12  # one layer: forward + weight gradient only


def test_contenders_train_the_same_data(tmp_path):
    X, y, T = bench.synthetic(256, np.float32)
    assert X.shape == (256, 784) and T.shape == (256, 10) and X.dtype == np.float32
    for name, run in bench.CONTENDERS.items():
        if name == "pytorch" and importlib.util.find_spec("torch") is None:
            continue
        assert run(X, y, T, 64, np.float32) > 0
    assert bench.gemm_seconds(32, np.float32, reps=2) > 0
    peaks, budget = bench.peak_memory(X, T, np.float32, b=64, epochs=2)
    assert len(peaks) == 2 and budget > X.nbytes


def test_plan_networks_batches_and_clipping():
    p = bench.plan(quick=True, networks=["30-16-2"])
    assert p["networks"] == ["30-16-2"] and p["dtypes"] == ["float32"] and p["threads"] == [2]
    assert [(r[3], r[4]) for r in p["rows"]] == [(1, 1024), (200, 8000)]
    full = bench.plan(networks=["64-100-10"], dtypes=["float32", "float64"], n_samples=100, cpus=1)
    assert full["threads"] == [1] and full["rounds"] == 3
    assert [r[1:] for r in full["rows"]] == [("float32", 1, 1, 100), ("float32", 1, 32, 100), ("float32", 1, 100, 100),
                                             ("float64", 1, 1, 100), ("float64", 1, 32, 100), ("float64", 1, 100, 100)]
    assert [r[3] for r in bench.plan()["rows"] if r[0] == "784-256-256-10" and r[2] == 1] == [1, 32, 128, 1024]
    for name, net in bench.NETWORKS.items():
        X, y, T = bench.synthetic(64, np.float64, network=name)
        assert X.shape == (64, net.sizes[0]) and T.shape == (64, net.sizes[-1]) and np.isfinite(X).all()
    X, _, _ = bench.synthetic(500, np.float64, network="30-16-2")
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-9)  # standardised features
    np.testing.assert_allclose(X.std(axis=0), 1)


def test_bench_arguments_parse():
    from ffnn.cli.parser import _bench_networks, build_parser

    args = build_parser().parse_args(["bench", "--quick", "--network", "30-16-2", "--network", "64-100-10,30-16-2",
                                      "--dtype", "float64", "--no-first-fit"])
    assert args.quick and args.no_first_fit and args.network == [["30-16-2"], ["64-100-10", "30-16-2"]]
    assert args.dtype == [["float64"]] and args.samples is None
    assert _bench_networks.__closure__ is not None and _bench_networks(",".join(bench.NETWORKS)) == list(bench.NETWORKS)


@pytest.mark.parametrize("args,code,fragment", [
    (["--network", "784-10"], 2, "--network: unknown network '784-10' (choose from 784-256-256-10, 64-100-10, 30-16-2)"),
    (["--network", ","], 2, "--network: unknown network ','"),
    (["--dtype", "float16"], 2, "--dtype: unknown dtype 'float16'"),
    (["--samples", "0"], 2, "--samples: must be a positive integer, got 0"),
    (["--gpu", "--network", "30-16-2"], 2, "--network is for the CPU bench"),
])
def test_bench_usage_errors_are_one_line(args, code, fragment):
    rc, out, err = cli("bench", *args)
    assert rc == code and out == "" and len(err.strip().splitlines()) == 1 and fragment in err, err


def test_missing_jax_and_torch_are_left_out_with_a_note(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` now fails, as when it is not installed
    monkeypatch.setitem(sys.modules, "torch", None)
    names, skipped, torch = bench.available()
    assert torch is None and set(skipped) == {"jax jit-epoch", "pytorch", "torch.compile"}
    assert names == ["ffnn", "ffnn no-diag", "numpy loop", "scikit-learn"]
    lines = []
    assert bench.main(quick=True, networks=["30-16-2"], n_samples=256, first_fit=False, log=lines.append,
                      json_path=tmp_path / "b.json") == 0
    text = "\n".join(lines)
    assert "(jax jit-epoch: left out: JAX is not installed" in text and "(torch.compile: left out: PyTorch" in text
    doc = json.loads((tmp_path / "b.json").read_text())
    assert set(doc["skipped"]) == set(skipped) and doc["load_average"]["start"] and doc["first_fit"] == []
    rows = doc["results"]
    assert [(r["network"], r["batch"], r["samples"]) for r in rows] == [("30-16-2", 1, 256), ("30-16-2", 200, 256)]
    for r in rows:
        assert set(r["samples_per_s"]) == set(names) and r["ffnn_over_jax"] is None
        assert r["ffnn_over_numpy"] == pytest.approx(r["samples_per_s"]["ffnn"] / r["samples_per_s"]["numpy loop"])
        assert "ffnn_loop" in r and set(r["rounds"]) == set(names) and r["rounds"]["ffnn"] == 2


def test_a_failing_compiled_peer_is_skipped_with_its_reason(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setitem(sys.modules, "jax", None)

    def broken(*args, **kwargs):
        raise RuntimeError("inductor: no C++ compiler\nsecond line")

    monkeypatch.setattr(bench.bench_peers, "run_torch_compile", broken)
    names, skipped, _ = bench.available()
    lines = []
    runner = bench.Runner(names, skipped, [0], log=lines.append)
    X, y, T = bench.synthetic(128, np.float32, network="30-16-2")
    ctx = {"network": "30-16-2", "sizes": (30, 16, 2), "threads": 1, "total": 128}
    row = bench.bench_row(runner, X, y, T, 64, np.float32, 1, ctx)
    assert "torch.compile" not in row["samples_per_s"] and "pytorch" in row["samples_per_s"]
    assert skipped["torch.compile"] == "RuntimeError: inductor: no C++ compiler second line"
    assert lines == ["(torch.compile: left out from here on: RuntimeError: inductor: no C++ compiler second line)"]
    assert "ffnn/t.compile" in bench._header(runner.names) and " - " in bench._format_row(row, runner.names)
    heard = []
    row = bench.bench_row(runner, X, y, T, 64, np.float32, 3, ctx, slow_s=1e-9, status=heard.append)  # all "slow"
    assert set(row["rounds"].values()) == {1}
    assert heard[0] == f"30-16-2, batch 64: round 1 of 3, {runner.active()[0]}"
    assert {h.split(", ")[-1] for h in heard} == set(runner.active()) and len(heard) == len(runner.active())


def _numpy_step(Ws, bs, X, T, lr=0.01):
    """One full-batch SGD step of the relu/softmax/cross-entropy net, by hand (the reference)."""
    a = [X]
    for l, (W, b) in enumerate(zip(Ws, bs)):
        z = a[-1] @ W + b
        a.append(np.maximum(z, 0) if l < len(Ws) - 1 else z)
    p = np.exp(a[-1] - a[-1].max(axis=1, keepdims=True))
    d = (p / p.sum(axis=1, keepdims=True) - T) / len(X)
    Ws, bs = [W.copy() for W in Ws], [b.copy() for b in bs]
    for l in range(len(Ws) - 1, -1, -1):
        gW, gb = a[l].T @ d, d.sum(axis=0)
        if l > 0:
            d = (d @ Ws[l].T) * (a[l] > 0)
        Ws[l] -= lr * gW
        bs[l] -= lr * gb
    return Ws, bs


def test_torch_step_is_the_same_sgd_step():
    torch = pytest.importorskip("torch")
    from ffnn.cli import bench_peers

    X, _, T = bench.synthetic(40, np.float64, network="30-16-2")
    Ws, bs = bench_peers.init_params((30, 16, 2), np.float64, 3)
    want_W, want_b = _numpy_step(Ws, bs, X, T)
    tW, tb = [torch.from_numpy(W.copy()) for W in Ws], [torch.from_numpy(b.copy()) for b in bs]
    bench_peers.torch_step(torch, 1)(torch.from_numpy(X), torch.from_numpy(T), tW, tb)  # eager: the maths only
    for got, want in zip(tW + tb, want_W + want_b):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-14)


def test_jax_epoch_is_the_same_sgd_step():
    jax = pytest.importorskip("jax")
    from ffnn.cli import bench_peers

    X, _, T = bench.synthetic(40, np.float32, network="30-16-2")
    Ws, bs = bench_peers.init_params((30, 16, 2), np.float32, 3)
    want_W, want_b = _numpy_step(Ws, bs, X, T)
    epoch = bench_peers.jax_epoch(jax, (30, 16, 2))
    got = epoch([(W, b) for W, b in zip(Ws, bs)], X, T, jax.random.key(0), b=40)  # one batch: the order is moot
    for (gW, gb), wW, wb in zip(got, want_W, want_b):
        np.testing.assert_allclose(np.asarray(gW), wW, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(np.asarray(gb), wb, rtol=1e-4, atol=1e-6)


def test_first_fit_runs_in_a_fresh_process():
    from ffnn.cli import bench_peers

    (run,) = bench_peers.first_fit("ffnn", "30-16-2", runs=1)
    assert run["import_s"] > 0 and run["fit_s"] > 0 and "loop" in run, run


def test_the_loop_ffnn_ran_is_recorded_when_history_has_it(monkeypatch):
    import ffnn

    train = ffnn.train

    def with_loop(*args, **kwargs):
        h = train(*args, **kwargs)
        h.loop = "numpy"
        return h

    X, y, T = bench.synthetic(64, np.float32, network="30-16-2")
    info = {}
    bench.run_ffnn(X, y, T, 32, np.float32, sizes=(30, 16, 2), info=info)
    assert set(info) == {"loop"}  # None until History has the field
    monkeypatch.setattr(ffnn, "train", with_loop)
    bench.run_ffnn(X, y, T, 32, np.float32, sizes=(30, 16, 2), info=info)
    assert info == {"loop": "numpy"}


def test_gpu_check_script_parses_and_its_dry_run_prints_the_commands():
    import os
    import shutil
    import subprocess
    from pathlib import Path

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("needs bash")
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.sh"
    assert subprocess.run([bash, "-n", str(script)], capture_output=True, text=True).returncode == 0
    env = dict(os.environ, FFNN_GPU_CHECK_DRY="1", FFNN_GPU_CHECK_NO_VENV="1")
    run = subprocess.run([bash, str(script)], capture_output=True, text=True, env=env, timeout=30)
    assert run.returncode == 0, run.stderr
    commands = [line for line in run.stdout.splitlines() if line.startswith("+ timeout ")]
    assert any(" -m pytest -q tests/test_torch.py -k cuda -W error:ffnn:UserWarning" in c for c in commands)
    assert any(" -m pip install -e .\\[test\\]" in c for c in commands)
    bench_cmd = [c for c in commands if " -m ffnn bench --gpu --quick --json benchmarks/results/gpu_bench_" in c]
    assert len(bench_cmd) == 1 and bench_cmd[0].endswith(".json")
    assert "dry run: nothing was run" in run.stdout and not (script.parent.parent / ".venv-gpu-check").exists()
