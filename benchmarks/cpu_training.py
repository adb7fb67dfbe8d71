"""Training speed of ffnn against PyTorch eager, scikit-learn and a plain NumPy loop (issue: fast on the CPU).

    python benchmarks/cpu_training.py [--quick] [--json results.json]

The same as ``ffnn bench``; see ffnn/bench.py for what is measured and how.
"""

import sys

from ffnn.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
