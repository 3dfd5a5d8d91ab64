"""What every number-format family provides: its rules, its storage methods, its one view.

A *family* is a frozen dataclass of its stored widths (declared with :func:`..schema.param`)
that derives from :class:`NumberFormat` and is listed in ``formats.FAMILIES`` under its
``kind`` (the ``kind`` key of a ``[storage.*]`` table). The family states once:

* its special-value :class:`Rules` (reserved top exponent, subnormals, overflow, inf/NaN),
  from which it derives its constants - the generators and the golden model read those
  constants instead of restating the rules;
* its storage methods: element width, width of the exponent word a block shares (0: none),
  elements per block (1 for per-element formats), padded length, block count;
* whether a beat of its stream sums exactly as integers (``exact_beat_sum``: the statistics
  unit then sums the beat as integers and rounds once, else it rounds each lane and adds a
  pairwise tree, docs/numerics.md section 6);
* whether a beat's products with another such stream sum exactly as integers
  (``integer_dot``: when x and dy both do, the backward pass sums x * dy per beat exactly and
  forms dgamma from the sums, docs/numerics.md section 9);
* :class:`Fragments`: the names of its parts outside the spec package - the Jinja macros that
  the RTL and HLS templates import from it, its HLS library header, its golden-model kernel;
* its :class:`FormatView` (``fmt.view``): every constant the HLS, RTL and DSLX generators
  print, computed once per format, one name per constant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import SpecError

ROUNDING_MODES = ("nearest", "truncate")
#: the rounding part of generated names (``fp_add_e5m10_rne``)
RND_TAG = {"nearest": "rne", "truncate": "rtz"}
#: the rounding modes of the HLS library's format templates
HLS_RND = {"nearest": "ln::RNE", "truncate": "ln::RTZ"}


@dataclass(frozen=True)
class Rules:
    """The special-value rules of a family's encodings (docs/numerics.md sections 2-4)."""

    #: the all-ones (shared) exponent field is never produced, so the largest exponent is one
    #: below it (IEEE keeps that field for inf/NaN)
    reserved_top_exponent: bool
    #: "flush": values below the smallest normal read as zero and results that round below it
    #: become zero; "keep": they are on the format's grid (gradual underflow)
    subnormals: str
    #: "saturate": a result beyond the largest finite magnitude becomes that magnitude
    overflow: str
    infinity: bool  # an encoding of infinity exists
    nan: bool  # an encoding of NaN exists
    negative_zero: bool  # -0 is ever produced (else zero is always +0)

    @property
    def finite_only(self) -> bool:
        """No encoding for inf or NaN: such inputs are an error on the host side."""
        return not (self.infinity or self.nan)


@dataclass(frozen=True)
class Fragments:
    """Names of a family's parts outside the spec package (resolved by their consumers)."""

    # template names as the generator's Jinja environment resolves them
    rtl: str  # Jinja macros the Verilog templates import (templates/rtl/formats/<kind>.v.j2)
    hls: str  # Jinja macros the HLS templates import (templates/hls/formats/<kind>.h.j2)
    hls_lib: str  # the family's HLS library header (templates/hls/<hls_lib>.j2)
    kernel: str  # the golden model's kernel module (lightnorm.verify.kernels.<kernel>)


@dataclass(frozen=True)
class FormatView:
    """The constants of a format as every generator prints them (one name per constant).

    Storage interface (every family): ``w`` element width, ``xbits`` width of the exponent
    word a block shares (0: none), ``xw`` width of a stream's exponent port (``xbits``, or 1
    for a port that exists and is ignored), ``gw`` significand width of a decoded element,
    ``block`` elements per block. Names: ``tag`` carries the widths (``e5m10``), ``ftag`` also
    the rounding (and carry) rules (``e5m10_rne``); ``name``, ``decl`` and ``checks`` are the
    family's HLS library type, its C++ declaration and the constants the generated config
    ``static_assert``s. ``desc`` is ``str(fmt)``, ``about`` a one-line explanation. Jinja reads
    the attributes as ``v.w`` or ``v['w']``.
    """

    fmt: Any  # the format (a NumberFormat) this is the view of
    kind: str
    desc: str
    about: str
    tag: str
    ftag: str
    name: str
    decl: str
    checks: tuple[tuple[str, int], ...]
    w: int
    xbits: int
    xw: int
    gw: int
    block: int
    bias: int
    emin: int
    emax: int
    nearest: bool
    max_value: float
    fragments: Fragments


def exponent_range(exp_bits: int, rules: Rules) -> tuple[int, int, int]:
    """(bias, emin, emax) of a biased exponent field of ``exp_bits`` bits: field 0 is zero
    (or the subnormal binade), field 1 the smallest exponent, the top field is the largest
    unless the rules reserve it."""
    bias = (1 << (exp_bits - 1)) - 1
    top = (1 << exp_bits) - 1 - (1 if rules.reserved_top_exponent else 0)
    return bias, 1 - bias, top - bias


class NumberFormat:
    """Base of every family's format class (a frozen dataclass of its widths).

    A family sets the class attributes and provides ``element_width``, ``shared_exp_width``,
    ``block``, ``max_value``, ``precision``, ``lsb_exp``, ``tag`` and ``view`` (fields or
    properties); the storage methods here follow from them, and the exponent range from its
    ``exp_bits`` field and its rules (a family with another exponent layout overrides it).
    """

    kind: ClassVar[str]
    rules: ClassVar[Rules]
    fragments: ClassVar[Fragments]
    exact_beat_sum: ClassVar[bool]
    integer_dot: ClassVar[bool]
    #: the section title and one-line description in docs/spec.md
    doc_title: ClassVar[str]
    doc_what: ClassVar[str]

    if TYPE_CHECKING:  # provided by each family (dataclass fields or properties)
        exp_bits: int
        man_bits: int
        rounding: str

        @property
        def block(self) -> int: ...
        @property
        def element_width(self) -> int: ...
        @property
        def shared_exp_width(self) -> int: ...
        @property
        def max_value(self) -> float: ...
        @property
        def precision(self) -> int: ...
        @property
        def lsb_exp(self) -> int: ...
        @property
        def tag(self) -> str: ...
        @property
        def view(self) -> FormatView: ...

    @property
    def bias(self) -> int:
        return exponent_range(self.exp_bits, self.rules)[0]

    @property
    def emin(self) -> int:
        """Unbiased exponent of biased field 1: the smallest normal's."""
        return exponent_range(self.exp_bits, self.rules)[1]

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite value (field 2^e - 2 when the rules reserve
        the top field)."""
        return exponent_range(self.exp_bits, self.rules)[2]

    @property
    def min_normal(self) -> float:
        """2^emin: the smallest normal (BFP: the smallest value whose block exponent is not
        clamped; below it, values lose bits on the grid of the smallest block exponent)."""
        return float(2.0 ** self.emin)

    @property
    def bits_per_element(self) -> float:
        """Stored bits per element: its own bits plus its share of its block's exponent."""
        return self.element_width + self.shared_exp_width / self.block

    def padded_length(self, n: int) -> int:
        """Elements stored for a channel of n: whole blocks."""
        return -(-n // self.block) * self.block

    def block_count(self, n: int) -> int:
        """Blocks of a channel of n elements (n for a per-element format)."""
        return -(-n // self.block)

    def check_lanes(self, lanes: int, path: str) -> None:
        """A spec's cross-field rule between this storage format and ``hw.lanes``: a beat
        carries one shared exponent word, so it must lie in one block."""
        if self.shared_exp_width and self.block % lanes:
            raise SpecError(f"{path}.block", self.block,
                            f"a multiple of hw.lanes = {lanes} (a beat must lie in one block)")
