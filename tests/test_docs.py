"""Every code example in the README and in the documentation runs, and prints what it says it prints.

- README.md: its ```python blocks run in order, in one namespace (a later block may use what an
  earlier one defined), in a scratch folder (a block that needs PyTorch, which is optional, runs
  only where it is installed); where the text after a block says it "prints" a
  ``` block or an inline `...`, the output must match it (doctest's ELLIPSIS, and timings such as
  "0.45s" match any time).
- docs/**/*.rst: the ``>>>`` examples run as doctests (ELLIPSIS, NORMALIZE_WHITESPACE), one
  namespace per page, in a scratch folder. ``# doctest: +ROUNDING_ERRORS`` lets an example show the
  numbers it printed here where they are rounding errors (below 1e-8 in scientific notation, which
  another BLAS or CPU changes): each matches any other such number, and nothing else (the page
  shows real output, not ``...``; Sphinx hides the flag from readers). Python examples must be written that way: a
  ``code-block:: python`` in a page would escape this test, so it is refused.
- The gallery (examples/**/plot_*.py) runs when the documentation is built
  (``sphinx-build -W --keep-going -b html docs docs/_build/html``, part of .ci/run); its scripts
  check their own claims with assert.
"""

import contextlib
import doctest
import io
import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
NOT_PAGES = {"_build", "_generated", "_templates", "auto_examples", "generated", "sg_execution_times.rst"}
DOC_PAGES = sorted(p for p in DOCS.rglob("*.rst") if not NOT_PAGES & set(p.relative_to(DOCS).parts))

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
ROUNDING_ERRORS = doctest.register_optionflag("ROUNDING_ERRORS")
_SCIENTIFIC = re.compile(r"(?<![\w.])\d+(?:\.\d+)?e[-+]\d+\b")


class RoundingErrorsChecker(doctest.OutputChecker):
    """With +ROUNDING_ERRORS, a number in scientific notation below 1e-8 matches any other below
    1e-8 (printed rounding errors differ with the BLAS and the CPU); the rest must match as usual."""

    def check_output(self, want, got, optionflags):
        if optionflags & ROUNDING_ERRORS:
            want, got = (_SCIENTIFIC.sub(self._tiny, text) for text in (want, got))
        return super().check_output(want, got, optionflags)

    @staticmethod
    def _tiny(match):
        return "<rounding error>" if float(match.group()) < 1e-8 else match.group()
OPTIONAL = {"torch", "mpi4py"}   # README blocks that need these run only where they are installed


def readme_examples():
    """(code, expected output or None) for each ```python block of the README."""
    text = README.read_text(encoding="utf-8")
    out = []
    for m in re.finditer(r"```python\n(.*?)```", text, re.S):
        after = text[m.end():]
        after = after[:after.find("```python")] if "```python" in after else after
        expected = None
        said = re.match(r"\s*prints\s*(?:```[a-z]*\n(.*?)```|`([^`]*)`)", after, re.S)
        if said:
            expected = said.group(1) if said.group(1) is not None else said.group(2) + "\n"
        out.append((m.group(1), expected))
    return out


def _matches(expected, got):
    expected = re.sub(r"\b\d+(\.\d+)?s\b", "...s", expected)   # timings vary
    return doctest.OutputChecker().check_output(expected, got, doctest.ELLIPSIS)


def test_readme_has_examples():
    examples = readme_examples()
    assert len(examples) >= 4
    assert any(expected for _, expected in examples)


def test_readme_python_examples_run_and_print_what_they_say(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                  # examples write files (model.safetensors, …)
    namespace = {"__name__": "__readme__"}
    for n, (code, expected) in enumerate(readme_examples(), start=1):
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
                warnings.simplefilter("error")           # an example that warns is a stale example
                exec(compile(code, f"README.md python block {n}", "exec"), namespace)
        except ModuleNotFoundError as exc:
            if exc.name not in OPTIONAL:                 # a block for an optional package runs where
                raise                                    # it is installed
            continue
        if expected is not None:
            assert _matches(expected, buffer.getvalue()), (
                f"README python block {n} printed\n{buffer.getvalue()}\nbut the README says\n{expected}")


def test_rounding_errors_flag_matches_only_rounding_errors():
    checker, flags = RoundingErrorsChecker(), FLAGS | ROUNDING_ERRORS
    assert checker.check_output("error 1.33e-10  ok\n", "error 2.41e-11  ok\n", flags)
    assert not checker.check_output("error 1.33e-10  ok\n", "error 2.41e-05  ok\n", flags)
    assert not checker.check_output("error 1.33e-10  ok\n", "error 2.41e-11  BAD\n", flags)
    assert not checker.check_output("tolerance 1e-06\n", "tolerance 1e-07\n", flags)
    assert not checker.check_output("error 1.33e-10\n", "error 2.41e-11\n", FLAGS)   # flag off


def test_docs_pages_are_found():
    names = {p.relative_to(DOCS).as_posix() for p in DOC_PAGES}
    assert {"index.rst", "getting_started.rst", "user_guide/networks.rst"} <= names


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_docs_page_examples(page, tmp_path, monkeypatch):
    text = page.read_text(encoding="utf-8")
    untested = re.findall(r"^\s*\.\. (?:code-block|code|sourcecode)::\s*(?:python|py|pycon|ipython)\s*$", text, re.M)
    assert not untested, f"{page.name}: write Python examples as >>> doctests so that they run"
    monkeypatch.chdir(tmp_path)
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {"__name__": page.stem}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(checker=RoundingErrorsChecker(), optionflags=FLAGS)
    report = io.StringIO()
    runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()
