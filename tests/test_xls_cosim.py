"""The XLS backend behind ``lightnorm_top`` (lightnorm.backends.xls): structure, Verilator lint,
and co-simulation with the template's cocotb testbench, bit-exact against the golden model.

Every preset forward and backward on random data and on the edge cases of ``cosim.edge_data``
(one simulator launch per spec: ``compare_many``), with random idle cycles on the sources and
random back-pressure on the sinks; two small specs with truncation, BFP carry-raise, one lane and
standard BN on BFP storage (the sum-of-squares beat); deliberately miswired XLS modules must be
caught.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from lightnorm.backends import xls as backend
from lightnorm.cli import core as cli
from lightnorm.codegen import rtl
from lightnorm.errors import ToolError
from lightnorm.spec import BFPFormat, Spec, from_dict, load, preset_names
from lightnorm.tools import verilator as vlt
from lightnorm.tools.xls import xls_version
from lightnorm.verify import cosim

from .test_cosim import TINY

PRESETS = preset_names()

TINY_RANGE = dict(TINY, name="tiny-xls-range")  # the template cosim tests' tiny spec
TINY_STD = {
    "name": "tiny-xls-std", "bn": {"mode": "standard"},
    "hw": {"lanes": 2, "max_channel_elems": 256},
    "storage": {
        "x": {"kind": "bfp", "block": 2, "man_bits": 5, "exp_bits": 5, "rounding": "truncate"},
        "y": {"kind": "fp", "exp_bits": 4, "man_bits": 3},
        "dy": {"kind": "bfp", "block": 2, "man_bits": 6, "exp_bits": 5},
        "dx": {"kind": "bfp", "block": 4, "man_bits": 3, "exp_bits": 4, "rounding": "truncate",
               "carry": "raise"},
    },
    "compute": {"exp_bits": 5, "man_bits": 6, "rounding": "truncate"},
    "accum": {"exp_bits": 8, "man_bits": 13},
    "scalar": {"exp_bits": 8, "man_bits": 10, "rounding": "truncate"},
}


def _cases(spec: Spec, seed: int) -> list[cosim.Case]:
    lanes = spec.hw.lanes
    n = min(max(spec.min_channel_elems(), 4 * lanes + 3), spec.hw.max_channel_elems)
    es = cosim.edge_shape(spec)
    return [
        cosim.Case("random-a", (1, 3, 1, n), seed, "both"),
        cosim.Case("random-b", (2, 2, 1, max(spec.min_channel_elems(), 2 * lanes)), seed + 1,
                   "both"),
        cosim.Case("edge", es, seed + 2, "both", cosim.edge_data(spec, es, seed + 2)),
    ]


def _assert_exact(results: list[dict[str, Any]]) -> None:
    for r in results:
        assert r["backend"] == "xls"
        assert r["elements"] > 0, r
        assert r["bit_exact"], cosim.describe(r)
        assert set(r["cycles_by_pass"]) == {"forward", "backward"}


def _ports(verilog: str) -> str:
    m = re.search(r"module lightnorm_top\s*\((.*?)\);", verilog, re.DOTALL)
    assert m is not None
    return m.group(1)


# ---- structure -----------------------------------------------------------------------------


#: XLS modules / generated modules in the design per preset (docs/xls.md): operator adapters
#: (template module names) + per-lane modules (ln_norm_lane, ln_dx_lane, 3 storage decoders);
#: the two finalize pipelines, (BFP x) the beat-sum modules and (BFP y/dx) the encoders'
#: scan and quantizer come on top (MX: the decoders only; its beat sums and encoder parts stay
#: the template's, docs/xls.md; mxint8's x and dy decoders are one XLS module). The BFP-native
#: backward (lightnorm, lightnorm-aggressive: range BN, exact_dot) has no per-lane x_hat, dy -> A
#: or A product: one operator (the S -> P copies) and a beat dot product on top of the beat sums
COUNTS = {"lightnorm": (10, 1, 4), "lightnorm-aggressive": (10, 1, 4),
          "fp32-baseline": (7, 3, 5), "bf16-standard": (12, 8, 5),
          "lightnorm-mxfp8": (13, 6, 5), "lightnorm-mxint8": (12, 6, 5)}


def _regs(verilog: str) -> list[str]:
    """The valid/last/mask register chain of a lane pipeline (its cycle timing)."""
    return re.findall(r"^\s*([vlm]\d <= [^;]+);", verilog, re.MULTILINE)


@pytest.mark.parametrize("preset", PRESETS)
def test_design_structure(preset: str) -> None:
    """Every add/mul/cvt of the template design outside the finalize is an adapter around an
    XLS module; the lanes' normalize and dx arithmetic and the x/dy storage decoders of the
    lanes are generated per-lane modules around XLS modules (norm_lane, dx_lane, bfp_cvt/cvt)
    inside the lane pipelines (the template's, with the XLS backend's blocks), which keep the
    template's register stages; ln_finalize (template ports) runs two XLS pipelines and no
    template operator; the wrapper and the rest of the shell are the template's, byte for
    byte."""
    spec = load(preset)
    tpl = rtl.render_rtl(spec, rtl.Combinational())  # the XLS shell: no registers in units
    b = backend.build(spec)
    files = b.files
    kinds = {"fp_add_": "add", "fp_mul_": "mul", "fp_cvt_": "cvt", "fp_recip_": "recip",
             "fp_sqrt_": "sqrt"}
    ops = [r for r in b.replaced
           if r.kind not in (*backend.LANE_KINDS, "finalize", "beat", "scan", "quant")]
    beats = {r.module: r for r in b.replaced if r.kind == "beat"}
    codec = {r.module: r for r in b.replaced if r.kind in ("scan", "quant")}
    lanes = {r.module: r for r in b.replaced if r.kind in backend.LANE_KINDS}
    fin = {r.function.split("_")[2]: r for r in b.replaced if r.kind == "finalize"}
    # every template operator left in the design is an adapter; the reciprocal and square
    # root served only the template's finalize sequencer
    # (an accumulator's adder, which selects its operands from the partials, stays the
    # template's)
    expected = sorted(f[:-2] for f in files if f.startswith(tuple(kinds))
                      and not f.startswith("fp_add_acc"))
    assert sorted(r.module for r in ops) == expected
    assert not any(f.startswith(("fp_recip_", "fp_sqrt_")) for f in files)
    n_xls, n_ops, n_lane = COUNTS[preset]
    assert (len(b.xls_modules()), len(ops), len(lanes)) == (n_xls, n_ops, n_lane)
    for r in b.replaced:
        if r.kind != "finalize":  # checked below
            assert f"{r.xls_module} u_xls (" in files[f"{r.module}.v"]
        assert files[f"{r.xls_module}.v"].startswith(f"module {r.xls_module}(")
        assert r.xls_module == "xls_" + r.function
        assert r.generator == ("pipeline" if r.kind in ("recip", "sqrt", "finalize")
                               else "combinational")
        assert (r.latency >= 2) == (r.generator == "pipeline")
        assert r.module not in b.template_modules and r.xls_module not in b.template_modules
    for r in ops:
        # the adapter keeps the template module's ports
        assert _ports_of(files[f"{r.module}.v"], r.module) == _ports_of(tpl[f"{r.module}.v"],
                                                                        r.module)
    # the per-lane modules and the DSLX functions behind them
    roles = spec.storage.roles()
    mode = "std" if spec.bn.mode == "standard" else "range"
    assert lanes["ln_norm_lane"].function.startswith("ln_norm_lane_")
    assert lanes["ln_dx_lane"].function.startswith(f"ln_dx_lane_{mode}_")
    dot, xpath = spec.exact_dot, spec.bn.mode == "standard" or not spec.exact_dot
    for name, role in (("ln_x_to_p", "x"), ("ln_dy_to_p", "dy"), ("ln_dy_to_a", "dy")):
        if dot and name == "ln_dy_to_a":
            assert name not in lanes
            continue
        assert lanes[name].kind == "decode"
        kind = roles[role].kind  # fp_cvt_, bfp_cvt_, mx_cvt_: block formats take the shared field
        assert lanes[name].function.startswith(f"{kind}_cvt_"), name
        assert _ports_of(files[f"{name}.v"], name).count("input") == (1 if kind == "fp" else 2)
    fwd, bwd = files["ln_fwd_lanes.v"], files["ln_bwd_lanes.v"]
    ctx_mods = rtl.rtl_context(spec, rtl.Combinational())["ctx"]["mods"]
    assert "ln_norm_lane u_norm (" in fwd and "ln_x_to_p u_to_p (" in fwd
    assert "ln_dx_lane u_dx (" in bwd and ("ln_x_to_p u_xp (" in bwd) == xpath
    assert "ln_dy_to_p u_dp (" in bwd and ("ln_dy_to_a u_da (" in bwd) == (not dot)
    # the template's lane arithmetic and decoders are not instantiated in the lanes any more
    # (add_P and mul_P stay for x - mu and x_hat in the backward lanes)
    for role in ("mul_p", "add_p", "x_unpack", "x_to_p"):
        assert f"{ctx_mods[role]} u_" not in fwd, role
    for role in ("x_unpack", "x_to_p", "dy_unpack", "dy_to_p", "dy_to_a"):
        assert role not in ctx_mods or f"{ctx_mods[role]} u_" not in bwd, role
    ops_bwd = set(re.findall(r"^\s*fp_\w+ (u_\w+) \(", bwd, re.MULTILINE))
    assert ops_bwd <= {"u_d", "u_xh", "u_xa", "u_prod", "u_cvt"}, ops_bwd
    # (BFP-native: the products are the dot unit's; x - mu and x_hat only for standard BN)
    assert ({"u_d", "u_xh"} <= ops_bwd) == xpath
    assert ({"u_xa", "u_prod"} <= ops_bwd) == (not dot)
    assert set(re.findall(r"^\s*fp_\w+ (u_\w+) \(", fwd, re.MULTILINE)) <= {"u_cvt"}
    # same cycle timing: the lanes' valid/last/mask register chains are the template's
    for name in ("ln_fwd_lanes.v", "ln_bwd_lanes.v"):
        assert files[name] != tpl[name]
        assert _regs(files[name]) == _regs(tpl[name]) and _regs(files[name])
    assert _ports(files["lightnorm_top.v"]) == _ports(tpl["lightnorm_top.v"])
    assert files["lightnorm_top.v"] == tpl["lightnorm_top.v"]
    # the finalize: the template's ports around the forward and backward XLS pipelines
    mode = "std" if spec.bn.mode == "standard" else "range"
    assert sorted(fin) == ["bwd", "fwd"]
    assert _ports_of(files["ln_finalize.v"], "ln_finalize") == _ports_of(
        tpl["ln_finalize.v"], "ln_finalize")
    for tag, r in fin.items():
        assert r.module == "ln_finalize" and r.function.startswith(f"ln_fin_{tag}_{mode}_")
        assert f"{r.xls_module} u_{tag} (" in files["ln_finalize.v"]
    assert not re.findall(r"^\s*fp_\w+ u_", files["ln_finalize.v"], re.MULTILINE)
    assert fin["fwd"].latency > fin["bwd"].latency
    # the statistics step of BFP storage: the template's beat-sum modules around XLS ones
    bfp_beats = sorted(f[:-2] for f in tpl if f.startswith(("ln_bfp_beat_", "ln_bfp_dot_")))
    assert sorted(beats) == bfp_beats
    assert bool(bfp_beats) == isinstance(roles["x"], BFPFormat)
    assert any(b.startswith("ln_bfp_dot_") for b in bfp_beats) == dot
    # the BFP output encoders: their beat exponent scan and element quantizer from XLS
    bfp_sides = sorted(f[:-2] for f in tpl if f.startswith(("bfp_scan_", "bfp_quant_")))
    assert sorted(codec) == bfp_sides
    assert len(bfp_sides) == 2 * len({spec.storage.roles()[r] for r in ("y", "dx")
                                      if isinstance(roles[r], BFPFormat)})
    for name, r in {**beats, **codec}.items():
        assert r.function == name and r.generator == "combinational"
        assert _ports_of(files[f"{name}.v"], name) == _ports_of(tpl[f"{name}.v"], name)
    for enc in (f[:-2] for f in files if f.startswith("bfp_enc_")):  # the buffer stays
        assert files[f"{enc}.v"] == tpl[f"{enc}.v"] and enc in b.template_modules
    for name in ("ln_fwd_lanes", "ln_bwd_lanes"):
        assert _ports_of(files[f"{name}.v"], name) == _ports_of(tpl[f"{name}.v"], name)
    assert "fp_round" not in " ".join(r.module for r in b.replaced)
    assert set(b.dropped).isdisjoint(f[:-2] for f in files)
    assert files["lightnorm.f"].split() == sorted(f for f in files if f.endswith(".v"))
    # deterministic (and served from the XLS cache)
    assert backend.render_xls_rtl(spec) == files


def test_lane_options() -> None:
    """lanes="template" keeps the template's lane pipelines (XLS operators only); decode=
    "template" keeps the template's storage decoders inside the XLS lanes."""
    spec = load("lightnorm")
    tpl = rtl.render_rtl(spec, rtl.Combinational())  # the XLS shell: no registers in units
    t = backend.build(spec, lanes="template", decode="template")
    assert not {r.kind for r in t.replaced} & set(backend.LANE_KINDS)
    for name in ("ln_fwd_lanes.v", "ln_bwd_lanes.v"):
        assert t.files[name] == tpl[name]
    d = backend.build(spec, decode="template")
    assert {r.kind for r in d.replaced if r.kind in backend.LANE_KINDS} == {"norm_lane",
                                                                            "dx_lane"}
    mods = rtl.rtl_context(spec, rtl.Combinational())["ctx"]["mods"]
    assert f"{mods['x_unpack']} u_unpack (" in d.files["ln_fwd_lanes.v"]
    assert "ln_norm_lane u_norm (" in d.files["ln_fwd_lanes.v"]
    for bad in ({"lanes": "maybe"}, {"decode": "maybe"}, {"lanes": "template"}):
        with pytest.raises(ValueError):
            backend.build(spec, **bad)


def _ports_of(verilog: str, module: str) -> str:
    m = re.search(rf"module {module} \((.*?)\);", verilog, re.DOTALL)
    assert m is not None
    return m.group(1)


def test_finalize_and_iterative_options() -> None:
    """finalize="template" keeps the template's sequencer, with XLS recip/sqrt pipelines
    behind its handshake or, with iterative="template", its iterative units."""
    spec = load("fp32-baseline")
    tpl = rtl.render_rtl(spec, rtl.Combinational())  # the XLS shell: no registers in units
    f = backend.build(spec, finalize="template")
    assert f.files["ln_finalize.v"] == tpl["ln_finalize.v"]
    piped = {r.module: r for r in f.replaced if r.kind in ("recip", "sqrt")}
    assert sorted(piped) == ["fp_recip_e8m23_rne", "fp_sqrt_e8m23_rne"]
    assert all(r.generator == "pipeline" and r.latency >= 2 for r in piped.values())
    b = backend.build(spec, finalize="template", iterative="template")
    assert {r.kind for r in b.replaced} == {"add", "mul", "cvt", *backend.LANE_KINDS}
    assert b.files["fp_recip_e8m23_rne.v"] == tpl["fp_recip_e8m23_rne.v"]
    for bad in ({"iterative": "maybe"}, {"finalize": "maybe"}):
        with pytest.raises(ValueError):
            backend.build(spec, **bad)
    with pytest.raises(ValueError):
        cosim.model_files(spec, backend="vhdl")


# ---- lint ----------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
def test_lint_wall_clean_with_waivers(preset: str, tmp_path: Path) -> None:
    """``verilator --lint-only -Wall`` of the XLS design is clean with the backend's
    ``lint_waivers``; without them the only warnings are partly used node wires inside
    XLS-generated files."""
    files = backend.render_xls_rtl(load(preset))
    waivers = backend.XlsBackend.lint_waivers
    assert waivers == backend.LINT_WAIVERS
    log = vlt.lint({**files, "waivers.vlt": waivers}, rtl.TOP, extra=["waivers.vlt"])
    assert "%Warning" not in log and "%Error" not in log
    try:
        # in tmp_path: the failing lint's log outlives the call
        bare = vlt.lint(files, rtl.TOP, workdir=tmp_path)
    except ToolError as e:
        assert e.tool == "verilator" and e.returncode
        bare = e.tail
    warnings = [ln for ln in bare.splitlines() if ln.startswith("%Warning")]
    assert warnings, "the waiver is not needed any more: remove it"
    for w in warnings:
        assert re.match(r"%Warning-UNUSEDSIGNAL: xls_\w+\.v:\d+:\d+: Bits of signal are not "
                        r"used: ", w), w


# ---- co-simulation -------------------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_forward_backward_bit_exact(preset: str) -> None:
    spec = load(preset)
    _assert_exact(cosim.compare_many(spec, _cases(spec, 23), backend="xls"))


@pytest.mark.parametrize("table", [TINY_RANGE, TINY_STD], ids=["range", "standard"])
def test_small_specs_bit_exact(table: dict[str, Any]) -> None:
    spec = from_dict(table)
    _assert_exact(cosim.compare_many(spec, _cases(spec, 5), stress=0.5, backend="xls"))


@pytest.mark.parametrize(("spec", "cases"), [
    (load("lightnorm").with_normalize("centered"), (0, 1, 2)),
    (from_dict(TINY_RANGE).with_normalize("centered"), (0, 1, 2)),
    (load("bf16-standard").with_normalize("centered"), (0, 1, 2))],
    ids=["lightnorm", "tiny-range", "bf16-standard"])
def test_centered_bit_exact(spec: Spec, cases: tuple[int, ...]) -> None:
    """The centered normalize form (docs/numerics.md section 8): x - mu in the template's lane
    stage (an XLS adder), then the XLS normalize lane with beta as its addend; lint-clean with
    the waivers; the edge case (2) holds an all-zero and a constant channel (y = beta)."""
    files = backend.render_xls_rtl(spec)
    log = vlt.lint({**files, "waivers.vlt": backend.LINT_WAIVERS}, rtl.TOP, extra=["waivers.vlt"])
    assert "%Warning" not in log and "%Error" not in log
    assert ".shift(beta_p)" in files["ln_fwd_lanes.v"] and "u_d (" in files["ln_fwd_lanes.v"]
    every = _cases(spec, 29)
    _assert_exact(cosim.compare_many(spec, [every[i] for i in cases], backend="xls"))


def test_model_cache_is_per_backend() -> None:
    spec = load("lightnorm")
    t = cosim.model_dir(spec)
    x = cosim.model_dir(spec, backend="xls")
    assert t != x and x.name == f"{spec.hash}-xls{xls_version()}"
    assert cosim.model_files(spec, "xls") != cosim.model_files(spec)


def test_miswired_adapter_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The XLS adder of the lanes (x - mu in the backward lanes; the forward lanes use the XLS
    normalize lane) fed with (a, a) instead of (a, b): mismatches reported."""
    table = {**TINY_RANGE, "name": "tiny-xls-broken"}
    spec = from_dict(table)
    orig = backend.render_xls_rtl
    target = f"fp_add_e{spec.compute.exp_bits}m{spec.compute.man_bits}_rne.v"

    def broken(*args: Any, **kw: Any) -> dict[str, str]:
        files = dict(orig(*args, **kw))
        text = files[target]
        bad = re.sub(r"\.(\w+)\(b\)", r".\1(a)", text)
        assert bad != text
        files[target] = bad
        return files

    monkeypatch.setattr(backend, "render_xls_rtl", broken)
    r = cosim.compare(spec, (1, 2, 1, 13), seed=5, pass_="backward", backend="xls")
    assert not r["bit_exact"] and r["mismatches"] > 0 and r["first_mismatches"]


@pytest.mark.parametrize(("target", "pattern", "repl", "pass_"), [
    ("ln_norm_lane.v", r"\.shift\(shift\)", ".shift(scale)", "forward"),
    ("ln_dx_lane.v", r"\.mdb\(mdb\)", ".mdb(dy)", "backward"),
    ("ln_x_to_p.v", r"\.ef\(ef\)", ".ef(ef + 1'b1)", "forward"),
    ("ln_bfp_beat_sum_", r"\.mask\(in_mask\)", ".mask(~in_mask)", "forward"),
    ("ln_finalize.v", r"r_scale, r_shift", "r_shift, r_scale", "forward"),
    ("bfp_quant_", r"\.eb\(eb\)", ".eb(eb - 1'b1)", "forward"),
], ids=["norm_lane", "dx_lane", "x_decoder", "beat_sum", "finalize", "bfp_quant"])
def test_miswired_lane_module_is_caught(monkeypatch: pytest.MonkeyPatch, target: str,
                                        pattern: str, repl: str, pass_: str,
                                        request: pytest.FixtureRequest) -> None:
    """A miswired XLS module (normalize lane, dx lane, BFP x decoder, the statistics beat sum,
    the finalize's result order, the BFP y encoder's quantizer): mismatches."""
    # one spec name (so one model directory) per case: the cases run in parallel
    case = request.node.callspec.id.replace("_", "-")
    spec = from_dict({**TINY_RANGE, "name": f"tiny-xls-broken-{case}"})
    orig = backend.render_xls_rtl

    def broken(*args: Any, **kw: Any) -> dict[str, str]:
        files = dict(orig(*args, **kw))
        name = next(f for f in files if f.startswith(target))
        text = files[name]
        bad = re.sub(pattern, repl, text)
        assert bad != text
        files[name] = bad
        return files

    monkeypatch.setattr(backend, "render_xls_rtl", broken)
    r = cosim.compare(spec, (1, 2, 1, 13), seed=5, pass_=pass_, backend="xls")
    assert not r["bit_exact"] and r["mismatches"] > 0 and r["first_mismatches"]


def test_cli_cosim_backend_xls(capsys: pytest.CaptureFixture[str]) -> None:
    spec = load("lightnorm")
    n = max(spec.min_channel_elems(), 2 * spec.hw.lanes)
    code = cli.main(["cosim", "lightnorm", "--backend", "xls", "--shape", f"1,2,1,{n}",
                     "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["bit_exact"] and out["backend"] == "xls" and out["elements"] > 0
