"""cocotb test of ``lightnorm_tb`` (the harness around ``lightnorm_top``).

The job file named by ``LIGHTNORM_COSIM_JOB`` lists runs (one pass over some channels each).
Per run: chdir into the run's directory, drive the configuration, pulse ``load`` (the harness
reads the stimulus files) and ``go``, wait for ``finished`` (with a timeout), pulse ``dump``
(the harness writes what its monitors captured) and score it against ``expect.npz``. Python
does not run per clock: handshakes, idle cycles and back-pressure are in the harness.
Results go to ``results.json`` next to the job file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer

from .scoreboard import Scoreboard

CONFIG = ("inv_n", "c_k", "eps", "momentum", "unbias")


async def _pulse(dut: Any, name: str) -> None:
    sig = getattr(dut, name)
    sig.value = 1
    await RisingEdge(dut.clk)
    sig.value = 0


@cocotb.test()
async def lightnorm_runs(dut: Any) -> None:
    job_path = Path(os.environ["LIGHTNORM_COSIM_JOB"])
    job = json.loads(job_path.read_text())
    Clock(dut.clk, 10, unit="ns").start()  # cocotb 2: the clock keeps its own task
    for name in ("load", "dump", "go", "mode", "channels", "n", "beats", "idle_thr", "bp_thr",
                 "seed", *CONFIG):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    results = []
    home = os.getcwd()
    try:
        for run in job["runs"]:
            os.chdir(run["dir"])
            dut.mode.value = run["mode"]
            dut.channels.value = run["channels"]
            dut.n.value = run["n"]
            dut.beats.value = run["beats"]
            for k in CONFIG:
                getattr(dut, k).value = run["consts"][k]
            dut.idle_thr.value = run["idle_thr"]
            dut.bp_thr.value = run["bp_thr"]
            dut.seed.value = run["seed"]
            await _pulse(dut, "load")
            await _pulse(dut, "go")
            await First(RisingEdge(dut.finished), Timer(run["timeout_ns"], unit="ns"))
            finished = bool(dut.finished.value)
            await RisingEdge(dut.clk)
            await _pulse(dut, "dump")
            await RisingEdge(dut.clk)
            res: dict[str, Any] = {"name": run["name"], "finished": finished,
                                   "cycles": int(dut.cycles.value)}
            res.update(Scoreboard(run).check())
            if not finished:
                res["error"] = f"timeout: not done after {run['timeout_ns'] // 10} cycles"
            results.append(res)
            dut._log.info("run %s: %d elements, %d mismatches, %d cycles", run["name"],
                          res["elements"], res["mismatches"], res["cycles"])
    finally:
        os.chdir(home)
        (job_path.parent / "results.json").write_text(json.dumps(results, indent=1))
    # A run that compared nothing is a failure (as is a run that never finished).
    for res in results:
        assert res["elements"] > 0, f"run {res['name']}: nothing was compared"
        assert res["finished"], res.get("error")
