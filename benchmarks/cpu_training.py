"""Training speed of ffnn against a plain NumPy loop, JAX, PyTorch eager, torch.compile and scikit-learn.

    taskset -c 0,1 python benchmarks/cpu_training.py [--quick] [--network 30-16-2] [--json results.json]

The same as ``ffnn bench``; see src/ffnn/cli/bench.py for what is measured and how.
"""

import sys

from ffnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
