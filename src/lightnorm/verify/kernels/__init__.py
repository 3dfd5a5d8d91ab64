"""The golden model's kernel of each number-format family: one channel of a storage format.

A family names its kernel module ``lightnorm.verify.kernels.<fmt.fragments.kernel>``; the
module provides

* ``params(fmt)``: the format as a tuple of :data:`PARAMS` int64 (its own layout), the ``st``
  argument of the two functions below;
* ``encode_channel(src, n, st, vals, bits, exps)``: quantize the channel's ``n`` stream-ordered
  float64 values ``src``: decoded values into ``vals[:n]``, element patterns into ``bits``
  (padded to whole blocks with zeros), shared-exponent fields into ``exps`` (untouched by a
  per-element format), a numba function of type :data:`ENCODE`;
* ``decode_channel(bits, exps, n, st, vals)``: the values of a channel's patterns, of type
  :data:`DECODE`.

The golden model's kernels take these two functions as first-class arguments (numba
``FunctionType``), so they hold no branch per family and one compiled kernel serves every
family. A kernel that takes them is compiled for one explicit signature (:func:`typed`): a
function passed as a plain dispatcher would make numba compile and cache the kernel again for
every process (its type would name the dispatcher object).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numba as nb
from numba.core import types

from ...spec.formats import NumberFormat

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

ENCODE = types.void(F64, types.int64, ST, F64, I64, I64)
DECODE = types.void(I64, I64, types.int64, ST, F64)
#: the argument types of a family's encoder and decoder
ENCODER = types.FunctionType(ENCODE)
DECODER = types.FunctionType(DECODE)


def kernel(fmt: NumberFormat) -> ModuleType:
    """The kernel module of ``fmt``'s family."""
    return importlib.import_module(f"{__name__}.{fmt.fragments.kernel}")


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
