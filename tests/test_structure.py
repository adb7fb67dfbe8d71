"""The package's structure: no import cycles between ffnn's modules (counting imports inside
functions too), and imports point inward — the command line above the estimators, the estimators
above training, training above the network, the network above the activations and losses."""

from __future__ import annotations

import ast
import pathlib

import pytest

import ffnn

ROOT = pathlib.Path(ffnn.__file__).parent


def _module_name(path):
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(name):
    """The deepest ffnn module that ``name`` (a dotted name that may end in an attribute) names."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module):
    """Every ffnn module ``module`` imports, at the top or inside a function."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            names = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "ffnn":
                target = _resolve(name)
                if target and target != module:
                    found.add(target)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# Each layer may import its own and the layers after it, never one before it.
LAYERS = [
    ("ffnn.cli", "ffnn.__main__"),
    ("ffnn.sklearn", "ffnn.export"),
    ("ffnn.training", "ffnn.gradcheck", "ffnn.io", "ffnn.explanation"),
    ("ffnn.network", "ffnn.datasets", "ffnn.data"),
    ("ffnn.activations", "ffnn.losses", "ffnn.updates", "ffnn.optim", "ffnn.schedules", "ffnn.metrics",
     "ffnn.history", "ffnn.plot", "ffnn.init", "ffnn.layers", "ffnn.splits", "ffnn._schema", "ffnn._files",
     "ffnn._array", "ffnn._checks", "ffnn._errors", "ffnn._version", "ffnn._columnar"),
]


def test_every_module_has_a_layer():
    """A new module must say where it sits (the package root, which re-exports, has none)."""
    assert sorted(m for m in MODULES if _layer(m) is None) == ["ffnn"]


def _layer(module):
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) is not None))
def test_imports_point_inward(module):
    mine = _layer(module)
    outward = sorted(t for t in GRAPH[module] if _layer(t) is not None and _layer(t) < mine)
    assert outward == [], f"{module} imports {outward}, which sit above it"


def _private_names_imported(module):
    """Names with a leading underscore that ``module`` imports from another ffnn module (a private
    module itself, ``from . import _device``, is not a name)."""
    found = []
    path = MODULES[module]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("ffnn")):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    target = f"{_resolve_from(module, node)}.{alias.name}"
                    if target not in MODULES:  # a private module is fine; a private name is not
                        found.append(alias.name)
    return found


def _resolve_from(module, node):
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if not node.level:
        return node.module
    base = package
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    return f"{base}.{node.module}" if node.module else base


def test_no_private_name_crosses_a_module_border():
    crossing = {m: names for m in MODULES if (names := _private_names_imported(m))}
    assert crossing == {}
