"""Schemas of the JSON in ffnn's files, and the one check of a file against its schema.

A schema is a tree of :class:`Field`: what a value must be (a test, and the words that say it in an
error); for an object, the fields it holds, each required or optional, and what any other field
must be (by default no other field may be there); for a list, what each entry must be.
:func:`validate` checks a document against one and raises :class:`FileFormatError` naming the file
and the dotted path of the first field that is missing, mistyped or unknown::

    model file 'm.safetensors' lacks the field 'sizes'
    checkpoint file 'run.ckpt': field 'optimizer.step' must be a non-negative integer
    estimator file 'e.safetensors' has a field ffnn does not know: 'optimizer.rate'

:func:`check_arrays` does the same for a file's tensors: the names, dtypes and shapes it must hold,
and no other. Parameters are named by layer, l = 1..L: ``W.{l}`` and ``b.{l}``, and with a prefix
for their copies (``best.W.{l}``, ``opt.m.b.{l}``): :func:`layer_names`. :func:`legacy_names` maps
the names of earlier files (``best.{i}``, ``opt.m.{i}``, ``resume.{i}``, i indexing W.1, b.1, W.2, …).

Schemas that several kinds of file share live here too: :data:`HISTORY` (a training History, in
model files and checkpoints; :func:`history_from` checks one and returns it), :data:`SHA256` (the
checksum earlier files kept in their metadata) and :data:`BIT_GENERATOR` (a NumPy bit generator's
state). Each file kind declares its own schema in its module (``ffnn.io.SCHEMA``,
``ffnn.training.state.SCHEMA``, ``ffnn.sklearn._persist.SCHEMA``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ._files import FileFormatError, is_number, printable
from .history import History

__all__ = ["Field", "ANY", "integer", "number", "text", "boolean", "one_of", "list_of", "obj", "validate",
           "Array", "FLOAT", "check_arrays", "layer_names", "legacy_names", "HISTORY", "history_from", "SHA256",
           "BIT_GENERATOR"]


class Field:
    """One value in a document.

    Parameters
    ----------
    must : str
        What the value must be, as errors say it: "field 'x' must be <must>".
    check : callable, optional
        value → bool; None accepts any value (of the kind ``fields`` or ``items`` asks for).
    fields : mapping of str → Field, optional
        The value is an object holding these fields.
    others : Field, optional
        What any other field of that object must be; None: no other field may be there.
    items : Field, optional
        The value is a list, each of whose entries must be ``items``.
    required : bool
        Whether the object holding this field must have it.
    nullable : bool
        Whether the value may be null.
    """

    __slots__ = ("must", "check", "fields", "others", "items", "required", "nullable")

    def __init__(self, must, check=None, *, fields=None, others=None, items=None, required=True, nullable=False):
        self.must, self.check, self.fields, self.others, self.items = must, check, fields, others, items
        self.required, self.nullable = required, nullable

    def _but(self, **changes):
        kept = {k: getattr(self, k) for k in self.__slots__ if k != "must"}
        return Field(changes.pop("must", self.must), **{**kept, **changes})

    def optional(self) -> Field:
        """This field, which its object may leave out."""
        return self._but(required=False)

    def or_null(self) -> Field:
        """This field, which may also be null."""
        return self._but(nullable=True, must=f"{self.must} or null")

    def __repr__(self):
        return f"Field({self.must!r}{'' if self.required else ', optional'})"


#: Any JSON value.
ANY = Field("any JSON value")


def integer(low=0, high=None) -> Field:
    """An integer (not a bool) from ``low`` to ``high``."""
    must = ("a positive integer" if low == 1 else "a non-negative integer" if low == 0 else f"an integer >= {low}")
    if high is not None:
        must = f"an integer from {low} to {high}"
    return Field(must, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low
                 and (high is None or v <= high))


def number() -> Field:
    """A finite number (not a bool)."""
    return Field("a finite number", is_number)


def text(must="text", *, pattern=None, max_len=None) -> Field:
    """A string, of at most ``max_len`` characters, matching ``pattern`` (a regular expression) in full."""
    return Field(must, lambda v: isinstance(v, str) and (max_len is None or len(v) <= max_len)
                 and (pattern is None or re.fullmatch(pattern, v) is not None))


def boolean() -> Field:
    return Field("true or false", lambda v: isinstance(v, bool))


def one_of(*values) -> Field:
    """One of ``values`` (JSON scalars; ``1`` is not ``true``)."""
    words = [json.dumps(v) for v in values]
    must = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
    return Field(must, lambda v: any(v == x and type(v) is type(x) for x in values))


def list_of(item: Field, *, low=0, high=None, must=None) -> Field:
    """A list of ``low`` to ``high`` entries, each ``item``."""
    if must is None:
        size = ("" if low == 0 and high is None else f" of at least {low} entries" if high is None
                else f" of {low} to {high} entries")
        must = f"a list{size} ({item.must} each)"
    return Field(must, lambda v: isinstance(v, list) and low <= len(v) and (high is None or len(v) <= high),
                 items=item)


def obj(fields: Mapping, *, others=None, must="an object") -> Field:
    """An object holding ``fields`` and, when ``others`` is given, any other field of that kind."""
    return Field(must, lambda v: isinstance(v, dict), fields=dict(fields), others=others)


def _field_name(path):
    return f"field {printable(path)!r}" if path else "its metadata"


def validate(value, schema, where, path=""):
    """Check ``value`` against ``schema`` (a Field, or a mapping of name → Field for an object with
    those fields and no other); ``where`` names the file (``"model file 'm.safetensors'"``) and
    ``path`` the value's place in the document, dotted (``"optimizer"``).

    Raises
    ------
    FileFormatError
        ``"{where} lacks the field 'x.y'"``, ``"{where}: field 'x.y' must be …"`` or ``"{where} has a
        field ffnn does not know: 'x.z'"``, for the first such field.
    """
    if isinstance(schema, Mapping):
        schema = obj(schema)
    if value is None and schema.nullable:
        return
    if schema.check is not None and not schema.check(value):
        raise FileFormatError(f"{where}: {_field_name(path)} must be {schema.must}")
    if schema.fields is not None:
        for name, field in schema.fields.items():
            if name in value:
                validate(value[name], field, where, f"{path}.{name}" if path else name)
            elif field.required:
                raise FileFormatError(f"{where} lacks the field {printable(f'{path}.{name}' if path else name)!r}")
        for name in value:
            if name not in schema.fields:
                inner = f"{path}.{name}" if path else name
                if schema.others is None:
                    raise FileFormatError(f"{where} has a field ffnn does not know: {printable(inner)!r}")
                validate(value[name], schema.others, where, inner)
    if schema.items is not None:
        for i, v in enumerate(value):
            validate(v, schema.items, where, f"{path}.{i}")


# --- arrays ----------------------------------------------------------------------------------------

class _Floats:
    def __repr__(self):
        return "FLOAT"


#: The dtype of an :class:`Array` that may be any floating-point type.
FLOAT = _Floats()


class Array(NamedTuple):
    """A tensor a file must hold: ``dtype`` a NumPy dtype (exactly), :data:`FLOAT` or None (any);
    ``shape`` a tuple whose entries are lengths or None (any length), or None (any shape)."""

    dtype: object = FLOAT
    shape: tuple | None = None
    required: bool = True


def _shape_text(shape):
    dims = ["n" if d is None else str(d) for d in shape]
    return f"({', '.join(dims)}{',' if len(dims) == 1 else ''})"


def check_arrays(found, expected, where, what):
    """The tensors a file holds (``found``: name → (dtype, shape), as :attr:`SafetensorsFile.tensors`)
    against those it must hold (``expected``: name → :class:`Array`); ``what`` names the kind of file
    ("model file", "checkpoint"). Raises FileFormatError for a missing tensor (unless optional), one of
    another dtype or shape, and any tensor not expected."""
    for name, (dtype, shape, required) in expected.items():
        if name not in found:
            if required:
                raise FileFormatError(f"{where} lacks the array {printable(name)}")
            continue
        got_dtype, got_shape = found[name]
        got_dtype = np.dtype(got_dtype).newbyteorder("=")
        if dtype is FLOAT and got_dtype.kind != "f":
            raise FileFormatError(f"{where}: {printable(name)} is {got_dtype.name}, expected floats")
        if dtype is not FLOAT and dtype is not None and got_dtype != np.dtype(dtype):
            raise FileFormatError(f"{where}: {printable(name)} is {got_dtype.name}, expected {np.dtype(dtype).name}")
        if shape is not None and (len(got_shape) != len(shape)
                                  or any(d is not None and g != d for g, d in zip(got_shape, shape))):
            raise FileFormatError(f"{where}: {printable(name)} has shape {tuple(got_shape)}, "
                                  f"expected {_shape_text(shape)}")
    extra = sorted(set(found) - set(expected))
    if extra:
        raise FileFormatError(f"{where} holds arrays {'an' if what[:1] in 'aeiou' else 'a'} {what} does not: "
                              f"{printable(', '.join(extra[:5]))}")


def layer_names(n_layers, prefix=""):
    """``[f"{prefix}W.1", f"{prefix}b.1", …, f"{prefix}b.{n_layers}"]``: the names of a network's
    parameters (or of a copy of them, such as an optimiser's slot), in the order of
    :meth:`ffnn.Network.parameters`."""
    return [f"{prefix}{kind}.{l}" for l in range(1, n_layers + 1) for kind in ("W", "b")]


_LEGACY = re.compile(r"(best|resume|opt\.[^.]+)\.(\d{1,6})")


def legacy_names(names, n_layers):
    """{earlier name: name by layer} for the tensors among ``names`` that earlier files named by their
    index in the flat parameter list (``best.{i}``, ``resume.{i}``, ``opt.{slot}.{i}``; i = 0, 1, …
    for W.1, b.1, W.2, …), where the name by layer is not already taken."""
    renamed = {}
    for name in names:
        m = _LEGACY.fullmatch(name)
        if m is None or int(m.group(2)) >= 2 * n_layers:
            continue
        i = int(m.group(2))
        new = f"{m.group(1)}.{'Wb'[i % 2]}.{i // 2 + 1}"
        if new not in names:
            renamed[name] = new
    return renamed


# --- schemas more than one kind of file holds --------------------------------------------------------

#: The SHA-256 digest (hex) that files written before the checksum moved beside the metadata kept in it.
SHA256 = text("a SHA-256 digest in hex", pattern="[0-9a-f]{64}").optional()

_PER_EPOCH = ("epoch", "loss", "val_loss", "val_metric", "lr", "time")
_PER_LAYER = ("grad_norm", "delta_mean", "update_ratio", "dead_fraction")

#: A :class:`ffnn.History` (``History.to_dict()``): one entry per epoch in each of ``epoch``, ``loss``,
#: ``val_loss``, ``val_metric``, ``lr`` and ``time``; a list of one value per layer per epoch, or none
#: at all, in each of the diagnostics; the metric's name, the best epoch, three flags and the training loop that ran. Every field
#: may be left out (files written before it existed), taking History's default.
HISTORY = obj({
    "epoch": list_of(integer(0)).optional(),
    **{k: list_of(number().or_null()).optional() for k in _PER_EPOCH[1:]},
    **{k: list_of(list_of(number().or_null()).or_null()).optional() for k in _PER_LAYER},
    "metric": text().optional(),
    "loss_includes_penalty": boolean().optional(),
    "best_epoch": integer(0).or_null().optional(),
    "stopped_early": boolean().optional(),
    "interrupted": boolean().optional(),
    "loop": text().optional(),
})


def history_from(d, where, path="history"):
    """The :class:`ffnn.History` stored as ``d`` at ``path`` in a file: checked against
    :data:`HISTORY`, and its lists against each other (one entry per epoch)."""
    validate(d, HISTORY, where, path)
    n = len(d.get("epoch", []))
    for k in _PER_EPOCH + _PER_LAYER:
        got = len(d.get(k, []))
        if got != n and not (k in _PER_LAYER and got == 0):  # diagnostics: per epoch when recorded
            raise FileFormatError(f"{where}: its training history is malformed: field {printable(f'{path}.{k}')!r} "
                                  f"has {got} entries for {n} epochs")
    return History.from_dict(d)


_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _bit_generator_state(v):
    """Whether NumPy takes ``v`` as the state of one of its bit generators."""
    if not isinstance(v, dict) or v.get("bit_generator") not in _BIT_GENERATORS:
        return False
    try:
        getattr(np.random, v["bit_generator"])().state = v
    except (TypeError, ValueError, KeyError, IndexError, OverflowError):
        return False
    return True


#: The state of a NumPy bit generator (``rng.bit_generator.state``), as NumPy accepts it.
BIT_GENERATOR = Field("the state of a NumPy random generator", _bit_generator_state)
