"""What every family's golden kernel shares: the parameter tuple, the numba types of the
encoder and decoder, and the compile-once decorator (see :mod:`lightnorm.verify.kernels`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np
from numba.core import types

#: length of every family's parameter tuple
PARAMS = 16
ST = types.UniTuple(types.int64, PARAMS)
#: an FP format's parameter tuple (:func:`lightnorm.verify.fpnum.fp_params`)
FP = types.UniTuple(types.int64, 8)
F64 = types.float64[::1]
I64 = types.int64[::1]
F64_2D = types.float64[:, ::1]
I64_2D = types.int64[:, ::1]
F64_3D = types.float64[:, :, ::1]

#: unsigned loop indices: numba wraps negative indices around (a select per access), and a
#: loop whose index it cannot prove non-negative is vectorized with gathers and scatters, or
#: not at all; uint64 indices have no wraparound (keep their arithmetic unsigned: numba turns
#: uint64 op int64 into float64)
U = np.uint64

ENCODE = types.void(F64, types.int64, ST, F64, I64, I64)
DECODE = types.void(I64, I64, types.int64, ST, F64)
#: the argument types of a family's encoder and decoder
ENCODER = types.FunctionType(ENCODE)
DECODER = types.FunctionType(DECODE)


def pad(params: tuple[int, ...]) -> tuple[int, ...]:
    """A family's parameters as the fixed-length tuple the kernels take."""
    if len(params) > PARAMS:
        raise ValueError(f"{len(params)} parameters, at most {PARAMS}")
    return tuple(params) + (0,) * (PARAMS - len(params))


def typed(sig: Any, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``numba.njit(cache=True, **options)`` for the one signature ``sig``, compiled (or read
    from numba's cache) at the first call, not at import; arguments must match it exactly
    (C-contiguous arrays, int64 scalars)."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        disp = nb.njit(cache=True, **options)(fn)

        @functools.wraps(fn)
        def call(*args: Any) -> Any:
            if not disp.signatures:
                disp.compile(sig)
                disp.disable_compile()  # a function argument converts to FunctionType
            return disp(*args)

        call.dispatcher = disp  # type: ignore[attr-defined]
        return call

    return deco
