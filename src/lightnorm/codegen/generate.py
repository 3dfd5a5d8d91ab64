"""Render a spec into an output tree (``OUT/hls/...``) plus ``OUT/manifest.json``.

The tree is rendered into a fresh directory next to ``OUT`` and renamed into place, so a reader
never sees a half-written tree. Same spec -> byte-identical files: nothing time- or
host-dependent is written. Regenerating an identical tree leaves the existing one untouched
(timestamps stay, incremental builds stay incremental).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any

import lightnorm
from lightnorm.errors import UsageError
from lightnorm.spec import Spec

from .context import context, file_names
from .env import render, template_hash

MANIFEST = "manifest.json"


HLS_DIR = "hls"
RTL_DIR = "rtl"
XLS_DIR = "xls"
#: the template folders whose text shapes a generated tree (its manifest's template_hash)
TEMPLATE_PREFIXES = ("hls", "rtl", "dslx")


def render_files(spec: Spec, parts: tuple[str, ...] = (HLS_DIR, RTL_DIR, XLS_DIR)
                 ) -> dict[str, bytes]:
    """Generated files of a spec (``parts``: "hls", "rtl", "xls"): path relative to OUT ->
    bytes."""
    out: dict[str, bytes] = {}
    if HLS_DIR in parts:
        ctx = context(spec)
        for template, name in file_names(spec).items():
            out[f"{HLS_DIR}/{name}"] = render(template, ctx).encode("utf-8")
    if RTL_DIR in parts:
        from .rtl import render_rtl  # the Verilog has its own environment (other delimiters)

        for name, text in render_rtl(spec).items():
            out[f"{RTL_DIR}/{name}"] = text.encode("utf-8")
    if XLS_DIR in parts:
        from lightnorm.codegen.dslx_design import render_xls

        for name, text in render_xls(spec).items():
            out[f"{XLS_DIR}/{name}"] = text.encode("utf-8")
    return out


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shape the generated text."""
    return {
        "python": platform.python_version(),
        "jinja2": metadata.version("jinja2"),
    }


def build_manifest(spec: Spec, files: dict[str, bytes]) -> dict[str, Any]:
    out = {
        "generator": "lightnorm",
        "lightnorm_version": lightnorm.__version__,
        "spec_name": spec.name,
        "spec_hash": spec.hash,
        "spec": spec.to_dict(),
        "template_hash": template_hash(TEMPLATE_PREFIXES),
        "tools": tool_versions(),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    if any(name.startswith(f"{RTL_DIR}/") for name in files):
        from .rtl import timing_plan

        # where the RTL's registers are, and the stage delays the library predicts for them
        out["timing"] = timing_plan(spec).summary()
    return out


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of an existing output directory, or None when there is none, it is
    unreadable, or it is not lightnorm's (no ``generator = "lightnorm"``, no file table)."""
    path = out_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("generator") != "lightnorm" or \
            not isinstance(data.get("files"), dict):
        return None
    return data


def _owned(out: Path, manifest: dict[str, Any]) -> set[str]:
    """The files a manifest says lightnorm wrote: relative paths under the generated folders
    only (a damaged or edited manifest cannot make lightnorm touch anything else)."""
    owned = set()
    for name in manifest.get("files", {}):
        rel = Path(str(name))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or \
                rel.parts[0] not in (HLS_DIR, RTL_DIR, XLS_DIR) or len(rel.parts) < 2:
            continue
        owned.add(rel.as_posix())
    return owned


_TMP_PREFIX = ".lightnorm-tmp-"


def _check_target(spec: Spec, out: Path, force: bool) -> dict[str, Any] | None:
    """The manifest of ``out`` when it holds lightnorm output (None when absent or empty);
    UsageError when lightnorm may not write there."""
    if not out.exists():
        if out.is_symlink():
            raise UsageError(f"output {out} is a dangling symbolic link")
        return None
    if not out.is_dir():
        raise UsageError(f"output {out} exists and is not a directory")
    old = read_manifest(out)
    if old is None:
        if any(not p.name.startswith(_TMP_PREFIX) for p in out.iterdir()):
            raise UsageError(f"output {out} exists and is not a lightnorm output directory "
                             f"(no lightnorm {MANIFEST}); lightnorm writes only into a new or "
                             "empty directory or one it generated (--force replaces only its "
                             "own files): choose another directory")
        return None
    if force:
        return old
    if old.get("spec_hash") != spec.hash:
        raise UsageError(
            f"output {out} holds spec {old.get('spec_name')!r} "
            f"({str(old.get('spec_hash'))[:12]}), not {spec.name!r} ({spec.hash[:12]}); "
            "use --force to replace it")
    return old


def _check_paths(out: Path, files: dict[str, bytes], owned: set[str]) -> None:
    """Refuse to overwrite what lightnorm did not write, or to write outside ``out``."""
    root = out.resolve()
    for name in sorted(files):
        target = out / name
        if not target.resolve().is_relative_to(root):
            raise UsageError(f"output {out}: {name} leads outside the directory (a symbolic "
                             "link); remove it or choose another directory")
        for parent in reversed(Path(name).parents[:-1]):
            if (out / parent).exists() and not (out / parent).is_dir():
                raise UsageError(f"output {out}: {parent} is a file lightnorm did not write "
                                 "where it needs a folder; move it away or choose another "
                                 "directory")
        if (target.exists() or target.is_symlink()) and name not in owned:
            raise UsageError(f"output {out}: {name} exists and lightnorm did not write it (it "
                             f"is not in {MANIFEST}); move it away or choose another directory")
        if target.is_dir():
            raise UsageError(f"output {out}: {name} is a folder where lightnorm writes a file")


def generate(spec: Spec, out_dir: str | os.PathLike[str], force: bool = False) -> Path:
    """Write the HLS C++, RTL and DSLX of ``spec`` into ``out_dir`` (``OUT/hls/...``,
    ``OUT/manifest.json``).

    Refuses (``UsageError``) when ``out_dir`` holds another spec's output (unless ``force``) or
    is a non-empty directory without lightnorm's manifest (always). Replacing an earlier tree
    removes only the files its manifest lists; anything else in ``out_dir`` stays, and a file
    lightnorm did not write is never overwritten. A failure to write (a read-only or missing
    place) is a UsageError naming ``out_dir``. Returns ``out_dir`` as a Path.
    """
    out = Path(out_dir)
    files = render_files(spec)
    manifest = build_manifest(spec, files)
    old = _check_target(spec, out, force)
    if old == manifest and all(
        (out / name).is_file() and hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
        for name, digest in manifest["files"].items()
    ):
        return out  # identical tree already in place
    try:
        if out.exists():
            _install_into(out, files, manifest, old)
        else:
            _create(out, files, manifest)
    except OSError as exc:
        raise UsageError(f"output {out}: cannot write it ({exc.strerror or exc})") from exc
    return out


def _write_tree(root: Path, files: dict[str, bytes]) -> None:
    for name, data in sorted(files.items()):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _create(out: Path, files: dict[str, bytes], manifest: dict[str, Any]) -> None:
    """A new directory: written beside it, then renamed into place (one atomic step)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _write_tree(tmp, files)
        (tmp / MANIFEST).write_bytes(manifest_bytes(manifest))
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _install_into(out: Path, files: dict[str, bytes], manifest: dict[str, Any],
                  old: dict[str, Any] | None) -> None:
    """An existing directory (empty, or lightnorm's): each file replaced atomically, the files
    of the previous manifest that are no longer generated removed, nothing else touched.

    While it runs, the manifest lists the old and the new files (and can never equal a real
    one), so a run killed half-way is finished by the next, which knows every file it owns.
    """
    for stale in out.glob(_TMP_PREFIX + "*"):  # left by a killed run (only lightnorm names so)
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    owned = set() if old is None else _owned(out, old)
    old_files = {} if old is None else old["files"]
    _check_paths(out, files, owned)
    tmp = out / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _write_tree(tmp, files)
        union = dict(manifest, files={**{n: old_files[n] for n in owned},
                                      **manifest["files"]}, incomplete=True)
        _replace(out / MANIFEST, manifest_bytes(union))
        for name in sorted(files):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / name, out / name)
        for name in sorted(owned - set(files)):
            (out / name).unlink(missing_ok=True)
            for parent in Path(name).parents[:-1]:
                try:
                    (out / parent).rmdir()  # only when empty: a user's file keeps its folder
                except OSError:
                    break
        _replace(out / MANIFEST, manifest_bytes(manifest))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
