"""ONNX export: ``export_onnx(net_or_estimator, path)`` and a skl2onnx converter for ffnn's estimators.

The graph, built with the ``onnx`` package's helper API, is the forward pass written out
(z[l] = a[l−1] @ W[l] + b[l] is one ``Gemm``; a[l] = σ_l(z[l]) follows it):

    X (N, S_0)
    ─ Sub(shift), Div(scale)                        only for a model file with input scaling
    ─ Gemm(W[1], b[1]) ─ σ_1 ─ … ─ Gemm(W[L], b[L]) ─ σ_L
    ─ classifiers: "probabilities" (N, K) float and "label" (N,) int64, the index of the largest
      probability (ties: the first); multilabel estimators: "label" (N, K) int64, p > 0.5
    ─ regressors: "prediction" (N, S_L), scaled back to the target's units for a model file

σ_l is the nodes its activation writes (``Activation.onnx_nodes``, defined with the activation in
:mod:`ffnn.activations`). The built-ins use ``Tanh``, ``Relu`` and ``Softmax`` and otherwise plain
arithmetic (``Where``, ``Exp``, ``Log``, …) in the graph's dtype, so parameters such as the leaky_relu
slope keep float64 precision and every operator runs in float32 and float64 in onnxruntime:

    sigmoid     e = exp(−|z|); Where(z ≥ 0, 1/(1 + e), e/(1 + e))   (ffnn's form: accurate in both tails)
    leaky_relu  Where(z > 0, z, slope·z)
    elu         Where(z > 0, z, α(exp(min(z, 0)) − 1))
    softplus    max(z, 0) + log(1 + exp(−|z|))
    gelu        ½ z (1 + tanh(√(2/π)(z + 0.044715 z³)))     (ffnn's tanh form, Hendrycks and Gimpel)

No ONNX-ML operator is used. Class and feature names go into the model's ``metadata_props`` as JSON.
"""

from __future__ import annotations

import json

import numpy as np

from ._model import ConversionError, check_representable, describe

__all__ = ["export_onnx", "register_skl2onnx", "check_opset", "build_model", "DEFAULT_OPSET", "MIN_OPSET"]

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax over one axis, Gemm, Where, Clip with tensor bounds


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'ffnn[export]'") from None
    return onnx


# --- emitting nodes ------------------------------------------------------------------------------

class _Emitter:
    """Adds constants and nodes to a graph under unique names; the graph's float type is ``np_dtype``."""

    def __init__(self, np_dtype):
        self.np_dtype = np.dtype(np_dtype)

    def const(self, hint, value, dtype=None):
        """A constant (an initializer): ``value`` cast to the graph's float type unless ``dtype`` is given."""
        arr = np.asarray(value, dtype=self.np_dtype if dtype is None else dtype)
        return self._initializer(self.unique(hint), arr)

    def node(self, op, inputs, hint=None, **attrs):
        out = self.unique(hint or op.lower())
        self._node(op, list(inputs), [out], attrs)
        return out

    def layer_nodes(self, l):
        """What an activation's ``onnx_nodes`` adds layer ``l``'s nodes through (see :class:`_LayerNodes`)."""
        return _LayerNodes(self, l)


class _GraphEmitter(_Emitter):
    """Collects nodes and initializers for ``onnx.helper.make_graph``."""

    def __init__(self, np_dtype):
        super().__init__(np_dtype)
        self.nodes, self.initializers, self._used, self._ops = [], [], set(), {}

    def unique(self, hint):
        name, k = hint, 1
        while name in self._used:
            k += 1
            name = f"{hint}_{k}"
        self._used.add(name)
        return name

    def _initializer(self, name, arr):
        self.initializers.append(_onnx().numpy_helper.from_array(arr, name))
        return name

    def _node(self, op, inputs, outputs, attrs):
        k = self._ops[op] = self._ops.get(op, 0) + 1
        self.nodes.append(_onnx().helper.make_node(op, inputs, outputs, name=f"{op}_{k}", **attrs))

    def rename(self, old, new):
        """Give the value ``old`` the (reserved) graph-output name ``new`` everywhere it appears."""
        for n in self.nodes:
            for seq in (n.input, n.output):
                for i, v in enumerate(seq):
                    if v == old:
                        seq[i] = new


class _Skl2onnxEmitter(_Emitter):
    """Adds to skl2onnx's container, with names from its scope."""

    def __init__(self, np_dtype, scope, container):
        super().__init__(np_dtype)
        self.scope, self.container = scope, container

    def unique(self, hint):
        return self.scope.get_unique_variable_name(hint)

    def _initializer(self, name, arr):
        from onnx import helper

        self.container.add_initializer(name, helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape),
                                       arr.ravel().tolist())
        return name

    def _node(self, op, inputs, outputs, attrs):
        self.container.add_node(op, inputs, outputs, name=self.scope.get_unique_operator_name(op), **attrs)


# --- the forward pass as nodes -------------------------------------------------------------------

class _LayerNodes:
    """What an activation's ``onnx_nodes(g, z)`` adds nodes through: the emitter's ``node`` and ``const``,
    their names suffixed with the layer's number, and the graph's float type as ``dtype``."""

    def __init__(self, e, l):
        self._e, self._l = e, l
        self.dtype = e.np_dtype

    def node(self, op, inputs, hint=None, **attrs):
        return self._e.node(op, inputs, f"{hint or op.lower()}{self._l}", **attrs)

    def const(self, hint, value):
        return self._e.const(f"{hint}{self._l}", value)


def _emit(e, d, x):
    """Nodes from input ``x`` to the outputs of Description ``d``: a dict with "prediction", or
    "probabilities" and "label" (the label index, or the 0/1 indicator for multilabel)."""
    h = x
    if d.input_shift is not None:
        h = e.node("Sub", [h, e.const("input_shift", d.input_shift)], "centred")
        h = e.node("Div", [h, e.const("input_scale", d.input_scale)], "scaled")
    forms = [act.export_form("onnx", f" (layer {l})") for l, act in enumerate(d.activations, start=1)]
    for l, (W, b, onnx_nodes) in enumerate(zip(d.weights, d.biases, forms), start=1):
        h = e.node("Gemm", [h, e.const(f"W{l}", W), e.const(f"b{l}", b)], f"z{l}")
        h = onnx_nodes(e.layer_nodes(l), h)  # a[l] = σ_l(z[l]), as the activation writes it
    if d.output == "values":
        if d.target_shift is not None:  # prediction = a[L]·scale + shift (Scaler.inverse)
            h = e.node("Mul", [h, e.const("target_scale", d.target_scale)])
            h = e.node("Add", [h, e.const("target_shift", d.target_shift)])
        return {"prediction": h}
    if d.output == "multilabel":  # as the estimator: p clipped to [eps, 1 − eps]; label p > 0.5
        eps = float(np.finfo(e.np_dtype).eps)
        p = e.node("Clip", [h, e.const("eps", eps), e.const("one_minus_eps", 1.0 - eps)])
        label = e.node("Cast", [e.node("Greater", [h, e.const("half", 0.5)])], to=_onnx().TensorProto.INT64)
        return {"probabilities": p, "label": label}
    if d.output == "binary":  # one logistic unit p: probabilities [1 − p, p]
        h = e.node("Concat", [e.node("Sub", [e.const("one", 1.0), h], "p0"), h], axis=1)
    return {"probabilities": h, "label": e.node("ArgMax", [h], "label_index", axis=1, keepdims=0)}


def _metadata(d):
    from .._version import __version__

    props = {"ffnn_version": __version__, "source": d.kind, "task": d.task,
             "sizes": json.dumps(d.sizes), "activations": json.dumps(d.activation_names)}
    if d.classes is not None:
        props["classes"] = json.dumps(d.classes)
    if d.feature_names is not None:
        props["feature_names"] = json.dumps(d.feature_names)
    if d.input_shift is not None:
        props["input_scaling"] = "x' = (x - input_shift) / input_scale (initializers)"
    for k, v in d.extra.items():
        props[k] = v
    return props


def check_opset(opset):
    """``opset`` as an int, or ValueError unless it is one this module exports to (MIN_OPSET to the newest
    the installed onnx knows)."""
    onnx = _onnx()
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an integer from {MIN_OPSET} to {newest} (this onnx package's newest), "
                         f"got {opset!r}")
    return int(opset)


def _graph_dtype(d, dtype):
    try:
        name = d.dtype if dtype is None else np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return np.dtype(name)


def export_onnx(model, path=None, *, dtype=None, opset=DEFAULT_OPSET, classes=None):
    """An ONNX model of ``model``'s predictions, optionally written to ``path``.

    Parameters
    ----------
    model : ffnn.Network or fitted ffnn.sklearn.MLPClassifier / MLPRegressor
        A Network loaded from a model file brings its input scaling, classes and feature names.
    path : str or os.PathLike, optional
        Where to write the ``.onnx`` file (atomically; an existing file is replaced).
    dtype : "float32" or "float64", optional
        The graph's float type, for the input, the parameters and the outputs; default the network's.
    opset : int
        The ``ai.onnx`` opset, 17 by default; 13 up to the newest the installed onnx knows. The model's
        IR version is the oldest that carries this opset (8 for opsets 13–18), so older runtimes load it.
    classes : sequence, optional
        For a bare Network: the class labels of its output units (or two labels for one sigmoid unit),
        making it a classifier.

    Returns
    -------
    onnx.ModelProto
        Input ``"X"`` (N, S_0); outputs ``"prediction"`` (N, S_L) for regressors, or
        ``"probabilities"`` (N, K) and ``"label"`` (N,) int64, the index into the classes (multilabel:
        (N, K) 0/1). N is dynamic. ``metadata_props`` holds ``classes`` and ``feature_names`` as JSON.

    Raises
    ------
    ConversionError
        For an activation with no ONNX form (``onnx_nodes``) (naming it and its layer), an unfitted estimator or an unsupported object.
    ValueError
        For a bad ``dtype`` or ``opset``.
    """
    d = describe(model, classes=classes, what="export_onnx")
    opset = check_opset(opset)
    np_dtype = _graph_dtype(d, dtype)
    check_representable(d, np_dtype, "; export with dtype float64")
    return build_model(d, lambda e, x: _emit(e, d, x), np_dtype=np_dtype, opset=opset, path=path,
                       summary=np_dtype.name)


def build_model(d, emit, *, np_dtype, opset, path=None, summary="", props=None):
    """The checked ONNX model of Description ``d`` whose nodes ``emit(e, "X")`` adds through a graph
    emitter ``e`` (``e.node``, ``e.const``, ``e.layer_nodes``), returning the names of its outputs as
    ``_emit`` does; written to ``path`` (atomically) when given. ``summary`` ends the model's doc string,
    ``props`` adds to its ``metadata_props``."""
    onnx = _onnx()
    from onnx import TensorProto, helper

    elem = helper.np_dtype_to_tensor_dtype(np.dtype(np_dtype))
    e = _GraphEmitter(np_dtype)
    e._used.update(("X", "prediction", "probabilities", "label"))
    outputs = emit(e, "X")
    if d.task == "classify":
        k = d.n_outputs
        label_shape = ["N", k] if d.output == "multilabel" else ["N"]
        specs = [("probabilities", elem, ["N", k]), ("label", TensorProto.INT64, label_shape)]
    else:
        specs = [("prediction", elem, ["N", d.sizes[-1]])]
    for name, _, _ in specs:
        e.rename(outputs[name], name)
    graph = helper.make_graph(
        e.nodes, "ffnn", [helper.make_tensor_value_info("X", elem, ["N", d.sizes[0]])],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in specs], initializer=e.initializers)
    opsets = [helper.make_opsetid("", opset)]
    from .._version import __version__

    m = helper.make_model(graph, opset_imports=opsets, producer_name="ffnn", producer_version=__version__,
                          doc_string=f"ffnn {d.kind}: {' -> '.join(map(str, d.sizes))} "
                                     f"({', '.join(d.activation_names)}), {summary}")
    # The onnx package stamps its own (newest) IR version, which older runtimes refuse.
    m.ir_version = helper.find_min_ir_version_for(opsets)
    helper.set_model_props(m, {**_metadata(d), **(props or {})})
    onnx.checker.check_model(m, full_check=True)
    if path is not None:
        from .._files import atomic_write

        atomic_write(path, m.SerializeToString())
    return m


# --- skl2onnx ------------------------------------------------------------------------------------

def _skl2onnx_classifier_shapes(operator):
    from skl2onnx.common.data_types import Int64TensorType
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    calculate_linear_classifier_output_shapes(operator)
    est = operator.raw_operator
    if getattr(est, "_multilabel", False):
        n = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = Int64TensorType([n, len(est.classes_)])


def _skl2onnx_regressor_shapes(operator):
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes

    calculate_linear_regressor_output_shapes(operator)
    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type.shape = [n, operator.raw_operator.n_outputs_]


def _skl2onnx_convert(scope, operator, container):
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
    from skl2onnx.common.utils_classifier import get_label_classes

    est = operator.raw_operator
    d = describe(est, what="skl2onnx")
    np_dtype = np.float64 if isinstance(operator.inputs[0].type, DoubleTensorType) else np.float32
    e = _Skl2onnxEmitter(np_dtype, scope, container)
    x = operator.inputs[0].full_name
    if not isinstance(operator.inputs[0].type, (DoubleTensorType, FloatTensorType)):
        x = e.node("Cast", [x], "x_cast", to=TensorProto.FLOAT)
    out = _emit(e, d, x)
    if d.task == "regress":
        e._node("Identity", [out["prediction"]], [operator.outputs[0].full_name], {})
        return
    label_name, proba_name = operator.outputs[0].full_name, operator.outputs[1].full_name
    e._node("Identity", [out["probabilities"]], [proba_name], {})
    if d.output == "multilabel":
        e._node("Identity", [out["label"]], [label_name], {})
        return
    labels = np.asarray(get_label_classes(scope, est))  # the class labels, or 0..K−1 with option nocl
    if labels.dtype.kind in "biuf":
        if labels.dtype.kind == "f" and not np.all(labels == np.round(labels)):
            raise ConversionError(f"class labels {labels.tolist()} are not integers; skl2onnx's label output "
                                  f"is int64 or string")
        labels = labels.astype(np.int64)
        table = e.const("classes", labels, dtype=np.int64)
    else:
        labels = np.array([str(c).encode("utf-8") for c in labels], dtype=object)
        table = e.unique("classes")
        container.add_initializer(table, TensorProto.STRING, [len(labels)], labels.tolist())
    e._node("Gather", [table, out["label"]], [label_name], {"axis": 0})


_REGISTERED = False


def register_skl2onnx():
    """Register ffnn's MLPClassifier and MLPRegressor with skl2onnx, so that ``skl2onnx.to_onnx`` converts
    them, alone or inside a Pipeline (idempotent).

    The classifier's outputs are skl2onnx's: ``label`` (the class labels, by ``Gather`` from a constant)
    and ``probabilities``; pass ``options={"zipmap": False}`` to ``to_onnx`` for a plain probability
    tensor (skl2onnx's default ZipMap is an ONNX-ML operator). The network's nodes are those of
    :func:`export_onnx`, in the dtype of the input type given to skl2onnx.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    try:
        from skl2onnx import update_registered_converter
    except ImportError:
        raise ImportError("the skl2onnx converter needs skl2onnx: pip install 'ffnn[export]'") from None
    from ..sklearn import MLPClassifier, MLPRegressor

    update_registered_converter(MLPClassifier, "FfnnMLPClassifier", _skl2onnx_classifier_shapes, _skl2onnx_convert,
                                options={"zipmap": [True, False, "columns"], "nocl": [True, False]})
    update_registered_converter(MLPRegressor, "FfnnMLPRegressor", _skl2onnx_regressor_shapes, _skl2onnx_convert)
    _REGISTERED = True
