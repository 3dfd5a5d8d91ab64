"""Commands ``lightnorm flow``, ``sweep``, ``report`` and ``regress`` (docs/flow.md).

Registered in :data:`lightnorm.cli.core.COMMANDS` (``--json`` is added by cli.py; none of these
takes the single SPEC argument). Exit status: 0 all stages ok, 1 a stage failed (a bit
mismatch) or errored (a tool failed) - recorded in the store with its reason, the other specs
run on - and 2 bad input, before anything runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lightnorm.cli import args as cliargs
from lightnorm.cli.args import parse_shape
from lightnorm.errors import UsageError
from lightnorm.flow import explore
from lightnorm.flow import stages as st
from lightnorm.flow.sweep import SYNTH_MODES
from lightnorm.reports.metrics import Timing
from lightnorm.spec import Spec, load, preset_names
from lightnorm.train.accuracy import DATASETS, require_train

FLOW_HELP = ("generate, verify (csim + cosim), synthesize and cost specs (default: every "
             "preset), record everything in a results store, print a comparison table and "
             "write an HTML report")
SWEEP_HELP = ("run a sweep file (a base spec and axes over its fields) through the flow, on a "
              "local process pool or a Dask cluster; resumable")
REPORT_HELP = "write the HTML and Markdown comparison report of a results directory"
REGRESS_HELP = ("regression co-simulation of every preset and spec under specs/ (or those "
                "given), several seeds and edge cases, JUnit XML; exit 1 on any mismatch")
DEFAULT_OUT = "lightnorm-out"
BASELINE = "fp32-baseline"


# --- argument helpers ----------------------------------------------------------------------------
#: ``--stages``: a non-empty list of known stages (``--stages ""`` is bad input)
STAGES_ARG = cliargs.list_arg("--stages", st.ALL_STAGES)
ACCURACY_EPOCHS_ARG, ACCURACY_SEEDS_ARG = (
    cliargs.int_arg(f"--accuracy-{k}", lo=1, hi=hi, expected=f"an integer in 1..{hi}")
    for k, hi in st.ACCURACY_LIMITS.items())


def _jobs(value: int | None) -> int:
    return max(1, os.cpu_count() or 1) if value is None else value


def _common(p: argparse.ArgumentParser, out_default: str | None) -> None:
    p.add_argument("-o", "--out", default=out_default, metavar="DIR",
                   type=cliargs.out_dir_arg("--out"),
                   help="output directory: results store, generated designs, report"
                        + (f" (default {out_default})" if out_default else ""))
    p.add_argument("--shape", default=None, metavar="N,C,H,W",
                   help="BN layer shape of the memory and total energy figures (default "
                        + ",".join(map(str, st.DEFAULT_LAYER_SHAPE)) + ")")
    p.add_argument("--jobs", type=cliargs.JOBS, default=None, metavar="N",
                   help="specs run in parallel on a local process pool (default: the CPUs)")
    p.add_argument("--stages", default=None, metavar="LIST", type=STAGES_ARG,
                   help="comma-separated stages among " + ",".join(st.ALL_STAGES) +
                        " (default " + ",".join(st.STAGES) + "".join(
                            f"; {s}: the {n} backend's design synthesized next to the "
                            "default one's" for s, n in st.BACKEND_STAGES.items())
                        + f"; {st.ACCURACY}: the CNN of docs/accuracy.md trained with the "
                        "spec's BN against FP32 BN, needs the train extra)")
    p.add_argument("--clock-ns", type=cliargs.CLOCK_NS, default=None, metavar="T",
                   help="synthesis clock period (default each spec's hw.clock_ns)")
    p.add_argument("--liberty", default=None, metavar="PATH", type=cliargs.LIBERTY,
                   help="liberty file (default OSU 0.18 um from qflow-tech-osu018)")
    p.add_argument("--synth-flow", choices=st.SYNTH_FLOWS, default="hier",
                   help="timing/power netlist flow of synthesis (default hier: docs/synthesis.md)")
    p.add_argument("--baseline", default=None, metavar="SPEC",
                   help=f"spec the report's ratios are against (default {BASELINE})")
    p.add_argument("--accuracy-dataset", choices=DATASETS, default=None,
                   help="accuracy stage: data set (default " + st.ACCURACY_DATASET + ")")
    p.add_argument("--accuracy-epochs", type=ACCURACY_EPOCHS_ARG, default=None, metavar="E",
                   help=f"accuracy stage: training epochs (default {st.ACCURACY_EPOCHS})")
    p.add_argument("--accuracy-seeds", type=ACCURACY_SEEDS_ARG, default=None, metavar="K",
                   help=f"accuracy stage: seeds 0..K-1 (default {st.ACCURACY_SEEDS})")
    _single_file(p)


def _single_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("--single-file", action="store_true",
                   help="write the report as one self-contained report.html (figures and CSV "
                        "files embedded as data URIs) instead of the folder with report.md, "
                        "figures/ and data/")


def add_flow_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="*", metavar="SPEC",
                   help="preset names or spec files (default: every preset)")
    _common(p, DEFAULT_OUT)


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", metavar="SWEEP.toml", help="sweep file (see specs/sweeps/)")
    _common(p, None)
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on the Dask cluster at ADDRESS (tcp://HOST:PORT) instead of a "
                        "local process pool")
    p.add_argument("--list", action="store_true",
                   help="list the points (and the skipped ones with the reason), run nothing")
    p.add_argument("--synth", choices=SYNTH_MODES, default=None,
                   help="which points get the synthesis stages: front (default, or the sweep "
                        "file's synth): every point is estimated (stages estimate and quality), "
                        "then the points on the Pareto front of estimated area, energy per "
                        "element and error, the named points and the compared presets run "
                        "every stage; all: every point runs every stage; none: only the named "
                        "points are synthesized")
    p.add_argument("--synth-points", default=None, metavar="NAME,...",
                   help="points synthesized whatever the front (their names: --list), added "
                        "to the sweep file's synth_points")


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="?", default=DEFAULT_OUT, metavar="DIR",
                   help=f"results directory (default {DEFAULT_OUT})")
    p.add_argument("-o", "--out", default=None, metavar="REPORT_DIR",
                   type=cliargs.out_dir_arg("--out"),
                   help="where the report goes (default DIR/report)")
    p.add_argument("--baseline", default=None, metavar="SPEC",
                   help=f"spec the ratios are against (default {BASELINE}, or the baseline of "
                        "the sweep)")
    p.add_argument("--csv", default=None, metavar="FILE", type=cliargs.out_file_arg("--csv"),
                   help="also export every recorded stage row as CSV to FILE (written even "
                        "when the report lacks stages)")
    _single_file(p)


def add_regress_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="*", metavar="SPEC",
                   help="preset names or spec files (default: every preset and every spec "
                        "file under specs/)")
    p.add_argument("--junit", default=None, metavar="FILE", type=cliargs.out_file_arg("--junit"),
                   help="write JUnit XML to FILE")
    p.add_argument("--seeds", default=(0, 1, 2), metavar="LIST", type=cliargs.seeds_arg(),
                   help="random-data seeds (default 0,1,2)")


def _options(args: argparse.Namespace, out: Path, stages: tuple[str, ...] | None = None,
             layer_shape: Sequence[int] | None = None, clock: float | None = None,
             accuracy: Mapping[str, Any] | None = None) -> st.FlowOptions:
    """The run's options: the command line's, else the sweep file's (``stages``,
    ``layer_shape``, ``clock``, ``accuracy``), else the defaults. The accuracy stage needs
    PyTorch: without it, one line and exit 2 before anything runs."""
    shape = parse_shape(args.shape) if args.shape else tuple(layer_shape or st.DEFAULT_LAYER_SHAPE)
    liberty = args.liberty
    acc = dict(accuracy or {})
    chosen = args.stages or stages or st.STAGES
    if st.ACCURACY in chosen:
        require_train(f"the {st.ACCURACY} stage")
    return st.FlowOptions(stages=chosen,
                          layer_shape=shape,  # type: ignore[arg-type]
                          clock_ns=args.clock_ns if args.clock_ns is not None else clock,
                          liberty=None if liberty is None else str(Path(liberty).resolve()),
                          synth_flow=args.synth_flow,
                          accuracy_dataset=args.accuracy_dataset or acc.get(
                              "dataset", st.ACCURACY_DATASET),
                          accuracy_epochs=args.accuracy_epochs or acc.get(
                              "epochs", st.ACCURACY_EPOCHS),
                          accuracy_seeds=args.accuracy_seeds or acc.get(
                              "seeds", st.ACCURACY_SEEDS),
                          out_dir=str(out.resolve()))


# --- progress ------------------------------------------------------------------------------------
class _Progress:
    """A rich progress bar per spec, advanced per stage (stderr; off under --json)."""

    def __init__(self, names: Sequence[str], n_stages: int, quiet: bool) -> None:
        self.quiet = quiet
        self.tasks: dict[str, Any] = {}
        if quiet:
            self.progress = None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=False)
        for name in names:
            self.tasks[name] = self.progress.add_task(f"{name}: waiting", total=n_stages)

    def __enter__(self) -> _Progress:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def event(self, name: str, stage: str, status: str) -> None:
        if self.progress is None or name not in self.tasks:
            return
        task = self.tasks[name]
        if status == "running":
            self.progress.update(task, description=f"{name}: {stage}")
        elif status == "waiting":
            self.progress.update(task, description=f"{name}: {stage} (waiting for another run "
                                                   "of this stage)")
        elif status == "done":
            self.progress.update(task, description=f"{name}: done")
        else:
            self.progress.update(task, advance=1, description=f"{name}: {stage} {status}")

    def done(self, summary: Mapping[str, Any]) -> None:
        """Dask path: a whole spec finished."""
        if self.progress is not None and summary["spec"] in self.tasks:
            task = self.tasks[summary["spec"]]
            failed = [k for k, v in summary["stages"].items() if v["status"] != "ok"]
            self.progress.update(task, completed=len(summary["stages"]),
                                 description=f"{summary['spec']}: " +
                                 (f"not ok: {', '.join(failed)}" if failed else "done"))


# --- the comparison table ------------------------------------------------------------------------
def _metric(summary: Mapping[str, Any], stage: str, *path: str) -> Any:
    ent = summary["stages"].get(stage)
    if not ent or ent.get("status") != "ok" or ent.get("metrics") is None:
        return None
    v: Any = ent["metrics"]
    for p in path:
        if not isinstance(v, Mapping) or p not in v:
            return None
        v = v[p]
    return v


def _status(summary: Mapping[str, Any], stage: str) -> str:
    ent = summary["stages"].get(stage)
    if ent is None:
        return "-"
    s = ent["status"]
    return {"ok": "exact" if stage in st.VERIFY_STAGES else "ok"}.get(s, s.upper())


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


#: appended to a ratio of the terminal table when the spec or the baseline misses its clock
UNMET_FLAG = "!"


def _timing(summary: Mapping[str, Any] | None) -> Timing:
    """At which clock the summary's design was synthesized and whether it met it."""
    return Timing.of_metrics(None if summary is None else _metric(summary, "synth"))


def table_rows(summaries: Sequence[Mapping[str, Any]], baseline: str | None
               ) -> tuple[list[str], list[list[str]]]:
    base = next((s for s in summaries if s["spec"] == baseline), None)
    base_area = None if base is None else _metric(base, "synth", "area_um2")
    base_e = None if base is None else _metric(base, "synth", "energy_pj_per_element", "forward")
    base_missed = _timing(base).missed
    head = ["spec", "csim", "cosim", "area mm2", "x area", "Fmax MHz", "timing", "E fwd pJ/el",
            "x E fwd", "E bwd pJ/el", "bytes/el", "layer pJ/el", "error"]
    rows = []
    for s in summaries:
        area = _metric(s, "synth", "area_um2")
        ef = _metric(s, "synth", "energy_pj_per_element", "forward")
        timing = _timing(s)
        flag = UNMET_FLAG if timing.missed or base_missed else ""

        def ratio(num: Any, den: Any, flag: str = flag) -> str:
            return "-" if not den or not num else _fmt(num / den, ".2f") + flag

        rows.append([
            s["spec"], _status(s, "csim"), _status(s, "cosim"),
            _fmt(None if area is None else area / 1e6, ".3f"),
            ratio(base_area, area),
            _fmt(_metric(s, "synth", "fmax_mhz"), ".1f"),
            "-" if timing.clock_ns is None else timing.clock_text(),
            _fmt(ef, ".0f"),
            ratio(base_e, ef),
            _fmt(_metric(s, "synth", "energy_pj_per_element", "backward"), ".0f"),
            _fmt(_metric(s, "energy", "offchip_bytes_per_element", "total"), ".3g"),
            _fmt(_metric(s, "energy", "total_pj_per_element"), ".0f"),
            _fmt(_metric(s, "quality", "summary", "error"), ".2e"),
        ])
    if _has_accuracy(summaries):
        head.append(ACCURACY_COLUMN)
        for s, row in zip(summaries, rows, strict=True):
            row.append(_accuracy_text(s))
    return head, rows


#: the terminal table's accuracy column (only when the accuracy stage ran)
ACCURACY_COLUMN = "acc % (Δ pp)"


def _has_accuracy(summaries: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the opt-in accuracy stage ran for some spec."""
    return any(st.ACCURACY in s["stages"] for s in summaries)


def _accuracy_text(summary: Mapping[str, Any]) -> str:
    """``99.35±0.16 (+0.46)``: test accuracy, mean ± std over seeds, and the difference from
    the FP32 reference; ``-`` when the stage gives none."""
    mean = _metric(summary, st.ACCURACY, "accuracy_pct", "mean")
    if mean is None:
        return _status(summary, st.ACCURACY)
    std = _metric(summary, st.ACCURACY, "accuracy_pct", "std")
    delta = _metric(summary, st.ACCURACY, "delta_pp")
    return (f"{mean:.2f}±{_fmt(std, '.2f')}"
            + ("" if delta is None else f" ({delta:+.2f})"))


def table_caption(summaries: Sequence[Mapping[str, Any]], baseline: str | None) -> str:
    """What the columns of the terminal table mean, with the baseline's clock and verdict."""
    base = next((s for s in summaries if s["spec"] == baseline), None)
    base_clock = _timing(base).clock_text() if base is not None else "not in this run"
    over = "no baseline" if baseline is None else f"{baseline} ({base_clock})"
    return (f"x area, x E fwd: {over} / spec (at the clock of its timing "
            f"column; {UNMET_FLAG}: the spec or the baseline does NOT meet its clock, so the "
            "ratio compares a design at a clock it does not reach); E: datapath energy per "
            "element on the synthesis workload (its short channels); layer: datapath + "
            "off-chip memory per element of one BN layer, the datapath carried to the layer's "
            "channel length (docs/energy.md); error: "
            "numerical error vs the ideal model of the spec's own mode (docs/quality.md)"
            + ("; acc: test accuracy of the CNN trained with the spec's BN (mean ± std over "
               "seeds, difference from torch.nn.BatchNorm2d float32; docs/accuracy.md)"
               if _has_accuracy(summaries) else ""))


def print_table(summaries: Sequence[Mapping[str, Any]], baseline: str | None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    head, rows = table_rows(summaries, baseline)
    t = Table(title="lightnorm comparison", show_lines=False,
              caption=table_caption(summaries, baseline))
    for h in head:
        t.add_column(h, justify="left" if h in ("spec", "timing") else "right", no_wrap=True)
    marked = {head.index(h) for h in ("timing", "x area", "x E fwd")}
    for r in rows:
        t.add_row(*(Text(c, style="bold red" if i in marked and (
            c.endswith(("NOT met", UNMET_FLAG))) else "") for i, c in enumerate(r)))
    console = Console()
    if console.width < 200:  # 13-14 columns: wider than a narrow terminal or a pipe, never wrap
        console = Console(width=200)
    console.print(t)
    missed = [(s["spec"], tm) for s in summaries if (tm := _timing(s)).missed]
    if missed:
        print(f"  clock NOT met by {len(missed)} of {len(summaries)} specs: "
              + "; ".join(f"{name} ({tm.clock_text()}, Fmax "
                          f"{_fmt(tm.fmax_mhz, '.1f')} MHz)" for name, tm in missed)
              + ": their power and energy are at a clock they do not reach")
    for s in summaries:
        for stage, ent in s["stages"].items():
            if ent["status"] in ("failed", "error", "skipped"):
                reason = str(ent.get("reason"))
                reason = reason if len(reason) <= 300 else reason[:297] + "..."
                print(f"  {s['spec']} {stage} {ent['status']}: {reason}")


# --- report --------------------------------------------------------------------------------------
def _report_paths(files: Any) -> dict[str, Any]:
    """The report's files for --json (markdown: None in the single-file layout)."""
    return {"html": str(files.html),
            "markdown": None if files.markdown is None else str(files.markdown)}


#: the digest of what the report was built from, beside the results store (written after the
#: report; not in the report's folder, which --single-file keeps to report.html alone)
REPORT_KEY = ".lightnorm-report-key"


def _report_key(summaries: Sequence[Mapping[str, Any]], baseline: str, title: str,
                single_file: bool) -> str:
    """What a flow's report depends on: the summaries it shows, its options and the sources
    and templates of the report package."""
    import hashlib
    import json

    from lightnorm.flow.sources import sources_digest

    blob = json.dumps([list(summaries), baseline, title, single_file,
                       sources_digest(["lightnorm.reports.report"], ["report"])],
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _write_report(summaries: Sequence[Mapping[str, Any]], out: Path, baseline: str | None,
                  title: str, single_file: bool = False) -> dict[str, Any]:
    """The flow's report in ``out``; a rerun whose results, options and report code are those
    the report there was built from keeps it (its figures take seconds to draw)."""
    from lightnorm.reports.report import ReportError, ReportFiles, build_report

    if baseline is None:
        return {"error": "no baseline"}
    key = _report_key(summaries, baseline, title, single_file)
    stamp = out.parent / REPORT_KEY
    html, md = out / "report.html", None if single_file else out / "report.md"
    try:
        if stamp.read_text() == key and html.is_file() and (md is None or md.is_file()):
            return _report_paths(ReportFiles(html, md, [], []))
    except OSError:
        pass
    stamp.unlink(missing_ok=True)
    try:
        files = build_report(summaries, out, baseline=baseline, title=title,
                             single_file=single_file)
    except ReportError as exc:  # e.g. the baseline's synthesis failed or did not run
        return {"error": str(exc)}
    stamp.write_text(key)
    return _report_paths(files)


def _finish(summaries: list[dict[str, Any]], out: Path, baseline: str | None, title: str,
            as_json: bool, collection: str, extra: Mapping[str, Any] | None = None,
            single_file: bool = False) -> int:
    from lightnorm.flow.runner import spec_failed
    from lightnorm.flow.store import ResultStore

    # the report covers everything the store holds for this collection (earlier runs with other
    # specs or stages included); the table and the exit status cover this run
    recorded = ResultStore(out, check=False).summaries([collection])  # checked at the start
    report = _write_report(recorded or summaries, out / "report", baseline, title, single_file)
    failed = [s["spec"] for s in summaries if spec_failed(s)]
    if as_json:
        print(json.dumps({"out_dir": str(out), "store": str(out / "results.sqlite"),
                          "baseline": baseline, "report": report, "failed": failed,
                          **(extra or {}), "specs": summaries}, indent=2, allow_nan=False))
    else:
        print_table(summaries, baseline)
        if "html" in report:
            print(f"report: {report['html']}")
        else:
            err = str(report["error"])
            print("no report: " + (err if len(err) <= 300 else err[:297] + "..."))
        print(f"results store: {out / 'results.sqlite'}")
    return 1 if failed else 0


def _run(jobs: list[Any], opts: st.FlowOptions, store: Any, workers: int, quiet: bool,
         scheduler: str | None = None) -> list[dict[str, Any]]:
    from lightnorm.flow.runner import run_on_dask, run_specs

    with _Progress([j.spec.name for j in jobs], len(st.planned(opts.stages)), quiet) as prog:
        if scheduler:
            return run_on_dask(jobs, opts, store, scheduler, on_done=prog.done)
        return run_specs(jobs, opts, store, workers, on_event=prog.event)


def _interrupted(what: str) -> int:
    sys.stderr.write(f"lightnorm: {what} interrupted; finished stages are in the store, run the "
                     "same command again to resume\n")
    return 130


# --- the commands --------------------------------------------------------------------------------
def cmd_flow(args: argparse.Namespace) -> int:
    from lightnorm.flow.runner import Job
    from lightnorm.flow.store import ResultStore

    names = args.specs or preset_names()
    specs: list[Spec] = [load(n) for n in names]  # every spec checked before anything runs
    dup = {s.name for s in specs if sum(t.name == s.name for t in specs) > 1}
    if dup:
        raise UsageError(f"specs: {sorted(dup)} given twice (names must be unique in one flow)")
    out = Path(args.out)
    opts = _options(args, out)
    workers = _jobs(args.jobs)
    presets = set(preset_names())
    jobs = [Job(s, "flow", n in presets and s.name == n, None) for n, s in zip(names, specs,
                                                                                strict=True)]
    store = ResultStore(out)  # damage is exit 2 here, before any stage runs
    recorded = {m["spec"] for m in store.members("flow")}
    baseline = args.baseline or (BASELINE if BASELINE in {s.name for s in specs} | recorded
                                 else specs[0].name)
    try:
        summaries = _run(jobs, opts, store, workers, args.json)
    except KeyboardInterrupt:
        return _interrupted("flow")
    return _finish(summaries, out, baseline, "lightnorm flow", args.json, "flow",
                   single_file=args.single_file)


def cmd_sweep(args: argparse.Namespace) -> int:
    from lightnorm.flow.runner import Job
    from lightnorm.flow.store import ResultStore
    from lightnorm.flow.sweep import describe, load_sweep, point_jobs

    sweep = load_sweep(args.sweep)
    given = tuple(n.strip() for n in (args.synth_points or "").split(",") if n.strip())
    valid = [p.name for p in sweep.valid]
    explore.check_named(sweep.synth_points, valid, f"{Path(args.sweep).name}: sweep.synth_points")
    explore.check_named(given, valid, "--synth-points")
    named = tuple(dict.fromkeys([*sweep.synth_points, *given]))
    if args.list:
        print("\n".join(describe(sweep)))
        for pt in sweep.valid:
            print(f"  {pt.name} {json.dumps(pt.coords, sort_keys=True)}")
        return 0
    out = Path(args.out or Path("runs") / sweep.name)
    opts = _options(args, out, sweep.stages, sweep.layer_shape, sweep.clock_ns, sweep.accuracy)
    workers = _jobs(args.jobs)
    store = ResultStore(out)
    for pt in sweep.invalid:
        store.add_skipped(sweep.name, pt.name, f"{json.dumps(pt.coords, sort_keys=True)}: "
                                               f"{pt.reason}")
    if not args.json:
        for line in describe(sweep):
            sys.stderr.write(line + "\n")
    jobs = [Job(spec, sweep.name, preset, coords) for spec, preset, coords in point_jobs(sweep)]
    baseline = args.baseline or sweep.baseline_name(BASELINE) or (
        jobs[0].spec.name if jobs else None)
    mode = args.synth or sweep.synth or explore.DEFAULT_SYNTH
    two = explore.rounds(opts.stages, mode)
    extra: dict[str, Any] = {"sweep": sweep.name, "synth": mode}
    try:
        if two is None:
            summaries = _run(jobs, opts, store, workers, args.json, args.scheduler)
        else:
            summaries, chosen = _explore(jobs, opts, two, named, store, workers, args.json,
                                         args.scheduler)
            extra["synthesized"] = [{"spec": n, "why": w} for n, w in chosen.items()]
    except KeyboardInterrupt:
        return _interrupted(f"sweep {sweep.name}")
    extra["skipped"] = [{"point": p.name, "coords": p.coords, "reason": p.reason}
                        for p in sweep.invalid]
    return _finish(summaries, out, baseline, f"sweep {sweep.name}", args.json, sweep.name,
                   extra, single_file=args.single_file)


def _explore(jobs: list[Any], opts: st.FlowOptions, two: Any, named: Sequence[str],
             store: Any, workers: int, quiet: bool, scheduler: str | None
             ) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Estimate every point, then run every stage on the points chosen (flow/explore.py)."""
    import dataclasses

    first = _run(jobs, dataclasses.replace(opts, stages=two.explore), store, workers, quiet,
                 scheduler)
    chosen = explore.select(first, two.mode, named)
    if not quiet:
        sys.stderr.write(f"synthesizing {len(chosen)} of {len(jobs)} specs (--synth "
                         f"{two.mode}): " + "; ".join(f"{n} ({w})" for n, w in chosen.items())
                         + "\n")
    picked = [j for j in jobs if j.spec.name in chosen]
    second = _run(picked, dataclasses.replace(opts, stages=two.selected), store, workers,
                  quiet, scheduler) if picked else []
    done = {s["spec"]: s for s in second}
    return [done.get(s["spec"], s) for s in first], chosen


def cmd_report(args: argparse.Namespace) -> int:
    from lightnorm.flow.store import ResultStore
    from lightnorm.reports.report import build_report

    d = Path(args.dir)
    store = ResultStore(d, create=False)
    summaries = store.summaries()
    if not summaries:
        raise UsageError(f"results store {store.path}: holds no spec results")
    sweeps = [c for c in store.collections() if c != "flow"]
    baseline = args.baseline or BASELINE
    if args.baseline is None and baseline not in [s["spec"] for s in summaries]:
        # a sweep's compared baseline carries the sweep's tag (fp32-baseline-l4)
        cands = sorted(s["spec"] for s in summaries if s["spec"].startswith(BASELINE))
        baseline = cands[0] if cands else baseline
    if args.baseline is not None and args.baseline not in [s["spec"] for s in summaries]:
        raise UsageError(f"--baseline = {args.baseline!r}: expected a spec of the store ("
                         + ", ".join(sorted({s['spec'] for s in summaries})[:8]) + ")")
    out = Path(args.out) if args.out else d / "report"
    title = "lightnorm report" + (f": sweeps {', '.join(sweeps)}" if sweeps else "")
    if args.csv:  # first: the export does not depend on what the report can show
        csv_path = Path(args.csv)
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = csv_path.with_name(f".{csv_path.name}.{os.getpid()}.tmp")
        tmp.write_text(store.export_csv(), encoding="utf-8")
        os.replace(tmp, csv_path)
    try:
        files = build_report(summaries, out, baseline=baseline, title=title,
                             single_file=args.single_file)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write the report there ({exc.strerror or exc})"
                         ) from exc
    if args.json:
        print(json.dumps({**_report_paths(files), "baseline": baseline,
                          "specs": len(summaries)}, indent=2))
    else:
        print(f"report: {files.html}")
        if files.markdown is not None:
            print(f"markdown: {files.markdown}")
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    from lightnorm.flow import regress

    seeds = tuple(args.seeds)
    names = args.specs or regress.default_specs()
    quiet = args.json

    def on_spec(name: str, res: list[regress.CaseResult]) -> None:
        if not quiet:
            bad = [r for r in res if not r.bit_exact]
            print(f"{name}: {len(res) - len(bad)}/{len(res)} cases bit-exact"
                  + "".join(f"\n  {r.case}: {r.message}" for r in bad), flush=True)

    results = regress.run(names, seeds, on_spec)
    if args.junit:
        path = Path(args.junit)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(regress.junit_xml(results))
    failed = [r for r in results if not r.bit_exact]
    if quiet:
        print(json.dumps({"cases": len(results), "failed": len(failed),
                          "results": [vars(r) for r in results]}, indent=2))
    else:
        print(f"regress: {len(results) - len(failed)}/{len(results)} cases bit-exact over "
              f"{len({r.spec for r in results})} specs" +
              (f"; JUnit XML in {args.junit}" if args.junit else ""))
    return 1 if failed else 0


