"""``ffnn export``: a saved model as ONNX or a C header, float or int8."""


import os

import numpy as np

from .errors import CommandError, UsageError
from .shared import (
    load_model,
    outputs_checked,
    outputs_to_predictions,
    predict_rows,
    read_data,
)


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
    outputs_checked([("OUT", args.out)], inputs=[("MODEL", args.model), ("--calibration", args.calibration)],
                   force=args.force)
    net = load_model(args.model)
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
    ds = read_data(data, target=meta.get("target"), require_target=False, expected_features=meta.get("feature_names"))
    _, A = predict_rows(net, ds)  # the width checked, the float model's outputs
    q = quantize_int8(net, ds.X, per_channel=args.per_channel)  # the reader gave finite rows of the right width
    if fmt == "c":
        text = export_c_int8(q, path=args.out, name=args.name)
        functions = [f"{args.name}_{f}" for f in ("predict", "predict_label", "class_name", "feature_name")]
        said.append(f"int8 C header written to {args.out} ({len(text) / 1024:.1f} KiB, integer arithmetic only): "
              f"{', '.join(f for f in functions if f + '(' in text)}")
    else:
        export_onnx_qdq(q, path=args.out, opset=opset)
        said.append(f"int8 QDQ ONNX model written to {args.out} (opset {opset}): input X (N, {net.sizes[0]}) float32")
    pred, _ = outputs_to_predictions(net, A)
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
