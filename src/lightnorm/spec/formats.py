"""Number formats and format roles. Only widths are stored; every other constant is derived.

FP(e, m): 1 sign bit, ``e`` exponent bits (bias 2^(e-1)-1), ``m`` fraction bits. IEEE-style
layout, but the all-ones exponent is reserved and never produced (overflow saturates), the zero
exponent encodes only +0 (subnormals are read as zero and flushed from results), and zero is
always +0. BFP(g, m, e): blocks of ``g`` elements share one ``e``-bit exponent; each element has
a sign and an ``m``-bit magnitude. See docs/numerics.md for the full contract.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import SpecError
from .schema import Choice, Int, build, param

ROUNDING_MODES = ("nearest", "truncate")
CARRY_RULES = ("saturate", "raise")

FP_EXP_BITS = Int(2, 11)
FP_MAN_BITS = Int(1, 23)


@dataclass(frozen=True)
class FPFormat:
    """A floating-point format FP(exp_bits, man_bits), with the rounding of its role."""

    exp_bits: int = param(FP_EXP_BITS, "exponent field width")
    man_bits: int = param(FP_MAN_BITS, "fraction field width (the hidden bit is not counted)")
    rounding: str = param(Choice(*ROUNDING_MODES), "rounding of results into this format",
                          "nearest")

    kind = "fp"

    # Derived constants -------------------------------------------------------------------
    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal (biased field 1)."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite value (biased field 2^e - 2)."""
        return (1 << self.exp_bits) - 2 - self.bias

    @property
    def precision(self) -> int:
        """Significand bits including the hidden one."""
        return self.man_bits + 1

    @property
    def width(self) -> int:
        return 1 + self.exp_bits + self.man_bits

    @property
    def max_value(self) -> float:
        return float((2.0 - 2.0 ** -self.man_bits) * 2.0 ** self.emax)

    @property
    def min_normal(self) -> float:
        return float(2.0 ** self.emin)

    @property
    def bits_per_element(self) -> float:
        return float(self.width)

    @property
    def tag(self) -> str:
        """Short name used in identifiers: ``e5m10``."""
        return f"e{self.exp_bits}m{self.man_bits}"

    def __str__(self) -> str:
        r = "" if self.rounding == "nearest" else ", trunc"
        return f"FP({self.exp_bits},{self.man_bits}{r})"

    def validate(self, path: str) -> None:
        del path


@dataclass(frozen=True)
class BFPFormat:
    """Block floating point BFP(block, man_bits, exp_bits): ``block`` elements share an exponent."""

    block: int = param(Int(1, 256, power_of_two=True), "elements sharing one exponent")
    man_bits: int = param(Int(1, 23), "magnitude bits per element (a sign bit comes on top)")
    exp_bits: int = param(Int(2, 11), "shared exponent field width")
    rounding: str = param(Choice(*ROUNDING_MODES), "rounding of element mantissas", "nearest")
    carry: str = param(
        Choice(*CARRY_RULES),
        "when rounding carries past 2^man_bits - 1: saturate the element, or raise the block "
        "exponent by one and re-round the block",
        "saturate",
    )

    kind = "bfp"

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def emin(self) -> int:
        return 1 - self.bias

    @property
    def emax(self) -> int:
        return (1 << self.exp_bits) - 2 - self.bias

    @property
    def max_mantissa(self) -> int:
        return (1 << self.man_bits) - 1

    @property
    def element_width(self) -> int:
        return 1 + self.man_bits

    @property
    def bits_per_element(self) -> float:
        return self.element_width + self.exp_bits / self.block

    @property
    def max_value(self) -> float:
        return float(self.max_mantissa * 2.0 ** (self.emax - self.man_bits + 1))

    @property
    def tag(self) -> str:
        return f"g{self.block}m{self.man_bits}e{self.exp_bits}"

    def __str__(self) -> str:
        r = "" if self.rounding == "nearest" else ", trunc"
        c = "" if self.carry == "saturate" else ", raise"
        return f"BFP({self.block},{self.man_bits},{self.exp_bits}{r}{c})"

    def validate(self, path: str) -> None:
        del path


StorageFormat = FPFormat | BFPFormat


def build_fp(table: Any, path: str) -> FPFormat:
    return build(FPFormat, table, path)


def build_storage(table: Any, path: str) -> StorageFormat:
    """A storage role: ``kind = "fp"`` or ``kind = "bfp"`` plus that format's fields."""
    if not isinstance(table, Mapping):
        raise SpecError(path, table, "a table")
    kind = table.get("kind")
    rest = {k: v for k, v in table.items() if k != "kind"}
    if kind == "fp":
        return build(FPFormat, rest, path)
    if kind == "bfp":
        return build(BFPFormat, rest, path)
    raise SpecError(f"{path}.kind", kind, "one of 'fp', 'bfp'")


def storage_table(fmt: StorageFormat) -> dict[str, Any]:
    from .schema import to_table

    return {"kind": fmt.kind, **to_table(fmt)}
