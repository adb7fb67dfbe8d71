"""
=====================
A command-line tour
=====================

``pip install '.[cli]'`` installs the ``ffnn`` command. This page runs it, as a subprocess, on
``examples/iris.csv`` (150 flowers, four measurements and the species) and shows what it prints.
Every choice has a flag; ``ffnn <command> --help`` lists them.
"""

import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

try:
    here = Path(__file__).resolve().parent
except NameError:  # run interactively
    here = Path.cwd()
workdir = Path(tempfile.mkdtemp(prefix="ffnn-tour-"))   # a scratch folder for the files it writes
shutil.copy(here.parent / "iris.csv", workdir / "iris.csv")

# The ``ffnn`` script installed beside this Python, else the one on PATH, else ``python -m ffnn``.
script = Path(sys.executable).with_name("ffnn")
FFNN = [str(script)] if script.exists() else ([shutil.which("ffnn")] if shutil.which("ffnn") else
                                              [sys.executable, "-m", "ffnn"])


def ffnn(*args, check=True, lines=None):
    """Run ``ffnn ARGS`` in the scratch folder; print the command, its output (the first ``lines``
    lines of it) and a non-zero exit code."""
    result = subprocess.run(FFNN + list(args), cwd=workdir, capture_output=True, text=True)
    print("$ ffnn " + " ".join(shlex.quote(a) for a in args))
    out = (result.stdout + result.stderr).rstrip().splitlines()
    print("\n".join(out[:lines]))
    if lines is not None and len(out) > lines:
        print(f"... ({len(out) - lines} more lines)")
    if result.returncode:
        print(f"[exit code {result.returncode}]")
    if check:
        assert result.returncode == 0, result.stderr
    return result


ffnn("--help")

# %%
# Train
# -----
#
# ``ffnn train`` reads CSV (with a header row; the target is the last column unless ``--target``
# names it), ``.npz`` or Parquet. It infers classification from the string labels and says so,
# standardises the inputs, holds out a test split and a validation split for early stopping,
# trains with Adam and writes the model file. ``--quiet`` leaves out the progress bar and the
# per-epoch lines.

ffnn("train", "iris.csv", "--target", "species", "--hidden", "16", "--lr", "0.01", "--quiet",
     "--out", "iris.safetensors", "--plot", "curves.png", "--metrics", "metrics.json")

# %%
# ``--metrics`` wrote the final numbers as JSON:

print(json.dumps(json.loads((workdir / "metrics.json").read_text()), indent=2))

# %%
# and ``--plot`` the loss and validation curves:

fig, ax = plt.subplots(figsize=(8, 4))
ax.imshow(plt.imread(workdir / "curves.png"))
ax.set_axis_off()
fig.tight_layout()

# %%
# Inspect, predict, evaluate
# --------------------------
#
# A model file is a safetensors file with everything needed to use it: the architecture, the
# class labels, the input scaling and the training history.

ffnn("info", "iris.safetensors")

# %%

ffnn("predict", "iris.safetensors", "iris.csv", "--out", "predictions.csv")
print("\n".join((workdir / "predictions.csv").read_text().splitlines()[:6]))

# %%
# ``--proba`` writes class probabilities instead of labels:

ffnn("predict", "iris.safetensors", "iris.csv", "--proba", lines=6)

# %%

ffnn("evaluate", "iris.safetensors", "iris.csv")

# %%
# Export
# ------
#
# ``ffnn export`` writes a saved model as an ONNX model (``pip install '.[export]'``) or, with
# no dependency at all, as one C99 header: the weights as constants and a predict function, the
# input scaling and the class names included.

ffnn("export", "iris.safetensors", "iris.h")
# Its comments and function signatures (the weight arrays left out):
header = (workdir / "iris.h").read_text().splitlines()
print("\n".join(line for line in header if line.startswith(("/*", " *", "static inline"))))

# %%
# Check the gradients
# -------------------
#
# ``ffnn gradcheck`` compares back-propagation with central finite differences, on a saved model
# or on a fresh network:

ffnn("gradcheck", "--sizes", "4,8,3", "--activation", "tanh", "--loss", "mse")

# %%
# Errors
# ------
#
# Errors are one line on standard error: exit code 2 for a bad flag, 1 for a problem with a file
# or the data.

bad_flag = ffnn("train", "iris.csv", "--hidden", "16,zero", check=False)
missing = ffnn("predict", "missing.safetensors", "iris.csv", check=False)
assert (bad_flag.returncode, missing.returncode) == (2, 1)
