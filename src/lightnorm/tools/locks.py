"""Inter-process locks for lightnorm's caches (parallel pytest workers, process pools,
Dask workers on one host): an exclusive ``flock`` on a lock file, and one of several lock files
(at most N holders at a time)."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created, with its folder, if missing) for the
    duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def slot_lock(base: Path, slots: int, poll_s: float = 0.2) -> Iterator[int]:
    """Hold one of ``slots`` lock files (``base.0``, ``base.1``, ...) for the duration of the
    block: at most ``slots`` holders at once across processes. Yields the slot's number; waits
    (polling every ``poll_s`` seconds) while every slot is held."""
    if slots < 1:
        raise ValueError(f"slots = {slots}: expected at least 1")
    base.parent.mkdir(parents=True, exist_ok=True)
    while True:
        for i in range(slots):
            fh = open(f"{base}.{i}", "a+")  # noqa: SIM115 - closed below or after the block
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            try:
                yield i
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
                fh.close()
            return
        time.sleep(poll_s)
