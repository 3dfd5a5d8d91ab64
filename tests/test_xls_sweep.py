"""Sweep (~3 minutes on one core): every FP(e, m) of at most 10 bits,
both rounding modes, every unit kind through the XLS JIT against the golden primitives on
every input pair - the measurement quoted in docs/xls.md. The regular suite covers a selection
of these formats (test_xls_units.py)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lightnorm.codegen import dslx
from lightnorm.codegen.rtl import Unit
from lightnorm.spec import FPFormat
from lightnorm.tools import xls as xc
from lightnorm.verify import cosim

from .patterns import valid_patterns

FORMATS = [FPFormat(e, m, r) for e in range(2, 9) for m in range(1, 8) if e + m <= 9
           for r in ("nearest", "truncate")]


@pytest.mark.parametrize("apfloat", [True, False], ids=["apfloat", "own"])
def test_every_small_format_exhaustive(apfloat: bool) -> None:
    units = [Unit(k, f, f) for f in FORMATS for k in ("add", "mul", "recip", "sqrt")]
    if not apfloat:
        units += [Unit("cvt", a, b) for a, b in itertools.product(FORMATS[::5], FORMATS[1::5])]
        units += [Unit("mul", a, b) for a, b in itertools.product(FORMATS[::7], FORMATS[3::7])]
    else:  # only the nearest-even add/mul differ from the own-code run
        units = [u for u in units if u.kind in ("add", "mul") and u.fout.rounding == "nearest"]
    mod = dslx.render_units(units, module="sweep", apfloat=apfloat, batch=True)
    bad = []
    for u in units:
        pa = valid_patterns(u.fin)
        jit = xc.unit_jit(mod, u)
        if u.kind in dslx.BINARY_KINDS:
            a, b = (x.ravel() for x in np.meshgrid(pa, pa))
            got, exp = jit(a, b), cosim.unit_reference(u, a, b)
        else:
            got, exp = jit(pa), cosim.unit_reference(u, pa)
        n = int(np.count_nonzero(got != exp))
        if n:
            bad.append(f"{mod.functions[u]}: {n} wrong")
    assert not bad, "\n".join(bad)
