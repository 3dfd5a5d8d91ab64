"""Number formats: the registry of format families (kind -> family) and storage-role builders.

Each family is one module of this package (:mod:`.fp`, :mod:`.bfp`, :mod:`.mx`) deriving from
:class:`.base.NumberFormat`; adding one = a module here plus its entry in :data:`FAMILIES`,
its template fragments and its golden kernel (docs/architecture.md, "add a number-format
family"). A storage role (``[storage.x]`` ...) is any family, chosen by its ``kind`` key; the
arithmetic roles (compute, accum, scalar) are FP formats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from ..errors import SpecError
from ..schema import build, to_table
from .base import RND_TAG, ROUNDING_MODES, FormatView, Fragments, NumberFormat, Rules
from .bfp import CARRY_RULES, BFPFormat, BFPView
from .fp import FPFormat, FPView
from .mx import ELEMENTS, MXFormat, MXView

#: every format family by its ``kind``, in registry order (also the order of docs/spec.md)
FAMILIES: dict[str, type[NumberFormat]] = {cls.kind: cls for cls in (FPFormat, BFPFormat,
                                                                       MXFormat)}

#: the format of a storage role: any family (for the type checker; a family adds itself)
StorageFormat = FPFormat | BFPFormat | MXFormat


def family(kind: str) -> type[NumberFormat]:
    """The family registered under ``kind`` (KeyError naming the registered kinds)."""
    try:
        return FAMILIES[kind]
    except KeyError:
        raise KeyError(f"no format family {kind!r} (registered: {', '.join(FAMILIES)})") from None


def build_fp(table: Any, path: str) -> FPFormat:
    return build(FPFormat, table, path)


def build_storage(table: Any, path: str) -> StorageFormat:
    """A storage role: ``kind`` (a registered family) plus that family's fields."""
    if not isinstance(table, Mapping):
        raise SpecError(path, table, "a table")
    kind = table.get("kind")
    cls = FAMILIES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SpecError(f"{path}.kind", kind,
                        "one of " + ", ".join(repr(k) for k in FAMILIES))
    fmt = build(cls, {k: v for k, v in table.items() if k != "kind"}, path)
    return cast(StorageFormat, fmt)


def storage_table(fmt: StorageFormat) -> dict[str, Any]:
    """Inverse of :func:`build_storage`."""
    return {"kind": fmt.kind, **to_table(fmt)}


__all__ = [
    "BFPFormat", "BFPView", "CARRY_RULES", "ELEMENTS", "FAMILIES", "FPFormat", "FPView",
    "FormatView", "Fragments", "MXFormat", "MXView", "NumberFormat", "RND_TAG",
    "ROUNDING_MODES", "Rules", "StorageFormat",
    "build_fp", "build_storage", "family", "storage_table",
]
