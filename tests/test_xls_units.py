"""The DSLX arithmetic units (Google XLS backend) against the golden primitives.

Every unit goes through XLS's JIT in batches (``jit_fn_predict``) and is compared pattern by
pattern with :mod:`lightnorm.verify.fpnum` (via ``cosim.unit_reference``, the same reference the
template RTL units are checked against): every input pair of FP(4,3) and FP(5,4) in both
rounding modes, >= 100k random + edge vectors per FP32 (and mixed-format) unit, once with the
standard library's ``apfloat`` behind nearest-even add/mul and once with the own code only. The
pipelined Verilog of each unit passes ``verilator --lint-only -Wall`` (one narrow waiver, see
``lightnorm.tools.xls.LINT_WAIVERS``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from lightnorm.codegen import dslx
from lightnorm.codegen.rtl import Unit
from lightnorm.errors import ToolError
from lightnorm.spec import FPFormat, SpecError
from lightnorm.tools import xls as xc
from lightnorm.verify import cosim

from .patterns import edge_patterns, valid_patterns

E3M2 = FPFormat(3, 2, "nearest")
E4M3 = FPFormat(4, 3, "nearest")
E4M3T = FPFormat(4, 3, "truncate")
E5M4 = FPFormat(5, 4, "nearest")
E5M4T = FPFormat(5, 4, "truncate")
E5M6T = FPFormat(5, 6, "truncate")
FP32 = FPFormat(8, 23, "nearest")
FP32T = FPFormat(8, 23, "truncate")
E8M15 = FPFormat(8, 15, "nearest")
E6M9 = FPFormat(6, 9, "nearest")
E11M23 = FPFormat(11, 23, "nearest")
KINDS = ("add", "mul", "recip", "sqrt")

# odd corners: 1-bit fractions (apfloat::mul is wrong there and is not used), 2-bit exponents
ODD = (FPFormat(3, 1, "nearest"), FPFormat(6, 1, "truncate"), FPFormat(2, 3, "nearest"),
       FPFormat(2, 1, "truncate"))
SMALL_UNITS = [Unit(k, f, f) for f in (E4M3, E4M3T, E5M4, E5M4T, *ODD) for k in KINDS] + [
    Unit("cvt", E4M3, E3M2), Unit("cvt", E3M2, E4M3), Unit("cvt", E4M3T, E5M6T),
    Unit("cvt", E5M6T, E3M2), Unit("cvt", E5M4, E4M3T), Unit("mul", E3M2, E4M3T),
    Unit("mul", E4M3, E3M2), Unit("mul", E5M4, E4M3), Unit("mul", E4M3T, E5M6T),
]
BIG_UNITS = [Unit(k, f, f) for f in (FP32, FP32T) for k in KINDS] + [
    Unit("mul", FP32, E8M15), Unit("mul", E6M9, E11M23), Unit("mul", E8M15, E6M9),
    Unit("cvt", FP32, E6M9), Unit("cvt", E6M9, FP32), Unit("cvt", FP32, E5M6T),
    Unit("cvt", E11M23, FP32T), Unit("cvt", FP32, E11M23),
]
IMPLS = {"apfloat": True, "own": False}
N_RANDOM = 100_000


def _apfloat_kind(u: Unit) -> bool:
    """Units that have an apfloat implementation (nearest-even add/mul of one format): with
    ``apfloat=False`` only these change, so the "own" runs check only these."""
    return (u.kind in dslx.BINARY_KINDS and u.fout.rounding == "nearest"
            and (u.fin.exp_bits, u.fin.man_bits) == (u.fout.exp_bits, u.fout.man_bits))


def _units(units: list[Unit], apfloat: bool) -> list[Unit]:
    return units if apfloat else [u for u in units if _apfloat_kind(u)]


# ---- input patterns -------------------------------------------------------------------------


def _off_reserved(f: FPFormat, x: np.ndarray) -> np.ndarray:
    ef = (x >> np.uint64(f.man_bits)) & np.uint64((1 << f.exp_bits) - 1)
    x[ef == (1 << f.exp_bits) - 1] ^= np.uint64(1 << f.man_bits)
    return x


def _random_patterns(f: FPFormat, n: int, rng: np.random.Generator) -> np.ndarray:
    return _off_reserved(f, rng.integers(0, 1 << f.width, n, dtype=np.uint64))


def _near(f: FPFormat, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Partners with exponents within +-3 and nearby fractions, random sign: cancellation,
    carries and ties for the adder, products near the overflow and flush edges."""
    m, w = f.man_bits, f.width
    d = rng.integers(-3, 4, a.size).astype(np.int64)
    b = (a.astype(np.int64) + (d << m) + rng.integers(-4, 5, a.size)) & ((1 << w) - 1)
    b = b.astype(np.uint64) ^ (rng.integers(0, 2, a.size).astype(np.uint64) << np.uint64(w - 1))
    return _off_reserved(f, b)


def _pairs(u: Unit, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """>= N_RANDOM random vectors plus every pair (or value) of the edge set."""
    edges = edge_patterns(u.fin)
    if u.kind in dslx.BINARY_KINDS:
        ea, eb = np.meshgrid(edges, edges)
        a = np.concatenate([ea.ravel(), _random_patterns(u.fin, N_RANDOM, rng)])
        b = np.concatenate([eb.ravel(), _random_patterns(u.fin, N_RANDOM, rng)])
        k = N_RANDOM // 4
        b[-k:] = _near(u.fin, a[-k:], rng)
        return a, b
    return np.concatenate([edges, _random_patterns(u.fin, N_RANDOM, rng)]), None


# ---- checking -------------------------------------------------------------------------------


def _check(mod: dslx.DslxModule, jobs: list[tuple[Unit, np.ndarray, np.ndarray | None]],
           cache: Path) -> dict[str, float]:
    failures = []
    t_jit = t_ref = 0.0
    for u, a, b in jobs:
        jit = xc.unit_jit(mod, u, cache=cache)
        t0 = time.perf_counter()
        got = jit(a, b) if b is not None else jit(a)
        t1 = time.perf_counter()
        exp = cosim.unit_reference(u, a, b)
        t_ref += time.perf_counter() - t1
        t_jit += t1 - t0
        assert got.shape == exp.shape == a.shape and a.size > 0
        bad = np.nonzero(got != exp)[0]
        if bad.size:
            j = int(bad[0])
            bj = f" b={int(b[j]):#x}" if b is not None else ""
            failures.append(f"{mod.functions[u]}: {bad.size}/{a.size} wrong, first a="
                            f"{int(a[j]):#x}{bj} expected {int(exp[j]):#x} got {int(got[j]):#x}")
    assert not failures, "\n".join(failures)
    return {"jit_s": t_jit, "ref_s": t_ref}


@pytest.fixture(scope="module")
def xls_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xls_cache")


@pytest.fixture(scope="module", params=list(IMPLS), ids=list(IMPLS))
def small_module(request: pytest.FixtureRequest) -> dslx.DslxModule:
    ap = IMPLS[request.param]
    return dslx.render_units(_units(SMALL_UNITS, ap), module="small_units", apfloat=ap,
                             batch=True)


@pytest.fixture(scope="module", params=list(IMPLS), ids=list(IMPLS))
def big_module(request: pytest.FixtureRequest) -> dslx.DslxModule:
    ap = IMPLS[request.param]
    return dslx.render_units(_units(BIG_UNITS, ap), module="big_units", apfloat=ap,
                             batch=True)


# ---- rendering ------------------------------------------------------------------------------


def test_render_is_deterministic_and_named_like_the_rtl() -> None:
    a = dslx.render_units(SMALL_UNITS, batch=True)
    b = dslx.render_units(SMALL_UNITS, batch=True)
    assert a.text == b.text and a.functions == b.functions
    assert a.functions[Unit("add", E4M3, E4M3)] == "fp_add_e4m3_rne"
    assert a.functions[Unit("mul", E3M2, E4M3T)] == "fp_mul_e3m2_to_e4m3_rtz"
    assert a.functions[Unit("cvt", E5M6T, E3M2)] == "fp_cvt_e5m6_to_e3m2_rne"
    assert a.functions[Unit("sqrt", E5M4T, E5M4T)] == "fp_sqrt_e5m4_rtz"
    for fn in set(a.functions.values()):
        assert a.text.count(f"\nfn {fn}(") == 1, fn


def test_apfloat_only_where_it_agrees_with_the_contract() -> None:
    ap = dslx.render_units(SMALL_UNITS, apfloat=True)
    own = dslx.render_units(SMALL_UNITS, apfloat=False)
    assert ap.uses_apfloat and "import apfloat;" in ap.text
    assert not own.uses_apfloat and "apfloat" not in own.text
    body = ap.text.split("\nfn fp_add_e4m3_rne(")[1].split("\n}\n")[0]
    assert "apfloat::add" in body
    assert "apfloat::add" in ap.text.split("\nfn fp_add_e3m1_rne(")[1].split("\n}\n")[0]
    # truncation, mixed formats and 1-bit-fraction products never use apfloat
    for fn in ("fp_add_e4m3_rtz", "fp_mul_e4m3_rtz", "fp_mul_e4m3_to_e3m2_rne",
               "fp_mul_e3m1_rne"):
        body = ap.text.split(f"\nfn {fn}(")[1].split("\n}\n")[0]
        assert "apfloat" not in body, fn


def test_literal_filters() -> None:
    assert dslx.ulit(5, 4) == "uN[4]:5"
    assert dslx.slit(-3, 6) == "sN[6]:-3"
    assert dslx.hlit(0x7DFF, 15) == "uN[15]:0x7dff"
    with pytest.raises(ValueError):
        dslx.ulit(16, 4)
    with pytest.raises(ValueError):
        dslx.slit(32, 6)
    env = dslx.environment()
    text = env.from_string("let x = {a, b} <@ n @>; <# note #>y").render(n=3)
    assert text == "let x = {a, b} 3; y"


def test_unsupported_rounding_is_rejected() -> None:
    odd = FPFormat(4, 3, "away")  # not a spec mode: built without validation on purpose
    with pytest.raises(SpecError, match="rounding"):
        dslx.render_units([Unit("add", odd, odd)])


def test_unit_format_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="one format"):
        dslx.render_units([Unit("add", E4M3, E5M4)])


# ---- the units through the JIT against fpnum ------------------------------------------------


def test_small_formats_exhaustive(small_module: dslx.DslxModule, xls_cache: Path) -> None:
    jobs: list[tuple[Unit, np.ndarray, np.ndarray | None]] = []
    for u in small_module.functions:
        pa = valid_patterns(u.fin)
        if u.kind in dslx.BINARY_KINDS:
            a, b = np.meshgrid(pa, pa)
            jobs.append((u, a.ravel(), b.ravel()))
        else:
            jobs.append((u, pa, None))
    # every pair: 240^2 for FP(4,3), 992^2 for FP(5,4) (reserved exponent left out)
    sizes = {(u.kind, u.fin): a.size for u, a, _ in jobs}
    assert sizes[("add", E4M3)] == 240 * 240 and sizes[("mul", E5M4)] == 992 * 992
    assert len(jobs) == len(_units(SMALL_UNITS, small_module.uses_apfloat))
    _check(small_module, jobs, xls_cache)


def test_fp32_random_and_edges(big_module: dslx.DslxModule, xls_cache: Path) -> None:
    rng = np.random.default_rng(20240611)
    jobs = [(u, *_pairs(u, rng)) for u in big_module.functions]
    assert all(a.size >= N_RANDOM for _, a, _ in jobs)
    _check(big_module, jobs, xls_cache)


def test_the_check_can_fail(xls_cache: Path) -> None:
    """A unit of the wrong rounding mode is caught (the comparison is not vacuous)."""
    mod = dslx.render_units([Unit("add", E4M3T, E4M3T), Unit("mul", E4M3T, E4M3T)],
                            module="wrong_units", batch=True)
    pa = valid_patterns(E4M3)
    a, b = (x.ravel() for x in np.meshgrid(pa, pa))
    for kind in ("add", "mul"):
        got = xc.unit_jit(mod, Unit(kind, E4M3T, E4M3T), cache=xls_cache)(a, b)
        exp = cosim.unit_reference(Unit(kind, E4M3, E4M3), a, b)
        assert np.count_nonzero(got != exp) > 1000, kind


def test_jit_batch_interface(xls_cache: Path) -> None:
    mod = dslx.render_units([Unit("cvt", FP32, E11M23)], module="cvt_units", batch=True)
    jit = xc.unit_jit(mod, Unit("cvt", FP32, E11M23), cache=xls_cache)
    one = np.array([0x3F800000, 0xBF800000, 0x00000001, 0x7F7FFFFF], np.uint64)
    got = jit(one)
    # 1.0, -1.0 widen exactly; a subnormal pattern reads as +0; max(FP32) is exact in E11M23
    assert got.dtype == np.uint64 and got.shape == (4,)
    assert [int(g) for g in got] == [0x1FF800000, 0x5FF800000, 0, 0x23F7FFFFF]
    assert jit(np.zeros(0, np.uint64)).shape == (0,)
    with pytest.raises(ValueError):
        jit(one, one)


# ---- compile: errors, cache, pipelined Verilog ------------------------------------------------


def test_xls_errors_are_one_line_tool_errors(tmp_path: Path) -> None:
    bad = dslx.DslxModule("broken", "fn broken_fn(a: u8) -> u8 { a + u7:1 }\n", {}, {})
    with pytest.raises(ToolError) as e:
        xc.optimized_ir(bad, "broken_fn", cache=tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "broken_fn" in msg and msg.startswith("xls: ")
    mod = dslx.render_units([Unit("add", FP32, FP32)], module="add32")
    with pytest.raises(ToolError) as e:  # a 30 ps clock is out of reach for an FP32 adder
        xc.pipeline(mod, "fp_add_e8m23_rne", options=xc.CodegenOptions(clock_ps=30),
                    cache=tmp_path)
    assert "\n" not in str(e.value) and "fp_add_e8m23_rne" in str(e.value)
    with pytest.raises(ToolError, match="delay model"):
        xc.pipeline(mod, "fp_add_e8m23_rne", options=xc.CodegenOptions(delay_model="tsmc3"),
                    cache=tmp_path)


def test_pipeline_cache_and_shape(tmp_path: Path) -> None:
    mod = dslx.render_units([Unit("mul", FP32, FP32)], module="mul32")
    fast = xc.CodegenOptions(clock_ps=3000)
    p1 = xc.pipeline(mod, "fp_mul_e8m23_rne", options=fast, cache=tmp_path)
    p2 = xc.pipeline(mod, "fp_mul_e8m23_rne", options=fast, cache=tmp_path)
    assert not p1.cached and p2.cached and p1.verilog == p2.verilog
    assert p1.meta() == p2.meta() and p1.xls_version == xc.xls_version()
    assert "module fp_mul_e8m23_rne(" in p1.verilog
    # I/O flops on: latency = stages + 1; a slower clock needs no more stages
    assert p1.latency == p1.stages + 1 and p1.stages >= 1
    slow = xc.pipeline(mod, "fp_mul_e8m23_rne", options=xc.CodegenOptions(clock_ps=50_000),
                       cache=tmp_path)
    assert not slow.cached and slow.stages == 1 and slow.stages <= p1.stages
    entries = [d for d in tmp_path.iterdir() if d.is_dir() and not d.name.startswith(".")]
    assert any((d / "fp_mul_e8m23_rne.v").exists() for d in entries)


@pytest.mark.parametrize("apfloat", list(IMPLS.values()), ids=list(IMPLS))
def test_pipelined_verilog_lint_wall_clean(apfloat: bool, xls_cache: Path) -> None:
    units = _units([u for u in SMALL_UNITS if u.fin.exp_bits == 4] + BIG_UNITS, apfloat)
    mod = dslx.render_units(units, module="lint_units", apfloat=apfloat)
    opts = xc.CodegenOptions(clock_ps=4000)
    seen = set()
    for u in units:
        fn = mod.functions[u]
        if fn in seen:
            continue
        seen.add(fn)
        p = xc.pipeline(mod, fn, options=opts, cache=xls_cache)
        assert p.latency >= 2  # input and output flops at least
        xc.lint(p)  # raises ToolError naming the unit on any warning


def test_lint_waiver_is_narrow() -> None:
    """The waiver covers XLS's partly used ``p*_comb`` wires only: an unused port still fails."""
    bad = xc.Pipeline(unit="x", module="lint_probe", latency=1, stages=1, clock_ps=1,
                      delay_model="unit", xls_version="", verilog=(
                          "module lint_probe(input wire clk, input wire [3:0] a, "
                          "output wire [1:0] out);\n"
                          "  wire [3:0] p0_n_comb;\n  assign p0_n_comb = a;\n"
                          "  assign out = p0_n_comb[1:0];\nendmodule\n"))
    with pytest.raises(ToolError, match="UNUSEDSIGNAL.*clk"):
        xc.lint(bad)
