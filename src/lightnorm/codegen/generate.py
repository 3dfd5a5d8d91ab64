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
    """The manifest of an existing output directory, or None when there is none (or it is
    unreadable)."""
    path = out_dir / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _check_target(spec: Spec, out: Path, force: bool) -> dict[str, Any] | None:
    if not out.exists():
        return None
    if not out.is_dir():
        raise UsageError(f"output {out} exists and is not a directory")
    old = read_manifest(out)
    if force:
        return old
    if old is None:
        if any(out.iterdir()):
            raise UsageError(f"output {out} exists and is not a lightnorm output directory "
                             f"(no readable {MANIFEST}); choose another directory or use --force")
        return None
    if old.get("spec_hash") != spec.hash:
        raise UsageError(
            f"output {out} holds spec {old.get('spec_name')!r} "
            f"({str(old.get('spec_hash'))[:12]}), not {spec.name!r} ({spec.hash[:12]}); "
            "use --force to replace it")
    return old


def generate(spec: Spec, out_dir: str | os.PathLike[str], force: bool = False) -> Path:
    """Write the HLS C++ of ``spec`` into ``out_dir`` (``OUT/hls/...``, ``OUT/manifest.json``).

    Refuses (``UsageError``) when ``out_dir`` holds another spec's output or is a non-empty
    directory without a manifest, unless ``force``. Returns ``out_dir`` as a Path.
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

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name, data in sorted(files.items()):
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (tmp / MANIFEST).write_bytes(manifest_bytes(manifest))
        if out.exists():
            trash = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(out, trash)
            os.rename(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
