"""The ``lightnorm`` command (:func:`main`)."""

from .core import main

__all__ = ["main"]
