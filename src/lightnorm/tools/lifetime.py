"""Processes that do not outlive the process that started them (Linux; elsewhere a no-op).

A ``kill -9`` of ``lightnorm flow`` gives its process no chance to stop anything, so the
processes below it must notice by themselves:

* every tool :func:`lightnorm.tools.runner.run_tool` starts asks the kernel for SIGKILL when
  its parent dies (``prctl(PR_SET_PDEATHSIG)``, :func:`die_with_parent`);
* a flow worker watches its parent's pid (:func:`watch_parent`) and, when the parent is gone,
  kills what it started itself (:func:`kill_descendants`: cocotb's build and simulation run
  outside ``run_tool``, and a tool's own children - g++'s cc1plus - get no parent-death signal)
  and exits. It is a child subreaper (:func:`become_subreaper`), so a grandchild whose parent
  was just killed is reparented to the worker, not to init, and is found and killed too.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _load_prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not Linux
        return None


#: resolved here, in the parent: the forked child only calls it (no loading between fork and
#: exec)
_PRCTL = _load_prctl()


def die_with_parent(parent: int) -> None:
    """``preexec_fn`` of a tool: SIGKILL when ``parent`` (the process that forks) exits; dies
    at once if it already has (the window between fork and this call)."""
    if _PRCTL is None:
        return
    _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def become_subreaper() -> None:
    """Orphans below this process are reparented to it (not to init), so
    :func:`kill_descendants` still finds them."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live process (from /proc; empty where there is none);
    zombies (exited, not yet reaped) are left out."""
    out: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for name in entries:
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # the command name may hold spaces and ')': the fields follow the last ')'
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            out[int(name)] = int(fields[1])
    return out


def descendants(pid: int | None = None) -> list[int]:
    """The pids below ``pid`` (default this process): children, their children..."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def kill_descendants(rounds: int = 50) -> None:
    """SIGKILL everything below this process, again until nothing is left (a process may fork
    while the others are killed; in a subreaper its orphans come back here)."""
    for _ in range(rounds):
        pids = descendants()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:  # reap: a zombie child is not "left"
                pass
        except ChildProcessError:
            pass


def watch_parent(parent: int, on_death: Callable[[], None],
                 interval_s: float = 0.2) -> threading.Thread:
    """Call ``on_death`` (in a daemon thread) once this process's parent is no longer
    ``parent``: it died and the process was reparented."""

    def loop() -> None:
        while os.getppid() == parent:
            time.sleep(interval_s)
        on_death()

    thread = threading.Thread(target=loop, name="lightnorm-parent-watch", daemon=True)
    thread.start()
    return thread
