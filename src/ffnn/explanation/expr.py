"""The right side of an equation with its numbers in it: sums and products of numbers, evaluated
in the order they are written, and written back as text (``0.3·(−0.12) + 0.5·0.07``).

A leaf is a :class:`Num` (a number) or a :class:`Raw` (a piece of formula with numbers in it,
``(0.6 − 1)``, whose value is given); :class:`Sum` and :class:`Prod` combine them. ``value`` is
computed from the leaves, term by term in Python floats, as the authors add and multiply.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

__all__ = ["Num", "Raw", "Sum", "Prod", "number"]


_FORMATTER = string.Formatter()


def number(v, digits=4) -> str:
    """``v`` with ``digits`` significant digits and a true minus sign."""
    if v == 0:
        return "0"
    if not math.isfinite(v):
        return str(v)
    return format(v, f".{digits}g").replace("-", "−")


def _enclosed(text):
    """Whether ``text`` is one parenthesised group, ``(…)``."""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    for n, c in enumerate(text):
        depth += (c == "(") - (c == ")")
        if depth == 0 and n < len(text) - 1:
            return False
    return True


@dataclass(frozen=True)
class Num:
    value: float

    def text(self, digits=4, max_terms=None):
        return number(self.value, digits)

    @property
    def negative(self):
        return self.value < 0


@dataclass(frozen=True)
class Raw:
    """A piece of formula with numbers in it: ``template`` with ``{0}``, ``{1}``, … standing for
    ``args`` (written with the same digits as everything else; a negative one in parentheses unless
    it opens the template or a parenthesis); ``value`` is what the piece equals."""
    template: str
    args: tuple
    value: float
    negative = False

    def text(self, digits=4, max_terms=None):
        out = []
        for literal, field, _, _ in _FORMATTER.parse(self.template):
            out.append(literal)
            if field is not None:
                v = self.args[int(field)]
                piece = number(v, digits) if isinstance(v, float) else str(v)
                opens = not "".join(out) or "".join(out).endswith("(")
                out.append(f"({piece})" if isinstance(v, float) and v < 0 and not opens else piece)
        return "".join(out)


@dataclass(frozen=True)
class Sum:
    """Σ sign·term, in order; ``terms`` is a tuple of (+1 or −1, expression)."""
    terms: tuple

    @property
    def value(self):
        total = 0.0
        for sign, e in self.terms:
            total = total + e.value if sign > 0 else total - e.value
        return total

    negative = False

    def text(self, digits=4, max_terms=None):
        terms = list(self.terms)
        if not terms:
            return "0"
        shown = terms
        if max_terms is not None and len(terms) > max_terms:
            head = max(1, max_terms - 1)
            shown = terms[:head] + [None] + terms[-1:]
        out = []
        for n, item in enumerate(shown):
            if item is None:
                out.append(f" + … ({len(terms) - head - 1} more terms)")
                continue
            sign, e = item
            piece = e.text(digits, max_terms)
            if isinstance(e, Sum) or (e.negative and (n or sign < 0)):
                piece = f"({piece})"
            out.append(piece if n == 0 and sign > 0 else (f"−{piece}" if n == 0 else
                                                          f" {'+' if sign > 0 else '−'} {piece}"))
        return "".join(out)


@dataclass(frozen=True)
class Prod:
    """sign · Π factors, multiplied in order."""
    factors: tuple
    sign: int = 1

    @property
    def value(self):
        v = 1.0
        for e in self.factors:
            v = v * e.value
        return v if self.sign > 0 else -v

    @property
    def negative(self):
        return self.sign < 0 or bool(self.factors) and self.factors[0].negative

    def text(self, digits=4, max_terms=None):
        parts = []
        for n, e in enumerate(self.factors):
            piece = e.text(digits, max_terms)
            if (isinstance(e, Sum) or (n and e.negative) or (n == 0 and self.sign < 0 and e.negative)
                    or (len(self.factors) > 1 and " " in piece and not _enclosed(piece))):
                piece = f"({piece})"
            parts.append(piece)
        body = "·".join(parts)
        return f"−{body}" if self.sign < 0 else body
