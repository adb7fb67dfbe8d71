"""Operations per training step on PyTorch tensors: ffnn's PyTorch fast path against the loop a
PyTorch user writes — a proxy for kernel launches on a GPU, counted on the CPU.

    python benchmarks/torch_ops.py [--json benchmarks/results/torch_ops.json]

Counted with a ``TorchDispatchMode`` (``tests/torch_ops.py``): every ATen operation but views and the
profiler's markers; per step = (an epoch of 12 batches − an epoch of 4) / 8, which cancels what runs
once per epoch. 784-256-256-10 relu/softmax, cross-entropy, float32, batch 128.

Contenders: ffnn (diagnostics on, the default; and off), in its eager layout (the CPU's) and in the
CUDA-graph layout (the batch's rows and the step's numbers copied into the graph's buffers before a
replay: the copies are counted); PyTorch: ``nn.Sequential``, ``CrossEntropyLoss``, autograd and
``torch.optim.SGD`` / ``Adam(foreach=True)`` / ``Adam(fused=True)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import torch_ops  # noqa: E402


def graph_layout():
    from ffnn.training.torch_engine import TorchEngine

    init = TorchEngine.__init__

    def static(self, *a, **k):
        init(self, *a, **k)
        self.static, self.scal_host = True, None

    TorchEngine.__init__ = static
    return lambda: setattr(TorchEngine, "__init__", init)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the counts here")
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = {}
    for opt in ("sgd", "adam"):
        for diag in (True, False):
            rows[f"ffnn {opt}{'' if diag else ' no-diag'}"] = torch_ops.per_step(torch_ops.ffnn_epoch(opt, diag))
        undo = graph_layout()
        try:
            rows[f"ffnn {opt}, CUDA-graph layout"] = torch_ops.per_step(torch_ops.ffnn_epoch(opt))
        finally:
            undo()
    rows["pytorch SGD"] = torch_ops.per_step(torch_ops.handwritten_epoch("sgd"))
    rows["pytorch Adam(foreach=True)"] = torch_ops.per_step(torch_ops.handwritten_epoch("adam", foreach=True))
    rows["pytorch Adam(fused=True)"] = torch_ops.per_step(torch_ops.handwritten_epoch("adam", fused=True))
    print(f"operations per step, 784-256-256-10, batch 128, float32, torch {torch.__version__}")
    for name, (n, ops) in rows.items():
        peer = "pytorch SGD" if "sgd" in name.lower() else "pytorch Adam(fused=True)"
        ratio = f"  x{n / rows[peer][0]:.2f} of {peer}" if name.startswith("ffnn") else ""
        print(f"  {name:<32} {n:5.1f}{ratio}")
        print("      " + ", ".join(f"{k} {v:g}" for k, v in sorted(ops.items())))
    if args.json:
        Path(args.json).write_text(json.dumps({k: {"per_step": n, "ops": dict(ops)} for k, (n, ops) in rows.items()},
                                              indent=2) + "\n")


if __name__ == "__main__":
    main()
