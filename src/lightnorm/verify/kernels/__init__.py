"""The golden model's kernel of each number-format family: one channel of a storage format.

A family's kernel module is ``lightnorm.verify.kernels.<fmt.fragments.kernel>``, listed in
:data:`KERNELS` (imported here, so that the import graph - and with it every stage key that
depends on the golden model - sees it); it provides

* ``params(fmt)``: the format as a tuple of :data:`PARAMS` int64 (its own layout), the ``st``
  argument of the two functions below;
* ``encode_channel(src, n, st, vals, bits, exps)``: quantize the channel's ``n`` stream-ordered
  float64 values ``src``: decoded values into ``vals[:n]``, element patterns into ``bits``
  (padded to whole blocks with zeros), shared-exponent fields into ``exps`` (untouched by a
  per-element format), a numba function of type :data:`ENCODE`;
* ``decode_channel(bits, exps, n, st, vals)``: the values of a channel's patterns, of type
  :data:`DECODE`.
* ``grid_bits(fmt)``, for a family whose beats sum exactly (``exact_beat_sum``): the bits of
  the largest integer K of a block, whose values are all K times one power of two.

The golden model's kernels take these two functions as first-class arguments (numba
``FunctionType``), so they hold no branch per family and one compiled kernel serves every
family. A kernel that takes them is compiled for one explicit signature (:func:`typed`): a
function passed as a plain dispatcher would make numba compile and cache the kernel again for
every process (its type would name the dispatcher object). The functions are passed as
:func:`first_class` values, whose compiled address is looked up once.
"""

from __future__ import annotations

from types import ModuleType

from ...spec.formats import NumberFormat
from . import bfp, fp, mx
from .base import (
    DECODE,
    DECODER,
    ENCODE,
    ENCODER,
    F64,
    F64_2D,
    F64_3D,
    FP,
    I64,
    I64_2D,
    PARAMS,
    ST,
    TYPED,
    U,
    first_class,
    pad,
    typed,
)

#: the golden kernel module of each family (``fmt.fragments.kernel``)
KERNELS: dict[str, ModuleType] = {"fp": fp, "bfp": bfp, "mx": mx}

__all__ = ["DECODE", "DECODER", "ENCODE", "ENCODER", "F64", "F64_2D", "F64_3D", "FP", "I64",
           "I64_2D", "KERNELS", "PARAMS", "ST", "TYPED", "U", "first_class", "kernel", "pad",
           "typed"]


def kernel(fmt: NumberFormat) -> ModuleType:
    """The kernel module of ``fmt``'s family."""
    return KERNELS[fmt.fragments.kernel]

