"""The one cache root of lightnorm's tool results.

``$LIGHTNORM_CACHE`` (default ``~/.cache/lightnorm``) is the root; each kind of artifact has
its own folder below it: ``csim`` (compiled C-simulation libraries), ``cosim`` (Verilator
models and harnesses), ``synth`` (synthesis and timing results), ``xls`` (XLS IR and Verilog).
Every entry is keyed by the content that made it, so deleting the root is always safe.
"""

from __future__ import annotations

import os
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
