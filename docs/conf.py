"""Sphinx configuration for ffnn's documentation.

Build (warnings are errors):  sphinx-build -W --keep-going -b html docs docs/_build/html
"""

import os
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the gallery draws off-screen

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # document the source tree, installed or not
sys.path.insert(0, str(ROOT / "docs" / "_ext"))  # local extensions (mathml)

import ffnn  # noqa: E402

project = "ffnn"
author = "the ffnn developers"
copyright = "ffnn developers"
version = release = ffnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "mathml",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "sg_execution_times.rst", "**/sg_execution_times.rst",
                    "auto_examples/*.ipynb"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
highlight_language = "text"  # literal blocks hold console text; Python examples are >>> doctests
trim_doctest_flags = True    # readers do not see "# doctest: +FLAG" (Sphinx's default, relied on)

# --- API reference ------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": False}
autodoc_typehints = "none"          # numpydoc sections carry the types
autodoc_member_order = "bysource"
numpydoc_show_class_members = False  # autosummary pages list the members themselves
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = True

# --- the gallery --------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",      # every plot_*.py runs at build time
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": False,   # report every failing example; the build still fails on any
    "only_warn_on_example_error": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "capture_repr": ("_repr_html_",),
    "show_memory": False,
    # No execution-times page: sphinx-gallery's loads jQuery and DataTables from CDNs.
    "write_computation_times": False,
    "plot_gallery": "True",
    # "Examples using X" on each API page (the minigallery in _templates/class.rst, function.rst)
    "doc_module": ("ffnn",),
    "backreferences_dir": "api/generated/backreferences",
    "reference_url": {"ffnn": None},
}

# --- the command line's --help, written at build time for user_guide/command_line.rst ------------

def _write_cli_help():
    import argparse

    from ffnn.cli.parser import build_parser

    os.environ["COLUMNS"] = "80"  # argparse wraps to the terminal; fix the width
    parser = build_parser()
    out = ROOT / "docs" / "_generated"
    out.mkdir(exist_ok=True)
    texts = {"ffnn": parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            texts.update({f"ffnn_{name}": sub.format_help() for name, sub in action.choices.items()})
    for name, text in texts.items():
        path = out / f"{name}_help.txt"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


_write_cli_help()

# --- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"ffnn {release}"
html_static_path = ["_static"]
html_css_files = ["ffnn.css"]
html_show_sourcelink = False
# Mathematics as MathML written at build time (docs/_ext/mathml.py): no MathJax, nothing from a CDN.
html_math_renderer = "mathml"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
# No section navigation where it would only repeat the page list (and the examples need the width).
html_sidebars = {"index": [], "getting_started": [], "references": [], "auto_examples/**": []}


# --- hooks --------------------------------------------------------------------------------------

def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_*_request`` methods (metadata routing): their
    docstrings link into scikit-learn's own documentation, which is not part of this build."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


_ABSOLUTE_VALUE = re.compile(r"(?<![\\`|])\|(?=[^\s|`])([^|`\n]*?[^\s|`\\])\|(?![_`|])")


def _escape_absolute_values(app, what, name, obj, options, lines):
    """Docstrings write absolute values and norms as |x| (mean |δ[l]|, Σ|W|), which reST would
    read as a substitution reference; escape the bars. Lines of grid tables and line blocks, which
    start with a bar, are left alone."""
    for i, line in enumerate(lines):
        if not line.lstrip().startswith(("|", "+")):
            lines[i] = _ABSOLUTE_VALUE.sub(r"\\|\1\\|", line)


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-docstring", _escape_absolute_values, priority=400)
