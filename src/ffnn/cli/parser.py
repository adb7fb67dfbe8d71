"""The ``ffnn`` command: thin — it parses, calls the library, and prints.

Exit codes: 0 success; 1 a problem with data, files or training (one line on stderr); 2 a usage error
(a bad flag or value, one line on stderr); 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from .._checks import describe, integer, layer_sizes, number
from .errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, CommandError, UsageError
from .commands import (cmd_bench, cmd_evaluate, cmd_explain, cmd_export, cmd_gradcheck, cmd_info, cmd_predict,
                       cmd_train)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")

    def _print_message(self, message, file=None):
        """--help and --version: argparse's own drops a failed write (a full device); here it is
        main's one-line error like any other output's."""
        if message:
            (file if file is not None else sys.stderr).write(message)


# --- argument types ------------------------------------------------------------------------------

def _argument(check, cast, **bounds):
    """An argparse type: ``cast(text)`` checked by ``ffnn._checks`` (the library's own range check)."""
    def parse(text):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {describe(integer=cast is int, **bounds)}, got {text!r}") from None
        try:
            return check("value", value, **bounds)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {describe(integer=cast is int, **bounds)}, got {text}") from None
    return parse


_positive_int = _argument(integer, int, low=1)
_non_negative_int = _seed = _argument(integer, int, low=0)  # NumPy's generators refuse negative seeds
_positive_float = _argument(number, float, low=0, low_open=True)
_non_negative_float = _argument(number, float, low=0)
_fraction = _argument(number, float, low=0, low_open=True, high=1, high_open=True)
_dropout = _momentum = _argument(number, float, low=0, high=1, high_open=True)


def _widths(text):
    """Hidden widths "64,32": positive integers, checked as the library checks layer sizes."""
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise argparse.ArgumentTypeError("expected comma-separated layer widths such as 64,32")
    if not all(parts):  # "8,,8" or a trailing comma: not a list of widths
        raise argparse.ArgumentTypeError(f"every width must be a positive integer, got an empty one in {text!r}")
    try:
        widths = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    try:
        return list(layer_sizes([1, *widths], budget=False)[1:])  # widths alone: the network checks its size
    except ValueError:
        bad = next(w for w in widths if w < 1)
        raise argparse.ArgumentTypeError(f"every width must be a positive integer, got {bad}") from None


def _choices(what, names):
    """An argparse type: one name of ``names`` or a comma list of them, as a list."""
    def parse(text):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        bad = [p for p in parts if p not in names]
        if not parts or bad:
            raise argparse.ArgumentTypeError(f"unknown {what} {(bad or [text])[0]!r} (choose from {', '.join(names)})")
        return parts
    return parse


_bench_networks = _choices("network", ("784-256-256-10", "64-100-10", "30-16-2"))
_bench_dtypes = _choices("dtype", ("float32", "float64"))


def _floats(text):
    """Comma-separated numbers "0.5,-1.2": finite floats."""
    try:
        values = [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 0.5,-1.2, got {text!r}") from None
    if not all(abs(v) < float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"every value must be a finite number, got {text!r}")
    return values


def _activation(text):
    from ..activations import get_activation

    try:
        return get_activation(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _loss_name(text):
    from ..losses import get_loss

    try:
        return get_loss(text).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _schedule(text):
    from ..schedules import SCHEDULES

    if text not in SCHEDULES:
        raise argparse.ArgumentTypeError(f"unknown schedule {text!r}; known: {', '.join(SCHEDULES)}")
    return text


# --- the parser ----------------------------------------------------------------------------------

def build_parser():
    p = _Parser(prog="ffnn", description="Feed-forward neural networks trained by back-propagation.")
    p.add_argument("--version", action="version", version=_version())
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("train", help="train a network on a CSV, .npz or Parquet file (default: digits)",
                       description="Train a network. With no DATA it trains on scikit-learn's bundled digits.")
    t.add_argument("data", nargs="?", metavar="DATA", help="CSV with a header row, .npz (X, y) or Parquet")
    t.add_argument("--target", metavar="COL", help="target column (default: the last)")
    t.add_argument("--task", choices=["classify", "regress"], help="default: inferred from the target")
    t.add_argument("--hidden", type=_widths, default=[64, 32], metavar="W1,W2", help="hidden widths (default 64,32)")
    t.add_argument("--activation", type=_activation, default="relu", help="hidden activation (default relu)")
    t.add_argument("--output", type=_activation, help="output activation (default softmax or identity)")
    t.add_argument("--loss", type=_loss_name,
                   help="default cross_entropy or mse; also huber, 'huber(delta=0.5)', log_cosh, hinge, squared_hinge, "
                        "poisson")
    t.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "rmsprop", "rprop", "quickprop"], default="adam",
                   help="the optimizer (default adam); rprop and quickprop take full-batch steps")
    t.add_argument("--lr", type=_positive_float,
                   help="learning rate (default 0.001; sgd 0.01; rprop 0.01, its first step size; quickprop 0.7)")
    t.add_argument("--momentum", type=_momentum, help="sgd momentum (default 0)")
    t.add_argument("--nesterov", action="store_true", help="Nesterov momentum (sgd)")
    t.add_argument("--epochs", type=_positive_int, default=200, help="maximum epochs (default 200)")
    t.add_argument("--batch-size", type=_positive_int,
                   help="minibatch size (default 32; rprop and quickprop: the whole training set, and no other)")
    t.add_argument("--l1", type=_non_negative_float, default=0.0, help="L1 penalty λ₁ on the weights (default 0)")
    t.add_argument("--l2", type=_non_negative_float, default=0.0, help="L2 penalty λ₂ on the weights (default 0)")
    t.add_argument("--dropout", type=_dropout, default=0.0, help="dropout rate on hidden layers (default 0)")
    t.add_argument("--schedule", type=_schedule, help="constant, step, exponential, invscaling, cosine, plateau")
    t.add_argument("--validation", type=_fraction, default=0.1, help="validation fraction (default 0.1)")
    t.add_argument("--test-size", type=_fraction, default=0.2, help="held-out test fraction (default 0.2)")
    t.add_argument("--early-stopping", type=int, default=10, metavar="N",
                   help="patience in epochs; 0 turns it off (default 10)")
    t.add_argument("--scale", choices=["standard", "minmax", "none"], default="standard",
                   help="input scaling, learned on the training split (default standard)")
    t.add_argument("--seed", type=_seed, default=0,
                   help="seed of every random draw (default 0: the same run every time)")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float64",
                   help="the network's floating-point type (default float64)")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="cpu: NumPy (default); cuda: PyTorch on the GPU; auto: the GPU when PyTorch sees one")
    t.add_argument("--precision", choices=["highest", "tf32", "bf16"], default="highest",
                   help="float32 on the GPU only: TF32 products, or bfloat16 with float32 master weights "
                        "(highest, the default: TF32 off)")
    t.add_argument("--dropout-masks", choices=["device", "host"], default="device",
                   help="on a PyTorch device: draw dropout masks there (default) or on the host, "
                        "as the NumPy path does")
    t.add_argument("--loop", choices=["auto", "compiled", "interpreted"], default="auto",
                   help="the training loop: compiled (numba) where it applies (auto, default), or as named")
    t.add_argument("--out", default="model.safetensors", help="model file (default model.safetensors)")
    t.add_argument("--plot", help="PNG of the loss and validation curves and the per-layer gradient flow")
    t.add_argument("--no-diagnostics", dest="diagnostics", action="store_false",
                   help="do not record the per-layer gradient-flow diagnostics")
    t.add_argument("--metrics", help="JSON file of the final metrics")
    t.add_argument("--checkpoint", metavar="PATH", help="write a checkpoint here every epoch")
    t.add_argument("--resume", metavar="PATH", help="continue from a checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    t.add_argument("--force", action="store_true",
                   help="replace existing --out, --plot, --metrics or --checkpoint files (without it, nothing is "
                        "replaced; a checkpoint given to --resume is continued)")

    pr = sub.add_parser("predict", help="predict with a saved model")
    pr.add_argument("model", metavar="MODEL")
    pr.add_argument("data", metavar="DATA")
    pr.add_argument("--out", help="CSV of predictions (default: standard output)")
    pr.add_argument("--proba", action="store_true", help="class probabilities instead of labels")
    pr.add_argument("--force", action="store_true", help="replace an existing output file (without it, nothing is replaced)")

    ev = sub.add_parser("evaluate", help="score a saved model on labelled data")
    ev.add_argument("model", metavar="MODEL")
    ev.add_argument("data", metavar="DATA")
    ev.add_argument("--target", metavar="COL", help="target column (default: the one used in training)")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")

    info = sub.add_parser("info", help="describe a saved model")
    info.add_argument("model", metavar="MODEL")

    gc = sub.add_parser("gradcheck", help="check back-propagation against finite differences")
    gc.add_argument("model", nargs="?", metavar="MODEL", help="a model file (or give --sizes)")
    gc.add_argument("--sizes", type=_widths, help="a fresh network's widths, e.g. 4,8,3")
    gc.add_argument("--activation", type=_activation, default="tanh")
    gc.add_argument("--output", type=_activation,
                    help="output activation (default: softmax for cross_entropy, sigmoid for binary_cross_entropy, "
                         "else identity)")
    gc.add_argument("--loss", type=_loss_name, default="mse")
    gc.add_argument("--samples", type=_argument(integer, int, low=1, high=10_000), default=5,
                    help="random inputs the loss is taken over (1 to 10000; default 5: a few are enough)")
    gc.add_argument("--max-entries", type=_non_negative_int, default=200, metavar="N",
                    help="compare at most N entries of each array, drawn at random (0: every entry; default 200)")
    gc.add_argument("--max-seconds", type=_positive_float, metavar="S",
                    help="stop comparing after S seconds and report the entries compared by then (default: no limit)")
    gc.add_argument("--seed", type=_seed, default=0, help="seed of the network and the random samples (default 0)")

    xp = sub.add_parser("explain", help="one training step written out in an author's notation (and as a page)",
                        description="One forward pass, backward pass and gradient-descent update, every quantity "
                                    "named as the chosen author names it and every equation with its numbers in "
                                    "it. With no MODEL: a new 2-3-2 sigmoid network (or --sizes).")
    xp.add_argument("model", nargs="?", metavar="MODEL", help="a model file (default: a new network)")
    xp.add_argument("--sizes", type=_widths, help="a new network's widths, e.g. 2,3,1 (default 2,3,2)")
    xp.add_argument("--activation", type=_activation, help="a new network's hidden activation (default sigmoid)")
    xp.add_argument("--output", type=_activation,
                    help="a new network's output activation (default: softmax for cross_entropy, else sigmoid)")
    xp.add_argument("--loss", type=_loss_name,
                    help="default: the model's, else the author's (sheptunov and gashler half_sse, xing and kolar "
                         "sse, wichmann and ffnn mse)")
    xp.add_argument("--notation", choices=["sheptunov", "xing", "gashler", "kolar", "wichmann", "ffnn"],
                    default="ffnn", help="whose symbols (default ffnn)")
    xp.add_argument("--input", type=_floats, metavar="X1,X2,...", help="the sample's inputs (default: random)")
    xp.add_argument("--target", type=_floats, metavar="T1,T2,...", help="its targets (default: random)")
    xp.add_argument("--samples", type=_argument(integer, int, low=1, high=64), default=1,
                    help="random samples in the batch (1 to 64; default 1)")
    xp.add_argument("--sample", type=_non_negative_int, metavar="I",
                    help="explain only sample I (from 0) of the random batch")
    xp.add_argument("--lr", type=_positive_float, default=0.1, help="learning rate η of the update (default 0.1)")
    xp.add_argument("--seed", type=_seed, default=0, help="seed of the new network and the random samples (default 0)")
    xp.add_argument("--width", type=_argument(integer, int, low=40, high=1000), default=80,
                    help="line width of the text (default 80)")
    xp.add_argument("--html", metavar="PAGE", help="also write the step as one self-contained HTML page")
    xp.add_argument("--force", action="store_true", help="overwrite PAGE if it exists")

    ex = sub.add_parser("export", help="write a saved model as ONNX or as a C header",
                        description="Write a saved model as an ONNX model (run by onnxruntime and other runtimes) "
                                    "or as one dependency-free C99 header; with --quantize int8, in int8 for "
                                    "processors without a floating-point unit. The input scaling, classes and feature "
                                    "names stored with the model go along.")
    ex.add_argument("model", metavar="MODEL")
    ex.add_argument("out", metavar="OUT", help="output file (.onnx or .h)")
    ex.add_argument("--format", choices=["onnx", "c"], help="default: from OUT's extension (.h: c; else onnx)")
    ex.add_argument("--dtype", choices=["float32", "float64"],
                    help="ONNX float type (default float32, what onnxruntime users feed); the C header is always "
                         "float32")
    ex.add_argument("--opset", type=int, metavar="N", help="ONNX opset (default 17)")
    ex.add_argument("--name", default="model", help="C identifier prefix of the header's names (default model)")
    ex.add_argument("--quantize", choices=["int8"],
                    help="int8 weights and activations: a C header in integer arithmetic only (for processors "
                         "without a floating-point unit), or an ONNX QDQ model")
    ex.add_argument("--calibration", metavar="DATA",
                    help="with --quantize: a data file whose features set the int8 ranges (default: the model's "
                         "training data file, if it is still there)")
    ex.add_argument("--per-channel", action="store_true",
                    help="with --quantize: one weight scale per unit instead of one per layer")
    ex.add_argument("--force", action="store_true", help="replace an existing output file (without it, nothing is replaced)")

    bench = sub.add_parser("bench", help="compare training speed with JAX, PyTorch, scikit-learn and NumPy",
                           description="ffnn's training speed on the CPU against a plain NumPy loop, JAX (the epoch "
                                       "in one jit), PyTorch eager, torch.compile and scikit-learn, interleaved, on "
                                       "the same cores (run it under taskset -c 0,1), and the first fit of each "
                                       "network in a fresh process. A contender whose package is missing is left out.")
    bench.add_argument("--quick", action="store_true", help="a short run (fewer batches and settings)")
    bench.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    bench.add_argument("--force", action="store_true", help="replace an existing output file (without it, nothing is replaced)")
    bench.add_argument("--samples", type=_positive_int, metavar="N",
                       help="at most N samples per epoch (default: per network and batch size)")
    bench.add_argument("--network", type=_bench_networks, action="append", metavar="NAME",
                       help="784-256-256-10, 64-100-10 or 30-16-2; repeat it or give a comma list (default: all three)")
    bench.add_argument("--dtype", type=_bench_dtypes, action="append", metavar="DTYPE",
                       help="float32 or float64, or float32,float64 (default float32)")
    bench.add_argument("--no-first-fit", action="store_true",
                       help="skip the first-fit latency (fresh processes, compilation included)")
    bench.add_argument("--gpu", action="store_true",
                       help="ffnn against hand-written PyTorch on a CUDA device (eager, CUDA graph, torch.compile)")
    return p


def _version():
    from .._version import __version__

    return f"ffnn {__version__}"


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate, "info": cmd_info,
            "gradcheck": cmd_gradcheck, "export": cmd_export, "bench": cmd_bench, "explain": cmd_explain}


def _one_line(exc):
    """An error's text as one line for the terminal: line breaks joined, control characters escaped."""
    from .._files import printable

    return printable(" ".join(line.strip() for line in str(exc).splitlines() if line.strip()))


def main(argv=None):
    """Run one command; on a terminal, control characters in what it prints are escaped.

    NumPy's floating-point warnings are off: a command reports numeric trouble itself, as one line
    (training that diverges, outputs or scores that are not finite), never as a RuntimeWarning.
    """
    import numpy as np

    from .terminal import escaped_terminals

    with escaped_terminals(), np.errstate(all="ignore"):
        try:
            code = _main(argv)
        except SystemExit as exc:  # argparse after --help, --version or a usage error: its text is flushed below
            code = exc.code
        try:  # what is still buffered: a full device or a closed pipe shows here at the latest
            if sys.stdout is not None:  # None: started with standard output closed (print writes nothing)
                sys.stdout.flush()
        except OSError as exc:
            return _stdout_failed(exc)
        return code


def _stdout_failed(exc):
    """Standard output could not be written (a full device, a closed pipe): one line on stderr, and
    standard output dropped so that Python's own flush at exit adds nothing."""
    import os

    from .parallel import fail

    try:
        sys.stdout = open(os.devnull, "w")
    except OSError:  # pragma: no cover - no /dev/null
        pass
    import errno

    if isinstance(exc, BrokenPipeError) or exc.errno == errno.EBADF:  # the reader went away, or no stdout: not an error
        return 0
    return fail(f"ffnn: error: could not write standard output: {exc.strerror or exc}", EXIT_ERROR)


def _stdout_broken(exc):
    """An OSError with no file name and a write error's errno: standard output failing (the commands'
    own files are written through ffnn._files, whose errors name them)."""
    import errno

    codes = {errno.ENOSPC, errno.EIO, errno.EPIPE, errno.EBADF, getattr(errno, "EDQUOT", -1), errno.EFBIG}
    return exc.filename is None and exc.errno in codes


def _main(argv):
    from .parallel import fail, world

    parser = build_parser()
    try:
        world()  # under mpiexec, before anything can fail: errors then end the job with one line
        args = parser.parse_args(argv)
        code = COMMANDS[args.command](args)
        if code:
            from .parallel import quiet_stderr

            quiet_stderr()  # under MPI a non-zero exit aborts the job; its notice would add a line
        return code
    except UsageError as exc:
        text = _one_line(exc)
        return fail(f"error: {text}" if not text.startswith("ffnn") else text, EXIT_USAGE)
    except CommandError as exc:
        return fail(f"ffnn: error: {_one_line(exc)}", EXIT_ERROR)
    except KeyboardInterrupt:
        return fail("ffnn: interrupted; nothing more was written", EXIT_INTERRUPTED)
    except BrokenPipeError as exc:
        return _stdout_failed(exc)
    except OSError as exc:
        if _stdout_broken(exc):
            return _stdout_failed(exc)
        if exc.filename is not None:  # a file the command reads or writes: one line naming it
            return fail(f"ffnn: error: {exc.strerror or exc}: {exc.filename!r}", EXIT_ERROR)
        raise
    except MemoryError:
        return fail("ffnn: error: not enough memory for what was asked (sizes, samples or data too large)",
                    EXIT_ERROR)
    except ImportError as exc:
        return fail(f"ffnn: error: {exc} (install the command's extras: pip install 'ffnn[cli]')", EXIT_ERROR)
    except Exception as exc:
        from .parallel import current

        if current() is None:
            raise
        return fail(f"ffnn: error: {type(exc).__name__}: {exc}", EXIT_ERROR)


if __name__ == "__main__":
    sys.exit(main())
