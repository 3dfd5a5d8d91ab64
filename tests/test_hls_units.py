"""The HLS arithmetic units on their own, through a small C ABI shim (compiled once).

* FP(4,3) (and FP(2,1), FP(3,2)) exhaustively, both rounding modes: every input pair for add,
  sub and mul, every value for recip and sqrt, against the exact rational reference
  ``lightnorm.spec.rounding``.
* FP32, FP(8,15), FP(6,9), FP(5,6), FP(11,23), both modes: >= 100k biased-random + edge vectors
  per operation against the golden model's kernels (``lightnorm.verify.fpnum``), and a sample
  against the exact reference.
* Conversions between formats and BFP block encoding, against the same references.
Every mismatch message shows bit patterns in hex.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from lightnorm.spec import BFPFormat, FPFormat
from lightnorm.spec.rounding import decode_fp, encode_fp, round_exact, sqrt_exact
from lightnorm.verify import csim, encoding, fpnum

MODES = ("nearest", "truncate")
EXHAUSTIVE = [FPFormat(e, m, r) for (e, m) in ((4, 3), (2, 1), (3, 2)) for r in MODES]
RANDOM = [FPFormat(e, m, r) for (e, m) in ((8, 23), (8, 15), (6, 9), (5, 6), (11, 23))
          for r in MODES]
CVTS = [
    (FPFormat(8, 23), FPFormat(6, 9)),
    (FPFormat(8, 23), FPFormat(5, 6, "truncate")),
    (FPFormat(6, 9), FPFormat(8, 15)),
    (FPFormat(8, 15, "truncate"), FPFormat(6, 9, "truncate")),
    (FPFormat(11, 23), FPFormat(4, 3)),
    (FPFormat(4, 3), FPFormat(11, 23)),
    (FPFormat(5, 6), FPFormat(2, 1, "truncate")),
    (FPFormat(4, 3), FPFormat(2, 1)),
]
BFPS = [
    (BFPFormat(16, 7, 8), FPFormat(6, 9)),
    (BFPFormat(32, 5, 8, "nearest", "raise"), FPFormat(5, 6, "truncate")),
    (BFPFormat(4, 3, 4, "truncate", "raise"), FPFormat(4, 3)),
    (BFPFormat(8, 2, 3, "nearest", "saturate"), FPFormat(8, 23)),
    (BFPFormat(2, 23, 11, "nearest", "raise"), FPFormat(8, 23)),
    (BFPFormat(64, 1, 2, "nearest", "raise"), FPFormat(6, 9)),
]
N_RANDOM = 100_000
N_EXACT_SAMPLE = 1500


@pytest.fixture(scope="module")
def units() -> csim.Units:
    fps = EXHAUSTIVE + RANDOM + [a for a, _ in CVTS] + [b for _, b in CVTS]
    return csim.build_units(fps, CVTS, BFPS)


def tag(fmt: FPFormat) -> str:
    return f"e{fmt.exp_bits}m{fmt.man_bits}_{fmt.rounding[:5]}"


def valid_patterns(fmt: FPFormat) -> np.ndarray:
    """Every pattern without the reserved all-ones exponent (non-canonical zeros included)."""
    w = fmt.width
    pats = np.arange(1 << w, dtype=np.uint64)
    field = (pats >> np.uint64(fmt.man_bits)) & np.uint64((1 << fmt.exp_bits) - 1)
    return pats[field != (1 << fmt.exp_bits) - 1]


def expect_bits(value: Fraction, fmt: FPFormat) -> int:
    return encode_fp(round_exact(value, fmt), fmt)


def report(what: str, fmt: FPFormat, args: list[np.ndarray], want: np.ndarray,
           got: np.ndarray) -> str:
    bad = np.flatnonzero(want != got)
    lines = [f"{what} {fmt}: {len(bad)} of {want.size} differ"]
    for i in bad[:8]:
        ops = ", ".join(hex(int(a[i])) for a in args)
        lines.append(f"  {what}({ops}): expected {int(want[i]):#x}, got {int(got[i]):#x}")
    return "\n".join(lines)


# ---- exhaustive small formats against exact rationals ------------------------------------


@pytest.mark.parametrize("fmt", EXHAUSTIVE, ids=tag)
@pytest.mark.parametrize("op", ["add", "sub", "mul"])
def test_binary_exhaustive(units: csim.Units, fmt: FPFormat, op: str) -> None:
    pats = valid_patterns(fmt)
    vals = [decode_fp(int(p), fmt) for p in pats]
    a_idx, b_idx = np.meshgrid(np.arange(len(pats)), np.arange(len(pats)), indexing="ij")
    a = pats[a_idx.reshape(-1)]
    b = pats[b_idx.reshape(-1)]
    fn = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y}[op]
    memo: dict[Fraction, int] = {}
    want = np.empty(a.size, np.uint64)
    for k, (i, j) in enumerate(zip(a_idx.reshape(-1), b_idx.reshape(-1), strict=True)):
        v = fn(vals[i], vals[j])
        if v not in memo:
            memo[v] = expect_bits(v, fmt)
        want[k] = memo[v]
    got = units.binary(op, fmt, a, b)
    assert a.size == len(pats) ** 2 > 0
    assert np.array_equal(want, got), report(op, fmt, [a, b], want, got)


@pytest.mark.parametrize("fmt", EXHAUSTIVE, ids=tag)
def test_recip_sqrt_exhaustive(units: csim.Units, fmt: FPFormat) -> None:
    pats = valid_patterns(fmt)
    vals = [decode_fp(int(p), fmt) for p in pats]
    max_bits = encode_fp(Fraction(fmt.max_value), fmt)
    want_r = np.array([max_bits if v == 0 else expect_bits(1 / v, fmt) for v in vals], np.uint64)
    got_r = units.unary("recip", fmt, pats)
    assert np.array_equal(want_r, got_r), report("recip", fmt, [pats], want_r, got_r)
    nonneg = np.array([v >= 0 for v in vals])
    want_s = np.array([encode_fp(sqrt_exact(v, fmt), fmt) for v, ok in zip(vals, nonneg,
                                                                             strict=True) if ok],
                      np.uint64)
    got_s = units.unary("sqrt", fmt, pats[nonneg])
    assert want_s.size > 0
    assert np.array_equal(want_s, got_s), report("sqrt", fmt, [pats[nonneg]], want_s, got_s)


# ---- random + edge vectors for wide formats ---------------------------------------------


def pattern(fmt: FPFormat, sign: np.ndarray, field: np.ndarray, frac: np.ndarray) -> np.ndarray:
    return ((sign.astype(np.uint64) << np.uint64(fmt.exp_bits + fmt.man_bits))
            | (field.astype(np.uint64) << np.uint64(fmt.man_bits)) | frac.astype(np.uint64))


def edge_patterns(fmt: FPFormat) -> np.ndarray:
    """Zeros (canonical or not), min_normal and its neighbours, 1, max and its neighbours,
    and the values whose products and quotients land on the flush and saturation limits."""
    m, top = fmt.man_bits, (1 << fmt.exp_bits) - 2
    fm = (1 << m) - 1
    fields = sorted({1, 2, 3, fmt.bias - 1, fmt.bias, fmt.bias + 1, top - 2, top - 1, top,
                     max(1, fmt.bias // 2), min(top, fmt.bias + fmt.bias // 2)})
    fields = [f for f in fields if 1 <= f <= top]
    out = [0, 1, 1 << (fmt.exp_bits + m), fm]  # +0, non-canonical zeros
    for f in fields:
        for fr in (0, 1, 2, fm >> 1, (fm >> 1) + 1, fm - 1, fm):
            fr &= fm
            out += [(f << m) | fr, (1 << (fmt.exp_bits + m)) | (f << m) | fr]
    return np.unique(np.array(out, np.uint64))


def random_pairs(fmt: FPFormat, n: int, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Biased pairs: 1/2 independent, 1/4 exponents within 2 (cancellation), 1/4 within
    M + 4 (alignment and sticky); a few zeros; all edge x edge pairs."""
    m, top = fmt.man_bits, (1 << fmt.exp_bits) - 2
    fa = rng.integers(1, top + 1, n)
    kind = rng.integers(0, 4, n)
    spread = np.where(kind == 2, 2, m + 4)
    fb = np.where(kind < 2, rng.integers(1, top + 1, n),
                  np.clip(fa + rng.integers(-spread, spread + 1), 1, top))
    a = pattern(fmt, rng.integers(0, 2, n), fa, rng.integers(0, 1 << m, n))
    b = pattern(fmt, rng.integers(0, 2, n), fb, rng.integers(0, 1 << m, n))
    # products near the flush and saturation limits: exponents summing to emin or emax
    k = n // 16
    target = rng.choice([1, top], k)
    fb2 = np.clip(target - (fa[:k] - fmt.bias), 1, top) + rng.integers(-1, 2, k)
    b[:k] = pattern(fmt, rng.integers(0, 2, k), np.clip(fb2, 1, top), rng.integers(0, 1 << m, k))
    zeros = rng.random(n) < 0.01
    b[zeros] = 0
    e = edge_patterns(fmt)
    ea, eb = np.meshgrid(e, e, indexing="ij")
    return np.concatenate([a, ea.reshape(-1)]), np.concatenate([b, eb.reshape(-1)])


def golden_op(op: str, fmt: FPFormat, *pats: np.ndarray) -> np.ndarray:
    vals = [fpnum.decode_array(p, fmt) for p in pats]
    res = fpnum.op_array(op, vals[0], vals[1] if len(vals) > 1 else None, fmt)
    return fpnum.encode_array(res, fmt)


def exact_op(op: str, fmt: FPFormat, *pats: int) -> int:
    v = [decode_fp(p, fmt) for p in pats]
    if op == "add":
        return expect_bits(v[0] + v[1], fmt)
    if op == "sub":
        return expect_bits(v[0] - v[1], fmt)
    if op == "mul":
        return expect_bits(v[0] * v[1], fmt)
    if op == "recip":
        return encode_fp(Fraction(fmt.max_value), fmt) if v[0] == 0 else expect_bits(1 / v[0], fmt)
    return encode_fp(sqrt_exact(v[0], fmt), fmt)


@pytest.mark.parametrize("fmt", RANDOM, ids=tag)
def test_random_vectors(units: csim.Units, fmt: FPFormat) -> None:
    rng = np.random.default_rng(fmt.exp_bits * 100 + fmt.man_bits + (fmt.rounding == "nearest"))
    a, b = random_pairs(fmt, N_RANDOM, rng)
    assert a.size >= N_RANDOM
    sample = rng.choice(a.size, N_EXACT_SAMPLE, replace=False)
    for op in ("add", "sub", "mul"):
        got = units.binary(op, fmt, a, b)
        want = golden_op(op, fmt, a, b)
        assert np.array_equal(want, got), report(op, fmt, [a, b], want, got)
        exact = np.array([exact_op(op, fmt, int(a[i]), int(b[i])) for i in sample], np.uint64)
        assert np.array_equal(exact, got[sample]), report(
            op + " (exact)", fmt, [a[sample], b[sample]], exact, got[sample])
    pos = a & ~np.uint64(1 << (fmt.exp_bits + fmt.man_bits))  # |a| for sqrt
    for op, x in (("recip", a), ("sqrt", pos)):
        got = units.unary(op, fmt, x)
        want = golden_op(op, fmt, x)
        assert np.array_equal(want, got), report(op, fmt, [x], want, got)
        exact = np.array([exact_op(op, fmt, int(x[i])) for i in sample], np.uint64)
        assert np.array_equal(exact, got[sample]), report(
            op + " (exact)", fmt, [x[sample]], exact, got[sample])


# ---- conversions and BFP encoding --------------------------------------------------------


@pytest.mark.parametrize("src,dst", CVTS, ids=lambda f: tag(f))
def test_cvt(units: csim.Units, src: FPFormat, dst: FPFormat) -> None:
    rng = np.random.default_rng(src.width * 64 + dst.width)
    if src.width <= 12:
        pats = valid_patterns(src)
    else:
        a, b = random_pairs(src, 50_000, rng)
        pats = np.concatenate([a, b])
    got = units.cvt(src, dst, pats)
    want = fpnum.encode_array(fpnum.round_array(fpnum.decode_array(pats, src), dst), dst)
    assert np.array_equal(want, got), report(f"cvt->{dst}", src, [pats], want, got)
    idx = rng.choice(pats.size, min(pats.size, 2000), replace=False)
    exact = np.array([expect_bits(decode_fp(int(pats[i]), src), dst) for i in idx], np.uint64)
    assert np.array_equal(exact, got[idx]), report(f"cvt->{dst} (exact)", src, [pats[idx]],
                                                   exact, got[idx])


def lane_blocks(fmt: BFPFormat, src: FPFormat, nblk: int, rng: np.random.Generator
                ) -> np.ndarray:
    """Blocks of lane values: a common binade with spread, outliers, zeros, all-zero blocks,
    values at the top of the source format and far below the block's range."""
    g, m, top = fmt.block, src.man_bits, (1 << src.exp_bits) - 2
    base = rng.integers(1, top + 1, (nblk, 1))
    field = np.clip(base - rng.integers(0, 6, (nblk, g)), 1, top)
    field = np.where(rng.random((nblk, g)) < 0.05, rng.integers(1, top + 1, (nblk, g)), field)
    frac = rng.integers(0, 1 << m, (nblk, g))
    frac = np.where(rng.random((nblk, g)) < 0.2, (1 << m) - 1 - rng.integers(0, 3, (nblk, g)),
                    frac)  # near the top of a binade: carries
    pats = pattern(src, rng.integers(0, 2, (nblk, g)), field, np.clip(frac, 0, (1 << m) - 1))
    pats[rng.random((nblk, g)) < 0.05] = 0
    pats[: max(1, nblk // 50)] = 0  # all-zero blocks
    pats[-1, :] = pattern(src, np.zeros(g, int), np.full(g, top), np.full(g, (1 << m) - 1))
    return pats


@pytest.mark.parametrize("fmt,src", BFPS, ids=lambda f: getattr(f, "tag", str(f)))
def test_bfp_encode(units: csim.Units, fmt: BFPFormat, src: FPFormat) -> None:
    rng = np.random.default_rng(fmt.block * 1000 + fmt.man_bits)
    nblk = max(64, 40_000 // fmt.block)
    pats = lane_blocks(fmt, src, nblk, rng)
    got_bits, got_exps = units.bfp_encode(fmt, src, pats)
    vals = fpnum.decode_array(pats.reshape(1, -1), src)
    enc = encoding.encode(vals, fmt)
    assert enc.exps is not None
    want_e = enc.exps.reshape(-1)
    assert np.array_equal(want_e, got_exps), report(
        "bfp exponent", src, [np.arange(nblk, dtype=np.uint64)], want_e, got_exps)
    want_b = enc.bits.reshape(-1)
    assert np.array_equal(want_b, got_bits), report(
        "bfp element", src, [pats.reshape(-1)], want_b, got_bits)


def test_units_are_named_by_parameters(units: csim.Units) -> None:
    """The shim's symbols carry the format parameters (fp_add_e4m3_rne, bfp_encode_g16...)."""
    for name in ("fp_add_e4m3_rne", "fp_mul_e4m3_rtz", "fp_sqrt_e8m23_rne",
                 "fp_cvt_e8m23_rne_to_e6m9_rne", "bfp_encode_g16m7e8_rne_sat_from_e6m9_rne"):
        assert hasattr(units.lib, name), name


def test_exhaustive_pairs_count() -> None:
    """FP(4,3) has 240 non-reserved patterns: 57,600 ordered pairs per operation and mode."""
    assert len(valid_patterns(FPFormat(4, 3))) == 240
    assert list(itertools.islice(valid_patterns(FPFormat(4, 3)), 3)) == [0, 1, 2]
