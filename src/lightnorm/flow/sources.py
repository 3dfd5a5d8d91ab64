"""Which of lightnorm's own sources a piece of code depends on, read from the syntax trees of
the package's files: every ``import`` of a lightnorm module, at any depth (imports inside
functions included), followed transitively. A stage key digests the sources its code depends
on this way, so the list cannot drift from the code (a module that starts importing another
brings it into the key).

Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``: :func:`dependencies`
counts them (and what they import); :func:`import_graph` records only the imports written in
each file (the edges of the import-cycle and layer checks).
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

PACKAGE = "lightnorm"


def package_root() -> Path:
    """The folder of the installed package (the sources the running code was loaded from)."""
    return Path(str(resources.files(PACKAGE)))


def module_files(root: Path) -> dict[str, Path]:
    """Module name -> source file of every ``.py`` file under ``root`` (the package folder)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def direct_imports(name: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The package's modules that the file of module ``name`` imports, anywhere in it.

    ``from X import y`` names the module ``X.y`` when that is a module, else ``X`` (``y`` is an
    attribute); a name that is not a module of the package resolves to its nearest enclosing
    module (``import lightnorm.spec.io.missing`` -> ``lightnorm.spec.io``)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if _is_package(path) else name.split(".")[:-1]
                here = here[: len(here) - node.level + 1]
                base = ".".join(here + ([base] if base else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                found.append(sub if sub in modules else base)
    out = set()
    for mod in found:
        while mod and mod not in modules:
            mod = mod.rpartition(".")[0]
        if mod and mod != name and (mod == PACKAGE or mod.startswith(PACKAGE + ".")):
            out.add(mod)
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules its file imports (direct imports only)."""
    return {name: set(deps) for name, deps in _parsed(root)[1].items()}


def dependencies(roots: Iterable[str], graph: Mapping[str, set[str]]) -> set[str]:
    """``roots`` and every module they import, transitively, with the enclosing packages
    (whose ``__init__`` runs on import)."""
    todo = list(roots)
    seen: set[str] = set()
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        if mod not in graph:
            raise ValueError(f"{mod}: not a module of {PACKAGE}")
        seen.add(mod)
        todo += graph[mod]
        parent = mod.rpartition(".")[0]
        if parent:
            todo.append(parent)
    return seen


@functools.cache
def _parsed(root: Path) -> tuple[dict[str, Path], dict[str, set[str]]]:
    modules = module_files(root)
    return modules, {name: direct_imports(name, path, modules) for name, path in modules.items()}


@functools.cache
def _digest(root: Path, roots: tuple[str, ...], templates: tuple[str, ...]) -> str:
    modules, graph = _parsed(root)
    files = {modules[m].relative_to(root).as_posix(): modules[m]
             for m in dependencies(roots, graph)}
    for folder in templates:
        files.update({p.relative_to(root).as_posix(): p
                      for p in (root / "templates" / folder).rglob("*") if p.is_file()})
    h = hashlib.sha256()
    for rel in sorted(files):
        h.update(rel.encode() + b"\0" + files[rel].read_bytes() + b"\0")
    return h.hexdigest()


def sources_digest(roots: Iterable[str], templates: Iterable[str] = ()) -> str:
    """sha256 of the sources of ``roots`` and their dependencies (:func:`dependencies`) and of
    every file under ``templates/<folder>`` for the given folders, in :func:`package_root`."""
    return _digest(package_root(), tuple(sorted(roots)), tuple(sorted(templates)))
