"""Render the documentation's mathematics as MathML when the HTML is built: no JavaScript, nothing
fetched when a page is read (browsers draw MathML themselves).

Enable it in conf.py with ``extensions += ["mathml"]`` (docs/_ext on sys.path) and
``html_math_renderer = "mathml"``. Every ``:math:`` role and ``.. math::`` directive — in the
pages and in docstrings that autodoc/numpydoc bring in — is converted by the pure-Python package
latex2mathml. Display blocks follow Sphinx's rules: paragraphs separated by a blank line are
separate equations, aligned at ``&``; a single paragraph with ``\\\\`` or ``&`` is one equation
split over lines; ``:label:`` numbers an equation (with a permalink, and ``:eq:`` references resolve to it);
``:nowrap:`` passes the LaTeX as written.

latex2mathml accepts almost anything and can return nonsense for bad input (an unknown command
becomes a variable named ``\\foo``, ``\\frac{a}`` a fraction with no denominator). So the output is
checked: unbalanced braces, an unknown command, an alignment ``&`` outside an alignment, or a
fraction, script or root missing a part is a :class:`MathMLError`. The build reports it as a
warning at the formula's source line (an error under ``-W``, as this project builds) and shows the
LaTeX source in its place.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from docutils import nodes
from sphinx.locale import _
from sphinx.util import logging
from sphinx.util.math import get_node_equation_number

import latex2mathml.converter

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "mathml_static"   # mathml.css: table alignment for MathML Core

MATHML_NS = "{http://www.w3.org/1998/Math/MathML}"

# Elements with a fixed number of children, and how many (MathML Core).
_ARITY = {"mfrac": 2, "msub": 2, "msup": 2, "msubsup": 3, "munder": 2, "mover": 2,
          "munderover": 3, "mroot": 2}
_TOKENS = {"mi", "mo", "mn", "mtext", "ms"}
_ALIGNED = re.compile(r"\\\\|(?<!\\)&")   # a line break, or an alignment & (not \&)
_COMMAND = re.compile(r"\\(?:[A-Za-z]+|\S)")   # \foo or \_ left in the output: not understood


class MathMLError(ValueError):
    """A LaTeX formula that cannot be converted to MathML; the message says why."""


def _check_braces(latex):
    depth = 0
    for token in re.findall(r"\\.|[{}]", latex, re.S):   # \{ \} \\ are not grouping braces
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
            if depth < 0:
                raise MathMLError("a closing brace '}' has no opening brace")
    if depth:
        raise MathMLError(f"{depth} opening brace(s) '{{' not closed")


def _check_tree(mathml):
    if "<mi>&</mi>" in mathml:       # latex2mathml leaves a stray & unescaped
        raise MathMLError("'&' outside an alignment (write align*, split, cases, array or "
                          "matrix; latex2mathml does not know aligned)")
    try:
        root = ET.fromstring(mathml)
    except ET.ParseError as exc:
        raise MathMLError(f"latex2mathml wrote malformed MathML ({exc})") from exc
    for element in root.iter():
        tag = element.tag.removeprefix(MATHML_NS)
        if tag in _ARITY and len(element) != _ARITY[tag]:
            raise MathMLError(f"<{tag}> has {len(element)} part(s), not {_ARITY[tag]} "
                              "(a fraction, script or root is missing an argument)")
        if tag in _TOKENS and element.text:
            command = _COMMAND.search(element.text)
            if command:
                raise MathMLError(f"latex2mathml does not know {command.group()}")


def latex_to_mathml(latex, display="inline", alttext=None):
    """Convert one LaTeX formula to a ``<math>`` element (a string).

    Parameters
    ----------
    latex : str
        The formula, without dollar signs.
    display : {"inline", "block"}
        ``display`` attribute of the ``<math>`` element.
    alttext : str, optional
        Its ``alttext`` (what screen readers and copying fall back on); by default `latex`.

    Returns
    -------
    str
        The MathML.

    Raises
    ------
    MathMLError
        If the formula is empty or does not convert (see the module docstring).
    """
    if display not in ("inline", "block"):
        raise ValueError(f"display must be 'inline' or 'block', not {display!r}")
    if not latex.strip():
        raise MathMLError("empty formula")
    _check_braces(latex)
    try:
        mathml = latex2mathml.converter.convert(latex, display=display)
    except Exception as exc:   # its own exceptions share no base class; its parser also raises
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__   # IndexError, …
        raise MathMLError(f"latex2mathml cannot convert it ({detail})") from exc
    _check_tree(mathml)
    alttext = html.escape(" ".join((latex if alttext is None else alttext).split()), quote=True)
    return mathml.replace("<math ", f'<math alttext="{alttext}" ', 1)


def display_latex(text, nowrap=False):
    """The LaTeX of a ``.. math::`` block as one formula, the way Sphinx's MathJax renderer reads
    it: blank-line-separated parts are equations aligned at ``&`` (one ``align*``); a single part
    with ``\\\\`` or ``&`` is split over lines; with ``nowrap`` the text is taken as written."""
    if nowrap:
        return text
    parts = [part.strip() for part in text.split("\n\n") if part.strip()]
    if len(parts) > 1:   # one align*: the parts' & line up with each other
        parts = [r"\begin{split}" + p + r"\end{split}" if r"\\" in p else p for p in parts]
        return r"\begin{align*}" + r"\\".join(parts) + r"\end{align*}"
    if parts and _ALIGNED.search(parts[0]):
        return r"\begin{split}" + parts[0] + r"\end{split}"
    return parts[0] if parts else text


def _convert(self, node, latex, display):
    source = node.astext()
    try:
        return latex_to_mathml(latex, display, alttext=source)
    except MathMLError as exc:
        logger.warning("math: cannot convert %s to MathML: %s", " ".join(source.split()), exc,
                       location=node, type="mathml")
        return f'<code class="math-error">{self.encode(source)}</code>'


def visit_math(self, node):
    self.body.append(self.starttag(node, "span", "", CLASS="math notranslate nohighlight"))
    self.body.append(_convert(self, node, node.astext(), "inline"))
    self.body.append("</span>")
    raise nodes.SkipNode


def visit_math_block(self, node):
    nowrap = node.get("no-wrap", node.get("nowrap", False))
    mathml = _convert(self, node, display_latex(node.astext(), nowrap), "block")
    self.body.append(self.starttag(node, "div", CLASS="math notranslate nohighlight"))
    if node["number"]:
        self.body.append(f'<span class="eqno">({get_node_equation_number(self, node)})')
        self.add_permalink_ref(node, _("Link to this equation"))
        self.body.append("</span>")
    self.body.append(mathml)
    self.body.append("</div>\n")
    raise nodes.SkipNode


def _add_stylesheet(app, config):
    if app.builder.format == "html" and app.builder.math_renderer_name == "mathml":
        config.html_static_path.append(str(STATIC))
        app.add_css_file("mathml.css")


def setup(app):
    app.add_html_math_renderer("mathml", inline_renderers=(visit_math, None),
                               block_renderers=(visit_math_block, None))
    app.connect("builder-inited", lambda app: _add_stylesheet(app, app.config))
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
