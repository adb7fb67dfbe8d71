"""The documentation reads offline: its formulas are MathML written at build time by
docs/_ext/mathml.py (no MathJax), and no page loads a script, style sheet or image from the web.

Building the whole site runs the gallery (minutes), so these tests check the parts: every formula
in the pages converts; the renderer, on a one-page Sphinx project, writes MathML, numbers and
links a labelled equation and reports a bad formula at its line; conf.py selects it and turns off
sphinx-gallery's execution-times page (which loads jQuery and DataTables from CDNs); and the
sources name no http(s) script, link or image.
"""

import ast
import importlib.util
import io
import re
from pathlib import Path

import pytest

pytest.importorskip("latex2mathml")
sphinx_application = pytest.importorskip("sphinx.application")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOT_PAGES = {"_build", "_generated", "_templates", "auto_examples", "generated"}
PAGES = sorted(p for p in DOCS.rglob("*.rst") if not NOT_PAGES & set(p.relative_to(DOCS).parts))


def _load_extension():
    spec = importlib.util.spec_from_file_location("ffnn_docs_mathml", DOCS / "_ext" / "mathml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mathml = _load_extension()

# :math:`...` (content may wrap inside a table cell), and .. math:: blocks: an optional argument,
# options, then the indented body (Sphinx joins the argument and the body with a blank line).
_INLINE = re.compile(r":math:`([^`]+)`")
_BLOCK = re.compile(r"^(?P<indent>[ \t]*)\.\. math::(?P<arg>[^\n]*)\n"
                    r"(?P<options>(?:(?P=indent)[ \t]+:[\w-]+:[^\n]*\n)*)"
                    r"(?P<body>(?:(?:(?P=indent)[ \t]+[^\n]*)?\n)*)", re.M)


def page_formulas(page):
    """(line, LaTeX, display, nowrap) for every formula of a page."""
    text = page.read_text(encoding="utf-8")
    found = []
    for m in _INLINE.finditer(text):
        found.append((text.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split()), "inline", False))
    for m in _BLOCK.finditer(text):
        lines = m.group("body").splitlines()
        indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
        body = "\n".join(line[min(indents):] for line in lines).strip() if indents else ""
        latex = "\n\n".join(part for part in (m.group("arg").strip(), body) if part)
        nowrap = ":nowrap:" in m.group("options")
        found.append((text.count("\n", 0, m.start()) + 1, latex, "block", nowrap))
    # every role and directive was read (a form the patterns miss would escape the test)
    assert len(found) == text.count(":math:`") + text.count(".. math::"), page
    return found


EXAMPLES = sorted((ROOT / "examples").rglob("*.py"))  # the gallery's text is reStructuredText too
FORMULAS = ([(page.relative_to(DOCS).as_posix(), *formula) for page in PAGES for formula in page_formulas(page)]
            + [(page.relative_to(ROOT).as_posix(), *formula) for page in EXAMPLES for formula in page_formulas(page)])


def test_the_pages_write_their_formulas_as_math():
    pages = {page for page, *_ in FORMULAS}
    assert {"user_guide/networks.rst", "user_guide/training.rst", "api/index.rst",
            "references.rst", "getting_started.rst", "examples/training/plot_vanishing_gradients.py",
            "examples/derivations/plot_five_derivations.py"} <= pages
    assert sum(display == "block" for *_, display, _ in FORMULAS) >= 2
    assert len(FORMULAS) >= 100


@pytest.mark.parametrize("page, line, latex, display, nowrap", FORMULAS,
                         ids=[f"{page}:{line}" for page, line, *_ in FORMULAS])
def test_each_formula_converts_to_mathml(page, line, latex, display, nowrap):
    out = mathml.latex_to_mathml(mathml.display_latex(latex, nowrap) if display == "block" else latex,
                                 display)
    assert out.startswith("<math ") and out.endswith("</math>")
    assert f'display="{display}"' in out


def test_an_examples_formulas_reach_the_page_as_written():
    """A gallery page is the example's docstring as Python reads it: with a backslash in its LaTeX,
    the docstring must be raw, or ``\\top`` arrives as a tab and ``op``."""
    import ast

    for page in EXAMPLES:
        text = page.read_text(encoding="utf-8")
        doc = ast.get_docstring(ast.parse(text), clean=False)
        if doc and "\\" in text[:text.index('"""', 4)]:
            assert text.startswith('r"""'), page.name


def test_no_unicode_formulas_left_in_literal_blocks():
    """The formulas the pages used to write as Unicode in literal blocks are mathematics now."""
    for page in PAGES + EXAMPLES:
        text = page.read_text(encoding="utf-8")
        if page.suffix == ".py":
            text = text[:text.index('"""', 3)]  # the example's page text, not its code
        for m in re.finditer(r"::\n\n((?:[ \t]+[^\n]*\n|\n)+)", text):
            assert not re.search(r"[∂Σδηλ‖θ]|dJ/", m.group(1)), (page.name, m.group(1))


@pytest.mark.parametrize("latex, problem", [
    (r"\frac{a}", "mfrac"),                         # latex2mathml writes a one-part fraction
    (r"\foo{x}", r"\foo"),                          # ... and a variable named \foo
    (r"\texttt{clip\_norm}", r"\_"),
    ("{a + b", "not closed"),
    ("a + b}", "no opening brace"),
    (r"\begin{aligned} a &= b \end{aligned}", "alignment"),
    ("x^", "MissingSuperScriptOrSubscript"),
    (r"\left( x", "ExtraLeftOrMissingRight"),
    ("  ", "empty"),
])
def test_a_formula_that_does_not_convert_is_an_error_that_says_why(latex, problem):
    with pytest.raises(mathml.MathMLError, match=re.escape(problem)):
        mathml.latex_to_mathml(latex)


def test_conversion():
    out = mathml.latex_to_mathml(r"\delta^{[l]} = \partial J / \partial z^{[l]}", "block")
    assert 'display="block"' in out and r'alttext="\delta^{[l]} = \partial J / \partial z^{[l]}"' in out
    assert "<msup><mi>&#x003B4;</mi>" in out                       # δ with a superscript
    assert 'alttext="a &lt; b"' in mathml.latex_to_mathml("a < b")   # escaped in the attribute
    with pytest.raises(ValueError, match="display"):
        mathml.latex_to_mathml("x", "wide")
    # display blocks as Sphinx reads them: parts are aligned equations, \\ or & splits one
    assert mathml.display_latex("a = b") == "a = b"
    assert mathml.display_latex(r"a &= b \\ &= c") == r"\begin{split}a &= b \\ &= c\end{split}"
    two = mathml.display_latex("a &= b\n\nc &= d")
    assert two == r"\begin{align*}a &= b\\c &= d\end{align*}"
    assert mathml.latex_to_mathml(two, "block").count("<mtr>") == 2
    assert mathml.display_latex(r"\begin{align*}x\end{align*}", nowrap=True) == r"\begin{align*}x\end{align*}"


PAGE = r"""
Title
=====

Inline :math:`a^{[l]} = \sigma_l(z^{[l]})`, and a labelled equation:

.. math::
   :label: backprop

   \delta^{[l]} &= \bigl(\delta^{[l+1]} W^{[l+1]\top}\bigr) \odot \sigma_l'(z^{[l]}) \\
   \frac{\partial J}{\partial W^{[l]}} &= a^{[l-1]\top} \delta^{[l]}

See :eq:`backprop`.
"""


def _build(tmp_path, page):
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['mathml']\nhtml_math_renderer = 'mathml'\n", encoding="utf-8")
    (src / "index.rst").write_text(page, encoding="utf-8")
    warnings = io.StringIO()
    app = sphinx_application.Sphinx(str(src), str(src), str(tmp_path / "html"), str(tmp_path / "doctrees"),
                                     "html", status=None, warning=warnings, freshenv=True)
    app.build()
    return (tmp_path / "html" / "index.html").read_text(encoding="utf-8"), warnings.getvalue()


def test_sphinx_writes_mathml_and_no_mathjax(tmp_path):
    html, warnings = _build(tmp_path, PAGE)
    assert warnings == ""
    assert html.count("<math ") == 2
    assert 'display="inline"' in html and 'display="block"' in html
    assert "<mtable" in html                                     # the two aligned lines
    assert '<div class="math notranslate nohighlight" id="equation-backprop">' in html
    assert '<span class="eqno">(1)' in html and 'href="#equation-backprop"' in html
    assert '<a class="reference internal" href="#equation-backprop">(1)</a>' in html    # :eq:
    assert '<link rel="stylesheet" type="text/css" href="_static/mathml.css' in html   # table alignment
    assert (tmp_path / "html" / "_static" / "mathml.css").is_file()
    assert "mathjax" not in html.lower()
    assert not re.search(r"<(script|link|img)\b[^>]*(src|href)=\"https?:", html)


def test_sphinx_reports_a_bad_formula_at_its_line(tmp_path):
    html, warnings = _build(tmp_path, "Title\n=====\n\nFine :math:`x^2`.\n\nBad :math:`\\frac{a}`.\n")
    assert re.search(r"index\.rst:6: WARNING: math: cannot convert \\frac\{a\} to MathML: <mfrac> has 1",
                     warnings), warnings
    assert r'<code class="math-error">\frac{a}</code>' in html     # the source, not a broken formula


def _conf_assignments():
    tree = ast.parse((DOCS / "conf.py").read_text(encoding="utf-8"))
    return {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
            for target in node.targets if isinstance(target, ast.Name)}


def test_conf_renders_mathml_and_has_no_execution_times_page():
    conf = _conf_assignments()
    assert ast.literal_eval(conf["html_math_renderer"]) == "mathml"
    assert "mathml" in ast.literal_eval(conf["extensions"])
    gallery = conf["sphinx_gallery_conf"]
    options = {ast.literal_eval(k): v for k, v in zip(gallery.keys, gallery.values)}
    assert ast.literal_eval(options["write_computation_times"]) is False
    assert ast.literal_eval(conf["trim_doctest_flags"]) is True     # "# doctest: +FLAG" hidden
    assert "**/sg_execution_times.rst" in ast.literal_eval(conf["exclude_patterns"])


def test_the_sources_load_nothing_from_the_web():
    sources = [p for p in DOCS.rglob("*") if p.is_file() and p.suffix in {".rst", ".py", ".html", ".css", ".js", ".txt"}
               and not NOT_PAGES & set(p.relative_to(DOCS).parts)]
    sources += sorted((ROOT / "examples").rglob("*.py")) + sorted((ROOT / "examples").rglob("*.txt"))
    remote = re.compile(r"<(?:script|link|img|iframe)\b[^>]*(?:src|href)\s*=\s*[\"']?(?:https?:)?//"
                        r"|@import\s+(?:url\()?[\"']?(?:https?:)?//|url\(\s*[\"']?(?:https?:)?//"
                        r"|html_(?:js|css)_files[^\n]*https?://|mathjax_path", re.I)
    assert len(sources) > 20
    for path in sources:
        match = remote.search(path.read_text(encoding="utf-8", errors="replace"))
        assert not match, f"{path.relative_to(ROOT)} loads {match.group()!r} from the web"
