"""``lightnorm hls`` (lightnorm.cli.hls): report, output tree, cache, errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from lightnorm.cli import hls as cli_hls
from lightnorm.errors import ToolError, UsageError


def _parser() -> argparse.ArgumentParser:
    """The parser cli.py builds for the command: SPEC, --json, then the command's options."""
    p = argparse.ArgumentParser(prog="lightnorm hls")
    p.add_argument("spec")
    p.add_argument("--json", action="store_true")
    cli_hls.add_hls_arguments(p)
    return p


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    args = _parser().parse_args(argv)
    code = cli_hls.cmd_hls(args)
    return code, capsys.readouterr().out


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("LIGHTNORM_CACHE", str(d))  # the XLS artifacts: d/xls
    return d


def test_hls_json_out_tree_and_cache(tmp_path: Path, cache: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, text = _run(["lightnorm", "--json", "-o", str(out), "--lint"], capsys)
    assert code == 0
    rep = json.loads(text)
    assert rep["spec"] == "lightnorm" and rep["delay_model"] == "sky130"
    assert rep["clock_ns"] == 5.0 and rep["clock_ps"] == 5000 and rep["linted"]
    mods = rep["modules"]
    roles = {r for m in mods for r in m["roles"]}
    assert {"add_p", "mul_p", "recip_s", "y_enc", "dx_enc", "norm_lane", "dx_lane"} <= roles
    assert all(m["latency"] == m["stages"] + 1 >= 2 for m in mods)
    assert not any(m["cached"] for m in mods)
    assert rep["max_latency"] == max(m["latency"] for m in mods)
    d = out / "xls"
    assert (d / "lightnorm_xls.x").is_file() and (d / "xls_lint_waivers.vlt").is_file()
    listed = (d / "xls.f").read_text().split()
    assert listed == [m["file"] for m in mods]
    for m in mods:
        assert f"module {m['module']}(" in (d / m["file"]).read_text()
    first = {p.name: p.read_bytes() for p in d.iterdir()}
    # second run: everything from the cache, byte-identical tree
    code, text = _run(["lightnorm", "--json", "-o", str(out), "--lint"], capsys)
    rep2 = json.loads(text)
    assert code == 0 and all(m["cached"] for m in rep2["modules"])
    assert {p.name: p.read_bytes() for p in d.iterdir()} == first
    assert any((cache / "xls").iterdir())


def test_hls_human_output_and_options(tmp_path: Path, cache: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _run(["fp32-baseline", "--clock-ns", "20", "--delay-model", "asap7",
                       "--own-arith"], capsys)
    assert code == 0
    assert "fp32-baseline" in text and "asap7" in text and "xls_fp_add_e8m23_rne" in text
    code, text = _run(["fp32-baseline", "--json", "--clock-ns", "20", "--delay-model",
                       "asap7", "--own-arith"], capsys)
    rep = json.loads(text)
    assert rep["arith"] == "own" and rep["clock_ps"] == 20_000 and rep["out"] is None
    assert all(m["cached"] for m in rep["modules"])


def test_hls_errors(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match="clock-ns"):
        _run(["lightnorm", "--clock-ns", "-1"], capsys)
    with pytest.raises(ToolError) as e:  # 20 ps: no unit can be scheduled
        _run(["lightnorm", "--clock-ns", "0.02"], capsys)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("xls: scheduling") and "fp_" in msg
    assert e.value.exit_code == 2
    with pytest.raises(SystemExit):  # argparse rejects an unknown delay model
        _parser().parse_args(["lightnorm", "--delay-model", "tsmc3"])
