"""int8 export for processors without a floating-point unit: integer-only inference in a C99 header
(only ``<stdint.h>``), and the same quantized model as an ONNX QDQ graph.

The scheme is Jacob et al.'s (*Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference*, 2018), the one TFLite and gemmlowp use. A real value r is held as
an int8 q on a grid of step S (the scale) and zero point Z (eq. 1):

    r = S (q − Z)

- Weights: symmetric (Z = 0), q ∈ [−127, 127], S_w = max|W| / 127 per layer (per tensor) or
  max_i |W_ij| / 127 per output unit j (per channel).
- Activations: one grid per layer, S = (hi − lo) / 255 and Z = round(−128 − lo / S), where [lo, hi]
  is the range the float network reaches on the calibration rows, widened to hold 0 (so that 0 is
  exact). Sigmoid outputs use the fixed grid S = 1/256, Z = −128 ([0, 1)), tanh S = 1/128, Z = 0.
- Inputs: one grid per feature, over the *scaled* feature x' = (x − shift) / scale of a model file
  (shift 0 and scale 1 without input scaling). The caller quantizes each raw feature,
  q_i = clamp(round((x_i − shift_i) / step_i) + Z_i, −128, 127) with step_i = scale_i · S_i, and the
  per-feature S_i is folded into layer 1's weights (W'_ij = S_i W_ij): the input scaling is done by
  the caller's quantization, the network itself never sees a float.
- Biases: int32 on the accumulator's grid, S_in · S_w_j with Z = 0 (section 2.4); the input's zero
  point is folded in, b'_j = round(b_j / (S_in S_w_j)) − Σ_i Z_in,i q_w,ij, so a layer is

      acc_j = b'_j + Σ_i q_in,i q_w,ij                        (int32: int8 × int8 products)

- Requantization (eqs. 5–6): acc_j · M_j onto the layer's grid, M_j = S_in S_w_j / S_out written as
  m_j · 2^(−s_j) with m_j ∈ [2^30, 2^31) a Q31 integer, so that

      q_out,j = clamp(Z_out + ⌊(acc_j m_j + 2^(s_j−1)) / 2^(s_j)⌋, lo, 127)      (int64 product)

  rounds half up; relu is the clamp at lo = Z_out (Jacob et al.'s fused activation), the identity
  clamps at −128.
- Other elementwise activations (sigmoid, tanh, leaky_relu, elu, softplus, gelu, a user's own) go
  through a table: the accumulator is requantized onto the net input's grid (S_z, Z_z) and
  a = T[q_z + 128], T[q] = the output grid's q of σ(S_z (q − Z_z)), 256 int8 entries. For sigmoid and
  tanh the net input's grid stops at ±ln 511 and ±½ ln 511, where σ reaches the end of its output grid.
- Softmax (the output layer): e_k = E[max_j q_z,j − q_z,k] with E[d] = round(2^15 exp(−S_z d)) (256
  uint16 entries, E[0] = 2^15 so the sum is never 0), and p_k on the grid 1/256, Z = −128:
  q_k = min(127, ⌊(256 e_k + ⌊Σe/2⌋) / Σe⌋ − 128). The label is the argmax of q_z (the first on ties).

:class:`Int8Model` holds the integers and computes exactly what the header computes (``predict_q``),
in NumPy int64; :func:`export_c_int8` writes the header and :func:`export_onnx_qdq` the ONNX graph
with QuantizeLinear/DequantizeLinear pairs around the same int8 weights and activation grids (its
float arithmetic rounds at ties differently: agreement, not bit-equality, with the header).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import activations as _act
from ._model import ConversionError, describe

__all__ = ["Int8Model", "quantize_int8", "export_c_int8", "export_onnx_qdq"]

QMIN, QMAX = -128, 127
EXP_ONE = 1 << 15  # E[0] of the softmax table: exp(0) in Q15
_FIXED_GRIDS = {"sigmoid": (1.0 / 256.0, -128), "tanh": (1.0 / 128.0, 0)}  # σ's range, fixed as TFLite does
# |z| beyond which σ rounds to the end of its fixed grid (σ(z) > 1 − 1/512, tanh(z) > 1 − 1/256): the net
# input's grid needs no more, and its steps are finer for it
_SATURATION = {"sigmoid": math.log(511.0), "tanh": 0.5 * math.log(511.0)}
_ACC_LIMIT = 2 ** 31 - 1


def _round_half_up(x):
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def grid(lo, hi):
    """(S, Z) of the int8 grid over [lo, hi] widened to hold 0: S = (hi − lo)/255, Z = round(−128 − lo/S).

    A range of one value (a constant feature, a dead unit) gets S = 1: every q then means that value's
    grid point 0 exactly."""
    lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
    scale = (np.asarray(hi, np.float64) - lo) / 255.0
    scale = np.where(scale > 0, scale, 1.0)
    zero = np.clip(_round_half_up(-128.0 - lo / scale), QMIN, QMAX).astype(np.int64)
    return scale, zero


def fixed_point(M, where):
    """(m, s) with M ≈ m · 2^(−s): m ∈ [2^30, 2^31) a Q31 integer, s ∈ [1, 62] (Jacob et al., eq. 6).

    A multiplier below 2^−31 keeps s = 62 and a smaller m (0 for M < 2^−63: the output is its zero point)."""
    M = np.atleast_1d(np.asarray(M, dtype=np.float64))
    f, e = np.frexp(M)  # M = f · 2^e, f ∈ [0.5, 1)
    m = _round_half_up(f * 2.0 ** 31).astype(np.int64)
    s = (31 - e).astype(np.int64)
    carry = m == 2 ** 31
    m[carry] //= 2
    s[carry] -= 1
    if np.any(s < 1):
        raise ConversionError(f"{where}: the requantization multiplier {float(M.max()):g} is 2^30 or more "
                              f"(weights far larger than the layer's outputs); it cannot be quantized")
    tiny = s > 62
    m[tiny] = _round_half_up(M[tiny] * 2.0 ** 62).astype(np.int64)
    s[tiny] = 62
    return m, s


def requantize(acc, m, s, zero, lo):
    """clamp(zero + ⌊(acc · m + 2^(s−1)) / 2^s⌋, lo, 127), in int64 (NumPy's >> floors)."""
    acc = np.asarray(acc, dtype=np.int64)
    q = ((acc * m + (np.int64(1) << (s - 1))) >> s) + zero
    return np.clip(q, lo, QMAX)


@dataclass
class Int8Layer:
    """One layer's integers: ``weights`` (S_in, S_out) int8, ``bias`` int32 with the input's zero point folded
    in (``bias_unfolded``: round(b / (S_in S_w)) alone), ``multiplier`` and ``shift`` (one per unit, or one for the layer), the grid the accumulator goes to
    (``grid_scale``, ``grid_zero``) and the output's (``out_scale``, ``out_zero``), the clamp's ``lo``, and
    ``table`` (int8, 256) for a table activation or ``exp_table`` (uint16, 256) for softmax.
    ``weight_scale`` and ``input_scale`` are the real steps, for the ONNX graph."""

    kind: str  # "fused" (identity, relu), "table" or "softmax"
    activation: str
    weights: np.ndarray
    bias: np.ndarray
    bias_unfolded: np.ndarray
    weight_scale: np.ndarray
    input_scale: float
    multiplier: np.ndarray
    shift: np.ndarray
    grid_scale: float
    grid_zero: int
    out_scale: float
    out_zero: int
    lo: int
    table: np.ndarray | None = None
    exp_table: np.ndarray | None = None


@dataclass
class Int8Model:
    """A network quantized to int8 (:func:`quantize_int8`): the integers of the header and how to read them.

    ``input_shift`` and ``input_step`` (float64, S_0) and ``input_zero`` (int, S_0) give each raw feature's
    quantization, q_i = clamp(round((x_i − shift_i) / step_i) + zero_i, −128, 127); ``layers`` the
    :class:`Int8Layer` s; ``description`` the float model's :class:`Description`.
    """

    description: object
    input_shift: np.ndarray
    input_step: np.ndarray
    input_zero: np.ndarray
    layers: list
    per_channel: bool
    n_calibration: int

    @property
    def output_kind(self):
        """The float model's output: ``"probabilities"``, ``"binary"`` (one sigmoid unit, written as
        [1 − p, p]), ``"multilabel"`` or ``"values"`` (see :class:`ffnn.export._model.Description`)."""
        return self.description.output

    @property
    def label_from_net_input(self):
        """Whether the label is the argmax of the output layer's int8 net input q_z rather than of its
        outputs: where σ is increasing and known (softmax, sigmoid, tanh, identity, relu), the finer q_z
        breaks the ties that the output grid makes."""
        return self.layers[-1].activation.split("(")[0] in ("softmax", "sigmoid", "tanh", "identity", "relu")

    # --- the integer arithmetic of the header, in NumPy int64 ----------------------------------------

    def quantize_input(self, X):
        """The int8 features (N, S_0) of raw features ``X``, computed in float32 exactly as the header's
        ``<name>_quantize_input``: t = (x − shift)/step + (Z + 128) + 0.5, q = ⌊t⌋ − 128 clamped."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.input_shift.size:
            raise ValueError(f"X must have shape (N, {self.input_shift.size}), got {X.shape}")
        with np.errstate(all="ignore"):
            t = (X - self.input_shift.astype(np.float32)) / self.input_step.astype(np.float32)
            t = (t + (self.input_zero + 128).astype(np.float32)) + np.float32(0.5)
        q = np.full(t.shape, QMIN, dtype=np.int64)
        inside = t >= 0  # False for NaN, as in C
        q[inside] = np.minimum(np.floor(t[inside]), 255).astype(np.int64) - 128
        return q.astype(np.int8)

    def forward_q(self, Xq):
        """(q_z, y): the output layer's int8 net input on its grid, and the int8 outputs, for int8 inputs."""
        a = np.asarray(Xq).astype(np.int64)
        if a.ndim != 2 or a.shape[1] != self.input_shift.size or np.any((a < QMIN) | (a > QMAX)):
            raise ValueError(f"Xq must be int8 values of shape (N, {self.input_shift.size})")
        for layer in self.layers:
            acc = a @ layer.weights.astype(np.int64) + layer.bias
            z = requantize(acc, layer.multiplier, layer.shift, layer.grid_zero, layer.lo)
            if layer.kind == "fused":
                a = z
            elif layer.kind == "table":
                a = layer.table.astype(np.int64)[z + 128]
            else:  # softmax
                e = layer.exp_table.astype(np.int64)[z.max(axis=1, keepdims=True) - z]
                total = e.sum(axis=1, keepdims=True)
                a = np.minimum((256 * e + total // 2) // total - 128, QMAX)
        y = a
        if self.output_kind == "binary":
            y = np.concatenate([np.minimum(-a, QMAX), a], axis=1)
        return z.astype(np.int8), y.astype(np.int8)

    def predict_q(self, Xq):
        """The header's ``<name>_predict``: int8 outputs (N, K) for int8 inputs (N, S_0)."""
        return self.forward_q(Xq)[1]

    def label_q(self, Xq):
        """The header's ``<name>_predict_label`` (classifiers, not multilabel): the class index."""
        if self.description.task != "classify" or self.output_kind == "multilabel":
            raise ValueError("label_q is for classifiers with one label per sample")
        z, y = self.forward_q(Xq)
        if self.output_kind == "binary":
            return (z[:, 0] > self.layers[-1].grid_zero).astype(np.int64)
        return np.argmax(z if self.label_from_net_input else y, axis=1)

    def dequantize(self, yq):
        """Real outputs of int8 outputs: probabilities, or predictions in the target's units."""
        last = self.layers[-1]
        y = last.out_scale * (np.asarray(yq, dtype=np.float64) - last.out_zero)
        d = self.description
        if d.target_shift is not None:
            y = y * d.target_scale + d.target_shift
        return y

    def predict(self, X):
        """Real outputs for raw features: ``dequantize(predict_q(quantize_input(X)))``."""
        return self.dequantize(self.predict_q(self.quantize_input(X)))


def _rows(X, width, what):
    """``X`` as a finite float64 array (N, width), N ≥ 1, or ValueError naming what is wrong."""
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an array of numbers (rows of {width} features)") from None
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{what} must be a 2-D array with at least one row, got shape {X.shape}")
    if X.shape[1] != width:
        raise ValueError(f"{what} has {X.shape[1]} columns; the network has {width} inputs")
    bad = np.argwhere(~np.isfinite(X))
    if len(bad):
        r, c = bad[0]
        raise ValueError(f"{what} holds {X[r, c]} at row {r}, column {c}; calibration needs finite values")
    return X


def _kind(act, l, last):
    if act == _act.identity or act == _act.relu:
        return "fused"
    if act == _act.softmax and last:
        return "softmax"
    if getattr(act, "elementwise", True) and act.name != "softmax":
        return "table"
    raise ConversionError(f"activation {act.name!r} (layer {l}) is not elementwise; int8 export supports "
                          f"elementwise activations (a table) and softmax on the output layer")


def quantize_int8(model, calibration, *, per_channel=False, classes=None) -> Int8Model:
    """Quantize ``model`` to int8 weights and activations, with activation ranges from ``calibration``.

    Parameters
    ----------
    model : ffnn.Network or fitted ffnn.sklearn.MLPClassifier / MLPRegressor
        A Network loaded from a model file brings its input scaling, classes and feature names.
    calibration : array-like (N, S_0)
        Raw feature rows (before the model's input scaling), such as the training data: the range each
        layer reaches on them sets its int8 grid. Values beyond it saturate at −128 or 127.
    per_channel : bool
        One weight scale per output unit (max_i |W_ij| / 127) instead of one per layer.
    classes : sequence, optional
        For a bare Network: class labels of its output units, as for :func:`ffnn.export_c`.

    Raises
    ------
    ConversionError
        For an activation that is neither elementwise nor an output softmax (naming it and its layer), a
        non-finite weight, or a layer whose int32 accumulator or requantization multiplier would overflow.
    ValueError
        For calibration data that is not a finite (N, S_0) array.
    """
    d = describe(model, classes=classes, what="quantize_int8")
    X = _rows(calibration, d.sizes[0], "the calibration data")
    L = len(d.weights)
    kinds = [_kind(act, l, l == L) for l, act in enumerate(d.activations, start=1)]
    for l, (W, b) in enumerate(zip(d.weights, d.biases), start=1):
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b))):
            raise ConversionError(f"layer {l} has a weight or bias that is not finite")
    shift = np.zeros(d.sizes[0]) if d.input_shift is None else np.asarray(d.input_shift, np.float64)
    scale = np.ones(d.sizes[0]) if d.input_scale is None else np.asarray(d.input_scale, np.float64)
    a = (X - shift) / scale
    in_step, in_zero = grid(a.min(axis=0), a.max(axis=0))
    prev_scale, prev_zero = 1.0, in_zero  # layer 1 sees q − Z; the feature steps are folded into W[1]
    layers = []
    with np.errstate(over="ignore", invalid="ignore"):
        for l, (W, b, act, kind) in enumerate(zip(d.weights, d.biases, d.activations, kinds), start=1):
            W = np.asarray(W, np.float64)
            b = np.asarray(b, np.float64)
            z = a @ W + b
            a = np.asarray(act(z), dtype=np.float64)
            if not (np.all(np.isfinite(z)) and np.all(np.isfinite(a))):
                row = int(np.flatnonzero(~np.all(np.isfinite(np.c_[z, a]), axis=1))[0])
                raise ConversionError(f"layer {l}: the network's values are not finite on calibration row {row}")
            Wf = W * in_step[:, None] if l == 1 else W
            layers.append(_layer(l, kind, act, Wf, b, z, a, prev_scale, prev_zero, per_channel))
            prev_scale, prev_zero = layers[-1].out_scale, layers[-1].out_zero
    return Int8Model(d, shift, scale * in_step, in_zero, layers, bool(per_channel), X.shape[0])


def _layer(l, kind, act, W, b, z, a, in_scale, in_zero, per_channel):
    where = f"layer {l}"
    peak = np.max(np.abs(W), axis=0) if per_channel else np.full(W.shape[1], np.max(np.abs(W)))
    w_scale = np.where(peak > 0, peak / 127.0, 1.0)
    Wq = np.clip(_round_half_up(W / w_scale), -127, 127).astype(np.int64)
    acc_scale = in_scale * w_scale
    bq = _round_half_up(b / acc_scale)
    folded = bq - np.asarray(in_zero, np.int64) @ Wq if np.ndim(in_zero) else bq - in_zero * Wq.sum(axis=0)
    bound = np.abs(folded) + 128 * np.abs(Wq).sum(axis=0)
    if not np.all(bound <= _ACC_LIMIT):
        j = int(np.argmax(bound))
        raise ConversionError(f"{where}, unit {j}: the int32 accumulator could reach {bound[j]:.3g} "
                              f"(a bias far larger than the weights' step); it cannot be quantized")
    if kind == "fused":
        g_scale, g_zero = grid(a.min(), a.max())
        out_scale, out_zero = g_scale, g_zero
    else:
        c = _SATURATION.get(act.name, math.inf) * 1.001
        g_scale, g_zero = grid(max(z.min(), -c), min(z.max(), c))
        if kind == "softmax":
            out_scale, out_zero = 1.0 / 256.0, -128
        elif act.name in _FIXED_GRIDS:
            out_scale, out_zero = _FIXED_GRIDS[act.name]
        else:
            out_scale, out_zero = grid(a.min(), a.max())
    g_scale, g_zero, out_scale, out_zero = float(g_scale), int(g_zero), float(out_scale), int(out_zero)
    M = acc_scale / g_scale
    m, s = fixed_point(M if per_channel else M[:1], where)
    layer = Int8Layer(kind, act.name, Wq.astype(np.int8), folded.astype(np.int32), bq.astype(np.int32), w_scale,
                      float(in_scale), m, s, g_scale, g_zero, out_scale, out_zero,
                      lo=g_zero if act == _act.relu else QMIN)
    if kind == "table":
        zq = np.arange(QMIN, QMAX + 1)
        with np.errstate(all="ignore"):
            values = np.asarray(act(g_scale * (zq - g_zero).astype(np.float64)[:, None]), np.float64)[:, 0]
        if not np.all(np.isfinite(values)):
            raise ConversionError(f"activation {act.name!r} ({where}) is not finite on its net input's range")
        layer.table = np.clip(_round_half_up(values / out_scale) + out_zero, QMIN, QMAX).astype(np.int8)
    elif kind == "softmax":
        layer.exp_table = _round_half_up(EXP_ONE * np.exp(-g_scale * np.arange(256))).astype(np.uint16)
    return layer


def _as_int8(model, calibration, per_channel, classes, what):
    if isinstance(model, Int8Model):
        if calibration is not None or classes is not None:
            raise ValueError(f"{what}: an Int8Model is already quantized; calibration= and classes= are for "
                             f"a float model")
        return model
    if calibration is None:
        raise ValueError(f"{what} needs calibration data (rows of raw features, such as the training data)")
    return quantize_int8(model, calibration, per_channel=per_channel, classes=classes)


# --- the C header ----------------------------------------------------------------------------------

def _ints(values, per_line=16, indent="    "):
    values = [str(int(v)) for v in np.asarray(values).ravel()]
    return (",\n" + indent).join(", ".join(values[i:i + per_line]) for i in range(0, len(values), per_line))


def export_c_int8(model, path=None, *, calibration=None, name="model", per_channel=False, classes=None) -> str:
    """A C99 header predicting like ``model`` with int8 weights, int32 accumulation and integer arithmetic only.

    Parameters
    ----------
    model : ffnn.Network, fitted ffnn.sklearn estimator, or Int8Model
        A float model is first quantized by :func:`quantize_int8` with ``calibration``, ``per_channel``
        and ``classes``; an :class:`Int8Model` is written as it is.
    path : str or os.PathLike, optional
        Where to write the header (atomically; an existing file is replaced).
    calibration : array-like (N, S_0), optional
        Raw feature rows for :func:`quantize_int8` (required for a float model).
    name : str
        The prefix of every identifier (a C identifier).

    Returns
    -------
    str
        The header's text. It includes only ``<stdint.h>``, allocates nothing and has no float type
        unless ``<NAME>_FLOAT_IO`` is defined before including it:

        - ``void <name>_predict(const int8_t *x, int8_t *y)``: S_0 int8 features in, K int8 outputs out.
          Classifiers: probabilities p_k = (y_k + 128) / 256 (K = 2 for one logistic unit). Regressors:
          y_k ≈ <NAME>_OUTPUT_SCALE · (q_k − <NAME>_OUTPUT_ZERO), times the target scale plus its shift.
        - ``int <name>_predict_label(const int8_t *x)``: classifiers (not multilabel), the class index.
        - ``<name>_input_zero[S_0]``: each feature's zero point; with ``<NAME>_FLOAT_IO`` also
          ``<name>_quantize_input(const float *x, int8_t *q)`` (raw features, the model's input scaling
          included) and ``<name>_dequantize_output(const int8_t *y, float *out)``.
        - ``<name>_class_name(k)`` and ``<name>_feature_name(j)`` when the names are known.

    Raises
    ------
    ConversionError, ValueError
        As :func:`quantize_int8`; ValueError for a ``name`` that is not a C identifier.
    """
    from .c import check_name, name_lookups

    check_name(name)
    q = _as_int8(model, calibration, per_channel, classes, "export_c_int8")
    d = q.description
    p, P = name, name.upper()
    sizes, k, L = d.sizes, d.n_outputs, len(q.layers)
    last = q.layers[-1]
    guard = f"{P}_H_INCLUDED"
    probabilities = d.task == "classify"
    lines = [
        f"/* {p}: a feed-forward network exported by ffnn ({d.kind}), int8, integer arithmetic only, C99.",
        f" * {' -> '.join(map(str, sizes))}; activations: {', '.join(d.activation_names)}.",
        f" * int8 weights ({'one scale per unit' if q.per_channel else 'one scale per layer'}), int32 "
        f"accumulation, fixed-point requantization; activation ranges from {q.n_calibration} calibration rows.",
        f" * {p}_predict(x, y) reads {sizes[0]} int8 features and writes {k} int8 "
        + ("class probabilities, p = (y + 128) / 256." if probabilities else "outputs.")
        + " No dynamic memory, no float; only <stdint.h>.",
        " *",
        f" * Inputs: q_i = clamp(round((x_i - shift_i) / step_i) + {p}_input_zero[i], -128, 127) for the raw",
        " * feature x_i; shift_i and step_i hold the model's input scaling and are written below (as",
        f" * {p}_input_shift and {p}_input_step, float) when {P}_FLOAT_IO is defined, which also gives",
        f" * {p}_quantize_input(x, q) and {p}_dequantize_output(y, out). */",
        f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
        f"#define {P}_N_INPUTS {sizes[0]}", f"#define {P}_N_OUTPUTS {k}",
        f"#define {P}_OUTPUT_ZERO {last.out_zero} /* y = OUTPUT_SCALE * (q - OUTPUT_ZERO), OUTPUT_SCALE = "
        f"{last.out_scale!r} */", "",
        f"static const int8_t {p}_input_zero[{sizes[0]}] = {{\n    {_ints(q.input_zero)}\n}};", ""]
    for l, layer in enumerate(q.layers, start=1):
        n = len(layer.multiplier)
        lines += [f"/* layer {l}: {layer.activation}; W[{l}] transposed, int8: row j holds the weights into unit j; "
                  f"b: int32, the input's zero point folded in; requantization: multiplier m and shift s */",
                  f"static const int8_t {p}_W{l}[{sizes[l]}][{sizes[l - 1]}] = {{\n"
                  + ",\n".join("    {" + _ints(row, indent="     ") + "}" for row in layer.weights.T) + "\n};",
                  f"static const int32_t {p}_b{l}[{sizes[l]}] = {{\n    {_ints(layer.bias)}\n}};",
                  f"static const int32_t {p}_m{l}[{n}] = {{\n    {_ints(layer.multiplier, per_line=8)}\n}};",
                  f"static const uint8_t {p}_s{l}[{n}] = {{\n    {_ints(layer.shift)}\n}};"]
        if layer.table is not None:
            lines.append(f"/* {layer.activation} on the net input's grid: a = T[q_z + 128] */")
            lines.append(f"static const int8_t {p}_t{l}[256] = {{\n    {_ints(layer.table)}\n}};")
        if layer.exp_table is not None:
            lines.append("/* softmax: E[d] = round(2^15 exp(-S_z d)) for d = max q_z - q_z */")
            lines.append(f"static const uint16_t {p}_exp[256] = {{\n    {_ints(layer.exp_table)}\n}};")
        lines.append("")
    lines += ["/* clamp(zero + floor((acc m + 2^(s-1)) / 2^s), lo, 127): acc times the real multiplier m 2^-s,",
              " * rounded half up, on the output's grid; shifts of non-negative values only (defined in C99) */",
              f"static inline int8_t {p}_requantize(int32_t acc, int32_t m, int s, int32_t zero, int32_t lo)", "{",
              "    int64_t v = (int64_t)acc * m + ((int64_t)1 << (s - 1));",
              "    int64_t q = (v >= 0 ? v >> s : -((-v + ((int64_t)1 << s) - 1) >> s)) + zero;",
              "    return (int8_t)(q < lo ? lo : (q > 127 ? 127 : q));", "}", ""]

    width = max(sizes[1:-1], default=0)
    body = ["int i, j;"]
    if width:
        body.append(f"int8_t u[{width}]" + (f", v[{width}];" if L > 2 else ";"))
    src = "x"
    for l, layer in enumerate(q.layers, start=1):
        dst = "z" if l == L else ("u" if l % 2 else "v")
        j_index = "j" if len(layer.multiplier) > 1 else "0"
        body += [f"/* layer {l}: {layer.activation} */",
                 f"for (j = 0; j < {sizes[l]}; ++j) {{",
                 f"    int32_t acc = {p}_b{l}[j];",
                 f"    for (i = 0; i < {sizes[l - 1]}; ++i) acc += (int32_t){p}_W{l}[j][i] * {src}[i];",
                 f"    {dst}[j] = {p}_requantize(acc, {p}_m{l}[{j_index}], {p}_s{l}[{j_index}], {layer.grid_zero}, "
                 f"{layer.lo});", "}"]
        if layer.table is not None and l < L:
            body.append(f"for (j = 0; j < {sizes[l]}; ++j) {dst}[j] = {p}_t{l}[{dst}[j] + 128];")
        src = dst
    lines += ["/* z = the output layer's int8 net input, on its grid (its output, for identity and relu) */",
              f"static inline void {p}_forward(const int8_t *x, int8_t *z)", "{"]
    lines += ["    " + s for s in body] + ["}", ""]

    out = [f"int8_t z[{sizes[-1]}];", f"{p}_forward(x, z);"]
    n_last = sizes[-1]
    if last.kind == "fused":
        out.append(f"for (k = 0; k < {n_last}; ++k) y[k] = z[k];")
    elif last.kind == "table":
        if q.output_kind == "binary":
            out += [f"y[1] = {p}_t{L}[z[0] + 128];", "y[0] = (int8_t)(y[1] == -128 ? 127 : -y[1]);", "(void)k;"]
        else:
            out.append(f"for (k = 0; k < {n_last}; ++k) y[k] = {p}_t{L}[z[k] + 128];")
    else:
        out = ["int32_t e[%d], sum = 0;" % n_last, "int8_t top;"] + out + [
            "top = z[0];", f"for (k = 1; k < {n_last}; ++k) if (z[k] > top) top = z[k];",
            f"for (k = 0; k < {n_last}; ++k) sum += e[k] = {p}_exp[top - z[k]];",
            f"for (k = 0; k < {n_last}; ++k) {{",
            "    int32_t r = (256 * e[k] + sum / 2) / sum - 128;",
            "    y[k] = (int8_t)(r > 127 ? 127 : r);", "}"]
    lines += ["/* y = the network's int8 outputs for one sample of int8 features x */",
              f"static inline void {p}_predict(const int8_t *x, int8_t *y)", "{", "    int k;"]
    lines += ["    " + s for s in out] + ["}", ""]
    if d.task == "classify" and q.output_kind != "multilabel":
        if q.output_kind == "binary":
            label = [f"int8_t z[1];", f"{p}_forward(x, z);", f"return z[0] > {last.grid_zero};"]
            what = "1 when the net input is above 0 (p > 1/2), else 0"
        else:
            buf, fill = ("z", f"{p}_forward(x, z);") if q.label_from_net_input else ("y", f"{p}_predict(x, y);")
            label = [f"int8_t {buf}[{n_last}];", "int k, best = 0;", fill,
                     f"for (k = 1; k < {n_last}; ++k) if ({buf}[k] > {buf}[best]) best = k;", "return best;"]
            what = ("the index of the largest net input of the output layer (its largest probability; the first "
                    "on ties)" if q.label_from_net_input else "the index of the largest output (the first on ties)")
        lines += [f"/* {what} */", f"static inline int {p}_predict_label(const int8_t *x)", "{"]
        lines += ["    " + s for s in label] + ["}", ""]
    lines += name_lookups(p, d)
    lines += _float_io(q, p, P)
    lines += [f"#endif /* {guard} */", ""]
    text = "\n".join(lines)
    if path is not None:
        from .._files import atomic_write

        atomic_write(path, text.encode("ascii"))
    return text


def _float_io(q, p, P):
    """The opt-in float helpers (``#ifdef <NAME>_FLOAT_IO``): raw features to int8, int8 outputs to reals."""
    from ..activations import c_float

    d = q.description
    last = q.layers[-1]
    n0, k = d.sizes[0], d.n_outputs

    def floats(values):
        return ", ".join(c_float(v) for v in np.asarray(values, np.float64).ravel())

    lines = [f"#ifdef {P}_FLOAT_IO",
             f"static const float {p}_input_shift[{n0}] = {{{floats(q.input_shift)}}};",
             f"static const float {p}_input_step[{n0}] = {{{floats(q.input_step)}}};",
             "/* q = clamp(round((x - shift) / step) + zero, -128, 127), rounded half up (NaN: -128) */",
             f"static inline void {p}_quantize_input(const float *x, int8_t *q)", "{", "    int i;",
             f"    for (i = 0; i < {n0}; ++i) {{",
             f"        float t = (x[i] - {p}_input_shift[i]) / {p}_input_step[i] + (float)({p}_input_zero[i] + 128)"
             " + 0.5f;",
             "        q[i] = (int8_t)(t >= 256.0f ? 127 : (t >= 0.0f ? (int)t - 128 : -128));", "    }", "}"]
    out = f"{c_float(last.out_scale)} * (float)(y[k] - {last.out_zero})"
    if d.target_shift is not None:
        lines += [f"static const float {p}_target_shift[{k}] = {{{floats(d.target_shift)}}};",
                  f"static const float {p}_target_scale[{k}] = {{{floats(d.target_scale)}}};"]
        out = f"({out}) * {p}_target_scale[k] + {p}_target_shift[k]"
    lines += ["/* the real outputs of int8 outputs y: probabilities, or predictions in the target's units */",
              f"static inline void {p}_dequantize_output(const int8_t *y, float *out)", "{", "    int k;",
              f"    for (k = 0; k < {k}; ++k) out[k] = {out};", "}", f"#endif /* {P}_FLOAT_IO */", ""]
    return lines


# --- the ONNX QDQ graph ----------------------------------------------------------------------------

def _qdq(e, x, scale, zero, hint, axis=None, dequantize_scale=None):
    """QuantizeLinear then DequantizeLinear of ``x`` on the grid (scale, zero): x rounded to the int8 grid."""
    attrs = {} if axis is None else {"axis": axis}
    s = e.const(f"{hint}_scale", scale)
    z = e.const(f"{hint}_zero", zero, dtype=np.int8)
    q = e.node("QuantizeLinear", [x, s, z], f"{hint}_q", **attrs)
    ds = s if dequantize_scale is None else e.const(f"{hint}_unit", dequantize_scale)
    return e.node("DequantizeLinear", [q, ds, z], f"{hint}_dq", **attrs)


def _dequantized_const(e, hint, values, scale, dtype, axis):
    """DequantizeLinear of an integer constant (int8 weights, int32 biases) with zero point 0."""
    scale = np.asarray(scale, np.float64)
    per_axis = scale.size > 1
    scale = scale if per_axis else scale.reshape(())[()]
    zero = np.zeros(scale.shape, dtype=dtype)
    attrs = {"axis": axis} if per_axis else {}
    return e.node("DequantizeLinear", [e.const(f"{hint}_q", values, dtype=dtype), e.const(f"{hint}_scale", scale),
                                       e.const(f"{hint}_zero", zero, dtype=dtype)], hint, **attrs)


def _emit_qdq(e, q, x):
    """The QDQ nodes from float input ``x`` to the outputs, as ``_emit`` of :mod:`ffnn.export.onnx` names them."""
    from onnx import TensorProto

    d = q.description
    h = x
    if d.input_shift is not None:
        h = e.node("Sub", [h, e.const("input_shift", q.input_shift)], "centred")
    # q_i − Z_i as floats: the steps are folded into W[1], as in the header
    h = _qdq(e, h, q.input_step, q.input_zero, "input", axis=1, dequantize_scale=np.ones(q.input_step.size))
    L = len(q.layers)
    for l, (layer, act) in enumerate(zip(q.layers, d.activations), start=1):
        per_unit = layer.weight_scale if q.per_channel else layer.weight_scale[:1]
        W = _dequantized_const(e, f"W{l}", layer.weights, per_unit, np.int8, 1)
        b = _dequantized_const(e, f"b{l}", layer.bias_unfolded, layer.input_scale * per_unit, np.int32, 0)
        z = e.node("Gemm", [h, W, b], f"z{l}")
        if layer.kind == "fused":
            if act == _act.relu:
                z = e.node("Relu", [z], f"relu{l}")
            h = z = _qdq(e, z, layer.out_scale, layer.out_zero, f"a{l}")
        else:
            z = _qdq(e, z, layer.grid_scale, layer.grid_zero, f"z{l}")
            a = act.export_form("onnx", f" (layer {l})")(e.layer_nodes(l), z)
            h = _qdq(e, a, layer.out_scale, layer.out_zero, f"a{l}")
    if d.output == "values":
        if d.target_shift is not None:
            h = e.node("Mul", [h, e.const("target_scale", d.target_scale)])
            h = e.node("Add", [h, e.const("target_shift", d.target_shift)])
        return {"prediction": h}
    if d.output == "multilabel":
        label = e.node("Cast", [e.node("Greater", [z, e.const("zero", 0.0)])], to=TensorProto.INT64)
        return {"probabilities": h, "label": label}
    if d.output == "binary":  # [1 − p, p]; the label is z > 0, the first on a tie as ArgMax
        h = e.node("Concat", [e.node("Sub", [e.const("one", 1.0), h], "p0"), h], axis=1)
        z = e.node("Concat", [e.node("Neg", [z]), z], axis=1)
    scores = z if q.label_from_net_input or d.output == "binary" else h
    return {"probabilities": h, "label": e.node("ArgMax", [scores], "label_index", axis=1, keepdims=0)}


def export_onnx_qdq(model, path=None, *, calibration=None, per_channel=False, opset=None, classes=None):
    """An ONNX model of the int8 quantization of ``model`` in QDQ form, optionally written to ``path``.

    The float graph of :func:`ffnn.export.export_onnx` with QuantizeLinear/DequantizeLinear pairs: the
    weights are int8 constants (per-axis scales with ``per_channel``) behind DequantizeLinear, the biases
    int32, and each activation is rounded to the same int8 grid as in :func:`export_c_int8` — runtimes
    such as onnxruntime run the matrix products in integers. The input is raw float32 features
    ``"X"`` (N, S_0); the outputs are those of :func:`ffnn.export.export_onnx` (float32 values of the
    int8 grid): ``"probabilities"`` and ``"label"`` for classifiers, ``"prediction"`` for regressors.

    Parameters are those of :func:`export_c_int8`; ``opset`` (13 or newer, default 17) as for
    :func:`ffnn.export.export_onnx`.
    """
    from .onnx import DEFAULT_OPSET, build_model, check_opset

    opset = check_opset(DEFAULT_OPSET if opset is None else opset)
    q = _as_int8(model, calibration, per_channel, classes, "export_onnx_qdq")
    scheme = f"{'per-channel' if q.per_channel else 'per-tensor'} weights, {q.n_calibration} calibration rows"
    return build_model(q.description, lambda e, x: _emit_qdq(e, q, x), np_dtype=np.float32, opset=opset, path=path,
                       summary=f"int8 QDQ ({scheme})", props={"quantization": f"int8 QDQ, {scheme}"})
