"""An :class:`~ffnn.explanation.Explanation` as aligned text for a terminal.

Each equation is ``symbol = formula = numbers = value`` on one line when it fits, else one part a
line with the ``=`` signs aligned, long sums wrapped at their ``+`` and ``−``. A large network is
summarised: the first ``max_units`` units of each layer and the first ``max_samples`` samples are
written out, and each step says how many equations it leaves out.
"""

from __future__ import annotations

import textwrap

from .._files import printable
from .expr import number

__all__ = ["render", "equation_lines"]


def _shown(key, max_units, max_samples):
    """Whether the equation of ``key`` is written out in a summary."""
    kind, *i = key
    if kind in ("z", "a", "fp", "g", "delta"):
        return i[1] < max_samples and i[2] < max_units
    if kind in ("dW", "W+", "W"):
        return i[1] < max_units and i[2] < max_units
    if kind in ("db", "b+", "b"):
        return i[1] < max_units
    return True


def _wrap(text, width, indent):
    """``text`` broken at its sums' signs into lines of at most ``width`` after ``indent``."""
    if len(text) + indent <= width:
        return [text]
    pieces, current = [], ""
    tokens = text.replace(" + ", "\0+ ").replace(" − ", "\0− ").split("\0")
    for n, tok in enumerate(tokens):
        candidate = tok if not current else f"{current} {tok}"
        if current and len(candidate) + indent > width:
            pieces.append(current)
            current = tok
        else:
            current = candidate
    pieces.append(current)
    out = []
    for p in pieces:  # a single token longer than the line: cut it where it must be cut
        out += textwrap.wrap(p, max(20, width - indent), break_on_hyphens=False) or [p]
    return out


def equation_lines(eq, width=80, digits=4, max_terms=None, indent=2):
    """The lines of one :class:`~ffnn.explanation.Equation`."""
    lhs = eq.lhs.symbol
    rel = eq.relation
    parts = [eq.formula] if eq.formula != lhs else []
    numbers = eq.numbers.text(digits, max_terms)
    value = number(eq.lhs.value, digits)
    if numbers not in parts:
        parts.append(numbers)
    if value != numbers:
        parts.append(value)
    one = f"{' ' * indent}{lhs} {rel} " + " = ".join(parts)
    if len(one) <= width:
        return [one]
    pad = " " * (indent + len(lhs) + 1)
    lines = []
    for n, part in enumerate(parts):
        sign = rel if n == 0 else "="
        first = f"{' ' * indent}{lhs} {sign} " if n == 0 else f"{pad}{sign} "
        wrapped = _wrap(part, width, len(first) + 2)  # continuation lines sit 2 further in
        lines.append(first + wrapped[0])
        lines += [" " * (len(first) + 2) + w for w in wrapped[1:]]
    return lines


def render(expl, width=80, digits=4, max_units=None, max_terms=None, max_samples=None):
    """The whole step as text, at most ``width`` columns where the symbols allow.

    ``max_units`` (default 4), ``max_samples`` (default 2) and ``max_terms`` (default 8) bound what
    is written out of a large network; every value is still in ``expl.values`` and on the page.
    """
    max_units = 4 if max_units is None else max_units
    max_samples = 2 if max_samples is None else max_samples
    max_terms = 8 if max_terms is None else max_terms
    nt = expl.notation
    N = expl.n_samples
    out = [f"One training step in {nt.author}'s notation" if nt.name != "ffnn" else "One training step in ffnn's notation"]
    out += textwrap.wrap(nt.title, width) if nt.name != "ffnn" else []
    out.append(f"network {' → '.join(map(str, expl.sizes))} ({', '.join(expl.activations)}), loss {expl.loss}, "
               f"{N} sample{'s' if N != 1 else ''}, η = {expl.learning_rate:g}")
    if expl.conventions:
        out += ["", "Conventions"]
        for note in expl.conventions:
            out += textwrap.wrap(note, width, initial_indent="  • ", subsequent_indent="    ")
    samples_shown = N <= max_samples
    for step in expl.steps:
        out += ["", step.title[0].upper() + step.title[1:]]
        hidden, sample = 0, None
        for eq in step.equations:
            if not _shown(eq.lhs.key, max_units, max_samples):
                hidden += 1
                continue
            if N > 1 and not nt.indexes_samples and eq.sample is not None and eq.sample != sample:
                sample = eq.sample
                out.append(f" sample {sample + nt.base}:")
            out += equation_lines(eq, width, digits, max_terms)
        if hidden:
            beyond = f"units after {max_units}" + ("" if samples_shown else f", samples after {max_samples}")
            out += textwrap.wrap(f"… {hidden} more equation{'s' if hidden != 1 else ''} in this step ({beyond}); "
                                 f"the HTML page shows every one", width, initial_indent="  ",
                                 subsequent_indent="    ")
    return "\n".join(printable(line) for line in out)
