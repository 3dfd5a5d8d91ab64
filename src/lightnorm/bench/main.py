"""The main job cold and cached: ``lightnorm bench main [SPEC ...] [--jobs N] [--stages LIST]
[--keep DIR] [--json]``.

Runs the main job, ``lightnorm flow`` with its default stages (every preset unless specs are
named; ``--stages`` to time others), twice in one go, each as a real subprocess:

1. **cold**: into a new results folder with a new, empty tool cache (``LIGHTNORM_CACHE``):
   every operator characterized, every C-simulation compiled, every Verilator model built,
   every design synthesized;
2. **cached**: the same command on the same folder and cache: every stage's verdict is in the
   store and the report is up to date.

Prints both wall times and CPU times (user + sys of the flow and everything it ran) and where
the cold run's time went, read back from its results store: each stage's duration summed over
the specs (stages of different specs overlap with ``--jobs 2``, so the sums exceed the wall
time) and, inside synthesis, its parts (Yosys runs, the activity simulation, OpenSTA) per spec.
Then the seconds of everything but the timing netlists and OpenSTA - the work that composing
the lanes, one lane timed for all, would leave - over the CPUs: when each stage had a core to
itself (the stage sums then equal the CPU time), no such composition brings the cold job below
that. The user's own tool cache is not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from lightnorm.errors import UsageError
from lightnorm.tools.runner import ToolCommand, run_tool

from . import positive_int

#: the cold main job's target (issue 18): wall seconds on 2 cores
COLD_TARGET_S = 120.0
#: the cached rerun's target
CACHED_TARGET_S = 5.0


def run_flow(specs: list[str], stages: str | None, out: Path, cache: Path, jobs: int,
             what: str) -> float:
    """One ``lightnorm flow`` process with its own tool cache; its wall time."""
    extra = ("--stages", stages) if stages else ()
    done = run_tool(ToolCommand(
        (sys.executable, "-m", "lightnorm", "flow", *specs, "-o", str(out), "--jobs", str(jobs),
         *extra, "--json"), Path.cwd(), env={"LIGHTNORM_CACHE": str(cache)},
        log=out.parent / f"flow-{what}.log", timeout_s=7200, purpose=f"main job, {what}"))
    return done.duration_s


#: the parts of a synthesis (SynthResult.seconds) that make and time the flat timing netlist:
#: what composing the lanes could shrink; everything else it leaves as it is
TIMING_NETLIST_PARTS = ("flat_synthesis", "sta")


def _children_cpu_s() -> float:
    """User + system seconds of this process's finished children (and theirs)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def breakdown(out: Path) -> dict[str, Any]:
    """Stage durations of the run in results folder ``out``: summed per stage, per spec, the
    parts of each spec's synthesis (SynthResult.seconds), and the stage seconds outside the
    timing netlists and OpenSTA (:data:`TIMING_NETLIST_PARTS`)."""
    from lightnorm.flow.store import ResultStore

    per_stage: dict[str, float] = defaultdict(float)
    per_spec: dict[str, dict[str, float]] = defaultdict(dict)
    synth_parts: dict[str, dict[str, float]] = {}
    for r in ResultStore(out, create=False).rows():
        per_stage[r.stage] += r.duration_s
        per_spec[r.spec_name][r.stage] = r.duration_s
        if r.stage == "synth" and isinstance(r.metrics, dict):
            parts = r.metrics.get("seconds")
            if isinstance(parts, dict):
                synth_parts[r.spec_name] = {k: float(v) for k, v in parts.items()}
    timing = sum(p.get(k, 0.0) for p in synth_parts.values() for k in TIMING_NETLIST_PARTS)
    return {"stage_s": dict(per_stage), "spec_stage_s": dict(per_spec),
            "synth_parts_s": synth_parts,
            "outside_timing_netlist_s": sum(per_stage.values()) - timing}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="*", metavar="SPEC",
                        help="preset names or spec files (default: every preset)")
    parser.add_argument("--jobs", type=positive_int, default=2, help="flow --jobs (default 2)")
    parser.add_argument("--stages", default=None, metavar="LIST",
                        help="flow --stages (default: the flow's default stages)")
    parser.add_argument("--keep", metavar="DIR", default=None,
                        help="keep the results folder and the tool cache under DIR")
    parser.add_argument("--json", action="store_true")


def _report(res: dict[str, Any]) -> str:
    lines = [f"main job ({', '.join(res['specs']) or 'every preset'}; stages "
             f"{res['stages'] or 'default'}), --jobs {res['jobs']}, {res['cpus']} CPUs",
             f"  cold (empty tool caches): {res['cold_s']:7.1f} s   target {COLD_TARGET_S:.0f} s",
             f"  cached rerun:             {res['cached_s']:7.1f} s   target "
             f"{CACHED_TARGET_S:.0f} s",
             f"  CPU (user + sys):         {res['cold_cpu_s']:7.1f} s cold, "
             f"{res['cached_cpu_s']:.1f} s cached",
             "  cold, seconds per stage (summed over specs):"]
    for stage, s in res["stage_s"].items():
        lines.append(f"    {stage:10s} {s:7.1f}")
    parts = res["synth_parts_s"]
    if parts:
        names = sorted({k for p in parts.values() for k in p})
        lines.append("  cold synthesis, seconds per part:")
        lines.append("    " + f"{'spec':22s}" + "".join(f"{n[:14]:>15s}" for n in names))
        for spec, p in parts.items():
            lines.append("    " + f"{spec:22s}" + "".join(f"{p.get(n, 0.0):15.1f}"
                                                        for n in names))
    rest, cpus = res["outside_timing_netlist_s"], res["cpus"] or 1
    lines.append(f"  stages outside the timing netlists and OpenSTA: {rest:.1f} s, "
                 f"{rest / cpus:.1f} s over {cpus} CPUs (target {COLD_TARGET_S:.0f} s)")
    return "\n".join(lines)


def _check(args: argparse.Namespace) -> None:
    """Bad specs, stages or folder: one line, before a cold run starts."""
    from lightnorm.flow.stages import ALL_STAGES
    from lightnorm.spec import load

    for name in args.specs:
        load(name)
    if args.keep and Path(args.keep).exists() and (
            not Path(args.keep).is_dir() or any(Path(args.keep).iterdir())):
        raise UsageError(f"--keep {args.keep}: not a new or empty folder (the cold run needs "
                         "a new results folder and tool cache)")
    if args.stages is not None:
        bad = [v for v in args.stages.split(",") if v.strip() not in ALL_STAGES]
        if bad or not args.stages.strip():
            raise UsageError(f"--stages = {args.stages!r}: expected a non-empty comma-separated "
                             f"list of {', '.join(ALL_STAGES)}")


def execute(args: argparse.Namespace) -> int:
    _check(args)
    with tempfile.TemporaryDirectory(prefix="lightnorm-bench-main-") as tmp:
        d = Path(args.keep) if args.keep else Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        out, cache = d / "results", d / "cache"
        cpu0 = _children_cpu_s()
        cold = run_flow(args.specs, args.stages, out, cache, args.jobs, "cold")
        cpu1 = _children_cpu_s()
        cached = run_flow(args.specs, args.stages, out, cache, args.jobs, "cached")
        res = {"specs": args.specs, "stages": args.stages, "jobs": args.jobs,
               "cpus": os.cpu_count(), "cold_s": cold, "cached_s": cached,
               "cold_cpu_s": cpu1 - cpu0, "cached_cpu_s": _children_cpu_s() - cpu1,
               **breakdown(out)}
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(_report(res))
    return 0
