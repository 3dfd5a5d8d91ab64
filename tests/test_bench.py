"""``lightnorm bench``: one command for every benchmark (lightnorm.bench, docs/benchmarks.md).

The listing and each benchmark's options through the real command line, bad input as one line
and exit 2, and the cheap benchmarks run on tiny inputs (the golden one needs PyTorch)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightnorm.bench import BENCHMARKS
from lightnorm.cli import main

NAMES = ("golden", "csim", "cosim", "synth", "flow", "main", "train", "xls", "timing",
         "estimate")


def test_bench_help_lists_every_benchmark(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")  # one line per benchmark
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    assert set(BENCHMARKS) == set(NAMES)
    listed = {line.split()[0]: " ".join(line.split()[1:]) for line in out.splitlines()
              if line.startswith("    ") and line.split()[0] in NAMES}
    assert listed == BENCHMARKS


@pytest.mark.parametrize("name", NAMES)
def test_each_benchmark_has_its_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: lightnorm bench {name} ")
    assert f"lightnorm bench {name}" in out.split("options:")[0]  # the description's usage
    assert "--json" in out


@pytest.mark.parametrize("argv, message", [
    (["bench"], "required: NAME"),
    (["bench", "nope"], "invalid choice: 'nope'"),
    (["bench", "cosim", "--shape", "1,2"], "--shape: '1,2'"),
    (["bench", "golden", "--repeat", "0"], "--repeat: '0'"),
    (["bench", "golden", "--threads", "0"], "--threads: '0'"),
    (["bench", "csim", "--bogus"], "unrecognized arguments: --bogus"),
    (["bench", "cosim", "--stress", "2"], "--stress = 2.0"),
    (["bench", "xls", "--clock-ns", "-1"], "--clock-ns = -1.0"),
    (["bench", "synth", "--lightnorm", "no-such-spec"], "no-such-spec"),
    (["bench", "main", "no-such-spec"], "no-such-spec"),
    (["bench", "main", "lightnorm", "--stages", "csim,nope"], "--stages = 'csim,nope'"),
    (["bench", "main", "--jobs", "0"], "--jobs: '0'"),
    (["bench", "main", "--keep", str(Path(__file__).parent)], "not a new or empty folder"),
    (["bench", "timing", "--sweeps", "no/such.toml"], "--sweeps: no/such.toml is not a file"),
    (["bench", "timing", "--sweeps", "", "--presets", "no-such-spec"], "no-such-spec"),
    (["bench", "timing", "--seeds", "100,x"], "--seeds: 'x': expected a seed or a range"),
    (["bench", "timing", "--seeds", "121-100"], "--seeds: '121-100': an empty range"),
    (["bench", "estimate", "--seeds", "-3"], "--seeds: '-3': expected a seed or a range"),
    (["bench", "estimate", "--fresh", "272,1.5"], "--fresh: '1.5': expected a seed"),
    (["bench", "estimate", "--records", "no/such.json"], "--records no/such.json: No such file"),
    (["bench", "estimate", "--records", __file__], f"--records {__file__}: not JSON"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lightnorm: error: ") and err.count("\n") == 1 and message in err


@pytest.mark.parametrize("content, message", [
    ({"results": []}, "expected a JSON object with format 'lightnorm synthesis results'"),
    ({"format": "lightnorm synthesis results", "version": 1, "results": [{"spec": "x"}]},
     "result 0: not a synthesis result"),
])
def test_bad_records_are_one_line_and_exit_2(content: dict[str, object], message: str,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "records.json"
    path.write_text(json.dumps(content))
    assert main(["bench", "estimate", "--held-out", "0", "--presets", "lightnorm",
                 "--records", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lightnorm: error: ") and err.count("\n") == 1 and message in err


def test_seed_lists_take_seeds_and_ranges() -> None:
    from lightnorm.bench import seed_list

    assert seed_list("100, 103-105,7") == (100, 103, 104, 105, 7)
    assert seed_list("") == () and seed_list("5-5") == (5,)


def test_csim_benchmark_on_a_tiny_shape(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "csim", "--shape", "2", "2", "8", "8", "--repeat", "1"]
    assert main([*argv, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["shape"] == [2, 2, 8, 8] and res["repeat"] == 1
    for p in ("forward", "backward"):
        assert res[p]["csim_elements_per_s"] > 0 and res[p]["golden_elements_per_s"] > 0
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("spec lightnorm, shape (2, 2, 8, 8), 256 elements, best of 1")
    assert [ln.split()[0] for ln in lines[1:]] == ["pass", "forward", "backward"]


def test_main_job_benchmark_cold_then_cached(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    """Two real flow runs into a kept folder: the cold one fills the new tool cache, the second
    finds every verdict in the store; the breakdown is read from the cold run's store."""
    argv = ["bench", "main", "lightnorm", "--stages", "generate,csim", "--jobs", "1",
            "--keep", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["specs"] == ["lightnorm"] and res["stages"] == "generate,csim"
    assert set(res["stage_s"]) == {"generate", "csim"}
    assert res["spec_stage_s"]["lightnorm"]["csim"] == res["stage_s"]["csim"] > 0
    assert res["cached_s"] < res["cold_s"]
    assert res["cold_cpu_s"] > res["cached_cpu_s"] > 0  # the flows' own CPU, children included
    # no synthesis ran: every stage is outside the timing netlists
    assert res["outside_timing_netlist_s"] == pytest.approx(sum(res["stage_s"].values()))
    assert any((tmp_path / "cache" / "csim").iterdir())  # the cold run's own tool cache
    assert (tmp_path / "flow-cold.log").is_file() and (tmp_path / "flow-cached.log").is_file()


def test_main_job_report_states_the_work_outside_the_timing_netlists() -> None:
    """The text report gives the CPU times and the stage seconds that composing the lanes
    would leave (everything but the timing netlist's Yosys run and OpenSTA), over the CPUs."""
    from lightnorm.bench.main import _report

    res = {"specs": [], "stages": None, "jobs": 2, "cpus": 2, "cold_s": 400.0,
           "cached_s": 2.5, "cold_cpu_s": 780.0, "cached_cpu_s": 3.0,
           "stage_s": {"generate": 40.0, "synth": 700.0},
           "synth_parts_s": {"a": {"flat_synthesis": 150.0, "sta": 250.0, "hierarchical": 100.0}},
           "outside_timing_netlist_s": 340.0}
    text = _report(res)
    assert "CPU (user + sys):           780.0 s cold, 3.0 s cached" in text
    assert "outside the timing netlists and OpenSTA: 340.0 s, 170.0 s over 2 CPUs" in text


@pytest.mark.torch
def test_golden_benchmark_on_a_tiny_shape(capsys: pytest.CaptureFixture[str]) -> None:
    import numba
    import torch

    before = torch.get_num_threads(), numba.get_num_threads()
    try:
        argv = ["bench", "golden", "--shape", "2,3,8,8", "--repeat", "1", "--threads", "1"]
        assert main([*argv, "--json"]) == 0
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
    res = json.loads(capsys.readouterr().out)
    assert res["elements"] == 384 and res["golden_elements_per_s"] > 0
    assert res["ratio_golden_over_torch"] > 0
    assert res["torch_threads"] == 1 and res["numba_threads"] == 1


def test_python_m_lightnorm_is_the_same_command() -> None:
    done = subprocess.run([sys.executable, "-m", "lightnorm", "bench", "--help"],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "COLUMNS": "120"})
    assert done.returncode == 0 and all(f"    {n} " in done.stdout for n in NAMES)
