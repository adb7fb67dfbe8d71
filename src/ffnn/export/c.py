"""C export: ``export_c(net_or_estimator, path)`` writes one C99 header that predicts with no dependency
beyond the C standard library's ``<math.h>`` (link with ``-lm``), no dynamic memory and float32.

For a network of L layers and a prefix ``model`` the header holds::

    #define MODEL_N_INPUTS  S_0
    #define MODEL_N_OUTPUTS K                      (S_L; 2 for a single-logistic-unit classifier)
    static const float model_W1[S_1][S_0] = …;   W[1] transposed: row j holds the weights into unit j
    static const float model_b1[S_1] = …;
    …
    static inline void model_predict(const float x[S_0], float y[K]);
    static inline int model_predict_label(const float x[S_0]);    classifiers: argmax_k y_k
    static inline const char *model_class_name(int k);             classifiers with class labels
    static inline const char *model_feature_name(int j);           when feature names are known

``model_predict`` computes, in float32, exactly what :mod:`ffnn.export.onnx` describes: the input
scaling of a model file, z[l] = W[l]ᵀ a[l−1] + b[l] and a[l] = σ_l(z[l]) layer by layer, and the
classifier's or regressor's outputs; σ_l is the C its activation writes (``Activation.c_expr``, or
``c_code`` for softmax, defined with the activation in :mod:`ffnn.activations`). Two stack buffers
as wide as the widest layer hold the activations.
"""

from __future__ import annotations

import re

import numpy as np

from ..activations import c_float
from ._model import check_representable, describe

__all__ = ["export_c", "check_name", "name_lookups"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_C_KEYWORDS = set("""auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Bool _Complex _Imaginary""".split())


def _floats(values, indent="    ", per_line=8):
    values = [c_float(v) for v in np.asarray(values, dtype=np.float32).ravel()]
    lines = [", ".join(values[i:i + per_line]) for i in range(0, len(values), per_line)]
    return (",\n" + indent).join(lines)


def _c_string(text) -> str:
    """A C string literal of ``text`` (UTF-8; quotes, backslashes and non-printable bytes escaped)."""
    out = []
    for byte in str(text).encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= byte < 127 and ch != "?":  # '?' escaped too: no trigraphs
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def name_lookups(p, d):
    """C lines of ``<p>_class_name(k)`` (a classifier with class labels, not multilabel) and
    ``<p>_feature_name(j)`` (when feature names are known) for Description ``d``."""
    lines = []
    if d.classes is not None and d.task == "classify" and d.output != "multilabel":
        k = d.n_outputs
        labels = ", ".join(_c_string(c) for c in d.classes)
        lines += [f"static const char *const {p}_classes[{k}] = {{{labels}}};",
                  f"static inline const char *{p}_class_name(int k) {{ return k >= 0 && k < {k} ? "
                  f"{p}_classes[k] : 0; }}", ""]
    if d.feature_names is not None:
        n = d.sizes[0]
        names = ", ".join(_c_string(f) for f in d.feature_names)
        lines += [f"static const char *const {p}_features[{n}] = {{{names}}};",
                  f"static inline const char *{p}_feature_name(int j) {{ return j >= 0 && j < {n} ? "
                  f"{p}_features[j] : 0; }}", ""]
    return lines


def check_name(name) -> str:
    """``name`` if it is a C identifier and not a keyword (the prefix of the header's identifiers), else
    ValueError."""
    if not isinstance(name, str) or not _IDENT.match(name) or name in _C_KEYWORDS:
        raise ValueError(f"name must be a C identifier (letters, digits, underscores; not a keyword), got {name!r}")
    return name


def export_c(model, path=None, *, name="model", classes=None) -> str:
    """A C99 header predicting like ``model``, in float32; optionally written to ``path``.

    Parameters
    ----------
    model : ffnn.Network or fitted ffnn.sklearn.MLPClassifier / MLPRegressor
        A Network loaded from a model file brings its input scaling, classes and feature names.
    path : str or os.PathLike, optional
        Where to write the header (atomically; an existing file is replaced).
    name : str
        The prefix of every identifier (a C identifier): ``<name>_predict``, ``<NAME>_N_INPUTS``, ….
    classes : sequence, optional
        For a bare Network: class labels of its output units, as for :func:`ffnn.export_onnx`.

    Returns
    -------
    str
        The header's text. ``<name>_predict(const float *x, float *y)`` reads S_0 features and writes
        the K outputs: probabilities for a classifier (K = 2 for one logistic unit: [1 − p, p]), or the
        prediction in the target's units for a regressor. Classifiers (not multilabel) also get
        ``int <name>_predict_label(const float *x)``, the index of the largest probability (the first
        on ties), and ``<name>_class_name(k)`` when class labels are known.

    Raises
    ------
    ConversionError
        For an activation with no C form (``c_expr``) (naming it and its layer), an unfitted estimator or an unsupported object.
    ValueError
        For a ``name`` that is not a C identifier.
    """
    check_name(name)
    d = describe(model, classes=classes, what="export_c")
    forms = [act.export_form("c", f" (layer {l})") for l, act in enumerate(d.activations, start=1)]
    check_representable(d, np.float32, "; the C header is float32")
    p, P = name, name.upper()
    sizes = d.sizes
    k = d.n_outputs
    width = max(sizes)
    guard = f"{P}_H_INCLUDED"
    lines = [
        f"/* {p}: a feed-forward network exported by ffnn ({d.kind}), float32, C99.",
        f" * {' -> '.join(map(str, sizes))}; activations: {', '.join(d.activation_names)}.",
        f" * {p}_predict(x, y) reads {sizes[0]} features and writes {k} "
        + ("class probabilities." if d.task == "classify" else "predictions.")
        + " No dynamic memory; link with -lm. */",
        f"#ifndef {guard}", f"#define {guard}", "", "#include <math.h>", "",
        f"#define {P}_N_INPUTS {sizes[0]}", f"#define {P}_N_OUTPUTS {k}", "",
    ]
    if d.input_shift is not None:
        lines += ["/* x' = (x - shift) / scale, the input scaling stored with the model */",
                  f"static const float {p}_input_shift[{sizes[0]}] = {{\n    {_floats(d.input_shift)}\n}};",
                  f"static const float {p}_input_scale[{sizes[0]}] = {{\n    {_floats(d.input_scale)}\n}};", ""]
    for l, (W, b) in enumerate(zip(d.weights, d.biases), start=1):
        rows = ",\n".join("    {" + _floats(row, indent="     ") + "}" for row in np.asarray(W).T)
        lines += [f"/* layer {l}: {d.activation_names[l - 1]}; W[{l}] transposed: row j holds the weights "
                  f"into unit j */",
                  f"static const float {p}_W{l}[{sizes[l]}][{sizes[l - 1]}] = {{\n{rows}\n}};",
                  f"static const float {p}_b{l}[{sizes[l]}] = {{\n    {_floats(b)}\n}};", ""]
    if d.target_shift is not None:
        lines += ["/* prediction = a[L] * scale + shift, the target scaling stored with the model */",
                  f"static const float {p}_target_shift[{sizes[-1]}] = {{\n    {_floats(d.target_shift)}\n}};",
                  f"static const float {p}_target_scale[{sizes[-1]}] = {{\n    {_floats(d.target_scale)}\n}};", ""]

    body = ["int i, j;", f"float u[{width}], v[{width}];", "float *in = u, *out = v, *t;"]
    if d.input_shift is not None:
        body.append(f"for (i = 0; i < {sizes[0]}; ++i) u[i] = (x[i] - {p}_input_shift[i]) / {p}_input_scale[i];")
    else:
        body.append(f"for (i = 0; i < {sizes[0]}; ++i) u[i] = x[i];")
    for l, c_code in enumerate(forms, start=1):
        body += [f"/* layer {l} */",
                 f"for (j = 0; j < {sizes[l]}; ++j) {{",
                 f"    float s = {p}_b{l}[j];",
                 f"    for (i = 0; i < {sizes[l - 1]}; ++i) s += {p}_W{l}[j][i] * in[i];",
                 "    out[j] = s;", "}"]
        body += c_code("out", sizes[l])  # a[l] = σ_l(z[l]), as the activation writes it
        body.append("t = in; in = out; out = t;")
    body.append("(void)out;")
    n_last = sizes[-1]
    if d.output == "binary":
        body += ["y[0] = 1.0f - in[0];", "y[1] = in[0];"]
    elif d.output == "multilabel":
        eps = float(np.finfo(np.float32).eps)
        body += [f"for (i = 0; i < {n_last}; ++i) y[i] = in[i] < {c_float(eps)} ? {c_float(eps)} : "
                 f"(in[i] > {c_float(1 - eps)} ? {c_float(1 - eps)} : in[i]);"]
    elif d.target_shift is not None:
        body += [f"for (i = 0; i < {n_last}; ++i) y[i] = in[i] * {p}_target_scale[i] + {p}_target_shift[i];"]
    else:
        body += [f"for (i = 0; i < {n_last}; ++i) y[i] = in[i];"]
    lines += ["/* y = the network's outputs for one sample x */",
              f"static inline void {p}_predict(const float *x, float *y)", "{"]
    lines += ["    " + s for s in body] + ["}", ""]
    if d.task == "classify" and d.output != "multilabel":
        lines += ["/* the index of the largest probability (the first on ties) */",
                  f"static inline int {p}_predict_label(const float *x)", "{",
                  f"    float y[{k}];", "    int i, best = 0;", f"    {p}_predict(x, y);",
                  f"    for (i = 1; i < {k}; ++i) if (y[i] > y[best]) best = i;", "    return best;", "}", ""]
    lines += name_lookups(p, d)
    lines += [f"#endif /* {guard} */", ""]
    text = "\n".join(lines)
    if path is not None:
        from .._files import atomic_write

        atomic_write(path, text.encode("ascii"))
    return text
