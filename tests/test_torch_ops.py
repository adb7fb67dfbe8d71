"""Operations per training step on the PyTorch fast path against the loop a PyTorch user writes
(counted on CPU tensors: a proxy for kernel launches on a GPU; see tests/torch_ops.py)."""

import pytest

torch = pytest.importorskip("torch")

from . import torch_ops  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _static_layout(monkeypatch):
    """The CUDA-graph layout on the CPU: each batch's rows and the step's numbers copied into buffers of
    their own, as they are before a graph's replay (the copies are counted)."""
    from ffnn.training.torch_engine import TorchEngine

    init = TorchEngine.__init__

    def static(self, *a, **k):
        init(self, *a, **k)
        self.static, self.scal_host = True, None

    monkeypatch.setattr(TorchEngine, "__init__", static)


SMALL = (64, 32, 32, 10)  # the same structure as 784-256-256-10 (the count does not depend on widths)


@pytest.mark.parametrize("optimizer,peer", [("sgd", {}), ("adam", {"fused": True}), ("adam", {"foreach": True})])
def test_a_step_is_at_most_three_quarters_of_the_handwritten_loop(optimizer, peer):
    mine, ops = torch_ops.per_step(torch_ops.ffnn_epoch(optimizer, sizes=SMALL, batch=16), sizes=SMALL, batch=16)
    theirs, _ = torch_ops.per_step(torch_ops.handwritten_epoch(optimizer, sizes=SMALL, batch=16, **peer),
                                   sizes=SMALL, batch=16)
    assert mine <= 0.75 * theirs, (mine, theirs, dict(ops))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_the_graph_layout_adds_only_the_copies_into_its_buffers(optimizer, monkeypatch):
    """What a CUDA graph holds plus the copies before its replay: still fewer than the hand-written loop
    with PyTorch's fused Adam (the strongest peer in operations)."""
    eager, _ = torch_ops.per_step(torch_ops.ffnn_epoch(optimizer, sizes=SMALL, batch=16), sizes=SMALL, batch=16)
    _static_layout(monkeypatch)
    mine, ops = torch_ops.per_step(torch_ops.ffnn_epoch(optimizer, sizes=SMALL, batch=16), sizes=SMALL, batch=16)
    peer = {} if optimizer == "sgd" else {"fused": True}
    theirs, _ = torch_ops.per_step(torch_ops.handwritten_epoch(optimizer, sizes=SMALL, batch=16, **peer),
                                   sizes=SMALL, batch=16)
    assert ops["copy_"] == 4  # the rows [X | 1], the loss's two blocks of targets, the step's numbers
    assert mine == eager + 4 and mine <= theirs, (mine, theirs, dict(ops))


def test_the_count_is_of_kernels_not_of_profiler_markers():
    """The hand-written loop's autograd records profiler markers; they launch nothing and are not counted."""
    _, ops = torch_ops.per_step(torch_ops.handwritten_epoch("sgd", sizes=SMALL, batch=16), sizes=SMALL, batch=16)
    assert not any(name.startswith("_record_function") for name in ops)
    assert ops["addmm"] == 3 and ops["threshold_backward"] == 2  # the forward's products, relu's backward
