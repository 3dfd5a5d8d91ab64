"""lightnorm: generate, verify and cost LightNorm-style batch-normalization hardware.

``lightnorm.quantize(fmt, x)`` (:func:`lightnorm.verify.quantize.quantize`) is loaded on first
use: every module imports this package for ``__version__``, which must stay light and below
every other layer.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "quantize":
        return importlib.import_module("lightnorm.verify.quantize").quantize
    raise AttributeError(f"module 'lightnorm' has no attribute {name!r}")
