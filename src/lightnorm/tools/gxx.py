"""g++ and the Xilinx ap_types headers, for the C-simulation of the generated HLS C++.

The headers come inside the PyPI package ``hls4ml`` (``templates/vivado/ap_types``), located
without importing it (its imports pull heavy extras). Every compile goes through
:func:`lightnorm.tools.runner.run_tool`; a warning is an error (``-Werror``, and any
``warning:`` line fails the run).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import uuid
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from lightnorm.errors import ToolError

from .runner import ToolCommand, run_tool

CXX = "g++"
# -fvisibility=hidden: each library exports only its C ABI (LN_EXPORT), so two designs loaded
# in one process (say, two specs of the same name) can never bind to each other's templates.
# -pthread: the C ABI shim runs channel slices on std::thread (portable; no -march: the cache
# must run on any x86-64 host).
CXXFLAGS = ("-O2", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC",
            "-fvisibility=hidden", "-pthread")
#: a diagnostic in g++'s output fails the build even if g++ exited 0
DIAGNOSTICS = (r"\b(warning|error):",)


def ap_types_dir() -> Path:
    """The folder with ``ap_int.h``, from the installed ``hls4ml`` package (not imported)."""
    found = importlib.util.find_spec("hls4ml")
    if found is None or not found.submodule_search_locations:
        raise ToolError("C-simulation needs the ap_types headers shipped in the Python package "
                        "hls4ml, which is not installed: pip install --no-deps hls4ml==1.3.0")
    path = Path(list(found.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    if not (path / "ap_int.h").is_file():
        raise ToolError(f"the hls4ml package has no ap_types headers at {path} (expected "
                        "hls4ml 1.3.0: pip install --no-deps hls4ml==1.3.0)")
    return path


@lru_cache(maxsize=1)
def compiler_id() -> str:
    """The compiler's identity, first line of ``g++ --version`` (part of cache keys)."""
    with tempfile.TemporaryDirectory(prefix="ln_gxx_") as tmp:
        run = run_tool(ToolCommand((CXX, "--version"), Path(tmp), timeout_s=60,
                                   purpose="version"))
        lines = [ln.strip() for ln in run.log_text().splitlines() if ln.strip()]
    return lines[0] if lines else CXX


def compile_shared(sources: Sequence[Path], includes: Sequence[Path], target: Path,
                   cwd: Path) -> None:
    """g++ with :data:`CXXFLAGS` (-O2 -Wall -Wextra -Werror ...) into ``target`` (atomically);
    the log is ``cwd/build.log``. ``includes`` are searched by quoted includes only."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    argv = [CXX, *CXXFLAGS, "-isystem", str(ap_types_dir())]
    for inc in includes:
        # -iquote: only #include "..." looks there, so a generated header can never shadow a
        # system one (<math.h>) whatever the spec is named
        argv += ["-iquote", str(inc)]
    argv += [str(s) for s in sources]
    argv += ["-o", str(tmp)]
    try:
        run_tool(ToolCommand(tuple(argv), Path(cwd), log=Path(cwd) / "build.log",
                             error_patterns=DIAGNOSTICS, timeout_s=1800,
                             purpose="compiling " + ", ".join(s.name for s in sources)))
    except ToolError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
