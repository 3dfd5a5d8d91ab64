"""The one cache root of lightnorm's tool results.

``$LIGHTNORM_CACHE`` (default ``~/.cache/lightnorm``) is the root; each kind of artifact has
its own folder below it: ``csim`` (compiled C-simulation libraries), ``cosim`` (Verilator
models and harnesses), ``synth`` (synthesis and timing results), ``xls`` (XLS IR and Verilog).
Every entry is keyed by the content that made it, so deleting the root is always safe.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

ENV = "LIGHTNORM_CACHE"
KINDS = ("csim", "cosim", "synth", "xls")


def cache_base() -> Path:
    """``$LIGHTNORM_CACHE``, default ``~/.cache/lightnorm``."""
    env = os.environ.get(ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lightnorm"


def cache_root(kind: str) -> Path:
    """The folder of one kind of cached artifact (:data:`KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"cache kind {kind!r}: expected one of {', '.join(KINDS)}")
    return cache_base() / kind


def write_entry(path: Path, text: str) -> None:
    """Write one cache entry whole: into a hidden file beside it, then renamed over it, so a
    concurrent reader (another process of a sweep) sees the old entry or the new one, never
    half of one. Its folder is made when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
