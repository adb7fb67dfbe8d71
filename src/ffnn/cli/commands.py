"""The ``ffnn`` subcommands: each takes the parsed arguments, calls the library and prints.

Errors the user can fix are raised as :class:`ffnn.cli.UsageError` (exit 2) or
:class:`ffnn.cli.CommandError` (exit 1); ``ffnn.cli.main`` turns them into one line on stderr.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time

import numpy as np

from ..losses import LOSSES
from ..optim import OPTIMIZERS
from .errors import EXIT_INTERRUPTED, CommandError, UsageError


# --- helpers -------------------------------------------------------------------------------------

def _check_outputs(outputs, inputs=(), allow=(), *, force=False):
    """Every output path of a command checked at once, before any work (see ffnn._files.check_outputs).
    The command line's one policy: an existing file is replaced only with ``--force`` (a checkpoint
    that the run resumes from is its own)."""
    from .._files import check_outputs

    try:
        return check_outputs(outputs, inputs, allow, replace=force)
    except OSError as exc:
        raise CommandError(str(exc)) from None


def _write(what, write, *args, **kw):
    """Run a write; a failure (disk full, permissions) is one line naming the file."""
    try:
        write(*args, **kw)
    except OSError as exc:
        raise CommandError(str(exc) if str(exc).startswith("could not") else f"could not write {what}: {exc}") from None
    except ValueError as exc:
        raise CommandError(f"could not write {what}: {exc}") from None


def _load_model(path):
    from .. import load
    from .._files import FileFormatError

    try:
        return load(path)
    except (FileFormatError, OSError) as exc:
        raise CommandError(str(exc)) from None


def _model_loss(net, path, default=None):
    """The loss a model was trained with, checked to be one ffnn knows."""
    from .._files import printable
    from ..losses import get_loss

    name = net.metadata.get("loss", default)
    try:
        return get_loss(name).name
    except (TypeError, ValueError):
        raise CommandError(f"model file {str(path)!r} names loss {printable(name)!r}, which is not built in") from None


def _read(path, **kw):
    from ..data import DataError, read_dataset

    try:
        return read_dataset(path, **kw)
    except DataError as exc:
        raise CommandError(str(exc)) from None


def _prepare_features(net, ds):
    """The data's features scaled as the model's were in training; a value the scaling carries
    beyond the float range is an error naming its row and column."""
    meta = net.metadata
    if ds.X.shape[1] != net.sizes[0]:
        raise CommandError(f"data file {ds.source!r} has {ds.X.shape[1]} feature columns; "
                           f"the model expects {net.sizes[0]}")
    X = ds.X
    if meta.get("scaler") is not None:
        if tuple(meta["scaler"].shift.shape) != (X.shape[1],):
            raise CommandError(f"the model's input scaling has {meta['scaler'].shift.shape} columns; "
                               f"the data has {X.shape[1]}")
        with np.errstate(over="ignore", invalid="ignore"):
            X = meta["scaler"].transform(X)
        bad = np.argwhere(~np.isfinite(X))
        if len(bad):
            from .._files import printable

            row, col = bad[0]
            raise CommandError(f"data file {str(ds.source)!r}: row {ds.start + row + 1}, feature "
                               f"{printable(ds.feature_names[col])!r}: {ds.X[row, col]:g} is beyond the float "
                               f"range once scaled as in training")
    return X


def _predict(net, ds):
    """(scaled features, the network's outputs) for a data set; a row whose outputs are not finite
    (features far outside what the model was trained on) is an error naming it."""
    X = _prepare_features(net, ds)
    with np.errstate(all="ignore"):
        A = net.predict(X)
    bad = np.flatnonzero(~np.all(np.isfinite(A), axis=1))
    if len(bad):
        raise CommandError(f"data file {str(ds.source)!r}: row {ds.start + bad[0] + 1}: the model's outputs are not finite "
                           f"for its features (values far outside what the model was trained on)")
    return X, A


def _outputs_to_predictions(net, A):
    """(predictions, probabilities or None) from network outputs, in the user's units and labels."""
    meta = net.metadata
    if meta.get("task") == "classify":
        classes = np.asarray(meta["classes"], dtype=object)
        return classes[np.argmax(A, axis=1)], A
    Y = A
    if meta.get("target_scaler") is not None and meta["target_scaler"].shift.shape == (A.shape[1],):
        Y = meta["target_scaler"].inverse(A)
    return Y[:, 0], None


def _regression_scores(truth, pred):
    """R², MSE and MAE in the user's units. The metrics scale before they square or sum, so a score is
    infinite only when its value is beyond the float range (the MSE of errors near 1e300): JSON then
    has null and the terminal "overflow" (see :func:`_score_text`)."""
    import ffnn

    with np.errstate(over="ignore", invalid="ignore"):
        return {k: getattr(ffnn.metrics, k)(truth, pred) for k in ("r2", "mse", "mae")}


def _score_text(value):
    """A score for the terminal: 6 significant digits; beyond the float range "overflow"."""
    if not isinstance(value, float):
        return str(value)
    if math.isinf(value):
        return "overflow (beyond ±1.8e308)"
    return "undefined (NaN)" if math.isnan(value) else f"{value:.6g}"


def _finite_or_none(value):
    """Numbers for JSON: a NaN or infinite score becomes None (null)."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _train_device(args):
    """None (NumPy on the CPU) or the CUDA device ``--device`` asks for."""
    if args.device == "cpu":
        return None
    try:
        import torch
    except ImportError:
        if args.device == "auto":
            return None
        raise CommandError("--device cuda needs PyTorch: pip install 'ffnn[torch]'") from None
    if torch.cuda.is_available():
        return "cuda"
    if args.device == "auto":
        return None
    raise CommandError("--device cuda: PyTorch sees no CUDA device")


# --- train -------------------------------------------------------------------------------------

def cmd_train(args):
    from .parallel import world

    comm = world()  # under mpiexec: every rank reads the data and trains its share; rank 0 prints and writes
    rank = 0 if comm is None else comm.rank
    if rank != 0:
        sys.stdout = open(os.devnull, "w")
    _check_train_flags(args)
    _check_outputs([("--out", args.out), ("--plot", args.plot), ("--metrics", args.metrics),
                    ("--checkpoint", args.checkpoint)],
                   inputs=[("DATA", args.data), ("--resume", args.resume)], allow={("--checkpoint", "--resume")},
                   force=args.force)
    ds, task = _training_data(args)
    job = _targets(args, ds, task)
    if args.dtype == "float32":
        _check_float32_range(args, ds, job)
    net, opt, lr = _network(args, ds, job)
    print(f"network: {' -> '.join(map(str, net.sizes))}  ({', '.join(a.name for a in net.activations)}), "
          f"{net.n_parameters} parameters; loss {job['loss']}; {args.optimizer} lr {lr:g}"
          + (f"; on {net.device} (PyTorch)" if net.placement() is not None else ""))
    history, interrupted, seconds = _fit(args, net, opt, job, comm)
    if net.placement() is not None:
        net = net.to(xp=np)  # evaluated and saved from the host; model files are device-independent
    if len(history) == 0:
        if rank == 0:
            print("ffnn: nothing was trained; no files written", file=sys.stderr)
        return EXIT_INTERRUPTED
    code = EXIT_INTERRUPTED if interrupted else 0
    if rank != 0:  # every rank holds the same weights; rank 0 evaluates and writes
        comm.Barrier()
        return code
    try:
        summary, headline = _summary(args, net, ds, job, history, seconds, interrupted)
        _write_results(args, net, ds, job, history, summary, headline, seconds)
    finally:
        if comm is not None:
            comm.Barrier()
    return code


def _check_float32_range(args, ds, job):
    """--dtype float32: a feature or target beyond float32's range (about 3.4e38) once scaled would
    become infinite in the cast; the error names the file, the row, the column and the value."""
    from .._files import printable

    big = float(np.finfo(np.float32).max)
    scaled = "" if args.scale == "none" else f" once scaled (--scale {args.scale})"
    for X, T, rows in ((job["X_train"], job["T_train"], job["tr"]), (job["X_test"], job["T_test"], job["te"])):
        for values, names in ((X, ds.feature_names), (T, None)):
            bad = np.argwhere(np.abs(values) > big)
            if len(bad):
                i, j = bad[np.lexsort((bad[:, 1], rows[bad[:, 0]]))[0]]  # the first in the file's order
                what = f"feature {printable(names[j])!r}" if names is not None else f"target {printable(ds.target_name)!r}"
                raise CommandError(f"data file {str(ds.source)!r}: row {int(rows[i]) + 1}, {what}: {values[i, j]:g}"
                                   f"{scaled} is beyond the float32 range (±{big:.3g}); use --dtype float64"
                                   + (" or --scale standard" if args.scale == "none" else ""))


def _check_train_flags(args):
    """Flags that contradict each other or the data are usage errors, before any work."""
    if args.precision != "highest" and (args.dtype != "float32" or _train_device(args) is None):
        raise UsageError("ffnn train: --precision tf32/bf16 needs --dtype float32 and a GPU (--device cuda or auto)")
    if args.early_stopping < 0:
        raise UsageError(f"ffnn train: --early-stopping must be 0 (off) or a positive integer, got {args.early_stopping}")
    if args.loss is not None and args.output is not None:
        _check_loss_and_output("ffnn train", args.loss, args.output)
    if args.loss in _POSITIVE_OUTPUTS and args.output is not None and args.output not in _POSITIVE_OUTPUTS[args.loss]:
        raise UsageError(f"ffnn train: --loss {args.loss} needs positive outputs (--output "
                         f"{' or '.join(_POSITIVE_OUTPUTS[args.loss])}); --output {args.output} gives others")
    if args.momentum is not None and args.optimizer != "sgd":
        raise UsageError(f"ffnn train: --momentum is for --optimizer sgd, not {args.optimizer}")
    if args.nesterov and (args.optimizer != "sgd" or not args.momentum):
        raise UsageError("ffnn train: --nesterov needs --optimizer sgd and a --momentum above 0")
    if OPTIMIZERS[args.optimizer].full_batch and args.batch_size is not None:
        raise UsageError(f"ffnn train: --optimizer {args.optimizer} takes full-batch steps; leave out --batch-size")
    if args.schedule is not None and not OPTIMIZERS[args.optimizer].follows_lr:
        raise UsageError(f"ffnn train: --optimizer {args.optimizer} reads --lr only for its first step size; "
                         f"--schedule would change nothing")
    if args.resume and not os.path.exists(args.resume):
        raise CommandError(f"--resume: checkpoint file {args.resume!r} does not exist")


def _training_data(args):
    """The data set and the task (classify or regress), printed with the reason."""
    from ..data import infer_task, load_default

    ds = load_default() if args.data is None else _read(args.data, target=args.target)
    print(f"data: {ds.source}: {len(ds)} samples, {ds.X.shape[1]} features, target {ds.target_name!r}")
    task, why = (args.task, "as given by --task") if args.task else infer_task(ds.y)
    print(f"task: {task} ({why})")
    return ds, task


#: The classification losses, and the outputs each is defined on (the usual one first), as the loss
#: objects declare them (``Loss.probability_outputs``).
_OUTPUTS_FOR_LOSS = {name: loss.probability_outputs for name, loss in LOSSES.items() if loss.classification}
_CLASSIFICATION_LOSSES = tuple(_OUTPUTS_FOR_LOSS)
#: Losses of scores (the sign is the class): classification only, an identity output by default.
_MARGIN_LOSSES = ("hinge", "squared_hinge")
#: Losses of positive rates: counts as they are (no target scaling), a softplus output by default.
_POSITIVE_OUTPUTS = {"poisson": ("softplus", "sigmoid")}


def _check_loss_and_output(command, loss, output):
    """A usage error when ``loss`` is not defined on what ``output`` produces."""
    allowed = _OUTPUTS_FOR_LOSS.get(loss)
    if allowed is not None and output not in allowed:
        raise UsageError(f"{command}: --loss {loss} needs outputs that are probabilities (--output "
                         f"{' or '.join(allowed)}); --output {output} gives other values")


def _targets(args, ds, task):
    """The split, scaled inputs and targets, and the loss, output and metric the task calls for."""
    from ..data import DataError, Scaler, encode_labels, integer_valued, train_test_split

    rng = np.random.default_rng(args.seed)
    job = {"task": task, "classes": None, "target_scaler": None}
    if task == "classify":
        y = ds.y
        if y.dtype.kind == "f" and integer_valued(y):
            y = y.astype(np.int64)  # labels 1, 2, 3 stay 1, 2, 3 (not 1.0)
        job["classes"], codes = encode_labels(y)
        if len(job["classes"]) < 2:
            raise CommandError(f"the target {ds.target_name!r} has a single class ({job['classes'].tolist()[0]!r}); "
                               f"nothing to classify")
        stratify = codes if np.bincount(codes).min() >= 2 else None
    else:
        if ds.y.dtype.kind not in "biuf":
            raise CommandError(f"--task regress needs a numeric target; {ds.target_name!r} holds text labels")
        if args.loss in _CLASSIFICATION_LOSSES + _MARGIN_LOSSES or args.output == "softmax":
            flag = f"--loss {args.loss}" if args.loss in _CLASSIFICATION_LOSSES + _MARGIN_LOSSES else "--output softmax"
            raise UsageError(f"ffnn train: {flag} is for classification; the task is regression "
                             f"(give --task classify to classify)")
        stratify = None
    try:
        tr, te = train_test_split(len(ds), args.test_size, rng, stratify)
    except (DataError, ValueError) as exc:
        raise CommandError(f"data file {str(ds.source)!r}: --test-size {args.test_size:g}: {exc}") from None
    held = int(round(args.validation * len(tr)))
    if held == 0 or held == len(tr):
        raise CommandError(f"data file {str(ds.source)!r}: --validation {args.validation:g} of the {len(tr)} training "
                           f"samples leaves {'nothing held out' if held == 0 else 'nothing to train on'}; "
                           f"give more data or another --validation")
    try:
        scaler = Scaler(args.scale).fit(ds.X[tr])
    except ValueError as exc:
        raise CommandError(f"data file {str(ds.source)!r}: --scale {args.scale}: features: {exc}") from None
    job.update(tr=tr, te=te, scaler=scaler, X_train=scaler.transform(ds.X[tr]), X_test=scaler.transform(ds.X[te]))
    if task == "classify":
        T_all = np.eye(len(job["classes"]))[codes]
        output = args.output or ("identity" if args.loss in _MARGIN_LOSSES else "softmax")
        job.update(k=len(job["classes"]), output=output, loss=args.loss or "cross_entropy", metric="accuracy")
    else:
        y = ds.y.astype(np.float64).reshape(-1, 1)
        try:
            counts = args.loss in _POSITIVE_OUTPUTS
            job["target_scaler"] = Scaler("standard" if args.scale != "none" and not counts else "none").fit(y[tr])
        except ValueError as exc:
            raise CommandError(f"data file {str(ds.source)!r}: target: {exc}") from None
        T_all = job["target_scaler"].transform(y)
        output = args.output or _POSITIVE_OUTPUTS.get(args.loss, ("identity",))[0]
        job.update(k=1, output=output, loss=args.loss or "mse", metric="r2")
    job.update(T_train=T_all[tr], T_test=T_all[te])
    return job


def _network(args, ds, job):
    """The network and the optimiser the flags ask for, on the device ``--device`` picks."""
    import ffnn

    sizes = [ds.X.shape[1], *args.hidden, job["k"]]
    device = _train_device(args)
    try:
        net = ffnn.Network(sizes, args.activation, job["output"], seed=args.seed, dtype=args.dtype, device=device)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"ffnn train: {exc}") from None
    lr = args.lr if args.lr is not None else ffnn.optim.OPTIMIZERS[args.optimizer]().lr  # the optimizer's default
    opt = (ffnn.SGD(lr, momentum=args.momentum or 0.0, nesterov=args.nesterov) if args.optimizer == "sgd"
           else ffnn.optim.OPTIMIZERS[args.optimizer](lr))
    return net, opt, lr


def _fit(args, net, opt, job, comm=None):
    """Train (data-parallel over ``comm`` under mpiexec); returns (History, whether Ctrl-C stopped it,
    seconds)."""
    import ffnn

    interrupted = False
    t0 = time.perf_counter()
    try:
        history = ffnn.train(
            net, job["X_train"], job["T_train"], loss=job["loss"], optimizer=opt, epochs=args.epochs,
            batch_size=_batch_size(args, opt, job), l1=args.l1, l2=args.l2, schedule=args.schedule,
            validation=args.validation,
            early_stopping=args.early_stopping or None, seed=args.seed, progress=not args.quiet,
            checkpoint=args.checkpoint, resume=args.resume, dropout=args.dropout, metric=job["metric"],
            diagnostics=args.diagnostics, precision=args.precision, loop=args.loop,
            dropout_masks=args.dropout_masks, comm=comm)
    except ffnn.TrainingInterrupted as exc:
        history, interrupted = exc.history, True
        if comm is None or comm.rank == 0:
            print(f"ffnn: interrupted after {len(history)} complete epochs; saving what was asked for",
                  file=sys.stderr)
    except (ffnn.TrainingDiverged, ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None
    return history, interrupted, time.perf_counter() - t0


def _batch_size(args, opt, job):
    """--batch-size, or its default: 32, or every training row for a full-batch optimizer."""
    if args.batch_size is not None:
        return args.batch_size
    return len(job["X_train"]) if opt.full_batch else 32


def _summary(args, net, ds, job, history, seconds, interrupted):
    """The held-out scores (JSON-ready: a NaN score is None) and the line that reports them."""
    import ffnn

    tr, te, X_test, T_test = job["tr"], job["te"], job["X_test"], job["T_test"]
    A_test = net.predict(X_test)
    n_fit = len(tr) - int(round(args.validation * len(tr)))  # the samples each epoch trains on
    train_seconds = sum(history.time)
    summary = {"task": job["task"], "data": str(ds.source), "target": ds.target_name, "n_train": int(len(tr)),
               "n_test": int(len(te)), "epochs": len(history), "best_epoch": history.best_epoch,
               "seconds": round(seconds, 4),
               "samples_per_second": round(len(history) * n_fit / train_seconds, 1) if train_seconds > 0 else None,
               "interrupted": interrupted, "loop": history.loop}
    if job["task"] == "classify":
        summary["test_accuracy"] = ffnn.metrics.accuracy(T_test, A_test)
        summary["test_loss"] = float(net.loss(X_test, T_test, job["loss"]))
        scores = [("test accuracy", "test_accuracy", ".4f")]
    else:
        pred, truth = job["target_scaler"].inverse(A_test), job["target_scaler"].inverse(T_test)
        summary.update({f"test_{k}": v for k, v in _regression_scores(truth, pred).items()})
        scores = [("test R²", "test_r2", ".4f"), ("MSE", "test_mse", ".4g"), ("MAE", "test_mae", ".4g")]
    headline = "  ".join(f"{label} {format(summary[k], f) if math.isfinite(summary[k]) else _score_text(summary[k])}"
                         for label, k, f in scores)
    return {k: _finite_or_none(v) for k, v in summary.items()}, headline


def _write_results(args, net, ds, job, history, summary, headline, seconds):
    """The model, the curves and the metrics, as asked for, written as one: each is staged beside its
    destination first, and only when all are staged are they put in place; a failed write is one
    line and changes none of them."""
    from .. import io as _io
    from .._files import Outputs, printable

    meta = dict(task=job["task"], loss=job["loss"], target=ds.target_name, feature_names=ds.feature_names,
                scaler=job["scaler"], history=history, summary=summary)
    if job["task"] == "classify":
        meta["classes"] = job["classes"].tolist()
    else:
        meta["target_scaler"] = job["target_scaler"]

    def stage_and_commit():  # Outputs commits on a clean exit and discards everything otherwise
        with Outputs() as outputs:
            outputs.add(args.out, _io.encode(net, f"--out {args.out!r}", **meta), "--out")
            if args.plot:
                from ..plot import history_figure, png_bytes

                figure = history_figure(history, title=f"ffnn on {os.path.basename(str(ds.source))}")
                outputs.add(args.plot, png_bytes(figure), "--plot")
            if args.metrics:
                outputs.add(args.metrics, (json.dumps(summary, indent=2, allow_nan=False) + "\n").encode(), "--metrics")

    _write("the results", stage_and_commit)
    print(f"{headline}  ({len(history)} epochs in {seconds:.2f}s, {summary['samples_per_second'] or 0:.0f} training "
          f"samples/s, {summary['loop']} loop)")
    for flag, what in (("out", "model"), ("plot", "curves"), ("metrics", "metrics")):
        if getattr(args, flag):
            print(f"{what} saved to {printable(getattr(args, flag))}")


# --- predict, evaluate, info, gradcheck, bench -------------------------------------------------------

def cmd_predict(args):
    from .._files import printable

    _check_outputs([("--out", args.out)], inputs=[("MODEL", args.model), ("DATA", args.data)], force=args.force)
    net = _load_model(args.model)
    meta = net.metadata
    if args.proba and meta.get("task") != "classify":
        raise UsageError("ffnn predict: --proba needs a classification model")
    header = [f"p_{c}" for c in meta["classes"]] if args.proba else ["prediction"]
    count = 0

    def csv_text(rows):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)  # quotes labels that hold commas or quotes
        return buf.getvalue().encode()

    def pieces():
        """The predictions as CSV, a chunk of rows at a time (constant memory for a file of any length)."""
        from ..data import DataError, read_chunks

        nonlocal count
        first = [header]  # the header goes out with the first chunk: a file that fails there prints nothing
        try:
            for ds in read_chunks(args.data, target=meta.get("target"), expected_features=meta.get("feature_names")):
                _, A = _predict(net, ds)
                count += A.shape[0]
                if args.proba:
                    yield csv_text(first + [[repr(v) for v in row] for row in A.tolist()])
                elif meta.get("task") == "classify":  # each class's CSV cell written once, then picked
                    cells = np.array([csv_text([[str(c)]]) for c in meta["classes"]], dtype=object)
                    yield csv_text(first) + b"".join(cells[np.argmax(A, axis=1)].tolist())
                else:
                    pred, _ = _outputs_to_predictions(net, A)
                    yield csv_text(first) + ("\n".join(map(repr, pred.astype(float).tolist())) + "\n").encode()
                first = []
        except DataError as exc:
            raise CommandError(str(exc)) from None

    if args.out:
        from .._files import Outputs

        def write():
            with Outputs() as out:
                out.add_stream(args.out, pieces(), "--out")

        _write(f"--out {args.out!r}", write)
        print(f"{count} predictions written to {printable(args.out)}", file=sys.stderr)
    else:
        for piece in pieces():
            sys.stdout.write(piece.decode())  # on a terminal, control characters are escaped (ffnn.cli.terminal)
    return 0


def cmd_evaluate(args):
    net = _load_model(args.model)
    meta = net.metadata
    loss = _model_loss(net, args.model, "cross_entropy" if meta.get("task") == "classify" else "mse")
    target = args.target or meta.get("target")
    out = _evaluate_in_chunks(net, meta, loss, args, target)
    if out is None:  # a file the chunked readers do not stream: read whole
        ds = _read(args.data, target=target, expected_features=meta.get("feature_names"))
        if ds.y is None:
            raise UsageError(f"ffnn evaluate: model file {str(args.model)!r} does not name its target column; "
                             f"give --target COL")
        out = {"model": str(args.model), "data": str(args.data), "n_samples": len(ds)}
        scores = _scores(net, meta, loss, args, ds, ds.y)
        out.update(_regression_scores(ds.y.astype(np.float64), scores["pred"]) if "pred" in scores else scores)
    confusion = out.pop("confusion", None)
    if confusion is not None:
        from ..metrics import classification_report

        out["report"] = classification_report(confusion, meta["classes"])
        out["confusion_matrix"] = confusion.tolist()
    if args.json:
        print(json.dumps({k: _finite_or_none(v) for k, v in out.items()}, indent=2, allow_nan=False))
    else:
        print("  ".join(f"{k} {_score_text(v)}" for k, v in out.items() if k not in ("report", "confusion_matrix")))
        if confusion is not None:
            print()
            print(_report_table(out["report"], meta["classes"]))
            print()
            print(_confusion_table(confusion, meta["classes"]))
    return 0


def _report_table(report, classes):
    """scikit-learn's classification_report layout: a row per class, then accuracy and the averages."""
    from .._files import printable

    names = [printable(c) for c in classes]
    width = max([len(n) for n in names] + [len("weighted avg")])
    rows = [f"{'':>{width}}  {'precision':>9}  {'recall':>9}  {'f1-score':>9}  {'support':>9}"]
    for name, label in zip(names, classes):
        r = report[str(label)]
        rows.append(f"{name:>{width}}  {r['precision']:>9.4f}  {r['recall']:>9.4f}  {r['f1-score']:>9.4f}  "
                    f"{r['support']:>9}")
    total = report["macro avg"]["support"]
    rows += ["", f"{'accuracy':>{width}}  {'':>9}  {'':>9}  {report['accuracy']:>9.4f}  {total:>9}"]
    for avg in ("macro avg", "weighted avg"):
        r = report[avg]
        rows.append(f"{avg:>{width}}  {r['precision']:>9.4f}  {r['recall']:>9.4f}  {r['f1-score']:>9.4f}  {total:>9}")
    return "\n".join(rows)


#: Wider than this, the confusion matrix is in --json only (a terminal cannot show it readably).
_CONFUSION_COLUMNS = 20


def _confusion_table(C, classes):
    """Rows: the true class; columns: the predicted one."""
    from .._files import printable

    k = len(classes)
    if k > _CONFUSION_COLUMNS:
        return f"confusion matrix: {k} × {k}, in --json (over {_CONFUSION_COLUMNS} classes)"
    names = [printable(c) for c in classes]
    corner = "true \\ predicted"
    head = max(len(n) for n in names + [corner])
    width = max([len(n) for n in names] + [len(str(int(C.max())))])
    rows = [f"{corner:>{head}}  " + "  ".join(f"{n:>{width}}" for n in names)]
    rows += [f"{n:>{head}}  " + "  ".join(f"{int(v):>{width}}" for v in row) for n, row in zip(names, C)]
    return "\n".join(rows)


def _scores(net, meta, loss, args, ds, y):
    """The scores of one data set (or the sums of a chunk, ``partial``: see :func:`_evaluate_in_chunks`)."""
    import ffnn

    from ..data import DataError, encode_labels

    X, A = _predict(net, ds)
    if meta.get("task") == "classify":
        try:
            _, codes = encode_labels(y if y.dtype.kind in "USO" else _as_class_values(y, meta["classes"]),
                                     meta["classes"])
        except DataError as exc:
            raise CommandError(f"data file {args.data!r}: {exc}") from None
        T = np.eye(len(meta["classes"]))[codes]
        confusion = ffnn.metrics.confusion_matrix(codes, ffnn.metrics.predicted_classes(A), len(meta["classes"]))
        return {"accuracy": ffnn.metrics.accuracy(T, A), "loss": float(net.loss(X, T, loss)), "confusion": confusion}
    if y.dtype.kind not in "biuf":
        raise CommandError(f"data file {args.data!r}: the target {ds.target_name!r} holds text; "
                           f"this model predicts numbers")
    pred, _ = _outputs_to_predictions(net, A)
    return {"pred": pred}


def _evaluate_in_chunks(net, meta, loss, args, target):
    """``ffnn evaluate``'s scores with the features read in chunks (constant memory but for the target
    column, read whole first so that its values follow the whole column's rules); None where the file
    does not stream (the caller reads it whole)."""
    from .. import _columnar
    from ..data import DataError, read_chunks, read_target
    from ..losses import get_loss

    if target is None:
        return None
    try:
        y = read_target(args.data, target)
    except _columnar.NotSure:
        return None
    except DataError as exc:
        raise CommandError(str(exc)) from None
    n, correct, loss_sum, preds, confusion = 0, 0.0, 0.0, [], 0
    mean = getattr(get_loss(loss), "_mean", True)
    try:
        for ds in read_chunks(args.data, target=target, expected_features=meta.get("feature_names")):
            part = y[ds.start:ds.start + len(ds)]
            scores = _scores(net, meta, loss, args, ds, part)
            if "pred" in scores:
                preds.append(scores["pred"])
            else:
                correct += scores["accuracy"] * len(ds)
                loss_sum += scores["loss"] * (len(ds) if mean else 1)
                confusion = confusion + scores["confusion"]
            n += len(ds)
    except DataError as exc:
        raise CommandError(str(exc)) from None
    if n != len(y):  # pragma: no cover - the two reads disagree on the rows
        return None
    out = {"model": str(args.model), "data": str(args.data), "n_samples": n}
    if preds:
        out.update(_regression_scores(y.astype(np.float64), np.concatenate(preds)))
    else:
        out.update(accuracy=correct / n, loss=loss_sum / n if mean else loss_sum, confusion=confusion)
    return out


def _as_class_values(y, classes):
    """Numeric targets read from a file, matched to the stored labels' type (3.0 -> 3 for integer
    labels, "3" for text labels); a value that is no whole number stays as it is (and is then not
    one of the integer classes)."""
    from ..data import whole_numbers

    whole = whole_numbers(y).tolist()
    if classes and isinstance(classes[0], str):
        return np.array([str(int(v)) if w else str(v) for v, w in zip(y.tolist(), whole)])
    if classes and isinstance(classes[0], int):
        return np.array([int(v) if w else v for v, w in zip(y.tolist(), whole)], dtype=object)
    return y


def cmd_info(args):
    """Describe a model; every text taken from the file is printed with control characters escaped."""
    from .._files import printable as p

    net = _load_model(args.model)
    meta = net.metadata
    print(f"model file: {p(args.model)}")
    print(f"architecture: {' -> '.join(map(str, net.sizes))}")
    print(f"activations: {p(', '.join(a.name for a in net.activations))}")
    print(f"parameters: {net.n_parameters}  (dtype {net.dtype})")
    for key in ("task", "loss", "target"):
        if key in meta:
            print(f"{key}: {p(meta[key])}")
    if "classes" in meta:
        print(f"classes: {p(', '.join(map(str, meta['classes'])))}")
    if meta.get("scaler") is not None and hasattr(meta["scaler"], "kind"):
        print(f"input scaling: {p(meta['scaler'].kind)}")
    h = meta.get("history")
    if h is not None and hasattr(h, "loss") and len(h):
        print(_history_line(h))
    s = meta.get("summary")
    if isinstance(s, dict):
        scores = {k: v for k, v in s.items() if k.startswith("test_") and isinstance(v, (int, float))}
        if scores:
            print("held-out: " + "  ".join(f"{p(k[5:])} {v:.4f}" for k, v in scores.items()))
    return 0


def _history_line(h):
    from .._files import printable

    fmt = lambda v, f: "n/a" if v is None else format(v, f)
    line = f"training: {len(h)} epochs, final loss {fmt(h.loss[-1], '.6g')}"
    if h.val_loss and h.val_loss[-1] is not None:
        line += (f", val_loss {fmt(h.val_loss[-1], '.6g')}, val_{printable(h.metric)} "
                 f"{fmt(h.val_metric[-1], '.4f')}")
    if h.best_epoch:
        line += f", best epoch {h.best_epoch}"
    return line


def _announce_gradcheck(net, X, T, loss, max_entries):
    """What the check will do and about how long it will take (two evaluations of J per entry), said
    before it starts, so that a long check is not silence."""
    import time

    arrays = [*net.parameters(), X]
    entries = sum(a.size if max_entries is None else min(a.size, max_entries) for a in arrays)
    net.loss(X, T, loss)  # the first evaluation warms up (imports, caches); time the next ones
    seconds = []
    for _ in range(3):
        t0 = time.perf_counter()
        net.loss(X, T, loss)
        seconds.append(time.perf_counter() - t0)
    estimate = 4 * entries * min(seconds)
    print(f"checking {entries:,} entries of the parameters and inputs by central differences (four evaluations "
          f"of J each): about {estimate:.0f} s" + ("; --max-entries N checks N per array, --max-seconds S stops "
                                                   "after S" if estimate > 30 else ""), flush=True)
    return estimate


def random_samples(net, loss, n, seed):
    """(X, T): ``n`` random inputs (standard normal) and targets the loss is defined on (one-hot
    classes for cross_entropy, 0/1 for binary_cross_entropy, else standard normal), from ``seed``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, net.sizes[0]))
    k = net.sizes[-1]
    if loss == "cross_entropy":
        T = np.eye(k)[rng.integers(0, k, size=n)]
    elif loss == "binary_cross_entropy":
        T = rng.integers(0, 2, size=(n, k)).astype(float)
    else:
        T = rng.normal(size=(n, k))
    return X, T


def cmd_gradcheck(args):
    import ffnn

    if args.model and args.sizes:
        raise UsageError("ffnn gradcheck: give a MODEL or --sizes, not both")
    if args.model:
        net = _load_model(args.model)
        loss = _model_loss(net, args.model, args.loss)
    elif args.sizes:
        if len(args.sizes) < 2:
            raise UsageError("ffnn gradcheck: --sizes needs at least an input and an output width")
        output = args.output or _OUTPUTS_FOR_LOSS.get(args.loss, ("identity",))[0]
        _check_loss_and_output("ffnn gradcheck", args.loss, output)
        try:
            net = ffnn.Network(args.sizes, args.activation, output, seed=args.seed)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"ffnn gradcheck: {exc}") from None
        loss = args.loss
    else:
        raise UsageError("ffnn gradcheck: give a MODEL file or --sizes such as 4,8,3")
    X, T = random_samples(net, loss, args.samples, args.seed)
    print(f"network {' -> '.join(map(str, net.sizes))} ({', '.join(a.name for a in net.activations)}), "
          f"loss {loss}, {args.samples} random samples")
    _announce_gradcheck(net, X, T, loss, args.max_entries or None)
    from .terminal import Status

    status = Status()

    def progress(done, total):
        status.show(lambda left: f"checked entries: {done:,} of {total:,} ({100 * done / total:.0f}%), "
                                 f"about {left(done / total):.0f} s left")

    try:
        report = ffnn.gradcheck(net, X, T, loss, max_entries=args.max_entries or None, seed=args.seed,
                                max_seconds=args.max_seconds, progress=progress)
    except ValueError as exc:
        raise CommandError(f"{'model file ' + repr(str(args.model)) if args.model else 'the network'}: {exc}") from None
    finally:
        status.close()
    print(report)
    if not report.complete and not report.passed and report.worst <= report.tolerance:
        raise CommandError(f"gradient check: --max-seconds {args.max_seconds:g} ran out before the first entry")
    if not report.passed:
        worst = max(report.errors, key=report.errors.get)
        raise CommandError(f"gradient check failed: {worst} has relative error {report.errors[worst]:.2e} "
                           f"> tolerance {report.tolerance:.0e}")
    return 0


def cmd_export(args):
    fmt = args.format or ("c" if os.path.splitext(args.out)[1].lower() in (".h", ".hpp") else "onnx")
    if args.quantize is None and (args.calibration is not None or args.per_channel):
        raise UsageError(f"ffnn export: {'--calibration' if args.calibration is not None else '--per-channel'} "
                         f"is for --quantize int8")
    if args.quantize and args.dtype == "float64":
        raise UsageError("ffnn export: --quantize int8 exports int8; --dtype float64 is for the float ONNX model")
    if fmt == "c" and args.dtype == "float64":
        raise UsageError("ffnn export: the C header is float32; --dtype float64 is for --format onnx")
    if fmt == "c" and args.opset is not None:
        raise UsageError("ffnn export: --opset is for --format onnx")
    if fmt == "onnx" and args.name != "model":
        raise UsageError("ffnn export: --name is for --format c")
    if fmt == "c":
        from ..export.c import check_name

        try:
            check_name(args.name)
        except ValueError:
            raise UsageError(f"ffnn export: --name must be a C identifier (letters, digits, underscores), "
                             f"got {args.name!r}") from None
    if fmt == "onnx":
        from ..export.onnx import DEFAULT_OPSET, check_opset

        try:
            opset = check_opset(DEFAULT_OPSET if args.opset is None else args.opset)
        except ImportError as exc:
            raise CommandError(str(exc)) from None
        except ValueError as exc:
            raise UsageError(f"ffnn export: --opset: {exc}") from None
    _check_outputs([("OUT", args.out)], inputs=[("MODEL", args.model), ("--calibration", args.calibration)],
                   force=args.force)
    net = _load_model(args.model)
    from ..export import ConversionError

    try:
        if args.quantize:
            done = "\n".join(_export_int8(args, net, fmt, opset if fmt == "onnx" else None))
        elif fmt == "onnx":
            from ..export.onnx import export_onnx

            dtype = args.dtype or "float32"  # what ONNX users feed (numpy float32 arrays); --dtype float64 keeps doubles
            m = export_onnx(net, args.out, dtype=dtype, opset=opset)
            outputs = ", ".join(o.name for o in m.graph.output)
            done = (f"ONNX model written to {args.out} (opset {opset}): input X (N, {net.sizes[0]}) {dtype}; "
                    f"outputs {outputs}")
        else:
            from ..export.c import export_c

            text = export_c(net, args.out, name=args.name)
            functions = [f"{args.name}_{f}" for f in ("predict", "predict_label", "class_name", "feature_name")]
            done = f"C header written to {args.out}: {', '.join(f for f in functions if f + '(' in text)}"
    except ConversionError as exc:
        raise CommandError(f"model file {args.model!r}: {exc}") from None
    except OSError as exc:  # the file's write (standard output's failures are main's to report)
        raise CommandError(str(exc)) from None
    print(done)
    return 0


def _export_int8(args, net, fmt, opset):
    """``ffnn export --quantize int8``: calibrate on a data file, write the header or the QDQ model, and say how
    often the int8 model agrees with the float one on the calibration rows. Returns the lines to print
    (printed once the file is written, as ``cmd_export`` prints its own)."""
    from .._files import printable
    from ..export.int8 import export_c_int8, export_onnx_qdq, quantize_int8

    meta, said = net.metadata, []
    data = args.calibration
    if data is None:
        data = (meta.get("summary") or {}).get("data")
        if not isinstance(data, str) or not os.path.isfile(data):
            raise UsageError("ffnn export: --quantize int8 needs calibration data: --calibration DATA (rows of the "
                             "model's features, such as its training data)")
        said.append(f"calibrating on the model's training data, {printable(data)}")
    ds = _read(data, target=meta.get("target"), require_target=False, expected_features=meta.get("feature_names"))
    _, A = _predict(net, ds)  # the width checked, the float model's outputs
    q = quantize_int8(net, ds.X, per_channel=args.per_channel)  # the reader gave finite rows of the right width
    if fmt == "c":
        text = export_c_int8(q, path=args.out, name=args.name)
        functions = [f"{args.name}_{f}" for f in ("predict", "predict_label", "class_name", "feature_name")]
        said.append(f"int8 C header written to {args.out} ({len(text) / 1024:.1f} KiB, integer arithmetic only): "
              f"{', '.join(f for f in functions if f + '(' in text)}")
    else:
        export_onnx_qdq(q, path=args.out, opset=opset)
        said.append(f"int8 QDQ ONNX model written to {args.out} (opset {opset}): input X (N, {net.sizes[0]}) float32")
    pred, _ = _outputs_to_predictions(net, A)
    scheme = "per-channel" if args.per_channel else "per-tensor"
    if meta.get("task") == "classify":
        labels = np.asarray(meta["classes"], dtype=object)[q.label_q(q.quantize_input(ds.X))]
        said.append(f"int8 ({scheme} weights) on the {len(ds)} calibration rows: the same label as the float model "
              f"for {np.mean(labels == pred):.1%}")
    elif meta.get("task") == "regress":
        diff = float(np.sqrt(np.mean((q.predict(ds.X)[:, 0] - pred) ** 2)))
        said.append(f"int8 ({scheme} weights) on the {len(ds)} calibration rows: RMS difference from the float model's "
              f"predictions {diff:.4g} (their standard deviation: {float(np.std(pred)):.4g})")
    return said


def cmd_bench(args):
    _check_outputs([("--json", args.json)], force=args.force)
    if args.gpu:
        given = [f for f, v in (("--network", args.network), ("--dtype", args.dtype),
                                ("--no-first-fit", args.no_first_fit)) if v]
        if given:
            raise UsageError(f"ffnn bench --gpu: {given[0]} is for the CPU bench (without --gpu)")
        from .bench_gpu import main as gpu_main

        return gpu_main(quick=args.quick, json_path=args.json)
    from .bench import main as bench_main

    def flat(lists):
        return list(dict.fromkeys(x for part in lists for x in part)) if lists else None

    import functools

    return bench_main(quick=args.quick, json_path=args.json, n_samples=args.samples, networks=flat(args.network),
                      dtypes=flat(args.dtype), first_fit=not args.no_first_fit,
                      log=functools.partial(print, flush=True))  # each line as it comes, on a pipe too


# --- explain -------------------------------------------------------------------------------------

#: The network ``ffnn explain`` shows when given neither a MODEL nor --sizes.
DEFAULT_SIZES = [2, 3, 2]


def _explain_network(args, notation):
    """(network, loss name, where it came from) for the command's flags."""
    import ffnn

    from ..explanation import get_notation

    default_loss = get_notation(notation).loss_name or "mse"
    if args.model and args.sizes:
        raise UsageError("ffnn explain: give a MODEL or --sizes, not both")
    if args.model:
        if args.activation or args.output:
            raise UsageError("ffnn explain: --activation and --output are for a new network (--sizes), not a MODEL")
        net = _load_model(args.model)
        return net, _model_loss(net, args.model, args.loss or default_loss), f"model file {args.model}"
    sizes = args.sizes or DEFAULT_SIZES
    if len(sizes) < 2:
        raise UsageError("ffnn explain: --sizes needs at least an input and an output width")
    loss = args.loss or default_loss
    output = args.output or _OUTPUTS_FOR_LOSS.get(loss, ("sigmoid",))[0]
    _check_loss_and_output("ffnn explain", loss, output)
    try:
        net = ffnn.Network(sizes, args.activation or "sigmoid", output, seed=args.seed)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"ffnn explain: {exc}") from None
    return net, loss, f"a new network (seed {args.seed})"


def _explain_numbers(flag, values, width, what):
    if values is None:
        return None
    if len(values) != width:
        raise UsageError(f"ffnn explain: {flag} has {len(values)} values; the network's {what} has {width}")
    return np.asarray([values], dtype=np.float64)


def _explain_samples(args, net, loss):
    """(X, T, what they are) for the flags: given numbers, or random ones from --seed."""
    X0 = _explain_numbers("--input", args.input, net.sizes[0], "input layer")
    T0 = _explain_numbers("--target", args.target, net.sizes[-1], "output layer")
    n = 1 if X0 is not None else args.samples
    if args.sample is not None and args.sample >= n:
        raise UsageError(f"ffnn explain: --sample {args.sample} is not one of the {n} samples (0 to {n - 1})")
    X, T = random_samples(net, loss, n, args.seed)
    X = X if X0 is None else X0
    T = T if T0 is None else T0
    what = "given" if X0 is not None else f"random (seed {args.seed})"
    if args.sample is not None:
        X, T = X[args.sample:args.sample + 1], T[args.sample:args.sample + 1]
        what += f", sample {args.sample}"
    return X, T, what


def cmd_explain(args):
    import ffnn

    from .._files import atomic_write, printable

    if args.html:
        _check_outputs([("--html", args.html)], inputs=[("MODEL", args.model)])
        if os.path.exists(args.html) and not args.force:
            raise CommandError(f"output file {args.html!r} exists; pass --force to overwrite it")
    net, loss, source = _explain_network(args, args.notation)
    X, T, what = _explain_samples(args, net, loss)
    try:
        expl = ffnn.explain(net, X, T, loss, args.notation, learning_rate=args.lr)
    except ValueError as exc:
        raise CommandError(f"model file {str(args.model)!r}: {exc}" if args.model else str(exc)) from None
    print(f"{source}; inputs {what}")
    print(expl.text(width=args.width))
    if args.html:
        text = expl.html(net)
        _write(f"--html {args.html!r}", atomic_write, args.html, text.encode("utf-8"), "--html")
        print(f"HTML page written to {printable(args.html)}")
    return 0
