"""The quantization API: a float array through one storage format and back (``lightnorm.quantize``).

``quantize(fmt, x)`` encodes ``x`` into ``fmt`` with the format family's golden kernel (the
encoder every model is checked against) and returns the values the patterns decode to, as
float64 of x's shape. Blocks run along the last axis: each row x[..., :] is a channel, cut into
blocks of ``fmt.block`` from its first element, a short last block padded as the hardware pads
it (docs/numerics.md sections 3 and 11). ``fmt`` is a storage-format table as a ``[storage.*]``
section of a spec TOML holds it (``{"kind": "mx", "element": "fp8_e4m3"}``) or a format object.
NaN and infinity are refused (ValueError), as for every tensor the hardware reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..spec.formats import FAMILIES, NumberFormat, StorageFormat, build_storage
from .encoding import check_finite, encode


def storage_format(fmt: Mapping[str, Any] | NumberFormat, path: str = "format"
                   ) -> StorageFormat:
    """A storage format from a table (SpecError naming ``path`` if it is not one) or a
    format object of a registered family (TypeError otherwise)."""
    if isinstance(fmt, Mapping):
        return build_storage(fmt, path)
    if FAMILIES.get(getattr(fmt, "kind", None)) is not type(fmt):  # type: ignore[arg-type]
        raise TypeError(f"{fmt!r} is neither a storage-format table nor a format object")
    return fmt  # type: ignore[return-value]


def quantize(fmt: Mapping[str, Any] | NumberFormat, x: Any) -> np.ndarray:
    """The values of ``x`` stored in ``fmt`` (float64, x's shape), blocked along the last axis."""
    f = storage_format(fmt)
    arr = check_finite("x", x)
    if arr.ndim == 0:
        raise ValueError("x must have at least one axis (blocks run along the last one)")
    if arr.size == 0:
        return arr.copy()
    rows = arr.reshape(-1, arr.shape[-1])
    return encode(rows, f).vals.reshape(arr.shape)


__all__ = ["quantize", "storage_format"]
