"""Input bit patterns of FP formats for the unit tests (RTL units, XLS units).

Use from a test module: ``from .patterns import edge_patterns, valid_patterns``.
"""

from __future__ import annotations

import numpy as np

from lightnorm.spec import FPFormat


def valid_patterns(f: FPFormat) -> np.ndarray:
    """Every pattern of a format except the reserved all-ones exponent (never an input)."""
    p = np.arange(1 << f.width, dtype=np.uint64)
    ef = (p >> np.uint64(f.man_bits)) & np.uint64((1 << f.exp_bits) - 1)
    return p[ef != (1 << f.exp_bits) - 1]


def edge_patterns(f: FPFormat) -> np.ndarray:
    """Zeros (both signs, subnormal patterns), both ends of binades around 1, emin and emax."""
    m, e = f.man_bits, f.exp_bits
    emaxf = (1 << e) - 2
    fr = [0, 1, 2, 3, (1 << m) - 1, (1 << m) - 2, 1 << (m - 1), (1 << (m - 1)) + 1,
          (1 << (m - 1)) - 1]
    ex = [0, 1, 2, 3, f.bias - 1, f.bias, f.bias + 1, emaxf - 2, emaxf - 1, emaxf,
          (f.bias + 1) // 2, f.bias + f.bias // 2]
    out = {(ef << m) | fv for ef in ex if 0 <= ef <= emaxf for fv in fr if 0 <= fv < 1 << m}
    out |= {s | (1 << (e + m)) for s in list(out)}
    return np.array(sorted(out), dtype=np.uint64)
