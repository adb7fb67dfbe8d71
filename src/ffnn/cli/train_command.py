"""``ffnn train``: the data, the task and its targets, the network, training (data-parallel under
mpiexec), the held-out scores, and the model, curves and metrics written as one."""


import json
import math
import os
import sys
import time

import numpy as np

from ..losses import LOSSES
from ..optim import OPTIMIZERS
from .errors import EXIT_INTERRUPTED, CommandError, UsageError
from .shared import (
    CLASSIFICATION_LOSSES,
    check_loss_and_output,
    finite_or_none,
    outputs_checked,
    read_data,
    regression_scores,
    score_text,
    train_device,
    write_reporting,
)


def cmd_train(args):
    from .parallel import world

    comm = world()  # under mpiexec: every rank reads the data and trains its share; rank 0 prints and writes
    rank = 0 if comm is None else comm.rank
    if rank != 0:
        sys.stdout = open(os.devnull, "w")
    _check_train_flags(args)
    outputs_checked([("--out", args.out), ("--plot", args.plot), ("--metrics", args.metrics),
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
    if args.precision != "highest" and (args.dtype != "float32" or train_device(args) is None):
        raise UsageError("ffnn train: --precision tf32/bf16 needs --dtype float32 and a GPU (--device cuda or auto)")
    if args.early_stopping < 0:
        raise UsageError(f"ffnn train: --early-stopping must be 0 (off) or a positive integer, got {args.early_stopping}")
    if args.loss is not None and args.output is not None:
        check_loss_and_output("ffnn train", args.loss, args.output)
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

    ds = load_default() if args.data is None else read_data(args.data, target=args.target)
    print(f"data: {ds.source}: {len(ds)} samples, {ds.X.shape[1]} features, target {ds.target_name!r}")
    task, why = (args.task, "as given by --task") if args.task else infer_task(ds.y)
    print(f"task: {task} ({why})")
    return ds, task


#: Losses of scores (the sign is the class): classification only, an identity output by default; losses
#: of positive rates: counts as they are (no target scaling), their first output by default. The loss
#: objects declare which they are (``Loss.margin``, ``Loss.positive_outputs``).
_MARGIN_LOSSES = tuple(name for name, loss in LOSSES.items() if loss.margin)
_POSITIVE_OUTPUTS = {name: loss.positive_outputs for name, loss in LOSSES.items() if loss.positive_outputs}


def _targets(args, ds, task):
    """The split, scaled inputs and targets, and the loss, output and metric the task calls for."""
    from ..data import (
        DataError,
        Scaler,
        encode_labels,
        integer_valued,
        train_test_split,
    )

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
        if args.loss in CLASSIFICATION_LOSSES + _MARGIN_LOSSES or args.output == "softmax":
            flag = f"--loss {args.loss}" if args.loss in CLASSIFICATION_LOSSES + _MARGIN_LOSSES else "--output softmax"
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
    device = train_device(args)
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
        summary.update({f"test_{k}": v for k, v in regression_scores(truth, pred).items()})
        scores = [("test R²", "test_r2", ".4f"), ("MSE", "test_mse", ".4g"), ("MAE", "test_mae", ".4g")]
    headline = "  ".join(f"{label} {format(summary[k], f) if math.isfinite(summary[k]) else score_text(summary[k])}"
                         for label, k, f in scores)
    return {k: finite_or_none(v) for k, v in summary.items()}, headline


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

    write_reporting("the results", stage_and_commit)
    print(f"{headline}  ({len(history)} epochs in {seconds:.2f}s, {summary['samples_per_second'] or 0:.0f} training "
          f"samples/s, {summary['loop']} loop)")
    for flag, what in (("out", "model"), ("plot", "curves"), ("metrics", "metrics")):
        if getattr(args, flag):
            print(f"{what} saved to {printable(getattr(args, flag))}")
