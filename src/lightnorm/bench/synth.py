"""LightNorm against the FP32 baseline, synthesized on the same library at the same clock with
the same number of lanes.

    lightnorm bench synth [--baseline SPEC] [--lightnorm SPEC] [--liberty PATH] [--clock-ns T]
                          [--flow hier|flat|auto] [--json]

Figures (docs/synthesis.md):

* area ratio = baseline area / lightnorm area (hierarchical synthesis, um^2), target >= 4;
* forward energy ratio = baseline / lightnorm datapath energy per element of the forward pass
  (OpenSTA power with simulated activity x period x cycles / elements), target >= 3;
* off-chip traffic ratio = lightnorm / baseline bytes per element of one BN layer in training
  (forward + backward, ``Spec.offchip_bytes_per_element``), target <= 0.3.

It also prints each design's area by block, Fmax, power and energy, and the energy of one BN
layer with the off-chip memory traffic (:func:`lightnorm.cost.energy.layer_energy`). A
missed target is reported with the measured figure and the block that dominates the difference.

Both designs go through the same timing/power flow, ``hier`` by default (map per module, then
flatten: ABC crashes on the flat FP32 baseline). A first run takes about 10 minutes on 2 cores
(Verilator builds, OpenSTA on 0.25M and 0.8M cells); later runs read the cache.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import TYPE_CHECKING, Any

from lightnorm.errors import UsageError
from lightnorm.spec import load

if TYPE_CHECKING:
    from lightnorm.cost.synth import SynthResult

TARGETS = {"area_ratio": 4.0, "forward_energy_ratio": 3.0, "offchip_bytes_ratio": 0.3}
LAYER_SHAPE = (32, 64, 28, 28)


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


def dominant_block(base: SynthResult, light: SynthResult) -> dict[str, Any]:
    """The block with the largest area in ``light`` relative to its share of the difference."""
    from lightnorm.cost.synth import BLOCKS

    rows: list[dict[str, Any]] = []
    for b in BLOCKS:
        rows.append({"block": b, "baseline_um2": base.area_breakdown.get(b, 0.0),
                     "lightnorm_um2": light.area_breakdown.get(b, 0.0)})
    top = max(rows, key=lambda r: r["lightnorm_um2"])
    return {"largest_lightnorm_block": top["block"],
            "share": top["lightnorm_um2"] / light.area_um2 if light.area_um2 else 0.0,
            "blocks": rows}


def run(baseline: str = "fp32-baseline", lightnorm: str = "lightnorm",
        liberty: str | None = None, clock_ns: float | None = None,
        shape: tuple[int, int, int, int] | None = None,
        log: Any = None, flow: str = "hier") -> dict[str, Any]:
    from lightnorm.cost.activity import ActivityConfig
    from lightnorm.cost.energy import layer_energy
    from lightnorm.cost.synth import AbcCrash, synthesize

    sb, sl = load(baseline), load(lightnorm)
    if sb.hw.lanes != sl.hw.lanes:
        raise UsageError(f"lanes differ: {baseline} has {sb.hw.lanes}, {lightnorm} "
                         f"{sl.hw.lanes}: the comparison needs the same number of lanes")
    if clock_ns is not None and not (math.isfinite(clock_ns) and clock_ns > 0):
        raise UsageError(f"--clock-ns = {clock_ns!r}: expected a positive period in ns")
    clk = clock_ns if clock_ns is not None else sl.hw.clock_ns
    act = ActivityConfig(shape=shape)

    def one(name: str, spec: Any, flow: str) -> SynthResult:
        t0 = time.perf_counter()
        if log:
            print(f"[bench_synth] synthesizing {name} at {clk:g} ns (flow {flow}) ...",
                  file=log, flush=True)
        r = synthesize(spec, liberty=liberty, clock_ns=clk, activity=act, flow=flow)
        if log:
            print(f"[bench_synth] {name} done in {time.perf_counter() - t0:.0f} s "
                  f"(cached: {r.cached})", file=log, flush=True)
        return r

    # Both designs go through the same flow. "hier" (the default) maps each module, then
    # flattens: ABC in WebAssembly crashes on the flat FP32 baseline after ~25 CPU-minutes.
    # "auto" tries the flat flow for both and falls back to "hier" for both.
    results: dict[str, SynthResult] = {}
    extra: dict[str, Any] = {}
    if flow == "auto":
        flow = "flat"
        for name, spec in ((baseline, sb), (lightnorm, sl)):
            try:
                results[name] = one(name, spec, "flat")
            except AbcCrash as exc:
                if log:
                    print(f"[bench_synth] {exc}: both designs use the per-module flow",
                          file=log, flush=True)
                flow = "hier"
                break
        if flow == "hier":
            results = {}
    if not results:
        results = {name: one(name, spec, flow) for name, spec in ((lightnorm, sl),
                                                                    (baseline, sb))}
    rb, rl = results[baseline], results[lightnorm]
    ob, ol = sb.offchip_bytes_per_element(), sl.offchip_bytes_per_element()
    figures: dict[str, float] = {
        "area_ratio": _ratio(rb.area_um2, rl.area_um2),
        "forward_energy_ratio": _ratio(rb.energy_pj_per_element["forward"],
                                       rl.energy_pj_per_element["forward"]),
        "backward_energy_ratio": _ratio(rb.energy_pj_per_element["backward"],
                                        rl.energy_pj_per_element["backward"]),
        "offchip_bytes_ratio": _ratio(ol["total"], ob["total"]),
    }
    met = {
        "area_ratio": figures["area_ratio"] >= TARGETS["area_ratio"],
        "forward_energy_ratio": figures["forward_energy_ratio"] >= TARGETS["forward_energy_ratio"],
        "offchip_bytes_ratio": figures["offchip_bytes_ratio"] <= TARGETS["offchip_bytes_ratio"],
    }
    layers: dict[str, dict[str, Any]] = {}
    for name, spec, r in ((baseline, sb, rb), (lightnorm, sl, rl)):
        le = layer_energy(spec, LAYER_SHAPE, datapath_pj_per_element=dict(
            r.energy_pj_per_element))
        layers[name] = {
            "shape": list(LAYER_SHAPE),
            "memory_pj_per_element": le.memory_pj / le.elements,
            "datapath_pj_per_element": (le.datapath_pj or 0.0) / le.elements,
            "total_pj_per_element": (le.total_pj or 0.0) / le.elements,
        }
    figures["layer_energy_ratio"] = _ratio(layers[baseline]["total_pj_per_element"],
                                           layers[lightnorm]["total_pj_per_element"])
    return {
        "baseline": baseline, "lightnorm": lightnorm, "clock_ns": clk, "flow": flow,
        "lanes": sl.hw.lanes, "liberty": rl.liberty,
        "targets": TARGETS, "figures": figures, "met": met,
        "offchip_bytes_per_element": {baseline: ob, lightnorm: ol},
        "layer_energy": layers,
        "area_blocks": dominant_block(rb, rl),
        "results": {baseline: rb.to_dict(), lightnorm: rl.to_dict()},
        **extra,
    }


def _summary(name: str, r: dict[str, Any]) -> list[str]:
    from lightnorm.cost.synth import BLOCKS

    bd = r["area_breakdown"]
    lines = [
        f"{name}: area {r['area_um2'] / 1e6:.3f} mm2 ({r['gate_equivalents']['nand2_area']:,.0f}"
        f" NAND2 eq; generic {r['gate_equivalents']['generic_transistors_div4']:,.0f} GE), "
        f"flat {r['area_flat_um2'] / 1e6:.3f} mm2, {r['flip_flops']:,} flip-flops",
        f"  generated for and timed at {r['clock_ns']:g} ns: "
        f"{'met' if r['timing_met'] else 'NOT met'}; Fmax {r['fmax_mhz']:.1f} MHz (slack "
        f"{r['worst_slack_ns']:.3f} ns), critical path "
        f"{r['critical_path'].get('start_register', r['critical_path']['start'])} -> "
        f"{r['critical_path'].get('end_register', r['critical_path']['end'])}",
        f"  power fwd {r['power_mw']['forward']:.2f} mW, bwd {r['power_mw']['backward']:.2f} mW;"
        f" energy/element fwd {r['energy_pj_per_element']['forward']:.2f} pJ, bwd "
        f"{r['energy_pj_per_element']['backward']:.2f} pJ; cycles/element fwd "
        f"{r['cycles_per_element']['forward']:.4f}, bwd {r['cycles_per_element']['backward']:.4f}",
        "  area by block (um2): " + ", ".join(f"{b} {bd.get(b, 0.0):,.0f}" for b in BLOCKS),
        f"  simulated flip-flop fraction fwd "
        f"{r['activity']['forward']['simulated_fraction']:.3f}, bwd "
        f"{r['activity']['backward']['simulated_fraction']:.3f}",
    ]
    return lines


def report(res: dict[str, Any]) -> str:
    b, light = res["baseline"], res["lightnorm"]
    met_b, met_l = (res["results"][n]["timing_met"] for n in (b, light))
    out = [f"LightNorm vs baseline: {light} vs {b}, {res['lanes']} lanes, both generated for "
           f"and synthesized at {res['clock_ns']:g} ns ({b}: "
           f"{'met' if met_b else 'NOT met'}, {light}: {'met' if met_l else 'NOT met'}), "
           f"liberty {res['liberty']}, timing/power netlists: {res['flow']} flow", ""]
    if not (met_b and met_l):
        out += ["the ratios below compare a design that does not meet the clock: they hold at "
                "no real operating point", ""]
    out += _summary(b, res["results"][b]) + [""] + _summary(light, res["results"][light]) + [""]
    f, t, met = res["figures"], res["targets"], res["met"]
    out.append(f"area ratio (baseline / lightnorm): {f['area_ratio']:.2f}  (target >= "
               f"{t['area_ratio']:g}: {'met' if met['area_ratio'] else 'MISSED'})")
    out.append(f"forward energy per element ratio: {f['forward_energy_ratio']:.2f}  (target >= "
               f"{t['forward_energy_ratio']:g}: "
               f"{'met' if met['forward_energy_ratio'] else 'MISSED'})")
    out.append(f"backward energy per element ratio: {f['backward_energy_ratio']:.2f}")
    out.append(f"off-chip bytes per element ratio (lightnorm / baseline): "
               f"{f['offchip_bytes_ratio']:.3f}  (target <= {t['offchip_bytes_ratio']:g}: "
               f"{'met' if met['offchip_bytes_ratio'] else 'MISSED'})")
    le = res["layer_energy"]
    out.append(f"one BN layer {tuple(le[b]['shape'])}, memory + datapath pJ/element: "
               f"{b} {le[b]['total_pj_per_element']:.1f} (memory "
               f"{le[b]['memory_pj_per_element']:.1f}), {light} "
               f"{le[light]['total_pj_per_element']:.1f} (memory "
               f"{le[light]['memory_pj_per_element']:.1f}): ratio "
               f"{f['layer_energy_ratio']:.2f}")
    if not all(met.values()):
        ab = res["area_blocks"]
        out.append(f"largest lightnorm block: {ab['largest_lightnorm_block']} "
                   f"({ab['share'] * 100:.0f}% of its area)")
    return "\n".join(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", default="fp32-baseline")
    parser.add_argument("--lightnorm", default="lightnorm")
    parser.add_argument("--liberty", default=None, help="liberty file (default OSU 0.18 um)")
    parser.add_argument("--clock-ns", type=float, default=None,
                        help="clock period for both designs (default the lightnorm spec's)")
    parser.add_argument("--flow", choices=("hier", "flat", "auto"), default="hier",
                        help="how the timing/power netlists are made (default hier: map per "
                             "module, then flatten; flat crashes ABC on the FP32 baseline; auto "
                             "tries flat)")
    parser.add_argument("--json", action="store_true", help="JSON on stdout")


def execute(args: argparse.Namespace) -> int:
    res = run(args.baseline, args.lightnorm, args.liberty, args.clock_ns, log=sys.stderr,
              flow=args.flow)
    if args.json:
        sys.stdout.write(json.dumps(res, indent=1, default=str) + "\n")
    else:
        sys.stdout.write(report(res) + "\n")
    return 0
