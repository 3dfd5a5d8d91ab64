"""The ``lightnorm`` command: output formats, exit status and one-line errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from lightnorm.cli.core import COMMANDS, main, parse_shape
from lightnorm.errors import UsageError
from lightnorm.spec import dumps, from_dict, load, loads, preset_names

PRESETS = preset_names()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, *needles: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lightnorm: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def run_cli(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The command in a child process, as a user runs it (``python -m lightnorm``)."""
    env = dict(os.environ, COLUMNS="100")
    return subprocess.run([sys.executable, "-m", "lightnorm", *argv], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)


@pytest.fixture
def broken_toml(tmp_path: Path) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text(dumps(load("lightnorm")).replace("[hw]", "[hw", 1), encoding="utf-8")
    return path


# --- the command table ----------------------------------------------------------------------------
def test_every_command_has_help_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert {"presets", "show", "validate", "golden"} <= set(COMMANDS)
    for name, cmd in COMMANDS.items():
        code, out, _ = run(capsys, name, "--help")
        assert code == 0
        # bench: each benchmark declares --json (tests/test_bench.py)
        assert ("--json" in out) == cmd.takes_json, name


def test_top_level_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for name in COMMANDS:
        assert name in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("lightnorm ")


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["show"], ["show", "lightnorm", "--bogus"], ["presets", "extra"],
     ["golden", "lightnorm", "--seed", "x"]],
)
def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str],
                                           argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert_one_error_line(err)


# --- presets --------------------------------------------------------------------------------------
def test_presets_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "presets", "--json")
    assert code == 0 and err == ""
    rows = json.loads(out)
    assert [r["name"] for r in rows] == PRESETS
    for r in rows:
        assert {"name", "description", "path", "mode"} <= set(r)
        spec = load(r["name"])
        assert r["description"] == spec.description
        assert r["mode"] == spec.bn.mode
        assert r["x_bits_per_element"] == spec.storage.x.bits_per_element
        assert Path(r["path"]).is_file()
        assert load(r["path"]) == spec


def test_presets_human(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "presets")
    assert code == 0
    for name in PRESETS:
        assert name in out
    assert "8.5" in out  # bits per element of x in the lightnorm preset


# --- show -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", PRESETS)
def test_show_json_round_trips(capsys: pytest.CaptureFixture[str], name: str) -> None:
    code, out, err = run(capsys, "show", name, "--json")
    assert code == 0 and err == ""
    j = json.loads(out)
    spec = load(name)
    assert set(j) == {"spec", "hash", "derived"}
    assert from_dict(j["spec"]) == spec
    assert loads(tomli_w.dumps(j["spec"])) == spec
    assert j["hash"] == spec.hash
    d = j["derived"]
    assert {r: v["bits_per_element"] for r, v in d["storage"].items()} == spec.bits_per_element()
    assert d["offchip_bytes_per_element"] == spec.offchip_bytes_per_element()
    assert d["channel_elems"] == {"min": spec.min_channel_elems(),
                                  "max": spec.hw.max_channel_elems}
    assert set(d["arithmetic"]) == {"compute", "accum", "scalar"}
    assert d["arithmetic"]["scalar"]["format"] == str(spec.scalar)


def test_show_human_and_from_a_toml_path(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    spec = load("lightnorm-aggressive")
    path = tmp_path / "mine.toml"
    path.write_text(dumps(spec), encoding="utf-8")
    code, out, _ = run(capsys, "show", str(path))
    assert code == 0
    assert spec.name in out and spec.hash in out
    assert "BFP(32,5,8, raise)" in out
    code, out, _ = run(capsys, "show", str(path), "--json")
    assert code == 0 and json.loads(out)["hash"] == spec.hash


# --- validate -------------------------------------------------------------------------------------
def test_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    spec = load("lightnorm")
    code, out, err = run(capsys, "validate", "lightnorm")
    assert (code, out, err) == (0, f"ok: lightnorm ({spec.hash})\n", "")
    code, out, _ = run(capsys, "validate", "lightnorm", "--json")
    assert code == 0
    assert json.loads(out) == {"ok": True, "name": "lightnorm", "hash": spec.hash,
                               "source": "lightnorm"}


def test_validate_broken_toml(capsys: pytest.CaptureFixture[str], broken_toml: Path) -> None:
    code, out, err = run(capsys, "validate", str(broken_toml))
    assert code == 2 and out == ""
    assert_one_error_line(err, str(broken_toml), "TOML")
    # the field is the spec argument, its value the file; the parser's place comes after
    assert err.startswith(f"lightnorm: error: spec = {str(broken_toml)!r}: expected a valid "
                          "TOML file (")
    assert "line" in err


def test_validate_broken_toml_subprocess(broken_toml: Path) -> None:
    proc = run_cli("validate", str(broken_toml))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert_one_error_line(proc.stderr, "TOML")


def test_validate_invalid_field_names_it(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    table = load("lightnorm").to_dict()
    table["compute"]["man_bits"] = 40
    path = tmp_path / "wide.toml"
    path.write_text(tomli_w.dumps(table), encoding="utf-8")
    for extra in ([], ["--json"]):
        code, out, err = run(capsys, "validate", str(path), *extra)
        assert code == 2 and out == ""
        assert_one_error_line(err, "compute.man_bits = 40: expected")


def test_validate_bad_normalize_form(capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    """A normalize form that does not exist: one line naming bn.normalize, the value and the
    choices, exit 2."""
    table = load("lightnorm").to_dict()
    table["bn"]["normalize"] = "centred"
    path = tmp_path / "form.toml"
    path.write_text(tomli_w.dumps(table), encoding="utf-8")
    code, out, err = run(capsys, "validate", str(path))
    assert code == 2 and out == ""
    assert_one_error_line(err, "bn.normalize = 'centred': expected one of 'affine', 'centered'")


def test_unknown_preset(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("show", "validate", "golden"):
        code, out, err = run(capsys, cmd, "no-such-preset")
        assert code == 2 and out == ""
        assert_one_error_line(err, "no-such-preset", "lightnorm")


def test_unknown_preset_subprocess() -> None:
    proc = run_cli("show", "no-such-preset", "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert_one_error_line(proc.stderr, "no-such-preset")


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("lightnorm")
    if not exe.exists():
        pytest.skip("no lightnorm console script next to this interpreter (not a venv install)")
    proc = subprocess.run([str(exe), "validate", "lightnorm"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("ok: lightnorm (")


# --- golden: input checks (no golden model needed) ------------------------------------------------
@pytest.mark.parametrize(
    "shape",
    ["1,2", "a,b,c,d", "0,16,14,14", "8,16,14,14,1", "", "1.5,2,3,4", "8;16;14;14", "8,16,,14",
     "-1,2,3,4", "100000,100000,100,100"],
)
def test_golden_bad_shape(capsys: pytest.CaptureFixture[str], shape: str) -> None:
    code, out, err = run(capsys, "golden", "lightnorm", f"--shape={shape}")
    assert code == 2 and out == ""
    assert_one_error_line(err, "--shape")


def test_golden_bad_shape_subprocess() -> None:
    proc = run_cli("golden", "lightnorm", "--shape", "8,16,x,14")
    assert proc.returncode == 2 and proc.stdout == ""
    assert_one_error_line(proc.stderr, "--shape")


@pytest.mark.parametrize(("name", "shape"), [("lightnorm", "1,4,4,4"),
                                             ("fp32-baseline", "1,3,1,1"),
                                             ("lightnorm", "1024,1,32,33")])
def test_golden_shape_the_spec_rejects(capsys: pytest.CaptureFixture[str], name: str,
                                       shape: str) -> None:
    code, out, err = run(capsys, "golden", name, "--shape", shape)
    assert code == 2 and out == ""
    assert_one_error_line(err, "elements per channel")


def test_golden_negative_seed(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "golden", "lightnorm", "--seed=-1")
    assert code == 2
    assert_one_error_line(err, "--seed")


def test_parse_shape() -> None:
    assert parse_shape("8,16,14,14") == (8, 16, 14, 14)
    assert parse_shape(" 1, 2 ,3,4 ") == (1, 2, 3, 4)
    with pytest.raises(UsageError):
        parse_shape("1,2,3")


# --- golden: the run itself (needs lightnorm.verify.golden and .ideal; fails if missing) ----------
def _check_golden_json(j: dict[str, Any], name: str, shape: tuple[int, ...]) -> None:
    n, c, h, w = shape
    assert j["spec"] == name
    assert j["hash"] == load(name).hash
    assert j["shape"] == list(shape)
    assert j["elements"] == n * c * h * w
    assert j["elements_per_channel"] == n * h * w
    assert j["time_s"]["forward"] > 0 and j["time_s"]["backward"] > 0
    for out in ("y", "dx"):
        e = j["error"][out]
        assert set(e) == {"rel_rms", "sqnr_db", "max_abs_err"}
        # A sanity bound only: the error is reported, not asserted to a target.
        assert e["rel_rms"] is not None and 0 <= e["rel_rms"] < 0.25, (name, out, e)
        if e["rel_rms"] > 0:
            assert e["sqnr_db"] == pytest.approx(-20 * math.log10(e["rel_rms"]))
    rg = j["range_grad_constant_vs_exact"]
    if load(name).bn.mode == "range":
        assert rg is not None and rg["rel_rms"] > 0
    else:
        assert rg is None


@pytest.mark.parametrize("name", PRESETS)
def test_golden_json_every_preset(capsys: pytest.CaptureFixture[str], name: str) -> None:
    shape = (2, 3, 8, 8)  # 128 elements per channel: valid for every preset
    code, out, err = run(capsys, "golden", name, "--json", "--shape", ",".join(map(str, shape)),
                         "--seed", "3")
    assert code == 0, err
    j = json.loads(out)
    _check_golden_json(j, name, shape)
    if name == "fp32-baseline":
        assert j["error"]["y"]["rel_rms"] < 1e-5
        assert j["error"]["dx"]["rel_rms"] < 1e-4


def test_golden_default_shape_human(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "golden", "lightnorm")
    assert code == 0, err
    assert "25,088 elements" in out
    assert "SQNR" in out


def test_golden_is_reproducible(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["golden", "lightnorm", "--json", "--shape", "2,2,8,8", "--seed", "7"]
    a = json.loads(run(capsys, *argv)[1])
    b = json.loads(run(capsys, *argv)[1])
    assert a["error"] == b["error"]
