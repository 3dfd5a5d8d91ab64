"""The FP family's golden kernel: a channel of FP storage, element by element.

Each value is rounded into the format once (:func:`lightnorm.verify.fpnum.rnd`: the rounding,
flushing and saturation rules of FPFormat.rules) and encoded as its bit pattern; a pattern
decodes with its zero exponent field read as zero. ``st`` is :func:`lightnorm.verify.fpnum.
fp_params` padded to the kernels' length.
"""

from __future__ import annotations

import numba as nb

from ...spec.formats import FPFormat
from .. import fpnum
from .base import pad


def params(fmt: FPFormat) -> tuple[int, ...]:
    return pad(fpnum.fp_params(fmt))


@nb.njit(cache=True)
def encode_channel(src, n, st, vals, bits, exps):  # type: ignore[no-untyped-def]
    f = st[:8]
    for i in range(n):
        v = fpnum.rnd(src[i], f)
        vals[i] = v
        bits[i] = fpnum.encode(v, f)


@nb.njit(cache=True)
def decode_channel(bits, exps, n, st, vals):  # type: ignore[no-untyped-def]
    f = st[:8]
    for i in range(n):
        vals[i] = fpnum.decode(bits[i], f)
