"""Number-format families (spec/formats): the registry, each family's rules, storage methods and
view, and that every family brings all its parts (fragments, generator hooks, golden kernel)."""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightnorm.codegen.dslx_design import STORAGE_DSLX, StorageDSLX
from lightnorm.codegen.env import template_root
from lightnorm.codegen.rtl import STORAGE_RTL, StorageRTL
from lightnorm.spec import BFPFormat, FPFormat, SpecError
from lightnorm.spec.formats import (
    FAMILIES,
    BFPView,
    FormatView,
    FPView,
    build_fp,
    build_storage,
    family,
    storage_table,
)
from lightnorm.spec.rounding import decode_fp, round_exact
from lightnorm.spec.schema import to_table
from lightnorm.verify import fpnum
from lightnorm.verify.encoding import Encoded, encode
from lightnorm.verify.kernels import PARAMS, kernel

from .strategies import fp_tables, storage_tables

SRC = Path(__file__).resolve().parents[1] / "src" / "lightnorm"
PROPERTY = settings(max_examples=300, deadline=None)


# --- the registry -------------------------------------------------------------------------------
def test_registry_maps_kinds_to_families() -> None:
    assert list(FAMILIES) == ["fp", "bfp", "mx"]
    for kind, cls in FAMILIES.items():
        assert cls.kind == kind and family(kind) is cls
    with pytest.raises(KeyError, match="registered: fp, bfp, mx"):
        family("mxint")


@PROPERTY
@given(st.sampled_from([1, 2, 4, 16, 64]).flatmap(storage_tables))
def test_random_storage_tables_round_trip(table: dict[str, Any]) -> None:
    fmt = build_storage(table, "storage.x")
    assert type(fmt) is FAMILIES[table["kind"]]
    back = storage_table(fmt)
    assert {k: back[k] for k in table} == table  # defaults filled in, nothing changed
    assert build_storage(back, "storage.x") == fmt


@PROPERTY
@given(fp_tables())
def test_random_fp_tables_round_trip(table: dict[str, Any]) -> None:
    fmt = build_fp(table, "compute")
    assert build_fp(to_table(fmt), "compute") == fmt


@pytest.mark.parametrize("kind", ["MX", "FP", "", 1, None, ["fp"]])
def test_unknown_kind_is_rejected_naming_the_registered_kinds(kind: Any) -> None:
    with pytest.raises(SpecError) as err:
        build_storage({"kind": kind, "exp_bits": 5, "man_bits": 4}, "storage.dy")
    assert err.value.path == "storage.dy.kind"
    assert str(err.value).endswith("expected one of " + ", ".join(repr(k) for k in FAMILIES))


def test_a_family_rejects_the_other_familys_fields() -> None:
    with pytest.raises(SpecError, match=r"storage.x.block = 16: expected no such key"):
        build_storage({"kind": "fp", "block": 16, "exp_bits": 5, "man_bits": 4}, "storage.x")


# --- rules and the constants derived from them ----------------------------------------------------
fp_formats = st.builds(FPFormat, st.integers(2, 11), st.integers(1, 23),
                       st.sampled_from(["nearest", "truncate"]))
bfp_formats = st.builds(BFPFormat, st.sampled_from([1, 2, 8, 32, 256]), st.integers(1, 23),
                        st.integers(2, 11), st.sampled_from(["nearest", "truncate"]),
                        st.sampled_from(["saturate", "raise"]))


def test_family_rules() -> None:
    fp, bfp = FPFormat.rules, BFPFormat.rules
    assert fp.reserved_top_exponent and fp.subnormals == "flush" and fp.overflow == "saturate"
    assert bfp.reserved_top_exponent and bfp.subnormals == "keep" and bfp.overflow == "saturate"
    for r in (fp, bfp):
        assert r.finite_only and not r.infinity and not r.nan and not r.negative_zero
    assert not FPFormat.exact_beat_sum and BFPFormat.exact_beat_sum


@PROPERTY
@given(fp_formats)
def test_fp_view_constants_are_the_exact_values(f: FPFormat) -> None:
    v = f.view
    assert isinstance(v, FPView) and v is f.view  # computed once
    e, m = f.exp_bits, f.man_bits
    assert (v.e, v.m, v.p, v.w, v.gw, v.xbits, v.xw, v.block) == (e, m, m + 1, 1 + e + m,
                                                                   m + 1, 0, 1, 1)
    # the reserved all-ones field is one above the largest; the largest finite value and the
    # smallest normal are what their patterns decode to
    assert v.reserved == (1 << e) - 1 and v.emaxf == v.reserved - 1 == v.emax + v.bias
    assert decode_fp(v.maxpat, f) == Fraction(f.max_value) == (2 - Fraction(1, 2**m)) * \
        Fraction(2) ** f.emax
    assert decode_fp(v.minpat, f) == Fraction(f.min_normal) == Fraction(2) ** f.emin
    # a reserved pattern (never produced) reads as its binade in every decoder (numerics.md 1)
    for frac in (0, (1 << m) - 1):
        for sign in (0, 1):
            pat = (sign << (e + m)) | (v.reserved << m) | frac
            want = (1 + Fraction(frac, 1 << m)) * Fraction(2) ** (v.reserved - f.bias)
            want = -want if sign else want
            assert decode_fp(pat, f) == want and abs(want) > f.max_value
            if e < 11:  # (float64 decoders: an 11-bit binade, 2^1024, is past float64's range)
                assert fpnum.decode(np.int64(pat), fpnum.fp_params(f)) == float(want)
                enc = Encoded.from_bits(f, 1, np.array([[pat]], np.uint64))
                assert enc.vals[0, 0] == float(want)
    assert (v.ones_p, v.pow_p, v.signbit) == ((1 << (m + 1)) - 1, 1 << (m + 1), 1 << (e + m))
    assert v.max_value == f.max_value and v.nearest == (f.rounding == "nearest")
    rne = {"nearest": "rne", "truncate": "rtz"}[f.rounding]
    assert (v.tag, v.ftag, v.name) == (f"e{e}m{m}", f"e{e}m{m}_{rne}", f"fp_e{e}m{m}_{rne}")
    assert dict(v.checks) == {"W": v.w, "BIAS": v.bias, "EMIN": f.emin, "EMAX": f.emax,
                              "traits::MAX_FIELD": v.emaxf}
    # the rules as the exact rounding applies them: saturation and flush after rounding
    assert round_exact(Fraction(f.max_value) * 3, f) == Fraction(f.max_value)
    assert round_exact(Fraction(f.min_normal) / 4, f) == 0
    assert f.lsb_exp == f.emin - m and f.precision == m + 1


@PROPERTY
@given(bfp_formats)
def test_bfp_view_constants_are_the_exact_values(b: BFPFormat) -> None:
    v = b.view
    assert isinstance(v, BFPView) and v is b.view
    g, m, es = b.block, b.man_bits, b.exp_bits
    assert (v.m, v.w, v.gw, v.xbits, v.xw, v.block, v.maxm) == (m, m + 1, m, es, es, g,
                                                                 (1 << m) - 1)
    assert v.emax + v.bias == (1 << es) - 2  # the all-ones exponent field is reserved
    assert v.emin == 1 - v.bias == b.emin
    assert Fraction(b.max_value) == v.maxm * Fraction(2) ** (b.emax - m + 1)
    assert v.raise_ == (b.carry == "raise")
    assert (v.tag, v.ftag.split("_")[0], v.name) == (f"g{g}m{m}e{es}", f"g{g}m{m}e{es}",
                                                     f"bfp_{v.ftag}")
    assert dict(v.checks)["traits::MAXM"] == v.maxm
    assert b.lsb_exp == b.emin - m + 1 and b.precision == m


@settings(max_examples=40, deadline=None)
@given(bfp_formats)
def test_bfp_rules_on_the_golden_kernel(b: BFPFormat) -> None:
    """Values below 2^emin stay on the grid of the smallest block exponent (kept, where FP
    flushes), values beyond the range saturate, a negative value that rounds to zero is +0."""
    g = b.block
    tiny = 2.0 ** b.lsb_exp  # M = 1 at the smallest block exponent
    row = np.zeros(2 * g)
    row[0] = tiny
    row[g] = -tiny / 4  # alone in the second block: rounds to zero
    enc = encode(row[None, :], b)
    assert enc.vals[0, 0] == tiny and (tiny < b.min_normal or b.man_bits == 1)
    assert enc.vals[0, g] == 0.0 and not np.signbit(enc.vals[0, g]) and enc.bits[0, g] == 0
    huge = min(b.max_value * 8, float(np.finfo(np.float64).max))
    big = encode(np.full((1, g), huge), b)
    assert np.all(big.vals == b.max_value)


@PROPERTY
@given(st.one_of(fp_formats, bfp_formats), st.integers(1, 10_000))
def test_storage_methods(fmt: FPFormat | BFPFormat, n: int) -> None:
    g = fmt.block
    assert fmt.block_count(n) == math.ceil(n / g)
    assert fmt.padded_length(n) == fmt.block_count(n) * g >= n > fmt.padded_length(n) - g
    assert fmt.bits_per_element == fmt.element_width + fmt.shared_exp_width / g
    assert fmt.view.w == fmt.element_width and fmt.view.xbits == fmt.shared_exp_width
    assert fmt.view.xw == max(1, fmt.shared_exp_width)


@pytest.mark.parametrize("lanes", [1, 2, 16])
def test_check_lanes_wants_whole_blocks_of_beats_only_with_a_shared_exponent(lanes: int) -> None:
    FPFormat(5, 4).check_lanes(lanes, "storage.x")
    BFPFormat(16, 7, 8).check_lanes(lanes, "storage.x")
    if lanes > 1:
        with pytest.raises(SpecError, match=r"^storage.y.block = 1: expected a multiple of"):
            BFPFormat(1, 7, 8).check_lanes(lanes, "storage.y")


# --- every family brings all its parts -----------------------------------------------------------
def macros(path: Path) -> set[str]:
    return set(re.findall(r"<% macro (\w+)\(", path.read_text()))


#: a storage table of each family
EXAMPLES: dict[str, dict[str, Any]] = {
    "fp": {"kind": "fp", "man_bits": 4, "exp_bits": 5},
    "bfp": {"kind": "bfp", "block": 8, "man_bits": 4, "exp_bits": 5},
    "mx": {"kind": "mx", "element": "fp6_e3m2", "block": 8},
}


def test_every_family_has_an_example() -> None:
    assert set(EXAMPLES) == set(FAMILIES)


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_every_family_has_its_fragments_hooks_and_kernel(kind: str) -> None:
    cls = FAMILIES[kind]
    frag = cls.fragments
    root = template_root()
    rtl = root / "rtl" / frag.rtl
    assert macros(rtl) == macros(root / "rtl" / FPFormat.fragments.rtl) != set()
    hls = (root / frag.hls).read_text()
    assert "macro config_checks(t)" in hls
    assert (root / "hls" / f"{frag.hls_lib}.j2").is_file()
    for hooks, base in ((STORAGE_RTL, StorageRTL), (STORAGE_DSLX, StorageDSLX)):
        own = vars(hooks[kind])  # every hook of the generator, the family's own
        assert {n for n in vars(base) if not n.startswith("_")} <= set(own)
    fmt = build_storage(EXAMPLES[kind], "storage.x")
    k = kernel(fmt)
    assert len(k.params(fmt)) == PARAMS
    assert callable(k.encode_channel) and callable(k.decode_channel)
    assert isinstance(fmt.view, FormatView) and fmt.view.fragments == frag
    # the kernel pair round-trips: decoding the encoded patterns gives the encoded values
    vals = np.random.default_rng(1).normal(0, 3, (3, 37))
    enc = encode(vals, fmt)
    dec = Encoded.from_bits(fmt, 37, enc.bits, enc.exps)
    assert np.array_equal(dec.vals, enc.vals)


def test_fp_is_also_the_arithmetic_format() -> None:
    assert build_fp({"exp_bits": 8, "man_bits": 7}, "compute") == FPFormat(8, 7)


# --- no branch on a family outside the families ----------------------------------------------
#: the family modules, their generator hooks and kernels may name their own classes
FAMILY_HOMES = ("spec/formats/", "verify/kernels/")
#: being rewritten into a backend class (issue 14, item 3); its two BFP checks go with it
NOT_YET: tuple[str, ...] = ()


def _family_checks(tree: ast.AST) -> list[int]:
    """Lines of isinstance(..., FPFormat/BFPFormat) calls (also inside tuples)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id == "isinstance" and len(node.args) == 2:
            names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
            if names & {"FPFormat", "BFPFormat"} or any(n.endswith("Format") for n in names):
                out.append(node.lineno)
    return out


def test_no_module_decides_behaviour_by_a_format_class() -> None:
    """A new family cannot be forgotten in a branch: code outside the families asks a format
    its properties and methods, never which class it is."""
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(FAMILY_HOMES) or rel in NOT_YET:
            continue
        lines = _family_checks(ast.parse(path.read_text(), rel))
        if lines:
            found[rel] = lines
    assert found == {}


def test_the_check_finds_a_family_branch() -> None:
    code = "if isinstance(f, BFPFormat) or isinstance(g, (int, spec.FPFormat)):\n    pass\n"
    assert _family_checks(ast.parse(code)) == [1, 1]
    assert _family_checks(ast.parse("isinstance(f, int)")) == []


def test_no_template_branches_on_a_family() -> None:
    """Templates take a family's fragment (imported by name from the view), never test it."""
    hits = []
    for path in sorted(template_root().rglob("*.j2")):
        rel = path.relative_to(template_root()).as_posix()
        if rel.startswith("rtl/xls/"):  # the XLS backend's copies: rewritten with the backend
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(<%|\{%)\s*(el)?if\b[^%]*(\bbfp\b|\.kind\b|\bkind\s*[=!]=)", line):
                hits.append(f"{rel}:{i}: {line.strip()}")
    assert hits == []


# --- one view, read by every generator; the generators follow the family's beat rule ---------
def _spec_with(kind: str) -> Any:
    from lightnorm.spec import from_dict, load

    table = load("lightnorm").to_dict()
    for role in ("x", "dy"):
        table["storage"][role] = {"fp": {"kind": "fp", "exp_bits": 5, "man_bits": 6},
                                  "bfp": {"kind": "bfp", "block": 16, "man_bits": 7,
                                          "exp_bits": 8},
                                  "mx": {"kind": "mx", "element": "fp8_e4m3"}}[kind]
    return from_dict(table)


@pytest.mark.parametrize("kind", list(FAMILIES))
def test_generators_share_one_view_and_the_beat_rule(kind: str) -> None:
    from lightnorm.codegen.context import context
    from lightnorm.codegen.dslx_design import design
    from lightnorm.codegen.rtl import rtl_context

    spec = _spec_with(kind)
    x = spec.storage.x
    rc = rtl_context(spec)
    assert context(spec)["roles"]["x"] is rc["ctx"]["st"]["x"] is x.view
    assert rc["ctx"]["fp"]["a"] is spec.accum.view
    mods = rc["modules"].mods
    assert mods[rc["ctx"]["mods"]["x_to_a"]].ctx["f"] is spec.accum.view
    # the statistics hardware and the DSLX roles sum a beat exactly iff the family says so
    assert ("x_beat_sum" in rc["ctx"]["mods"]) == x.exact_beat_sum
    roles = {t.role for t in design(spec).tops}
    # MX beat sums have no DSLX function yet: the XLS backend keeps the template's (docs/xls.md)
    assert ("x_beat_sum" in roles) == (x.exact_beat_sum and kind != "mx")
