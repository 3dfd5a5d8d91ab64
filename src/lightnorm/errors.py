"""Errors the ``lightnorm`` command turns into one line on stderr and an exit status.

:class:`lightnorm.spec.SpecError` (an invalid spec or run parameter) lives in the spec package,
which imports nothing else of lightnorm. The errors here are for everything around it: a bad
command line and an external tool that failed. Each carries the exit status the command returns;
messages are one line (the CLI flattens any newline).
"""

from __future__ import annotations


class LightnormError(Exception):
    """Base class: a failure the user can act on, reported as ``lightnorm: error: <message>``."""

    exit_code = 2


class UsageError(LightnormError):
    """Bad command-line input (an unknown option, a malformed ``--shape``...): exit 2."""

    exit_code = 2


class ToolError(LightnormError):
    """An external tool (g++, Verilator, Yosys, OpenSTA...) is missing or failed: exit 2.

    Raise it with the tool, what it was doing and the tail of its log, chained (``from exc``)
    to the underlying error. :func:`lightnorm.tools.runner.run_tool` fills the optional
    fields: ``tool`` (executable name), ``returncode`` (None when it did not exit: missing,
    timed out, or an error line although it exited 0), ``log`` (path) and ``tail`` (its last
    lines).
    """

    exit_code = 2

    def __init__(self, message: str, *, tool: str | None = None, returncode: int | None = None,
                 log: str | None = None, tail: str = "") -> None:
        super().__init__(message)
        self.tool = tool
        self.returncode = returncode
        self.log = log
        self.tail = tail
