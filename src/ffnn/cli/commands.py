"""The ``ffnn`` subcommands: each takes the parsed arguments, calls the library and prints.

Errors the user can fix are raised as :class:`ffnn.cli.UsageError` (exit 2) or
:class:`ffnn.cli.CommandError` (exit 1); ``ffnn.cli.main`` turns them into one line on stderr.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time

import numpy as np

from .errors import EXIT_ERROR, EXIT_INTERRUPTED, CommandError, UsageError


# --- helpers -------------------------------------------------------------------------------------

def _check_output(path, flag):
    from .._files import check_writable

    try:
        check_writable(path, f"{flag}")
    except OSError as exc:
        raise CommandError(str(exc)) from None


def _load_model(path):
    from .. import load
    from .._files import FileFormatError

    try:
        return load(path)
    except (FileFormatError, OSError) as exc:
        raise CommandError(str(exc)) from None


def _read(path, **kw):
    from ..data import DataError, read_dataset

    try:
        return read_dataset(path, **kw)
    except DataError as exc:
        raise CommandError(str(exc)) from None


def _prepare_features(net, ds):
    meta = net.metadata
    if ds.X.shape[1] != net.sizes[0]:
        raise CommandError(f"data file {ds.source!r} has {ds.X.shape[1]} feature columns; "
                           f"the model expects {net.sizes[0]}")
    X = ds.X
    if meta.get("scaler") is not None:
        X = meta["scaler"].transform(X)
    return X


def _outputs_to_predictions(net, A):
    """(predictions, probabilities or None) from network outputs, in the user's units and labels."""
    meta = net.metadata
    if meta.get("task") == "classify":
        classes = np.asarray(meta["classes"])
        return classes[np.argmax(A, axis=1)], A
    Y = A
    if meta.get("target_scaler") is not None:
        Y = meta["target_scaler"].inverse(A)
    return Y[:, 0], None


# --- subcommands ---------------------------------------------------------------------------------

def cmd_train(args):
    import ffnn

    from ..data import DataError, Scaler, encode_labels, infer_task, load_default, train_test_split
    from .parallel import world

    comm = world()  # under mpiexec: every rank reads the data and trains its share; rank 0 prints and writes
    rank = 0 if comm is None else comm.rank
    if rank != 0:
        sys.stdout = open(os.devnull, "w")
    for path, flag in ((args.out, "--out"), (args.plot, "--plot"), (args.metrics, "--metrics"),
                       (args.checkpoint, "--checkpoint")):
        if path:
            _check_output(path, flag)
    if args.early_stopping < 0:
        raise UsageError(f"ffnn train: --early-stopping must be 0 (off) or a positive integer, got {args.early_stopping}")
    if args.nesterov and (args.optimizer != "sgd" or args.momentum == 0):
        raise UsageError("ffnn train: --nesterov needs --optimizer sgd and a --momentum above 0")
    if args.resume and not os.path.exists(args.resume):
        raise CommandError(f"--resume: checkpoint file {args.resume!r} does not exist")

    ds = load_default() if args.data is None else _read(args.data, target=args.target)
    print(f"data: {ds.source}: {len(ds)} samples, {ds.X.shape[1]} features, target {ds.target_name!r}")
    task, why = (args.task, "as given by --task") if args.task else infer_task(ds.y)
    print(f"task: {task} ({why})")

    rng = np.random.default_rng(args.seed)
    classes = codes = None
    if task == "classify":
        classes, codes = encode_labels(ds.y)
        if len(classes) < 2:
            raise CommandError(f"the target {ds.target_name!r} has a single class ({classes[0]!r}); nothing to classify")
        counts = np.bincount(codes)
        stratify = codes if counts.min() >= 2 else None
    else:
        if ds.y.dtype.kind not in "biuf":
            raise CommandError(f"--task regress needs a numeric target; {ds.target_name!r} holds text labels")
        stratify = None
    try:
        tr, te = train_test_split(len(ds), args.test_size, rng, stratify)
    except (DataError, ValueError) as exc:
        raise CommandError(str(exc)) from None

    scaler = Scaler(args.scale).fit(ds.X[tr])
    X_train, X_test = scaler.transform(ds.X[tr]), scaler.transform(ds.X[te])
    target_scaler = None
    if task == "classify":
        k = len(classes)
        T_all = np.eye(k)[codes]
        output, loss = args.output or "softmax", args.loss or "cross_entropy"
        metric = "accuracy"
    else:
        y = ds.y.astype(np.float64).reshape(-1, 1)
        target_scaler = Scaler("standard" if args.scale != "none" else "none").fit(y[tr])
        T_all = target_scaler.transform(y)
        k, output, loss, metric = 1, args.output or "identity", args.loss or "mse", "r2"
    T_train, T_test = T_all[tr], T_all[te]

    sizes = [ds.X.shape[1], *args.hidden, k]
    try:
        net = ffnn.Network(sizes, args.activation, output, seed=args.seed, dtype=args.dtype)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"ffnn train: {exc}") from None
    lr = args.lr if args.lr is not None else (0.01 if args.optimizer == "sgd" else 0.001)
    opt = (ffnn.SGD(lr, momentum=args.momentum, nesterov=args.nesterov) if args.optimizer == "sgd"
           else ffnn.optim.OPTIMIZERS[args.optimizer](lr))
    print(f"network: {' -> '.join(map(str, sizes))}  ({', '.join(a.name for a in net.activations)}), "
                     f"{net.n_parameters} parameters; loss {loss}; {args.optimizer} lr {lr:g}")

    interrupted = False
    t0 = time.perf_counter()
    try:
        history = ffnn.train(
            net, X_train, T_train, loss=loss, optimizer=opt, epochs=args.epochs, batch_size=args.batch_size,
            l1=args.l1, l2=args.l2, schedule=args.schedule, validation=args.validation,
            early_stopping=args.early_stopping or None, seed=args.seed, progress=not args.quiet,
            checkpoint=args.checkpoint, resume=args.resume, dropout=args.dropout, metric=metric,
            diagnostics=args.diagnostics, comm=comm)
    except ffnn.TrainingInterrupted as exc:
        history, interrupted = exc.history, True
        if rank == 0:
            print(f"ffnn: interrupted after {len(history)} complete epochs; saving what was asked for",
                  file=sys.stderr)
    except ffnn.TrainingDiverged as exc:
        raise CommandError(str(exc)) from None
    except (ValueError, OSError) as exc:
        raise CommandError(str(exc)) from None
    seconds = time.perf_counter() - t0
    if len(history) == 0:
        if rank == 0:
            print("ffnn: nothing was trained; no files written", file=sys.stderr)
        return EXIT_INTERRUPTED
    if rank != 0:  # every rank holds the same weights; rank 0 evaluates and writes
        comm.Barrier()
        return EXIT_INTERRUPTED if interrupted else 0
    try:
        return _finish_train(args, net, history, interrupted, seconds, ds, tr, te, task, loss, scaler,
                             target_scaler, classes, X_test, T_test)
    finally:
        if comm is not None:
            comm.Barrier()


def _finish_train(args, net, history, interrupted, seconds, ds, tr, te, task, loss, scaler, target_scaler,
                  classes, X_test, T_test):
    """Evaluate on the test rows, save the model and the requested files, print the summary."""
    import ffnn

    A_test = net.predict(X_test)
    n_fit = len(tr) - int(round(args.validation * len(tr)))  # the samples each epoch trains on
    train_seconds = sum(history.time)
    summary = {"task": task, "data": ds.source, "target": ds.target_name, "n_train": int(len(tr)),
               "n_test": int(len(te)), "epochs": len(history), "best_epoch": history.best_epoch,
               "seconds": round(seconds, 4),
               "samples_per_second": round(len(history) * n_fit / train_seconds, 1) if train_seconds > 0 else None,
               "interrupted": interrupted}
    if task == "classify":
        summary["test_accuracy"] = ffnn.metrics.accuracy(T_test, A_test)
        summary["test_loss"] = float(net.loss(X_test, T_test, loss))
        headline = f"test accuracy {summary['test_accuracy']:.4f}"
    else:
        pred = target_scaler.inverse(A_test)
        truth = target_scaler.inverse(T_test)
        summary.update(test_r2=ffnn.metrics.r2(truth, pred), test_mse=ffnn.metrics.mse(truth, pred),
                       test_mae=ffnn.metrics.mae(truth, pred))
        headline = f"test R² {summary['test_r2']:.4f}  MSE {summary['test_mse']:.4g}  MAE {summary['test_mae']:.4g}"

    meta = dict(task=task, loss=loss, target=ds.target_name, feature_names=ds.feature_names, scaler=scaler,
                history=history, summary=summary)
    if task == "classify":
        meta["classes"] = classes.tolist()
    else:
        meta["target_scaler"] = target_scaler
    ffnn.save(net, args.out, **meta)
    print(f"{headline}  ({len(history)} epochs in {seconds:.2f}s, {summary['samples_per_second'] or 0:.0f} training samples/s)")
    print(f"model saved to {args.out}")
    if args.plot:
        from ..plot import plot_history

        plot_history(history, args.plot, title=f"ffnn on {os.path.basename(str(ds.source))}")
        print(f"curves saved to {args.plot}")
    if args.metrics:
        from .._files import atomic_write

        atomic_write(args.metrics, (json.dumps(summary, indent=2) + "\n").encode())
        print(f"metrics saved to {args.metrics}")
    return EXIT_INTERRUPTED if interrupted else 0


def cmd_predict(args):
    if args.out:
        _check_output(args.out, "--out")
    net = _load_model(args.model)
    meta = net.metadata
    ds = _read(args.data, target=meta.get("target"), require_target=False,
               expected_features=meta.get("feature_names"))
    X = _prepare_features(net, ds)
    pred, proba = _outputs_to_predictions(net, net.predict(X))
    if args.proba and proba is None:
        raise UsageError("ffnn predict: --proba needs a classification model")
    if args.proba:
        header = [f"p_{c}" for c in meta["classes"]]
        rows = [[repr(float(v)) for v in row] for row in proba]
    else:
        header = ["prediction"]
        rows = [[str(v) if meta.get("task") == "classify" else repr(float(v))] for v in pred]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")  # quotes labels that hold commas or quotes
    writer.writerow(header)
    writer.writerows(rows)
    text = buf.getvalue()
    if args.out:
        from .._files import atomic_write

        atomic_write(args.out, text.encode())
        print(f"{len(rows)} predictions written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_evaluate(args):
    import ffnn

    from ..data import DataError, encode_labels

    net = _load_model(args.model)
    meta = net.metadata
    target = args.target or meta.get("target")
    ds = _read(args.data, target=target, expected_features=meta.get("feature_names"))
    X = _prepare_features(net, ds)
    A = net.predict(X)
    out = {"model": args.model, "data": args.data, "n_samples": len(ds)}
    if meta.get("task") == "classify":
        try:
            _, codes = encode_labels(ds.y if ds.y.dtype.kind in "USO" else _as_class_values(ds.y, meta["classes"]),
                                     meta["classes"])
        except DataError as exc:
            raise CommandError(f"data file {args.data!r}: {exc}") from None
        T = np.eye(len(meta["classes"]))[codes]
        out.update(accuracy=ffnn.metrics.accuracy(T, A), loss=float(net.loss(X, T, meta.get("loss", "cross_entropy"))))
    else:
        pred, _ = _outputs_to_predictions(net, A)
        y = ds.y.astype(np.float64)
        out.update(r2=ffnn.metrics.r2(y, pred), mse=ffnn.metrics.mse(y, pred), mae=ffnn.metrics.mae(y, pred))
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print("  ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in out.items()))
    return 0


def _as_class_values(y, classes):
    """Numeric targets read from a file, matched to the stored labels' type (e.g. 3.0 -> 3)."""
    if classes and isinstance(classes[0], str):
        return np.array([str(int(v)) if float(v).is_integer() else str(v) for v in y])
    if classes and isinstance(classes[0], int):
        return y.astype(np.int64)
    return y


def cmd_info(args):
    net = _load_model(args.model)
    meta = net.metadata
    print(f"model file: {args.model}")
    print(f"architecture: {' -> '.join(map(str, net.sizes))}")
    print(f"activations: {', '.join(a.name for a in net.activations)}")
    print(f"parameters: {net.n_parameters}  (dtype {net.dtype})")
    for key in ("task", "loss", "target"):
        if key in meta:
            print(f"{key}: {meta[key]}")
    if "classes" in meta:
        print(f"classes: {', '.join(map(str, meta['classes']))}")
    if meta.get("scaler") is not None:
        print(f"input scaling: {meta['scaler'].kind}")
    h = meta.get("history")
    if h is not None and len(h):
        line = f"training: {len(h)} epochs, final loss {h.loss[-1]:.6g}"
        if h.val_loss and h.val_loss[-1] is not None:
            line += f", val_loss {h.val_loss[-1]:.6g}, val_{h.metric} {h.val_metric[-1]:.4f}"
        if h.best_epoch:
            line += f", best epoch {h.best_epoch}"
        print(line)
    s = meta.get("summary")
    if s:
        scores = {k: v for k, v in s.items() if k.startswith("test_")}
        print("held-out: " + "  ".join(f"{k[5:]} {v:.4f}" for k, v in scores.items()))
    return 0


def cmd_gradcheck(args):
    import ffnn

    if args.model and args.sizes:
        raise UsageError("ffnn gradcheck: give a MODEL or --sizes, not both")
    if args.model:
        net = _load_model(args.model)
        loss = net.metadata.get("loss", args.loss)
    elif args.sizes:
        if len(args.sizes) < 2:
            raise UsageError("ffnn gradcheck: --sizes needs at least an input and an output width")
        try:
            net = ffnn.Network(args.sizes, args.activation, args.output, seed=args.seed)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"ffnn gradcheck: {exc}") from None
        loss = args.loss
    else:
        raise UsageError("ffnn gradcheck: give a MODEL file or --sizes such as 4,8,3")
    rng = np.random.default_rng(args.seed)
    X = rng.normal(size=(args.samples, net.sizes[0]))
    k = net.sizes[-1]
    if loss == "cross_entropy":
        T = np.eye(k)[rng.integers(0, k, size=args.samples)]
    elif loss == "binary_cross_entropy":
        T = rng.integers(0, 2, size=(args.samples, k)).astype(float)
    else:
        T = rng.normal(size=(args.samples, k))
    print(f"network {' -> '.join(map(str, net.sizes))} ({', '.join(a.name for a in net.activations)}), "
          f"loss {loss}, {args.samples} random samples")
    report = ffnn.gradcheck(net, X, T, loss)
    print(report)
    return 0 if report.passed else EXIT_ERROR


def cmd_export(args):
    fmt = args.format or ("c" if os.path.splitext(args.out)[1].lower() in (".h", ".hpp") else "onnx")
    if fmt == "c" and args.dtype == "float64":
        raise UsageError("ffnn export: the C header is float32; --dtype float64 is for --format onnx")
    if fmt == "c" and args.opset is not None:
        raise UsageError("ffnn export: --opset is for --format onnx")
    if fmt == "onnx" and args.name != "model":
        raise UsageError("ffnn export: --name is for --format c")
    if fmt == "c":
        from ..export.c import _C_KEYWORDS, _IDENT

        if not _IDENT.match(args.name) or args.name in _C_KEYWORDS:
            raise UsageError(f"ffnn export: --name must be a C identifier (letters, digits, underscores), "
                             f"got {args.name!r}")
    if fmt == "onnx":
        from ..export.onnx import DEFAULT_OPSET, _check_opset

        try:
            opset = _check_opset(DEFAULT_OPSET if args.opset is None else args.opset)
        except ImportError as exc:
            raise CommandError(str(exc)) from None
        except ValueError as exc:
            raise UsageError(f"ffnn export: --opset: {exc}") from None
    _check_output(args.out, "OUT")
    if os.path.exists(args.out) and not args.force:
        raise CommandError(f"output file {args.out!r} exists; pass --force to overwrite it")
    net = _load_model(args.model)
    from ..export import ConversionError

    try:
        if fmt == "onnx":
            from ..export.onnx import export_onnx

            m = export_onnx(net, args.out, dtype=args.dtype, opset=opset)
            outputs = ", ".join(o.name for o in m.graph.output)
            print(f"ONNX model written to {args.out} (opset {opset}): input X (N, {net.sizes[0]}); outputs {outputs}")
        else:
            from ..export.c import export_c

            text = export_c(net, args.out, name=args.name)
            functions = [f"{args.name}_{f}" for f in ("predict", "predict_label", "class_name", "feature_name")]
            print(f"C header written to {args.out}: {', '.join(f for f in functions if f + '(' in text)}")
    except ConversionError as exc:
        raise CommandError(f"model file {args.model!r}: {exc}") from None
    except OSError as exc:
        raise CommandError(str(exc)) from None
    return 0


def cmd_bench(args):
    from .bench import main as bench_main

    return bench_main(quick=args.quick, json_path=args.json, n_samples=args.samples)
