"""The package's import structure: no import cycle among lightnorm's modules (imports inside
functions count), and every module imports only from its own layer or the layers below it
(shared/DESIGN.md; docs/architecture.md). The graph comes from the sources' import statements
(lightnorm.flow.sources, which the stage keys use too); the first tests check that reading on a
small package built here."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from lightnorm.flow import sources

#: the layers, lowest first: a module may import from its own layer and the ones before it.
#: A module belongs to the layer of the longest prefix listed (``lightnorm.cli.core`` -> cli).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("lightnorm", "lightnorm.errors", "lightnorm.jsonsafe")),
    ("tools", ("lightnorm.tools",)),
    ("spec", ("lightnorm.spec",)),
    ("codegen", ("lightnorm.codegen",)),
    ("backends", ("lightnorm.backends",)),
    ("verify", ("lightnorm.verify",)),
    ("cost", ("lightnorm.cost",)),
    ("uses", ("lightnorm.reports", "lightnorm.flow", "lightnorm.train", "lightnorm.bench")),
    ("cli", ("lightnorm.cli", "lightnorm.__main__")),
)


#: upward imports known today, each to be removed by moving code down (this list must match:
#: when one is fixed, delete it here)
KNOWN_UPWARD: list[str] = []


def layer_of(module: str) -> int:
    best, level = "", -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > len(best):
                best, level = p, i
    if level < 0:
        raise AssertionError(f"{module}: in no layer of LAYERS (add its package there)")
    return level


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def upward(graph: Mapping[str, set[str]]) -> list[str]:
    """``a -> b`` for every import of a module from a higher layer than the importer's."""
    return sorted(f"{a} ({LAYERS[layer_of(a)][0]}) -> {b} ({LAYERS[layer_of(b)][0]})"
                  for a, deps in graph.items() for b in deps if layer_of(b) > layer_of(a))


# --- the reading of import statements, on a package made here -----------------------------------
def _package(root: Path, files: Mapping[str, str]) -> Path:
    pkg = root / "lightnorm"
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(textwrap.dedent(text))
    return pkg


SMALL = {
    "__init__.py": "",
    "errors.py": "",
    "tools/__init__.py": "from .run import go\n",
    "tools/run.py": """
        import os
        from lightnorm.errors import Error
        """,
    "spec/__init__.py": "",
    "spec/io.py": """
        from typing import TYPE_CHECKING
        from .. import tools
        import lightnorm.tools.run as r
        if TYPE_CHECKING:
            from lightnorm.spec import nothing_here
        def load():
            from ..tools.run import go, missing_name
            import lightnorm.spec.io.not_a_module
        """,
}


def test_import_statements_are_read_at_any_depth(tmp_path: Path) -> None:
    g = sources.import_graph(_package(tmp_path, SMALL))
    assert g == {
        "lightnorm": set(), "lightnorm.errors": set(),
        "lightnorm.tools": {"lightnorm.tools.run"},
        "lightnorm.tools.run": {"lightnorm.errors"},
        "lightnorm.spec": set(),
        # `from .. import tools` is the package; names that are not modules resolve to the
        # module they are in; an import of itself is no edge
        "lightnorm.spec.io": {"lightnorm.tools", "lightnorm.tools.run", "lightnorm.spec"},
    }
    assert cycles(g) == [] and upward(g) == []
    # importing a module runs its packages' __init__ and what they import
    assert sources.dependencies(["lightnorm.spec.io"], g) == {
        "lightnorm", "lightnorm.errors", "lightnorm.spec", "lightnorm.spec.io",
        "lightnorm.tools", "lightnorm.tools.run"}
    with pytest.raises(ValueError, match="not a module"):
        sources.dependencies(["lightnorm.nope"], g)


def test_a_cycle_and_an_upward_import_are_found(tmp_path: Path) -> None:
    bad = dict(SMALL)
    bad["tools/run.py"] = """
        def late():
            from lightnorm.spec.io import load   # tools -> spec: upward, and a cycle
        """
    g = sources.import_graph(_package(tmp_path, bad))
    assert cycles(g) == [["lightnorm.spec.io", "lightnorm.tools", "lightnorm.tools.run"]]
    assert upward(g) == ["lightnorm.tools.run (tools) -> lightnorm.spec.io (spec)"]


# --- the package ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return sources.import_graph(sources.package_root())


def test_no_import_cycle(graph: dict[str, set[str]]) -> None:
    found = cycles(graph)
    assert found == [], "import cycles (function-level imports count):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_every_module_has_a_layer_and_imports_none_above_it(graph: dict[str, set[str]]) -> None:
    assert len(graph) > 50  # the whole package was read
    for module in graph:
        layer_of(module)
    bad = upward(graph)
    assert bad == KNOWN_UPWARD, "imports from a higher layer:\n" + "\n".join(bad)


def test_import_lightnorm_does_not_import_torch() -> None:
    """PyTorch is optional (lightnorm[train]): the package, its command line (benchmarks
    included) and lightnorm.train import without it."""
    code = ("import sys, lightnorm, lightnorm.cli.core, lightnorm.train, lightnorm.train.accuracy,"
            " lightnorm.bench; sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
