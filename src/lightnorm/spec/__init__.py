"""The declarative accelerator spec: formats, the spec schema, presets, TOML load/save."""

from .accelerator import (
    NORM_MODES,
    NORMALIZE_FORMS,
    STORAGE_ROLES,
    BNConfig,
    HWConfig,
    Spec,
    Storage,
    check_channel_elems,
    chunk_bounds,
    range_constant,
)
from .errors import SpecError
from .formats import CARRY_RULES, ROUNDING_MODES, BFPFormat, FPFormat, StorageFormat
from .io import dumps, from_dict, load, loads, preset_names, save

__all__ = [
    "BFPFormat", "BNConfig", "CARRY_RULES", "FPFormat", "HWConfig", "NORMALIZE_FORMS", "NORM_MODES",
    "ROUNDING_MODES", "STORAGE_ROLES", "Spec", "SpecError", "Storage", "StorageFormat",
    "check_channel_elems", "chunk_bounds", "dumps", "from_dict", "load", "loads", "preset_names",
    "range_constant", "save",
]
