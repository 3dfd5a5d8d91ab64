"""The XLS backend per spec: ``lightnorm bench xls [SPEC ...] [--synth] [--clock-ns T]
[--liberty PATH] [--json]``.

* DSLX -> Verilog time of the backend's design (:func:`lightnorm.backends.xls.build`), uncached:
  a fresh temporary XLS cache and an empty in-process DSLX -> IR memo per spec;
  the XLS modules it generates and their Verilog size;
* with ``--synth``: the XLS design and the template RTL through the same synthesis flow at a
  common clock where both meet timing (:func:`lightnorm.cost.backend_compare.
  compare_backends`: same liberty, same clock, same workload): area and its ratio, the share
  of the XLS-generated modules in the XLS design's area, Fmax, cycles per pass and energy
  per element of both. The synthesis cache makes repeated runs cheap; a 16-lane preset costs
  minutes per design when uncached.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lightnorm.errors import UsageError
from lightnorm.spec import load, preset_names


def compile_time(spec_name: str) -> dict[str, Any]:
    from lightnorm.backends import xls as backend
    from lightnorm.tools import xls as xc

    spec = load(spec_name)
    with tempfile.TemporaryDirectory(prefix="ln_xls_bench_") as tmp:
        xc._convert.cache_clear()
        t0 = time.perf_counter()
        b = backend.build(spec, cache=Path(tmp))
        secs = time.perf_counter() - t0
    assert not any(r.cached for r in b.replaced)
    xmods = b.xls_modules()
    return {
        "spec": spec.name, "compile_seconds": secs, "xls_modules": len(xmods),
        "replaced_template_modules": len({r.module for r in b.replaced
                                          if r.kind not in backend.LANE_KINDS}),
        "lane_modules": sorted(r.module for r in b.replaced if r.kind in backend.LANE_KINDS),
        "pipelines": sorted({f"{r.xls_module} (latency {r.latency})" for r in b.replaced
                             if r.generator == "pipeline"}),
        "xls_verilog_lines": sum(b.files[f"{m}.v"].count("\n") for m in xmods),
        "template_modules_kept": len(b.template_modules),
        "xls_version": b.xls_version,
    }


def synth_pair(spec_name: str, clock_ns: float | None, liberty: str | None) -> dict[str, Any]:
    from lightnorm.backends import xls as backend
    from lightnorm.cost.backend_compare import compare_backends

    c = compare_backends(load(spec_name), liberty, clock_ns, backend=backend.XlsBackend.name)
    t, x, summary = c.reference, c.other, c.summary()
    xa = x.xls_area_um2 or 0.0
    return {
        "clock_ns": c.clock_ns, "both_met": c.both_met, "clocks_tried": len(c.rounds),
        "xls_clock_ns": c.schedule_clock_ns, "liberty": x.liberty,
        "template_area_um2": t.area_um2, "xls_area_um2": x.area_um2,
        "area_ratio": x.area_um2 / t.area_um2, "xls_generated_um2": xa,
        "xls_generated_share": xa / x.area_um2 if x.area_um2 else None,
        "template_fmax_mhz": t.fmax_mhz, "xls_fmax_mhz": x.fmax_mhz,
        "template_cycles": summary[t.backend]["cycles"],
        "xls_cycles": summary[x.backend]["cycles"],
        "template_pj_per_element": t.energy_pj_per_element,
        "xls_pj_per_element": x.energy_pj_per_element,
        "area_by_block": {b: [t.area_breakdown.get(b), x.area_breakdown.get(b)]
                          for b in t.area_breakdown},
        "synth_cached": {"template": t.cached, "xls": x.cached},
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="*", help="spec names or files (default: every preset)")
    parser.add_argument("--synth", action="store_true",
                        help="also synthesize the XLS and the template design (same flow)")
    parser.add_argument("--clock-ns", type=float, default=None)
    parser.add_argument("--liberty", default=None)
    parser.add_argument("--json", action="store_true")


def execute(args: argparse.Namespace) -> int:
    if args.clock_ns is not None and not (math.isfinite(args.clock_ns) and args.clock_ns > 0):
        raise UsageError(f"--clock-ns = {args.clock_ns!r}: expected a positive period in ns")
    names = args.specs or preset_names()
    for name in names:  # every spec checked before the first (slow) compilation
        load(name)
    rows = []
    for name in names:
        row = compile_time(name)
        if args.synth:
            row.update(synth_pair(name, args.clock_ns, args.liberty))
        rows.append(row)
        if not args.json:
            line = (f"{row['spec']:22s} DSLX->Verilog {row['compile_seconds']:6.2f} s  "
                    f"{row['xls_modules']:2d} XLS modules, {row['xls_verilog_lines']:6d} lines")
            if args.synth:
                e_t, e_x = row["template_pj_per_element"], row["xls_pj_per_element"]
                line += (f"\n  at {row['clock_ns']:g} ns (both meet it: {row['both_met']}): "
                         f"area XLS/template {row['xls_area_um2']:,.0f}/"
                         f"{row['template_area_um2']:,.0f} um2 = {row['area_ratio']:.3f}, "
                         f"XLS-generated {100 * row['xls_generated_share']:.1f}%, Fmax "
                         f"{row['xls_fmax_mhz']:.1f}/{row['template_fmax_mhz']:.1f} MHz, "
                         f"cycles fwd {row['xls_cycles']['forward']}/"
                         f"{row['template_cycles']['forward']}, bwd "
                         f"{row['xls_cycles']['backward']}/{row['template_cycles']['backward']}"
                         f", pJ/element fwd {e_x['forward']:.0f}/{e_t['forward']:.0f}, bwd "
                         f"{e_x['backward']:.0f}/{e_t['backward']:.0f}")
            print(line, flush=True)
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    return 0
