"""What every family's golden kernel shares: the parameter tuple, the numba types of the
encoder and decoder, and the compile-once decorator (see :mod:`lightnorm.verify.kernels`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np
from numba.core import types
from numba.core.types.function_type import CompileResultWAP

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


_FIRST_CLASS: dict[tuple[Any, Any], CompileResultWAP] = {}
#: every :func:`typed` kernel as (dispatcher, signature), in definition order (for
#: :func:`lightnorm.verify.golden.compile_kernels`)
TYPED: list[tuple[Any, Any]] = []


def first_class(disp: Any, sig: Any) -> CompileResultWAP:
    """The numba function ``disp`` compiled for ``sig`` (or read from numba's cache), as the
    first-class function value a kernel takes: a dispatcher passed instead has its compiled
    address looked up through Python (with a pickled signature) on every call, for every such
    argument, which costs more than a kernel call on a small tensor."""
    key = (disp, sig)
    wap = _FIRST_CLASS.get(key)
    if wap is None:
        disp.compile(sig)
        wap = _FIRST_CLASS[key] = CompileResultWAP(disp.overloads[sig.args])
    return wap


def pad(params: tuple[int, ...]) -> tuple[int, ...]:
    """A family's parameters as the fixed-length tuple the kernels take."""
    if len(params) > PARAMS:
        raise ValueError(f"{len(params)} parameters, at most {PARAMS}")
    return tuple(params) + (0,) * (PARAMS - len(params))


def typed(sig: Any, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``numba.njit(cache=True, **options)`` for the one signature ``sig``, compiled (or read
    from numba's cache) at the first call, not at import.

    Calls go straight to the compiled entry point: numba's dispatcher would first work out the
    type of every argument (tens of microseconds for a kernel's twenty, more than the kernel
    takes on a small tensor). Array arguments are checked here instead (dtype, dimensions,
    C-contiguous, writeable), since the entry point converts whatever it is given; scalars
    must be int64/float64 as declared, function arguments :func:`first_class` values."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        disp = nb.njit(cache=True, **options)(fn)
        arrays = [(i, np.dtype(str(t.dtype)), t.ndim, t.mutable)
                  for i, t in enumerate(sig.args) if isinstance(t, types.Array)]
        entry: list[Callable[..., Any]] = []

        @functools.wraps(fn)
        def call(*args: Any) -> Any:
            if not entry:
                disp.compile(sig)
                disp.disable_compile()
                entry.append(disp.overloads[sig.args].entry_point)
            for i, dtype, ndim, mutable in arrays:
                a = args[i]
                if not (isinstance(a, np.ndarray) and a.dtype == dtype and a.ndim == ndim
                        and a.flags.c_contiguous and (a.flags.writeable or not mutable)):
                    raise TypeError(f"{fn.__name__}: argument {i} must be a C-contiguous "
                                    f"{ndim}-d {dtype} array, got {_describe(a)}")
            return entry[0](*args)

        call.dispatcher = disp  # type: ignore[attr-defined]
        TYPED.append((disp, sig))
        return call

    return deco


def _describe(a: Any) -> str:
    if isinstance(a, np.ndarray):
        return (f"{a.ndim}-d {a.dtype}, {'C' if a.flags.c_contiguous else 'not C'}-contiguous"
                f"{'' if a.flags.writeable else ', read-only'}")
    return type(a).__name__
