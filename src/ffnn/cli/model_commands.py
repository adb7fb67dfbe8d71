"""The commands that use a saved model: ``ffnn predict`` (streamed in chunks), ``ffnn evaluate``
(with the per-class report and the confusion matrix) and ``ffnn info``."""


import csv
import io
import json
import sys

import numpy as np

from .errors import CommandError, UsageError
from .shared import (
    finite_or_none,
    load_model,
    model_loss,
    outputs_checked,
    outputs_to_predictions,
    predict_rows,
    read_data,
    regression_scores,
    score_text,
    write_reporting,
)


def cmd_predict(args):
    from .._files import printable

    outputs_checked([("--out", args.out)], inputs=[("MODEL", args.model), ("DATA", args.data)], force=args.force)
    net = load_model(args.model)
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
                _, A = predict_rows(net, ds)
                count += A.shape[0]
                if args.proba:
                    yield csv_text(first + [[repr(v) for v in row] for row in A.tolist()])
                elif meta.get("task") == "classify":  # each class's CSV cell written once, then picked
                    cells = np.array([csv_text([[str(c)]]) for c in meta["classes"]], dtype=object)
                    yield csv_text(first) + b"".join(cells[np.argmax(A, axis=1)].tolist())
                else:
                    pred, _ = outputs_to_predictions(net, A)
                    yield csv_text(first) + ("\n".join(map(repr, pred.astype(float).tolist())) + "\n").encode()
                first = []
        except DataError as exc:
            raise CommandError(str(exc)) from None

    if args.out:
        from .._files import Outputs

        def write():
            with Outputs() as out:
                out.add_stream(args.out, pieces(), "--out")

        write_reporting(f"--out {args.out!r}", write)
        print(f"{count} predictions written to {printable(args.out)}", file=sys.stderr)
    else:
        for piece in pieces():
            sys.stdout.write(piece.decode())  # on a terminal, control characters are escaped (ffnn.cli.terminal)
    return 0


def cmd_evaluate(args):
    net = load_model(args.model)
    meta = net.metadata
    loss = model_loss(net, args.model, "cross_entropy" if meta.get("task") == "classify" else "mse")
    target = args.target or meta.get("target")
    out = _evaluate_in_chunks(net, meta, loss, args, target)
    if out is None:  # a file the chunked readers do not stream: read whole
        ds = read_data(args.data, target=target, expected_features=meta.get("feature_names"))
        if ds.y is None:
            raise UsageError(f"ffnn evaluate: model file {str(args.model)!r} does not name its target column; "
                             f"give --target COL")
        out = {"model": str(args.model), "data": str(args.data), "n_samples": len(ds)}
        scores = _scores(net, meta, loss, args, ds, ds.y)
        out.update(regression_scores(ds.y.astype(np.float64), scores["pred"]) if "pred" in scores else scores)
    confusion = out.pop("confusion", None)
    if confusion is not None:
        from ..metrics import classification_report

        out["report"] = classification_report(confusion, meta["classes"])
        out["confusion_matrix"] = confusion.tolist()
    if args.json:
        print(json.dumps({k: finite_or_none(v) for k, v in out.items()}, indent=2, allow_nan=False))
    else:
        print("  ".join(f"{k} {score_text(v)}" for k, v in out.items() if k not in ("report", "confusion_matrix")))
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

    X, A = predict_rows(net, ds)
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
    pred, _ = outputs_to_predictions(net, A)
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
        out.update(regression_scores(y.astype(np.float64), np.concatenate(preds)))
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

    net = load_model(args.model)
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
        print(history_line(h))
    s = meta.get("summary")
    if isinstance(s, dict):
        scores = {k: v for k, v in s.items() if k.startswith("test_") and isinstance(v, (int, float))}
        if scores:
            print("held-out: " + "  ".join(f"{p(k[5:])} {v:.4f}" for k, v in scores.items()))
    return 0


def history_line(h):
    from .._files import printable

    fmt = lambda v, f: "n/a" if v is None else format(v, f)
    line = f"training: {len(h)} epochs, final loss {fmt(h.loss[-1], '.6g')}"
    if h.val_loss and h.val_loss[-1] is not None:
        line += (f", val_loss {fmt(h.val_loss[-1], '.6g')}, val_{printable(h.metric)} "
                 f"{fmt(h.val_metric[-1], '.4f')}")
    if h.best_epoch:
        line += f", best epoch {h.best_epoch}"
    return line
