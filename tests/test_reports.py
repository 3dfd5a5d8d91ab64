"""Report parsers on committed real-format reports (tests/data/reports/README.md says where each
format comes from): exact values, kind detection, and loud failures on truncated or malformed
files. Also ``lightnorm parse``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from lightnorm.cli import core as cli
from lightnorm.cli.parse import PARSE_HELP, add_parse_arguments, cmd_parse
from lightnorm.errors import LightnormError, UsageError
from lightnorm.tools import parsers
from lightnorm.tools.parsers import (
    HlsCsynth,
    ReportParseError,
    StaChecks,
    StaLog,
    StaPower,
    VivadoPower,
    VivadoUtilization,
    YosysStat,
    detect_kind,
    parse_file,
)

DATA = Path(__file__).parent / "data" / "reports"
TRUNC = DATA / "truncated"

COUNTER8_070 = {"AND2X1": 5, "AOI21X1": 1, "DFFPOSX1": 8, "INVX1": 2, "NAND2X1": 1,
                "NAND3X1": 2, "NOR2X1": 7, "NOR3X1": 1, "OAI21X1": 7, "XNOR2X1": 1}
COUNTER8_023 = {"AND2X1": 4, "AOI21X1": 1, "DFFPOSX1": 8, "INVX1": 3, "NAND3X1": 2,
                "NOR2X1": 8, "NOR3X1": 1, "OAI21X1": 7, "XOR2X1": 1}

EXPECTED_KIND = {
    "yosys-0.70_stat_liberty.txt": "yosys-stat",
    "yosys-0.70_stat.txt": "yosys-stat",
    "yosys-0.70_stat_flat_liberty.txt": "yosys-stat",
    "yosys-0.70_stat_no_top.txt": "yosys-stat",
    "yosys-0.23_stat_liberty.txt": "yosys-stat",
    "yosys-0.23_stat.txt": "yosys-stat",
    "yosys-0.70_stat_liberty.json": "yosys-stat-json",
    "yosys-0.70_stat.json": "yosys-stat-json",
    "yosys-0.23_stat_liberty.json": "yosys-stat-json",
    "opensta-2.0.17_checks_met.rpt": "opensta-checks",
    "opensta-2.0.17_checks_violated.rpt": "opensta-checks",
    "opensta-2.0.17_power.rpt": "opensta-power",
    "opensta-2.0.17_power_digits4.rpt": "opensta-power",
    "opensta-newer_power.rpt": "opensta-power",
    "opensta-2.0.17_log.txt": "opensta-log",
    "vivado_hls-2018.2_csynth.xml": "hls-csynth",
    "vivado_hls-2019.1_csynth.xml": "hls-csynth",
    "vitis_hls-2021.1_csynth.xml": "hls-csynth",
    "vitis_hls-2022.2_csynth.xml": "hls-csynth",
    "vivado-2019.2_utilization_synth.rpt": "vivado-utilization",
    "vivado-2022.2_utilization_synth.rpt": "vivado-utilization",
    "vivado-2019.2_power_routed.rpt": "vivado-power",
}


def test_every_fixture_has_an_expected_kind() -> None:
    reports = {p.name for p in DATA.iterdir() if p.is_file() and p.suffix not in (".md", ".v")}
    assert reports == set(EXPECTED_KIND)


@pytest.mark.parametrize("name", sorted(EXPECTED_KIND))
def test_kind_is_detected_from_content_not_name(name: str) -> None:
    text = (DATA / name).read_text()
    assert detect_kind(text, name) == EXPECTED_KIND[name]
    # the same content under a meaningless name is detected the same way
    assert detect_kind(text, "report.dat") == EXPECTED_KIND[name]


# --- Yosys ----------------------------------------------------------------------------------------
def test_yosys_070_text_with_liberty() -> None:
    kind, s = parse_file(DATA / "yosys-0.70_stat_liberty.txt")
    assert kind == "yosys-stat" and isinstance(s, YosysStat)
    assert (s.source, s.yosys_version, s.top, s.has_area) == ("text", None, "top", True)
    assert s.cells == 43
    assert s.cell_types == {**COUNTER8_070, "XOR2X1": 8}
    assert s.area == 1985.0 and s.sequential_area == 768.0
    assert s.unknown_area_types == ()
    top, cnt = s.modules["top"], s.modules["counter8"]
    assert (top.cells, top.cell_types, top.submodules) == (8, {"XOR2X1": 8}, {"counter8": 1})
    assert (top.area, top.sequential_area, top.wires, top.wire_bits) == (448.0, 0.0, 6, 27)
    assert (cnt.cells, cnt.cell_types, cnt.submodules) == (35, COUNTER8_070, {})
    assert (cnt.area, cnt.sequential_area, cnt.wires, cnt.wire_bits) == (1537.0, 768.0, 31, 38)


def test_yosys_070_text_without_liberty() -> None:
    _, s = parse_file(DATA / "yosys-0.70_stat.txt")
    assert (s.top, s.has_area, s.area, s.sequential_area) == ("top", False, None, None)
    assert s.cells == 43 and s.cell_types == {**COUNTER8_070, "XOR2X1": 8}
    assert s.modules["top"].submodules == {"counter8": 1}
    assert s.modules["counter8"].area is None


def test_yosys_070_flat_design_without_hierarchy_section() -> None:
    _, s = parse_file(DATA / "yosys-0.70_stat_flat_liberty.txt")
    assert list(s.modules) == ["top"] and s.top == "top"
    # flatten leaves one $scopeinfo cell, which has no area: reported, not hidden
    assert s.cells == 44 and s.cell_types["$scopeinfo"] == 1
    assert s.unknown_area_types == ("$scopeinfo",)
    assert s.area == 1985.0 and s.sequential_area == 768.0


def test_yosys_023_text_layouts() -> None:
    _, s = parse_file(DATA / "yosys-0.23_stat_liberty.txt")
    assert (s.top, s.has_area, s.cells) == ("top", True, 43)
    assert s.cell_types == {**COUNTER8_023, "XOR2X1": 9}
    assert s.area == 1969.0 and s.sequential_area is None  # 0.23 does not print it
    # 0.23 counts the submodule instance among the cells of 'top': normalized away
    top = s.modules["top"]
    assert (top.cells, top.cell_types, top.submodules, top.area) == (
        8, {"XOR2X1": 8}, {"counter8": 1}, 448.0)
    assert s.modules["counter8"].area == 1521.0
    assert s.unknown_area_types == ()  # "counter8 is unknown" is a submodule, not a cell

    _, n = parse_file(DATA / "yosys-0.23_stat.txt")
    assert (n.has_area, n.area, n.cells, n.cell_types) == (False, None, 43, s.cell_types)


def test_yosys_070_json_matches_text() -> None:
    _, j = parse_file(DATA / "yosys-0.70_stat_liberty.json")
    _, t = parse_file(DATA / "yosys-0.70_stat_liberty.txt")
    assert j.source == "json" and j.yosys_version.startswith("Yosys 0.70 ")
    assert (j.top, j.cells, j.cell_types, j.area, j.sequential_area) == (
        t.top, t.cells, t.cell_types, t.area, t.sequential_area)
    # 0.70 JSON gives module areas including submodules; normalized to the local area
    for name in ("top", "counter8"):
        a, b = j.modules[name], t.modules[name]
        assert (a.cells, a.cell_types, a.submodules, a.area, a.sequential_area, a.wires,
                a.wire_bits) == (b.cells, b.cell_types, b.submodules, b.area,
                                 b.sequential_area, b.wires, b.wire_bits)

    _, n = parse_file(DATA / "yosys-0.70_stat.json")
    assert (n.has_area, n.area, n.cells) == (False, None, 43)


def test_yosys_023_json_has_no_area() -> None:
    _, j = parse_file(DATA / "yosys-0.23_stat_liberty.json")
    assert j.yosys_version == "Yosys 0.23 (git sha1 7ce5011c24b)"
    assert (j.top, j.has_area, j.area, j.cells) == ("top", False, None, 43)
    assert j.modules["top"].cells == 8 and j.modules["top"].submodules == {"counter8": 1}


def test_yosys_stat_of_a_whole_log_uses_the_last_stat() -> None:
    first = (DATA / "yosys-0.70_stat.txt").read_text()
    last = (DATA / "yosys-0.70_stat_liberty.txt").read_text()
    log = "Yosys log\n" + first + "\n9. Executing ABC pass.\n" + last
    kind, s = parsers.parse_text(log, "yosys.log")
    assert kind == "yosys-stat" and s.area == 1985.0


# --- OpenSTA --------------------------------------------------------------------------------------
def test_sta_checks_met() -> None:
    kind, c = parse_file(DATA / "opensta-2.0.17_checks_met.rpt")
    assert kind == "opensta-checks" and isinstance(c, StaChecks)
    hold, setup = c.paths
    assert (hold.startpoint, hold.endpoint, hold.path_group, hold.path_type) == (
        "u_cnt/_58_", "u_cnt/_58_", "clk", "min")
    assert (hold.data_arrival, hold.data_required, hold.slack, hold.met) == (0.27, 0.0, 0.26, True)
    assert (setup.startpoint, setup.endpoint, setup.path_type) == ("en", "u_cnt/_61_", "max")
    assert (setup.data_arrival, setup.data_required, setup.slack) == (1.09, 4.81, 3.72)
    assert c.met and c.worst("max") is setup and c.worst("min") is hold


def test_sta_checks_violated_with_fields_and_digits() -> None:
    _, c = parse_file(DATA / "opensta-2.0.17_checks_violated.rpt")
    assert [(p.endpoint, p.data_arrival, p.data_required, p.slack, p.met) for p in c.paths] == [
        ("u_cnt/_61_", 0.901, 0.612, -0.289, False),
        ("u_cnt/_60_", 0.908, 0.639, -0.269, False),
    ]
    assert not c.met and c.worst().slack == -0.289
    with pytest.raises(LookupError):
        c.worst("min")


def test_sta_power() -> None:
    kind, p = parse_file(DATA / "opensta-2.0.17_power.rpt")
    assert kind == "opensta-power" and isinstance(p, StaPower)
    assert list(p.groups) == ["Sequential", "Combinational", "Macro", "Pad"]
    seq = p.groups["Sequential"]
    assert (seq.internal_w, seq.switching_w, seq.leakage_w, seq.total_w) == (
        3.81e-04, 2.32e-05, 1.29e-09, 4.05e-04)
    assert (p.total.internal_w, p.total.switching_w, p.total.leakage_w, p.total.total_w) == (
        4.47e-04, 3.77e-05, 4.00e-09, 4.84e-04)

    _, d = parse_file(DATA / "opensta-2.0.17_power_digits4.rpt")
    assert d.total.total_w == 4.8437e-04 and d.groups["Combinational"].internal_w == 6.5313e-05


def test_sta_power_newer_layout_with_clock_group() -> None:
    _, p = parse_file(DATA / "opensta-newer_power.rpt")
    assert list(p.groups) == ["Sequential", "Combinational", "Clock", "Macro", "Pad"]
    assert p.total.total_w == 4.34e-04 and p.total.switching_w == 5.42e-05


def test_sta_log_holds_both() -> None:
    kind, log = parse_file(DATA / "opensta-2.0.17_log.txt")
    assert kind == "opensta-log" and isinstance(log, StaLog)
    assert [x.slack for x in log.checks.paths] == [3.72]
    assert log.power.total.total_w == 4.84e-04


# --- HLS csynth.xml -------------------------------------------------------------------------------
def test_csynth_vivado_hls_2018_dsp48e_no_uram() -> None:
    kind, r = parse_file(DATA / "vivado_hls-2018.2_csynth.xml")
    assert kind == "hls-csynth" and isinstance(r, HlsCsynth)
    assert r == HlsCsynth("2018.2", "bn_fp32_baseline", "xc7z020clg484-1", 10.0, 1.25, 8.512,
                          3211, 3219, 3212, 3220, lut=9870, ff=6093, dsp=21, bram_18k=4,
                          uram=None)  # no <URAM> element: absent, not 0


def test_csynth_vivado_hls_2019_dsp48e_with_uram() -> None:
    _, r = parse_file(DATA / "vivado_hls-2019.1_csynth.xml")
    assert (r.dsp, r.uram, r.lut, r.ff, r.bram_18k) == (8, 1, 5104, 3377, 2)
    assert (r.best_latency_cycles, r.worst_latency_cycles) == (812, 818)
    assert (r.target_clock_ns, r.estimated_clock_ns) == (5.0, 4.375)


def test_csynth_vitis_2022_dsp_uram_undef_latency() -> None:
    _, r = parse_file(DATA / "vitis_hls-2022.2_csynth.xml")
    assert (r.tool_version, r.top, r.part) == ("2022.2", "bn_lightnorm", "xczu3eg-sbva484-1-e")
    # the top's resources, not the nested per-module ones
    assert (r.lut, r.ff, r.dsp, r.bram_18k, r.uram) == (4318, 2741, 5, 3, 0)
    assert (r.target_clock_ns, r.clock_uncertainty_ns, r.estimated_clock_ns) == (5.0, 1.35, 3.65)
    assert (r.best_latency_cycles, r.worst_latency_cycles, r.interval_min_cycles,
            r.interval_max_cycles) == (None, None, None, None)


def test_csynth_vitis_2021() -> None:
    _, r = parse_file(DATA / "vitis_hls-2021.1_csynth.xml")
    assert (r.lut, r.ff, r.dsp, r.bram_18k, r.uram) == (3385, 1960, 0, 2, 2)
    assert (r.best_latency_cycles, r.worst_latency_cycles) == (402, 402)
    assert r.estimated_clock_ns == 2.431 and r.target_clock_ns == 3.33


# --- Vivado ---------------------------------------------------------------------------------------
def test_vivado_utilization_7series() -> None:
    kind, u = parse_file(DATA / "vivado-2019.2_utilization_synth.rpt")
    assert kind == "vivado-utilization" and isinstance(u, VivadoUtilization)
    assert u == VivadoUtilization(
        "Vivado v.2019.2 (lin64) Build 2708876 Wed Nov  6 21:39:14 MST 2019", "bn_fp32_baseline",
        "7z020clg484-1", "Synthesized", lut=9412, registers=6127, ff=6125, dsp=19,
        bram_tile=3.5, uram=None)  # no URAM row: absent, not 0


def test_vivado_utilization_ultrascale() -> None:
    _, u = parse_file(DATA / "vivado-2022.2_utilization_synth.rpt")
    assert (u.device, u.design) == ("xczu7ev-ffvc1156-2-e", "bn_lightnorm")
    assert (u.lut, u.registers, u.ff, u.dsp, u.bram_tile, u.uram) == (3977, 2688, 2688, 4, 1.0, 2)


def test_vivado_power() -> None:
    kind, w = parse_file(DATA / "vivado-2019.2_power_routed.rpt")
    assert kind == "vivado-power" and isinstance(w, VivadoPower)
    assert (w.total_w, w.dynamic_w, w.static_w) == (0.214, 0.109, 0.105)
    assert (w.junction_temperature_c, w.confidence, w.device) == (27.5, "Low", "xc7z020clg484-1")


# --- failures -------------------------------------------------------------------------------------
TRUNCATED = {
    "yosys-0.70_stat_liberty.txt": "cell types add up to 19, not the 43 cells",
    "yosys-0.23_stat_liberty.txt": "Chip area for top module",
    "yosys-0.70_stat_liberty.json": "not valid JSON",
    "opensta-2.0.17_checks_met.rpt": "path 2 (en -> u_cnt/_61_): missing 'slack",
    "opensta-2.0.17_power.rpt": "missing the 'Total' row",
    "vitis_hls-2022.2_csynth.xml": "not well-formed XML",
    "vivado-2019.2_utilization_synth.rpt": "missing the 'DSPs' row",
    "vivado-2019.2_power_routed.rpt": "missing the 'Device Static (W)' row",
}


def test_every_truncated_fixture_is_listed() -> None:
    assert {p.name for p in TRUNC.iterdir()} == set(TRUNCATED)


@pytest.mark.parametrize("name", sorted(TRUNCATED))
def test_truncated_report_names_file_and_missing_field(name: str) -> None:
    path = TRUNC / name
    with pytest.raises(ReportParseError) as info:
        parse_file(path)
    msg = str(info.value)
    assert msg.startswith(str(path) + ": "), msg
    assert TRUNCATED[name] in msg, msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, LightnormError)


def _edited(tmp_path: Path, name: str, old: str, new: str) -> Path:
    text = (DATA / name).read_text()
    assert old in text, old
    out = tmp_path / name
    out.write_text(text.replace(old, new, 1))  # the first occurrence only
    return out


@pytest.mark.parametrize("name,old,new,needle", [
    ("vivado_hls-2018.2_csynth.xml", "<DSP48E>21</DSP48E>", "", "<DSP> (or <DSP48E>)"),
    ("vitis_hls-2022.2_csynth.xml", "<LUT>4318</LUT>", "", "<AreaEstimates><Resources><LUT>"),
    ("vitis_hls-2022.2_csynth.xml", "<EstimatedClockPeriod>3.650", "<EstimatedClockPeriod>fast",
     "EstimatedClockPeriod = 'fast': expected a number"),
    ("vitis_hls-2021.1_csynth.xml", "<Worst-caseLatency>402</Worst-caseLatency>", "",
     "Worst-caseLatency"),
    ("vitis_hls-2021.1_csynth.xml", "<TopModelName>bn_lightnorm_aggressive</TopModelName>", "",
     "TopModelName"),
    ("vitis_hls-2021.1_csynth.xml", "<unit>ns</unit>", "<unit>ps</unit>", "expected 'ns'"),
    ("vivado-2022.2_utilization_synth.rpt", "| CLB LUTs*", "| CLB LUTz*",
     "missing the 'Slice LUTs' row (or 'CLB LUTs')"),
    ("vivado-2019.2_utilization_synth.rpt", "| DSPs           |   19 |",
     "| DSPs           |   NA |", "DSPs = 'NA': expected an integer"),
    ("opensta-2.0.17_checks_met.rpt", "Path Group: clk\nPath Type: max", "Path Type: max",
     "path 2: missing 'Path Group:'"),
    ("opensta-2.0.17_power.rpt", "4.47e-04", "4.47e-0x", "missing the 'Total' row"),
    ("yosys-0.70_stat_liberty.json", '"XOR2X1": 8,\n            "counter8": 1',
     '"XOR2X1": 8', "cannot tell the top module: ['counter8', 'top']"),
    ("yosys-0.70_stat_liberty.json", '"num_cells":         8,', '"num_cells":         7,',
     "modules.top: num_cells = 7 does not match"),
    ("yosys-0.70_stat_liberty.json", '"area":              1985.000000,\n         "sequential',
     '"area":              1900.000000,\n         "sequential',
     "module areas do not add up"),
])
def test_malformed_report_names_the_field(tmp_path: Path, name: str, old: str, new: str,
                                          needle: str) -> None:
    path = _edited(tmp_path, name, old, new)
    with pytest.raises(ReportParseError) as info:
        parse_file(path)
    assert str(info.value).startswith(str(path)), info.value
    assert needle in str(info.value), info.value


def test_yosys_several_modules_without_top_is_refused() -> None:
    with pytest.raises(ReportParseError, match="hierarchy -top"):
        parse_file(DATA / "yosys-0.70_stat_no_top.txt")


def test_sta_unconstrained_and_empty_reports(tmp_path: Path) -> None:
    p = tmp_path / "none.rpt"
    p.write_text("Startpoint: a (input port)\nEndpoint: b (output port)\nPath Group: (none)\n"
                 "Path Type: max\n\n  Delay    Time   Description\n"
                 "-----\n   0.00    0.00 ^ a (in)\n           0.00   data arrival time\n"
                 "-----\n(Path is unconstrained)\n")
    with pytest.raises(ReportParseError, match="unconstrained"):
        parse_file(p)
    with pytest.raises(ReportParseError, match="No paths found"):
        parsers.parse_sta_checks("No paths found.\n", "x.rpt")


@pytest.mark.parametrize("content,needle", [
    ("", "empty file"),
    ("hello world\n", "unknown report kind"),
    ("{\"a\": 1}", "unknown report kind"),
    ("<html></html>", "unknown report kind"),
])
def test_unknown_or_empty_files(tmp_path: Path, content: str, needle: str) -> None:
    p = tmp_path / "x.rpt"
    p.write_text(content)
    with pytest.raises(ReportParseError, match=needle):
        parse_file(p)


def test_missing_file() -> None:
    with pytest.raises(ReportParseError, match="cannot read"):
        parse_file(DATA / "no-such-report.rpt")


def test_metrics_are_frozen_and_export_plain_data() -> None:
    for name in EXPECTED_KIND:
        if name == "yosys-0.70_stat_no_top.txt":
            continue
        _, m = parse_file(DATA / name)
        with pytest.raises(AttributeError):
            m.__setattr__("x", 1)
        json.dumps(m.to_dict(), allow_nan=False)


# --- lightnorm parse ------------------------------------------------------------------------------
def _args(report: Path | str, as_json: bool) -> argparse.Namespace:
    return argparse.Namespace(report=str(report), json=as_json)


def test_cmd_parse_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_parse(_args(DATA / "vitis_hls-2022.2_csynth.xml", True)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "hls-csynth"
    assert out["metrics"]["dsp"] == 5 and out["metrics"]["worst_latency_cycles"] is None


def test_cmd_parse_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_parse(_args(DATA / "yosys-0.70_stat_liberty.txt", False)) == 0
    out = capsys.readouterr().out
    assert "yosys-stat" in out and "cell_types.DFFPOSX1" in out and "1985" in out


def test_cmd_parse_errors() -> None:
    with pytest.raises(UsageError, match="no such file"):
        cmd_parse(_args(DATA / "nope.rpt", False))
    with pytest.raises(ReportParseError, match="missing the 'DSPs' row"):
        cmd_parse(_args(TRUNC / "vivado-2019.2_utilization_synth.rpt", False))


def test_registered_in_cli_one_error_line_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """As the lead registers it: ``lightnorm parse FILE [--json]`` through cli.main."""
    monkeypatch.setitem(cli.COMMANDS, "parse", cli.Command(
        cmd_parse, PARSE_HELP, takes_spec=False, arguments=add_parse_arguments))
    assert cli.main(["parse", str(DATA / "opensta-2.0.17_power.rpt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["metrics"]["total"]["total_w"] == 4.84e-04
    code = cli.main(["parse", str(TRUNC / "opensta-2.0.17_power.rpt")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("lightnorm: error: ")
    assert "missing the 'Total' row" in err and "Traceback" not in err


# --- impossible numbers and absent elements -------------------------------------------------------
@pytest.mark.parametrize("name, old, new, needle", [
    ("vitis_hls-2022.2_csynth.xml", "<LUT>4318</LUT>", "<LUT>-5</LUT>", "LUT"),
    ("vitis_hls-2022.2_csynth.xml", "<EstimatedClockPeriod>3.650<",
     "<EstimatedClockPeriod>-3.650<", "EstimatedClockPeriod"),
    ("vitis_hls-2022.2_csynth.xml", "<EstimatedClockPeriod>3.650<",
     "<EstimatedClockPeriod>0<", "EstimatedClockPeriod"),
    ("vivado_hls-2019.1_csynth.xml", "<URAM>1</URAM>", "<URAM>-1</URAM>", "URAM"),
    ("yosys-0.70_stat_liberty.txt", "Chip area for module '\\top': 448.000000",
     "Chip area for module '\\top': -448.000000", "chip area"),
    ("yosys-0.70_stat_liberty.json", '"num_cells":         8,', '"num_cells":         -8,',
     "num_cells"),
    ("yosys-0.70_stat_liberty.json", '"area":              1985.000000',
     '"area":              -1985.000000', "area"),
    ("opensta-2.0.17_power.rpt", "1.45e-05   2.71e-09", "1.45e-05  -2.71e-09", "leakage"),
    ("vivado-2019.2_utilization_synth.rpt", "| Slice LUTs*                | 9412 |",
     "| Slice LUTs*                | -9412 |", "Slice LUTs"),
    ("vivado-2019.2_power_routed.rpt", "| Total On-Chip Power (W)  | 0.214 ",
     "| Total On-Chip Power (W)  | -0.214 ", "Total On-Chip Power"),
])
def test_impossible_numbers_are_parse_errors(tmp_path: Path, name: str, old: str, new: str,
                                             needle: str) -> None:
    text = (DATA / name).read_text()
    assert old in text, old
    bad = tmp_path / name
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(ReportParseError, match=needle):
        parse_file(bad)


def test_absent_optional_elements_are_none_not_zero(tmp_path: Path) -> None:
    text = (DATA / "vivado_hls-2019.1_csynth.xml").read_text()
    _, with_uram = parse_file(DATA / "vivado_hls-2019.1_csynth.xml")
    assert with_uram.uram == 1
    bare = tmp_path / "csynth.xml"
    bare.write_text(text.replace("<URAM>1</URAM>", "", 1))
    _, r = parse_file(bare)
    assert r.uram is None and r.to_dict()["uram"] is None
    # and the CLI says n/a (JSON: null), never 0
    assert cli.main(["parse", str(bare), "--json"]) == 0
