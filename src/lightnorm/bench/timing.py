"""Timing-driven generation (docs/timing.md): does every design meet the clock it was generated
for, and how close is the timing library's prediction to the measured critical path?

    lightnorm bench timing [-o RESULTS_DIR] [--presets LIST] [--sweeps FILES] [--seeds LIST]
                           [--jobs N] [--liberty PATH] [--json]

Every preset at its own ``hw.clock_ns``, the random specs of ``--seeds`` (those of
:func:`lightnorm.bench.estimate.random_spec`: formats, lanes, BN modes, accumulator ways and
clocks drawn at random; an accumulator loop at a short clock is common there), and the points
of the clock sweeps (default the shipped
``specs/sweeps/clock-lightnorm.toml`` and ``clock-fp32-baseline.toml``: run from the repository
root): each design generated for its clock, synthesized and timed at it by the flow's ``synth``
stage, in a results store (``-o``, default ``runs/bench-timing``: a directory where the sweeps
ran already is reused, nothing is synthesized twice). Per design: whether the clock is met,
Fmax, the predicted critical path (the slowest register stage the library predicts,
``timing_plan.predicted_critical_ns``) against the measured one (clock less worst slack), area,
flip-flops, energy per element and the forward pass's cycles. Targets (issue 16): every design
meets its clock; every prediction within 15 % of the measurement. A first run synthesizes
every design (about 40 minutes on 2 cores: the FP32 designs dominate).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lightnorm.errors import ToolError, UsageError
from lightnorm.spec import load, preset_names

from . import positive_int, seed_list

#: largest |predicted - measured| / measured of the critical path (the issue's target)
PREDICTION_TOLERANCE = 0.15
DEFAULT_SWEEPS = (Path("specs/sweeps/clock-lightnorm.toml"),
                  Path("specs/sweeps/clock-fp32-baseline.toml"))


def _paths(text: str) -> tuple[Path, ...]:
    return tuple(Path(p.strip()) for p in text.split(",") if p.strip())


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def row(name: str, res: Any) -> dict[str, Any]:
    """One design's figures from its synthesis result."""
    pred, meas = res.predicted_critical_ns, res.critical_ns
    err = None if pred is None else (pred - meas) / meas
    plan = res.timing_plan or {}
    return {
        "spec": name, "clock_ns": res.clock_ns, "met": res.timing_met,
        "fmax_mhz": res.fmax_mhz, "predicted_ns": pred, "measured_ns": meas,
        "prediction_error": err,
        "within_tolerance": None if err is None else abs(err) <= PREDICTION_TOLERANCE,
        "plan_fits": plan.get("fits"),
        "loop_placed": any(u.get("stages_characterized_as_placed")
                           for u in plan.get("units", [])),
        "unit_registers": sum(u.get("latency", 0) for u in plan.get("units", [])),
        "critical_path": res.critical_path, "area_um2": res.area_um2,
        "area_flat_um2": res.area_flat_um2, "flip_flops": res.flip_flops,
        "energy_pj_per_element": dict(res.energy_pj_per_element),
        "forward_cycles": res.activity["forward"]["cycles"],
        "cached": res.cached,
    }


def run(presets: tuple[str, ...], sweeps: tuple[Path, ...], out: Path, jobs: int = 1,
        liberty: str | None = None, log: Any = None, seeds: tuple[int, ...] = ()
        ) -> dict[str, Any]:
    from lightnorm.cost.synth import SynthResult
    from lightnorm.flow import stages as st
    from lightnorm.flow.runner import Job, run_specs
    from lightnorm.flow.store import ResultStore
    from lightnorm.flow.sweep import load_sweep, point_jobs

    for path in sweeps:
        if not path.is_file():
            raise UsageError(f"--sweeps: {path} is not a file (the shipped clock sweeps are in "
                             "specs/sweeps/ of the repository: run from its root)")
    from .estimate import random_spec

    jobs_ = [Job(load(p), "flow", True) for p in presets]
    jobs_ += [Job(random_spec(seed), "flow", False) for seed in seeds]
    for path in sweeps:
        sw = load_sweep(path)
        jobs_ += [Job(spec, sw.name, preset, coords) for spec, preset, coords in point_jobs(sw)]
    opts = st.FlowOptions(stages=("synth",), liberty=liberty, out_dir=str(out.resolve()))
    if log:
        print(f"[bench_timing] {len(jobs_)} designs, synthesis stage, results in {out}",
              file=log, flush=True)
    summaries = run_specs(jobs_, opts, ResultStore(out), jobs)
    rows, seen = [], set()
    for s in summaries:
        stage = s["stages"].get("synth") or {}
        if s["spec_hash"] in seen:
            continue
        seen.add(s["spec_hash"])
        if stage.get("status") != "ok":
            raise ToolError(f"synthesis of {s['spec']}: {stage.get('status')} "
                            f"({stage.get('reason')})")
        name = s["spec"] if s["point"] is None else s["sweep"] + " " + " ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in s["point"].items())
        rows.append(row(name, SynthResult.from_dict(stage["metrics"])))
    return {"results": str(out), "liberty": liberty, "tolerance": PREDICTION_TOLERANCE,
            "rows": rows, "all_met": all(r["met"] for r in rows),
            "all_within_tolerance": all(r["within_tolerance"] is not False for r in rows)}


def report(res: dict[str, Any]) -> str:
    head = (f"{'spec':<40} {'clock':>6} {'met':>4} {'Fmax':>7} {'pred':>6} {'meas':>6} "
            f"{'err':>7} {'regs':>5} {'area mm2':>9} {'FFs':>7} {'pJ/el fwd':>9} "
            f"{'pJ/el bwd':>9} {'fwd cyc':>8}")
    out = [head, "-" * len(head)]
    for r in res["rows"]:
        err = "-" if r["prediction_error"] is None else f"{100 * r['prediction_error']:+.1f}%"
        pred = "-" if r["predicted_ns"] is None else f"{r['predicted_ns']:.2f}"
        e = r["energy_pj_per_element"]
        out.append(f"{r['spec']:<40} {r['clock_ns']:>6g} {'yes' if r['met'] else 'NO':>4} "
                   f"{r['fmax_mhz']:>7.1f} {pred:>6} {r['measured_ns']:>6.2f} {err:>7} "
                   f"{r['unit_registers']:>5} {r['area_um2'] / 1e6:>9.3f} {r['flip_flops']:>7,} "
                   f"{e['forward']:>9.0f} {e['backward']:>9.0f} {r['forward_cycles']:>8}")
    tol = 100 * res["tolerance"]
    out.append("")
    placed = [r["prediction_error"] for r in res["rows"]
              if r["loop_placed"] and r["prediction_error"] is not None]
    if placed:
        out.append(f"designs with a loop that does not fit, its stages characterized as "
                   f"placed: {len(placed)}, prediction error {100 * min(placed):+.1f} % to "
                   f"{100 * max(placed):+.1f} % (mean {100 * sum(placed) / len(placed):+.1f} %)")
    out.append(f"every design meets its clock: {'yes' if res['all_met'] else 'NO'}; every "
               f"predicted critical path within {tol:.0f} % of the measured one: "
               f"{'yes' if res['all_within_tolerance'] else 'NO'}")
    out.append("pred: the slowest register stage the timing library predicts; meas: clock less "
               "worst slack (OpenSTA); regs: registers the chooser put in the pipelinable "
               "units; area: hierarchical synthesis; fwd cyc: forward pass of the simulated "
               "workload")
    return "\n".join(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", type=Path, default=Path("runs") / "bench-timing",
                        metavar="DIR",
                        help="results store (default runs/bench-timing; reused)")
    parser.add_argument("--presets", type=_names, default=tuple(preset_names()), metavar="LIST",
                        help="presets synthesized at their own clock (default every preset)")
    parser.add_argument("--sweeps", type=_paths, default=DEFAULT_SWEEPS, metavar="FILES",
                        help="comma-separated sweep files (default "
                             f"{','.join(str(p) for p in DEFAULT_SWEEPS)})")
    parser.add_argument("--seeds", type=seed_list, default=(), metavar="LIST",
                        help="also these random specs (lightnorm.bench.estimate.random_spec), "
                             "each at its own clock: comma-separated seeds or ranges (100-121)")
    parser.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                        help="designs synthesized at once (default 1)")
    parser.add_argument("--liberty", default=None, metavar="PATH",
                        help="liberty file (default OSU 0.18 um)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")


def execute(args: argparse.Namespace) -> int:
    res = run(args.presets, args.sweeps, Path(args.out), args.jobs, args.liberty,
              log=sys.stderr, seeds=args.seeds)
    if args.json:
        sys.stdout.write(json.dumps(res, indent=1, default=str) + "\n")
    else:
        sys.stdout.write(report(res) + "\n")
    return 0 if res["all_met"] and res["all_within_tolerance"] else 1
